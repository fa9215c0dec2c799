"""The customer view: one row per customer as of a date, from every analysis of the project.

The view joins, on ``customer_id``, what the other analyses know about each customer::

    tables ─► customer_profiles   segment (clusters, named), RFM segment, value tier, CLV, value
          ─► top_categories       the customer's categories by revenue
          ─► satisfaction_scores  survey construct scores, when answers link by customer_id
    churn model  ─► churn_probability within horizon_days
    NextBestOffer ─► next_best_offer(s) and the reason for each
                        │
                        └► build_customer_view ─► value_at_risk, recommended_action (ACTION_RULES)

The base population is the customers of :func:`customer_profiles`: every customer with at least one
completed order before the as-of date. Every other input is left-joined onto it; the view has
exactly one row per such customer (checked: a duplicated or lost customer raises
:class:`~ecrm_research.exceptions.AnalysisError`). The library computes; writing
``customer_view.parquet`` / ``.csv`` is the notebook's job (``report.outputs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import loyalty
from .. import segmentation as seg
from ..exceptions import AnalysisError, DataError, ParameterError
from ..prep import customers as prep_customers
from ..prep.rules import COMPLETED, STATUS_CODES, status_codes

__all__ = ["VIEW_COLUMNS", "ACTION_RULES", "VALUE_DEFINITION", "customer_profiles", "top_categories",
           "satisfaction_scores", "satisfaction_reason", "linked_answers", "build_customer_view", "view_columns_table",
           "view_coverage"]

#: The columns of the customer view, in order, each with a one-line description (the data card).
VIEW_COLUMNS: dict[str, str] = {
    "customer_id": "customer key (one row per customer with at least one completed order before as_of)",
    "as_of": "analysis date: only orders before it are used",
    "segment": "behavioural segment (CustomerSegmenter clusters named by their profile; "
               "customers with too few orders form their own group)",
    "rfm_segment": "classic named RFM segment (segmentation.RFM_SEGMENT_RULES)",
    "value_tier": "mature / growth / development (segmentation.VALUE_TIER_RULES)",
    "clv": "historical CLV: monthly spend × expected discounted months × margin (segmentation.historical_clv)",
    "value": "money value used for value at risk: the CLV (expected margin over the CLV horizon)",
    "churn_probability": "probability of no completed order within horizon_days after as_of (churn model)",
    "horizon_days": "the churn horizon in days",
    "value_at_risk": "churn_probability × value: expected value lost if nothing is done",
    "satisfaction_score": "survey satisfaction score, 0-100 (empty when the customer did not answer or "
                          "the data have no survey linked by customer_id)",
    "loyalty_score": "survey loyalty score, 0-100 (empty as satisfaction_score)",
    "last_order_at": "time of the last completed order before as_of",
    "top_categories": "the customer's top product categories by revenue, ';'-separated",
    "next_best_offer": "one product id to offer next (items already bought excluded)",
    "next_best_offer_reason": "why: the rule or history that led to the offer",
    "next_best_offers": "the top k offers, ';'-separated product ids",
    "next_best_offer_reasons": "the reason for each of next_best_offers, ';'-separated, aligned",
    "offer_source": "where the top offer came from: rule, segment popularity or popularity",
    "offer_confidence": "estimated P(accept) of the top offer (rule confidence or popularity share)",
    "recommended_action": "what to do with the customer (first matching rule of ACTION_RULES)",
    "action_rule": "the rule of ACTION_RULES that chose recommended_action",
}

#: What ``value`` means (the money at risk when a customer churns).
VALUE_DEFINITION = ("value = historical CLV (segmentation.historical_clv): average monthly spend since the "
                    "first order × expected discounted months with purchases over the horizon × gross margin; "
                    "zero for customers lapsed longer than lapse_days. It is margin, in the data's currency.")

#: The recommended-action rules, applied top to bottom; the first that matches wins.
#: ``high risk``: churn_probability ≥ ``high_risk``; ``high value``: value ≥ the ``high_value_quantile``
#: quantile of value over the view's customers (and > 0).
ACTION_RULES = pd.DataFrame([
    ("no churn estimate", "churn_probability is missing", "review (no churn estimate)"),
    ("retention", "high risk and high value", "retention call/offer"),
    ("win-back", "high risk and not high value", "low-cost win-back e-mail"),
    ("loyalty", "not high risk and RFM segment Champions", "loyalty reward"),
    ("cross-sell", "not high risk and a next best offer exists", "cross-sell <next_best_offer>"),
    ("maintain", "everything else", "regular newsletter"),
], columns=["rule", "condition", "action"])


def view_columns_table() -> pd.DataFrame:
    """:data:`VIEW_COLUMNS` as a two-column table ``column, description`` (for docs and the report)."""
    return pd.DataFrame({"column": list(VIEW_COLUMNS), "description": list(VIEW_COLUMNS.values())})


def _completed_lines(tables: Mapping[str, pd.DataFrame], start: Any, end: Any) -> pd.DataFrame:
    """Lines of completed orders placed in [start, end): ``customer_id, product_id, revenue``."""
    orders, items = tables["orders"], tables["order_items"]
    done = orders[status_codes(orders["status"]) == STATUS_CODES[COMPLETED]]
    when = done["ordered_at"]
    keep = when < pd.Timestamp(end)
    if start is not None:
        keep &= when >= pd.Timestamp(start)
    done = done.loc[keep, ["order_id", "customer_id"]]
    lines = items[["order_id", "product_id", "quantity", "unit_price"]].merge(done, on="order_id", how="inner")
    lines["revenue"] = lines["quantity"].astype(float) * lines["unit_price"].astype(float)
    return lines


def customer_profiles(tables: Mapping[str, pd.DataFrame], as_of: Any = None, *, seed: int = 0,
                      source: str | None = None, k: int | None = None, method: str = "kmeans",
                      features: list[str] | None = None,
                      k_range: tuple[int, int] = (2, 8), min_orders: int = 3, n_bootstrap: int = 20,
                      silhouette_sample: int = 10_000, margin: float = 0.3, horizon_months: int = 12,
                      monthly_retention: float = 0.9, progress: bool = False) -> pd.DataFrame:
    """Segment, RFM segment, value tier, CLV and value per customer, as notebook 04 builds them.

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned canonical pandas tables (``orders``, ``order_items``; ``products`` when present).
    as_of : str or Timestamp, optional
        Analysis date (default: the day after the last order).
    seed : int, default 0
        ``random_state`` of the clustering (and its bootstrap).
    source : str, optional
        The data's name, for the error when there are too few customers.
    k, method, features, k_range, min_orders, n_bootstrap, silhouette_sample, progress
        :class:`~ecrm_research.segmentation.CustomerSegmenter` (notebook 04's defaults).
    margin, horizon_months, monthly_retention
        :func:`~ecrm_research.segmentation.historical_clv` (notebook 04's defaults).

    Returns
    -------
    DataFrame
        One row per customer with a completed order before ``as_of``, sorted by ``customer_id``:
        ``customer_id, segment, cluster, rfm_segment, value_tier, clv, value, last_order_at,
        recency_days, frequency, monetary``. ``attrs``: ``as_of``, ``n_clusters``, ``k_reason``,
        ``value_definition``.

    Notes
    -----
    rfm_table → rfm_scores (quintiles, named RFM segment); customer_features → CustomerSegmenter
    → profile_segments (cluster names) → customer_segments with historical_clv. ``value = clv``
    (:data:`VALUE_DEFINITION`): the margin a customer is expected to bring over the CLV horizon, which
    is what a churn would cost.
    """
    as_of_date = prep_customers.resolve_as_of(tables["orders"], as_of)
    rfm = prep_customers.rfm_table(tables["orders"], tables["order_items"], as_of_date)
    seg.require_customers(rfm, source=source, as_of=as_of_date)
    scored = seg.rfm_scores(rfm)
    feats = prep_customers.customer_features(dict(tables), as_of_date)
    segmenter = seg.CustomerSegmenter(
        n_clusters=k, method=method, features=features, k_range=tuple(k_range), n_bootstrap=n_bootstrap,
        silhouette_sample=silhouette_sample, min_orders=min_orders, random_state=seed, progress=progress,
    ).fit(feats)
    profiles = seg.profile_segments(feats, segmenter.labels_, unclustered_name=f"fewer than {min_orders} orders")
    clv = seg.historical_clv(rfm, margin=margin, horizon_months=horizon_months, monthly_retention=monthly_retention)
    segments = seg.customer_segments(scored, feats, segmenter.labels_, profiles, clv)
    out = segments[["customer_id", "segment", "cluster", "rfm_segment", "value_tier", "clv"]].copy()
    out["value"] = out["clv"]
    out["last_order_at"] = rfm["last_order_at"].to_numpy()
    for c in ("recency_days", "frequency", "monetary"):
        out[c] = segments[c].to_numpy()
    out.attrs.update(as_of=as_of_date, n_clusters=int(segmenter.n_clusters_), k_reason=segmenter.k_reason_,
                     value_definition=VALUE_DEFINITION)
    return out.reset_index(drop=True)


def top_categories(tables: Mapping[str, pd.DataFrame], *, end: Any, n: int = 3, start: Any = None) -> pd.DataFrame:
    """Each customer's top product categories by revenue.

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned canonical tables: ``orders``, ``order_items``, ``products`` (with ``category``).
    end : str or Timestamp
        Only orders placed before ``end`` count (the view's as-of date).
    n : int, default 3
        Categories kept per customer.
    start : str or Timestamp, optional
        Only orders placed on or after ``start`` count.

    Returns
    -------
    DataFrame
        ``customer_id, top_categories`` (``';'``-joined, highest revenue first; ties by category
        name), one row per customer with a positive-revenue line of a completed order in
        [start, end). Empty (same columns) when ``products`` has no ``category``; ``attrs["reason"]``
        says so.

    Notes
    -----
    revenue(customer, category) = Σ quantity × unit_price over the positive lines (quantity > 0) of
    the customer's completed orders; products missing from ``products`` or without a category count
    as ``unknown`` (as ``customer_features``' category shares).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n={n!r} must be an integer ≥ 1 (categories per customer).")
    products = tables.get("products")
    empty = pd.DataFrame({"customer_id": pd.Series([], dtype="string"), "top_categories": pd.Series([], dtype=object)})
    if products is None or "category" not in products or products["category"].notna().sum() == 0:
        empty.attrs["reason"] = "the products table has no product categories, so there are no top categories"
        return empty
    lines = _completed_lines(tables, start, end)
    lines = lines[lines["quantity"] > 0]
    cat = products.drop_duplicates("product_id").set_index("product_id")["category"].astype(object)
    lines = lines.assign(category=lines["product_id"].map(cat).fillna("unknown").astype(str))
    rev = lines.groupby(["customer_id", "category"], observed=True)["revenue"].sum().reset_index()
    rev = rev.sort_values(["customer_id", "revenue", "category"], ascending=[True, False, True])
    rev = rev[rev.groupby("customer_id", observed=True).cumcount() < n]
    out = rev.groupby("customer_id", observed=True, sort=True)["category"].agg(";".join).reset_index()
    return out.rename(columns={"category": "top_categories"})


def linked_answers(tables: Mapping[str, pd.DataFrame], as_of: Any = None) -> pd.DataFrame | None:
    """The survey answers that link to a customer (``customer_id`` given), answered before ``as_of``
    when both ``as_of`` and ``answered_at`` are known; None when there is no survey table."""
    survey = tables.get("survey_responses")
    if survey is None:
        return None
    if "customer_id" not in survey:
        return survey.iloc[:0]
    linked = survey[survey["customer_id"].notna()]
    if as_of is not None and "answered_at" in linked:
        linked = linked[~(linked["answered_at"] >= pd.Timestamp(as_of))]  # unknown dates are kept
    return linked


def _survey_spec(tables: Mapping[str, pd.DataFrame], constructs: Any, satisfaction: str, loyalty_construct: str,
                 as_of: Any) -> tuple[Any, str | None]:
    """(spec, None) when the survey can be scored for the view, else (None, reason)."""
    survey = tables.get("survey_responses")
    if survey is None or len(survey) == 0:
        return None, "the data have no survey_responses table, so there are no satisfaction or loyalty scores"
    linked = linked_answers(tables, as_of)
    if "customer_id" not in survey or survey["customer_id"].notna().sum() == 0:
        return None, ("the survey answers carry no customer_id, so they cannot be linked to customers "
                      "(satisfaction and loyalty left empty)")
    if len(linked) == 0:
        return None, (f"no survey answer linked to a customer was given before the as-of date "
                      f"{pd.Timestamp(as_of).date()}")
    try:
        spec = loyalty.resolve_constructs(constructs, survey.columns, outcome=loyalty_construct, mediator=satisfaction)
    except ParameterError as err:
        if constructs is not None:  # the user's mapping does not name them: their error to fix
            raise
        return None, (f"the survey's items do not form {satisfaction} and {loyalty_construct} constructs ({err}); "
                      f"pass constructs=... naming their items")
    return spec, None


def satisfaction_reason(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, constructs: Any = None,
                        satisfaction: str = "satisfaction", loyalty_construct: str = "loyalty") -> str | None:
    """Why :func:`satisfaction_scores` returns None (a sentence for the report), or None when it does not
    (same arguments)."""
    return _survey_spec(tables, constructs, satisfaction, loyalty_construct, as_of)[1]


def satisfaction_scores(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, constructs: Any = None,
                        satisfaction: str = "satisfaction", loyalty_construct: str = "loyalty"
                        ) -> pd.DataFrame | None:
    """Satisfaction and loyalty scores of the survey respondents, by customer_id.

    Parameters
    ----------
    tables : dict of DataFrame
        Canonical tables; uses ``survey_responses`` (``customer_id``, ``answered_at``, item columns).
    as_of : str or Timestamp, optional
        Only answers given before it count (no look-ahead); answers without a date are kept.
    constructs : str, Path, dict or None
        Construct mapping as in notebook 03 (:func:`ecrm_research.loyalty.resolve_constructs`):
        None = the sample survey's mapping when its items are present, else inferred from item names.
    satisfaction, loyalty_construct : str
        Names of the two constructs scored.

    Returns
    -------
    DataFrame or None
        ``customer_id, satisfaction_score, loyalty_score, answered_at``, one row per linked customer;
        None when there is no survey, no ``customer_id`` link, or (with ``constructs=None``) items that
        do not form the two constructs — :func:`satisfaction_reason` gives the sentence saying why.

    Raises
    ------
    ParameterError
        A ``constructs`` mapping given by the user that lacks the two constructs.

    Notes
    -----
    Scores are :func:`ecrm_research.loyalty.score_constructs` (mean of the answered, reverse-coded
    items; at least 2/3 of a construct's items answered) rescaled to 0-100:
    ``100 (mean − scale_min) / (scale_max − scale_min)``. The items are those of the mapping (notebook
    03 also reviews and may drop weak items; the view does not). A customer who answered more than once
    keeps the latest answer (``answered_at``, then the last row).
    """
    spec, _ = _survey_spec(tables, constructs, satisfaction, loyalty_construct, as_of)
    if spec is None:
        return None
    linked = linked_answers(tables, as_of)
    if "answered_at" in linked:
        linked = linked.sort_values("answered_at", kind="stable", na_position="first")
    linked = linked.drop_duplicates("customer_id", keep="last")
    wanted = {satisfaction: spec.constructs[satisfaction], loyalty_construct: spec.constructs[loyalty_construct]}
    reverse = [i for i in spec.reverse_items if any(i in v for v in wanted.values())]
    scores = loyalty.score_constructs(linked, wanted, reverse_items=reverse, scale_min=spec.scale_min,
                                      scale_max=spec.scale_max)
    out = pd.DataFrame({"customer_id": linked["customer_id"].astype("string").to_numpy(),
                        "satisfaction_score": scores.rescale(scores.scores[satisfaction]).to_numpy(),
                        "loyalty_score": scores.rescale(scores.scores[loyalty_construct]).to_numpy()})
    out["answered_at"] = linked["answered_at"].to_numpy() if "answered_at" in linked else pd.NaT
    return out.sort_values("customer_id").reset_index(drop=True)


def _unique_ids(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if "customer_id" not in frame:
        raise DataError(f"{name} has no customer_id column; columns: {list(frame.columns)}.", column="customer_id")
    dup = frame["customer_id"].duplicated()
    if dup.any():
        raise DataError(f"{name} has {int(dup.sum()):,} duplicated customer_id(s) (first: "
                        f"{frame.loc[dup, 'customer_id'].iloc[0]!r}); the view needs one row per customer.",
                        column="customer_id")
    return frame.assign(customer_id=frame["customer_id"].astype("string"))


def _left_join(view: pd.DataFrame, other: pd.DataFrame | None, columns: list[str], name: str) -> pd.DataFrame:
    if other is None:
        return view.assign(**{c: pd.NA for c in columns if c not in view})
    other = _unique_ids(other, name)
    missing = [c for c in columns if c not in other]
    if missing:
        raise DataError(f"{name} lacks column(s) {missing}; it has {list(other.columns)}.", column=missing[0])
    return view.merge(other[["customer_id", *columns]], on="customer_id", how="left", validate="one_to_one")


def _actions(view: pd.DataFrame, high_risk: float, high_value_quantile: float) -> tuple[np.ndarray, np.ndarray]:
    p = pd.to_numeric(view["churn_probability"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    value = pd.to_numeric(view["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    cut = float(np.nanquantile(value, high_value_quantile)) if np.isfinite(value).any() else np.inf
    high_value = (value >= cut) & (value > 0)
    risky = p >= high_risk
    offer = view["next_best_offer"].astype("string")
    has_offer = offer.notna().to_numpy() & (offer.fillna("") != "").to_numpy()
    champion = (view["rfm_segment"].astype("string") == "Champions").fillna(False).to_numpy(bool)
    conditions = [np.isnan(p), risky & high_value, risky & ~high_value, champion, has_offer]
    rules = list(ACTION_RULES["rule"])
    actions = list(ACTION_RULES["action"])
    action = np.select(conditions, actions[:-1], default=actions[-1]).astype(object)
    rule = np.select(conditions, rules[:-1], default=rules[-1]).astype(object)
    cross = rule == "cross-sell"
    action[cross] = "cross-sell " + offer[cross].to_numpy(dtype=object)
    return action, rule


def build_customer_view(customers: pd.DataFrame, *, churn: pd.DataFrame | None, offers: pd.DataFrame | None,
                        satisfaction: pd.DataFrame | None = None, top_categories: pd.DataFrame | None = None,
                        horizon_days: int, as_of: Any, high_risk: float = 0.5,
                        high_value_quantile: float = 0.75) -> pd.DataFrame:
    """One row per customer: every analysis joined on ``customer_id``, with value at risk and an action.

    Parameters
    ----------
    customers : DataFrame
        :func:`customer_profiles` (``customer_id, segment, rfm_segment, value_tier, clv, value,
        last_order_at``): the base population, one row per customer with a completed order before as_of.
    churn : DataFrame or None
        ``customer_id, churn_probability`` (the churn model's prediction at as_of).
    offers : DataFrame or None
        ``NextBestOffer.recommend`` output (``customer_id, next_best_offer, next_best_offer_reason,
        next_best_offers, next_best_offer_reasons``; ``offer_source, offer_confidence`` when present).
    satisfaction : DataFrame, optional
        :func:`satisfaction_scores` (``customer_id, satisfaction_score, loyalty_score``); None = empty columns.
    top_categories : DataFrame, optional
        :func:`top_categories` output.
    horizon_days : int
        The churn horizon (stored in the view).
    as_of : str or Timestamp
        The analysis date (stored in the view).
    high_risk : float, default 0.5
        churn_probability from which a customer is "high risk" (more likely than not to churn).
    high_value_quantile : float, default 0.75
        A customer is "high value" when value > 0 and value ≥ this quantile of value over the view
        (default: the top quarter).

    Returns
    -------
    DataFrame
        The columns of :data:`VIEW_COLUMNS`, in that order, one row per customer of ``customers``
        (its order), then any extra column of ``customers``.

    Raises
    ------
    DataError
        An input without ``customer_id``, with a duplicated customer or without its columns.
    AnalysisError
        The joined view lost or duplicated a customer (it never should: a guard).

    Notes
    -----
    ``value_at_risk = churn_probability × value``. ``recommended_action``: the first matching rule of
    :data:`ACTION_RULES`, top to bottom; ``action_rule`` names it.
    """
    if not 0 <= high_risk <= 1:
        raise ParameterError(f"high_risk={high_risk!r} must be between 0 and 1 (a churn probability).")
    if not 0 <= high_value_quantile <= 1:
        raise ParameterError(f"high_value_quantile={high_value_quantile!r} must be between 0 and 1.")
    if not isinstance(horizon_days, (int, np.integer)) or horizon_days < 1:
        raise ParameterError(f"horizon_days={horizon_days!r} must be a whole number of days ≥ 1.")
    base = _unique_ids(customers, "customers")
    need = [c for c in ("segment", "rfm_segment", "value_tier", "clv", "value", "last_order_at") if c not in base]
    if need:
        raise DataError(f"customers lacks column(s) {need}; build it with customer_profiles(...).", column=need[0])
    base = base.reset_index(drop=True)
    view = base.copy()
    view["as_of"] = pd.Timestamp(as_of)
    view["horizon_days"] = int(horizon_days)
    view = _left_join(view, churn, ["churn_probability"], "churn")
    offer_cols = ["next_best_offer", "next_best_offer_reason", "next_best_offers", "next_best_offer_reasons"]
    extra = [c for c in ("offer_source", "offer_confidence") if offers is not None and c in offers]
    view = _left_join(view, offers, offer_cols + extra, "offers")
    for c in ("offer_source", "offer_confidence"):
        if c not in view:
            view[c] = pd.NA
    view = _left_join(view, satisfaction, ["satisfaction_score", "loyalty_score"], "satisfaction")
    view = _left_join(view, top_categories, ["top_categories"], "top_categories")
    view["churn_probability"] = pd.to_numeric(view["churn_probability"], errors="coerce").astype(float)
    for c in ("satisfaction_score", "loyalty_score", "offer_confidence"):
        view[c] = pd.to_numeric(view[c], errors="coerce").astype(float)
    view["value_at_risk"] = view["churn_probability"] * view["value"].astype(float)
    view["recommended_action"], view["action_rule"] = _actions(view, high_risk, high_value_quantile)
    if len(view) != len(base) or not view["customer_id"].equals(base["customer_id"].reset_index(drop=True)):
        raise AnalysisError(f"the customer view has {len(view):,} rows for {len(base):,} customers: a join lost or "
                            f"duplicated customers.")
    rest = [c for c in view.columns if c not in VIEW_COLUMNS]
    return view[[*VIEW_COLUMNS, *rest]]


def view_coverage(view: pd.DataFrame) -> pd.DataFrame:
    """How many customers have each column of the view filled: ``column, n_filled, share_filled``."""
    n = max(len(view), 1)
    rows = [{"column": c, "n_filled": int(view[c].notna().sum()), "share_filled": view[c].notna().sum() / n}
            for c in VIEW_COLUMNS if c in view]
    return pd.DataFrame(rows)
