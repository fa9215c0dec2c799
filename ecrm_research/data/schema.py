"""The canonical e-commerce data model: the one place that knows table and column names.

Six tables (``service_contacts`` optional)::

    customers(customer_id*) 1──n orders(order_id*, customer_id→) 1──n order_items(order_id→, line_no*)
    products(product_id*) 1──n order_items(product_id→)
    customers 1──n service_contacts(contact_id*, customer_id→)
    customers 1──n survey_responses(respondent_id*, customer_id→ nullable, <item columns>)

``*`` marks the key, ``→`` a foreign key. Validation has two layers:

* :func:`coerce_table` casts a raw frame to the canonical dtypes and fails with a
  :class:`~ecrm_research.exceptions.SchemaError` that names the file, column, number of bad
  rows and the first bad value (never a pandas traceback);
* :func:`validate_table` / :func:`validate_tables` check value constraints and unique keys
  with pandera. Orphan foreign keys are *data-quality* findings, not errors: they are counted
  and quarantined by :mod:`ecrm_research.data.quality`.

Examples
--------
>>> import pandas as pd
>>> from ecrm_research.data import schema
>>> orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["c1"],
...                        "ordered_at": ["2024-01-02"], "status": ["completed"]})
>>> schema.coerce_table(orders, "orders").dtypes["ordered_at"]
dtype('<M8[ns]')
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from ..exceptions import SchemaError
from .keys import arrow_strings, duplicated, key_isin

ORDER_STATUSES = ("completed", "cancelled", "returned")
CHANNELS = ("app", "web")

ID = pd.StringDtype("pyarrow")  # compact ids; fast to hash, read straight from Parquet
TEXT = pd.StringDtype("pyarrow")


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column.

    kind : 'id' | 'text' | 'datetime' | 'float' | 'int' | 'bool' | 'category'
    """

    name: str
    kind: str
    required: bool = False
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (table, column)
    optional: bool = False
    #: extra (non-canonical) columns are allowed and must be numeric (survey items)
    extra_numeric: bool = False
    doc: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


C = ColumnSpec
TABLES: dict[str, TableSpec] = {
    "customers": TableSpec(
        "customers",
        (
            C("customer_id", "id", required=True, nullable=False, doc="customer key"),
            C("registered_at", "datetime", doc="registration timestamp"),
            C("channel", "category", allowed=CHANNELS, doc="registration channel"),
            C("region", "text"),
            C("age_band", "text", doc="e.g. '25-34'"),
            C("acquisition_source", "text", doc="e.g. search, social, referral"),
            C("is_member", "bool", doc="paid/loyalty membership"),
        ),
        key=("customer_id",),
        doc="One row per customer with registration attributes.",
    ),
    "products": TableSpec(
        "products",
        (
            C("product_id", "id", required=True, nullable=False),
            C("product_name", "text"),
            C("category", "text"),
            C("list_price", "float", min_value=0),
        ),
        key=("product_id",),
        doc="Product catalogue.",
    ),
    "orders": TableSpec(
        "orders",
        (
            C("order_id", "id", required=True, nullable=False),
            C("customer_id", "id", required=True, doc="missing ids are quarantined by quality.clean"),
            C("ordered_at", "datetime", required=True, nullable=False),
            C("status", "category", required=True, nullable=False, allowed=ORDER_STATUSES),
            C("promised_days", "float", min_value=0, doc="promised delivery time, days"),
            C("delivery_days", "float", min_value=0, doc="actual delivery time, days"),
            C("discount_rate", "float", min_value=0, max_value=1, doc="share of list value discounted"),
            C("channel", "category", allowed=CHANNELS),
        ),
        key=("order_id",),
        foreign_keys={"customer_id": ("customers", "customer_id")},
        doc="One row per order (invoice).",
    ),
    "order_items": TableSpec(
        "order_items",
        (
            C("order_id", "id", required=True, nullable=False),
            C("line_no", "int", required=True, nullable=False, min_value=0),
            C("product_id", "id", required=True, nullable=False),
            C("quantity", "float", required=True, nullable=False, doc="negative = returned units"),
            C("unit_price", "float", required=True, nullable=False),
            C("source_row", "int", doc="row number in the user's flat file (lines format)"),
        ),
        key=("order_id", "line_no"),
        foreign_keys={"order_id": ("orders", "order_id"), "product_id": ("products", "product_id")},
        doc="One row per order line.",
    ),
    "survey_responses": TableSpec(
        "survey_responses",
        (
            C("respondent_id", "id", required=True, nullable=False),
            C("customer_id", "id", doc="links stated loyalty to behaviour when known"),
            C("answered_at", "datetime"),
        ),
        key=("respondent_id",),
        foreign_keys={"customer_id": ("customers", "customer_id")},
        optional=True,
        extra_numeric=True,
        doc="Wide survey: one row per respondent, one numeric column per item (e.g. Likert 1-7).",
    ),
    "service_contacts": TableSpec(
        "service_contacts",
        (
            C("contact_id", "id", required=True, nullable=False),
            C("customer_id", "id", required=True, nullable=False),
            C("contacted_at", "datetime", required=True, nullable=False),
            C("reason", "text"),
            C("resolved", "bool"),
        ),
        key=("contact_id",),
        foreign_keys={"customer_id": ("customers", "customer_id")},
        optional=True,
        doc="After-sales service contacts.",
    ),
}
del C

