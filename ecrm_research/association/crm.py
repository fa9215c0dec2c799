"""Using the rules in eCRM: cross-sell tables (ranked by expected extra baskets, variants of one product set
aside), a holdout check on a later period, export, and the text that states their counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from ..exceptions import AnalysisError, ParameterError
from ..prep.baskets import check_long_baskets
from .encoding import basket_codes, sparse_matrix
from .rules import fisher_test
from .variants import flag_variants

#: The columns of :func:`cross_sell_table`, in order (``value`` and ``expected_value`` follow
#: when ``item_value`` is given).
CROSS_SELL_COLUMNS = ["product", "rank", "recommend", "extra_baskets", "confidence", "added_chance", "lift",
                      "support", "count", "p_adjusted", "same_product_family", "variant_of"]
#: Why a rule is not in the cross-sell table, in the order the screens are applied.
CROSS_SELL_SCREENS = ["not one product ⇒ one item", "lift not above min_lift", "not significant",
                      "variants of one product", "beyond top_n for its product"]
_VARIANT_MODES = ("exclude", "flag")


def cross_sell_table(rules: pd.DataFrame, top_n: int = 5, *, min_lift: float = 1.0, alpha: float | None = 0.05,
                     variants: str = "exclude", codes: Mapping | None = None, descriptions: Mapping | None = None,
                     item_value: Mapping | None = None, single_antecedent: bool = True) -> pd.DataFrame:
    """For each product, the top-N items to recommend with it, ranked by expected extra baskets.

    A rule A ⇒ B enters the table when (in this order; :func:`cross_sell_screening` counts the
    rules each screen sets aside) its antecedent is one product (``single_antecedent``) and its
    consequent one item, its lift is above ``min_lift``, it is significant (``p_adjusted <
    alpha``), and B is not a variant of A (:func:`~ecrm_research.association.variants.variant_family`:
    the same product in another colour or size, or the same stock-code stem). Each product then
    keeps its ``top_n`` best recommendations.

    Parameters
    ----------
    rules : DataFrame
        Rules from :func:`association_rules` (``antecedents``, ``consequents``, ``confidence``,
        ``lift``, ``support``, ``count``; ``p_adjusted`` from :func:`fisher_test`).
    top_n : int
        Recommendations per product.
    min_lift : float
        Only rules with lift above this (default 1: positive association).
    alpha : float or None
        Significance level: keep rules with ``p_adjusted < alpha``. When ``rules`` have no
        ``p_adjusted``, one-sided Fisher tests with Holm's correction over all the rules given are
        computed (:func:`fisher_test`; needs ``rules.attrs['n_transactions']``, which
        :func:`mine_rules` sets). None: no significance filter.
    variants : {'exclude', 'flag'}
        ``'exclude'`` (default): rules that pair two variants of one product are set aside.
        ``'flag'``: they stay, with ``same_product_family`` True. Rules that already carry
        ``same_product_family`` (from :func:`flag_variants`) are used as flagged when neither
        ``codes`` nor ``descriptions`` is given.
    codes, descriptions : mapping, optional
        Item label → stock code / description, for the variant check (see :func:`flag_variants`).
    item_value : mapping, optional
        Item → value of one extra basket with it (a margin or a price). Adds ``value`` and
        ``expected_value = extra_baskets × value`` and ranks by ``expected_value`` (an item
        without a value ranks last).
    single_antecedent : bool
        True (default): one row per *product* — rules whose antecedent is that one item
        (what a product page or a basket with that item can show). False: the antecedent
        may be an itemset (``"a|b"``).

    Returns
    -------
    DataFrame
        :data:`CROSS_SELL_COLUMNS` (then ``value, expected_value`` with ``item_value``): one row
        per recommendation. Products are ordered by the value of their best recommendation
        (highest first), recommendations within a product by rank.

    Notes
    -----
    With n baskets, count(A) the baskets holding A and s(B) the share holding B, a rule's
    **expected extra baskets** are the baskets with A that hold B beyond what B's base rate
    predicts:

        extra_baskets = count(A) · (confidence − s(B)) = count(A∪B) · (1 − 1/lift) = n · leverage

    where ``added_chance = confidence − s(B)`` is how much more likely B is in a basket with A. It
    is the number of sales of B that the association, not B's popularity, accounts for: a popular
    item with confidence 0.4 and base rate 0.35 adds less than a rarer one with confidence 0.3
    and base rate 0.05. Within one product count(A) is fixed, so the order is that of the added
    chance. Ties (equal to 9 decimals) are broken by confidence, then lift (both higher first),
    then the recommended item's name, so the table is the same whatever the order of ``rules``.
    """
    screened = _screen_cross_sell(rules, top_n, min_lift=min_lift, alpha=alpha, variants=variants, codes=codes,
                                  descriptions=descriptions, item_value=item_value,
                                  single_antecedent=single_antecedent)
    cols = CROSS_SELL_COLUMNS + (["value", "expected_value"] if item_value is not None else [])
    out = screened[screened["set_aside"] == ""]
    if len(out) == 0:
        return pd.DataFrame({c: pd.Series(dtype=screened[c].dtype if c in screened else object) for c in cols})
    return out[cols].reset_index(drop=True)


def cross_sell_screening(rules: pd.DataFrame, top_n: int = 5, *, min_lift: float = 1.0,
                         alpha: float | None = 0.05, variants: str = "exclude", codes: Mapping | None = None,
                         descriptions: Mapping | None = None, single_antecedent: bool = True) -> pd.DataFrame:
    """How many rules each screen of :func:`cross_sell_table` set aside (same parameters).

    Returns
    -------
    DataFrame
        ``screen, rules``: the rules given, then one row per screen of
        :data:`CROSS_SELL_SCREENS` (each rule is counted at the first screen it fails, so the
        rows add up), then the recommendations kept. With ``variants='flag'`` the variant row
        counts the variant pairs that were kept (flagged) and is not subtracted.
    """
    screened = _screen_cross_sell(rules, top_n, min_lift=min_lift, alpha=alpha, variants=variants, codes=codes,
                                  descriptions=descriptions, single_antecedent=single_antecedent)
    counts = screened["set_aside"].value_counts()
    rows = [("rules", len(rules))]
    for screen in CROSS_SELL_SCREENS:
        if screen == "variants of one product" and variants == "flag":
            kept = screened["set_aside"] == ""
            rows.append(("variants of one product (kept, flagged)",
                         int((kept & screened["same_product_family"]).sum())))
        else:
            rows.append((screen, int(counts.get(screen, 0))))
    rows.append(("recommended", int(counts.get("", 0))))
    return pd.DataFrame(rows, columns=["screen", "rules"])


def _check_cross_sell_params(rules: pd.DataFrame, top_n: int, alpha: float | None, variants: str) -> None:
    """Clear errors for the parameters of :func:`cross_sell_table`."""
    if variants not in _VARIANT_MODES:
        raise ParameterError(f"variants={variants!r}; use 'exclude' (set variant pairs aside) or 'flag' (keep "
                             "them, flagged).", allowed=list(_VARIANT_MODES))
    if int(top_n) < 1:
        raise ParameterError(f"top_n={top_n!r} must be at least 1 (recommendations per product).")
    if alpha is not None and not (0 < float(alpha) <= 1):
        raise ParameterError(f"alpha={alpha!r} must be in (0, 1] (e.g. 0.05), or None for no significance filter.")
    missing = [c for c in ("antecedents", "consequents", "confidence", "lift", "support", "count")
               if c not in rules.columns]
    if missing:
        raise ParameterError(f"cross_sell_table: the rules lack {missing}; pass the rules of mine_rules / "
                             "association_rules.")


def _screen_cross_sell(rules: pd.DataFrame, top_n: int, *, min_lift: float, alpha: float | None, variants: str,
                       codes: Mapping | None, descriptions: Mapping | None, item_value: Mapping | None = None,
                       single_antecedent: bool = True) -> pd.DataFrame:
    """All rules, ranked, with the first screen each fails in ``set_aside`` ('' = recommended)."""
    _check_cross_sell_params(rules, top_n, alpha, variants)
    r = rules
    if alpha is not None and "p_adjusted" not in r.columns:
        if int(r.attrs.get("n_transactions", 0)) <= 0 and len(r):
            raise ParameterError("cross_sell_table: the rules have no p_adjusted and no attrs['n_transactions'] to "
                                 "compute it; mine with mine_rules(..., fisher=True), or pass alpha=None.")
        r = fisher_test(r, method="holm")
    if "same_product_family" not in r.columns or codes is not None or descriptions is not None:
        r = flag_variants(r, codes=codes, descriptions=descriptions)
    n_ante = r["antecedents"].map(len).to_numpy()
    one = (r["consequents"].map(len).to_numpy() == 1) & ((n_ante == 1) if single_antecedent else (n_ante >= 1))
    lift = r["lift"].to_numpy(dtype=float)
    sig = (r["p_adjusted"].to_numpy(dtype=float) < float(alpha)) if alpha is not None else np.ones(len(r), bool)
    fam = r["same_product_family"].to_numpy(dtype=bool)
    reason = np.select([~one, ~(lift > min_lift), ~sig, fam & (variants == "exclude")], CROSS_SELL_SCREENS[:4], "")
    out = pd.DataFrame({
        "product": r["antecedents"].map(lambda s: "|".join(sorted(map(str, s)))).to_numpy(),
        "recommend": r["consequents"].map(lambda s: "|".join(sorted(map(str, s)))).to_numpy(),
        "confidence": r["confidence"].to_numpy(dtype=float), "lift": lift,
        "support": r["support"].to_numpy(dtype=float), "count": r["count"].to_numpy(),
        "p_adjusted": r["p_adjusted"].to_numpy(dtype=float) if "p_adjusted" in r.columns else np.nan,
        "same_product_family": fam,
        "variant_of": r["variant_of"].to_numpy(dtype=object) if "variant_of" in r.columns else "",
        "set_aside": reason})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["added_chance"] = out["confidence"] * (1 - 1 / out["lift"])
        out["extra_baskets"] = out["count"] * (1 - 1 / out["lift"])
    key = "extra_baskets"
    if item_value is not None:
        out["value"] = out["recommend"].map(lambda i: item_value.get(i, np.nan)).astype(float)
        out["expected_value"] = out["extra_baskets"] * out["value"]
        key = "expected_value"
    return _rank_cross_sell(out, key, int(top_n))


def _rank_cross_sell(out: pd.DataFrame, key: str, top_n: int) -> pd.DataFrame:
    """Rank the kept rules within each product and order the products by their best; mark the rest."""
    # rounded: values equal up to floating-point noise (10 vs 10.000000000000002) are a tie
    out["_key"] = out[key].round(9)
    out = out.sort_values(["_key", "confidence", "lift", "product", "recommend"],
                          ascending=[False, False, False, True, True], na_position="last", kind="stable")
    out = out.drop(columns="_key")
    kept = out["set_aside"] == ""
    out["rank"] = 0
    out.loc[kept, "rank"] = out[kept].groupby("product", sort=False).cumcount().to_numpy() + 1
    out.loc[kept & (out["rank"] > top_n), "set_aside"] = CROSS_SELL_SCREENS[4]
    # products in the order of their best recommendation (the sort above met it first)
    order = {p: i for i, p in enumerate(pd.unique(out.loc[out["set_aside"] == "", "product"]))}
    out["_product_order"] = out["product"].map(order).fillna(len(order))
    out["_set_aside"] = out["set_aside"] != ""
    out = out.sort_values(["_product_order", "_set_aside", "rank"], kind="stable")
    out = out.drop(columns=["_product_order", "_set_aside"])
    return out.reset_index(drop=True)


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
