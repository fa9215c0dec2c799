"""Next best offer: association rules on customers' histories, with popularity fallbacks, and its backtest.

One basket per customer = the set of products they bought (completed orders, quantity > 0) before a date.
Rules ``A ⇒ c`` are mined on those baskets with :func:`ecrm_research.association.mine_rules` (one-sided Fisher
tests, Holm-adjusted; only rules with ``p_adjusted < alpha`` are used). For a customer who bought the set ``I``:

* candidates = consequents ``c ∉ I`` of rules with ``A ⊆ I``; score(c) = the best rule's confidence
  P(c | A) = support(A ∪ {c}) / support(A) (ties: higher lift, then the smaller item id);
* when fewer than ``k`` rule candidates exist, the slots are filled with the items most bought in the
  customer's segment (share of the segment's customers who bought them), then overall.

:func:`backtest_nbo` splits time at ``cutoff``: everything is learned before it and judged on the items
each customer buys in ``[cutoff, end)`` that they had not bought before.
hit_rate@k = share of evaluated customers with ≥ 1 of their top k among those new items;
recall@k = mean over customers of |top k ∩ new items| / |new items|; percentile bootstrap CIs over customers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .. import association as ar
from ..exceptions import AnalysisError, DataError, ParameterError
from ..infra.progress import Stages
from ..prep.customers import rfm_table
from ..prep.rules import COMPLETED, STATUS_CODES, status_codes
from ..segmentation import rfm_scores

__all__ = ["HISTORY_COLUMNS", "OFFER_COLUMNS", "BACKTEST_COLUMNS", "METHODS", "DEFAULT_TARGET_RULES",
           "customer_histories", "NextBestOffer", "backtest_nbo"]

HISTORY_COLUMNS = ["customer_id", "item", "ordered_at"]
OFFER_COLUMNS = ["customer_id", "next_best_offer", "next_best_offer_reason", "next_best_offers",
                 "next_best_offer_reasons", "offer_source", "offer_confidence"]
BACKTEST_COLUMNS = ["method", "k", "hit_rate", "hit_rate_ci_lower", "hit_rate_ci_upper", "recall",
                    "recall_ci_lower", "recall_ci_upper", "n_customers"]
#: backtest method -> the offer sources it uses, in order of priority
METHODS: dict[str, tuple[str, ...]] = {
    "rules (fallback segment popularity)": ("rule", "segment popularity", "popularity"),
    "popularity": ("popularity",),
    "segment popularity": ("segment popularity", "popularity"),
}
#: rules the automatic min_support aims for (association.choose_min_support's target_rules)
DEFAULT_TARGET_RULES = 1000


def _percent(x: float) -> str:
    """A share as a percentage that never rounds a share strictly between 0 and 1 to 0% or 100%."""
    txt = f"{x:.0%}"
    if 0 < x < 1 and txt == "0%":
        txt = f"{100 * x:.2g}%"
    elif 0 < x < 1 and txt == "100%":
        txt = f"{100 - float(f'{100 * (1 - x):.2g}'):g}%"
    return txt


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"{name}={k!r}: the number of offers per customer must be an integer ≥ 1 (e.g. 5).")
    return int(k)


def customer_histories(tables: Mapping[str, pd.DataFrame], *, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Products each customer bought: completed orders' lines with quantity > 0, ordered in ``[start, end)``.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Cleaned canonical tables with ``orders`` (order_id, customer_id, ordered_at, status) and
        ``order_items`` (order_id, product_id, quantity).
    start, end : date-like, optional
        Half-open period; None = unbounded.

    Returns
    -------
    DataFrame
        ``customer_id, item, ordered_at`` (item = product id as text), one row per order line,
        sorted by customer, time and item.
    """
    for name, cols in (("orders", ["order_id", "customer_id", "ordered_at"]),
                       ("order_items", ["order_id", "product_id", "quantity"])):
        if name not in tables:
            raise DataError(f"customer histories need the '{name}' table (order data: canonical or lines format); "
                            f"tables given: {sorted(tables)}.", source=name)
        missing = [c for c in cols if c not in tables[name].columns]
        if missing:
            raise DataError(f"table '{name}' lacks column(s) {missing} needed for customer histories.",
                            source=name, column=missing[0])
    orders = tables["orders"]
    if "status" in orders.columns:
        orders = orders[status_codes(orders["status"]) == STATUS_CODES[COMPLETED]]
    orders = orders[["order_id", "customer_id", "ordered_at"]]
    start_ts = None if start is None else pd.Timestamp(start)
    end_ts = None if end is None else pd.Timestamp(end)
    if start_ts is not None and end_ts is not None and not start_ts < end_ts:
        raise ParameterError(f"start={start_ts} must be before end={end_ts}.")
    if start_ts is not None:
        orders = orders[orders["ordered_at"] >= start_ts]
    if end_ts is not None:
        orders = orders[orders["ordered_at"] < end_ts]
    items = tables["order_items"]
    items = items.loc[items["quantity"] > 0, ["order_id", "product_id"]]
    out = items.merge(orders.dropna(subset=["customer_id"]), on="order_id", how="inner")
    out = out.dropna(subset=["product_id"])
    out = pd.DataFrame({"customer_id": out["customer_id"].astype(str).to_numpy(object),
                        "item": out["product_id"].astype(str).to_numpy(object),
                        "ordered_at": out["ordered_at"].to_numpy()})
    return out.sort_values(HISTORY_COLUMNS, kind="stable").reset_index(drop=True)