REQUIRED_TABLES = tuple(n for n, t in TABLES.items() if not t.optional)


def _example(series: pd.Series, bad: pd.Series) -> tuple[int, Any]:
    idx = bad[bad].index[0]
    pos = series.index.get_loc(idx)
    return int(pos) if isinstance(pos, (int, np.integer)) else 0, series.loc[idx]


def _fail_values(table: str, source: str | None, col: str, series: pd.Series, bad: pd.Series,
                 what: str, hint: str) -> SchemaError:
    n = int(bad.sum())
    row, value = _example(series, bad)
    where = source or table
    return SchemaError(
        f"{where}: column '{col}' has {n:,} value(s) that are not {what} "
        f"(first: row {row + 1} = {value!r}). {hint}",
        source=where, column=col, n_rows=n, example=value,
    )


def _as_bool(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    truthy = {"1", "true", "yes", "y", "t"}
    falsy = {"0", "false", "no", "n", "f"}
    s = series.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[s.isin(truthy).fillna(False).astype(bool)] = True
    out[s.isin(falsy).fillna(False).astype(bool)] = False
    return out


def _present(series: pd.Series) -> pd.Series:
    """True where a value is given: not missing and, for text, not blank."""
    present = series.notna()
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        blank = series.astype(TEXT).str.strip() == ""
        present &= ~blank.fillna(False).astype(bool)
    return present


def _arrow_text_fast(series: pd.Series, kind: str) -> pd.Series | None:
    """Fast path for text already held as ``string[pyarrow]``: one pyarrow trim pass, no copy
    when nothing needs trimming and nothing is blank (the usual case for Parquet). ``None`` =
    not applicable (the caller takes the general path)."""
    arr = arrow_strings(series)
    if arr is None or not isinstance(series.dtype, pd.StringDtype):
        return None
    if arr.num_chunks == 0:
        return None
    trimmed = pc.utf8_trim_whitespace(arr)
    blank = pc.equal(pc.utf8_length(trimmed), 0)
    any_blank = bool(pc.any(blank).as_py() or False)
    if kind == "id":
        changed = not bool(pc.all(pc.fill_null(pc.equal(trimmed, arr), True)).as_py())
        out = trimmed if changed else arr
    else:  # text keeps its spaces; only blanks become missing
        out = arr
    if any_blank:
        out = pc.if_else(blank, pyarrow.scalar(None, type=out.type), out)
    elif out is arr:
        return series.astype(ID) if series.dtype != ID else series
    chunked = out if isinstance(out, pyarrow.ChunkedArray) else pyarrow.chunked_array([out])
    return pd.Series(pd.arrays.ArrowStringArray(chunked), index=series.index, name=series.name)


def _category_fast(series: pd.Series, spec: ColumnSpec, table: str, source: str | None) -> pd.Series:
    """A categorical input is cleaned on its (few) categories, not row by row."""
    cats = pd.Series(series.cat.categories.astype(object)).astype(TEXT).str.strip().str.lower()
    cats = cats.mask(cats == "")
    codes = series.cat.codes.to_numpy()
    ok_cat = cats.isna() | cats.isin(spec.allowed).fillna(False)
    if not bool(ok_cat.all()):
        bad_cat = np.flatnonzero(~ok_cat.to_numpy(bool))
        bad = pd.Series(np.isin(codes, bad_cat), index=series.index)
        raise _fail_values(table, source, spec.name, series, bad, f"one of {list(spec.allowed)}",
                           "Map the values in the column-mapping file (value_maps) or fix the rows.")
    allowed = list(spec.allowed)
    lut = np.array([allowed.index(c) if isinstance(c, str) else -1 for c in cats.astype(object)] + [-1],
                   dtype=codes.dtype if codes.dtype.itemsize >= 2 else np.int16)
    new = lut[codes]  # code -1 (missing) reads the last slot, -1
    return pd.Series(pd.Categorical.from_codes(new, categories=allowed), index=series.index, name=series.name)


def coerce_column(series: pd.Series, spec: ColumnSpec, *, table: str, source: str | None = None,
                  date_format: str | None = None, dayfirst: bool | None = None,
                  notes: list[str] | None = None) -> pd.Series:
    """Cast one column to its canonical dtype, failing clearly on unparsable values.

    Columns already in their canonical dtype (Parquet written by this package, or by
    :mod:`ecrm_research.data.sample`) take fast paths that give the same result without
    re-cleaning every value: Arrow text is trimmed by one pyarrow pass (and not copied when
    nothing changes), categoricals are cleaned on their categories, numbers and timestamps
    are only cast.

    ``dayfirst=None`` (the default) means "not stated": text dates like ``03/04/2024`` are then
    read as the values decide, the decision is appended to `notes`, and an undecidable column is
    a :class:`SchemaError` (:func:`day_month_order`).
    """
    kind = spec.kind
    if kind in ("id", "text"):
        fast = _arrow_text_fast(series, kind)
        if fast is not None:
            return fast
    if kind == "category" and spec.allowed and isinstance(series.dtype, pd.CategoricalDtype):
        return _category_fast(series, spec, table, source)
    if kind in ("datetime", "float", "int") and (
            pd.api.types.is_datetime64_any_dtype(series)
            or (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))):
        notna = series.notna()  # nothing blank in a typed column
    else:
        notna = _present(series)
    if kind in ("id", "text"):
        return _coerce_text(series, kind, notna)
    if kind == "datetime":
        return _coerce_datetime(series, spec, notna, table=table, source=source, date_format=date_format,
                                dayfirst=dayfirst, notes=notes)
    if kind in ("float", "int"):
        return _coerce_number(series, spec, notna, table=table, source=source)
    if kind == "bool":
        out = _as_bool(series)
        bad = notna & out.isna()
        if bad.any():
            raise _fail_values(table, source, spec.name, series, bad, "yes/no values",
                               "Use 1/0, true/false or yes/no.")
        return out
    if kind == "category":
        return _coerce_category(series, spec, notna, table=table, source=source)
    raise ValueError(f"unknown column kind {kind!r}")


