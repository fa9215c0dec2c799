"""Spark engine for data preparation: reading, cleaning, RFM, behaviour features and churn labels.

The pandas path (:mod:`~ecrm_research.data.io` → :mod:`~ecrm_research.data.quality` →
:mod:`~ecrm_research.segmentation` / :mod:`~ecrm_research.survival`) holds every order line in
memory. This module computes the same preparation steps with the Spark DataFrame API, so data
that does not fit one machine can stay in a cluster::

    folder ──read_tables──► Spark tables ──clean──► SparkCleanResult.tables (Spark)
    (pandas tables: from_pandas)             │  .reconciliation (pandas, counts)
                                             │  .quarantine (Spark; write_quarantine)
                                             ├─► rfm_table ─────────► pandas, 1 row/customer
                                             ├─► customer_features ─► pandas, 1 row/customer
                                             ├─► suggest_inactivity_days ─► int
                                             └─► label_churn ───────► survival.ChurnData

A notebook switches engine by swapping these calls for ``quality.prepare`` /
``segmentation.rfm_table`` / ``customer_features`` / ``activity.suggest_inactivity_days`` /
``survival.label_churn``; everything downstream (scores, clustering, Cox) is unchanged.

Design
------
* Everything of order-line or order size stays in Spark: validation, the cleaning joins, the
  per-order and per-customer group-bys, the window functions of the churn labelling. Order
  lines are first summed per order (a map-side partial aggregation), then per customer.
* Only *small* results come back to the driver: count tables (the reconciliation) and
  per-customer tables. One row per customer is small even at 10 million customers (a few
  hundred MB), and it is what the models (clustering, Kaplan-Meier, Cox) need anyway; they run
  unchanged on the driver.
* The last arithmetic on the per-customer sums (whole days between dates, means, shares,
  annualised values, the accounting) is done in pandas with the same numpy expressions as the
  pandas path. Integers, dates, labels and row order are therefore identical; sums of money
  agree to floating-point round-off, because Spark adds the same numbers in another order
  (RFM and features: at most 6e-15 relative on the bundled sample and on a 40,000-customer
  sample; the churn frame was bit-identical; ``tests/test_spark_prep.py`` checks 1e-9).

Differences from the pandas path (documented, by design)
---------------------------------------------------------
* Spark timestamps have microsecond resolution; sub-microsecond parts are truncated (floor).
* A distributed table has no row positions: the quarantine identifies a row by its key
  columns (``order_id``, ``line_no``, ``contact_id``, ``source_row``) instead of ``row``.
  With ``drop_duplicate_rows`` the copy kept is the one with the smallest ``line_no`` (the
  pandas path keeps the first in file order, which is the same for data stored by order line).
* Keys must be unique (``read_tables`` and ``from_pandas`` check it): the cleaning joins
  would repeat rows otherwise, where the pandas path takes the first match.
* CSV dates must be ISO 8601 (``2024-01-31 12:00:00``) unless ``date_format`` is given.
* The quality *report* (``quality.CleanResult.report``) is not computed here; the
  reconciliation is.

Examples
--------
>>> from ecrm_research import spark_prep                              # doctest: +SKIP
>>> tables = spark_prep.read_tables("s3a://shop/canonical", spark_master="yarn")  # doctest: +SKIP
>>> cleaned = spark_prep.clean(tables)                                # doctest: +SKIP
>>> cleaned.reconciliation                                            # doctest: +SKIP
>>> rfm = spark_prep.rfm_table(cleaned.tables)                        # doctest: +SKIP
>>> churn = spark_prep.label_churn(cleaned.tables, inactivity_days=180)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data import schema
from ..data.quality import REASONS, CleaningPolicy
from ..exceptions import AnalysisError, DataError, FormatError, ParameterError, SchemaError

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "spark_session", "read_tables", "from_pandas", "SparkCleanResult", "clean", "resolve_as_of",
    "rfm_table", "customer_features", "suggest_inactivity_days", "label_churn",
]

_DAY_NS = 86_400 * 10**9
_DAY_US = 86_400 * 10**6
#: the epoch as a time-zone-free timestamp literal (a Python datetime literal would be converted
#: through the local time zone)
_EPOCH_SQL = "TIMESTAMP_NTZ'1970-01-01 00:00:00'"
#: the characters Python's ``str.strip()`` removes (``str.isspace``); Spark's ``trim`` only
#: removes spaces
_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
               "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_TRUTHY = ("1", "true", "yes", "y", "t")
_FALSY = ("0", "false", "no", "n", "f")
_SPARK_TYPES = {"id": "string", "text": "string", "category": "string", "datetime": "timestamp_ntz",
                "float": "double", "int": "bigint", "bool": "boolean"}


# --------------------------------------------------------------------------- session
def _pyspark() -> Any:
    try:
        from pyspark.sql import functions as F
    except ImportError:  # pragma: no cover - depends on the installation
        raise ParameterError("The Spark engine needs pyspark and Java 17+: `pip install 'ecrm-research[spark]'` "
                             "(or `pip install pyspark`). Without it use the pandas path (quality.prepare).",
                             allowed=["pandas"]) from None
    return F


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The project's SparkSession for ``master``, started once per process and reused.

    Parameters
    ----------
    master : str, optional
        Spark master URL: ``'local[4]'``, ``'spark://host:7077'``, ``'yarn'``...; default
        :data:`ecrm_research.association.DEFAULT_SPARK_MASTER` (``'local[2]'``).
    conf : mapping, optional
        Spark settings; they override :data:`ecrm_research.association.SPARK_DEFAULTS`
        (e.g. ``{"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "200"}``).

    Returns
    -------
    SparkSession
        The same session the association engine uses (one JVM per process).
    """
    _pyspark()
    from ..infra.spark import get_session

    return get_session(master, conf)


def _session_of(tables: Mapping[str, Any]) -> SparkSession:
    for df in tables.values():
        if hasattr(df, "sparkSession"):
            return df.sparkSession
    return spark_session()


def _spark_tables(tables: Mapping[str, Any], needed: Sequence[str], analysis: str) -> dict[str, DataFrame]:
    """Spark tables from a mapping of Spark or pandas DataFrames (pandas ones are converted)."""
    if not isinstance(tables, Mapping):
        raise ParameterError(f"{analysis}: tables must be a dict of table name -> DataFrame (e.g. spark_prep."
                             f"read_tables(path) or spark_prep.clean(...).tables); got {type(tables).__name__}.")
    missing = [t for t in needed if t not in tables]
    if missing:
        raise SchemaError(f"{analysis}: table(s) {missing} missing; have {sorted(tables)}. Read a canonical folder "
                          "with spark_prep.read_tables.", source=missing[0], column=missing[0])
    pandas_part = {k: v for k, v in tables.items() if isinstance(v, pd.DataFrame)}
    out = dict(tables)
    if pandas_part:
        spark = _session_of({k: v for k, v in tables.items() if k not in pandas_part})
        out.update(from_pandas(pandas_part, spark))
    return {k: out[k] for k in tables}


class _Progress:
    """Stage progress (association's tqdm bar) plus the job description shown in the Spark UI."""

    def __init__(self, spark: SparkSession, enabled: bool, total: int, desc: str):
        from ..infra.progress import Stages

        self.spark, self.desc = spark, desc
        self.stages = Stages(enabled, total, desc)

    def stage(self, name: str) -> None:
        self.stages.stage(name)
        try:
            self.spark.sparkContext.setJobDescription(f"ecrm_research {self.desc}: {name}")
        except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext; the bar is enough
            pass

    def close(self) -> None:
        self.stages.close()
        try:
            self.spark.sparkContext.setJobDescription(None)
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- column helpers
def _quoted(name: str) -> str:
    """A column name Spark takes literally (dots and spaces in survey item names)."""
    return "`" + str(name).replace("`", "``") + "`"


def _epoch() -> Column:
    F = _pyspark()
    return F.expr(_EPOCH_SQL)


