"""Churn labels in Spark: the :class:`~ecrm_research.prep.churn_data.ChurnData` of the pandas engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...data import schema
from ...exceptions import AnalysisError
from .. import rules
from ..churn_data import ChurnData, finish_churn_labels
from .columns import DAY_US, micros, micros_to_ns, sort_by_id, status_text, usable
from .reading import as_spark_tables
from .session import SparkStages, session_of, sql_functions

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import Column, DataFrame


def label_churn(tables: Mapping[str, Any], *, inactivity_days: int = 180, as_of: Any = None,
                covariate_window_days: int | None = None, progress: bool = False) -> ChurnData:
    """Label churn in Spark: the :class:`~ecrm_research.prep.churn_data.ChurnData` of
    :func:`ecrm_research.prep.churn.label_churn`, computed without collecting orders.

    Window functions over each customer's completed orders (ordered by time, then order id)
    find the first gap of more than ``inactivity_days``; the behaviour window covariates,
    return share, service contacts, spend and registration attributes are per-customer
    aggregations and joins. Only the per-customer table comes back to pandas, where the
    durations, means, exclusions and the accounting are computed as in the pandas path.

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned Spark tables; ``orders`` is required, ``customers``, ``order_items`` and
        ``service_contacts`` are used when present.
    inactivity_days, as_of, covariate_window_days
        As :func:`ecrm_research.prep.churn.label_churn` (definitions in its docstring).
    progress : bool, default False

    Returns
    -------
    ChurnData
        ``frame`` and ``accounting`` equal to the pandas path's; same ``covariates``,
        ``definition``, ``as_of`` and windows.

    Raises
    ------
    AnalysisError
        As the pandas path (no orders table, non-positive windows, nothing to label).
    """
    W, N = rules.churn_windows(tables, inactivity_days, covariate_window_days)
    tables = as_spark_tables(tables, ("orders",), "label_churn")
    orders = tables["orders"]
    prog = SparkStages(session_of(tables), progress, 2, "spark churn")
    cached: list = []
    try:
        prog.stage("overview")  # one small job: end of data, customers in the data, optional parts present
        parts = _overview(orders, tables.get("order_items"), tables.get("service_contacts"), tables.get("customers"),
                          as_of)
        acct = [rules.accounting_row("customers in the data", parts.n_all, "customers table ∪ customers with orders")]
        prog.stage("label")
        lim = parts.as_of.value // 1000  # t_ns <= as_of_ns  <=>  t_us <= floor(as_of_ns / 1000)
        base = _order_rows(orders, parts, lim)
        # customer-sized, used three times below: computed once
        lab = _customer_labels(base, parts, W * DAY_US, N * DAY_US, lim).persist(_storage_level())
        cached.append(lab)
        pdf = _collect_labels(_join_window_counts(lab, base, parts, N * DAY_US), parts)
    finally:
        for df in cached:
            df.unpersist()
        prog.close()
    if pdf.empty:
        raise _nothing_to_label(orders, parts.as_of)
    return _churn_frame(pdf, orders_columns=set(orders.columns), as_of=parts.as_of, W=W, N=N, n_all=parts.n_all,
                        acct=acct, has_items=parts.items is not None, has_sc=parts.contacts is not None,
                        attrs=parts.attrs)


def _storage_level() -> Any:
    from pyspark import StorageLevel  # why: pyspark is optional (see session.sql_functions)

    return StorageLevel.MEMORY_AND_DISK


@dataclass
class _Parts:
    """What the overview job found: the end of data, the customers in the data and which optional
    inputs hold data (``items``/``contacts`` are None when absent or empty)."""

    as_of: pd.Timestamp
    n_all: int
    items: DataFrame | None
    contacts: DataFrame | None
    customers: DataFrame | None
    attrs: list[str]
    has_late: bool
    has_disc: bool
    has_chan: bool


def _overview(orders: DataFrame, items: DataFrame | None, sc: DataFrame | None, cust: DataFrame | None,
              as_of: Any) -> _Parts:
    """One Spark job: latest order time, distinct customers (orders ∪ customers table), whether the
    order lines and contacts have rows, and which registration attributes have values."""
    F = sql_functions()
    attrs = [c for c in rules.REGISTRATION_ATTRIBUTES if cust is not None and c in cust.columns]
    ids = orders.select(F.col("customer_id").cast("string").alias("__id"))
    if cust is not None:
        ids = ids.unionByName(cust.select(F.col("customer_id").cast("string").alias("__id")))
    meta = orders.agg(F.max(micros(orders, "ordered_at")).alias("__max_t")).crossJoin(
        ids.where(F.col("__id").isNotNull()).agg(F.count_distinct("__id").alias("__n_all")))
    if items is not None:
        meta = meta.crossJoin(items.limit(1).agg(F.count(F.lit(1)).alias("__has_items")))
    if sc is not None:
        meta = meta.crossJoin(sc.limit(1).agg(F.count(F.lit(1)).alias("__has_sc")))
    if attrs:
        meta = meta.crossJoin(cust.agg(*[F.count(F.col(c)).alias(f"__attr_{c}") for c in attrs]))
    m = meta.collect()[0].asDict()
    if m["__max_t"] is None:
        raise AnalysisError("orders is empty (or has no order dates): there is nothing to label.")
    return _Parts(as_of=rules.end_of_data(as_of, pd.Timestamp(int(m["__max_t"]) * 1000)), n_all=int(m["__n_all"]),
                  items=items if m.get("__has_items") else None, contacts=sc if m.get("__has_sc") else None,
                  customers=cust, attrs=[c for c in attrs if m[f"__attr_{c}"] > 0],
                  has_late={"promised_days", "delivery_days"} <= set(orders.columns),
                  has_disc="discount_rate" in orders.columns, has_chan="channel" in orders.columns)


def _order_rows(orders: DataFrame, parts: _Parts, lim: int) -> DataFrame:
    """Orders with a customer and a time up to ``as_of``: customer, time (µs), completed/returned,
    late delivery, discount and channel."""
    F = sql_functions()
    status = status_text(F.col("status"))
    late = F.when(usable(F.col("delivery_days")) & usable(F.col("promised_days")),
                  (F.col("delivery_days") > F.col("promised_days")).cast("double"))
    base = orders.select(
        F.col("order_id"), F.col("customer_id").cast("string").alias("__c"), micros(orders, "ordered_at").alias("__t"),
        (status == rules.COMPLETED).alias("__done"), (status == rules.RETURNED).alias("__ret"),
        *([late.alias("__late")] if parts.has_late else []),
        *([F.when(usable(F.col("discount_rate")), F.col("discount_rate")).alias("__disc")] if parts.has_disc else []),
        *([F.col("channel").cast("string").alias("__ch")] if parts.has_chan else []))
    return base.where(F.col("__t").isNotNull() & (F.col("__t") <= F.lit(lim)) & F.col("__c").isNotNull())


def _customer_labels(base: DataFrame, parts: _Parts, w_us: int, n_us: int, lim: int) -> DataFrame:
    """Per customer (Spark): first/last completed order, the first churning gap, the first order's
    fields and the behaviour-window sums, from window functions over the completed orders."""
    from pyspark.sql import Window  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    done = base.where(F.coalesce(F.col("__done"), F.lit(False)))
    if parts.items is not None:
        ov = (parts.items.select(F.col("order_id").alias("__io"),
                                 (F.col("quantity") * F.col("unit_price")).alias("__v"))
              .where(usable(F.col("__v"))).groupBy("__io").agg(F.sum("__v").alias("__ov")))
        done = done.join(ov, F.col("order_id") == F.col("__io"), "left")
    else:
        done = done.withColumn("__ov", F.lit(None).cast("double"))
    by_time = Window.partitionBy("__c").orderBy("__t", "order_id")
    done = (done.withColumn("__f", F.min("__t").over(Window.partitionBy("__c")))
            .withColumn("__next", F.lead("__t").over(by_time)))
    gap = F.col("__next").isNotNull() & ((F.col("__next") - F.col("__t")) > F.lit(w_us))
    end = F.col("__next").isNull() & ((F.col("__t") + F.lit(w_us)) <= F.lit(lim))
    win = F.col("__t") < F.col("__f") + F.lit(n_us)
    return done.groupBy("__c").agg(*_label_aggregates(parts, gap, end, win))


def _label_aggregates(parts: _Parts, gap: Column, end: Column, win: Column) -> list[Column]:
    F = sql_functions()
    first_fields = [F.col("__t"), F.col("order_id")]
    if parts.has_late:
        first_fields.append(F.col("__late"))
    if parts.has_chan:
        first_fields.append(F.col("__ch"))
    spend = F.coalesce(F.col("__ov"), F.lit(0.0))
    aggs = [
        F.min("__t").alias("__first"), F.max("__t").alias("__last"), F.count(F.lit(1)).alias("__n_total"),
        F.max((gap | end).cast("int")).alias("__flagged"),
        F.coalesce(F.min(F.when(gap | end, F.col("__t"))), F.lit(0)).alias("__flag_t"),
        F.max(gap.cast("int")).alias("__returned"),
        F.min(F.struct(*first_fields)).alias("__first_order"),
        F.sum(win.cast("bigint")).alias("__n_win"),
        F.sum(spend).alias("__spend_total"),
        F.sum(F.when(win, spend).otherwise(F.lit(0.0))).alias("__spend_window"),
    ]
    if parts.has_late:
        lw = win & F.col("__late").isNotNull()
        aggs += [F.sum(F.when(lw, F.col("__late")).otherwise(F.lit(0.0))).alias("__late_sum"),
                 F.sum(lw.cast("bigint")).alias("__late_n")]
    if parts.has_disc:
        dw = win & F.col("__disc").isNotNull()
        aggs += [F.sum(F.when(dw, F.col("__disc")).otherwise(F.lit(0.0))).alias("__disc_sum"),
                 F.sum(dw.cast("bigint")).alias("__disc_n"),
                 F.count("__disc").alias("__disc_any")]
    if parts.has_chan:
        aggs.append(F.count("__ch").alias("__ch_any"))
    return aggs


def _join_window_counts(lab: DataFrame, base: DataFrame, parts: _Parts, n_us: int) -> DataFrame:
    """``lab`` with the return share's counts, the service contacts in the behaviour window and the
    registration attributes joined on."""
    F = sql_functions()
    first = lab.select(F.col("__c").alias("__k"), F.col("__first").alias("__kf"))
    in_win = (F.col("__when") >= F.col("__kf")) & (F.col("__when") < F.col("__kf") + F.lit(n_us))
    # every completed or returned order in the window, for the return share
    rel = (base.where(F.coalesce(F.col("__done") | F.col("__ret"), F.lit(False)))
           .select("__c", F.col("__t").alias("__when"), F.col("__ret"))
           .join(first, F.col("__c") == F.col("__k")).where(in_win)
           .groupBy(F.col("__k").alias("__rk"))
           .agg(F.count(F.lit(1)).alias("__rel_n"), F.sum(F.col("__ret").cast("bigint")).alias("__rel_ret")))
    lab = lab.join(rel, F.col("__c") == F.col("__rk"), "left")
    sc = parts.contacts
    if sc is not None:
        contacts = (sc.select(F.col("customer_id").cast("string").alias("__sc"),
                              micros(sc, "contacted_at").alias("__when"))
                    .join(first, F.col("__sc") == F.col("__k")).where(F.col("__when").isNotNull() & in_win)
                    .groupBy(F.col("__k").alias("__ck")).agg(F.count(F.lit(1)).alias("__contacts")))
        lab = lab.join(contacts, F.col("__c") == F.col("__ck"), "left")
    if parts.attrs:
        reg = parts.customers.select(F.col("customer_id").cast("string").alias("__cu"),
                                     F.lit(True).alias("__cu_found"),
                                     *[F.col(c).alias(f"__attr_{c}") for c in parts.attrs])
        lab = lab.join(reg, F.col("__c") == F.col("__cu"), "left")
    return lab


def _collect_labels(lab: DataFrame, parts: _Parts) -> pd.DataFrame:
    """The per-customer table as pandas, the first order's late flag and channel unpacked."""
    F = sql_functions()
    keep = [c for c in lab.columns if c not in ("__rk", "__ck", "__cu", "__first_order")]
    first_cols = [F.col("__first_order")[f].alias("__fo" + f[1:]) for f in ("__late", "__ch")
                  if (f == "__late" and parts.has_late) or (f == "__ch" and parts.has_chan)]
    return lab.select(*keep, *first_cols).toPandas()