def _coerce_text(series: pd.Series, kind: str, notna: pd.Series) -> pd.Series:
    """Ids (trimmed) and text as ``string[pyarrow]``; blanks become missing."""
    if pd.api.types.is_float_dtype(series):
        # ids read as floats (e.g. 17850.0 because of missing values) -> '17850'
        as_int = series.dropna()
        if (as_int == np.floor(as_int)).all():
            series = series.astype("Int64")
    # pyarrow strings: strip/mask are vectorised (python strings cost seconds on 500k rows)
    out = series.astype(TEXT)
    out = out.str.strip() if kind == "id" else out
    out = out.mask(~notna)
    return out.astype(ID if kind == "id" else TEXT)


#: a date written day and month first in either order: ``3/4/2024``, ``03.04.24``, ``3-4-2024 10:00``
_DAY_MONTH = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})(?!\d)"


def day_month_order(series: pd.Series, notna: pd.Series | None = None, *, column: str, where: str,
                    notes: list[str] | None = None) -> bool | None:
    """Decide from the values whether text dates such as ``03/04/2024`` are day or month first.

    Parameters
    ----------
    series : Series
        Text dates (other values, e.g. ISO dates, are ignored).
    notna : Series of bool, optional
        Which values are given (default: ``series.notna()``).
    column, where : str
        Column and file named in the message.
    notes : list of str, optional
        When the values decide, the decision and its evidence are appended here (shown in the
        quality report and printed by ``ecrm validate``).

    Returns
    -------
    bool or None
        True: day first (some first field is above 12); False: month first (some second field
        is above 12); None: no such dates, or both readings give the same dates.

    Raises
    ------
    SchemaError
        Every value has both fields ≤ 12 and the two readings differ (e.g. a dd/mm file of
        January to July with days ≤ 12 reads as mm/dd without complaint): the reading would be a
        guess, so the message shows both and asks for ``date_format``.

    Examples
    --------
    >>> day_month_order(pd.Series(["13/01/2024", "02/03/2024"]), column="d", where="f.csv")
    True
    """
    values = series[notna if notna is not None else series.notna()]
    uniq = pd.Series(pd.unique(values.astype(TEXT).to_numpy(dtype=object, na_value=None)), dtype=TEXT)
    parts = uniq.str.extract(_DAY_MONTH).dropna()
    if parts.empty:
        return None
    first, second = parts[0].astype(int), parts[1].astype(int)
    day_first, month_first = first > 12, second > 12
    if day_first.any() and month_first.any():
        return None  # mixed: the values that fit neither reading are reported as "not dates"
    for decided, evidence, reading in ((True, day_first, "day/month/year"), (False, month_first, "month/day/year")):
        if evidence.any():
            example = uniq[evidence[evidence].index[0]]
            if notes is not None:
                notes.append(f"{where}: column '{column}' read as {reading}, decided by the values: "
                             f"{int(evidence.sum()):,} distinct date(s) have a "
                             f"{'first' if decided else 'second'} field above 12 (e.g. {example!r}). "
                             "Pass date_format to state it.")
            return decided
    differ = first != second
    if not differ.any():
        return None  # 01/01, 02/02, ...: both readings give the same dates
    example = uniq[differ[differ].index[0]]
    a, b, y = int(first[differ].iloc[0]), int(second[differ].iloc[0]), parts[2][differ].iloc[0]
    raise SchemaError(
        f"{where}: column '{column}' has dates whose day and month cannot be told apart: every one of "
        f"{len(parts):,} distinct date(s) has both fields ≤ 12 (e.g. {example!r} is {b} {_MONTHS[a - 1]} "
        f"{y} read as day/month, or {a} {_MONTHS[b - 1]} {y} read as month/day). Say which: "
        "date_format: '%d/%m/%Y' (or '%m/%d/%Y', with the time part if any, e.g. '%d/%m/%Y %H:%M') in "
        "the mapping's read: section, or `-p date_format '%d/%m/%Y'` / date_format=... as an option.",
        source=where, column=column, n_rows=len(parts), example=example)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _coerce_datetime(series: pd.Series, spec: ColumnSpec, notna: pd.Series, *, table: str, source: str | None,
                     date_format: str | None, dayfirst: bool | None, notes: list[str] | None = None) -> pd.Series:
    """Timestamps as naive ``datetime64[ns]``; text that is not a date fails with a hint on `date_format`.

    Text dates such as ``03/04/2024`` without `date_format` or `dayfirst` are read the way the
    values decide (:func:`day_month_order`), and are an error when they cannot."""
    if pd.api.types.is_datetime64_any_dtype(series):
        out = series
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert(None)
        return out.astype("datetime64[ns]")
    if date_format is None and dayfirst is None:
        dayfirst = day_month_order(series, notna, column=spec.name, where=source or table, notes=notes)
    with warnings.catch_warnings():
        # without a format pandas warns "Could not infer format" and parses element-wise;
        # the result is what we want and unparsable values are reported below
        warnings.simplefilter("ignore", UserWarning)
        out = pd.to_datetime(series, format=date_format, dayfirst=bool(dayfirst), errors="coerce")
    bad = notna & out.isna()
    if bad.any():
        hint = (f"Pass date_format (it was {date_format!r})" if date_format
                else "Pass date_format, e.g. '%d/%m/%Y' or '%Y-%m-%d %H:%M'")
        raise _fail_values(table, source, spec.name, series, bad, "dates", hint + " or fix the rows.")
    return out.astype("datetime64[ns]")


