"""Analyses on awkward data: clear errors instead of raw exceptions, choices that fit the data (issue 14)."""

from __future__ import annotations

import pandas as pd
import pytest

from ecrm_research import association as ar
from ecrm_research import prep, survival
from ecrm_research.association.auto import MIN_BASKETS_PER_ITEMSET
from ecrm_research.exceptions import AnalysisError, ParameterError
from ecrm_research.prep.churn_data import check_history

DAY = pd.Timedelta(days=1)


def _baskets(n_pairs: int, n_noise: int) -> list[list[str]]:
    """``n_pairs`` baskets holding {a, b} and ``n_noise`` singletons of distinct items."""
    return [["a", "b"]] * n_pairs + [[f"x{i}"] for i in range(n_noise)]


def test_choose_min_support_takes_the_highest_value_with_enough_rules():
    # {a,b} in 30 of 1,000 baskets: support 0.03 -> 2 rules from 0.02 down, none at 0.05
    c = ar.choose_min_support(_baskets(30, 970), min_confidence=0.5, max_len=2, target_rules=2)
    assert c.min_support == 0.02
    assert list(c.tried["min_support"]) == [0.2, 0.1, 0.05, 0.02]
    assert list(c.tried["rules"]) == [0, 0, 0, 2]
    assert "0.02 was chosen" in c.reason and "20 of 1,000 baskets" in c.reason and "Pass min_support" in c.reason


def test_choose_min_support_stops_at_the_basket_floor_when_rules_are_few():
    # target never reached: the lowest value whose count is >= the floor is taken, and the reason says so
    c = ar.choose_min_support(_baskets(30, 970), min_confidence=0.5, max_len=2, target_rules=50)
    assert c.min_support == 0.005  # 0.002 would need only 2 baskets, below the floor of 5
    assert (c.tried["min_count"] >= MIN_BASKETS_PER_ITEMSET).all()
    assert "fewer than 50 rules" in c.reason and "at least 5 baskets" in c.reason


def test_choose_min_support_on_few_baskets_uses_the_floor_itself():
    c = ar.choose_min_support(_baskets(6, 4), min_confidence=0.5, max_len=2)
    assert c.min_support == 0.5 and list(c.tried["rules"]) == [2]
    res = ar.mine_rules(_baskets(6, 4), c.min_support, 0.5, 2)  # the choice mines
    assert len(res.rules) == 2


def test_choose_min_support_stops_before_the_memory_guard():
    # a memory limit so small that every value is refused: a clear error, not a crash
    with pytest.raises(AnalysisError, match=r"Cannot choose a min_support for 1,000 baskets.*memory guard"):
        ar.choose_min_support(_baskets(30, 970), max_len=2, max_memory_gb=1e-9)


def test_choose_min_support_refuses_an_empty_basket_table_and_bad_target():
    with pytest.raises(AnalysisError, match="No baskets.*all orders cancelled"):
        ar.choose_min_support(pd.DataFrame({"basket_id": pd.Series([], dtype=str), "item": pd.Series([], dtype=str)}))
    with pytest.raises(ParameterError, match="target_rules=0"):
        ar.choose_min_support(_baskets(30, 970), target_rules=0)


def test_choose_min_support_on_the_sample_equals_its_documented_value(sample_dir):
    """The notebook uses 0.01 on the bundled sample when min_support is None; the automatic choice agrees."""
    bd = prep.engine("pandas").baskets(str(sample_dir), None, None)
    c = ar.choose_min_support(bd.baskets, 0.5, 4)
    assert c.min_support == 0.01


def test_require_baskets_names_the_exclusions_when_all_orders_are_cancelled():
    excl = pd.DataFrame({"step": ["cleaning (orders)", "cleaning (order_items)"], "reason": ["cancelled", "cancelled"],
                         "rows": [57398, 207164]})
    with pytest.raises(AnalysisError) as e:
        ar.require_baskets(0, excl, "shop.csv")
    msg = str(e.value)
    assert "No baskets to mine in shop.csv" in msg
    assert "cancelled in cleaning (orders): 57,398 rows" in msg and "'completed'" in msg
    ar.require_baskets(3, excl, "shop.csv")  # baskets left: no error


