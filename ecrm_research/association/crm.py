"""Using the rules in eCRM: cross-sell tables, a holdout check on a later period, export."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from ..exceptions import AnalysisError, ParameterError
from ..prep.baskets import check_long_baskets
from .encoding import basket_codes, sparse_matrix


def cross_sell_table(rules: pd.DataFrame, top_n: int = 5, *, min_lift: float = 1.0,
                     single_antecedent: bool = True) -> pd.DataFrame:
    """For each product, the top-N items to recommend with it.

    Parameters
    ----------
    rules : DataFrame
        Rules from :func:`association_rules` (one-item consequents).
    top_n : int
        Recommendations per product.
    min_lift : float
        Only rules with lift above this (default 1: positive association).
    single_antecedent : bool
        True (default): one row per *product* — rules whose antecedent is that one item
        (what a product page or a basket with that item can show). False: the antecedent
        may be an itemset (``"a|b"``).

    Returns
    -------
    DataFrame
        ``product, rank, recommend, confidence, lift, support, count`` — ranked by confidence,
        then lift, within each product.
    """
    cols = ["product", "rank", "recommend", "confidence", "lift", "support", "count"]
    r = rules[(rules["lift"] > min_lift) & (rules["consequents"].map(len) == 1)]
    if single_antecedent:
        r = r[r["antecedents"].map(len) == 1]
    if len(r) == 0:
        return pd.DataFrame(columns=cols)
    r = r.assign(product=r["antecedents"].map(lambda s: "|".join(sorted(map(str, s)))),
                 recommend=r["consequents"].map(lambda s: next(iter(s))))
    r = r.sort_values(["product", "confidence", "lift", "recommend"], ascending=[True, False, False, True],
                      kind="stable")
    r = r.groupby("product", sort=False).head(int(top_n))
    r["rank"] = r.groupby("product", sort=False).cumcount() + 1
    return r[cols].reset_index(drop=True)


def split_baskets_by_time(baskets: pd.DataFrame, holdout_fraction: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split baskets in time: the earliest ``1 - holdout_fraction`` for mining, the latest for checking.

    Parameters
    ----------
    baskets : DataFrame
        Long basket table with ``ordered_at``.
    holdout_fraction : float
        Share of baskets (by time) in the later period, in (0, 1).

    Returns
    -------
    (train, test) : tuple of DataFrame
        Baskets before and from the cut-off time (``attrs['cutoff']``); a basket is never split.
    """
    if "ordered_at" not in baskets.columns or baskets["ordered_at"].isna().all():
        raise AnalysisError("The holdout check needs basket timestamps (ordered_at); basket files have none. "
                            "Use order data (canonical or lines) for a holdout check.")
    if not (0 < float(holdout_fraction) < 1):
        raise ParameterError(f"holdout_fraction={holdout_fraction!r} must be between 0 and 1 (e.g. 0.3).")
    # baskets by first order time (ties: in the order they first appear), on integer codes
    codes, n_b, _ = basket_codes(baskets["basket_id"], False)
    valid = codes >= 0
    ts = baskets["ordered_at"].reset_index(drop=True)
    t = (ts if valid.all() else ts[valid]).groupby(codes[valid]).min().sort_values(kind="stable")
    del ts
    n_train = int(round(len(t) * (1 - float(holdout_fraction))))
    if n_train < 1 or n_train >= len(t):
        raise AnalysisError(f"Cannot split {len(t):,} baskets with holdout_fraction={holdout_fraction}: one side "
                            "would be empty.")
    cutoff = t.iloc[n_train]
    is_train = np.zeros(n_b + 1, dtype=bool)  # the last slot: rows without a basket id (code -1)
    is_train[t.index.to_numpy()[:n_train]] = True
    mask = is_train[codes]
    del codes, valid, t
    train, test = baskets.loc[mask], baskets.loc[~mask]  # new frames: renumbered in place, not copied again
    train.index, test.index = pd.RangeIndex(len(train)), pd.RangeIndex(len(test))
    train.attrs["cutoff"] = test.attrs["cutoff"] = cutoff
    return train, test


