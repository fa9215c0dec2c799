"""Knowing the data: descriptive statistics, monthly activity, cohort retention and purchase gaps.

These feed the overview notebook (step 4 and 5 of "knowing the data") and give the other
analyses data-driven defaults, e.g. an inactivity window for churn labelling from the observed
gaps between a customer's orders.

All functions take cleaned canonical tables (``dict`` of DataFrames as returned by
:func:`ecrm_research.quality.clean`) and return tidy DataFrames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exceptions import AnalysisError


def _completed_orders(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    orders = tables["orders"]
    done = orders[orders["status"].astype("string") == "completed"]
    if done.empty:
        raise AnalysisError("No completed orders in the data: nothing to describe. "
                            f"Order statuses present: {orders['status'].value_counts().to_dict()}.")
    return done


def order_values(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Value of each order = Σ quantity × unit_price over its lines, indexed by order_id."""
    items = tables["order_items"]
    value = items["quantity"].to_numpy(float) * items["unit_price"].to_numpy(float)
    return pd.Series(value, index=items["order_id"].to_numpy()).groupby(level=0).sum()


def summary_statistics(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Headline descriptive statistics as a two-column table (``statistic``, ``value``).

    Counts customers with at least one completed order, orders, lines, products, revenue,
    average order value, items per order, orders per customer and the date range.
    """
    orders = _completed_orders(tables)
    items = tables["order_items"]
    items = items[items["order_id"].isin(orders["order_id"])]
    values = order_values({"order_items": items})
    n_orders = len(orders)
    per_customer = orders.groupby("customer_id", observed=True).size()
    rows = [
        ("customers with a completed order", per_customer.size),
        ("customers in the customer table", len(tables["customers"]) if "customers" in tables else np.nan),
        ("completed orders", n_orders),
        ("order lines", len(items)),
        ("distinct products ordered", items["product_id"].nunique()),
        ("revenue", float(values.sum())),
        ("average order value", float(values.mean())),
        ("median order value", float(values.median())),
        ("lines per order", len(items) / n_orders),
        ("orders per customer (mean)", float(per_customer.mean())),
        ("orders per customer (median)", float(per_customer.median())),
        ("share of one-time buyers", float((per_customer == 1).mean())),
        ("first order", orders["ordered_at"].min()),
        ("last order", orders["ordered_at"].max()),
    ]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def monthly_activity(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Orders, active customers, new customers and revenue per calendar month.

    Returns
    -------
    DataFrame
        Columns ``month`` (first day), ``orders``, ``active_customers``, ``new_customers``,
        ``revenue``; one row per month between the first and last order (months without
        orders appear with zeros).
    """
    orders = _completed_orders(tables)[["order_id", "customer_id", "ordered_at"]].copy()
    orders["month"] = orders["ordered_at"].dt.to_period("M")
    values = order_values(tables)
    orders["value"] = orders["order_id"].map(values).fillna(0.0).to_numpy(float)
    first = orders.groupby("customer_id", observed=True)["month"].min()
    g = orders.groupby("month")
    out = pd.DataFrame({
        "orders": g.size(),
        "active_customers": g["customer_id"].nunique(),
        "revenue": g["value"].sum(),
    })
    out["new_customers"] = first.value_counts().reindex(out.index, fill_value=0)
    full = pd.period_range(out.index.min(), out.index.max(), freq="M")
    out = out.reindex(full, fill_value=0)
    out.index = out.index.to_timestamp()
    out.index.name = "month"
    return out.reset_index()[["month", "orders", "active_customers", "new_customers", "revenue"]]


def cohort_retention(tables: dict[str, pd.DataFrame], *, max_age: int | None = 12) -> pd.DataFrame:
    """Monthly acquisition cohorts and the share of each cohort active in later months.

    A customer's cohort is the calendar month of their first completed order; they are
    *active* at age ``m`` if they complete an order in month ``cohort + m``. Retention at age 0
    is 1 by definition.

    Returns
    -------
    DataFrame
        Tidy: ``cohort`` (month start), ``age`` (months since first order), ``customers``
        (active), ``cohort_size``, ``retention`` (= customers / cohort_size). Ages beyond the
        end of the data are absent rather than zero, so late cohorts are not penalised.
    """
    orders = _completed_orders(tables)[["customer_id", "ordered_at"]].copy()
    month = orders["ordered_at"].dt.to_period("M")
    orders["month"] = month.dt.year * 12 + month.dt.month
    first = orders.groupby("customer_id", observed=True)["month"].transform("min")
    orders["cohort"] = first
    orders["age"] = orders["month"] - first
    active = orders.drop_duplicates(["customer_id", "age"]).groupby(["cohort", "age"]).size()
    sizes = active.xs(0, level="age")
    out = active.rename("customers").reset_index()
    out["cohort_size"] = out["cohort"].map(sizes)
    out["retention"] = out["customers"] / out["cohort_size"]
    if max_age is not None:
        out = out[out["age"] <= max_age]
    # month ordinals (year*12 + month) back to month-start timestamps
    out["cohort"] = pd.to_datetime(pd.DataFrame({"year": (out["cohort"] - 1) // 12,
                                                 "month": (out["cohort"] - 1) % 12 + 1, "day": 1}))
    return out.reset_index(drop=True)[["cohort", "age", "customers", "cohort_size", "retention"]]


def purchase_gaps(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Days between consecutive completed orders of the same customer (repeat buyers only)."""
    orders = _completed_orders(tables)[["customer_id", "ordered_at"]].sort_values(["customer_id", "ordered_at"])
    gaps = orders.groupby("customer_id", observed=True)["ordered_at"].diff().dt.total_seconds() / 86400.0
    return gaps.dropna().rename("gap_days").reset_index(drop=True)


def suggest_inactivity_days(gaps: pd.Series, quantile: float = 0.9, *, round_to: int = 30) -> int:
    """An inactivity window for churn labelling: the ``quantile`` of purchase gaps, rounded up.

    With the 90th percentile, 9 in 10 repeat purchases happen within the window, so a customer
    silent for longer than it is unlikely to be merely between orders.
    """
    if len(gaps) == 0:
        raise AnalysisError("No repeat purchases: cannot suggest an inactivity window from purchase gaps.")
    q = float(np.quantile(gaps, quantile))
    return int(max(round_to, np.ceil(q / round_to) * round_to))