def _coerce_number(series: pd.Series, spec: ColumnSpec, notna: pd.Series, *, table: str,
                   source: str | None) -> pd.Series:
    """Floats as ``float64``; ints as ``int64`` (``Int64`` when some are missing), whole numbers only."""
    kind = spec.kind
    if kind == "int" and isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu" \
            and series.dtype.itemsize <= 8 - (series.dtype.kind == "u"):
        return series.astype("int64", copy=False)  # whole numbers already, nothing missing
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        out = series.astype("float64", copy=False)  # the table is built from copies anyway
    else:
        out = pd.to_numeric(series.astype("string").str.strip(), errors="coerce")
        bad = notna & out.isna()
        if bad.any():
            raise _fail_values(table, source, spec.name, series, bad, "numbers",
                               "If the file uses a decimal comma pass decimal=','; otherwise fix the rows.")
        out = out.astype("float64")
    if kind == "int":
        frac = out.notna() & (out != np.floor(out.fillna(0)))
        if frac.any():
            raise _fail_values(table, source, spec.name, series, frac, "whole numbers", "Fix the rows.")
        return out.astype("Int64") if out.isna().any() else out.astype("int64")
    return out


def _coerce_category(series: pd.Series, spec: ColumnSpec, notna: pd.Series, *, table: str,
                     source: str | None) -> pd.Series:
    """Categories trimmed and lower-cased; with ``spec.allowed``, other values fail."""
    out = series.astype(TEXT).str.strip().str.lower().mask(~notna)
    if spec.allowed:
        bad = out.notna() & ~out.isin(spec.allowed).fillna(False)
        if bad.any():
            raise _fail_values(table, source, spec.name, series, bad,
                               f"one of {list(spec.allowed)}",
                               "Map the values in the column-mapping file (value_maps) or fix the rows.")
        return pd.Series(pd.Categorical(out, categories=list(spec.allowed)), index=series.index)
    return out.astype("category")


