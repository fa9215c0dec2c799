"""Cleaning in Spark with the quarantine: the rules of :func:`ecrm_research.data.quality.clean`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ...data.quality import ALL_REASONS, GUARD_REASONS, REASONS, CleaningPolicy
from ...exceptions import ParameterError, SchemaError
from .columns import micros, usable, zero_if_missing
from .reading import as_spark_tables
from .session import SparkStages, session_of, sql_functions

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import Column, DataFrame


_QCOLS = ["table", "reason", "order_id", "line_no", "customer_id", "product_id", "contact_id", "source_row"]


_QTYPES = {"table": "string", "reason": "string", "order_id": "string", "line_no": "bigint",
           "customer_id": "string", "product_id": "string", "contact_id": "string", "source_row": "bigint"}


@dataclass
class SparkCleanResult:
    """Outcome of :func:`clean`: kept tables and quarantine in Spark, counts in pandas.

    Attributes
    ----------
    tables : dict of DataFrame
        Cleaned canonical tables (Spark), in the input's order.
    quarantine : DataFrame
        Spark table, one row per dropped row: ``table, reason, order_id, line_no, customer_id,
        product_id, contact_id, source_row`` (null where they do not apply; an order line's
        ``customer_id`` is its order's). Write it with :meth:`write_quarantine`.
    reconciliation : DataFrame
        pandas, identical to :attr:`ecrm_research.data.quality.CleanResult.reconciliation`: per
        table ``input_rows, kept_rows, quarantined_rows``, one column per reason code, and
        ``reconciles``.
    policy : CleaningPolicy
    """

    tables: dict[str, DataFrame]
    quarantine: DataFrame
    reconciliation: pd.DataFrame
    policy: CleaningPolicy = field(default_factory=CleaningPolicy)
    _persisted: list = field(default_factory=list, repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """Headline counts after cleaning, as :attr:`ecrm_research.data.quality.CleanResult.summary`.

        Returns
        -------
        DataFrame
            measure, value (one Spark job).
        """
        F = sql_functions()
        items, orders = self.tables["order_items"], self.tables["orders"]
        lines = items.agg(F.count(F.lit(1)).alias("n"),
                          F.sum(zero_if_missing(F.col("quantity") * F.col("unit_price"))).alias("revenue"))
        ords = orders.agg(F.count(F.lit(1)).alias("o"), F.count_distinct("customer_id").alias("c"))
        row = lines.crossJoin(ords).collect()[0]
        rec = self.reconciliation.set_index("table")
        rows = {
            "input_lines": int(rec.loc["order_items", "input_rows"]) if "order_items" in rec.index else 0,
            "kept_lines": int(row["n"]),
            "kept_orders": int(row["o"]),
            "customers_with_orders": int(row["c"]),
            "revenue": float(row["revenue"] or 0.0),
            "quarantined_rows": int(rec["quarantined_rows"].sum()),
        }
        return pd.DataFrame({"measure": list(rows), "value": list(rows.values())})

    def write_quarantine(self, path: str | Path, *, format: str = "parquet", mode: str = "overwrite") -> str:
        """Write the quarantine (every dropped row with its reason) next to the results.

        Parameters
        ----------
        path : str or Path
            Output folder (local or a Hadoop URI); Spark writes part files into it,
            partitioned by ``table``.
        format : {'parquet', 'csv'}
        mode : str
            Spark save mode: ``'overwrite'`` (default), ``'error'``, ``'append'``, ``'ignore'``.

        Returns
        -------
        str
            The path written.
        """
        if format not in ("parquet", "csv"):
            raise ParameterError(f"format={format!r}: use 'parquet' or 'csv'.", allowed=["parquet", "csv"])
        writer = self.quarantine.write.mode(mode).partitionBy("table")
        if format == "csv":
            writer = writer.option("header", True)
        writer.format(format).save(str(path))
        return str(path)

    def unpersist(self) -> None:
        """Release the cleaned tables Spark keeps in memory/disk (``persist=True`` in :func:`clean`)."""
        for df in self._persisted:
            df.unpersist()
        self._persisted.clear()


def _key_set(df: DataFrame, column: str, alias: str) -> DataFrame:
    """Distinct non-null values of a parent key, with a ``found`` flag for left joins."""
    F = sql_functions()
    return (df.select(F.col(column).alias(alias)).where(F.col(alias).isNotNull()).distinct()
            .withColumn(alias + "_found", F.lit(True)))


def _reason(conditions: Sequence[tuple[str, Column]]) -> Column:
    """First condition that holds (priority order), as its reason code; null = kept."""
    F = sql_functions()
    out = None
    for reason, cond in conditions:
        cond = F.coalesce(cond, F.lit(False))
        out = F.when(cond, F.lit(reason)) if out is None else out.when(cond, F.lit(reason))
    return out if out is not None else F.lit(None).cast("string")


def clean(tables: Mapping[str, Any], policy: CleaningPolicy | None = None, *,
          non_product_codes: Iterable[str] = (), persist: bool = True, progress: bool = False
          ) -> SparkCleanResult:
    """Apply a cleaning policy in Spark, quarantining every dropped row with a reason code.

    The same rules as :func:`ecrm_research.data.quality.clean` (reason codes and priority in the
    :mod:`ecrm_research.data.quality` module docstring): orphan keys, then the plausibility guards
    (``implausible_date``: orders and service contacts dated outside ``policy.date_window()``,
    orders with their lines; ``non_finite_value``: a line's quantity or unit price inf, -inf,
    NaN or missing; ``implausible_value``: a unit price above ``policy.max_unit_price`` or a
    ``|quantity|`` above ``policy.max_abs_quantity``), then missing customer, cancelled orders
    (cascading to their lines), non-positive quantity or price, opt-in duplicate and
    non-product lines, then orders left without any kept line. ``conflicting_order`` comes from
    a lines file only (the pandas reader); canonical tables never have it.

    Parameters
    ----------
    tables : dict of DataFrame
        Spark tables from :func:`read_tables` (pandas tables are converted with
        :func:`from_pandas`); ``orders`` and ``order_items`` are required.
    policy : CleaningPolicy, optional
        Defaults to the standard filters. Every option is supported.
    non_product_codes : iterable of str
        Product ids that are not goods (for ``policy.drop_non_product``).
    persist : bool, default True
        Keep the labelled orders, lines and contacts in Spark's memory/disk cache: the kept
        tables are then not recomputed by every later aggregation. Release with
        :meth:`SparkCleanResult.unpersist`.
    progress : bool, default False
        Show a stage progress bar on stderr.

    Returns
    -------
    SparkCleanResult
        ``reconciliation`` is computed here (one Spark job); ``tables`` and ``quarantine`` are
        lazy Spark DataFrames.

    Raises
    ------
    SchemaError
        ``orders`` or ``order_items`` missing.
    ParameterError
        ``policy`` is not a :class:`~ecrm_research.data.quality.CleaningPolicy`.
    """
    F = sql_functions()
    policy = CleaningPolicy() if policy is None else policy
    if not isinstance(policy, CleaningPolicy):
        raise ParameterError(f"policy must be a quality.CleaningPolicy, got {type(policy).__name__}.")
    missing = [t for t in ("orders", "order_items") if t not in tables]
    if missing:
        raise SchemaError(f"clean: table(s) {missing} missing; have {sorted(tables)}. Cleaning needs canonical "
                          "orders and order_items (read them with ecrm_research.prep.spark.read_tables).",
                          column=missing[0])
    tables = as_spark_tables(tables, ("orders", "order_items"), "clean")
    spark = session_of(tables)
    prog = SparkStages(spark, progress, 2, "spark clean")
    codes = sorted({str(c) for c in non_product_codes})
    orders, items = tables["orders"], tables["order_items"]
    customers, products = tables.get("customers"), tables.get("products")
    persisted: list = []

    def keep(df: DataFrame) -> DataFrame:
        if not persist:
            return df
        df = df.persist(_storage_level())
        persisted.append(df)
        return df

    try:
        prog.stage("label rows")
        window = policy.date_window()  # once: both tables are judged against the same run date
        o = _label_orders(orders, customers, policy, window)
        # before the per-order counts, so the lines are labelled once
        items_lab = keep(_label_items(items, o, products, policy, codes))
        labelled = {"orders": keep(_label_empty_orders(o, items_lab, orders.columns)), "order_items": items_lab}
        if "service_contacts" in tables:
            labelled["service_contacts"] = keep(_label_contacts(tables["service_contacts"], customers, window))
        prog.stage("count")
        reconciliation = _reconciliation(list(tables), _count_reasons(tables, labelled))

        kept = {}
        for name, df in tables.items():
            lab = labelled.get(name)
            kept[name] = df if lab is None else lab.where(F.col("__reason").isNull()).select(*df.columns)
        quarantine = _quarantine(labelled)
    finally:
        prog.close()
    return SparkCleanResult(tables=kept, quarantine=quarantine, reconciliation=reconciliation, policy=policy,
                            _persisted=persisted)


def _storage_level() -> Any:
    from pyspark import StorageLevel  # why: pyspark is optional (see session.sql_functions)

    return StorageLevel.MEMORY_AND_DISK


def _date_guard(df: DataFrame, column: str, window: tuple[pd.Timestamp | None, pd.Timestamp]
                ) -> list[tuple[str, Column]]:
    """``implausible_date`` for rows whose `column` is outside ``[lo, hi)`` (a missing date is not),
    as :func:`ecrm_research.data.plausibility.outside_window`; none when `df` has no `column`."""
    if column not in df.columns:
        return []
    F = sql_functions()
    lo, hi = window
    us = micros(df, column)  # wall-clock microseconds; the bounds are whole days
    outside = us >= F.lit(hi.value // 1000)
    if lo is not None:
        outside = (us < F.lit(lo.value // 1000)) | outside
    return [("implausible_date", outside)]


def _finite(c: Column) -> Column:
    """A number that is not null, NaN, inf or -inf (:func:`numpy.isfinite`)."""
    F = sql_functions()
    return usable(c) & (F.abs(c) != F.lit(float("inf")))


def _amount_guards(policy: CleaningPolicy) -> list[tuple[str, Column]]:
    """``non_finite_value`` (quantity or unit price inf, -inf, NaN or missing), then
    ``implausible_value`` (beyond ``policy.max_abs_quantity`` / ``policy.max_unit_price``), as
    :func:`ecrm_research.data.plausibility.not_finite` and ``above``."""
    F = sql_functions()
    q, p = F.col("quantity"), F.col("unit_price")
    conds: list[tuple[str, Column]] = [("non_finite_value", ~_finite(q) | ~_finite(p))]
    beyond = []
    if policy.max_abs_quantity is not None:
        beyond.append(_finite(q) & (F.abs(q) > F.lit(float(policy.max_abs_quantity))))
    if policy.max_unit_price is not None:
        beyond.append(_finite(p) & (p > F.lit(float(policy.max_unit_price))))
    if beyond:
        conds.append(("implausible_value", beyond[0] if len(beyond) == 1 else beyond[0] | beyond[1]))
    return conds


def _label_orders(orders: DataFrame, customers: DataFrame | None, policy: CleaningPolicy,
                  window: tuple[pd.Timestamp | None, pd.Timestamp]) -> DataFrame:
    """Orders with ``__reason0``: orphan customer, implausible date, missing customer, cancelled
    (null = kept so far)."""
    F = sql_functions()
    o = orders
    conds: list[tuple[str, Column]] = []
    if customers is not None:
        o = o.join(_key_set(customers, "customer_id", "__ck"), F.col("customer_id") == F.col("__ck"), "left")
        conds.append(("orphan_key", F.col("customer_id").isNotNull() & F.col("__ck_found").isNull()))
    conds += _date_guard(orders, "ordered_at", window)
    if policy.drop_missing_customer:
        conds.append(("missing_customer", F.col("customer_id").isNull()))
    if policy.drop_cancelled:
        conds.append(("cancelled", F.col("status") == "cancelled"))  # as quality.clean: canonical status
    return o.select(*[F.col(c) for c in orders.columns], _reason(conds).alias("__reason0"))


def _label_items(items: DataFrame, o: DataFrame, products: DataFrame | None, policy: CleaningPolicy,
                 codes: Sequence[str]) -> DataFrame:
    """Order lines with ``__reason``: orphan, the order's implausible date, the line's own guards, the
    order's other reasons, then the line's own reasons (as ``quality.clean``); with
    the order's customer (``__ocust``) and id (``__ok``, null for orphan lines)."""
    from pyspark.sql import Window  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    parent = o.select(F.col("order_id").alias("__ok"), F.col("__reason0").alias("__oreason"),
                      F.col("customer_id").alias("__ocust"), F.lit(True).alias("__ok_found"))
    it = items.join(parent, F.col("order_id") == F.col("__ok"), "left")
    orphan = F.col("__ok_found").isNull() | (F.col("__oreason") == "orphan_key")
    if products is not None:
        it = it.join(_key_set(products, "product_id", "__pk"), F.col("product_id") == F.col("__pk"), "left")
        orphan = orphan | (F.col("product_id").isNotNull() & F.col("__pk_found").isNull())
    # orphan, the order's guard, the line's own guards, the order's other reasons, the line's own reasons
    conds = [("orphan_key", orphan), ("implausible_date", F.col("__oreason") == "implausible_date"),
             *_amount_guards(policy),
             ("missing_customer", F.col("__oreason") == "missing_customer"),
             ("cancelled", F.col("__oreason") == "cancelled")]
    if policy.drop_nonpositive_quantity:
        conds.append(("nonpositive_quantity", usable(F.col("quantity")) & (F.col("quantity") <= 0)))
    if policy.drop_nonpositive_price:
        conds.append(("nonpositive_price", usable(F.col("unit_price")) & (F.col("unit_price") <= 0)))
    if policy.drop_duplicate_rows:
        content = [c for c in items.columns if c not in ("line_no", "source_row")]
        w = Window.partitionBy(*content).orderBy(*[c for c in ("line_no", "source_row") if c in items.columns])
        it = it.withColumn("__copy", F.row_number().over(w))
        conds.append(("duplicate_row", F.col("__copy") > 1))
    if policy.drop_non_product and codes:
        conds.append(("non_product", F.col("product_id").isin(*codes)))
    return it.select(*[F.col(c) for c in items.columns], _reason(conds).alias("__reason"),
                     F.col("__ocust"), F.col("__ok"))


def _label_empty_orders(o: DataFrame, items_lab: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Orders with their final ``__reason``: ``no_kept_lines`` for kept orders that had lines but kept none."""
    F = sql_functions()
    per_order = (items_lab.where(F.col("__ok").isNotNull()).groupBy("__ok")
                 .agg(F.count(F.lit(1)).alias("__lines"),
                      F.sum(F.col("__reason").isNull().cast("int")).alias("__kept")))
    o2 = o.join(per_order, F.col("order_id") == F.col("__ok"), "left")
    no_kept = F.col("__reason0").isNull() & (F.coalesce(F.col("__lines"), F.lit(0)) > 0) & (F.col("__kept") == 0)
    return o2.select(*[F.col(c) for c in columns],
                     F.when(no_kept, F.lit("no_kept_lines")).otherwise(F.col("__reason0")).alias("__reason"))


def _label_contacts(sc: DataFrame, customers: DataFrame | None,
                    window: tuple[pd.Timestamp | None, pd.Timestamp]) -> DataFrame:
    """Service contacts with ``__reason``: ``orphan_key`` for an unknown customer, then
    ``implausible_date`` for a contact date outside the window."""
    F = sql_functions()
    conds: list[tuple[str, Column]] = []
    sc_lab = sc
    if customers is not None:
        sc_lab = sc.join(_key_set(customers, "customer_id", "__ck"), F.col("customer_id") == F.col("__ck"), "left")
        conds.append(("orphan_key", F.col("customer_id").isNotNull() & F.col("__ck_found").isNull()))
    conds += _date_guard(sc, "contacted_at", window)
    return sc_lab.select(*[F.col(c) for c in sc.columns], _reason(conds).alias("__reason"))


def _count_reasons(tables: Mapping[str, DataFrame], labelled: Mapping[str, DataFrame]) -> pd.DataFrame:
    """``table, reason, count`` over every table (unlabelled tables: all kept), in one Spark job."""
    F = sql_functions()
    parts = []
    for name, df in tables.items():
        lab = labelled.get(name)
        parts.append(lab.select(F.lit(name).alias("table"), F.col("__reason")) if lab is not None else
                     df.select(F.lit(name).alias("table"), F.lit(None).cast("string").alias("__reason")))
    union = parts[0]
    for p in parts[1:]:
        union = union.unionByName(p)
    return union.groupBy("table", F.col("__reason").alias("reason")).count().toPandas()


def _reconciliation(names: Sequence[str], counts: pd.DataFrame) -> pd.DataFrame:
    """The pandas reconciliation table from (table, reason, count) rows; rows as in
    :func:`ecrm_research.data.quality._rec_row`: a column per reason of ``REASONS`` and, when some
    row of the run has it, per guard reason of ``GUARD_REASONS`` (0 in the other tables)."""
    occurring = set(counts.loc[counts["reason"].notna() & (counts["count"] > 0), "reason"])
    guards = [r for r in GUARD_REASONS if r in occurring]
    rows = []
    for name in names:
        sub = counts[counts["table"] == name]
        by_reason = {r: int(n) for r, n in zip(sub["reason"], sub["count"]) if r is not None and not pd.isna(r)}
        n = int(sub["count"].sum())
        q = sum(by_reason.values())
        row: dict[str, Any] = {"table": name, "input_rows": n, "kept_rows": n - q, "quarantined_rows": q}
        row.update({r: by_reason.get(r, 0) for r in (*REASONS, *guards)})
        row["reconciles"] = row["kept_rows"] + row["quarantined_rows"] == n and \
            q == sum(by_reason.get(r, 0) for r in ALL_REASONS)
        rows.append(row)
    columns = ["table", "input_rows", "kept_rows", "quarantined_rows", *REASONS, *guards, "reconciles"]
    return pd.DataFrame(rows, columns=columns)


def _quarantine(labelled: Mapping[str, DataFrame]) -> DataFrame:
    F = sql_functions()

    def part(name: str, df: DataFrame, customer: str = "customer_id") -> DataFrame:
        cols = []
        for c in _QCOLS:
            if c == "table":
                cols.append(F.lit(name).alias(c))
            elif c == "reason":
                cols.append(F.col("__reason").alias(c))
            elif c == "customer_id" and customer in df.columns:
                cols.append(F.col(customer).cast("string").alias(c))
            elif c in df.columns:
                cols.append(F.col(c).cast(_QTYPES[c]).alias(c))
            else:
                cols.append(F.lit(None).cast(_QTYPES[c]).alias(c))
        return df.where(F.col("__reason").isNotNull()).select(*cols)

    parts = [part(name, df, "__ocust" if name == "order_items" else "customer_id") for name, df in labelled.items()]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out
