"""Descriptive statistics of the cleaned tables: headline numbers, order values, monthly activity, cohort retention.

All functions take cleaned canonical tables (``dict`` of DataFrames as returned by
:func:`ecrm_research.data.quality.clean`) and return tidy DataFrames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.keys import int_codes
from ..prep.orders import CompletedOrders


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
    c = CompletedOrders(tables)
    orders = c.orders
    items = tables["order_items"]
    in_done = c.items_pos >= 0
    n_lines = int(in_done.sum())
    lines_per_order = np.bincount(c.items_pos[in_done], minlength=c.n)
    values = c.value[lines_per_order > 0]  # orders without lines have no value (as a group-by on lines)
    n_orders = c.n
    has = c.cust >= 0
    per_customer = np.bincount(c.cust[has], minlength=len(c.cust_ids))
    pid = items["product_id"]
    pcodes, _ = int_codes(pid[in_done].reset_index(drop=True)) if n_lines else (np.zeros(0, np.int64), 0)
    n_products = len(np.unique(pcodes[np.asarray(pid[in_done].notna(), dtype=bool)])) if n_lines else 0
    rows = [
        ("customers with a completed order", per_customer.size),
        ("customers in the customer table", len(tables["customers"]) if "customers" in tables else np.nan),
        ("completed orders", n_orders),
        ("order lines", n_lines),
        ("distinct products ordered", n_products),
        ("revenue", float(values.sum())),
        ("average order value", float(values.mean()) if len(values) else np.nan),
        ("median order value", float(np.median(values)) if len(values) else np.nan),
        ("lines per order", n_lines / n_orders),
        ("orders per customer (mean)", float(per_customer.mean())),
        ("orders per customer (median)", float(np.median(per_customer))),
        ("share of one-time buyers", float((per_customer == 1).mean())),
        ("first order", orders["ordered_at"].min()),
        ("last order", orders["ordered_at"].max()),
    ]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def _n_unique_pairs(a: np.ndarray, b: np.ndarray, nb: int) -> np.ndarray:
    """Distinct (a, b) pairs as int64 ids ``a * nb + b``."""
    return np.unique(a.astype(np.int64) * nb + b)


def monthly_activity(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Orders, active customers, new customers and revenue per calendar month.

    Returns
    -------
    DataFrame
        Columns ``month`` (first day), ``orders``, ``active_customers``, ``new_customers``,
        ``revenue``; one row per month between the first and last order (months without
        orders appear with zeros).
    """
    c = CompletedOrders(tables)
    lo, hi = int(c.month.min()), int(c.month.max())
    m = c.month - lo
    nm = hi - lo + 1
    has = c.cust >= 0
    nc = len(c.cust_ids)
    pairs = _n_unique_pairs(m[has], c.cust[has], nc)
    first = np.full(nc, nm, dtype=np.int64)
    np.minimum.at(first, c.cust[has], m[has])
    months = (np.arange(lo, hi + 1).astype("datetime64[M]")).astype("datetime64[ns]")
    out = pd.DataFrame({
        "month": months,
        "orders": np.bincount(m, minlength=nm).astype(np.int64),
        "active_customers": np.bincount(pairs // nc, minlength=nm).astype(np.int64),
        "new_customers": np.bincount(first[first < nm], minlength=nm).astype(np.int64),
        "revenue": np.bincount(m, weights=c.value, minlength=nm),
    })
    return out[["month", "orders", "active_customers", "new_customers", "revenue"]]


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
    c = CompletedOrders(tables, values=False)
    has = c.cust >= 0
    cust, month = c.cust[has], c.month[has]
    nc = len(c.cust_ids)
    first = np.full(nc, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, cust, month)
    age = month - first[cust]
    span = int(age.max()) + 1 if len(age) else 1
    active_pairs = _n_unique_pairs(cust, age, span)          # (customer, age), each once
    a_cust, a_age = active_pairs // span, active_pairs % span
    cohort = first[a_cust]
    lo = int(first[first < np.iinfo(np.int64).max].min())
    key = np.unique((cohort - lo) * span + a_age, return_counts=True)
    ck, counts = key
    out = pd.DataFrame({"cohort": ck // span + lo, "age": (ck % span).astype(np.int64),
                        "customers": counts.astype(np.int64)})
    sizes = out.loc[out["age"] == 0].set_index("cohort")["customers"]
    out["cohort_size"] = out["cohort"].map(sizes)
    out["retention"] = out["customers"] / out["cohort_size"]
    if max_age is not None:
        out = out[out["age"] <= max_age]
    out["cohort"] = out["cohort"].to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
    return out.reset_index(drop=True)[["cohort", "age", "customers", "cohort_size", "retention"]]