def test_require_completed_orders_counts_the_input_statuses():
    raw = pd.DataFrame({"order_id": ["1", "2", "3"], "status": ["cancelled", "cancelled", "returned"]})
    cleaned = {"orders": raw.iloc[:0]}
    with pytest.raises(AnalysisError) as e:
        prep.require_completed_orders(raw, cleaned, "orders.csv")
    msg = str(e.value)
    assert "No completed orders in orders.csv" in msg and "3 orders read" in msg
    assert "'cancelled': 2" in msg and "'returned': 1" in msg and "value map of 'status'" in msg
    prep.require_completed_orders(raw, {"orders": raw.assign(status="completed")}, "orders.csv")


def test_churn_with_too_little_history_says_so():
    as_of = pd.Timestamp("2024-12-31")
    with pytest.raises(AnalysisError) as e:
        check_history(as_of - 60 * DAY, as_of, 60, 60)
    msg = str(e.value)
    assert "Too little history" in msg and "span 60 days" in msg and "= 120 days" in msg
    assert "-p inactivity_days 40 -p covariate_window_days 20" in msg
    check_history(as_of - 120 * DAY, as_of, 60, 60)  # exactly enough
    with pytest.raises(AnalysisError, match="No completed orders before as_of"):
        check_history(None, as_of, 60, 60)


def test_label_churn_on_a_60_day_shop_raises_the_history_error(sample_dir):
    p = prep.engine("pandas")
    cleaned = p.clean(p.load(str(sample_dir), None, None))
    t = dict(cleaned.tables)
    end = t["orders"]["ordered_at"].max()
    t["orders"] = t["orders"][t["orders"]["ordered_at"] > end - 60 * DAY]
    t["order_items"] = t["order_items"][t["order_items"]["order_id"].isin(t["orders"]["order_id"])]
    with pytest.raises(AnalysisError, match=r"Too little history to label churn: the data span \d+ days"):
        p.label_churn(t, inactivity_days=60, covariate_window_days=30)


def test_horizon_in_unit_labels_and_converts():
    assert survival.horizon_in_unit(None, 90, "days") == (90.0, "90 days")  # the sample's label, unchanged
    h, label = survival.horizon_in_unit(None, 90, "months")
    assert h == pytest.approx(90 * 12 / 365.25) and label == "2.96 months (90 days)"
    assert survival.horizon_in_unit(3, 90, "months") == (3.0, "3 months")
    with pytest.raises(ParameterError, match="time_unit='fortnights'"):
        survival.horizon_in_unit(None, 90, "fortnights")
    with pytest.raises(ParameterError, match="horizon=-1"):
        survival.horizon_in_unit(-1, 90, "weeks")


def test_churn_data_in_unit_rescales_durations_and_labels():
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "duration": [365.25, 730.5, 30.4375], "event": [1, 0, 1]})
    cd = survival.ChurnData(frame=frame, covariates=[], unit="days")
    assert cd.in_unit("days") is cd
    m = cd.in_unit("months")
    assert m.unit == "months" and m.frame["duration"].tolist() == pytest.approx([12, 24, 1])
    assert cd.frame["duration"].iloc[0] == 365.25  # the original is untouched
    summary = m.censoring_summary().set_index("statistic")["value"]
    assert "median follow-up (months)" in summary.index and summary["median follow-up (months)"] == pytest.approx(12)
    km = survival.kaplan_meier(m.frame, unit=m.unit)
    assert km.unit == "months"
    with pytest.raises(ParameterError, match="time_unit='hours'"):
        cd.in_unit("hours")
