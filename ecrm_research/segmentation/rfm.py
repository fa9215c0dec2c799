"""RFM scores (equal-count quintiles of recency, frequency, monetary) and the classic named RFM segments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError

#: Fewest customers segmentation accepts: one per RFM quintile (below five, equal-count quintiles
#: cannot exist and the clustering has nothing to separate).
MIN_CUSTOMERS = 5


def require_customers(rfm: pd.DataFrame, minimum: int = MIN_CUSTOMERS, *, source: str | None = None,
                      as_of: object = None) -> None:
    """Stop with a clear message when too few customers have completed orders to segment.

    Parameters
    ----------
    rfm : DataFrame
        Output of :func:`~ecrm_research.prep.customers.rfm_table` (one row per customer with a
        completed order before the as-of date).
    minimum : int, default :data:`MIN_CUSTOMERS`
        Fewest customers accepted (5: one per quintile).
    source : str, optional
        The data's name (file or folder), echoed in the message.
    as_of : date, optional
        The as-of date, echoed in the message.

    Raises
    ------
    AnalysisError
        When ``len(rfm) < minimum``: RFM quintiles and clustering are meaningless below that.
    """
    n = len(rfm)
    if n >= minimum:
        return
    where = f" in {source}" if source else ""
    before = f" before {pd.Timestamp(as_of).date()}" if as_of is not None else ""
    orders = f" ({int(rfm['frequency'].sum()):,} completed order(s))" if "frequency" in rfm and n else ""
    raise AnalysisError(
        f"Segmentation needs at least {minimum} customers with completed orders{before}; the data{where} "
        f"have only {n:,} customer(s){orders}. RFM quintiles (one fifth of the customers each) and "
        f"behavioural clustering are "
        f"meaningless below that. Use data covering more customers (a longer period, all shops or channels), "
        f"or check that cleaning did not remove them (the quality report's reconciliation and quarantine"
        f"{'; as_of may be too early' if as_of is not None else ''}).")


def _quantile_score(values: pd.Series, bins: int = 5, *, ascending: bool = True) -> pd.Series:
    """Scores 1..bins by equal-count bins of rank(method='first') (deterministic ties)."""
    ranks = values.rank(method="first", ascending=ascending)
    n = len(values)
    if n >= bins:
        scores = pd.qcut(ranks, bins, labels=False) + 1
    else:
        scores = np.ceil(ranks * bins / max(n, 1))
    return pd.Series(scores, index=values.index).astype("int64")


#: The classic named RFM segments as a grid on the recency and frequency scores (the widely
#: used R×F map), with *Lost* carved out of *Hibernating* by monetary. Rules are applied top to
#: bottom; the first that matches wins, and together they cover all 125 score combinations.
RFM_SEGMENT_RULES = pd.DataFrame([
    ("Champions", "5", "4-5", "any", "bought very recently, buy often"),
    ("Loyal", "3-4", "4-5", "any", "buy often, fairly recently"),
    ("Potential loyalists", "4-5", "2-3", "any", "recent, buying a few times"),
    ("New customers", "5", "1", "any", "first purchase very recently"),
    ("Promising", "4", "1", "any", "recent first purchase"),
    ("Need attention", "3", "3", "any", "middle of the road"),
    ("About to sleep", "3", "1-2", "any", "fading, bought rarely"),
    ("Can't lose them", "1-2", "5", "any", "used to buy most often, gone quiet"),
    ("At risk", "1-2", "3-4", "any", "bought often, long ago"),
    ("Lost", "1", "1-2", "1-2", "long gone, bought rarely and little"),
    ("Hibernating", "1-2", "1-2", "any", "long ago, rarely (not Lost)"),
], columns=["segment", "r_score", "f_score", "m_score", "description"])


def _in_range(scores: pd.Series, rule: str) -> pd.Series:
    if rule == "any":
        return pd.Series(True, index=scores.index)
    lo, _, hi = rule.partition("-")
    return scores.between(int(lo), int(hi or lo))


def rfm_segment(scored: pd.DataFrame) -> pd.Series:
    """Classic named RFM segment for each row of ``r_score, f_score, m_score`` (see
    :data:`RFM_SEGMENT_RULES`)."""
    seg = pd.Series(pd.NA, index=scored.index, dtype="object")
    for rule in RFM_SEGMENT_RULES.itertuples(index=False):
        hit = (seg.isna() & _in_range(scored["r_score"], rule.r_score)
               & _in_range(scored["f_score"], rule.f_score) & _in_range(scored["m_score"], rule.m_score))
        seg[hit] = rule.segment
    order = list(RFM_SEGMENT_RULES["segment"])
    return pd.Series(pd.Categorical(seg, categories=order), index=scored.index, name="rfm_segment")


def rfm_scores(rfm: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Add quintile scores and the named RFM segment.

    Parameters
    ----------
    rfm : DataFrame
        Output of :func:`~ecrm_research.prep.customers.rfm_table`.
    bins : int, default 5
        Number of equal-count score bins (5 = quintiles). The named segments need 5.

    Returns
    -------
    DataFrame
        ``rfm`` with ``r_score, f_score, m_score`` (1 = worst, 5 = best; recent = high r_score),
        ``rfm_score`` (e.g. ``"545"``) and ``rfm_segment``.

    Notes
    -----
    Each score is ``qcut(rank(x, method='first'), bins)``: ranks break ties in row order
    (``rfm_table`` sorts by ``customer_id``), so every bin has the same size and the result is
    deterministic — the usual practice, because frequency has heavy ties (many one-order
    customers) that would otherwise make quantile edges collapse.
    """
    out = rfm.copy()
    out["r_score"] = _quantile_score(-out["recency_days"].astype(float), bins)
    out["f_score"] = _quantile_score(out["frequency"].astype(float), bins)
    out["m_score"] = _quantile_score(out["monetary"].astype(float), bins)
    out["rfm_score"] = (out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str))
    if bins == 5:
        out["rfm_segment"] = rfm_segment(out)
    out.attrs.update(rfm.attrs)
    return out
