"""Choosing ``min_support`` for the data when the user gives none.

:func:`choose_min_support` walks down a ladder of round support values and stops at the highest one
that yields about ``target_rules`` rules, without crossing the itemset guard or the memory guard
(the same estimates :func:`~ecrm_research.association.frequent_itemsets` checks). An explicit
``min_support`` is never changed: this is only for ``min_support=None`` ("choose for me").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..exceptions import AnalysisError, ParameterError
from ..prep.baskets import check_long_baskets
from .encoding import EncodedBaskets, integer_encode, min_support_count
from .engines import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_LEN, resolve_engine
from .memory import memory_limit_bytes, memory_parts
from .mining import mine_rules

#: Support values tried, from the highest down (arules' examples use 0.1 ... 0.001).
SUPPORT_LADDER = (0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001)
#: A rule must stand on at least this many baskets, whatever the ladder says.
MIN_BASKETS_PER_ITEMSET = 5
#: Rules the automatic choice aims for (enough to act on, few enough to read).
DEFAULT_TARGET_RULES = 10


@dataclass
class SupportChoice:
    """The automatic ``min_support`` and how it was chosen.

    Attributes
    ----------
    min_support : float
        The chosen threshold.
    reason : str
        One sentence for the notebook and the findings.
    tried : DataFrame
        One row per value tried: ``min_support``, ``min_count`` (baskets), ``rules`` (None when
        not mined), ``status`` (``mined`` / ``over the itemset guard`` / ``over the memory guard``).
    """

    min_support: float
    reason: str
    tried: pd.DataFrame = field(repr=False)


def _guard_status(enc: EncodedBaskets, max_len: int | None, engine: str, max_itemsets: int,
                  limit: float) -> str | None:
    """Why mining these encoded baskets would be refused (None: it fits), from the pre-mining memory estimate.

    The itemset bound is capped at ``max_itemsets`` here, as in the guard itself: a loose bound is
    settled by mining (which stops at the guard) rather than refused up front.
    """
    parts = memory_parts(enc.sizes, len(enc.items), enc.min_count, max_len, enc.n_rows, engine, max_itemsets)
    return "over the memory guard" if sum(parts.values()) > limit else None


def choose_min_support(baskets: pd.DataFrame | Sequence[Iterable[str]], min_confidence: float = 0.5,
                       max_len: int | None = DEFAULT_MAX_LEN, *, target_rules: int = DEFAULT_TARGET_RULES,
                       engine: str = "auto", max_itemsets: int = DEFAULT_MAX_ITEMSETS,
                       max_memory_gb: float | None = None, spark_master: str | None = None) -> SupportChoice:
    """The highest round ``min_support`` that gives about ``target_rules`` rules and fits the guards.

    Parameters
    ----------
    baskets : DataFrame or list of lists
        Long basket table (``basket_id``, ``item``) or list of baskets.
    min_confidence, max_len, engine, max_itemsets, max_memory_gb, spark_master :
        As for :func:`~ecrm_research.association.mine_rules` (the rules are counted with them).
    target_rules : int
        Stop at the first (highest) support with at least this many rules.

    Returns
    -------
    SupportChoice

    Notes
    -----
    Values of :data:`SUPPORT_LADDER` are tried from the highest down, skipping those whose count
    ``ceil(s·n)`` is below :data:`MIN_BASKETS_PER_ITEMSET` baskets (a floor that keeps rules on a
    handful of baskets out). The walk stops at the first value with ``target_rules`` rules or more,
    or before the first value the memory guard or the itemset guard would refuse; then the lowest
    value that was mined is taken (it has the most rules). With fewer than
    ``5 · MIN_BASKETS_PER_ITEMSET`` baskets only the floor itself is tried. Raises
    :class:`~ecrm_research.exceptions.AnalysisError` when there are no baskets or no value fits.
    """
    if int(target_rules) < 1:
        raise ParameterError(f"target_rules={target_rules!r} must be >= 1.")
    b = check_long_baskets(baskets)
    n = int(b["basket_id"].nunique()) if len(b) else 0
    if n == 0:
        raise AnalysisError("No baskets: the basket table is empty, so no min_support can be chosen. "
                            "Check the data and the filters in step 2 (e.g. are all orders cancelled?).")
    eng = resolve_engine(engine, spark_master)
    limit = memory_limit_bytes(max_memory_gb)
    rows, best = [], None
    ladder = [s for s in SUPPORT_LADDER if min_support_count(s, n) >= MIN_BASKETS_PER_ITEMSET]
    for s in ladder or [min(1.0, float(f"{MIN_BASKETS_PER_ITEMSET / n:.3g}"))]:  # few baskets: the floor itself
        row = {"min_support": s, "min_count": min_support_count(s, n), "rules": None}
        enc = integer_encode(b, s)
        if len(enc.items) == 0:  # no item that frequent yet: go lower
            rows.append({**row, "rules": 0, "status": "mined"})
            continue
        status = _guard_status(enc, max_len, eng, max_itemsets, limit)
        if status is None:
            try:
                res = mine_rules(b, s, min_confidence, max_len, engine=eng, max_itemsets=max_itemsets,
                                 max_memory_gb=max_memory_gb, spark_master=spark_master)
            except AnalysisError as exc:
                status = "over the itemset guard" if "Too many" in str(exc) else "over the memory guard"
        if status is not None:
            rows.append({**row, "status": status})
            break
        rows.append({**row, "rules": len(res.rules), "status": "mined"})
        best = (s, len(res.rules))
        if len(res.rules) >= target_rules:
            break
    tried = pd.DataFrame(rows, columns=["min_support", "min_count", "rules", "status"])
    if best is None:  # no value had a frequent item, or the guards refused the first one that had
        raise AnalysisError(
            f"Cannot choose a min_support for {n:,} baskets: no value tried has a frequent item within the guards "
            f"({', '.join(f'{r.min_support:g}: {_status_text(r)}' for r in tried.itertuples())}). "
            f"Pass min_support and max_len explicitly, or raise max_memory_gb / max_itemsets.")
    return SupportChoice(min_support=best[0], reason=_reason(best, tried, n, target_rules, min_confidence),
                         tried=tried)


def _status_text(r: tuple) -> str:
    """'no frequent item' or the guard that refused a tried value."""
    return "no frequent item" if r.status == "mined" else r.status


def _reason(best: tuple[float, int], tried: pd.DataFrame, n: int, target: int, min_confidence: float) -> str:
    """One sentence: what was chosen and why."""
    s, k = best
    stop = tried.iloc[-1]
    if k >= target:
        why = f"the highest value tried that gives at least {target} rules"
    elif stop["status"] in ("over the memory guard", "over the itemset guard"):
        why = (f"the lowest value that fits: min_support={stop['min_support']:g} would be {stop['status']}, "
               f"so fewer than {target} rules are possible")
    else:
        why = (f"the lowest value that keeps every itemset on at least {MIN_BASKETS_PER_ITEMSET} baskets; "
               f"fewer than {target} rules reach this confidence")
    return (f"min_support was not given, so {s:g} was chosen ({min_support_count(s, n):,} of {n:,} baskets; "
            f"{k:,} rules at confidence ≥ {min_confidence:g}): {why}. Pass min_support to override.")
