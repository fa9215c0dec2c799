"""One row per customer from Spark order lines: the as-of date, RFM and behaviour features (pandas out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...exceptions import AnalysisError, SchemaError
from .. import rules
from ..customers import rate_features, require_rfm_columns, rfm_frame
from ..customers import resolve_as_of as pandas_resolve_as_of
from .columns import micros, micros_to_ns, positive, sort_by_id, status_text, usable, zero_if_missing
from .reading import as_spark_tables
from .session import SparkStages, session_of, sql_functions

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import DataFrame


def resolve_as_of(orders: DataFrame, as_of: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The analysis date, as :func:`ecrm_research.prep.customers.resolve_as_of`: ``as_of``
    normalised, else the day after the last order (one small Spark job).

    Parameters
    ----------
    orders : DataFrame
        Spark ``orders`` (``ordered_at``).
    as_of : str or Timestamp, optional

    Returns
    -------
    Timestamp
    """
    if as_of is not None:
        return rules.analysis_date(as_of, None)
    if isinstance(orders, pd.DataFrame):
        return pandas_resolve_as_of(orders, None)
    last = _max_us(orders, "ordered_at")
    return rules.analysis_date(None, None if last is None else pd.Timestamp(last * 1000))


def _max_us(df: DataFrame, column: str) -> int | None:
    F = sql_functions()
    v = df.agg(F.max(micros(df, column)).alias("m")).collect()[0]["m"]
    return None if v is None else int(v)


def _line_sums(items: DataFrame) -> DataFrame:
    """Per order id: Σ value, Σ negative value, Σ positive units, also over the negative-value
    lines only (a returned order counts those alone). Summed before any join, so Spark's
    map-side partial aggregation shrinks the order lines before they are shuffled."""
    F = sql_functions()
    q, p = F.col("quantity"), F.col("unit_price")
    v = q * p
    neg = usable(v) & (v < 0)
    units = F.when(positive(q), q).otherwise(F.lit(0.0))
    return (items.select(F.col("order_id").alias("__lo"), v.alias("__v"), neg.alias("__neg"), units.alias("__u"))
            .groupBy("__lo")
            .agg(F.sum(zero_if_missing(F.col("__v"))).alias("__value_all"),
                 F.sum(F.when(F.col("__neg"), F.col("__v")).otherwise(F.lit(0.0))).alias("__value_neg"),
                 F.sum(F.col("__u")).alias("__units_all"),
                 F.sum(F.when(F.col("__neg"), F.col("__u")).otherwise(F.lit(0.0))).alias("__units_neg")))