def _check_histories(histories: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(histories, pd.DataFrame) or not {"customer_id", "item"} <= set(histories.columns):
        raise ParameterError("histories must be a DataFrame with customer_id and item (see customer_histories).")
    h = histories[["customer_id", "item"]].dropna()
    if len(h) == 0:
        raise ParameterError("The purchase history is empty: no completed order line with quantity > 0 in the "
                             "period. Choose a period (or cut-off) that holds orders.")
    return pd.DataFrame({"customer_id": h["customer_id"].astype(str).to_numpy(object),
                         "item": h["item"].astype(str).to_numpy(object)}).drop_duplicates()


def _first_k(cust: np.ndarray, k: int) -> np.ndarray:
    """Mask of the first ``k`` rows of each customer in an array sorted by customer."""
    if len(cust) == 0:
        return np.zeros(0, bool)
    new = np.r_[True, cust[1:] != cust[:-1]]
    start = np.maximum.accumulate(np.where(new, np.arange(len(cust)), 0))
    return (np.arange(len(cust)) - start) < k


def _ranked_not_bought(cust: np.ndarray, group: np.ndarray, rankings: list[np.ndarray], n_bought: np.ndarray,
                       bought: np.ndarray, n_items: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``k`` items of ranking ``group[i]`` not bought by customer ``cust[i]``: (customer, item) arrays.

    Only the first ``k + n_bought`` entries of a ranking can hold them, so the candidate table has
    Σ (k + n_bought) rows, never customers × items.
    """
    if len(cust) == 0 or not rankings:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lens = np.array([len(r) for r in rankings])
    offsets = np.r_[0, np.cumsum(lens)[:-1]]
    flat = np.concatenate(rankings).astype(np.int64) if lens.sum() else np.zeros(0, np.int64)
    take = np.minimum(lens[group], k + n_bought[cust])
    total = int(take.sum())
    rows = np.repeat(np.arange(len(cust)), take)
    pos = np.arange(total) - np.repeat(np.cumsum(take) - take, take)
    c = cust[rows].astype(np.int64)
    it = flat[offsets[group][rows] + pos]
    keep = ~np.isin(c * n_items + it, bought)
    c, it = c[keep], it[keep]
    first = _first_k(c, k)
    return c[first], it[first]


class NextBestOffer:
    """Next best offers from association rules on customers' histories, with popularity fallbacks.

    Parameters
    ----------
    k : int
        Offers per customer.
    min_support : float, optional
        Share of customers a rule's itemset must reach; None = ``association.choose_min_support`` with
        ``target_rules`` (the highest round value giving at least that many rules; fast, see its docs).
    min_confidence, max_len : float, int
        As for :func:`ecrm_research.association.mine_rules` (``max_len`` counts antecedent + consequent).
    alpha : float or None
        Only rules with Holm-adjusted Fisher p-value < alpha are used (None: all rules).
    random_state : int
        Recorded for reproducibility (fitting and recommending are deterministic).
    target_rules : int
        See ``min_support``.
    p_adjust, engine : str
        Multiple-testing correction and mining engine (as in the association notebook).

    Attributes
    ----------
    rules_ : DataFrame  (antecedents, consequents, support, confidence, lift, count, p_adjusted)
    min_support_ : float or None; support_choice_ : SupportChoice or None
    popularity_ : DataFrame[item, n_customers, share]
    segment_popularity_ : DataFrame[segment, item, n_customers, share]
    n_customers_ : int; notes_ : list of str (why rules are missing, etc.)
    """

    def __init__(self, k: int = 5, min_support: float | None = None, min_confidence: float = 0.05,
                 max_len: int = 3, alpha: float | None = 0.05, random_state: int = 0, *,
                 target_rules: int = DEFAULT_TARGET_RULES, p_adjust: str = "holm", engine: str = "auto"):
        self.k = _check_k(k)
        if min_support is not None and not 0 < min_support <= 1:
            raise ParameterError(f"min_support={min_support!r} must be in (0, 1] or None (chosen for the data).")
        if not 0 < min_confidence <= 1:
            raise ParameterError(f"min_confidence={min_confidence!r} must be in (0, 1].")
        if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 2:
            raise ParameterError(f"max_len={max_len!r} must be an integer ≥ 2 (a rule has an antecedent and a "
                                 "consequent).")
        if alpha is not None and not 0 < alpha <= 1:
            raise ParameterError(f"alpha={alpha!r} must be in (0, 1] or None.")
        self.min_support, self.min_confidence, self.max_len, self.alpha = min_support, min_confidence, max_len, alpha
        self.random_state, self.target_rules, self.p_adjust, self.engine = random_state, target_rules, p_adjust, engine

    # ------------------------------------------------------------------ fit
    def fit(self, histories: pd.DataFrame, segments: pd.Series | None = None) -> NextBestOffer:
        """Mine the rules and the (segment) popularity on ``histories`` (see :func:`customer_histories`)."""
        h = _check_histories(histories)
        self.notes_: list[str] = []
        self.items_ = np.sort(h["item"].unique()).astype(object)
        self.n_customers_ = int(h["customer_id"].nunique())
        self._fit_rules(h)
        item_code = pd.Categorical(h["item"], categories=self.items_).codes
        counts = np.bincount(item_code, minlength=len(self.items_))
        pop = pd.DataFrame({"item": self.items_, "n_customers": counts, "share": counts / self.n_customers_})
        self.popularity_ = pop.sort_values(["n_customers", "item"], ascending=[False, True],
                                           kind="stable").reset_index(drop=True)
        self.segments_ = None if segments is None else self._segment_series(segments)
        self.segment_popularity_ = self._segment_popularity(h, self.segments_)
        return self

    def _fit_rules(self, h: pd.DataFrame) -> None:
        baskets = pd.DataFrame({"basket_id": h["customer_id"].to_numpy(), "item": h["item"].to_numpy()})
        self.support_choice_, self.min_support_ = None, self.min_support
        cols = ["antecedents", "consequents", "support", "confidence", "lift", "count", "p_adjusted"]
        rules = pd.DataFrame(columns=cols)
        try:
            if self.min_support_ is None:
                self.support_choice_ = ar.choose_min_support(baskets, self.min_confidence, self.max_len,
                                                             target_rules=self.target_rules, engine=self.engine)
                self.min_support_ = self.support_choice_.min_support
            res = ar.mine_rules(baskets, self.min_support_, self.min_confidence, self.max_len, fisher=True,
                                p_adjust=self.p_adjust, engine=self.engine)
            rules = res.rules
        except AnalysisError as exc:
            self.notes_.append(f"No rules: {exc} Offers come from segment and overall popularity.")
        if len(rules) and self.alpha is not None:
            n_all = len(rules)
            rules = rules[rules["p_adjusted"] < self.alpha]
            self.notes_.append(f"{len(rules):,} of {n_all:,} rules are significant at alpha = {self.alpha:g} "
                               f"({self.p_adjust}-adjusted Fisher tests) and are used.")
        rules = rules[cols].copy() if len(rules) else pd.DataFrame(columns=cols)
        cons = np.array([next(iter(c)) for c in rules["consequents"]], dtype=object)
        ante_txt = np.array([", ".join(sorted(map(str, a))) for a in rules["antecedents"]], dtype=object)
        order = np.lexsort((ante_txt, cons, -rules["lift"].to_numpy(float), -rules["confidence"].to_numpy(float))) \
            if len(rules) else np.zeros(0, int)
        self.rules_ = rules.iloc[order].reset_index(drop=True)
        self._rule_cons = pd.Categorical(cons[order], categories=self.items_).codes.astype(np.int64)
        self._rule_text = ante_txt[order]
        sizes = np.array([len(a) for a in self.rules_["antecedents"]], dtype=np.int64)
        rows = np.repeat(np.arange(len(sizes)), sizes)
        cols_ = pd.Categorical([str(i) for a in self.rules_["antecedents"] for i in sorted(map(str, a))],
                               categories=self.items_).codes
        self._rule_size = sizes
        self._ante = sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols_)),
                                       shape=(len(sizes), len(self.items_)))

    @staticmethod
    def _segment_series(segments: pd.Series) -> pd.Series:
        if not isinstance(segments, pd.Series):
            raise ParameterError("segments must be a pandas Series indexed by customer_id (e.g. the segment column "
                                 "of the segmentation's customer table).")
        s = segments.dropna()
        return pd.Series(s.astype(str).to_numpy(object), index=s.index.astype(str))

    def _segment_popularity(self, h: pd.DataFrame, segments: pd.Series | None) -> pd.DataFrame:
        cols = ["segment", "item", "n_customers", "share"]
        if segments is None:
            return pd.DataFrame(columns=cols)
        seg = h["customer_id"].map(segments)
        hs = h.assign(segment=seg.to_numpy()).dropna(subset=["segment"])
        size = hs.groupby("segment")["customer_id"].nunique()
        sp = hs.groupby(["segment", "item"]).size().rename("n_customers").reset_index()
        sp["share"] = sp["n_customers"] / sp["segment"].map(size).to_numpy(float)
        return sp.sort_values(["segment", "n_customers", "item"], ascending=[True, False, True],
                              kind="stable").reset_index(drop=True)[cols]

    # ------------------------------------------------------------------ recommend
    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_"):
            raise AnalysisError("NextBestOffer is not fitted: call fit(histories) first.")

    def _rule_candidates(self, X: sparse.csr_matrix, bought: np.ndarray, k: int) -> pd.DataFrame:
        n_items = len(self.items_)
        if len(self.rules_) == 0:
            return pd.DataFrame({"c": np.zeros(0, np.int64), "item": np.zeros(0, np.int64), "rule": np.zeros(0, int)})
        M = (X @ self._ante.T).tocoo()
        ok = M.data == self._rule_size[M.col]
        c, r = M.row[ok].astype(np.int64), M.col[ok].astype(np.int64)
        it = self._rule_cons[r]
        keep = ~np.isin(c * n_items + it, bought)
        c, r, it = c[keep], r[keep], it[keep]
        o = np.lexsort((r, c))  # rules are sorted best first: the first row per (customer, item) is its best rule
        c, r, it = c[o], r[o], it[o]
        key = c * n_items + it
        _, first = np.unique(key, return_index=True)
        first = np.sort(first)
        c, r, it = c[first], r[first], it[first]
        top = _first_k(c, k)
        return pd.DataFrame({"c": c[top], "item": it[top], "rule": r[top]})

    def offers(self, histories: pd.DataFrame, segments: pd.Series | None = None, k: int | None = None,
               method: str = "rules (fallback segment popularity)") -> pd.DataFrame:
        """The top-k offers per customer as a long table.

        Returns
        -------
        DataFrame
            ``customer_id, rank`` (1 = best), ``item, source, score, reason``; score = the rule's confidence or
            the item's share of (segment) customers. Customers in ``histories`` who bought every item get no row.
        """
        self._check_fitted()
        k = self.k if k is None else _check_k(k)
        if method not in METHODS:
            raise ParameterError(f"method={method!r} is unknown; use one of {list(METHODS)}.", allowed=list(METHODS))
        sources = METHODS[method]
        h = _check_histories(histories)
        customers = np.sort(h["customer_id"].unique()).astype(object)
        n_c, n_items = len(customers), len(self.items_)
        c_all = pd.Categorical(h["customer_id"], categories=customers).codes.astype(np.int64)
        i_all = pd.Categorical(h["item"], categories=self.items_).codes.astype(np.int64)
        known = i_all >= 0
        cb, ib = c_all[known], i_all[known]
        bought = np.unique(cb * n_items + ib)
        n_bought = np.bincount(cb, minlength=n_c)
        parts = []
        if "rule" in sources:
            X = sparse.csr_matrix((np.ones(len(cb), np.int32), (cb, ib)), shape=(n_c, n_items))
            X.data[:] = 1
            rc = self._rule_candidates(X, bought, k)
            parts.append(rc.assign(src=0, pos=np.arange(len(rc))))
        seg_lookup = segments if segments is not None else self.segments_
        if "segment popularity" in sources and seg_lookup is not None and len(self.segment_popularity_):
            seg_lookup = self._segment_series(seg_lookup)
            labels = list(dict.fromkeys(self.segment_popularity_["segment"]))
            sp = self.segment_popularity_
            rankings = [pd.Categorical(sp.loc[sp["segment"] == s, "item"], categories=self.items_).codes
                        for s in labels]
            g = pd.Categorical(pd.Series(customers).map(seg_lookup), categories=labels).codes
            has = np.flatnonzero(g >= 0)
            c, it = _ranked_not_bought(has, g[has], rankings, n_bought, bought, n_items, k)
            parts.append(pd.DataFrame({"c": c, "item": it, "rule": -1, "src": 1, "pos": np.arange(len(c))}))
        ranking = pd.Categorical(self.popularity_["item"], categories=self.items_).codes
        c, it = _ranked_not_bought(np.arange(n_c), np.zeros(n_c, int), [ranking], n_bought, bought, n_items, k)
        parts.append(pd.DataFrame({"c": c, "item": it, "rule": -1, "src": 2, "pos": np.arange(len(c))}))
        allc = pd.concat(parts, ignore_index=True).sort_values(["c", "src", "pos"], kind="stable")
        allc = allc.drop_duplicates(["c", "item"], keep="first")
        allc = allc[_first_k(allc["c"].to_numpy(), k)].reset_index(drop=True)
        return self._describe(allc, customers, seg_lookup)

    def _describe(self, allc: pd.DataFrame, customers: np.ndarray, seg_lookup: pd.Series | None) -> pd.DataFrame:
        """Customer ids, ranks, item ids, sources, scores and reason texts of the chosen offers."""
        c, src, item = allc["c"].to_numpy(), allc["src"].to_numpy(), allc["item"].to_numpy()
        rank = np.arange(len(c)) - np.searchsorted(c, c) + 1
        cust = customers[c]
        items = self.items_[item]
        score = np.full(len(c), np.nan)
        reason = np.empty(len(c), dtype=object)
        r = allc["rule"].to_numpy()
        isr = src == 0
        conf, lift = self.rules_["confidence"].to_numpy(float), self.rules_["lift"].to_numpy(float)
        score[isr] = conf[r[isr]]
        reason[isr] = [f"rule {{{self._rule_text[j]}}} ⇒ {self.items_[self._rule_cons[j]]} (confidence "
                       f"{_percent(conf[j])}, lift {lift[j]:.1f})" for j in r[isr]]
        iss = src == 1
        if iss.any():
            seg = pd.Series(cust[iss]).map(self._segment_series(seg_lookup)).to_numpy(object)
            share = self.segment_popularity_.set_index(["segment", "item"])["share"]
            score[iss] = share.reindex(pd.MultiIndex.from_arrays([seg, items[iss]])).to_numpy(float)
            reason[iss] = [f"popular in segment '{str(s).replace(';', ',')}' (bought by {_percent(v)} of its "
                           f"customers)" for s, v in zip(seg, score[iss])]
        isp = src == 2
        pop_share = self.popularity_.set_index("item")["share"]
        score[isp] = pop_share.reindex(items[isp]).to_numpy(float)
        reason[isp] = [f"popular overall (bought by {_percent(v)} of customers)" for v in score[isp]]
        names = np.array(["rule", "segment popularity", "popularity"], dtype=object)
        return pd.DataFrame({"customer_id": cust, "rank": rank, "item": items, "source": names[src],
                             "score": score, "reason": reason})

    def recommend(self, histories: pd.DataFrame, segments: pd.Series | None = None, k: int | None = None
                  ) -> pd.DataFrame:
        """One row per customer in ``histories`` with the next best offer(s) and the reason for each.

        Returns
        -------
        DataFrame
            :data:`OFFER_COLUMNS`: ``customer_id, next_best_offer, next_best_offer_reason, next_best_offers``
            (';'-joined product ids, best first), ``next_best_offer_reasons`` (';'-joined, aligned),
            ``offer_source`` of the top offer ('rule' | 'segment popularity' | 'popularity') and
            ``offer_confidence`` (the top offer's score: rule confidence or popularity share, an estimate of
            P(accept)). Customers who bought every known item have empty offers.
        """
        long = self.offers(histories, segments, k)
        customers = np.sort(_check_histories(histories)["customer_id"].unique()).astype(object)
        top = long[long["rank"] == 1].set_index("customer_id")
        joined = long.groupby("customer_id", sort=True).agg(next_best_offers=("item", ";".join),
                                                             next_best_offer_reasons=("reason", ";".join))
        out = pd.DataFrame({"customer_id": customers})
        out["next_best_offer"] = out["customer_id"].map(top["item"])
        out["next_best_offer_reason"] = out["customer_id"].map(top["reason"])
        out["next_best_offers"] = out["customer_id"].map(joined["next_best_offers"]).fillna("")
        out["next_best_offer_reasons"] = out["customer_id"].map(joined["next_best_offer_reasons"]).fillna("")
        out["offer_source"] = out["customer_id"].map(top["source"])
        out["offer_confidence"] = out["customer_id"].map(top["score"]).astype(float)
        return out[OFFER_COLUMNS]


# ---------------------------------------------------------------------- backtest
def _default_segments(tables: Mapping[str, pd.DataFrame], cutoff: pd.Timestamp) -> pd.Series | None:
    """RFM segments as of the cut-off (earlier orders only); None when the data are too small for quintiles."""
    try:
        scored = rfm_scores(rfm_table(tables["orders"], tables["order_items"], cutoff))
    except (AnalysisError, ValueError):
        return None
    return pd.Series(scored["rfm_segment"].astype(str).to_numpy(object), index=scored["customer_id"].astype(str))


def _hit_matrix(offers: pd.DataFrame, new_keys: np.ndarray, cust_index: pd.Index, n_new: np.ndarray,
                item_index: pd.Index, k_values: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per evaluated customer: hit (0/1) and recall at each k, as (n_customers × len(k_values)) arrays."""
    c = cust_index.get_indexer(offers["customer_id"])
    it = item_index.get_indexer(offers["item"])
    ok = c >= 0
    c, it, rank = c[ok], it[ok], offers["rank"].to_numpy()[ok]
    hit = np.isin(c.astype(np.int64) * len(item_index) + it, new_keys)
    n = len(cust_index)
    hits = np.column_stack([np.bincount(c[hit & (rank <= k)], minlength=n) for k in k_values])
    return (hits > 0).astype(float), hits / n_new[:, None]


def backtest_nbo(tables: Mapping[str, pd.DataFrame], cutoff: Any, *, k_values: Sequence[int] = (1, 3, 5),
                 segments: pd.Series | None = None, n_bootstrap: int = 200, seed: int = 0, end: Any = None,
                 ci_level: float = 0.95, progress: bool = False, **nbo_params: Any) -> pd.DataFrame:
    """Backtest the next best offer on a time split, against popularity and segment-popularity baselines.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Cleaned canonical tables (orders, order_items).
    cutoff : date-like
        Rules and popularity are learned on orders before it; offers are judged on orders in ``[cutoff, end)``.
    k_values : sequence of int
        Offer-list lengths evaluated.
    segments : Series, optional
        Segment per customer_id (known at the cut-off). None: the RFM segments as of the cut-off.
    n_bootstrap, seed, ci_level :
        Percentile bootstrap over customers (same resamples for every method: paired comparisons).
    end : date-like, optional
        End of the evaluation period (None: after the last order).
    **nbo_params :
        Passed to :class:`NextBestOffer` (min_support, min_confidence, max_len, alpha, ...).

    Returns
    -------
    DataFrame
        :data:`BACKTEST_COLUMNS`, one row per method and k. ``attrs``: cutoff, n_rules, min_support,
        n_customers_before, segments ('given' | 'RFM as of cutoff' | 'none'), notes.

    Notes
    -----
    Evaluated customers bought ≥ 1 item before the cut-off and ≥ 1 item after it that they had not bought before
    (their "new items" N_c). For the top-k list T_c: hit_c = 1[T_c ∩ N_c ≠ ∅], recall_c = |T_c ∩ N_c| / |N_c|;
    hit_rate@k and recall@k are their means over evaluated customers.
    """
    ks = sorted({_check_k(k, "k_values entry") for k in (k_values if isinstance(k_values, Sequence) else [k_values])})
    if not ks:
        raise ParameterError("k_values is empty: give at least one list length, e.g. (1, 3, 5).")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ParameterError(f"n_bootstrap={n_bootstrap!r} must be an integer ≥ 0 (0 = no confidence intervals).")
    if not 0 < ci_level < 1:
        raise ParameterError(f"ci_level={ci_level!r} must be in (0, 1).")
    stages = Stages(progress, total=4, desc="next best offer backtest")
    try:
        stages.stage("histories")
        hist = customer_histories(tables, end=end)
        if len(hist) == 0:
            raise ParameterError("The purchase history is empty: no completed order line with quantity > 0.")
        cut = pd.Timestamp(cutoff)
        first, last = hist["ordered_at"].min(), hist["ordered_at"].max()
        if not first < cut <= last:
            raise ParameterError(f"cutoff={cut} is outside the data range: orders run from {first} to {last}; choose "
                                 "a cut-off after the first order and not after the last one (e.g. 75% of the way).")
        before, after = hist[hist["ordered_at"] < cut], hist[hist["ordered_at"] >= cut]
        seg_source = "given" if segments is not None else "RFM as of cutoff"
        if segments is None:
            segments = _default_segments(tables, cut)
            seg_source = seg_source if segments is not None else "none"
        stages.stage("mine rules")
        model = NextBestOffer(k=max(ks), **nbo_params).fit(before, segments)
        stages.stage("recommend")
        # evaluated customers and their new items
        b_pairs = before[["customer_id", "item"]].drop_duplicates()
        a_pairs = after[["customer_id", "item"]].drop_duplicates()
        a_pairs = a_pairs[a_pairs["customer_id"].isin(b_pairs["customer_id"].unique())]
        merged = a_pairs.merge(b_pairs.assign(old=True), on=["customer_id", "item"], how="left")
        new = merged[merged["old"].isna()]
        cust_index = pd.Index(np.sort(new["customer_id"].unique()))
        if len(cust_index) == 0:
            raise AnalysisError(f"No customer who bought before {cut.date()} bought a new item after it: nothing to "
                                "backtest. Choose an earlier cut-off.")
        item_index = pd.Index(np.sort(hist["item"].unique()))
        nc = cust_index.get_indexer(new["customer_id"])
        new_keys = np.unique(nc.astype(np.int64) * len(item_index) + item_index.get_indexer(new["item"]))
        n_new = np.bincount(nc, minlength=len(cust_index)).astype(float)
        eval_hist = before[before["customer_id"].isin(cust_index)]
        stats, labels = [], []
        for method in METHODS:
            offers = model.offers(eval_hist, segments, max(ks), method=method)
            hit, rec = _hit_matrix(offers, new_keys, cust_index, n_new, item_index, ks)
            stats += [hit, rec]
            labels.append(method)
        stages.stage("bootstrap")
        table = _bootstrap_table(np.column_stack(stats), labels, ks, n_bootstrap, seed, ci_level)
    finally:
        stages.close()
    table["n_customers"] = len(cust_index)
    table.attrs.update({"cutoff": cut, "end": None if end is None else pd.Timestamp(end), "n_rules": len(model.rules_),
                        "min_support": model.min_support_, "n_customers_before": int(before["customer_id"].nunique()),
                        "segments": seg_source, "notes": list(model.notes_)})
    return table[BACKTEST_COLUMNS]


def _bootstrap_table(S: np.ndarray, labels: list[str], ks: list[int], n_bootstrap: int, seed: int,
                     ci_level: float) -> pd.DataFrame:
    """Means and percentile bootstrap CIs of the columns of ``S`` (per method: hits at each k, then recalls)."""
    n = S.shape[0]
    est = S.mean(axis=0)
    lo = hi = np.full(S.shape[1], np.nan)
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        block = max(1, int(2_000_000 // max(n, 1)))
        boot = []
        for b0 in range(0, n_bootstrap, block):
            idx = rng.integers(0, n, size=(min(block, n_bootstrap - b0), n))
            boot.append(S[idx].mean(axis=1))
        boot = np.vstack(boot)
        a = (1 - ci_level) / 2
        lo, hi = np.quantile(boot, a, axis=0), np.quantile(boot, 1 - a, axis=0)
    rows, nk = [], len(ks)
    for m, method in enumerate(labels):
        for j, k in enumerate(ks):
            h, r = 2 * m * nk + j, (2 * m + 1) * nk + j
            rows.append({"method": method, "k": k, "hit_rate": est[h], "hit_rate_ci_lower": lo[h],
                         "hit_rate_ci_upper": hi[h], "recall": est[r], "recall_ci_lower": lo[r],
                         "recall_ci_upper": hi[r]})
    return pd.DataFrame(rows)
