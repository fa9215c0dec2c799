"""Reading a folder of canonical tables into Spark (:func:`read_tables`) and converting pandas tables
(:func:`from_pandas`, :func:`as_spark_tables`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ...data import schema
from ...data.io import sniff_sep
from ...exceptions import DataError, FormatError, ParameterError, SchemaError
from ...paths import SAMPLE_DIR
from .columns import ntz_from_micros
from .session import session_of, spark_session, sql_functions
from .validation import canonical_tables, require_canonical_columns

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import DataFrame, SparkSession


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
    sql_functions()
    spark = spark or spark_session(spark_master, spark_conf)
    if path is None:
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
                    this_sep = sniff_sep(Path(full), encoding, ".csv", decimal)
            raw = spark.read.csv(full, header=True, sep=this_sep, encoding=encoding, inferSchema=False)
        require_canonical_columns(raw, table, full)
        raws[table] = (raw, full, fmt == "csv")
    tables = canonical_tables(raws, date_format=date_format, decimal=decimal, validate=validate)
    return tables


def _arrow_table(df: pd.DataFrame):
    """A pandas table as Arrow with Spark-friendly types: timestamps as int64 microseconds
    (converted to ``timestamp_ntz`` in Spark, free of time zones), categories as text."""
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
    F = sql_functions()
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
            sdf = sdf.select(*[ntz_from_micros(F.col(c)).alias(c) if c in times else F.col(c) for c in sdf.columns])
        out[name] = sdf
    return out


def as_spark_tables(tables: Mapping[str, Any], needed: Sequence[str], analysis: str) -> dict[str, DataFrame]:
    """Spark tables from a mapping of Spark or pandas DataFrames (pandas ones are converted)."""
    if not isinstance(tables, Mapping):
        raise ParameterError(f"{analysis}: tables must be a dict of table name -> DataFrame (e.g. prep.spark."
                             f"read_tables(path) or prep.spark.clean(...).tables); got {type(tables).__name__}.")
    missing = [t for t in needed if t not in tables]
    if missing:
        raise SchemaError(f"{analysis}: table(s) {missing} missing; have {sorted(tables)}. Read a canonical folder "
                          "with ecrm_research.prep.spark.read_tables.", source=missing[0], column=missing[0])
    pandas_part = {k: v for k, v in tables.items() if isinstance(v, pd.DataFrame)}
    out = dict(tables)
    if pandas_part:
        spark = session_of({k: v for k, v in tables.items() if k not in pandas_part})
        out.update(from_pandas(pandas_part, spark))
    return {k: out[k] for k in tables}