def _nothing_to_label(orders: DataFrame, as_of: pd.Timestamp) -> AnalysisError:
    F = sql_functions()
    statuses = orders.groupBy(F.col("status").cast("string").alias("s")).count().toPandas()
    counts = dict(sorted(((s, int(n)) for s, n in zip(statuses["s"], statuses["count"]) if s is not None),
                         key=lambda kv: -kv[1]))
    return AnalysisError(f"No completed orders on or before as_of={as_of.date()}: nothing to label. "
                         f"Order statuses present: {counts}.")


def _churn_frame(pdf: pd.DataFrame, *, orders_columns: set, as_of: pd.Timestamp, W: int, N: int, n_all: int,
                 acct: list, has_items: bool, has_sc: bool, attrs: Sequence[str]) -> ChurnData:
    """The pandas half of :func:`label_churn`: the expressions of
    :func:`ecrm_research.prep.churn.label_churn` applied to the per-customer sums."""
    pdf = sort_by_id(pdf, "__c")
    nc = len(pdf)
    names = np.asarray(pdf["__c"].astype(str), dtype=object)

    def ints(col: str) -> np.ndarray:
        return pdf[col].fillna(0).to_numpy().astype(np.int64)

    first_at = micros_to_ns(pdf["__first"]).view("datetime64[ns]")
    last_at = micros_to_ns(pdf["__last"]).view("datetime64[ns]")
    flagged = ints("__flagged") > 0
    flag_t = micros_to_ns(pdf["__flag_t"]).view("datetime64[ns]")
    lab = pd.DataFrame({"customer_id": names, "first_order_at": first_at, "last_order_at": last_at})
    churn_at = np.where(flagged, flag_t, np.datetime64("NaT")).astype("datetime64[ns]") + np.timedelta64(W, "D")
    lab["event"] = flagged.astype(int)
    lab["churned_at"] = churn_at
    end = np.where(flagged, churn_at, as_of.to_datetime64()).astype("datetime64[ns]")
    lab["duration"] = (end - first_at) / np.timedelta64(1, "D")
    lab["returned_after_churn"] = (ints("__returned") > 0).astype(bool)
    lab["n_orders_total"] = ints("__n_total").astype(float)
    n_labelled = len(lab)
    acct.append(rules.accounting_row("customers with a completed order on or before as_of", n_labelled,
                                f"{n_all - n_labelled:,} customers without one are never at risk"))

    cov = pd.DataFrame(index=pd.Index(names, name="customer_id"))

    mean = rules.mean_or_nan

    if {"promised_days", "delivery_days"} <= orders_columns:
        late_first = pdf["__fo_late"].to_numpy(dtype=float, na_value=np.nan)
        cov["first_order_late"] = pd.array(np.where(np.isnan(late_first), None, late_first == 1), dtype="boolean")
        cov["late_share"] = mean(pdf["__late_sum"].to_numpy(dtype=float), ints("__late_n"))
    cov["return_share"] = np.nan_to_num(mean(pdf["__rel_ret"].fillna(0).to_numpy(dtype=float), ints("__rel_n")),
                                        nan=0.0)
    if has_sc:
        cov["n_contacts"] = ints("__contacts").astype(float)
    if "discount_rate" in orders_columns and int(pdf["__disc_any"].sum()) > 0:
        cov["mean_discount"] = mean(pdf["__disc_sum"].to_numpy(dtype=float), ints("__disc_n"))
    cov["n_orders_window"] = ints("__n_win").astype(float)
    spend_total = np.zeros(nc)
    if has_items:
        spend_total = pdf["__spend_total"].to_numpy(dtype=float)
        cov["spend_window"] = pdf["__spend_window"].to_numpy(dtype=float)
    if attrs:
        _add_registration_attributes(cov, pdf, attrs)
    if "channel" not in cov.columns and "channel" in orders_columns and int(pdf["__ch_any"].sum()) > 0:
        ch = pd.Series(pdf["__fo_ch"].to_numpy(dtype=object))
        cov["channel"] = ch.where(ch.notna(), np.nan).to_numpy()

    return finish_churn_labels(lab, cov, spend_total, acct, as_of=as_of, W=W, N=N)


def _add_registration_attributes(cov: pd.DataFrame, pdf: pd.DataFrame, attrs: Sequence[str]) -> None:
    """The registration attributes as covariates, typed as the pandas engine types them."""
    found = pdf["__cu_found"].notna().to_numpy()
    for c in attrs:
        s = pd.Series(pdf[f"__attr_{c}"].to_numpy(dtype=object), index=cov.index)
        if not found.all():
            s = s.where(pd.Series(found, index=cov.index))
        spec = schema.TABLES["customers"].column(c)
        if c == "is_member":
            s = s.astype("boolean")
        elif spec.kind == "category" and spec.allowed:
            s = pd.Series(pd.Categorical(s.where(s.notna(), None), categories=list(spec.allowed)),
                          index=cov.index).cat.remove_unused_categories()
        else:
            s = s.astype(object).where(s.notna(), np.nan)
        cov[c] = s
