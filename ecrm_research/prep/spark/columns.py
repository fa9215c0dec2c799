"""Spark column expressions both the reading and the preparation steps use: times as microseconds,
whitespace stripping, pandas' notion of a usable number, and sorting ids as the pandas engine does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...exceptions import SchemaError
from .session import sql_functions

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import Column, DataFrame


DAY_NS = 86_400 * 10**9


DAY_US = 86_400 * 10**6


#: the epoch as a time-zone-free timestamp literal (a Python datetime literal would be converted
#: through the local time zone)
_EPOCH_SQL = "TIMESTAMP_NTZ'1970-01-01 00:00:00'"


#: the characters Python's ``str.strip()`` removes (``str.isspace``); Spark's ``trim`` only
#: removes spaces
_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
               "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


SPARK_TYPES = {"id": "string", "text": "string", "category": "string", "datetime": "timestamp_ntz",
                "float": "double", "int": "bigint", "bool": "boolean"}


def quoted(name: str) -> str:
    """A column name Spark takes literally (dots and spaces in survey item names)."""
    return "`" + str(name).replace("`", "``") + "`"


def _epoch() -> Column:
    F = sql_functions()
    return F.expr(_EPOCH_SQL)


def micros(df: DataFrame, name: str) -> Column:
    """Microseconds since 1970-01-01 (wall clock, no time zone) of a timestamp column, as bigint.

    ``timestamp_ntz`` (what :func:`read_tables` makes) is differenced from the epoch without a
    time zone; a ``timestamp`` (an instant) gives its UTC wall clock, as pandas'
    ``tz_convert(None)``; a number is taken as nanoseconds (Parquet ``TIMESTAMP(NANOS)`` read by
    Spark, and what pandas' ``to_datetime`` makes of integers).
    """
    F = sql_functions()
    return micros_of(F.col(name), df.schema[name].dataType, name)


def micros_of(c: Column, dt: Any, name: str) -> Column:
    F = sql_functions()
    from pyspark.sql import types as T  # why: pyspark is optional (see session.sql_functions)

    if isinstance(dt, T.TimestampNTZType):
        return F.timestamp_diff("MICROSECOND", _epoch(), c)
    if isinstance(dt, T.TimestampType):
        return F.unix_micros(c)
    if isinstance(dt, T.DateType):
        return F.timestamp_diff("MICROSECOND", _epoch(), c.cast("timestamp_ntz"))
    if isinstance(dt, T.NumericType):
        return _ns_to_us(c.try_cast("bigint"))
    raise SchemaError(f"column '{name}' has Spark type {dt.simpleString()}, not a timestamp. Read the tables with "
                      "ecrm_research.prep.spark.read_tables (it casts the canonical columns).", column=name)


def _ns_to_us(ns: Column) -> Column:
    F = sql_functions()
    return F.call_function("div", ns - F.pmod(ns, F.lit(1000)), F.lit(1000))


def ntz_from_micros(us: Column) -> Column:
    F = sql_functions()
    return F.timestamp_add("MICROSECOND", us, _epoch())


def strip_whitespace(c: Column) -> Column:
    """``str.strip()`` in Spark: whitespace removed at both ends. ``btrim`` runs only on values
    whose first or last character is whitespace (ids rarely need it)."""
    F = sql_functions()
    ws = F.lit(_WHITESPACE)
    edge = (F.instr(ws, F.substring(c, 1, 1)) > 0) | (F.instr(ws, F.substring(c, -1, 1)) > 0)
    return F.when(edge, F.btrim(c, ws)).otherwise(c)


def usable(c: Column) -> Column:
    """A usable double: not null and not NaN (pandas treats both as missing)."""
    F = sql_functions()
    return c.isNotNull() & ~F.isnan(c)


def positive(c: Column) -> Column:
    """``c > 0`` as pandas means it: Spark orders NaN above every number, pandas says False."""
    return usable(c) & (c > 0)


def zero_if_missing(c: Column) -> Column:
    """Missing/NaN → 0.0 (``numpy.bincount`` weights after ``_nan0``)."""
    F = sql_functions()
    return F.when(usable(c), c).otherwise(F.lit(0.0))


def status_text(c: Column) -> Column:
    """An order status as :mod:`~ecrm_research.prep.rules` compares it: text, lower case."""
    F = sql_functions()
    return F.lower(c.cast("string"))


def sort_by_id(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    """Rows sorted by the text of ``col`` in code-point order (pyarrow's stable sort, as the
    pandas path sorts customer ids)."""
    if len(frame) < 2:
        return frame.reset_index(drop=True)
    order = pc.sort_indices(pa.array(frame[col].astype(object).to_numpy(), type=pa.string())).to_numpy()
    return frame.iloc[order].reset_index(drop=True)


def micros_to_ns(values: pd.Series | np.ndarray) -> np.ndarray:
    """Microseconds (as collected from Spark) as int64 nanoseconds."""
    return np.asarray(values, dtype=np.int64) * 1000
