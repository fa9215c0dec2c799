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
>>> from ecrm_research import schema
>>> orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["c1"],
...                        "ordered_at": ["2024-01-02"], "status": ["completed"]})
>>> schema.coerce_table(orders, "orders").dtypes["ordered_at"]
dtype('<M8[ns]')
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..exceptions import SchemaError

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
    import pyarrow as pa
    import pyarrow.compute as pc

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
        out = pc.if_else(blank, pa.scalar(None, type=out.type), out)
    elif out is arr:
        return series.astype(ID) if series.dtype != ID else series
    return pd.Series(pd.arrays.ArrowStringArray(out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])),
                     index=series.index, name=series.name)


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
                  date_format: str | None = None, dayfirst: bool = False) -> pd.Series:
    """Cast one column to its canonical dtype, failing clearly on unparsable values.

    Columns already in their canonical dtype (Parquet written by this package, or by
    :mod:`ecrm_research.data.sample`) take fast paths that give the same result without
    re-cleaning every value: Arrow text is trimmed by one pyarrow pass (and not copied when
    nothing changes), categoricals are cleaned on their categories, numbers and timestamps
    are only cast.
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
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series):
            out = series
            if getattr(out.dt, "tz", None) is not None:
                out = out.dt.tz_convert(None)
            return out.astype("datetime64[ns]")
        with warnings.catch_warnings():
            # without a format pandas warns "Could not infer format" and parses element-wise;
            # the result is what we want and unparsable values are reported below
            warnings.simplefilter("ignore", UserWarning)
            out = pd.to_datetime(series, format=date_format, dayfirst=dayfirst, errors="coerce")
        bad = notna & out.isna()
        if bad.any():
            hint = (f"Pass date_format (it was {date_format!r})" if date_format
                    else "Pass date_format, e.g. '%d/%m/%Y' or '%Y-%m-%d %H:%M'")
            raise _fail_values(table, source, spec.name, series, bad, "dates", hint + " or fix the rows.")
        return out.astype("datetime64[ns]")
    if kind in ("float", "int"):
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
    if kind == "bool":
        out = _as_bool(series)
        bad = notna & out.isna()
        if bad.any():
            raise _fail_values(table, source, spec.name, series, bad, "yes/no values",
                               "Use 1/0, true/false or yes/no.")
        return out
    if kind == "category":
        out = series.astype(TEXT).str.strip().str.lower().mask(~notna)
        if spec.allowed:
            bad = out.notna() & ~out.isin(spec.allowed).fillna(False)
            if bad.any():
                raise _fail_values(table, source, spec.name, series, bad,
                                   f"one of {list(spec.allowed)}",
                                   "Map the values in the column-mapping file (value_maps) or fix the rows.")
            return pd.Series(pd.Categorical(out, categories=list(spec.allowed)), index=series.index)
        return out.astype("category")
    raise ValueError(f"unknown column kind {kind!r}")


def _absent_column(spec: ColumnSpec, index: pd.Index, table: str, source: str | None) -> pd.Series:
    """An absent optional column: all missing, in the canonical dtype, built without parsing
    (the text path took seconds on 10 million missing cells)."""
    import pyarrow as pa

    n = len(index)
    kind = spec.kind
    if kind in ("id", "text"):
        values: Any = pd.arrays.ArrowStringArray(pa.chunked_array([pa.nulls(n, pa.string())]))
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


def require_columns(columns: Iterable[Any], table: str, where: str, *, hint: str) -> None:
    """Raise :class:`SchemaError` naming the required columns of `table` that `columns` lacks,
    the columns present and `hint` (what the user should do; ``{missing}`` in it is filled in)."""
    columns = list(columns)
    missing = [c for c in TABLES[table].required if c not in columns]
    if missing:
        present = ", ".join(map(str, columns[:30]))
        raise SchemaError(f"{where}: required column(s) {missing} missing for table '{table}'. "
                          f"Columns present: [{present}]. {hint.format(missing=missing)}",
                          source=where, column=missing[0])


def coerce_table(df: pd.DataFrame, table: str, *, source: str | None = None,
                 date_format: str | None = None, dayfirst: bool = False) -> pd.DataFrame:
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
        Passed to :func:`pandas.to_datetime` for text date columns.

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
                                        date_format=date_format, dayfirst=dayfirst)
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


def validate_tables(tables: dict[str, pd.DataFrame], *, sources: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
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


# --------------------------------------------------------------------------- fast key look-ups
def arrow_strings(values: pd.Series | pd.Index | np.ndarray):
    """The values as a pyarrow string array (zero-copy for ``string[pyarrow]``), or ``None``
    when they are not text (numbers, mixed objects): callers then fall back to pandas."""
    import pyarrow as pa

    arr = getattr(values, "array", values)
    if isinstance(arr, pd.arrays.ArrowStringArray) or (
            hasattr(arr, "_pa_array") and (pa.types.is_string(arr._pa_array.type)
                                           or pa.types.is_large_string(arr._pa_array.type))):
        return arr._pa_array
    if isinstance(getattr(values, "dtype", None), pd.StringDtype):
        return pa.chunked_array([pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)])
    return None


def _run_heads(arr) -> np.ndarray:
    """Positions where a value differs from the previous one (run starts; 0 always)."""
    import pyarrow.compute as pc

    n = len(arr)
    if n < 2:
        return np.arange(n)
    a = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    same = pc.fill_null(pc.equal(a.slice(1), a.slice(0, n - 1)), False)
    return np.r_[0, np.flatnonzero(~same.to_numpy(zero_copy_only=False)) + 1]


def _fixed_width_bytes(arr) -> list[tuple[np.ndarray, np.ndarray | None]] | None:
    """The bytes of a text array whose present values all have the same length ``L``.

    Returns one ``(b, valid)`` per chunk: ``b`` is an ``(n_present, L)`` uint8 view of the
    chunk's data buffer (no copy) and ``valid`` the mask of present rows (``None`` when none
    is missing); ``None`` when some value has another length or a missing value holds bytes.
    """
    import pyarrow as pa

    parts, width = [], None
    for a in getattr(arr, "chunks", [arr]):
        n = len(a)
        if n == 0:
            continue
        if not (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)):
            return None
        odt = np.dtype(np.int64 if pa.types.is_large_string(a.type) else np.int32)
        off = np.frombuffer(a.buffers()[1], dtype=odt, count=n + 1, offset=a.offset * odt.itemsize)
        lens = np.diff(off)
        valid = None
        if a.null_count:
            valid = a.is_valid().to_numpy(zero_copy_only=False)
            if lens[~valid].any():
                return None
            lens = lens[valid]
        if len(lens):
            width = int(lens[0]) if width is None else width
            if not (lens == width).all():
                return None
        raw = np.frombuffer(a.buffers()[2], dtype=np.uint8, count=len(lens) * (width or 0),
                            offset=int(off[0])) if len(lens) else np.zeros(0, dtype=np.uint8)
        parts.append((raw.reshape(len(lens), width or 0), valid))
    if not width or width > 64:
        return None
    return [(b.reshape(len(b), width), v) for b, v in parts]


def _int_keys(*arrays) -> list[tuple[np.ndarray, np.ndarray | None]] | None:
    """Text ids of several arrays as comparable uint64 integers, when that is exact.

    Most shop ids have a fixed width (``C00916478``, ``O000000042``, ``536365``). When all
    ids of all arrays have the same byte length ``L`` and at most 8 byte positions differ
    between them (the others hold the same byte in every id), those positions read big-endian
    are an integer per id that is equal exactly when the ids are equal and ordered as the ids
    are (UTF-8 byte order is code-point order). Integer joins and sorts are several times
    faster than hashing strings. Returns ``[(ints, valid), ...]`` per array (``valid`` as in
    :func:`_fixed_width_bytes`; missing rows hold 0), or ``None`` when not applicable.
    """
    views = [_fixed_width_bytes(a) for a in arrays]
    if any(v is None for v in views):
        return None
    blocks = [b for v in views for b, _ in v if len(b)]
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        return None
    width = widths.pop()
    ref = blocks[0][0].copy()
    # bytes before the last 8 must be the same in every id (checked column by column: cheap,
    # and ids usually differ only at the end); then the last 8 bytes are read in place
    lead = max(width - 8, 0)
    kept = np.arange(width)
    in_place = width >= 8 and not any((b[:, j] != ref[j]).any() for j in range(lead) for b in blocks)
    if width > 8 and not in_place:
        varying = np.zeros(width, dtype=bool)
        for b in blocks:
            varying |= (b != ref).any(axis=0)
        kept = np.flatnonzero(varying)
        if len(kept) > 8:
            return None

    def to_ints(b: np.ndarray) -> np.ndarray:
        if in_place:
            flat = np.ascontiguousarray(b).reshape(-1)  # a view: b is a reshaped buffer
            words = np.ndarray(shape=(len(b),), dtype=">u8", buffer=flat, offset=lead, strides=(width,))
            return words.astype(np.uint64)
        word = np.zeros((len(b), 8), dtype=np.uint8)
        word[:, 8 - len(kept):] = b[:, kept]
        return word.view(">u8").ravel().astype(np.uint64)

    out = []
    for parts in views:
        flat = np.concatenate([to_ints(b) for b, _ in parts]) if parts else np.zeros(0, dtype=np.uint64)
        if all(v is None for _, v in parts):
            out.append((flat, None))
            continue
        mask = np.concatenate([np.ones(len(b), dtype=bool) if v is None else v for b, v in parts])
        full = np.zeros(len(mask), dtype=np.uint64)
        full[mask] = flat
        out.append((full, mask))
    return out


def _int_run_heads(vals: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Run starts of integer ids (a missing value differs from any present one)."""
    if len(vals) < 2:
        return np.arange(len(vals))
    change = vals[1:] != vals[:-1]
    if valid is not None:
        change |= valid[1:] != valid[:-1]
    return np.r_[0, np.flatnonzero(change) + 1]