def _us(df: DataFrame, name: str) -> Column:
    """Microseconds since 1970-01-01 (wall clock, no time zone) of a timestamp column, as bigint.

    ``timestamp_ntz`` (what :func:`read_tables` makes) is differenced from the epoch without a
    time zone; a ``timestamp`` (an instant) gives its UTC wall clock, as pandas'
    ``tz_convert(None)``; a number is taken as nanoseconds (Parquet ``TIMESTAMP(NANOS)`` read by
    Spark, and what pandas' ``to_datetime`` makes of integers).
    """
    F = _pyspark()
    return _us_of(F.col(name), df.schema[name].dataType, name)


def _us_of(c: Column, dt: Any, name: str) -> Column:
    F = _pyspark()
    from pyspark.sql import types as T

    if isinstance(dt, T.TimestampNTZType):
        return F.timestamp_diff("MICROSECOND", _epoch(), c)
    if isinstance(dt, T.TimestampType):
        return F.unix_micros(c)
    if isinstance(dt, T.DateType):
        return F.timestamp_diff("MICROSECOND", _epoch(), c.cast("timestamp_ntz"))
    if isinstance(dt, T.NumericType):
        return _ns_to_us(c.try_cast("bigint"))
    raise SchemaError(f"column '{name}' has Spark type {dt.simpleString()}, not a timestamp. Read the tables with "
                      "spark_prep.read_tables (it casts the canonical columns).", column=name)


def _ns_to_us(ns: Column) -> Column:
    F = _pyspark()
    return F.call_function("div", ns - F.pmod(ns, F.lit(1000)), F.lit(1000))


def _ntz_from_us(us: Column) -> Column:
    F = _pyspark()
    return F.timestamp_add("MICROSECOND", us, _epoch())


def _strip(c: Column) -> Column:
    """``str.strip()`` in Spark: whitespace removed at both ends. ``btrim`` runs only on values
    whose first or last character is whitespace (ids rarely need it)."""
    F = _pyspark()
    ws = F.lit(_WHITESPACE)
    edge = (F.instr(ws, F.substring(c, 1, 1)) > 0) | (F.instr(ws, F.substring(c, -1, 1)) > 0)
    return F.when(edge, F.btrim(c, ws)).otherwise(c)


def _ok(c: Column) -> Column:
    """A usable double: not null and not NaN (pandas treats both as missing)."""
    F = _pyspark()
    return c.isNotNull() & ~F.isnan(c)


def _pos(c: Column) -> Column:
    """``c > 0`` as pandas means it: Spark orders NaN above every number, pandas says False."""
    return _ok(c) & (c > 0)


def _num0(c: Column) -> Column:
    """Missing/NaN → 0.0 (``numpy.bincount`` weights after ``_nan0``)."""
    F = _pyspark()
    return F.when(_ok(c), c).otherwise(F.lit(0.0))


