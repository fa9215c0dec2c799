"""activity.py on hand-made histories whose answers are worked out by hand."""

import pandas as pd
import pytest

from ecrm_research import activity
from ecrm_research.exceptions import AnalysisError
from ecrm_research.prep import orders as prep_orders


@pytest.fixture
def tables():
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "ordered_at": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-04-01",
                                      "2024-01-20", "2024-01-30", "2024-03-15"]),
        "status": pd.Categorical(["completed", "completed", "completed", "completed", "cancelled", "completed"],
                                 categories=["completed", "cancelled", "returned"]),
    })
    items = pd.DataFrame({
        "order_id": ["o1", "o1", "o2", "o3", "o4", "o5", "o6"],
        "line_no": [0, 1, 0, 0, 0, 0, 0],
        "product_id": ["x", "y", "x", "z", "x", "y", "y"],
        "quantity": [1.0, 2.0, 1.0, 3.0, 1.0, 5.0, 2.0],
        "unit_price": [10.0, 5.0, 10.0, 1.0, 10.0, 100.0, 4.0],
    })
    return {"orders": orders, "order_items": items, "customers": pd.DataFrame({"customer_id": ["a", "b", "c", "d"]})}


def test_summary_statistics_excludes_cancelled(tables):
    s = activity.summary_statistics(tables).set_index("statistic")["value"]
    assert s["completed orders"] == 5
    assert s["customers with a completed order"] == 3
    assert s["customers in the customer table"] == 4
    # o1=20, o2=10, o3=3, o4=10, o6=8; the cancelled o5 (500) is not revenue
    assert s["revenue"] == pytest.approx(51.0)
    assert s["average order value"] == pytest.approx(51.0 / 5)
    assert s["share of one-time buyers"] == pytest.approx(2 / 3)


def test_monthly_activity_fills_empty_months(tables):
    m = activity.monthly_activity(tables)
    assert list(m["month"].dt.strftime("%Y-%m")) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert list(m["orders"]) == [2, 1, 1, 1]
    assert list(m["active_customers"]) == [2, 1, 1, 1]
    assert list(m["new_customers"]) == [2, 0, 1, 0]
    assert list(m["revenue"]) == pytest.approx([30.0, 10.0, 8.0, 3.0])


def test_cohort_retention_by_hand(tables):
    c = activity.cohort_retention(tables).set_index(["cohort", "age"])
    jan = pd.Timestamp("2024-01-01")
    # Jan cohort = {a, b}: a active at ages 0, 1, 3; b only at 0
    assert c.loc[(jan, 0), "retention"] == 1.0
    assert c.loc[(jan, 1), "retention"] == 0.5
    assert c.loc[(jan, 3), "retention"] == 0.5
    assert (jan, 2) not in c.index  # nobody active in March from the Jan cohort
    assert c.loc[(pd.Timestamp("2024-03-01"), 0), "cohort_size"] == 1


def test_purchase_gaps_and_window(tables):
    gaps = prep_orders.purchase_gaps(tables)
    assert sorted(gaps.round(6)) == [36.0, 51.0]  # a: Jan 5 -> Feb 10 -> Apr 1; b's 2nd order is cancelled
    assert prep_orders.suggest_inactivity_days(gaps, 0.9) == 60
    with pytest.raises(AnalysisError, match="No repeat purchases"):
        prep_orders.suggest_inactivity_days(pd.Series([], dtype=float))


def test_no_completed_orders_is_a_clear_error(tables):
    t = dict(tables)
    t["orders"] = tables["orders"].assign(status=pd.Categorical(["cancelled"] * 6))
    with pytest.raises(AnalysisError, match="No completed orders"):
        activity.monthly_activity(t)
