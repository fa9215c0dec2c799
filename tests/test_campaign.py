"""Campaign plan within a budget and holdout sizing (ecrm_research.customer_view.campaign), by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from ecrm_research.customer_view.campaign import PLAN_COLUMNS, holdout_size, plan_campaign
from ecrm_research.exceptions import DataError, ParameterError


def view() -> pd.DataFrame:
    """Retention EV = p × value × 0.2; cross-sell EV = 0.1 × 30 = 3; cost 1 each.

    A: 0.5 × 100 × 0.2 = 10 vs 3 -> retention, net 9      D: 0.8 × 40 × 0.2 = 6.4, no offer -> net 5.4
    B: 0.1 × 150 × 0.2 = 3 vs 3 -> retention (ties), net 2  C: 0.05 × 20 × 0.2 = 0.2 vs 3 -> cross-sell, net 2
    E: no churn estimate, offer -> cross-sell 3, net 2      F: 0.01 × 10 × 0.2 = 0.02 -> net -0.98
    G: no churn estimate and no offer -> no candidate
    """
    return pd.DataFrame({
        "customer_id": ["A", "B", "C", "D", "E", "F", "G"],
        "segment": ["s1", "s1", "s2", "s2", "s1", "s2", "s1"],
        "churn_probability": [0.5, 0.1, 0.05, 0.8, np.nan, 0.01, np.nan],
        "value": [100.0, 150.0, 20.0, 40.0, 50.0, 10.0, 5.0],
        "next_best_offer": ["P1", "P2", "P3", None, "P9", None, None],
        "offer_confidence": [0.5, 0.1, 0.2, np.nan, 0.3, np.nan, np.nan],
    })


PARAMS = dict(contact_cost=1.0, save_rate=0.2, margin=30.0, p_accept=0.1)


def test_ranking_and_choice_by_hand():
    plan = plan_campaign(view(), budget=100.0, **PARAMS).plan
    assert list(plan.columns) == PLAN_COLUMNS
    assert plan["customer_id"].tolist() == ["A", "D", "B", "C", "E", "F"]  # net 9, 5.4, 2, 2, 2 (by id), -0.98
    assert plan["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    p = plan.set_index("customer_id")
    assert p["action"].to_dict() == {"A": "retention", "D": "retention", "B": "retention", "C": "cross-sell",
                                     "E": "cross-sell", "F": "retention"}
    np.testing.assert_allclose(p["expected_value"], [10.0, 6.4, 3.0, 3.0, 3.0, 0.02])
    np.testing.assert_allclose(p["net_value"], [9.0, 5.4, 2.0, 2.0, 2.0, -0.98])
    assert p.loc["C", "offer"] == "P3" and pd.isna(p.loc["A", "offer"])
    assert p.loc["C", "retention_value"] == pytest.approx(0.2) and p.loc["A", "cross_sell_value"] == pytest.approx(3)
    # the budget is ample: every positive net value is in, F (negative) is not
    assert p["in_budget"].to_dict() == {"A": True, "D": True, "B": True, "C": True, "E": True, "F": False}


def test_budget_cut_exact():
    for budget, n_in in ((0.0, 0), (0.99, 0), (1.0, 1), (3.5, 3), (4.0, 4), (5.0, 5), (6.0, 5)):
        result = plan_campaign(view(), budget=budget, **PARAMS)
        plan = result.plan
        inside = plan[plan["in_budget"]]
        assert len(inside) == n_in, budget
        assert inside["cost"].sum() <= budget
        nxt = plan[~plan["in_budget"]]
        if len(nxt):  # the next contact would exceed the budget, or lose money
            assert nxt["cumulative_cost"].iloc[0] > budget or nxt["net_value"].iloc[0] <= 0
        assert plan["in_budget"].is_monotonic_decreasing  # a prefix of the ranking
        assert result.summary.loc[0, "cost"] == pytest.approx(inside["cost"].sum())
    s = plan_campaign(view(), budget=3.5, **PARAMS).summary.iloc[0]
    assert (s["contacts"], s["retention"], s["cross_sell"]) == (3, 3, 0)
    assert s["expected_value"] == pytest.approx(19.4) and s["net_value"] == pytest.approx(16.4)
    assert s["budget_used"] == pytest.approx(3 / 3.5) and s["candidates"] == 6


def test_channels_and_totals_sum_to_plan():
    costs = {"phone": 4.0, "email": 0.5}
    result = plan_campaign(view(), budget=10.0, channel_by_segment={"s1": "phone"}, default_channel="email",
                           **dict(PARAMS, contact_cost=costs))
    p = result.plan.set_index("customer_id")
    # nets: A 10 - 4 = 6, D 6.4 - 0.5 = 5.9, C 3 - 0.5 = 2.5, B 3 - 4 = -1, E 3 - 4 = -1, F 0.02 - 0.5
    assert result.plan["customer_id"].tolist() == ["A", "D", "C", "F", "B", "E"]
    assert p["channel"].to_dict() == {"A": "phone", "D": "email", "C": "email", "F": "email", "B": "phone",
                                      "E": "phone"}
    assert p.loc[["A", "D", "C"], "in_budget"].all() and not p.loc[["F", "B", "E"], "in_budget"].any()
    by_seg, by_ch, summary = result.by_segment.set_index("segment"), result.by_channel.set_index("channel"), \
        result.summary.iloc[0]
    assert by_seg.loc["s1", "contacts"] == 1 and by_seg.loc["s2", "contacts"] == 2
    assert by_ch.loc["phone", "cost"] == 4.0 and by_ch.loc["email", "cost"] == 1.0
    for totals in (by_seg, by_ch):
        for col in ("contacts", "retention", "cross_sell", "cost", "expected_value", "net_value"):
            assert totals[col].sum() == pytest.approx(summary[col])
    assert summary["net_value"] == pytest.approx(6 + 5.9 + 2.5)
    with pytest.raises(ParameterError, match=r"no cost for channel\(s\) \['phone'\]"):
        plan_campaign(view(), budget=10.0, channel_by_segment={"s1": "phone"}, **dict(PARAMS, contact_cost={"email": 1}))


def test_priced_offers_and_per_customer_acceptance():
    prices = {"P1": 50.0, "P2": 10.0, "P3": 200.0, "P9": 5.0}
    p = plan_campaign(view(), budget=100.0, offer_prices=prices, **dict(PARAMS, margin=0.25)).plan
    p = p.set_index("customer_id")
    # cross-sell EV = 0.1 × 0.25 × price: A 1.25 < 10 (retention); C 5 > 0.2; E 0.125
    assert p.loc["C", "action"] == "cross-sell" and p.loc["C", "expected_value"] == pytest.approx(5.0)
    assert p.loc["E", "expected_value"] == pytest.approx(0.125)
    assert p.loc["B", "action"] == "retention" and p.loc["B", "cross_sell_value"] == pytest.approx(0.25)
    q = plan_campaign(view(), budget=100.0, **dict(PARAMS, p_accept="offer_confidence")).plan.set_index("customer_id")
    # P(accept) per customer: B 0.1 × 30 = 3 ties retention 3 (retention); C 0.2 × 30 = 6; E 0.3 × 30 = 9
    assert q.loc["C", "expected_value"] == pytest.approx(6.0) and q.loc["E", "expected_value"] == pytest.approx(9.0)
    assert q.loc["B", "action"] == "retention"
    with pytest.raises(ParameterError, match="margin=1.5"):
        plan_campaign(view(), budget=1.0, offer_prices=prices, **dict(PARAMS, margin=1.5))


@pytest.mark.parametrize("name, bad", [("budget", -1.0), ("contact_cost", -0.5), ("save_rate", 1.5),
                                       ("save_rate", -0.1), ("margin", -3.0), ("p_accept", 2.0),
                                       ("budget", float("nan"))])
def test_parameter_errors_name_the_parameter(name, bad):
    kwargs = dict(PARAMS, budget=10.0)
    kwargs[name] = bad
    with pytest.raises(ParameterError, match=f"{name}={bad!r}".replace("(", r"\(").replace(")", r"\)")):
        plan_campaign(view(), **kwargs)


def test_input_errors_and_assumptions():
    with pytest.raises(DataError, match=r"lacks column\(s\) \['value'\]"):
        plan_campaign(view().drop(columns="value"), budget=1.0, **PARAMS)
    with pytest.raises(ParameterError, match="'nope' is not a column"):
        plan_campaign(view(), budget=1.0, **dict(PARAMS, p_accept="nope"))
    result = plan_campaign(view(), budget=3.5, **PARAMS)
    text = " ".join(result.assumptions)
    assert "save rate (20%" in text and "assumption until a randomised holdout test" in text
    assert "P(accept) of a cross-sell offer = 0.100" in text and "backtest hit rate" in text
    assert result.parameters["budget"] == 3.5 and len(result.contacts) == 3
    empty = plan_campaign(view().iloc[[6]], budget=5.0, **PARAMS)  # G: nothing to offer
    assert empty.plan.empty and empty.summary.loc[0, "contacts"] == 0
    with pytest.raises(ParameterError, match="no retention contact"):
        empty.retention_holdout()


def test_retention_holdout_from_plan():
    result = plan_campaign(view(), budget=3.5, **PARAMS)  # retention contacts A, D, B: churn 0.5, 0.8, 0.1
    r = result.retention_holdout()
    # stay rate without contact 1 − 0.4667 = 0.5333; with a 20% save rate + 0.2 × 0.4667 = 0.0933
    p = (0.5 + 0.8 + 0.1) / 3
    assert r["baseline_rate"] == pytest.approx(1 - p) and r["lift"] == pytest.approx(0.2 * p)
    assert r["n_treated"] == math.ceil(arcsine_n(1 - p, 1 - p + 0.2 * p))
    assert r["n_contacts"] == 3 and r["enough"] is False


# ---------------------------------------------------------------- holdout size

Z = norm.ppf(0.975) + norm.ppf(0.8)  # 1.959964 + 0.841621


def arcsine_n(p0: float, p1: float, ratio: float = 1.0) -> float:
    """n₁ = (1 + 1/ratio) ((z_{1-α/2} + z_power) / h)², h = 2 asin √p₁ − 2 asin √p₀ (by hand)."""
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))
    return (1 + 1 / ratio) * (Z / h) ** 2


@pytest.mark.parametrize("p0, lift, ratio", [(0.5, 0.1, 1.0), (0.3, 0.05, 1.0), (0.6, 0.05, 1.0),
                                             (0.5, 0.1, 2.0), (0.2, -0.05, 1.0)])
def test_holdout_matches_arcsine_formula(p0, lift, ratio):
    r = holdout_size(p0, lift, ratio=ratio)
    n1 = arcsine_n(p0, p0 + lift, ratio)
    assert r["n_treated"] == math.ceil(n1)
    assert r["n_control"] == math.ceil(n1 * ratio) and r["n_total"] == r["n_treated"] + r["n_control"]
    assert r["treated_rate"] == pytest.approx(p0 + lift)


def test_holdout_known_values():
    r = holdout_size(0.5, 0.1)
    # h = 2 asin √0.6 − 2 asin √0.5 = 0.201358; n = 2 (2.801585 / 0.201358)² = 387.17 -> 388 per group
    assert r["effect_size_h"] == pytest.approx(0.2013579, abs=1e-6)
    assert (r["n_treated"], r["n_control"], r["n_total"]) == (388, 388, 776)
    # the unpooled normal approximation (no arcsine): 2.801585² (0.24 + 0.25) / 0.01 = 384.6 -> 385
    assert r["n_unpooled_approx"] == math.ceil(Z ** 2 * (0.6 * 0.4 + 0.5 * 0.5) / 0.1 ** 2) == 385
    # Cohen (1988), Statistical Power Analysis, table 6.4.1 (a2 = .05, power .80): n = 392, 63, 25 per group
    # for h = 0.2, 0.5, 0.8 (his n rounded to the nearest; ours rounds up: 392.44, 62.79, 24.53)
    for h, cohen in ((0.2, 392), (0.5, 63), (0.8, 25)):
        p1 = math.sin(math.asin(math.sqrt(0.5)) + h / 2) ** 2  # a rate pair with exactly this h
        r = holdout_size(0.5, p1 - 0.5)
        assert r["effect_size_h"] == pytest.approx(h, abs=1e-12)
        assert round(arcsine_n(0.5, p1)) == cohen and r["n_treated"] == math.ceil(arcsine_n(0.5, p1))
    r80, r90 = holdout_size(0.5, 0.1), holdout_size(0.5, 0.1, power=0.9)
    assert r90["n_treated"] > r80["n_treated"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(baseline_rate=0.5, lift=0.0), "lift=0"), (dict(baseline_rate=0.95, lift=0.1), "strictly between 0 and 1"),
    (dict(baseline_rate=1.5, lift=0.1), "baseline_rate=1.5"), (dict(baseline_rate=0.5, lift=0.1, alpha=0), "alpha=0"),
    (dict(baseline_rate=0.5, lift=0.1, power=1.0), "power=1.0"), (dict(baseline_rate=0.5, lift=0.1, ratio=0), "ratio=0"),
])
def test_holdout_errors(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        holdout_size(**kwargs)