def _sort_by_id(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    """Rows sorted by the text of ``col`` in code-point order (pyarrow's stable sort, as the
    pandas path sorts customer ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(frame) < 2:
        return frame.reset_index(drop=True)
    order = pc.sort_indices(pa.array(frame[col].astype(object).to_numpy(), type=pa.string())).to_numpy()
    return frame.iloc[order].reset_index(drop=True)


def _us_to_ns(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64) * 1000


# --------------------------------------------------------------------------- reading
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".txt", ".tsv", ".dat")
_COMPRESSION = (".gz", ".bz2", ".xz", ".zip")
_EXCEL = (".xlsx", ".xlsm", ".xls")


def _entry_format(name: str, is_dir: bool) -> tuple[str, str] | None:
    """``(table, 'parquet'|'csv'|'excel')`` for a folder entry named after a canonical table."""
    stem = name.split(".")[0]
    if stem not in schema.TABLES:
        return None
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in _PARQUET or (is_dir and ext == ""):
        return stem, "parquet"  # Spark writes a table as a folder of part files
    if ext in _CSV:
        return stem, "csv"
    if ext in _EXCEL:
        return stem, "excel"
    return None


def _list_folder(spark: SparkSession, path: str) -> list[tuple[str, str, bool]]:
    """``(name, full path, is_dir)`` of the entries of a local folder or a Hadoop URI."""
    if "://" not in path or path.startswith("file://"):
        folder = Path(path.removeprefix("file://"))
        if not folder.exists():
            raise DataError(f"{path}: folder not found (looked at {folder.resolve()}). Check the path.", source=path)
        if not folder.is_dir():
            raise FormatError(f"{path}: the Spark engine reads a folder of canonical tables ({', '.join(schema.TABLES)}"
                              " as .parquet or .csv); this is a file.", source=path)
        return [(p.name, str(p), p.is_dir()) for p in sorted(folder.iterdir()) if not p.name.startswith((".", "_"))]
    jvm = spark._jvm  # noqa: SLF001 - Hadoop's FileSystem lists s3a://, hdfs://, abfss://...
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())  # noqa: SLF001
    if not fs.exists(hpath):
        raise DataError(f"{path}: folder not found.", source=path)
    out = [(s.getPath().getName(), s.getPath().toString(), s.isDirectory()) for s in fs.listStatus(hpath)]
    return sorted(o for o in out if not o[0].startswith((".", "_")))


def _strftime_to_spark(fmt: str) -> str:
    """A strftime date format (as pandas takes) in Spark's pattern language."""
    if "%" not in fmt:
        return fmt  # already a Spark pattern
    table = {"%Y": "yyyy", "%y": "yy", "%m": "MM", "%d": "dd", "%H": "HH", "%I": "hh", "%M": "mm", "%S": "ss",
             "%f": "SSSSSS", "%b": "MMM", "%B": "MMMM", "%p": "a", "%%": "%"}
    out, i = [], 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in table:
            out.append(table[tok])
            i += 2
            continue
        if tok.startswith("%"):
            raise ParameterError(f"date_format={fmt!r}: {tok!r} has no Spark equivalent here; give a Spark pattern "
                                 "such as 'dd/MM/yyyy HH:mm'.")
        ch = fmt[i]
        out.append(f"'{ch}'" if ch.isalpha() else ch)
        i += 1
    return "".join(out)


@dataclass
class _Check:
    """One validation count: rows where ``bad`` holds, with the raw value as example."""

    column: str
    bad: Any
    example: Any
    message: str  # format with n, example


def _canonical_column(raw: DataFrame, spec: schema.ColumnSpec, *, where: str, date_format: str | None,
                      decimal: str, tidy_ids: frozenset[str]) -> tuple[Column, list[_Check]]:
    """The canonical Spark expression of one column and the checks of its values."""
    F = _pyspark()
    from pyspark.sql import types as T

    name, kind = spec.name, spec.kind
    c = F.col(_quoted(name))
    dt = raw.schema[name].dataType
    is_str = isinstance(dt, T.StringType)
    is_num = isinstance(dt, T.NumericType)
    if is_str:
        present = c.isNotNull() & (_strip(c) != "")
    elif isinstance(dt, (T.DoubleType, T.FloatType)):
        present = _ok(c)
    else:
        present = c.isNotNull()
    checks: list[_Check] = []

    def bad_values(value: Column, what: str, hint: str) -> None:
        checks.append(_Check(name, present & value.isNull(), c.cast("string"),
                             f"{where}: column '{name}' has {{n:,}} value(s) that are not {what} (e.g. {{example!r}})."
                             f" {hint}"))

    if kind in ("id", "text"):
        if is_str:
            s = F.regexp_replace(c, r"\.0+$", "") if name in tidy_ids else c
            trimmed = _strip(s)
            value = F.when(trimmed == "", F.lit(None)).otherwise(trimmed if kind == "id" else s)
        elif isinstance(dt, (T.DoubleType, T.FloatType)):
            # ids read as floats (17850.0 because of blanks) -> '17850'
            whole = _ok(c) & (c == F.floor(c))
            value = F.when(whole, c.try_cast("bigint").cast("string")).when(_ok(c), c.cast("string"))
        else:
            value = c.cast("string")
    elif kind == "datetime":
        if is_str:
            s = _strip(c)
            if date_format:
                fmt = F.lit(_strftime_to_spark(date_format))
                value = F.when(F.try_to_timestamp(s, fmt).isNotNull(), F.to_timestamp_ntz(s, fmt))
                hint = f"Check date_format (it was {date_format!r}) or fix the rows."
            else:
                value = s.try_cast("timestamp_ntz")
                hint = "Pass date_format, e.g. '%d/%m/%Y' or '%Y-%m-%d %H:%M', or fix the rows."
            bad_values(value, "dates", hint)
        elif isinstance(dt, T.TimestampNTZType):
            value = c
        elif isinstance(dt, (T.TimestampType, T.DateType)) or is_num:
            if isinstance(dt, (T.DoubleType, T.FloatType)):
                c = F.when(_ok(c), c)
            value = _ntz_from_us(_us_of(c, dt, name))
        else:
            value = c.try_cast("timestamp_ntz")
            bad_values(value, "dates", "Fix the rows.")
    elif kind == "int" and isinstance(dt, T.IntegralType):
        value = c  # already whole numbers
    elif kind in ("float", "int"):
        if is_str:
            s = _strip(c)
            if decimal != ".":
                s = F.translate(s, decimal, ".")
            d = s.try_cast("double")
            bad_values(d, "numbers", "If the file uses a decimal comma pass decimal=','; otherwise fix the rows.")
        else:
            d = c.cast("double")
        d = F.when(_ok(d), d) if not isinstance(dt, T.IntegralType) else d  # NaN -> missing, as in pandas
        if kind == "float":
            value = d
        else:
            value = F.when(d == F.floor(d), d.try_cast("bigint"))
            checks.append(_Check(name, d.isNotNull() & (d != F.floor(d)), c.cast("string"),
                                 f"{where}: column '{name}' has {{n:,}} value(s) that are not whole numbers "
                                 "(e.g. {example!r}). Fix the rows."))
    elif kind == "bool":
        if isinstance(dt, T.BooleanType):
            value = c
        else:
            low = F.lower(_strip(c.cast("string")))
            value = F.when(low.isin(*_TRUTHY), F.lit(True)).when(low.isin(*_FALSY), F.lit(False))
            bad_values(value, "yes/no values", "Use 1/0, true/false or yes/no.")
    elif kind == "category":
        low = F.lower(_strip(c.cast("string")))
        value = F.when(low != "", low)
        if spec.allowed:
            checks.append(_Check(name, value.isNotNull() & ~value.isin(*spec.allowed), c.cast("string"),
                                 f"{where}: column '{name}' has {{n:,}} value(s) that are not one of "
                                 f"{list(spec.allowed)} (e.g. {{example!r}}). Map the values or fix the rows."))
    else:  # pragma: no cover - schema.ColumnSpec kinds are closed
        raise ValueError(f"unknown column kind {kind!r}")
    value = value.cast(_SPARK_TYPES[kind])
    # value constraints (pandera's checks in schema.validate_table)
    if not spec.nullable:
        checks.append(_Check(name, value.isNull() & ~present, F.lit(None).cast("string"),
                             f"{where}: column '{name}' has {{n:,}} missing value(s); every row needs one. "
                             "Fix the rows or the column mapping."))
    if spec.min_value is not None:
        checks.append(_Check(name, value < F.lit(spec.min_value), c.cast("string"),
                             f"{where}: column '{name}' has {{n:,}} value(s) below {spec.min_value:g} "
                             "(e.g. {example!r}). Fix the rows or the column mapping."))
    if spec.max_value is not None:
        checks.append(_Check(name, value > F.lit(spec.max_value), c.cast("string"),
                             f"{where}: column '{name}' has {{n:,}} value(s) above {spec.max_value:g} "
                             "(e.g. {example!r}). Fix the rows or the column mapping."))
    return value.alias(name), checks


def _require_columns(raw: DataFrame, table: str, where: str) -> None:
    schema.require_columns(raw.columns, table, where, hint="Rename them in the file (the Spark engine reads "
                           "canonical names; see schema.describe()).")


def _one_row(parts: Sequence[DataFrame]) -> Any:
    """Collect several one-row aggregates in one Spark action (a cross join of single rows)."""
    combined = parts[0]
    for p in parts[1:]:
        combined = combined.crossJoin(p)
    return combined.collect()[0]


def _canonical_tables(raws: Mapping[str, tuple[DataFrame, str, bool]], *, date_format: str | None = None,
                      decimal: str = ".", validate: bool = True) -> dict[str, DataFrame]:
    """Cast raw Spark tables to the canonical columns and types, validating them.

    ``raws``: table → (raw DataFrame, where (file name for messages), text file?). With
    ``validate``, one Spark action counts every check of every table (unparsable values, missing
    required values, ranges, allowed values, empty tables; as ``schema.coerce_table`` +
    ``validate_table`` do) and, for text files, which id columns hold float-looking ids; a second
    action groups each table by its key for surplus rows. Problems are reported table by table in
    the data model's order, the first failing check first.
    """
    F = _pyspark()

    def build(raw: DataFrame, table: str, where: str, tidy: frozenset[str]) -> tuple[list[Column], list[_Check]]:
        spec = schema.TABLES[table]
        cols, checks = [], []
        for c in spec.columns:
            if c.name in raw.columns:
                value, cc = _canonical_column(raw, c, where=where, date_format=date_format, decimal=decimal,
                                              tidy_ids=tidy)
                cols.append(value)
                checks += cc
            else:
                cols.append(F.lit(None).cast(_SPARK_TYPES[c.kind]).alias(c.name))
        for extra in (c for c in raw.columns if c not in spec.names):
            if spec.extra_numeric:
                value, cc = _canonical_column(raw, schema.ColumnSpec(extra, "float"), where=where,
                                              date_format=None, decimal=decimal, tidy_ids=frozenset())
                cols.append(value)
                checks += cc
            else:
                cols.append(F.col(_quoted(extra)))
        return cols, checks

    checks, ids, parts = {}, {}, []
    for j, (table, (raw, where, text)) in enumerate(raws.items()):
        _require_columns(raw, table, where)
        # the checks do not depend on the id tidying (it only drops a '.0' suffix)
        checks[table] = build(raw, table, where, frozenset())[1] if validate else []
        ids[table] = [c.name for c in schema.TABLES[table].columns
                      if text and c.kind == "id" and c.name in raw.columns]
        aggs = []
        for c in ids[table]:  # text ids such as '17850.0' everywhere: read as '17850' (io._tidy_float_ids)
            given = F.col(_quoted(c)).isNotNull()
            aggs += [F.sum(given.cast("int")).alias(f"t{j}_given_{c}"),
                     F.sum((given & F.col(_quoted(c)).rlike(r"^-?\d+\.0+$")).cast("int")).alias(f"t{j}_float_{c}")]
        if validate:
            aggs.append(F.count(F.lit(1)).alias(f"t{j}_n"))
            for i, ch in enumerate(checks[table]):
                aggs.append(F.sum(F.when(ch.bad, 1).otherwise(0)).alias(f"t{j}_b{i}"))
                aggs.append(F.first(F.when(ch.bad, ch.example), ignorenulls=True).alias(f"t{j}_e{i}"))
        if aggs:
            parts.append(raw.agg(*aggs))
    row = _one_row(parts) if parts else None
    out = {}
    for j, (table, (raw, where, _)) in enumerate(raws.items()):
        if validate:
            _raise_failed_checks(row, j, checks[table], table, where)
        tidy = frozenset(c for c in ids[table]
                         if (row[f"t{j}_given_{c}"] or 0) > 0 and row[f"t{j}_given_{c}"] == row[f"t{j}_float_{c}"])
        out[table] = raw.select(*build(raw, table, where, tidy)[0])
    if validate:
        _check_unique_keys(out, {t: w for t, (_, w, _) in raws.items()})
    return out


def _raise_failed_checks(row: Any, j: int, checks: list[_Check], table: str, where: str) -> None:
    spec = schema.TABLES[table]
    if not row[f"t{j}_n"]:
        raise SchemaError(f"{where}: the table is empty (no rows). A '{table}' table needs at least one row "
                          f"with columns {spec.required}.", source=where, n_rows=0)
    for i, ch in enumerate(checks):
        n = int(row[f"t{j}_b{i}"] or 0)
        if n:
            example = row[f"t{j}_e{i}"]
            raise SchemaError(ch.message.format(n=n, example=example), source=where, column=ch.column, n_rows=n,
                              example=example)


def _check_unique_keys(tables: Mapping[str, DataFrame], where: Mapping[str, str]) -> None:
    """Surplus rows per key of every table, in one Spark action."""
    F = _pyspark()
    parts = []
    for j, (table, df) in enumerate(tables.items()):
        key = list(schema.TABLES[table].key)
        parts.append(df.groupBy(*key).count().where(F.col("count") > 1)
                     .agg(F.sum(F.col("count") - 1).alias(f"t{j}_n"),
                          F.first(F.array(*[F.col(k).cast("string") for k in key])).alias(f"t{j}_key")))
    row = _one_row(parts)
    for j, table in enumerate(tables):
        n_dup = int(row[f"t{j}_n"] or 0)
        if n_dup:
            key = list(schema.TABLES[table].key)
            example = list(row[f"t{j}_key"])
            raise SchemaError(
                f"{where[table]}: key {key} is not unique: {n_dup:,} surplus row(s) share a key (first: {example}). "
                "Each row of this table must have its own key; remove the duplicates or choose another key.",
                source=where[table], column=key[0], n_rows=n_dup, example=example)


def read_tables(path: str | Path | None = None, spark: SparkSession | None = None, *,
                spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
                validate: bool = True, sep: str | None = None, decimal: str = ".", encoding: str = "utf-8",
                date_format: str | None = None) -> dict[str, DataFrame]:
    """Read a folder of canonical tables into Spark DataFrames with the canonical columns and types.

    Parameters
    ----------
    path : str or Path, optional
        ``None`` reads the bundled sample (as :func:`ecrm_research.data.io.load_dataset` does). Else
        a folder (local, or any URI Hadoop reads: ``hdfs://``, ``s3a://``, ``abfss://``) holding
        one entry per table named after it: ``orders.parquet`` (a file, or a folder of part files
        as Spark writes it; a folder named ``orders`` is read as Parquet too) or ``orders.csv``
        (optionally ``.gz``). Sub-folders with other names (e.g. ``truth/``) are ignored.
    spark : SparkSession, optional
        Default: :func:`spark_session` with ``spark_master`` and ``spark_conf``.
    spark_master, spark_conf
        Passed to :func:`spark_session` when ``spark`` is not given.
    validate : bool, default True
        Check the values as :func:`ecrm_research.data.schema.coerce_table` and ``validate_tables``
        do on the pandas path: unparsable values, missing values in required columns, value
        ranges, allowed values, empty tables (one Spark action for all tables), unique keys (a
        second action). Every table's required columns are checked first, before any data is
        read.
    sep, decimal, encoding, date_format
        CSV options. ``sep=None`` sniffs the separator of local files (``','`` otherwise);
        ``date_format`` is a strftime format (``'%d/%m/%Y'``) or a Spark pattern
        (``'dd/MM/yyyy'``); without it CSV dates must be ISO 8601.

    Returns
    -------
    dict of DataFrame
        ``{table: Spark DataFrame}`` in the data model's order. Ids, text and categories are
        strings (trimmed ids, blanks → null, categories lower case), timestamps
        ``timestamp_ntz`` (wall clock, no time zone, like pandas' ``datetime64[ns]``), numbers
        double, ``line_no``/``source_row`` bigint, flags boolean; absent optional columns are
        added as nulls.

    Raises
    ------
    SchemaError
        A required table or column is missing (naming the file and column), or validation fails
        (naming the file, column, number of rows and an example value).
    DataError, FormatError
        Folder not found, two files for one table, an Excel file (save it as Parquet or CSV).

    Notes
    -----
    Parquet timestamps with nanosecond resolution (pandas' default) are not readable by Spark
    as timestamps; this function sets ``spark.sql.legacy.parquet.nanosAsLong=true`` on the
    session, reads them as nanoseconds and converts them (sub-microsecond parts are dropped).
    """
    _pyspark()
    spark = spark or spark_session(spark_master, spark_conf)
    if path is None:
        from ..paths import SAMPLE_DIR

        path = SAMPLE_DIR
    path = str(path)
    found: dict[str, tuple[str, str]] = {}
    for name, full, is_dir in _list_folder(spark, path):
        hit = _entry_format(name, is_dir)
        if hit is None:
            continue
        table, fmt = hit
        if fmt == "excel":
            raise FormatError(f"{full}: the Spark engine reads Parquet and CSV, not Excel. Save the sheet as "
                              f"{table}.parquet or {table}.csv.", source=full, example=name)
        if table in found:
            raise DataError(f"{path}: two entries for table '{table}' ({Path(found[table][0]).name}, {name}); "
                            "keep one.", source=path, column=table, example=name)
        found[table] = (full, fmt)
    absent = [t for t in schema.REQUIRED_TABLES if t not in found]
    if absent:
        others = [n for n, _, _ in _list_folder(spark, path)][:20]
        raise SchemaError(f"{path}: canonical table file(s) {absent} missing (found: {others}). A canonical folder "
                          f"holds {list(schema.REQUIRED_TABLES)} as .parquet/.csv files (or Spark part-file folders) "
                          "named after the tables.", source=path, column=absent[0], n_rows=len(absent))
    if any(fmt == "parquet" for _, fmt in found.values()):
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    raws: dict[str, tuple[DataFrame, str, bool]] = {}
    for table in schema.TABLES:  # every table's columns are checked before any value is read
        if table not in found:
            continue
        full, fmt = found[table]
        if fmt == "parquet":
            raw = spark.read.parquet(full)
        else:
            this_sep = sep
            if this_sep is None:
                this_sep = "\t" if ".tsv" in Path(full).suffixes else ","
                compressed = Path(full).suffix.lower() in _COMPRESSION
                if "://" not in full and Path(full).is_file() and not compressed and this_sep != "\t":
                    from ..data.io import sniff_sep

                    this_sep = sniff_sep(Path(full), encoding, ".csv", decimal)
            raw = spark.read.csv(full, header=True, sep=this_sep, encoding=encoding, inferSchema=False)
        _require_columns(raw, table, full)
        raws[table] = (raw, full, fmt == "csv")
    tables = _canonical_tables(raws, date_format=date_format, decimal=decimal, validate=validate)
    return tables


def _arrow_table(df: pd.DataFrame):
    """A pandas table as Arrow with Spark-friendly types: timestamps as int64 microseconds
    (converted to ``timestamp_ntz`` in Spark, free of time zones), categories as text."""
    import pyarrow as pa

    arrays, names, times = [], [], []
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert(None)
            ns = s.to_numpy("datetime64[ns]").view(np.int64)
            mask = np.asarray(s.isna(), dtype=bool)
            arrays.append(pa.array(np.floor_divide(ns, 1000), type=pa.int64(), mask=mask))
            times.append(str(name))
        elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype) and not \
                pd.api.types.is_object_dtype(s.dtype):
            obj = s.astype(object)
            arrays.append(pa.array(obj.where(obj.notna(), None).tolist(), type=pa.string()))
        elif pd.api.types.is_bool_dtype(s.dtype):
            arrays.append(pa.array(s.astype(object).where(s.notna(), None).tolist(), type=pa.bool_()))
        elif pd.api.types.is_integer_dtype(s.dtype):
            arrays.append(pa.array(s.array, type=pa.int64()))  # nullable Int64 keeps its missing values
        elif pd.api.types.is_float_dtype(s.dtype):
            arrays.append(pa.array(s.to_numpy(dtype=float, na_value=np.nan), type=pa.float64(), from_pandas=True))
        else:
            obj = s.astype(object)
            arrays.append(pa.array(obj.where(obj.notna(), None).tolist(), from_pandas=True))
        names.append(str(name))
    return pa.table(arrays, names=names), times


