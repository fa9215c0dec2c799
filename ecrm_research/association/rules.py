"""Association rules from itemset counts, their interest measures, redundancy and Fisher tests."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from mlxtend import frequent_patterns as mlxtend_patterns
from scipy.stats import hypergeom
from statsmodels.stats.multitest import multipletests

from ..exceptions import ParameterError
from ..multiple_testing import holm

#: The leading columns of every rules table, in this order.
RULE_COLUMNS = ["antecedents", "consequents", "support", "confidence", "lift", "leverage",
                "conviction", "zhangs_metric", "count"]
#: Tolerance of the inclusive thresholds (confidence, lift, redundancy) on ratios of counts.
_EPS = 1e-12


def _add_metrics(df: pd.DataFrame, n: int) -> pd.DataFrame:
    """Fill the interest measures from integer counts ``count, antecedent_count, consequent_count``."""
    c_ac = df["count"].to_numpy(dtype=float)
    c_a = df["antecedent_count"].to_numpy(dtype=float)
    c_c = df["consequent_count"].to_numpy(dtype=float)
    s_ac, s_a, s_c = c_ac / n, c_a / n, c_c / n
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(c_a > 0, c_ac / c_a, np.nan)
        lift = conf / s_c
        lev = s_ac - s_a * s_c
        conv = np.where(conf >= 1 - _EPS, np.inf, (1 - s_c) / (1 - conf))
        denom = np.maximum(s_ac * (1 - s_a), s_a * (s_c - s_ac))
        zhang = np.where(denom > 0, lev / denom, np.nan)
    df["support"] = s_ac
    df["confidence"] = conf
    df["lift"] = lift
    df["leverage"] = lev
    df["conviction"] = conv
    df["zhangs_metric"] = zhang
    df["antecedent_support"] = s_a
    df["consequent_support"] = s_c
    return df


def association_rules(itemsets: pd.DataFrame, n_transactions: int | None = None, min_confidence: float = 0.8, *,
                      min_lift: float | None = None, semantics: str = "arules") -> pd.DataFrame:
    """Association rules X ⇒ Y from frequent itemsets, with their interest measures.

    Parameters
    ----------
    itemsets : DataFrame
        Output of :func:`frequent_itemsets` (``itemsets``, ``support``, ``count``).
    n_transactions : int, optional
        Number of baskets (default: ``itemsets.attrs['n_transactions']``).
    min_confidence : float
        Keep rules with ``confidence >= min_confidence`` (inclusive).
    min_lift : float, optional
        Also require ``lift >= min_lift``.
    semantics : {'arules', 'mlxtend'}
        ``'arules'`` (default): one-item consequents, as R's ``apriori``. ``'mlxtend'``:
        consequents of any size, via :func:`mlxtend.frequent_patterns.association_rules`.

    Returns
    -------
    DataFrame
        :data:`RULE_COLUMNS` (``antecedents``, ``consequents`` as frozensets, ``support``,
        ``confidence``, ``lift``, ``leverage``, ``conviction``, ``zhangs_metric``, ``count``)
        then ``antecedent_support``, ``consequent_support``, ``antecedent_count``,
        ``consequent_count``, ``length`` (items in the rule). Sorted by decreasing lift, then
        confidence, then support. Empty (with these columns) when no rule passes.

    Notes
    -----
    With s(·) the share of baskets containing an itemset, and n baskets:

    * support(X⇒Y) = s(X∪Y); count = n·s(X∪Y)
    * confidence = s(X∪Y) / s(X)
    * lift = confidence / s(Y)  (1 = independence)
    * leverage = s(X∪Y) − s(X)·s(Y)
    * conviction = (1 − s(Y)) / (1 − confidence)  (∞ when confidence = 1)
    * Zhang's metric = leverage / max(s(X∪Y)(1 − s(X)), s(X)(s(Y) − s(X∪Y))), in [−1, 1]

    All measures are computed from integer counts, so confidence thresholds are exact.
    """
    if semantics not in ("arules", "mlxtend"):
        raise ParameterError(f"semantics={semantics!r}; use 'arules' or 'mlxtend'.", allowed=["arules", "mlxtend"])
    if not (0 <= float(min_confidence) <= 1):
        raise ParameterError(f"min_confidence={min_confidence!r} must be in [0, 1].")
    n = int(n_transactions if n_transactions is not None else itemsets.attrs.get("n_transactions", 0))
    if n <= 0:
        raise ParameterError("association_rules: pass n_transactions (the number of baskets).")
    counts: dict[frozenset, int] = dict(zip(itemsets["itemsets"], itemsets["count"].astype("int64")))
    if semantics == "arules":
        df = _single_consequent_rules(counts, float(min_confidence))
    else:
        df = _mlxtend_rules(itemsets, counts, n, float(min_confidence))
    df = _add_metrics(df, n)
    if min_lift is not None:
        df = df[df["lift"] >= float(min_lift) - _EPS]
    df["length"] = (df["antecedents"].map(len) + df["consequents"].map(len)).astype("int64")
    cols = RULE_COLUMNS + ["antecedent_support", "consequent_support", "antecedent_count", "consequent_count", "length"]
    df = df[cols]
    key = df["antecedents"].map(_set_key) + " => " + df["consequents"].map(_set_key)
    df = df.assign(_key=key).sort_values(["lift", "confidence", "support", "_key"],
                                         ascending=[False, False, False, True], kind="stable")
    df = df.drop(columns="_key").reset_index(drop=True)
    df.attrs["n_transactions"] = n
    return df


def _single_consequent_rules(counts: dict[frozenset, int], min_confidence: float) -> pd.DataFrame:
    """arules' rules: every X ⇒ {y} from a frequent itemset X ∪ {y} with confidence >= min_confidence.

    Returns the rules' itemsets and counts (``antecedents, consequents, count, antecedent_count,
    consequent_count``); the measures are added by :func:`_add_metrics`.
    """
    ants: list[frozenset] = []
    cons: list[frozenset] = []
    c_ac: list[int] = []
    c_a: list[int] = []
    c_c: list[int] = []
    thr = min_confidence - _EPS
    for s, c in counts.items():
        if len(s) < 2:
            continue
        for y in s:
            a = s - {y}
            ca = counts[a]
            if c / ca >= thr:
                ants.append(a)
                cons.append(frozenset((y,)))
                c_ac.append(c)
                c_a.append(ca)
                c_c.append(counts[frozenset((y,))])
    return pd.DataFrame({"antecedents": pd.Series(ants, dtype=object), "consequents": pd.Series(cons, dtype=object),
                         "count": np.asarray(c_ac, dtype="int64"), "antecedent_count": np.asarray(c_a, dtype="int64"),
                         "consequent_count": np.asarray(c_c, dtype="int64")})


def _mlxtend_rules(itemsets: pd.DataFrame, counts: dict[frozenset, int], n: int,
                   min_confidence: float) -> pd.DataFrame:
    """mlxtend's rules (consequents of any size), with the counts looked up in ``counts``.

    Returns the same columns as :func:`_single_consequent_rules`; confidence is re-checked on the
    integer counts so the threshold is exact.
    """
    if not any(len(s) >= 2 for s in counts):
        df = pd.DataFrame({"antecedents": pd.Series([], dtype=object), "consequents": pd.Series([], dtype=object),
                           "count": [], "antecedent_count": [], "consequent_count": []})
    else:
        raw = _mlxtend_association_rules(itemsets, n, min_confidence)
        df = pd.DataFrame({"antecedents": raw["antecedents"].to_numpy(),
                           "consequents": raw["consequents"].to_numpy()})
        df["count"] = [counts[a | c] for a, c in zip(df["antecedents"], df["consequents"])]
        df["antecedent_count"] = [counts[a] for a in df["antecedents"]]
        df["consequent_count"] = [counts[c] for c in df["consequents"]]
        df = df[df["count"] / df["antecedent_count"] >= min_confidence - _EPS]
    for c in ("count", "antecedent_count", "consequent_count"):
        df[c] = df[c].astype("int64")
    return df


def _set_key(s: Iterable) -> str:
    """Sort key of an itemset: ``{a, b}`` with the labels sorted as strings."""
    return "{" + ", ".join(sorted(map(str, s))) + "}"


def _mlxtend_association_rules(itemsets: pd.DataFrame, n_transactions: int, min_confidence: float) -> pd.DataFrame:
    """The single call site of mlxtend's ``association_rules``.

    mlxtend >= 0.23.2 needs ``num_itemsets`` (the number of transactions); older versions do
    not accept it. Thresholds are inclusive in every version.
    """
    kwargs: dict[str, Any] = {"metric": "confidence", "min_threshold": min_confidence}
    if "num_itemsets" in inspect.signature(mlxtend_patterns.association_rules).parameters:
        kwargs["num_itemsets"] = n_transactions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlxtend_patterns.association_rules(itemsets[["support", "itemsets"]], **kwargs)


def is_redundant(rules: pd.DataFrame, measure: str = "confidence") -> pd.Series:
    """Flag redundant rules, as arules' ``is.redundant`` (improvement <= 0).

    A rule X ⇒ Y is redundant when a more general rule in ``rules`` with the same consequent,
    X' ⇒ Y with X' a proper subset of X, has at least the same ``measure``:
    ∃ X' ⊂ X : conf(X' ⇒ Y) ≥ conf(X ⇒ Y).

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents``, ``consequents`` and ``measure``.
    measure : str
        Column compared (confidence by default, as Bayardo's improvement).

    Returns
    -------
    Series of bool
        Aligned with ``rules``.
    """
    ants = rules["antecedents"].tolist()
    cons = rules["consequents"].tolist()
    val = rules[measure].to_numpy(dtype=float)
    best: dict[tuple[frozenset, frozenset], float] = {}
    for a, c, v in zip(ants, cons, val):
        k = (frozenset(a), frozenset(c))
        best[k] = max(v, best.get(k, -np.inf))
    out = np.zeros(len(rules), dtype=bool)

    for i, (a, c, v) in enumerate(zip(ants, cons, val)):
        a = frozenset(a)
        c = frozenset(c)
        if len(a) <= 0:
            continue
        hit = False
        for r in range(len(a) - 1, -1, -1):
            for sub in combinations(a, r):
                w = best.get((frozenset(sub), c))
                if w is not None and w >= v - _EPS:
                    hit = True
                    break
            if hit:
                break
        out[i] = hit
    return pd.Series(out, index=rules.index, name="redundant")


def prune_redundant(rules: pd.DataFrame, measure: str = "confidence") -> pd.DataFrame:
    """``rules`` without the redundant ones (see :func:`is_redundant`)."""
    return rules[~is_redundant(rules, measure)].reset_index(drop=True)


def fisher_test(rules: pd.DataFrame, n_transactions: int | None = None, method: str = "holm") -> pd.DataFrame:
    """Add one-sided Fisher exact test p-values, as arules' ``interestMeasure(.., "fishersExactTest")``.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``count``, ``antecedent_count``, ``consequent_count`` (from
        :func:`association_rules`).
    n_transactions : int, optional
        Number of baskets (default ``rules.attrs['n_transactions']``).
    method : str
        Correction for multiple testing (any :func:`statsmodels.stats.multitest.multipletests`
        method: ``'holm'``, ``'bonferroni'``, ``'fdr_bh'`` ...; ``'none'`` to skip).

    Returns
    -------
    DataFrame
        ``rules`` with ``p_value`` and ``p_adjusted``.

    Notes
    -----
    H0: X and Y are independent; alternative: positive association. With f11 = count(X∪Y),
    f1x = count(X), fx1 = count(Y), p = P[F ≥ f11] for F hypergeometric(N=n, K=fx1, draws=f1x),
    the same as ``scipy.stats.fisher_exact(table, alternative='greater')``.
    """
    n = int(n_transactions if n_transactions is not None else rules.attrs.get("n_transactions", 0))
    out = rules.copy()
    if len(out) == 0:
        out["p_value"] = pd.Series(dtype=float)
        out["p_adjusted"] = pd.Series(dtype=float)
        return out
    f11 = out["count"].to_numpy()
    f1x = out["antecedent_count"].to_numpy()
    fx1 = out["consequent_count"].to_numpy()
    p = hypergeom.sf(f11 - 1, n, fx1, f1x)
    p = np.clip(p, 0.0, 1.0)
    out["p_value"] = p
    if method in (None, "none"):
        out["p_adjusted"] = p
    elif method == "holm":
        out["p_adjusted"] = holm(p)
    else:
        out["p_adjusted"] = multipletests(p, method=method)[1]
    out.attrs.update(rules.attrs)
    return out