def _absent_column(spec: ColumnSpec, index: pd.Index, table: str, source: str | None) -> pd.Series:
    """An absent optional column: all missing, in the canonical dtype, built without parsing
    (the text path took seconds on 10 million missing cells)."""
    n = len(index)
    kind = spec.kind
    if kind in ("id", "text"):
        values: Any = pd.arrays.ArrowStringArray(pyarrow.chunked_array([pyarrow.nulls(n, pyarrow.string())]))
    elif kind == "datetime":
        values = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    elif kind == "float":
        values = np.full(n, np.nan)
    elif kind == "int":
        values = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)) if n \
            else np.zeros(0, dtype=np.int64)
    elif kind == "bool":
        values = pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
    elif kind == "category" and spec.allowed:
        values = pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=list(spec.allowed))
    else:
        return coerce_column(pd.Series(pd.NA, index=index, dtype=object), spec, table=table, source=source)
    return pd.Series(values, index=index, name=spec.name)


def require_columns(columns: Iterable[Any], table: str, where: str, *, hint: str,
                    required: Iterable[str] | None = None) -> None:
    """Raise :class:`SchemaError` naming the required columns of `table` that `columns` lacks,
    the columns present and `hint` (what the user should do; ``{missing}`` in it is filled in).
    `required` narrows the check to the columns a step needs (default: the table's required ones)."""
    columns = list(columns)
    missing = [c for c in (TABLES[table].required if required is None else required) if c not in columns]
    if missing:
        present = ", ".join(map(str, columns[:30]))
        raise SchemaError(f"{where}: required column(s) {missing} missing for table '{table}'. "
                          f"Columns present: [{present}]. {hint.format(missing=missing)}",
                          source=where, column=missing[0])


def coerce_table(df: pd.DataFrame, table: str, *, source: str | None = None,
                 date_format: str | None = None, dayfirst: bool | None = None,
                 notes: list[str] | None = None) -> pd.DataFrame:
    """Return ``df`` with canonical column order and dtypes.

    Parameters
    ----------
    df : DataFrame
        Raw table whose columns already carry canonical names (see :mod:`ecrm_research.data.io`
        for renaming through a column-mapping file).
    table : str
        One of :data:`TABLES`.
    source : str, optional
        File name to quote in error messages.
    date_format, dayfirst :
        Passed to :func:`pandas.to_datetime` for text date columns. ``dayfirst=None``: not
        stated, decided from the values or an error (see :func:`day_month_order`).
    notes : list of str, optional
        Collects the day/month decisions taken from the values.

    Returns
    -------
    DataFrame
        Canonical columns first (absent optional ones are added as missing), then any extra
        columns (kept as they are; survey item columns are cast to float).

    Raises
    ------
    SchemaError
        Missing required column, empty table, unparsable value.
    """
    spec = TABLES[table]
    where = source or table
    if df.shape[1] == 0 or len(df) == 0:
        raise SchemaError(f"{where}: the table is empty (no rows). A '{table}' table needs at least one row "
                          f"with columns {spec.required}.", source=where, n_rows=0)
    require_columns(df.columns, table, where,
                    hint="Rename them or pass a column-mapping file (--mapping) that maps your names to {missing}.")
    out = {}
    for c in spec.columns:
        if c.name in df.columns:
            out[c.name] = coerce_column(df[c.name], c, table=table, source=source,
                                        date_format=date_format, dayfirst=dayfirst, notes=notes)
        else:
            out[c.name] = _absent_column(c, df.index, table, source)
    frame = pd.DataFrame(out, index=df.index)
    extras = [c for c in df.columns if c not in spec.names]
    for c in extras:
        if spec.extra_numeric:
            frame[c] = coerce_column(df[c], ColumnSpec(str(c), "float"), table=table, source=source)
        else:
            frame[c] = df[c]
    frame.index = pd.RangeIndex(len(frame))  # the frame is new: no need to copy it again
    return frame