def _orders_before(orders: DataFrame, as_of: pd.Timestamp, extra: Sequence[str] = ()) -> DataFrame:
    """Completed/returned orders with a customer before ``as_of``, one row per order id
    (``__dup`` = rows sharing the id; the RFM core refuses duplicates)."""
    F = sql_functions()
    st = status_text(F.col("status"))
    t = micros(orders, "ordered_at")
    limit = -(-as_of.value // 1000)  # t_ns < as_of_ns  <=>  t_us < ceil(as_of_ns / 1000)
    sel = orders.select(F.col("order_id"), F.col("customer_id"), t.alias("__t"), st.alias("__st"),
                        *[F.col(c) for c in extra])
    sel = sel.where(F.col("customer_id").isNotNull() & F.col("__st").isin(rules.COMPLETED, rules.RETURNED)
                    & F.col("__t").isNotNull() & (F.col("__t") < F.lit(limit)))
    return (sel.groupBy("order_id")
            .agg(F.count(F.lit(1)).alias("__dup"), F.first("customer_id").alias("customer_id"),
                 F.first("__t").alias("__t"), F.first(F.col("__st") == rules.COMPLETED).alias("__done"),
                 *[F.first(c).alias(c) for c in extra]))


def _feature_columns(orders: DataFrame) -> list[str]:
    return [c for c in ("discount_rate", "channel") if c in orders.columns]


def _customer_rfm(og: DataFrame, items: DataFrame, *, features: bool) -> DataFrame:
    """Per customer (Spark), from the orders of :func:`_orders_before`: completed-order count,
    first/last completed order (µs), net spend, returned value, duplicate-id diagnostics and,
    with ``features``, the feature sums."""
    F = sql_functions()
    extra = [c for c in ("discount_rate", "channel") if features and c in og.columns]
    lines = _line_sums(items)
    po = og.join(lines, F.col("order_id") == F.col("__lo"), "left")
    done = F.col("__done")
    value = F.when(done, F.coalesce(F.col("__value_all"), F.lit(0.0))).otherwise(
        F.coalesce(F.col("__value_neg"), F.lit(0.0)))
    aggs = [
        F.sum(done.cast("bigint")).alias("frequency"),
        F.min(F.when(done, F.col("__t"))).alias("__first"),
        F.max(F.when(done, F.col("__t"))).alias("__last"),
        F.sum(value).alias("monetary"),
        F.sum(F.coalesce(F.col("__value_neg"), F.lit(0.0))).alias("returned_value"),
        F.max(F.col("__dup")).alias("__maxdup"),
        F.sum(F.when(F.col("__dup") > 1, F.col("__dup")).otherwise(F.lit(0))).alias("__ndup"),
        F.max(F.when(F.col("__dup") > 1, F.col("order_id"))).alias("__dupid"),
    ]
    if features:
        aggs.append(F.sum(F.when(done, F.coalesce(F.col("__units_all"), F.lit(0.0))).otherwise(F.lit(0.0)))
                    .alias("__units"))
        if "discount_rate" in extra:
            d = F.col("discount_rate")
            aggs += [F.sum(F.when(done & usable(d), d).otherwise(F.lit(0.0))).alias("__disc_sum"),
                     F.sum((done & usable(d)).cast("bigint")).alias("__disc_n")]
        if "channel" in extra:
            ch = F.col("channel")
            aggs += [F.sum(F.when(done & ch.isNotNull(), (F.lower(ch) == "app").cast("double"))
                           .otherwise(F.lit(0.0))).alias("__app_sum"),
                     F.sum((done & ch.isNotNull()).cast("bigint")).alias("__app_n")]
    return po.groupBy("customer_id").agg(*aggs)


def _collect_rfm(per_customer: DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The per-customer Spark table as pandas; the RFM checks of the pandas path."""
    F = sql_functions()
    pdf = per_customer.select(*[F.coalesce(F.col(c), F.lit(0)).alias(c) if c in ("__first", "__last") else F.col(c)
                                for c in per_customer.columns]).toPandas()
    if len(pdf) and int(pdf["__maxdup"].max()) > 1:
        n = int(pdf["__ndup"].sum())
        first = sorted(pdf.loc[pdf["__maxdup"] > 1, "__dupid"].astype(str))[0]
        raise SchemaError(f"orders: order_id is not unique ({n:,} rows share an id, first: {first!r}); "
                          "RFM needs one row per order. Pass the cleaned tables "
                          "(ecrm_research.prep.spark.clean(...).tables).",
                          source="orders", column="order_id", n_rows=n, example=first)
    pdf = pdf[pdf["frequency"] > 0]
    if pdf.empty:
        raise AnalysisError(f"no completed orders before the as-of date {as_of.date()}: nothing to segment. "
                            "Choose a later as_of or check the order statuses.")
    return sort_by_id(pdf, "customer_id")


def _rfm_frame(pdf: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The RFM table from the collected per-customer sums (:func:`~ecrm_research.prep.customers.rfm_frame`)."""
    return rfm_frame(np.asarray(pdf["customer_id"].astype(str), dtype=object), micros_to_ns(pdf["__first"]),
                     micros_to_ns(pdf["__last"]), pdf["frequency"].to_numpy(), pdf["monetary"].to_numpy(dtype=float),
                     pdf["returned_value"].to_numpy(dtype=float), as_of)


def rfm_table(tables: Mapping[str, Any], as_of: str | pd.Timestamp | None = None, *,
              progress: bool = False) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer, computed in Spark.

    Equal to :func:`ecrm_research.prep.customers.rfm_table` (same columns, dtypes, row order and
    values; definitions in the :mod:`ecrm_research.segmentation` docstring).

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned Spark tables (:attr:`SparkCleanResult.tables`); needs ``orders`` and
        ``order_items``.
    as_of : str or Timestamp, optional
        Analysis date; default the day after the last order.
    progress : bool, default False

    Returns
    -------
    DataFrame
        pandas, one row per customer with a completed order, sorted by ``customer_id``;
        ``attrs["as_of"]`` holds the as-of date.

    Raises
    ------
    SchemaError
        A required column is missing, or ``orders.order_id`` is not unique.
    AnalysisError
        No completed order before the as-of date.
    """
    tables = as_spark_tables(tables, ("orders", "order_items"), "rfm_table")
    orders, items = tables["orders"], tables["order_items"]
    require_rfm_columns({"orders": orders.columns, "order_items": items.columns}, "Spark")
    prog = SparkStages(session_of(tables), progress, 2, "spark rfm")
    try:
        prog.stage("as-of date")
        as_of = resolve_as_of(orders, as_of)
        prog.stage("aggregate")
        pdf = _collect_rfm(_customer_rfm(_orders_before(orders, as_of), items, features=False), as_of)
    finally:
        prog.close()
    return _rfm_frame(pdf, as_of)


def _category_lines(orders_sel: DataFrame, items: DataFrame, products: DataFrame) -> DataFrame:
    """Positive lines of completed orders summed per (order, category); 'unknown' for products
    without a (known) category."""
    F = sql_functions()
    q = F.col("quantity")
    v = q * F.col("unit_price")
    prod = products.select(F.col("product_id").alias("__pp"), F.col("category").cast("string").alias("__cat"))
    lines = (items.where(positive(q)).select(F.col("order_id").alias("__lo"), F.col("product_id"), v.alias("__v"))
             .join(prod, F.col("product_id") == F.col("__pp"), "left")
             .select("__lo", F.coalesce(F.col("__cat"), F.lit("unknown")).alias("__cat"), "__v")
             .groupBy("__lo", "__cat")
             .agg(F.sum(zero_if_missing(F.col("__v"))).alias("__spend"), F.count(F.lit(1)).alias("__n")))
    done = orders_sel.where(F.col("__done")).select("order_id", "customer_id")
    return lines.join(done, F.col("__lo") == F.col("order_id"), "inner")


def customer_features(tables: Mapping[str, Any], as_of: str | pd.Timestamp | None = None, *,
                      top_categories: int = 5, progress: bool = False) -> pd.DataFrame:
    """Behaviour features per customer, computed in Spark.

    Equal to :func:`ecrm_research.prep.customers.customer_features` (same columns, including the
    ``cat_<category>`` spend shares of the top categories, dtypes, row order and values).

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned Spark tables; needs ``orders`` and ``order_items``; uses ``products``.
    as_of : str or Timestamp, optional
        Analysis date (default: the day after the last order).
    top_categories : int, default 5
        Number of categories (by spend) with a ``cat_<name>`` spend-share column.
    progress : bool, default False

    Returns
    -------
    DataFrame
        pandas; see :func:`ecrm_research.prep.customers.customer_features` for the definitions.
    """
    F = sql_functions()
    from pyspark import StorageLevel  # why: pyspark is optional (see session.sql_functions)

    tables = as_spark_tables(tables, ("orders", "order_items"), "customer_features")
    orders, items = tables["orders"], tables["order_items"]
    require_rfm_columns({"orders": orders.columns, "order_items": items.columns}, "Spark")
    products = tables.get("products")
    prog = SparkStages(session_of(tables), progress, 3, "spark features")
    cached: list = []
    try:
        prog.stage("as-of date")
        as_of = resolve_as_of(orders, as_of)
        og = _orders_before(orders, as_of, _feature_columns(orders))
        per_customer = _customer_rfm(og, items, features=True)
        top: list[str] = []
        prog.stage("categories")
        use_cats = bool(top_categories) and products is not None and "category" in products.columns and \
            products.where(F.col("category").isNotNull()).limit(1).count() > 0
        if use_cats:
            # summed per (order, category) once, used for the totals and per customer
            cat_lines = _category_lines(og, items, products).persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(cat_lines)
            totals = cat_lines.groupBy("__cat").agg(F.sum("__spend").alias("total"),
                                                    F.sum("__n").alias("n")).toPandas()
            totals = totals[totals["n"] > 0]
            by_cat = pd.Series(totals["total"].to_numpy(dtype=float),
                               index=pd.Index(totals["__cat"].astype(object))).sort_index()
            top = list(by_cat.sort_values(ascending=False).head(top_categories).index)
            aggs = [F.sum("__spend").alias("__spend_all"), F.sum("__n").alias("__lines")]
            aggs += [F.sum(F.when(F.col("__cat") == F.lit(c), F.col("__spend")).otherwise(F.lit(0.0)))
                     .alias(f"__cat{i}") for i, c in enumerate(top)]
            per_cat = cat_lines.groupBy(F.col("customer_id").alias("__cc")).agg(*aggs)
            per_customer = per_customer.join(per_cat, F.col("customer_id") == F.col("__cc"), "left")
        prog.stage("aggregate")
        pdf = _collect_rfm(per_customer, as_of)
    finally:
        for df in cached:
            df.unpersist()
        prog.close()

    feats = rate_features(_rfm_frame(pdf, as_of))
    cnt = pdf["frequency"].to_numpy()
    mean = rules.mean_or_nan
    feats["basket_size"] = mean(pdf["__units"].to_numpy(dtype=float), cnt)
    if "__disc_n" in pdf and int(pdf["__disc_n"].sum()) > 0:
        feats["discount_rate"] = mean(pdf["__disc_sum"].to_numpy(dtype=float), pdf["__disc_n"].to_numpy())
    else:
        feats["discount_rate"] = np.nan
    if "__app_n" in pdf and int(pdf["__app_n"].sum()) > 0:
        feats["app_share"] = mean(pdf["__app_sum"].to_numpy(dtype=float), pdf["__app_n"].to_numpy())
    else:
        feats["app_share"] = np.nan
    if top:
        spend_all = pdf["__spend_all"].to_numpy(dtype=float, na_value=np.nan)
        has_line = pdf["__lines"].fillna(0).to_numpy() > 0
        spend_all = np.where(has_line, spend_all, 0.0)
        for i, cat in enumerate(top):
            spend = pdf[f"__cat{i}"].to_numpy(dtype=float, na_value=np.nan)
            spend = np.where(has_line, spend, 0.0)
            feats[rules.category_column(cat)] = rules.spend_share(spend, spend_all, has_line)
    feats.attrs["as_of"] = as_of
    return feats