def from_pandas(tables: Mapping[str, pd.DataFrame], spark: SparkSession | None = None, *,
                spark_master: str | None = None, validate: bool = True) -> dict[str, DataFrame]:
    """Canonical pandas tables as Spark tables (the types :func:`read_tables` makes).

    Parameters
    ----------
    tables : dict of DataFrame
        Canonical tables, e.g. ``io.load_dataset(...).tables``; tables of the data model are
        first passed through :func:`ecrm_research.data.schema.coerce_table` (cheap when they are
        canonical already) and, with ``validate``, :func:`ecrm_research.data.schema.validate_table`.
    spark : SparkSession, optional
        Default: :func:`spark_session` with ``spark_master``.
    validate : bool, default True

    Returns
    -------
    dict of DataFrame

    Raises
    ------
    SchemaError
        As :func:`ecrm_research.data.schema.coerce_table` / ``validate_table``.
    """
    F = _pyspark()
    spark = spark or spark_session(spark_master)
    out = {}
    for name, df in tables.items():
        if name in schema.TABLES:
            df = schema.coerce_table(df, name)
            if validate:
                schema.validate_table(df, name)
        arrow, times = _arrow_table(df)
        sdf = spark.createDataFrame(arrow)
        if times:
            sdf = sdf.select(*[_ntz_from_us(F.col(c)).alias(c) if c in times else F.col(c) for c in sdf.columns])
        out[name] = sdf
    return out


