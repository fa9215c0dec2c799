"""Purchase gaps in Spark and the suggested inactivity window (the exact numpy quantile)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...exceptions import AnalysisError, ParameterError
from .. import rules
from .columns import micros, status_text
from .reading import as_spark_tables
from .session import sql_functions

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    pass


def _quantile_ranks(n: int, q: float) -> tuple[float, int, int]:
    """numpy's 'linear' quantile: virtual index ``(n - 1) q`` and the two ranks it lies between
    (clipped to the array, as ``numpy.lib._function_base_impl._get_indexes``)."""
    virtual = (n - 1) * np.float64(q)
    if virtual >= n - 1:
        return float(virtual), n - 1, n - 1
    if virtual < 0:
        return float(virtual), 0, 0
    prev = int(np.floor(virtual))
    return float(virtual), prev, prev + 1


def numpy_linear_quantile(sorted_slice: np.ndarray, first_rank: int, n: int, q: float) -> float:
    """``numpy.quantile(x, q)`` of a length-``n`` array ``x``, from the slice of sorted ``x``
    that starts at rank ``first_rank`` and holds the two ranks the quantile needs: numpy's float
    operations (virtual index, gamma, ``_lerp``), so the result is the same to the last bit."""
    virtual, prev, nxt = _quantile_ranks(n, q)
    gamma = np.float64(virtual) - np.floor(np.float64(virtual))
    a = np.float64(sorted_slice[prev - first_rank])
    b = np.float64(sorted_slice[nxt - first_rank])
    diff = b - a
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


def suggest_inactivity_days(tables: Mapping[str, Any], quantile: float = 0.9, *, round_to: int = 30,
                            accuracy: int = 10_000) -> int:
    """An inactivity window for churn labelling, computed in Spark: the ``quantile`` of the gaps
    between a customer's consecutive completed orders, rounded up to ``round_to`` days.

    Equal to ``prep.orders.suggest_inactivity_days(prep.orders.purchase_gaps(tables), quantile,
    round_to=round_to)``, without collecting the gaps: Spark's ``percentile_approx`` brackets
    the two order statistics the quantile needs (rank error ≤ n / ``accuracy``), and only the
    gaps inside the bracket (about 4 n / ``accuracy`` values) come to the driver, where the
    exact quantile is interpolated as numpy does.

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned Spark tables; needs ``orders``.
    quantile : float, default 0.9
    round_to : int, default 30
    accuracy : int, default 10000
        Bracket width of ``percentile_approx``; larger = fewer gaps collected, more memory in
        the aggregation.

    Returns
    -------
    int
        Days, a multiple of ``round_to``, at least ``round_to``.

    Raises
    ------
    AnalysisError
        No completed orders, or no repeat purchases.
    """
    F = sql_functions()
    from pyspark import StorageLevel  # why: pyspark is optional (see session.sql_functions)
    from pyspark.sql import Window  # why: pyspark is optional

    if not 0 <= float(quantile) <= 1:
        raise ParameterError(f"quantile={quantile!r} must be in [0, 1], e.g. 0.9.")
    tables = as_spark_tables(tables, ("orders",), "suggest_inactivity_days")
    orders = tables["orders"]
    done = orders.where(F.coalesce(status_text(F.col("status")) == rules.COMPLETED, F.lit(False))).select(
        F.col("customer_id").cast("string").alias("__c"), micros(orders, "ordered_at").alias("__t"))
    by_time = Window.partitionBy("__c").orderBy("__t")
    gaps = (done.where(F.col("__c").isNotNull() & F.col("__t").isNotNull())
            .select((F.col("__t") - F.lag("__t").over(by_time)).alias("__gap"))
            .where(F.col("__gap").isNotNull()).persist(StorageLevel.MEMORY_AND_DISK))
    try:
        first = gaps.agg(F.count(F.lit(1)).alias("n")).crossJoin(
            done.limit(1).agg(F.count(F.lit(1)).alias("any_done"))).collect()[0]
        if not first["any_done"]:
            statuses = orders.groupBy(F.col("status").cast("string").alias("s")).count().toPandas()
            raise AnalysisError("No completed orders in the data: nothing to describe. Order statuses present: "
                                f"{dict(zip(statuses['s'], statuses['count']))}.")
        n = int(first["n"])
        if n == 0:
            raise AnalysisError("No repeat purchases: cannot suggest an inactivity window from purchase gaps.")
        _, lo_rank, hi_rank = _quantile_ranks(n, quantile)
        margin = 2.0 / accuracy
        p_lo, p_hi = max(0.0, lo_rank / n - margin), min(1.0, (hi_rank + 1) / n + margin)
        bounds = gaps.agg(F.percentile_approx("__gap", [p_lo, p_hi], accuracy).alias("b")).collect()[0]["b"]
        a, b = (int(bounds[0]), int(bounds[1])) if p_lo > 0 or p_hi < 1 else (None, None)
        for _ in range(2):  # the bracket holds by percentile_approx's guarantee; else take everything
            inside = F.lit(True) if a is None else F.col("__gap").between(a, b)
            below = F.lit(False) if a is None else F.col("__gap") < a
            got = gaps.agg(F.sum(below.cast("bigint")).alias("below"),
                           F.collect_list(F.when(inside, F.col("__gap"))).alias("values")).collect()[0]
            below_n = int(got["below"] or 0)
            values = np.sort(np.asarray(got["values"], dtype=np.int64))
            if below_n <= lo_rank and below_n + len(values) > hi_rank:
                break
            a = b = None
    finally:
        gaps.unpersist()
    days = values * 1000 / (86400.0 * 1e9)  # as prep.orders.purchase_gaps: nanoseconds / day
    q = numpy_linear_quantile(days, below_n, n, quantile)
    return int(max(round_to, np.ceil(q / round_to) * round_to))
