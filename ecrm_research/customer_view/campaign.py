"""A campaign plan within a budget, and the size of the holdout that would test it.

Each customer of the customer view gets at most one contact, the action with the larger expected
value::

    retention   EV = churn_probability × value × save_rate
    cross-sell  EV = p_accept × margin                        (margin in money per accepted offer)
                EV = p_accept × margin × price(offer)         (with offer_prices: margin is a rate)
    net value      = EV − contact cost (of the customer's channel)

Contacts are ranked by net value (ties: customer_id), and taken from the top while the cumulative
cost stays within the budget and the net value is positive; the first contact that would exceed the
budget ends the list (a prefix cut: no cheaper contact further down jumps the queue).

The save rate (the share of would-be churners a contact keeps) is an *assumption* until a test
measures it: :func:`holdout_size` gives the customers a randomised control group needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from ..exceptions import DataError, ParameterError

__all__ = ["CampaignPlan", "PLAN_COLUMNS", "plan_campaign", "holdout_size"]

#: Columns of :attr:`CampaignPlan.plan`, in order.
PLAN_COLUMNS = ["customer_id", "segment", "channel", "action", "offer", "expected_value", "cost", "net_value",
                "rank", "cumulative_cost", "in_budget", "churn_probability", "retention_value", "cross_sell_value"]


@dataclass
class CampaignPlan:
    """The ranked contact list and its totals.

    Attributes
    ----------
    plan : DataFrame
        One row per customer with a possible action (:data:`PLAN_COLUMNS`), ranked; ``in_budget``
        marks the contacts to make.
    by_segment, by_channel : DataFrame
        Totals of the in-budget contacts: ``contacts, retention, cross_sell, cost, expected_value,
        net_value``; they sum to :attr:`summary`.
    summary : DataFrame
        One row: ``candidates, contacts, retention, cross_sell, cost, expected_value, net_value, budget,
        budget_used`` (share of the budget spent).
    assumptions : list of str
        What the plan takes for granted, in plain words.
    parameters : dict
        The parameters the plan was made with.
    """

    plan: pd.DataFrame
    by_segment: pd.DataFrame
    by_channel: pd.DataFrame
    summary: pd.DataFrame
    assumptions: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def contacts(self) -> pd.DataFrame:
        """The in-budget rows of :attr:`plan`."""
        return self.plan[self.plan["in_budget"]]

    def retention_holdout(self, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> dict[str, Any]:
        """The holdout that would test the save rate on the plan's in-budget retention contacts.

        Outcome: the customer orders again within the horizon. Without contact the expected rate is
        ``1 − mean(churn_probability)``; with it, the assumed save rate lifts it by
        ``save_rate × mean(churn_probability)``. Returns :func:`holdout_size` plus ``n_contacts``
        (retention contacts in the plan) and ``enough`` (whether they cover the treated group).
        Raises ParameterError when the plan has no retention contact or the save rate is 0.
        """
        ret = self.contacts[self.contacts["action"] == "retention"]
        if ret.empty:
            raise ParameterError("the plan has no retention contact in the budget: nothing to test.")
        p = float(ret["churn_probability"].mean())
        out = holdout_size(1 - p, self.parameters["save_rate"] * p, alpha=alpha, power=power, ratio=ratio)
        out.update(n_contacts=len(ret), enough=len(ret) >= out["n_treated"])
        return out


def _check_nonnegative(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} must be a number ≥ 0.") from None
    if not np.isfinite(v) or v < 0:
        raise ParameterError(f"{name}={value!r} must be a finite number ≥ 0.")
    return v


def _check_share(name: str, value: Any) -> float:
    v = _check_nonnegative(name, value)
    if v > 1:
        raise ParameterError(f"{name}={value!r} must be a share between 0 and 1.")
    return v


def _channel_costs(contact_cost: float | Mapping[str, float], channels: pd.Series) -> np.ndarray:
    if not isinstance(contact_cost, Mapping):
        return np.full(len(channels), _check_nonnegative("contact_cost", contact_cost))
    costs = {k: _check_nonnegative(f"contact_cost[{k!r}]", v) for k, v in contact_cost.items()}
    unknown = sorted(set(channels.unique()) - set(costs))
    if unknown:
        raise ParameterError(f"contact_cost has no cost for channel(s) {unknown}; it covers {sorted(costs)}.")
    return channels.map(costs).to_numpy(dtype=float)


def _p_accept(view: pd.DataFrame, p_accept: float | str) -> np.ndarray:
    if isinstance(p_accept, str):
        if p_accept not in view:
            raise ParameterError(f"p_accept={p_accept!r} is not a column of the view; pass a probability or one of "
                                 f"{list(view.columns)}.")
        p = pd.to_numeric(view[p_accept], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if np.any((p < 0) | (p > 1)):
            raise DataError(f"view column {p_accept!r} has values outside [0, 1]; it cannot be P(accept).",
                            column=p_accept)
        return p
    return np.full(len(view), _check_share("p_accept", p_accept))


def _totals(contacts: pd.DataFrame, by: str) -> pd.DataFrame:
    g = contacts.assign(retention=contacts["action"].eq("retention"),
                        cross_sell=contacts["action"].eq("cross-sell")).groupby(by, observed=True, sort=True)
    out = g.agg(contacts=("customer_id", "size"), retention=("retention", "sum"), cross_sell=("cross_sell", "sum"),
                cost=("cost", "sum"), expected_value=("expected_value", "sum"), net_value=("net_value", "sum"))
    return out.reset_index().astype({"contacts": int, "retention": int, "cross_sell": int})


def _assumptions(save_rate: float, p_accept: float | str, margin: float, priced: bool, budget: float) -> list[str]:
    accept = (f"P(accept) of a cross-sell offer = {p_accept:.3f}" if not isinstance(p_accept, str)
              else f"P(accept) of a cross-sell offer = the view's column '{p_accept}'")
    margin_text = (f"a margin rate of {margin:.0%} of the offered product's price" if priced
                   else f"a margin of {margin:,.2f} per accepted offer")
    return [
        f"The save rate ({save_rate:.0%} of would-be churners kept by a retention contact) is an assumption "
        f"until a randomised holdout test measures it.",
        f"{accept}, taken from the next-best-offer backtest hit rate: customers who bought the offered product "
        f"without being contacted, so it is a proxy for acceptance, not a measured response to the offer.",
        f"A cross-sell earns {margin_text}; a retention save keeps the customer's value (historical CLV).",
        "churn_probability is the model's probability of no completed order within the horizon; the plan "
        "trusts its calibration.",
        f"One contact per customer (the action with the larger expected value; retention wins ties); contacts are "
        f"taken by net value until the budget of {budget:,.2f} would be exceeded.",
    ]


def plan_campaign(view: pd.DataFrame, *, budget: float, contact_cost: float | Mapping[str, float],
                  save_rate: float, margin: float, p_accept: float | str,
                  channel_by_segment: Mapping[str, str] | None = None, default_channel: str = "email",
                  offer_prices: Mapping[str, float] | pd.Series | None = None) -> CampaignPlan:
    """Rank the customers by the net value of their best contact and cut the list at the budget.

    Parameters
    ----------
    view : DataFrame
        The customer view (``customer_id, segment, churn_probability, value, next_best_offer``).
    budget : float
        Money available for contacts (≥ 0).
    contact_cost : float or mapping
        Cost of one contact (≥ 0), or channel → cost.
    save_rate : float
        Share (0-1) of would-be churners a retention contact keeps (an assumption until tested).
    margin : float
        Money earned per accepted cross-sell offer; with ``offer_prices`` a margin *rate* (0-1) on the
        offered product's price.
    p_accept : float or str
        P(accept) of a cross-sell offer (0-1; e.g. the NBO backtest hit rate at k = 1), or the name of a
        view column holding it per customer (e.g. ``'offer_confidence'``).
    channel_by_segment : mapping, optional
        Segment → channel; segments not listed get ``default_channel``.
    default_channel : str, default 'email'
    offer_prices : mapping or Series, optional
        Product id → price, for the cross-sell value of a priced offer.

    Returns
    -------
    CampaignPlan

    Notes
    -----
    retention EV = churn_probability × value × save_rate; cross-sell EV = p_accept × margin
    (× price); the action with the larger EV is kept (retention wins ties); net value = EV − cost.
    Rank = order by net value descending, then customer_id ascending; ``cumulative_cost`` sums the
    cost down the ranking and ``in_budget`` = (net value > 0) and (cumulative cost ≤ budget), cut at
    the first row where either fails.
    """
    budget = _check_nonnegative("budget", budget)
    save_rate = _check_share("save_rate", save_rate)
    margin = _check_share("margin", margin) if offer_prices is not None else _check_nonnegative("margin", margin)
    need = [c for c in ("customer_id", "segment", "churn_probability", "value", "next_best_offer") if c not in view]
    if need:
        raise DataError(f"the view lacks column(s) {need}; build it with build_customer_view(...).", column=need[0])
    pa = _p_accept(view, p_accept)
    churn = pd.to_numeric(view["churn_probability"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    value = pd.to_numeric(view["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    offer = view["next_best_offer"].astype("string")
    has_offer = (offer.notna() & (offer.fillna("") != "")).to_numpy(bool)
    gain = np.full(len(view), margin)
    if offer_prices is not None:
        gain = margin * offer.map(pd.Series(offer_prices, dtype=float)).to_numpy(dtype=float, na_value=np.nan)
    retention = churn * value * save_rate
    cross = np.where(has_offer, pa * gain, np.nan)
    use_retention = np.isfinite(retention) & ~(np.isfinite(cross) & (cross > retention))
    ev = np.where(use_retention, retention, cross)
    segment = view["segment"].astype("string").fillna("unknown")
    channels = segment.map(dict(channel_by_segment or {})).fillna(default_channel).astype(str)
    plan = pd.DataFrame({
        "customer_id": view["customer_id"].astype("string").to_numpy(), "segment": segment.to_numpy(),
        "channel": channels.to_numpy(), "action": np.where(use_retention, "retention", "cross-sell"),
        "offer": np.where(use_retention, pd.NA, offer.to_numpy(dtype=object)),
        "expected_value": ev, "cost": _channel_costs(contact_cost, channels),
        "churn_probability": churn, "retention_value": retention, "cross_sell_value": cross,
    })
    plan = plan[np.isfinite(plan["expected_value"])]
    plan["net_value"] = plan["expected_value"] - plan["cost"]
    plan = plan.sort_values(["net_value", "customer_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    plan["rank"] = np.arange(1, len(plan) + 1)
    plan["cumulative_cost"] = plan["cost"].cumsum()
    ok = ((plan["net_value"] > 0) & (plan["cumulative_cost"] <= budget + 1e-9 * max(budget, 1.0))).to_numpy()
    plan["in_budget"] = np.cumprod(ok).astype(bool) if len(plan) else ok.astype(bool)
    plan = plan[PLAN_COLUMNS]
    contacts = plan[plan["in_budget"]]
    summary = pd.DataFrame([{
        "candidates": len(plan), "contacts": len(contacts),
        "retention": int(contacts["action"].eq("retention").sum()),
        "cross_sell": int(contacts["action"].eq("cross-sell").sum()),
        "cost": float(contacts["cost"].sum()), "expected_value": float(contacts["expected_value"].sum()),
        "net_value": float(contacts["net_value"].sum()), "budget": budget,
        "budget_used": float(contacts["cost"].sum()) / budget if budget > 0 else np.nan,
    }])
    params = dict(budget=budget, contact_cost=contact_cost, save_rate=save_rate, margin=margin, p_accept=p_accept,
                  channel_by_segment=dict(channel_by_segment or {}), default_channel=default_channel,
                  priced=offer_prices is not None)
    return CampaignPlan(plan=plan, by_segment=_totals(contacts, "segment"), by_channel=_totals(contacts, "channel"),
                        summary=summary, assumptions=_assumptions(save_rate, p_accept, margin,
                                                                  offer_prices is not None, budget),
                        parameters=params)


def holdout_size(baseline_rate: float, lift: float, *, alpha: float = 0.05, power: float = 0.8,
                 ratio: float = 1.0) -> dict[str, Any]:
    """Customers needed to detect a lift in a rate with a randomised control group.

    Parameters
    ----------
    baseline_rate : float
        The outcome rate without contact (e.g. the share of targeted customers who stay), in (0, 1).
    lift : float
        The absolute lift to detect: treated rate = baseline_rate + lift (≠ 0, inside (0, 1)).
    alpha : float, default 0.05
        Two-sided significance level.
    power : float, default 0.8
        Probability of detecting the lift when it is there.
    ratio : float, default 1.0
        Control group size / treated group size.

    Returns
    -------
    dict
        ``baseline_rate, treated_rate, lift, effect_size_h, alpha, power, ratio, n_treated, n_control,
        n_total, n_unpooled_approx`` (group sizes rounded up).

    Notes
    -----
    Cohen's effect size on the arcsine scale, h = 2 asin√p₁ − 2 asin√p₀ (statsmodels
    ``proportion_effectsize``); ``NormalIndPower().solve_power`` then gives the treated group
    n₁ ≈ (1 + 1/ratio) · ((z₁₋α/₂ + z_power) / h)² (exact up to the negligible far tail of the
    two-sided test). With ratio 1 that is Cohen's (1988, table 6.4.1) n = 392 per group for h = 0.2.
    ``n_unpooled_approx`` is the textbook normal approximation without the transform (treated group):
    (z₁₋α/₂ + z_power)² · (p₁(1−p₁) + p₀(1−p₀)/ratio) / (p₁ − p₀)², for comparison.
    """
    p0 = _check_share("baseline_rate", baseline_rate)
    p1 = float(baseline_rate) + float(lift)
    if not (0 < p0 < 1 and 0 < p1 < 1):
        raise ParameterError(f"baseline_rate={baseline_rate!r} and baseline_rate + lift={p1!r} must both lie "
                             f"strictly between 0 and 1.")
    if lift == 0:
        raise ParameterError("lift=0 cannot be detected; pass the smallest lift worth finding (e.g. 0.05).")
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha={alpha!r} must lie strictly between 0 and 1 (e.g. 0.05).")
    if not 0 < power < 1:
        raise ParameterError(f"power={power!r} must lie strictly between 0 and 1 (e.g. 0.8).")
    if not ratio > 0:
        raise ParameterError(f"ratio={ratio!r} must be > 0 (control size / treated size).")
    h = float(proportion_effectsize(p1, p0))
    n1 = float(NormalIndPower().solve_power(effect_size=abs(h), alpha=alpha, power=power, ratio=ratio,
                                            alternative="two-sided"))
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    unpooled = z ** 2 * (p1 * (1 - p1) + p0 * (1 - p0) / ratio) / (p1 - p0) ** 2
    n_t, n_c = int(np.ceil(n1 - 1e-9)), int(np.ceil(n1 * ratio - 1e-9))
    return {"baseline_rate": p0, "treated_rate": p1, "lift": float(lift), "effect_size_h": h, "alpha": alpha,
            "power": power, "ratio": ratio, "n_treated": n_t, "n_control": n_c, "n_total": n_t + n_c,
            "n_unpooled_approx": int(np.ceil(unpooled - 1e-9))}