# --------------------------------------------------------------------------- cleaning
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
        F = _pyspark()
        items, orders = self.tables["order_items"], self.tables["orders"]
        lines = items.agg(F.count(F.lit(1)).alias("n"),
                          F.sum(_num0(F.col("quantity") * F.col("unit_price"))).alias("revenue"))
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
    F = _pyspark()
    return (df.select(F.col(column).alias(alias)).where(F.col(alias).isNotNull()).distinct()
            .withColumn(alias + "_found", F.lit(True)))


def _reason(conditions: Sequence[tuple[str, Column]]) -> Column:
    """First condition that holds (priority order), as its reason code; null = kept."""
    F = _pyspark()
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
    :mod:`ecrm_research.data.quality` module docstring): orphan keys, missing customer, cancelled
    orders (cascading to their lines), non-positive quantity or price, opt-in duplicate and
    non-product lines, then orders left without any kept line.

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
    F = _pyspark()
    from pyspark import StorageLevel
    from pyspark.sql import Window

    policy = CleaningPolicy() if policy is None else policy
    if not isinstance(policy, CleaningPolicy):
        raise ParameterError(f"policy must be a quality.CleaningPolicy, got {type(policy).__name__}.")
    missing = [t for t in ("orders", "order_items") if t not in tables]
    if missing:
        raise SchemaError(f"clean: table(s) {missing} missing; have {sorted(tables)}. Cleaning needs canonical "
                          "orders and order_items (read them with spark_prep.read_tables).", column=missing[0])
    tables = _spark_tables(tables, ("orders", "order_items"), "clean")
    spark = _session_of(tables)
    prog = _Progress(spark, progress, 2, "spark clean")
    codes = sorted({str(c) for c in non_product_codes})
    orders, items = tables["orders"], tables["order_items"]
    customers, products = tables.get("customers"), tables.get("products")
    try:
        prog.stage("label rows")
        # orders: orphan customer, missing customer, cancelled
        o = orders
        conds: list[tuple[str, Column]] = []
        if customers is not None:
            o = o.join(_key_set(customers, "customer_id", "__ck"), F.col("customer_id") == F.col("__ck"), "left")
            conds.append(("orphan_key", F.col("customer_id").isNotNull() & F.col("__ck_found").isNull()))
        if policy.drop_missing_customer:
            conds.append(("missing_customer", F.col("customer_id").isNull()))
        if policy.drop_cancelled:
            conds.append(("cancelled", F.col("status") == "cancelled"))
        o = o.select(*[F.col(c) for c in orders.columns], _reason(conds).alias("__reason0"))

        # order lines: inherit the order's reason; then the line's own reasons
        parent = o.select(F.col("order_id").alias("__ok"), F.col("__reason0").alias("__oreason"),
                          F.col("customer_id").alias("__ocust"), F.lit(True).alias("__ok_found"))
        it = items.join(parent, F.col("order_id") == F.col("__ok"), "left")
        orphan = F.col("__ok_found").isNull() | (F.col("__oreason") == "orphan_key")
        if products is not None:
            it = it.join(_key_set(products, "product_id", "__pk"), F.col("product_id") == F.col("__pk"), "left")
            orphan = orphan | (F.col("product_id").isNotNull() & F.col("__pk_found").isNull())
        conds = [("orphan_key", orphan),
                 ("missing_customer", F.col("__oreason") == "missing_customer"),
                 ("cancelled", F.col("__oreason") == "cancelled")]
        if policy.drop_nonpositive_quantity:
            conds.append(("nonpositive_quantity", _ok(F.col("quantity")) & (F.col("quantity") <= 0)))
        if policy.drop_nonpositive_price:
            conds.append(("nonpositive_price", _ok(F.col("unit_price")) & (F.col("unit_price") <= 0)))
        if policy.drop_duplicate_rows:
            content = [c for c in items.columns if c not in ("line_no", "source_row")]
            w = Window.partitionBy(*content).orderBy(*[c for c in ("line_no", "source_row") if c in items.columns])
            it = it.withColumn("__copy", F.row_number().over(w))
            conds.append(("duplicate_row", F.col("__copy") > 1))
        if policy.drop_non_product and codes:
            conds.append(("non_product", F.col("product_id").isin(*codes)))
        items_lab = it.select(*[F.col(c) for c in items.columns], _reason(conds).alias("__reason"),
                              F.col("__ocust"), F.col("__ok"))
        persisted = []

        def keep(df: DataFrame) -> DataFrame:
            if not persist:
                return df
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
            persisted.append(df)
            return df

        items_lab = keep(items_lab)  # before the per-order counts, so the lines are labelled once

        # orders that had lines but kept none
        per_order = (items_lab.where(F.col("__ok").isNotNull()).groupBy("__ok")
                     .agg(F.count(F.lit(1)).alias("__lines"),
                          F.sum(F.col("__reason").isNull().cast("int")).alias("__kept")))
        o2 = o.join(per_order, F.col("order_id") == F.col("__ok"), "left")
        no_kept = F.col("__reason0").isNull() & (F.coalesce(F.col("__lines"), F.lit(0)) > 0) & \
            (F.col("__kept") == 0)
        orders_lab = o2.select(*[F.col(c) for c in orders.columns],
                               F.when(no_kept, F.lit("no_kept_lines")).otherwise(F.col("__reason0")).alias("__reason"))
        labelled = {"orders": keep(orders_lab), "order_items": items_lab}
        if "service_contacts" in tables:
            sc = tables["service_contacts"]
            if customers is not None:
                sc_lab = sc.join(_key_set(customers, "customer_id", "__ck"), F.col("customer_id") == F.col("__ck"),
                                 "left")
                r = F.when(F.col("customer_id").isNotNull() & F.col("__ck_found").isNull(), F.lit("orphan_key"))
                sc_lab = sc_lab.select(*[F.col(c) for c in sc.columns], r.alias("__reason"))
            else:
                sc_lab = sc.select("*", F.lit(None).cast("string").alias("__reason"))
            labelled["service_contacts"] = keep(sc_lab)

        prog.stage("count")
        parts = []
        for name, df in tables.items():
            lab = labelled.get(name)
            parts.append(lab.select(F.lit(name).alias("table"), F.col("__reason")) if lab is not None else
                         df.select(F.lit(name).alias("table"), F.lit(None).cast("string").alias("__reason")))
        union = parts[0]
        for p in parts[1:]:
            union = union.unionByName(p)
        counts = union.groupBy("table", F.col("__reason").alias("reason")).count().toPandas()
        reconciliation = _reconciliation(list(tables), counts)

        kept = {}
        for name, df in tables.items():
            lab = labelled.get(name)
            kept[name] = df if lab is None else lab.where(F.col("__reason").isNull()).select(*df.columns)
        quarantine = _quarantine(labelled)
    finally:
        prog.close()
    return SparkCleanResult(tables=kept, quarantine=quarantine, reconciliation=reconciliation, policy=policy,
                            _persisted=persisted)