def _pandera_schema(spec: TableSpec) -> pa.DataFrameSchema:
    cols = {}
    for c in spec.columns:
        checks = []
        if c.min_value is not None:
            checks.append(pa.Check.ge(c.min_value))
        if c.max_value is not None:
            checks.append(pa.Check.le(c.max_value))
        if c.allowed is not None:
            checks.append(pa.Check.isin(list(c.allowed)))
        cols[c.name] = pa.Column(nullable=c.nullable, checks=checks, required=c.required)
    return pa.DataFrameSchema(cols, strict=False, name=spec.name)


def validate_table(df: pd.DataFrame, table: str, *, source: str | None = None) -> pd.DataFrame:
    """Check value constraints (pandera) and key uniqueness of a coerced table.

    Raises
    ------
    SchemaError
        With the failing column, the number of failing rows and the first failing value.
    """
    spec = TABLES[table]
    where = source or table
    try:
        # inplace: nothing is coerced, so pandera's defensive deep copy of the table (GBs at 10^7
        # rows, left for the cyclic collector) is not needed
        _pandera_schema(spec).validate(df, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        first = fc.iloc[0]
        col = first.get("column")
        n = int((fc["column"] == col).sum())
        check = first.get("check")
        raise SchemaError(
            f"{where}: column '{col}' fails check {check} in {n:,} row(s) (first: row "
            f"{int(first['index']) + 1 if pd.notna(first.get('index')) else '?'} = {first['failure_case']!r}). "
            "Fix the rows or the column mapping.",
            source=where, column=str(col), n_rows=n, example=first["failure_case"]) from None
    finally:
        vars(df).pop("pandera", None)  # pandera's cached accessor refers back to df: a reference cycle
    dup = pd.Series(duplicated(df, list(spec.key), keep=False), index=df.index)
    if dup.any():
        first = df.loc[dup, list(spec.key)].iloc[0].tolist()
        n = int(dup.sum())
        raise SchemaError(
            f"{where}: key {list(spec.key)} is not unique: {n:,} rows share a key (first: {first}). "
            "Each row of this table must have its own key; remove the duplicates or choose another key.",
            source=where, column=spec.key[0], n_rows=n, example=first)
    return df


def validate_tables(tables: dict[str, pd.DataFrame], *,
                    sources: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Validate every present table; required tables must all be there."""
    sources = sources or {}
    absent = [t for t in REQUIRED_TABLES if t not in tables]
    if absent:
        raise SchemaError(f"canonical data: table(s) {absent} missing; have {sorted(tables)}. "
                          f"A canonical folder holds {list(REQUIRED_TABLES)} as .parquet/.csv/.xlsx files.",
                          source=None)
    for name, df in tables.items():
        if name in TABLES:
            validate_table(df, name, source=sources.get(name))
    return tables


def orphan_mask(tables: dict[str, pd.DataFrame], table: str, column: str) -> pd.Series:
    """Boolean mask of rows of ``table`` whose non-null ``column`` has no parent row."""
    parent_table, parent_col = TABLES[table].foreign_keys[column]
    child = tables[table][column]
    if parent_table not in tables:
        return pd.Series(False, index=child.index)
    found = key_isin(child, tables[parent_table][parent_col])
    return pd.Series(np.asarray(child.notna(), dtype=bool) & ~found, index=child.index)


def describe() -> pd.DataFrame:
    """The data model as a table (for the README and notebooks)."""
    rows = []
    for t in TABLES.values():
        for c in t.columns:
            rows.append({"table": t.name, "column": c.name, "kind": c.kind, "required": c.required,
                         "key": c.name in t.key, "references": ".".join(t.foreign_keys.get(c.name, ())),
                         "allowed": ", ".join(c.allowed) if c.allowed else "", "doc": c.doc})
    return pd.DataFrame(rows)


def table_names(include_optional: bool = True) -> Iterable[str]:
    return [n for n, t in TABLES.items() if include_optional or not t.optional]