def measure_rules(rules: pd.DataFrame, baskets: pd.DataFrame | Sequence[Iterable[str]],
                  chunk: int = 2000) -> pd.DataFrame:
    """Re-measure given rules on other baskets.

    Returns
    -------
    DataFrame
        ``antecedents, consequents, count, antecedent_count, consequent_count, support,
        confidence, lift`` on ``baskets`` (confidence/lift are NaN when the antecedent or
        consequent never occurs there).
    """
    b = check_long_baskets(baskets)
    n = int(b["basket_id"].nunique())
    ants = rules["antecedents"].tolist()
    cons = rules["consequents"].tolist()
    # only the rows of the rules' items are encoded: a basket without any of them counts for no set
    used = set().union(*ants, *cons) if len(ants) else set()
    X, items, _, _ = sparse_matrix(b.loc[b["item"].isin(used).to_numpy(dtype=bool), ["basket_id", "item"]], 1)
    col = {it: j for j, it in enumerate(items)}
    X = X.astype(np.int32).tocsc()
    c_ac = _count_sets([frozenset(a) | frozenset(c) for a, c in zip(ants, cons)], X, col, n, chunk)
    c_a = _count_sets([frozenset(a) for a in ants], X, col, n, chunk)
    c_c = _count_sets([frozenset(c) for c in cons], X, col, n, chunk)
    with np.errstate(divide="ignore", invalid="ignore"):
        supp = c_ac / n
        conf = np.where(c_a > 0, c_ac / np.maximum(c_a, 1), np.nan)
        lift = np.where(c_c > 0, conf / (c_c / n), np.nan)
    return pd.DataFrame({"antecedents": ants, "consequents": cons, "count": c_ac, "antecedent_count": c_a,
                         "consequent_count": c_c, "support": supp, "confidence": conf, "lift": lift},
                        index=rules.index)


def _count_sets(sets: list[frozenset], X: sparse.csc_matrix, col: dict, n: int, chunk: int) -> np.ndarray:
    """Number of baskets (rows of ``X``) holding each itemset; 0 for a set with an item not in ``col``.

    Sets are handled ``chunk`` at a time as an items x sets indicator matrix R: a basket holds a
    set when its row of ``X @ R`` equals the set's size. The empty set is in all ``n`` baskets.
    """
    m = X.shape[1]
    out = np.zeros(len(sets), dtype=np.int64)
    for start in range(0, len(sets), chunk):
        part = sets[start:start + chunk]
        rows, cols, lens, missing = [], [], [], np.zeros(len(part), dtype=bool)
        for r, s in enumerate(part):
            idx = [col.get(i) for i in s]
            if any(j is None for j in idx):
                missing[r] = True
                idx = [j for j in idx if j is not None]
            rows.extend([r] * len(idx))
            cols.extend(idx)
            lens.append(len(s))
        R = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (cols, rows)), shape=(m, len(part)))
        hits = (X @ R).tocsc()
        lens_a = np.asarray(lens)
        for r in range(len(part)):
            if missing[r]:
                continue
            colvals = hits.data[hits.indptr[r]:hits.indptr[r + 1]]
            out[start + r] = int((colvals == lens_a[r]).sum()) if lens_a[r] > 0 else n
    return out


def holdout_check(rules: pd.DataFrame, test_baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """Do rules mined on an earlier period hold on a later one?

    Parameters
    ----------
    rules : DataFrame
        Rules mined on the earlier baskets.
    test_baskets : DataFrame or list of lists
        The later baskets.

    Returns
    -------
    DataFrame
        ``antecedents, consequents, support, confidence, lift`` (mined) and ``holdout_support,
        holdout_confidence, holdout_lift, holdout_count``, ``lift_ratio`` (holdout/mined) and
        ``holds`` (holdout lift > 1), in the order of ``rules``.
    """
    m = measure_rules(rules, test_baskets)
    out = rules[["antecedents", "consequents", "support", "confidence", "lift"]].copy()
    out["holdout_support"] = m["support"].to_numpy()
    out["holdout_confidence"] = m["confidence"].to_numpy()
    out["holdout_lift"] = m["lift"].to_numpy()
    out["holdout_count"] = m["count"].to_numpy()
    out["lift_ratio"] = out["holdout_lift"] / out["lift"]
    out["holds"] = (out["holdout_lift"] > 1).fillna(False).astype(bool)
    return out.reset_index(drop=True)


def rules_for_export(rules: pd.DataFrame) -> pd.DataFrame:
    """Rules with itemsets as sorted lists (Parquet/CSV friendly), :data:`RULE_COLUMNS` first."""
    out = rules.copy()
    for c in ("antecedents", "consequents"):
        if c in out.columns:
            out[c] = out[c].map(lambda s: sorted(map(str, s)))
    if "itemsets" in out.columns:
        out["itemsets"] = out["itemsets"].map(lambda s: sorted(map(str, s)))
    return out