def _int_runs(vals: np.ndarray, vvalid: np.ndarray | None, keys: np.ndarray, kvalid: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`key_runs` on integer ids: a sort-merge join (first occurrence wins).

    Keys already in increasing order (orders exported by id) need no sort; runs of equal
    values (the lines of one order) are looked up once.
    """
    heads = _int_run_heads(vals, vvalid)
    vh = vals[heads]
    krow = np.arange(len(keys), dtype=np.int64) if kvalid is None else np.flatnonzero(kvalid)
    ks = keys if kvalid is None else keys[kvalid]
    if len(ks) > 1 and not (ks[1:] > ks[:-1]).all():
        by = np.argsort(ks, kind="stable")  # equal keys keep their order: the first comes first
        krow, ks = krow[by], ks[by]
        unique = not (ks[1:] == ks[:-1]).any()
    else:
        unique = True
    if len(ks):
        at = np.minimum(np.searchsorted(ks, vh), len(ks) - 1)
        hit = ks[at] == vh
        if vvalid is not None:
            hit &= vvalid[heads]
        pos_h = np.where(hit, krow[at], -1)
    else:
        pos_h = np.full(len(vh), -1, dtype=np.int64)
    return heads, pos_h.astype(np.int64, copy=False), unique


def key_positions(values: pd.Series | pd.Index | np.ndarray, keys: pd.Series | pd.Index | np.ndarray, *,
                  return_unique: bool = False) -> np.ndarray | tuple[np.ndarray, bool]:
    """Row position in ``keys`` of each of ``values`` (-1 when absent or missing).

    A vectorised join on key columns: ``keys`` should be unique (the first occurrence wins
    otherwise). Fixed-width text ids become integers (:func:`_int_keys`) and are joined by a
    sort-merge (no sort when ``keys`` are stored in increasing order); other text keys
    (``string[pyarrow]``) are dictionary-encoded together by pyarrow. Runs of equal
    consecutive values (the lines of one order) are looked up once, so order lines stored
    order by order cost little more than the orders themselves.

    Parameters
    ----------
    values, keys : Series, Index or ndarray

    return_unique : bool
        Also return whether ``keys`` are unique (free: it falls out of the encoding).

    Returns
    -------
    ndarray of int64
        Same length as ``values`` (with ``return_unique``: a tuple ``(positions, unique)``).

    Examples
    --------
    >>> key_positions(pd.Series(["b", "a", "a", None, "z"], dtype=ID), pd.Series(["a", "b"], dtype=ID)).tolist()
    [1, 0, 0, -1, -1]
    """
    starts, pos, unique = key_runs(values, keys, return_unique=True)
    n = len(values)
    out = np.repeat(pos, np.diff(np.r_[starts, n])) if len(starts) < n else pos
    return (out, unique) if return_unique else out


def key_runs(values: pd.Series | pd.Index | np.ndarray, keys: pd.Series | pd.Index | np.ndarray, *,
             return_unique: bool = False) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, bool]:
    """:func:`key_positions` per run of equal consecutive values (the lines of one order).

    Returns ``(starts, positions)``: the row where each run begins and the run's position in
    ``keys`` (-1 when absent or missing); with ``return_unique`` also whether ``keys`` are
    unique. Per-run sums (``numpy.add.reduceat(x, starts)``) then need no per-line position
    array, which is the costly part of an order-line join at 10 million lines.

    Examples
    --------
    >>> starts, pos = key_runs(pd.Series(["b", "b", "a", None], dtype=ID), pd.Series(["a", "b"], dtype=ID))
    >>> starts.tolist(), pos.tolist()
    ([0, 2, 3], [1, 0, -1])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    v, k = arrow_strings(values), arrow_strings(keys)
    n_keys = len(keys)
    if v is None or k is None:
        kidx = pd.Index(np.asarray(keys, dtype=object))
        vidx = pd.Index(np.asarray(values, dtype=object))
        unique = True
        if not kidx.is_unique:
            unique = False
            kidx = pd.Index([x if not d else object() for x, d in zip(kidx, kidx.duplicated(keep="first"))],
                            dtype=object)  # later copies never match
        pos = kidx.get_indexer(vidx)
        pos[np.asarray(pd.isna(vidx), dtype=bool)] = -1
        starts = np.arange(len(vidx), dtype=np.int64)
        return (starts, pos.astype(np.int64), unique) if return_unique else (starts, pos.astype(np.int64))
    ints = _int_keys(v, k)
    if ints is not None:
        (iv, vvalid), (ik, kvalid) = ints
        starts, pos, unique = _int_runs(iv, vvalid, ik, kvalid)
        return (starts, pos, unique) if return_unique else (starts, pos)
    heads = _run_heads(v)
    vh = pc.take(v, pa.array(heads)) if len(heads) < len(v) else v
    chunks = [c if c.type == pa.large_string() else c.cast(pa.large_string())
              for c in list(getattr(k, "chunks", [k])) + list(getattr(vh, "chunks", [vh]))]
    both = pa.chunked_array(chunks, type=pa.large_string())
    enc = pc.dictionary_encode(both).combine_chunks()
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    kc, vc = codes[:n_keys], codes[n_keys:]
    pos_of_code = np.full(len(enc.dictionary) + 1, -1, dtype=np.int64)  # last slot: missing (-1)
    order = np.arange(n_keys, dtype=np.int64)
    ok = kc >= 0
    pos_of_code[kc[ok][::-1]] = order[ok][::-1]  # the first occurrence is written last and wins
    pos = pos_of_code[vc]
    heads = np.asarray(heads, dtype=np.int64)
    if return_unique:
        return heads, pos, bool(not len(kc[ok]) or np.bincount(kc[ok]).max() <= 1)
    return heads, pos


def _one_chunk(arr, type_):
    arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    return arr if arr.type == type_ else arr.cast(type_)


def key_isin(values: pd.Series | pd.Index | np.ndarray, keys: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Boolean array: is each of ``values`` among ``keys`` (missing values are not)?

    Vectorised like :func:`key_positions`; :meth:`pandas.Series.isin` on ``string[pyarrow]``
    builds a Python list of the keys and takes seconds per million rows.
    """
    v, k = arrow_strings(values), arrow_strings(keys)
    if v is None or k is None:
        return np.asarray(pd.Series(np.asarray(values, dtype=object)).isin(np.asarray(keys, dtype=object))
                          & pd.notna(np.asarray(values, dtype=object)), dtype=bool)
    import pyarrow.compute as pc

    ints = _int_keys(v, k)
    if ints is not None:
        (iv, vvalid), (ik, kvalid) = ints
        starts, pos, _ = _int_runs(iv, vvalid, ik, kvalid)
        return np.repeat(pos >= 0, np.diff(np.r_[starts, len(iv)]))
    heads = _run_heads(v)
    n = len(v)
    if len(heads) < 0.7 * n:
        import pyarrow as pa

        hit = pc.is_in(pc.take(v, pa.array(heads)), value_set=_one_chunk(k, v.type), skip_nulls=True)
        return np.repeat(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), np.diff(np.r_[heads, n]))
    hit = pc.is_in(v, value_set=_one_chunk(k, v.type), skip_nulls=True)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def key_codes(values: pd.Series | pd.Index | np.ndarray, *, sort: bool = True) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of key values (-1 for missing) and the distinct keys, for group-bys on ints.

    With ``sort=True`` (the default) the codes follow the sorted order of the keys as text
    (code 0 = the smallest id), so results grouped by code come out sorted by id exactly as
    ``groupby(id)`` would sort them.

    Returns
    -------
    codes : ndarray of int64
    uniques : Index
        ``uniques[codes[i]] == values[i]``.
    """
    arr = arrow_strings(values) if isinstance(values, (pd.Series, pd.Index)) else None
    ints = _int_keys(arr) if arr is not None else None
    if ints is not None:  # fixed-width text ids: factorize integers, then fetch one name per code
        (iv, valid), = ints
        present = np.arange(len(iv)) if valid is None else np.flatnonzero(valid)
        c, u = pd.factorize(iv[present], sort=False)
        if sort:  # sorting the distinct integers is cheaper than factorize(sort=True)
            rank = np.empty(len(u), dtype=np.int64)
            rank[np.argsort(u)] = np.arange(len(u))
            c = rank[c]
        first = np.empty(int(c.max()) + 1 if len(c) else 0, dtype=np.int64)
        first[c[::-1]] = present[::-1]  # the first row of each code is written last
        codes = np.full(len(iv), -1, dtype=np.int64)
        codes[present] = c
        return codes, pd.Index(pd.Series(values).iloc[first].array)
    codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def int_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes ``0..n-1`` of a column (missing values share one code) and ``n``.

    Equal values get equal codes, which is all a duplicate check needs. Arrow text is
    dictionary-encoded by pyarrow, run by run (the lines of one order are encoded once);
    categoricals use their codes; small non-negative integers are their own codes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.CategoricalDtype):
        c = values.cat.codes.to_numpy().astype(np.int64)
        n = len(values.cat.categories)
        return np.where(c < 0, n, c), n + 1
    arr = arrow_strings(values)
    ints = _int_keys(arr) if arr is not None else None
    if ints is not None:  # fixed-width text ids: factorize integers, one per run of equal ids
        (iv, valid), = ints
        m = len(iv)
        heads = _int_run_heads(iv, valid)
        ok = np.ones(len(heads), dtype=bool) if valid is None else valid[heads]
        c = np.empty(len(heads), dtype=np.int64)
        hv = iv[heads][ok]
        if len(hv) < 2 or (hv[1:] > hv[:-1]).all():  # ids in increasing order: runs are the codes
            cc, n = np.arange(len(hv), dtype=np.int64), len(hv)
        else:
            cc, u = pd.factorize(hv)
            n = len(u)
        c[ok], c[~ok] = cc, n
        return (np.repeat(c, np.diff(np.r_[heads, m])) if len(heads) < m else c), n + 1
    if arr is not None:
        heads = _run_heads(arr)
        m = len(arr)
        part = pc.take(arr, pa.array(heads)) if len(heads) < 0.7 * m else arr
        enc = pc.dictionary_encode(part).combine_chunks() if hasattr(part, "combine_chunks") \
            else pc.dictionary_encode(part)
        n = len(enc.dictionary)
        c = pc.fill_null(enc.indices, n).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        if len(heads) < 0.7 * m and m:
            c = np.repeat(c, np.diff(np.r_[heads, m]))
        return c, n + 1
    x = values.to_numpy() if not isinstance(values, np.ndarray) else values
    if x.dtype.kind in "iu" and len(x):
        lo, hi = int(x.min()), int(x.max())
        if hi - lo < 4 * len(x) + 1024:
            return (x.astype(np.int64, copy=False) - lo), hi - lo + 1
    c, u = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(c, dtype=np.int64), max(len(u), 1)


def duplicated(df: pd.DataFrame, columns: Sequence[str] | None = None, *, keep: str | bool = "first",
               cache: dict | None = None) -> np.ndarray:
    """Boolean array like :meth:`pandas.DataFrame.duplicated`, on integer codes.

    Each column is turned into integer codes (:func:`int_codes`), the codes are combined into
    one int64 id per row (re-compressed when the product of the cardinalities would overflow)
    and the ids are checked with one hash pass. On 10 million order lines keyed by
    ``(order_id, line_no)`` this is several times faster than ``DataFrame.duplicated``, which
    factorizes every text cell. Missing values compare equal, as in pandas.

    Parameters
    ----------
    df : DataFrame
    columns : sequence of str, optional
        Default: every column.
    keep : 'first', 'last' or False
        As in pandas.
    cache : dict, optional
        ``{column name: (codes, n)}`` reused across calls on the same frame.
    """
    cols = list(df.columns if columns is None else columns)
    if not len(df) or not cols:
        return np.zeros(len(df), dtype=bool)
    ids, size = None, 1
    for c in cols:
        if cache is not None and c in cache:
            codes, n = cache[c]
        else:
            codes, n = int_codes(df[c])
            if cache is not None:
                cache[c] = (codes, n)
        if ids is None:
            ids, size = codes, n
            continue
        if size * n >= 2**62:
            ids, uniq = pd.factorize(ids)
            ids, size = ids.astype(np.int64), len(uniq)
        ids = ids * n + codes
        size *= n
    if keep is False:
        # the usual question of a key check; sorting one int64 array needs far less memory than
        # a hash table of every row (GBs at 10^7 rows), and a valid key has no duplicate at all
        s = ids if bool((ids[1:] >= ids[:-1]).all()) else np.sort(ids)  # stored in key order: no sort
        if not bool((s[1:] == s[:-1]).any()):
            return np.zeros(len(df), dtype=bool)
        del s
    if size <= 4 * len(df) + 1024 and keep == "first":
        # dense ids: first occurrences by a scatter, no hash table
        first = np.empty(size, dtype=np.int64)
        first[ids[::-1]] = np.arange(len(df) - 1, -1, -1, dtype=np.int64)  # the first row is written last
        return first[ids] != np.arange(len(df))
    return np.asarray(pd.Series(ids).duplicated(keep=keep), dtype=bool)


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
