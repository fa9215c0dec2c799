"""Market-basket analysis: baskets, frequent itemsets, association rules, cross-sell tables.

The pipeline, each step a plain DataFrame in and out (as in mlxtend's ``frequent_patterns``)::

    canonical tables ──baskets_from_orders──┐   (ecrm_research.prep.baskets: step 2)
    list[list[str]]  ──baskets_from_lists───┴─► baskets (long: basket_id, item[, ordered_at])
        ──frequent_itemsets──► itemsets, support, count, length        (engine: fim | mlxtend | spark)
        ──association_rules──► antecedents, consequents, support, confidence, lift, leverage,
                               conviction, zhangs_metric, count, ...
        ──cross_sell_table / holdout_check / fisher_test / is_redundant
                              (cross-sell: significant rules, variants of one product set aside
                               (flag_variants), ranked by expected extra baskets)

:func:`mine_rules` runs the whole chain and returns a :class:`RuleMiningResult`.

Semantics follow R's ``arules`` by default (``semantics="arules"``):

* a rule has exactly one item in its consequent (right-hand side);
* thresholds are inclusive: a rule is kept when ``support >= min_support`` and
  ``confidence >= min_confidence``; the support threshold is applied to counts,
  ``count >= ceil(min_support * n_baskets)``;
* ``max_len`` bounds the number of items in a whole rule (antecedent + consequent),
  i.e. the size of the frequent itemset it is made from (arules' default is 10);
* rules with an empty antecedent (``{} => {x}``, which arules reports when
  ``support(x) >= min_confidence``) are left out: they recommend to everybody.

``semantics="mlxtend"`` instead calls :func:`mlxtend.frequent_patterns.association_rules`
(through a single wrapper in :mod:`.rules`) and keeps rules with
consequents of any size.

Baskets are *sets*: an item bought twice in one basket counts once, as in arules'
``transactions``.

Mining engines (``engine=``; all give the same itemsets, counts and rules):

* ``'fim'`` — Christian Borgelt's C FP-growth (``pip install pyfim``; from the library whose
  apriori and eclat R's arules runs); chosen by ``'auto'`` when importable. ~1 s for a million
  baskets.
* ``'mlxtend'`` — mlxtend's pure-Python FP-growth, the reference; fine up to ~10^5 baskets.
* ``'spark'`` — ``pyspark.ml.fpm.FPGrowth`` on a local or remote Spark (``spark_master=``).

Whatever the engine, the long table is integer-coded once with numpy (items below
``min_support`` dropped first, no dense one-hot matrix), only integer counts come back, and the
rules and their measures are derived from those counts in one place (:func:`association_rules`).
A memory estimate is checked before mining (``max_memory_gb``; :func:`estimate_mining_memory`).

Modules (this package only re-exports their public API):

* :mod:`.encoding` — integer-coded baskets, item frequencies, basket sizes, one-hot encoding;
* :mod:`.engines` — the engine registry (:data:`ENGINES`, :func:`resolve_engine`); the engines in
  :mod:`.fim_engine`, :mod:`.mlxtend_engine`, :mod:`.spark_engine`;
* :mod:`.memory` — the memory model and the guard that refuses a job too large for memory;
* :mod:`.itemsets` — :func:`frequent_itemsets`;
* :mod:`.rules` — :func:`association_rules`, interest measures, redundancy, Fisher tests;
* :mod:`.mining` — :func:`mine_rules` and :class:`RuleMiningResult`;
* :mod:`.auto` — :func:`choose_min_support` (``min_support=None`` in the notebook);
* :mod:`.variants` — variants of one product (colour/size words, stock-code stems);
* :mod:`.crm` — cross-sell tables and their screening counts, holdout checks, export;
* :mod:`.synthetic` — :func:`synthetic_baskets`; :mod:`.plots` — the figures.

Examples
--------
>>> from ecrm_research import association as ar
>>> from ecrm_research.prep.baskets import baskets_from_lists
>>> b = baskets_from_lists([["bread", "milk"], ["bread", "milk", "eggs"], ["eggs"]])
>>> res = ar.mine_rules(b, min_support=0.5, min_confidence=0.9)
>>> res.rules[["antecedents", "consequents", "confidence"]]  # doctest: +NORMALIZE_WHITESPACE
  antecedents consequents  confidence
0     (bread)      (milk)         1.0
1      (milk)     (bread)         1.0
"""

from ..phrasing import format_p_value, share_text  # the tables' and findings' wording, shared by every analysis
from .auto import SupportChoice, choose_min_support
from .crm import (
    CROSS_SELL_COLUMNS,
    CROSS_SELL_SCREENS,
    cross_sell_screening,
    cross_sell_table,
    holdout_check,
    measure_rules,
    rules_for_export,
    split_baskets_by_time,
)
from .encoding import basket_sizes, encode_baskets, item_frequencies, require_baskets
from .engines import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_LEN, ENGINES, available_engines, resolve_engine
from .itemsets import frequent_itemsets
from .memory import DEFAULT_MEMORY_SHARE, estimate_itemset_count, estimate_mining_memory
from .mining import RuleMiningResult, mine_rules
from .rules import RULE_COLUMNS, association_rules, fisher_test, is_redundant, prune_redundant
from .synthetic import synthetic_baskets
from .variants import (
    COLOUR_WORDS,
    MODIFIER_WORDS,
    SIZE_WORDS,
    code_stem,
    family_words,
    flag_variants,
    item_codes,
    variant_family,
)

__all__ = [
    "RULE_COLUMNS",
    "RuleMiningResult",
    "item_frequencies",
    "basket_sizes",
    "encode_baskets",
    "ENGINES",
    "DEFAULT_MAX_LEN",
    "DEFAULT_MAX_ITEMSETS",
    "DEFAULT_MEMORY_SHARE",
    "available_engines",
    "resolve_engine",
    "estimate_itemset_count",
    "estimate_mining_memory",
    "frequent_itemsets",
    "association_rules",
    "mine_rules",
    "is_redundant",
    "prune_redundant",
    "fisher_test",
    "cross_sell_table",
    "cross_sell_screening",
    "CROSS_SELL_COLUMNS",
    "CROSS_SELL_SCREENS",
    "format_p_value",
    "share_text",
    "COLOUR_WORDS",
    "SIZE_WORDS",
    "MODIFIER_WORDS",
    "family_words",
    "code_stem",
    "variant_family",
    "flag_variants",
    "item_codes",
    "split_baskets_by_time",
    "measure_rules",
    "holdout_check",
    "rules_for_export",
    "synthetic_baskets",
    "choose_min_support",
    "require_baskets",
    "SupportChoice",
]
