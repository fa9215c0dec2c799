"""The whole chain in one call: :func:`mine_rules` returns a :class:`RuleMiningResult`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..infra.progress import Stages
from ..prep.baskets import check_long_baskets
from .engines import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_LEN, resolve_engine
from .itemsets import mine_itemsets
from .rules import association_rules, fisher_test, is_redundant


@dataclass
class RuleMiningResult:
    """Frequent itemsets and rules of one mining run.

    Attributes
    ----------
    itemsets : DataFrame
        See :func:`frequent_itemsets`.
    rules : DataFrame
        See :func:`association_rules` (redundant rules removed when ``prune=True``).
    n_transactions : int
    params : dict
        The thresholds used.
    summary : DataFrame
        Tidy ``measure, value`` table (baskets, items, itemsets by size, rules by length...).
    seconds : float
        Wall time of itemset + rule mining (including the encoding of the baskets).
    engine : str
        The mining engine that ran (``'fim'``, ``'mlxtend'`` or ``'spark'``).
    timings : dict
        Seconds per stage (encode baskets, mine itemsets, label itemsets, derive rules, ...).
    """

    itemsets: pd.DataFrame
    rules: pd.DataFrame
    n_transactions: int
    params: dict
    summary: pd.DataFrame
    seconds: float = 0.0
    engine: str = ""
    timings: dict = field(default_factory=dict)

    def rule_lengths(self) -> pd.Series:
        """Number of rules per rule length (antecedent + consequent items), as arules' summary."""
        return self.rules["length"].value_counts().sort_index()


def mine_rules(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float = 0.01,
               min_confidence: float = 0.5, max_len: int | None = DEFAULT_MAX_LEN, *,
               min_lift: float | None = None, prune: bool = False, fisher: bool = False,
               p_adjust: str = "holm", semantics: str = "arules",
               max_itemsets: int = DEFAULT_MAX_ITEMSETS, engine: str = "auto",
               spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
               max_memory_gb: float | None = None, progress: bool = False) -> RuleMiningResult:
    """Mine frequent itemsets and association rules in one call.

    Parameters
    ----------
    baskets : DataFrame or list of lists
        Long basket table or list of baskets.
    min_support, min_confidence, max_len :
        arules' ``supp``, ``conf`` and ``maxlen`` (see :func:`frequent_itemsets`,
        :func:`association_rules`).
    min_lift : float, optional
        Extra lift threshold.
    prune : bool
        Drop redundant rules (:func:`is_redundant`).
    fisher : bool
        Add one-sided Fisher exact test p-values (:func:`fisher_test`).
    p_adjust : str
        Multiple-testing correction for ``fisher`` (statsmodels ``multipletests`` method).
    semantics : {'arules', 'mlxtend'}
    max_itemsets : int
        Guard on the number of itemsets, see :func:`frequent_itemsets`.
    engine, spark_master, spark_conf, max_memory_gb :
        Mining engine and memory guard, see :func:`frequent_itemsets`. The rules do not depend
        on the engine: they are derived from the itemset counts by :func:`association_rules`.
    progress : bool
        Stage-level tqdm progress bar on stderr.

    Examples
    --------
    R: ``apriori(Groceries, parameter = list(supp = 0.001, conf = 0.8))`` gives 410 rules;
    ``mine_rules(groceries, 0.001, 0.8)`` gives the same 410 with every engine.
    """
    t0 = time.perf_counter()
    b = check_long_baskets(baskets)
    eng = resolve_engine(engine, spark_master)
    stages = Stages(progress, total=4 + bool(prune) + bool(fisher), desc=f"association rules ({eng})")
    try:
        fi = mine_itemsets(b, min_support, max_len, max_itemsets, eng, spark_master, spark_conf,
                           max_memory_gb, stages)
        n = int(fi.attrs["n_transactions"])
        stages.stage("derive rules")
        rules = association_rules(fi, n, min_confidence, min_lift=min_lift, semantics=semantics)
        n_all = len(rules)
        if prune:
            stages.stage("prune redundant rules")
            if len(rules):
                rules = rules[~is_redundant(rules)].reset_index(drop=True)
        if fisher:
            stages.stage("Fisher tests")
            rules = fisher_test(rules, n, method=p_adjust)
    finally:
        stages.close()
    rules.attrs["n_transactions"] = n
    secs = time.perf_counter() - t0
    summary = _summary_table(fi, rules, n, n_all, prune)
    params = {"min_support": min_support, "min_confidence": min_confidence, "max_len": max_len,
              "min_lift": min_lift, "prune": prune, "semantics": semantics, "engine": eng,
              "spark_master": spark_master if eng == "spark" else None}
    return RuleMiningResult(itemsets=fi, rules=rules, n_transactions=n, params=params, summary=summary, seconds=secs,
                            engine=eng, timings=dict(stages.timings))


def _summary_table(itemsets: pd.DataFrame, rules: pd.DataFrame, n: int, n_all: int, prune: bool) -> pd.DataFrame:
    """The tidy ``measure, value`` summary of a run: baskets, items, itemsets by size, rules by length."""
    rows = [("baskets", n), ("items", int(itemsets.attrs["n_items"])),
            ("frequent items", int((itemsets["length"] == 1).sum())),
            ("frequent itemsets", len(itemsets)), ("min_support count", int(itemsets.attrs["min_count"])),
            ("rules", n_all)]
    if prune:
        rows.append(("non-redundant rules", len(rules)))
    for k, v in itemsets["length"].value_counts().sort_index().items():
        rows.append((f"itemsets of size {k}", int(v)))
    for k, v in rules["length"].value_counts().sort_index().items():
        rows.append((f"rules of length {k}", int(v)))
    return pd.DataFrame(rows, columns=["measure", "value"])