def _reconciliation(names: Sequence[str], counts: pd.DataFrame) -> pd.DataFrame:
    """The pandas reconciliation table from (table, reason, count) rows; rows as in
    :func:`ecrm_research.data.quality._rec_row`."""
    rows = []
    for name in names:
        sub = counts[counts["table"] == name]
        by_reason = {r: int(n) for r, n in zip(sub["reason"], sub["count"]) if r is not None and not pd.isna(r)}
        n = int(sub["count"].sum())
        q = sum(by_reason.values())
        row: dict[str, Any] = {"table": name, "input_rows": n, "kept_rows": n - q, "quarantined_rows": q}
        row.update({r: by_reason.get(r, 0) for r in REASONS})
        row["reconciles"] = row["kept_rows"] + row["quarantined_rows"] == n and q == sum(row[r] for r in REASONS)
        rows.append(row)
    return pd.DataFrame(rows)


def _quarantine(labelled: Mapping[str, DataFrame]) -> DataFrame:
    F = _pyspark()

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


# --------------------------------------------------------------------------- RFM and features
def resolve_as_of(orders: DataFrame, as_of: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The analysis date, as :func:`ecrm_research.segmentation.resolve_as_of`: ``as_of``
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
    from .customers import resolve_as_of as _pandas_resolve

    if as_of is not None:
        return _pandas_resolve(pd.DataFrame(), as_of)
    if isinstance(orders, pd.DataFrame):
        return _pandas_resolve(orders, None)
    last = _max_us(orders, "ordered_at")
    if last is None:
        raise AnalysisError("orders is empty: there is nothing to segment.")
    return pd.Timestamp(last * 1000).normalize() + pd.Timedelta(days=1)


def _max_us(df: DataFrame, column: str) -> int | None:
    F = _pyspark()
    v = df.agg(F.max(_us(df, column)).alias("m")).collect()[0]["m"]
    return None if v is None else int(v)


def _require(df: DataFrame, table: str, cols: Iterable[str]) -> None:
    from .customers import _require_columns

    _require_columns(df, table, cols)


def _line_sums(items: DataFrame) -> DataFrame:
    """Per order id: Σ value, Σ negative value, Σ positive units, also over the negative-value
    lines only (a returned order counts those alone). Summed before any join, so Spark's
    map-side partial aggregation shrinks the order lines before they are shuffled."""
    F = _pyspark()
    q, p = F.col("quantity"), F.col("unit_price")
    v = q * p
    neg = _ok(v) & (v < 0)
    units = F.when(_pos(q), q).otherwise(F.lit(0.0))
    return (items.select(F.col("order_id").alias("__lo"), v.alias("__v"), neg.alias("__neg"), units.alias("__u"))
            .groupBy("__lo")
            .agg(F.sum(_num0(F.col("__v"))).alias("__value_all"),
                 F.sum(F.when(F.col("__neg"), F.col("__v")).otherwise(F.lit(0.0))).alias("__value_neg"),
                 F.sum(F.col("__u")).alias("__units_all"),
                 F.sum(F.when(F.col("__neg"), F.col("__u")).otherwise(F.lit(0.0))).alias("__units_neg")))


def _orders_before(orders: DataFrame, as_of: pd.Timestamp, extra: Sequence[str] = ()) -> DataFrame:
    """Completed/returned orders with a customer before ``as_of``, one row per order id
    (``__dup`` = rows sharing the id; the RFM core refuses duplicates)."""
    F = _pyspark()
    st = F.lower(F.col("status").cast("string"))
    t = _us(orders, "ordered_at")
    limit = -(-as_of.value // 1000)  # t_ns < as_of_ns  <=>  t_us < ceil(as_of_ns / 1000)
    sel = orders.select(F.col("order_id"), F.col("customer_id"), t.alias("__t"), st.alias("__st"),
                        *[F.col(c) for c in extra])
    sel = sel.where(F.col("customer_id").isNotNull() & F.col("__st").isin("completed", "returned")
                    & F.col("__t").isNotNull() & (F.col("__t") < F.lit(limit)))
    return (sel.groupBy("order_id")
            .agg(F.count(F.lit(1)).alias("__dup"), F.first("customer_id").alias("customer_id"),
                 F.first("__t").alias("__t"), F.first(F.col("__st") == "completed").alias("__done"),
                 *[F.first(c).alias(c) for c in extra]))


def _feature_columns(orders: DataFrame) -> list[str]:
    return [c for c in ("discount_rate", "channel") if c in orders.columns]


def _customer_rfm(og: DataFrame, items: DataFrame, *, features: bool) -> DataFrame:
    """Per customer (Spark), from the orders of :func:`_orders_before`: completed-order count,
    first/last completed order (µs), net spend, returned value, duplicate-id diagnostics and,
    with ``features``, the feature sums."""
    F = _pyspark()
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
            aggs += [F.sum(F.when(done & _ok(d), d).otherwise(F.lit(0.0))).alias("__disc_sum"),
                     F.sum((done & _ok(d)).cast("bigint")).alias("__disc_n")]
        if "channel" in extra:
            ch = F.col("channel")
            aggs += [F.sum(F.when(done & ch.isNotNull(), (F.lower(ch) == "app").cast("double"))
                           .otherwise(F.lit(0.0))).alias("__app_sum"),
                     F.sum((done & ch.isNotNull()).cast("bigint")).alias("__app_n")]
    return po.groupBy("customer_id").agg(*aggs)


def _collect_rfm(per_customer: DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The per-customer Spark table as pandas; the RFM checks of the pandas path."""
    F = _pyspark()
    pdf = per_customer.select(*[F.coalesce(F.col(c), F.lit(0)).alias(c) if c in ("__first", "__last") else F.col(c)
                                for c in per_customer.columns]).toPandas()
    if len(pdf) and int(pdf["__maxdup"].max()) > 1:
        n = int(pdf["__ndup"].sum())
        first = sorted(pdf.loc[pdf["__maxdup"] > 1, "__dupid"].astype(str))[0]
        raise SchemaError(f"orders: order_id is not unique ({n:,} rows share an id, first: {first!r}); "
                          "RFM needs one row per order. Pass the cleaned tables (spark_prep.clean(...).tables).",
                          source="orders", column="order_id", n_rows=n, example=first)
    pdf = pdf[pdf["frequency"] > 0]
    if pdf.empty:
        raise AnalysisError(f"no completed orders before the as-of date {as_of.date()}: nothing to segment. "
                            "Choose a later as_of or check the order statuses.")
    return _sort_by_id(pdf, "customer_id")


def _rfm_frame(pdf: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The RFM table from the per-customer sums, with the expressions of
    :func:`ecrm_research.segmentation._rfm_from_core`."""
    day0 = as_of.value
    first_c = _us_to_ns(pdf["__first"])
    last_c = _us_to_ns(pdf["__last"])
    rfm = pd.DataFrame({
        "customer_id": np.asarray(pdf["customer_id"].astype(str), dtype=object),
        "recency_days": (day0 - (last_c // _DAY_NS) * _DAY_NS) // _DAY_NS,
        "frequency": pdf["frequency"].to_numpy().astype("int64"),
        "monetary": pdf["monetary"].to_numpy(dtype=float),
        "tenure_days": (day0 - (first_c // _DAY_NS) * _DAY_NS) // _DAY_NS,
        "first_order_at": first_c.view("datetime64[ns]"),
        "last_order_at": last_c.view("datetime64[ns]"),
        "returned_value": pdf["returned_value"].to_numpy(dtype=float),
    })
    rfm["recency_days"] = rfm["recency_days"].astype("int64")
    rfm["tenure_days"] = rfm["tenure_days"].astype("int64")
    rfm.attrs["as_of"] = as_of
    return rfm


def rfm_table(tables: Mapping[str, Any], as_of: str | pd.Timestamp | None = None, *,
              progress: bool = False) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer, computed in Spark.

    Equal to :func:`ecrm_research.segmentation.rfm_table` (same columns, dtypes, row order and
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
    tables = _spark_tables(tables, ("orders", "order_items"), "rfm_table")
    orders, items = tables["orders"], tables["order_items"]
    _require(orders, "orders", ["order_id", "customer_id", "ordered_at", "status"])
    _require(items, "order_items", ["order_id", "quantity", "unit_price"])
    prog = _Progress(_session_of(tables), progress, 2, "spark rfm")
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
    F = _pyspark()
    q = F.col("quantity")
    v = q * F.col("unit_price")
    prod = products.select(F.col("product_id").alias("__pp"), F.col("category").cast("string").alias("__cat"))
    lines = (items.where(_pos(q)).select(F.col("order_id").alias("__lo"), F.col("product_id"), v.alias("__v"))
             .join(prod, F.col("product_id") == F.col("__pp"), "left")
             .select("__lo", F.coalesce(F.col("__cat"), F.lit("unknown")).alias("__cat"), "__v")
             .groupBy("__lo", "__cat")
             .agg(F.sum(_num0(F.col("__v"))).alias("__spend"), F.count(F.lit(1)).alias("__n")))
    done = orders_sel.where(F.col("__done")).select("order_id", "customer_id")
    return lines.join(done, F.col("__lo") == F.col("order_id"), "inner")


def customer_features(tables: Mapping[str, Any], as_of: str | pd.Timestamp | None = None, *,
                      top_categories: int = 5, progress: bool = False) -> pd.DataFrame:
    """Behaviour features per customer, computed in Spark.

    Equal to :func:`ecrm_research.segmentation.customer_features` (same columns, including the
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
        pandas; see :func:`ecrm_research.segmentation.customer_features` for the definitions.
    """
    from .customers import DAYS_PER_MONTH

    F = _pyspark()
    from pyspark import StorageLevel

    tables = _spark_tables(tables, ("orders", "order_items"), "customer_features")
    orders, items = tables["orders"], tables["order_items"]
    _require(orders, "orders", ["order_id", "customer_id", "ordered_at", "status"])
    _require(items, "order_items", ["order_id", "quantity", "unit_price"])
    products = tables.get("products")
    prog = _Progress(_session_of(tables), progress, 3, "spark features")
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

    rfm = _rfm_frame(pdf, as_of)
    feats = rfm[["customer_id", "recency_days", "frequency", "monetary", "tenure_days"]].copy()
    span_days = (rfm["last_order_at"] - rfm["first_order_at"]).dt.total_seconds() / 86400.0
    span_months = np.maximum(span_days, 1.0) / DAYS_PER_MONTH
    feats["orders_per_month"] = ((feats["frequency"] - 1) / span_months).where(feats["frequency"] >= 2)
    feats["mean_order_value"] = feats["monetary"] / feats["frequency"]
    cnt = pdf["frequency"].to_numpy()

    def mean(tot: np.ndarray, n: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, tot / np.maximum(n, 1), np.nan)

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
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(has_line & (spend_all != 0), spend / np.where(spend_all != 0, spend_all, 1.0), np.nan)
            col = "cat_" + re.sub(r"\W+", "_", str(cat).strip().lower()).strip("_")
            feats[col] = np.nan_to_num(share, nan=0.0)
    feats.attrs["as_of"] = as_of
    return feats


# --------------------------------------------------------------------------- churn labels
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


def _numpy_linear_quantile(sorted_slice: np.ndarray, first_rank: int, n: int, q: float) -> float:
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

    Equal to ``activity.suggest_inactivity_days(activity.purchase_gaps(tables), quantile,
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
    F = _pyspark()
    from pyspark import StorageLevel
    from pyspark.sql import Window

    if not 0 <= float(quantile) <= 1:
        raise ParameterError(f"quantile={quantile!r} must be in [0, 1], e.g. 0.9.")
    tables = _spark_tables(tables, ("orders",), "suggest_inactivity_days")
    orders = tables["orders"]
    done = orders.where(F.coalesce(F.col("status") == "completed", F.lit(False))).select(
        F.col("customer_id").cast("string").alias("__c"), _us(orders, "ordered_at").alias("__t"))
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
    days = values * 1000 / (86400.0 * 1e9)  # as activity.purchase_gaps: nanoseconds / day
    q = _numpy_linear_quantile(days, below_n, n, quantile)
    return int(max(round_to, np.ceil(q / round_to) * round_to))


def label_churn(tables: Mapping[str, Any], *, inactivity_days: int = 180, as_of: Any = None,
                covariate_window_days: int | None = None, progress: bool = False):
    """Label churn in Spark: the :class:`~ecrm_research.survival.ChurnData` of
    :func:`ecrm_research.survival.label_churn`, computed without collecting orders.

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
        As :func:`ecrm_research.survival.label_churn` (definitions in its docstring).
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
    from .churn import _accounting_row, _churn_windows

    F = _pyspark()
    from pyspark import StorageLevel
    from pyspark.sql import Window

    W, N = _churn_windows(tables, inactivity_days, covariate_window_days)
    tables = _spark_tables(tables, ("orders",), "label_churn")
    spark = _session_of(tables)
    orders = tables["orders"]
    items, sc, cust = tables.get("order_items"), tables.get("service_contacts"), tables.get("customers")
    attrs = [c for c in ("is_member", "channel", "region", "age_band", "acquisition_source")
             if cust is not None and c in cust.columns]
    prog = _Progress(spark, progress, 2, "spark churn")
    cached: list = []
    try:
        # ---- one small job: end of data, customers in the data, which optional parts exist
        prog.stage("overview")
        t_us = _us(orders, "ordered_at")
        ids = orders.select(F.col("customer_id").cast("string").alias("__id"))
        if cust is not None:
            ids = ids.unionByName(cust.select(F.col("customer_id").cast("string").alias("__id")))
        meta = orders.agg(F.max(t_us).alias("__max_t")).crossJoin(
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
        if as_of is None:
            as_of = pd.Timestamp(int(m["__max_t"]) * 1000)
        else:
            as_of = pd.Timestamp(as_of)
        n_all = int(m["__n_all"])
        has_items = bool(m.get("__has_items"))
        has_sc = bool(m.get("__has_sc"))
        attrs = [c for c in attrs if m[f"__attr_{c}"] > 0]
        acct = [_accounting_row("customers in the data", n_all, "customers table ∪ customers with orders")]

        # ---- the per-customer table
        prog.stage("label")
        lim = as_of.value // 1000  # t_ns <= as_of_ns  <=>  t_us <= floor(as_of_ns / 1000)
        w_us, n_us = W * _DAY_US, N * _DAY_US
        has_late = {"promised_days", "delivery_days"} <= set(orders.columns)
        has_disc = "discount_rate" in orders.columns
        has_chan = "channel" in orders.columns
        base = orders.select(
            F.col("order_id"), F.col("customer_id").cast("string").alias("__c"), t_us.alias("__t"),
            (F.col("status") == "completed").alias("__done"), (F.col("status") == "returned").alias("__ret"),
            *([F.when(_ok(F.col("delivery_days")) & _ok(F.col("promised_days")),
                      (F.col("delivery_days") > F.col("promised_days")).cast("double")).alias("__late")]
              if has_late else []),
            *([F.when(_ok(F.col("discount_rate")), F.col("discount_rate")).alias("__disc")] if has_disc else []),
            *([F.col("channel").cast("string").alias("__ch")] if has_chan else []))
        base = base.where(F.col("__t").isNotNull() & (F.col("__t") <= F.lit(lim)) & F.col("__c").isNotNull())
        done = base.where(F.coalesce(F.col("__done"), F.lit(False)))
        if items is not None and has_items:
            ov = (items.select(F.col("order_id").alias("__io"), (F.col("quantity") * F.col("unit_price")).alias("__v"))
                  .where(_ok(F.col("__v"))).groupBy("__io").agg(F.sum("__v").alias("__ov")))
            done = done.join(ov, F.col("order_id") == F.col("__io"), "left")
        else:
            done = done.withColumn("__ov", F.lit(None).cast("double"))
        by_time = Window.partitionBy("__c").orderBy("__t", "order_id")
        done = (done.withColumn("__f", F.min("__t").over(Window.partitionBy("__c")))
                .withColumn("__next", F.lead("__t").over(by_time)))
        gap = F.col("__next").isNotNull() & ((F.col("__next") - F.col("__t")) > F.lit(w_us))
        end = F.col("__next").isNull() & ((F.col("__t") + F.lit(w_us)) <= F.lit(lim))
        win = F.col("__t") < F.col("__f") + F.lit(n_us)
        first_fields = [F.col("__t"), F.col("order_id")]
        if has_late:
            first_fields.append(F.col("__late"))
        if has_chan:
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
        if has_late:
            lw = win & F.col("__late").isNotNull()
            aggs += [F.sum(F.when(lw, F.col("__late")).otherwise(F.lit(0.0))).alias("__late_sum"),
                     F.sum(lw.cast("bigint")).alias("__late_n")]
        if has_disc:
            dw = win & F.col("__disc").isNotNull()
            aggs += [F.sum(F.when(dw, F.col("__disc")).otherwise(F.lit(0.0))).alias("__disc_sum"),
                     F.sum(dw.cast("bigint")).alias("__disc_n"),
                     F.count("__disc").alias("__disc_any")]
        if has_chan:
            aggs.append(F.count("__ch").alias("__ch_any"))
        # customer-sized, used three times below: computed once
        lab = done.groupBy("__c").agg(*aggs).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(lab)
        first = lab.select(F.col("__c").alias("__k"), F.col("__first").alias("__kf"))
        in_win = (F.col("__when") >= F.col("__kf")) & (F.col("__when") < F.col("__kf") + F.lit(n_us))
        # every completed or returned order in the window, for the return share
        rel = (base.where(F.coalesce(F.col("__done") | F.col("__ret"), F.lit(False)))
               .select("__c", F.col("__t").alias("__when"), F.col("__ret"))
               .join(first, F.col("__c") == F.col("__k")).where(in_win)
               .groupBy(F.col("__k").alias("__rk"))
               .agg(F.count(F.lit(1)).alias("__rel_n"), F.sum(F.col("__ret").cast("bigint")).alias("__rel_ret")))
        lab = lab.join(rel, F.col("__c") == F.col("__rk"), "left")
        if sc is not None and has_sc:
            contacts = (sc.select(F.col("customer_id").cast("string").alias("__sc"),
                                  _us(sc, "contacted_at").alias("__when"))
                        .join(first, F.col("__sc") == F.col("__k")).where(F.col("__when").isNotNull() & in_win)
                        .groupBy(F.col("__k").alias("__ck")).agg(F.count(F.lit(1)).alias("__contacts")))
            lab = lab.join(contacts, F.col("__c") == F.col("__ck"), "left")
        if attrs:
            reg = cust.select(F.col("customer_id").cast("string").alias("__cu"),
                              F.lit(True).alias("__cu_found"),
                              *[F.col(c).alias(f"__attr_{c}") for c in attrs])
            lab = lab.join(reg, F.col("__c") == F.col("__cu"), "left")
        keep = [c for c in lab.columns if c not in ("__rk", "__ck", "__cu", "__first_order")]
        first_cols = [F.col("__first_order")[f].alias("__fo" + f[1:]) for f in ("__late", "__ch")
                      if (f == "__late" and has_late) or (f == "__ch" and has_chan)]
        pdf = lab.select(*keep, *first_cols).toPandas()
    finally:
        for df in cached:
            df.unpersist()
        prog.close()

    if pdf.empty:
        statuses = orders.groupBy(F.col("status").cast("string").alias("s")).count().toPandas()
        counts = dict(sorted(((s, int(n)) for s, n in zip(statuses["s"], statuses["count"]) if s is not None),
                             key=lambda kv: -kv[1]))
        raise AnalysisError(f"No completed orders on or before as_of={as_of.date()}: nothing to label. "
                            f"Order statuses present: {counts}.")
    return _churn_frame(pdf, orders_columns=set(orders.columns), as_of=as_of, W=W, N=N, n_all=n_all, acct=acct,
                        has_items=has_items and items is not None, has_sc=has_sc and sc is not None, attrs=attrs)


def _churn_frame(pdf: pd.DataFrame, *, orders_columns: set, as_of: pd.Timestamp, W: int, N: int, n_all: int,
                 acct: list, has_items: bool, has_sc: bool, attrs: Sequence[str]):
    """The pandas half of :func:`label_churn`: the expressions of
    :func:`ecrm_research.survival.label_churn` applied to the per-customer sums."""
    from .churn import _accounting_row, _finish_labels

    pdf = _sort_by_id(pdf, "__c")
    nc = len(pdf)
    names = np.asarray(pdf["__c"].astype(str), dtype=object)

    def ints(col: str) -> np.ndarray:
        return pdf[col].fillna(0).to_numpy().astype(np.int64)

    first_at = _us_to_ns(pdf["__first"]).view("datetime64[ns]")
    last_at = _us_to_ns(pdf["__last"]).view("datetime64[ns]")
    flagged = ints("__flagged") > 0
    flag_t = _us_to_ns(pdf["__flag_t"]).view("datetime64[ns]")
    lab = pd.DataFrame({"customer_id": names, "first_order_at": first_at, "last_order_at": last_at})
    churn_at = np.where(flagged, flag_t, np.datetime64("NaT")).astype("datetime64[ns]") + np.timedelta64(W, "D")
    lab["event"] = flagged.astype(int)
    lab["churned_at"] = churn_at
    end = np.where(flagged, churn_at, as_of.to_datetime64()).astype("datetime64[ns]")
    lab["duration"] = (end - first_at) / np.timedelta64(1, "D")
    lab["returned_after_churn"] = (ints("__returned") > 0).astype(bool)
    lab["n_orders_total"] = ints("__n_total").astype(float)
    n_labelled = len(lab)
    acct.append(_accounting_row("customers with a completed order on or before as_of", n_labelled,
                                f"{n_all - n_labelled:,} customers without one are never at risk"))

    cov = pd.DataFrame(index=pd.Index(names, name="customer_id"))

    def mean(tot: np.ndarray, cnt: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)

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
    if "channel" not in cov.columns and "channel" in orders_columns and int(pdf["__ch_any"].sum()) > 0:
        ch = pd.Series(pdf["__fo_ch"].to_numpy(dtype=object))
        cov["channel"] = ch.where(ch.notna(), np.nan).to_numpy()

    return _finish_labels(lab, cov, spend_total, acct, as_of=as_of, W=W, N=N)
