"""Reading the user's data: CSV, Parquet, Excel and basket files, plus column mapping.

Every analysis starts with :func:`load_dataset`, which turns "bring your own data" into a
:class:`Dataset` in one of five formats:

``canonical``
    A folder holding the canonical tables (see :mod:`ecrm_research.data.schema`) as files named
    after them: ``customers.parquet``, ``orders.csv``, ``order_items.xlsx`` ... Sub-folders
    (e.g. ``truth/``) and files with other names are ignored.
``lines``
    One flat file with one row per order line (order id, customer id, timestamp, product,
    quantity, unit price, optional extras). A column-mapping file renames the user's columns
    and :func:`split_order_lines` derives the canonical customers/products/orders/order_items.
``baskets``
    One transaction per text line, items separated by ``,`` (the Groceries layout).
``customers`` / ``survey``
    One table read as it is (a customer table with tenure/churn columns; a survey with one row
    per respondent) into :attr:`Dataset.frame`.

Column-mapping files (YAML; ``data/mappings/online_retail.yaml`` is the worked example)::

    format: lines                    # optional; one of the five formats
    read: {sep: ",", decimal: ".", encoding: utf-8, date_format: "%d/%m/%Y %H:%M", sheet_name: 0}
    columns:                         # canonical name: the user's column
      order_id: InvoiceNo
      customer_id: CustomerID
    rules:
      cancelled_if: {column: InvoiceNo, startswith: "C"}
      returned_if: {column: Quantity, lt: 0}
      non_product_codes: [POST, DOT]
    value_maps:                      # canonical column: {user value: canonical value}
      channel: {Mobile: app, Desktop: web}

Rule language (``cancelled_if`` / ``returned_if``)
    A *condition* is a mapping with ``column`` (the user's column name or a canonical name)
    and one or more operators, all of which must hold: ``eq``, ``ne``, ``in``, ``not_in``
    (list), ``lt``, ``le``, ``gt``, ``ge`` (numbers), ``startswith``, ``endswith`` (text),
    ``isnull`` (true/false). A list of conditions holds when *any* of them holds. Rules are
    evaluated per line; an order takes the most severe status among its lines
    (cancelled > returned > completed) and the rules override a mapped ``status`` column.

Format detection (:func:`detect_format`) is deliberately simple: a folder is ``canonical``; a
table whose header holds the six required order-line columns is ``lines``; a text file whose
lines have varying numbers of comma-separated fields is ``baskets``; anything else must be
stated explicitly (``-p data_format X``). An explicit ``data_format`` always wins, and a
mapping file with ``format:`` counts as explicit.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import paths
from ..exceptions import DataError, FormatError, MappingError, ParameterError, SchemaError
from . import schema

FORMATS: tuple[str, ...] = ("canonical", "lines", "baskets", "customers", "survey")

#: Extensions read by :func:`read_table` (compression suffixes .gz/.bz2/.zip/.xz allowed on text).
TEXT_EXTENSIONS = (".csv", ".txt", ".tsv", ".dat")
PARQUET_EXTENSIONS = (".parquet", ".pq")
EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls")
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS + PARQUET_EXTENSIONS + EXCEL_EXTENSIONS
_COMPRESSION = (".gz", ".bz2", ".zip", ".xz")

#: Options accepted in ``read:`` and as ``**read_options`` of :func:`load_dataset`.
READ_OPTIONS = ("sep", "decimal", "encoding", "date_format", "dayfirst", "sheet_name")
MAPPING_KEYS = ("format", "read", "columns", "rules", "value_maps")
RULE_KEYS = ("cancelled_if", "returned_if", "non_product_codes")
CONDITION_OPS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "startswith", "endswith", "isnull")

#: Canonical names a ``lines`` mapping may target (required ones first).
LINE_REQUIRED = ("order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price")
LINE_OPTIONAL = (
    "product_name", "category", "list_price",                     # -> products
    "status", "channel", "discount_rate", "delivery_days", "promised_days",  # -> orders
    "region", "registered_at", "age_band", "acquisition_source", "is_member",  # -> customers
)
LINE_COLUMNS = LINE_REQUIRED + LINE_OPTIONAL
_PRODUCT_COLS = ("product_name", "category", "list_price")
_ORDER_COLS = ("status", "channel", "discount_rate", "delivery_days", "promised_days")
_CUSTOMER_COLS = ("region", "registered_at", "age_band", "acquisition_source", "is_member")
_STATUS_RANK = {"completed": 0, "returned": 1, "cancelled": 2}


# --------------------------------------------------------------------------- mapping
@dataclass
class ColumnMapping:
    """A parsed column-mapping file.

    Attributes
    ----------
    format : str or None
        Data format the mapping is for (``None``: decided by the caller / detection).
    read : dict
        Reader options (sep, decimal, encoding, date_format, dayfirst, sheet_name).
    columns : dict
        Canonical name -> the user's column name.
    rules : dict
        ``cancelled_if``, ``returned_if`` conditions and ``non_product_codes``.
    value_maps : dict
        Canonical column -> {user value: canonical value}.
    source : str
        Where the mapping came from (file path or ``'dict'``), quoted in errors.
    """

    format: str | None = None
    read: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    value_maps: dict[str, dict[Any, Any]] = field(default_factory=dict)
    source: str = "dict"

    @property
    def non_product_codes(self) -> tuple[str, ...]:
        """Product ids that are not goods (postage, fees...), from ``rules.non_product_codes``."""
        return tuple(str(c) for c in self.rules.get("non_product_codes", ()) or ())


def _valid_targets(fmt: str | None) -> tuple[str, ...] | None:
    """Canonical names a mapping for ``fmt`` may target; ``None`` means any name (plain rename)."""
    if fmt == "lines":
        return LINE_COLUMNS
    if fmt == "canonical":
        return tuple(dict.fromkeys(c for t in schema.TABLES.values() for c in t.names))
    if fmt is None:
        return tuple(dict.fromkeys(LINE_COLUMNS + _valid_targets("canonical")))  # type: ignore[operator]
    return None  # customers / survey: a plain rename, names are the analysis' business


def _resolve_mapping_path(path: str | Path) -> Path:
    p = Path(path)
    if p.exists():
        return p
    # allow a bare name of a shipped mapping: mapping="online_retail"
    for cand in (paths.MAPPINGS_DIR / p.name, paths.MAPPINGS_DIR / f"{p.name}.yaml"):
        if cand.exists() and p.parent == Path("."):
            return cand
    shipped = sorted(q.stem for q in paths.MAPPINGS_DIR.glob("*.yaml")) if paths.MAPPINGS_DIR.exists() else []
    raise MappingError(f"{path}: column-mapping file not found. Check the path; shipped mappings: {shipped}.",
                       source=str(path))


def _check_condition(cond: Any, where: str, name: str) -> None:
    conds = cond if isinstance(cond, list) else [cond]
    for c in conds:
        if not isinstance(c, dict) or "column" not in c:
            raise MappingError(f"{where}: rules.{name} must be a mapping like "
                               f"{{column: InvoiceNo, startswith: 'C'}} (or a list of them); got {c!r}.",
                               source=where, column=name, example=c)
        ops = [k for k in c if k != "column"]
        bad = [k for k in ops if k not in CONDITION_OPS]
        if bad or not ops:
            raise MappingError(f"{where}: rules.{name} has unknown operator(s) {bad or '(none)'}; "
                               f"use one of {list(CONDITION_OPS)}.", source=where, column=name,
                               example=bad[0] if bad else None)


def load_mapping(path_or_dict: str | Path | Mapping[str, Any] | ColumnMapping) -> ColumnMapping:
    """Read and check a column-mapping file (YAML) or dict.

    Parameters
    ----------
    path_or_dict : str, Path, dict or ColumnMapping
        A YAML file, the bare name of a shipped mapping in ``data/mappings`` (e.g.
        ``'online_retail'``), or the same structure as a dict.

    Returns
    -------
    ColumnMapping

    Raises
    ------
    MappingError
        File not found, unknown top-level key, unknown canonical name in ``columns`` or
        ``value_maps``, unknown read option, rule or operator, unknown format.

    Examples
    --------
    >>> m = load_mapping({"format": "lines", "columns": {"order_id": "InvoiceNo"}})
    >>> m.columns["order_id"]
    'InvoiceNo'
    """
    if isinstance(path_or_dict, ColumnMapping):
        return path_or_dict
    if isinstance(path_or_dict, Mapping):
        raw, where = dict(path_or_dict), "column mapping"
    else:
        import yaml

        p = _resolve_mapping_path(path_or_dict)
        where = str(p)
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise MappingError(f"{where}: not valid YAML ({exc}). Check indentation and quoting.",
                               source=where) from None
        if not isinstance(raw, dict):
            raise MappingError(f"{where}: a column mapping must be a YAML mapping with keys {list(MAPPING_KEYS)}.",
                               source=where)
    unknown = [k for k in raw if k not in MAPPING_KEYS]
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {unknown}; a column mapping has the keys {list(MAPPING_KEYS)}.",
                           source=where, column=str(unknown[0]), example=unknown[0])
    fmt = raw.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise MappingError(f"{where}: format {fmt!r} is not one of {list(FORMATS)}.", source=where,
                           column="format", example=fmt)
    read = dict(raw.get("read") or {})
    bad_read = [k for k in read if k not in READ_OPTIONS]
    if bad_read:
        raise MappingError(f"{where}: unknown read option(s) {bad_read}; use {list(READ_OPTIONS)}.",
                           source=where, column="read", example=bad_read[0])
    columns = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
    targets = _valid_targets(fmt)
    if targets is not None:
        bad = [k for k in columns if k not in targets]
        if bad:
            raise MappingError(
                f"{where}: unknown canonical name(s) {bad} under 'columns'. Valid names for "
                f"{fmt or 'lines/canonical'} data: {list(targets)}. Write 'canonical_name: YourColumn'.",
                source=where, column=bad[0], example=bad[0])
    rules = dict(raw.get("rules") or {})
    bad_rules = [k for k in rules if k not in RULE_KEYS]
    if bad_rules:
        raise MappingError(f"{where}: unknown rule(s) {bad_rules}; use {list(RULE_KEYS)}.",
                           source=where, column="rules", example=bad_rules[0])
    for name in ("cancelled_if", "returned_if"):
        if rules.get(name) is not None:
            _check_condition(rules[name], where, name)
    value_maps = {str(k): dict(v or {}) for k, v in (raw.get("value_maps") or {}).items()}
    if targets is not None:
        bad = [k for k in value_maps if k not in targets]
        if bad:
            raise MappingError(f"{where}: value_maps names unknown canonical column(s) {bad}; "
                               f"valid: {list(targets)}.", source=where, column=bad[0], example=bad[0])
    return ColumnMapping(format=fmt, read=read, columns=columns, rules=rules, value_maps=value_maps,
                         source=where)


# --------------------------------------------------------------------------- reading files
def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _check_file(path: Path) -> str:
    if not path.exists():
        raise DataError(f"{path}: file not found (looked at {path.resolve()}). Check the path and the "
                        "current folder, or pass an absolute path.", source=str(path))
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file. Pass a file, or use data_format='canonical' "
                        "for a folder of canonical tables.", source=str(path))
    ext = _suffix(path)
    if ext not in SUPPORTED_EXTENSIONS:
        raise FormatError(f"{path}: unsupported file type {ext or '(no extension)'!r}. Supported: "
                          f"{', '.join(SUPPORTED_EXTENSIONS)}. Save the data as CSV or Parquet.",
                          source=str(path), example=ext)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes). Check that the export finished.",
                        source=str(path), n_rows=0)
    return ext


def _decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> DataError:
    # the reader's position is relative to its buffer: re-decode to find the byte in the file
    start, line, raw = exc.start, None, exc.object
    try:
        raw = path.read_bytes()
        raw.decode(encoding)
    except UnicodeDecodeError as full:
        start, line = full.start, raw.count(b"\n", 0, full.start) + 1
    except (OSError, LookupError):
        pass
    byte = raw[start:start + 1].hex() if raw else "?"
    where = f"position {start:,}" + (f", line {line:,}" if line else "")
    alt = "latin-1" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
    return DataError(
        f"{path}: cannot be read as {encoding} (byte 0x{byte} at {where} is not valid "
        f"{encoding}). The file uses another encoding: pass encoding='{alt}' (or 'cp1252'), e.g. "
        f"`-p encoding {alt}` or `read: {{encoding: {alt}}}` in the mapping file.",
        source=str(path), example=f"0x{byte}")


def sniff_sep(path: Path, encoding: str, ext: str, decimal: str) -> str:
    if ext == ".tsv":
        return "\t"
    try:
        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            sample = fh.read(64_000)
    except OSError:
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        # a one-column file or no clear delimiter: decimal commas imply ';'
        return ";" if decimal == "," and ";" in sample else ","


def _read_any(path: str | Path, *, sep: str | None = None, decimal: str = ".", encoding: str = "utf-8",
              sheet_name: Any = 0, str_columns: Sequence[str] = (), columns: Sequence[str] | None = None,
              arrow_strings: bool = False) -> pd.DataFrame:
    """Read one tabular file; ``str_columns`` are kept as text (ids keep leading zeros).

    ``columns`` (optional) projects: only those of the file's columns are read (Parquet reads
    only their column chunks; CSV parses only them). ``arrow_strings`` reads Parquet text as
    ``string[pyarrow]``.
    """
    path = Path(path)
    ext = _check_file(path)
    wanted = None if columns is None else set(columns)
    try:
        if ext in PARQUET_EXTENSIONS:
            return _read_parquet(path, columns, arrow_strings)
        if ext in EXCEL_EXTENSIONS:
            df = _read_excel(path, sheet_name, str_columns)
            if wanted is not None:
                df = df[[c for c in df.columns if c in wanted]]
            return _tidy_float_ids(df, str_columns)
        sep = sep or sniff_sep(path, encoding, ext, decimal)
        header = pd.read_csv(path, sep=sep, encoding=encoding, nrows=0)
        dtype = {c: str for c in str_columns if c in header.columns}
        usecols = None if wanted is None else [c for c in header.columns if c in wanted]
        df = pd.read_csv(path, sep=sep, decimal=decimal, encoding=encoding, dtype=dtype or None,
                         low_memory=False, usecols=usecols)
        return _tidy_float_ids(df, [c for c in dtype if c in df.columns])
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, exc) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no data (no header, no rows).", source=str(path), n_rows=0) from None
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path}: cannot be parsed as a table with separator {sep!r} ({str(exc).strip()}). Pass the "
            "right sep (e.g. sep=';'), or data_format='baskets' if each line is a list of items.",
            source=str(path)) from None
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}; use e.g. 'utf-8', 'latin-1' or 'cp1252'.",
                        source=str(path), example=encoding) from None


def _tidy_float_ids(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Ids exported as floats ('17850.0' because the column had blanks) become '17850'.

    Only when *every* value of the column has that form, so ids such as '007' or '1.5a' are
    left exactly as written.
    """
    for c in columns:
        if c in df.columns and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype)):
            s = df[c].astype(schema.TEXT)
            given = s.notna()
            if given.any() and s[given].str.fullmatch(r"-?\d+\.0+").all():
                df[c] = s.str.replace(r"\.0+$", "", regex=True).astype(object).where(given, None)
    return df


def _arrow_types(arrow_type):
    """pyarrow → pandas types for :func:`_read_parquet`: text stays in Arrow memory."""
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return schema.TEXT
    return None


def _read_parquet(path: Path, columns: Sequence[str] | None = None, arrow_strings: bool = False) -> pd.DataFrame:
    """Read a Parquet file; ``columns`` projects (only those present are read, in file order).

    With ``arrow_strings`` text columns become ``string[pyarrow]`` straight from the Arrow
    buffers instead of one Python object per cell (about 5× less memory for ids, and the
    canonical dtype anyway).
    """
    try:
        import pyarrow.parquet as pq

        if columns is not None:
            names = pq.read_schema(path).names
            wanted = set(columns)
            columns = [c for c in names if c in wanted]
        table = pq.read_table(path, columns=columns)
        return table.to_pandas(types_mapper=_arrow_types if arrow_strings else None, self_destruct=True)
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid subclasses ValueError
        raise DataError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]}). "
                        "Re-export it, or save it as CSV.", source=str(path)) from None


def _read_excel(path: Path, sheet_name: Any, str_columns: Sequence[str]) -> pd.DataFrame:
    if _suffix(path) == ".xls":
        try:
            import xlrd  # noqa: F401
        except ImportError:
            raise FormatError(f"{path}: old .xls files need the 'xlrd' package, which is not installed. "
                              "Save the sheet as .xlsx or CSV.", source=str(path)) from None
    try:
        return pd.read_excel(path, sheet_name=sheet_name, dtype={c: str for c in str_columns} or None)
    except ValueError as exc:
        if "not found" in str(exc).lower() or "worksheet" in str(exc).lower():
            try:
                sheets = pd.ExcelFile(path).sheet_names
            except Exception:  # noqa: BLE001 - only used to enrich the message
                sheets = []
            raise DataError(f"{path}: sheet {sheet_name!r} not found; sheets are {sheets}. Pass sheet_name.",
                            source=str(path), example=sheet_name) from None
        raise DataError(f"{path}: cannot read the Excel file ({exc}).", source=str(path)) from None
    except Exception as exc:  # noqa: BLE001 - zip/openpyxl errors on corrupt files
        raise DataError(f"{path}: not a readable Excel file ({type(exc).__name__}: {exc}). "
                        "Re-save it as .xlsx or CSV.", source=str(path)) from None


def read_table(path: str | Path, *, sep: str | None = None, decimal: str = ".", encoding: str = "utf-8",
               sheet_name: Any = 0, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read one CSV, Parquet or Excel file into a DataFrame, with clear errors.

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.txt``/``.tsv`` (optionally compressed), ``.parquet``/``.pq``, ``.xlsx``/``.xlsm``.
    sep : str, optional
        Field separator of text files; ``None`` sniffs it among ``, ; TAB |``.
    decimal : str
        Decimal mark of text files (``','`` for e.g. German or French exports).
    encoding : str
        Text encoding; use ``'latin-1'`` or ``'cp1252'`` for old Windows exports.
    sheet_name : int or str
        Excel sheet.
    columns : sequence of str, optional
        Read only these columns (those absent from the file are ignored). Parquet reads only
        their column chunks, so a wide file costs what its needed columns cost.

    Returns
    -------
    DataFrame
        The table as pandas infers it (numbers as numbers, text as object).

    Raises
    ------
    DataError
        File not found, empty file, wrong encoding (with byte position), unparsable text.
    FormatError
        Unsupported file extension.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a;b\\n1,5;x\\n", encoding="utf-8")
    >>> read_table(p, decimal=",")["a"].tolist()
    [1.5]
    """
    return _read_any(path, sep=sep, decimal=decimal, encoding=encoding, sheet_name=sheet_name, columns=columns)


def read_baskets(path: str | Path, *, sep: str = ",", encoding: str = "utf-8") -> list[list[str]]:
    """Read a basket file: one transaction per line, items separated by ``sep``.

    Items are kept exactly as written, including leading/trailing spaces (as R's arules does:
    ``"cream cheese "`` stays distinct from ``"cream cheese"``); only the line end is removed.
    Empty items (``a,,b``) and blank lines are skipped; an item repeated within a line is kept
    once, at its first position.

    Parameters
    ----------
    path : str or Path
        Text file (no header).
    sep : str
        Item separator.
    encoding : str
        Text encoding.

    Returns
    -------
    list of list of str
        One list of items per transaction, in file order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.csv"
    >>> _ = p.write_text("milk,cream cheese ,milk\\nbread\\n", encoding="utf-8")
    >>> read_baskets(p)
    [['milk', 'cream cheese '], ['bread']]
    """
    path = Path(path)
    _check_file(path)
    try:
        with open(path, encoding=encoding, newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, exc) from None
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}; use e.g. 'utf-8' or 'latin-1'.",
                        source=str(path), example=encoding) from None
    baskets = []
    for line in text.split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        items = [it for it in line.split(sep) if it != ""]
        if items:
            baskets.append(list(dict.fromkeys(items)))
    if not baskets:
        raise DataError(f"{path}: no transactions found (only blank lines).", source=str(path), n_rows=0)
    return baskets


# --------------------------------------------------------------------------- detection
def _header(path: Path, encoding: str = "utf-8") -> list[str]:
    ext = _suffix(path)
    try:
        if ext in PARQUET_EXTENSIONS:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if ext in EXCEL_EXTENSIONS:
            return [str(c) for c in pd.read_excel(path, nrows=0).columns]
        return [str(c) for c in pd.read_csv(path, sep=sniff_sep(path, encoding, ext, "."), nrows=0,
                                            encoding=encoding).columns]
    except Exception:  # noqa: BLE001 - detection is best effort; reading reports the real error
        return []


def _looks_like_baskets(path: Path, encoding: str = "utf-8", n_lines: int = 200) -> bool:
    if _suffix(path) not in TEXT_EXTENSIONS:
        return False
    try:
        with open(path, encoding=encoding, errors="replace") as fh:
            lines = [ln.rstrip("\r\n") for _, ln in zip(range(n_lines), fh)]
    except OSError:
        return False
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 2:
        return False
    counts = {ln.count(",") + 1 for ln in lines}
    # a table has the same number of fields on every line; baskets vary in length
    return len(counts) > 1 and max(counts) > 1 and not any(";" in ln or "\t" in ln for ln in lines[:5])


def detect_format(path: str | Path) -> str:
    """Guess the data format of a file or folder.

    Rules, in order: a folder is ``canonical``; a table whose header holds the required
    order-line columns (``order_id, customer_id, ordered_at, product_id, quantity, unit_price``)
    is ``lines``; a text file whose lines have varying numbers of comma-separated fields is
    ``baskets``. Anything else raises :class:`FormatError` asking for ``data_format``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.csv"
    >>> _ = p.write_text("milk,bread\\neggs\\nmilk,eggs,tea\\n")
    >>> detect_format(p)
    'baskets'
    """
    p = Path(path)
    if p.is_dir():
        return "canonical"
    _check_file(p)
    if set(LINE_REQUIRED) <= set(_header(p)):
        return "lines"
    if _looks_like_baskets(p):
        return "baskets"
    raise FormatError(
        f"{path}: cannot tell the data format. State it with `-p data_format X` (data_format=X), X one of "
        f"{', '.join(FORMATS)}: canonical = a folder of canonical tables, lines = one row per order line "
        "(with a --mapping file for your column names), baskets = one transaction per line, customers = "
        "one row per customer, survey = one row per respondent.", source=str(path))


# --------------------------------------------------------------------------- dataset
@dataclass
class Dataset:
    """The user's data after reading, in one of :data:`FORMATS`.

    Attributes
    ----------
    format : str
        ``'canonical' | 'lines' | 'baskets' | 'customers' | 'survey'``.
    source : str
        Path as given (or ``'bundled sample'``).
    tables : dict of DataFrame
        Canonical tables for ``canonical`` and ``lines``; ``{}`` otherwise.
    frame : DataFrame or None
        The one table for ``customers`` / ``survey``.
    baskets : list of list of str or None
        Transactions for ``baskets``.
    mapping : ColumnMapping or None
    n_input_rows : int
        Rows read from the user's file(s) (``lines``: flat rows; ``baskets``: transactions).
    """

    format: str
    source: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    frame: pd.DataFrame | None = None
    baskets: list[list[str]] | None = None
    mapping: ColumnMapping | None = None
    n_input_rows: int = 0

    def require(self, accepted: Sequence[str], analysis: str) -> None:
        """Fail clearly unless this dataset's format is one an analysis accepts.

        Parameters
        ----------
        accepted : sequence of str
            Formats the analysis can use.
        analysis : str
            Its name, for the message (e.g. ``'churn'``).

        Raises
        ------
        FormatError

        Examples
        --------
        >>> Dataset("baskets", "g.csv", baskets=[["a"]]).require(["baskets"], "association")
        """
        if self.format in accepted:
            return
        acc = list(accepted)
        listed = acc[0] if len(acc) == 1 else ", ".join(acc[:-1]) + f" or {acc[-1]}"
        raise FormatError(
            f"The {analysis} analysis accepts {listed} data; '{self.source}' is {self.format} data. "
            f"Pass data in one of those formats (with -p data_format X if it was detected wrongly).",
            source=self.source, example=self.format)


def _apply_value_maps(df: pd.DataFrame, value_maps: Mapping[str, Mapping[Any, Any]]) -> pd.DataFrame:
    """Replace user values by canonical ones; unmapped values are left for validation to report."""
    for col, vmap in value_maps.items():
        if col in df.columns and vmap:
            as_text = df[col].astype("string").str.strip()
            keys = {str(k).strip(): v for k, v in vmap.items()}
            mapped = as_text.map(keys).astype(object)
            df[col] = mapped.where(mapped.notna(), df[col].astype(object))
    return df


def _rename(raw: pd.DataFrame, mapping: ColumnMapping | None, source: str) -> pd.DataFrame:
    """Canonical-named frame: mapped columns renamed, other columns kept unchanged."""
    if mapping is None or not mapping.columns:
        return raw.copy()
    missing = {canon: user for canon, user in mapping.columns.items() if user not in raw.columns}
    if missing:
        canon, user = next(iter(missing.items()))
        present = ", ".join(map(str, raw.columns[:40]))
        raise MappingError(
            f"{source}: the mapping {mapping.source} points '{canon}' at column {user!r}, which is not in the "
            f"file. Columns present: [{present}]. Fix the name under 'columns' (names are case-sensitive).",
            source=source, column=user, n_rows=len(missing), example=user)
    used = set(mapping.columns.values())
    out = {canon: raw[user] for canon, user in mapping.columns.items()}
    for c in raw.columns:
        if c not in used and c not in out:
            out[c] = raw[c]
    return pd.DataFrame(out, index=raw.index)


def _condition_mask(raw: pd.DataFrame, renamed: pd.DataFrame, cond: Any, source: str, name: str) -> pd.Series:
    conds = cond if isinstance(cond, list) else [cond]
    total = pd.Series(False, index=raw.index)
    for c in conds:
        col = c["column"]
        if col in raw.columns:
            s = raw[col]
        elif col in renamed.columns:
            s = renamed[col]
        else:
            raise MappingError(f"{source}: rules.{name} uses column {col!r}, which is not in the file. Columns "
                               f"present: [{', '.join(map(str, raw.columns[:40]))}].",
                               source=source, column=str(col), example=col)
        m = pd.Series(True, index=raw.index)
        for op, val in c.items():
            if op == "column":
                continue
            if op in ("startswith", "endswith"):
                txt = s.astype("string")
                hit = txt.str.startswith(str(val)) if op == "startswith" else txt.str.endswith(str(val))
            elif op in ("lt", "le", "gt", "ge"):
                num = pd.to_numeric(s, errors="coerce")
                hit = getattr(num, op)(float(val))
            elif op in ("eq", "ne"):
                hit = s.astype("string") == str(val)
                hit = ~hit if op == "ne" else hit
            elif op in ("in", "not_in"):
                vals = [str(v) for v in (val if isinstance(val, (list, tuple)) else [val])]
                hit = s.astype("string").isin(vals)
                hit = ~hit if op == "not_in" else hit
            else:  # isnull
                hit = s.isna() if val else s.notna()
            m &= pd.Series(hit, index=raw.index).fillna(False).astype(bool)
        total |= m
    return total


def _first_by(key: pd.Series, frame: pd.DataFrame) -> pd.DataFrame:
    """First non-null value of each column per key, keys in order of first appearance."""
    return frame.groupby(key, sort=False, observed=True).first()


def split_order_lines(lines: pd.DataFrame, mapping: ColumnMapping | None, source: str) -> dict[str, pd.DataFrame]:
    """Turn a flat order-lines table into the canonical customers/products/orders/order_items.

    Parameters
    ----------
    lines : DataFrame
        The user's flat file, one row per order line, with the user's column names.
    mapping : ColumnMapping or None
        Renames user columns to canonical names (see :data:`LINE_COLUMNS`), and gives the
        status rules and value maps. ``None`` when the file already uses canonical names.
    source : str
        File name quoted in error messages.

    Returns
    -------
    dict of DataFrame
        ``customers``, ``products``, ``orders``, ``order_items`` with canonical dtypes.
        ``order_items`` keeps ``source_row`` (0-based row in ``lines``) and ``row_hash`` (a
        64-bit hash of the user's whole row, so :func:`ecrm_research.data.quality.clean` can find
        rows that are exact duplicates in the user's file).

    Notes
    -----
    * Orders take the first non-null customer and the first timestamp of their lines (file order).
    * Status: the most severe status of its lines under ``rules`` (cancelled > returned >
      completed); without rules, a mapped ``status`` column (first per order) or 'completed'.
    * Products take their first non-null name/category; customers are the distinct non-null
      customer ids with their first non-null region and other attributes.
    * ``line_no`` numbers the lines of an order 0, 1, ... in file order.

    Examples
    --------
    >>> raw = pd.DataFrame({"Inv": ["1", "1", "C2"], "Cust": [7.0, 7.0, 8.0],
    ...     "When": ["2024-01-01", "2024-01-01", "2024-01-02"], "Sku": ["a", "b", "a"],
    ...     "Qty": [1, 2, -1], "Price": [2.5, 1.0, 2.5]})
    >>> m = load_mapping({"columns": {"order_id": "Inv", "customer_id": "Cust", "ordered_at": "When",
    ...     "product_id": "Sku", "quantity": "Qty", "unit_price": "Price"},
    ...     "rules": {"cancelled_if": {"column": "Inv", "startswith": "C"}}})
    >>> t = split_order_lines(raw, m, "x.csv")
    >>> t["orders"]["status"].tolist(), t["customers"]["customer_id"].tolist()
    (['completed', 'cancelled'], ['7', '8'])
    """
    if len(lines) == 0:
        raise DataError(f"{source}: the file has a header but no rows.", source=source, n_rows=0)
    raw = lines.reset_index(drop=True)
    df = _rename(raw, mapping, source)
    missing = [c for c in LINE_REQUIRED if c not in df.columns]
    if missing:
        present = ", ".join(map(str, raw.columns[:40]))
        raise SchemaError(
            f"{source}: order-lines data needs column(s) {missing}, which are missing. Columns present: "
            f"[{present}]. Pass a column-mapping file (--mapping) with e.g. 'columns: {{{missing[0]}: "
            f"YourColumn}}' (see data/mappings/online_retail.yaml).",
            source=source, column=missing[0], n_rows=len(missing), example=list(map(str, raw.columns[:10])))
    rules = mapping.rules if mapping else {}
    value_maps = mapping.value_maps if mapping else {}
    read = mapping.read if mapping else {}
    df = _apply_value_maps(df, value_maps)

    present_opt = [c for c in LINE_OPTIONAL if c in df.columns]
    specs = {}
    for table in ("orders", "order_items", "products", "customers"):
        for c in schema.TABLES[table].columns:
            specs.setdefault(c.name, c)
    cols = {}
    for name in LINE_REQUIRED + tuple(present_opt):
        if name == "status" and (rules.get("cancelled_if") or rules.get("returned_if")):
            continue  # rules decide the status; the raw column may hold other codes
        cols[name] = schema.coerce_column(df[name], specs[name], table="order lines", source=source,
                                          date_format=read.get("date_format"),
                                          dayfirst=bool(read.get("dayfirst", False)))
    c = pd.DataFrame(cols)

    # status per line -> most severe per order
    rank = pd.Series(0, index=raw.index, dtype="int8")
    if rules.get("cancelled_if") or rules.get("returned_if"):
        if rules.get("returned_if"):
            rank[_condition_mask(raw, df, rules["returned_if"], source, "returned_if")] = 1
        if rules.get("cancelled_if"):
            rank[_condition_mask(raw, df, rules["cancelled_if"], source, "cancelled_if")] = 2
    elif "status" in c.columns:
        rank = c["status"].astype(object).map(_STATUS_RANK).fillna(0).astype("int8")

    order_key = c["order_id"]
    items = pd.DataFrame({
        "order_id": order_key,
        "line_no": order_key.groupby(order_key, sort=False).cumcount().astype("int64"),
        "product_id": c["product_id"],
        "quantity": c["quantity"],
        "unit_price": c["unit_price"],
        "source_row": np.arange(len(c), dtype="int64"),
        "row_hash": pd.util.hash_pandas_object(raw, index=False).to_numpy(),
    })

    oparts = c[["customer_id", "ordered_at"] + [x for x in _ORDER_COLS if x in c.columns and x != "status"]]
    orders = _first_by(order_key, oparts)
    ranks = rank.groupby(order_key.to_numpy(), sort=False).max()
    names = {v: k for k, v in _STATUS_RANK.items()}
    orders["status"] = ranks.reindex(orders.index).map(names).to_numpy()
    orders = orders.rename_axis("order_id").reset_index()

    pcols = [x for x in _PRODUCT_COLS if x in c.columns]
    products = (_first_by(c["product_id"], c[pcols]) if pcols
                else pd.DataFrame(index=pd.Index(c["product_id"].unique())))
    if "product_name" in pcols:
        # the most frequent description names the product (ties: first seen); the first one seen
        # is often a one-off stock note such as "mailout" in Online Retail
        names_ = c[["product_id", "product_name"]].dropna()
        counts = (names_.groupby(["product_id", "product_name"], sort=False, observed=True).size()
                  .rename("n").reset_index())
        best = counts.sort_values("n", ascending=False, kind="stable").drop_duplicates("product_id")
        products["product_name"] = best.set_index("product_id")["product_name"].reindex(products.index)
    products = products.rename_axis("product_id").reset_index()

    has_cust = c["customer_id"].notna()
    ccols = [x for x in _CUSTOMER_COLS if x in c.columns]
    cc = c.loc[has_cust]
    customers = (_first_by(cc["customer_id"], cc[ccols]) if ccols
                 else pd.DataFrame(index=pd.Index(cc["customer_id"].unique())))
    customers = customers.rename_axis("customer_id").reset_index()

    out = {
        "customers": customers,
        "products": products,
        "orders": orders,
        "order_items": items,
    }
    return {name: schema.coerce_table(df_, name, source=source) for name, df_ in out.items()}


def _read_options(mapping: ColumnMapping | None, read_options: Mapping[str, Any]) -> dict[str, Any]:
    bad = [k for k in read_options if k not in READ_OPTIONS]
    if bad:
        raise ParameterError(f"unknown read option(s) {bad}; use {list(READ_OPTIONS)}.",
                             allowed=list(READ_OPTIONS))
    opts = dict(mapping.read) if mapping else {}
    opts.update({k: v for k, v in read_options.items() if v is not None})  # explicit options win
    return opts


def _reader_kwargs(opts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: opts[k] for k in ("sep", "decimal", "encoding", "sheet_name") if k in opts}


def _canonical_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue  # sub-folders such as truth/ are not canonical tables
        stem = p.name.split(".")[0]
        if stem in schema.TABLES and _suffix(p) in SUPPORTED_EXTENSIONS:
            if stem in found:
                raise DataError(f"{folder}: two files for table '{stem}' ({found[stem].name}, {p.name}); "
                                "keep one.", source=str(folder), column=stem, example=p.name)
            found[stem] = p
    return found


def _projection(name: str, columns: Mapping[str, Sequence[str] | None] | None,
                inverse: Mapping[str, str]) -> list[str] | None:
    """File columns to read for table ``name``: the requested canonical columns plus the
    required ones, under the user's names (``None`` = every column)."""
    if columns is None or columns.get(name) is None:
        return None
    spec = schema.TABLES[name]
    unknown = [c for c in columns[name] if c not in spec.names]
    if unknown and not spec.extra_numeric:
        raise ParameterError(f"columns[{name!r}] names unknown column(s) {unknown}; table '{name}' has "
                             f"{spec.names}.", allowed=spec.names)
    canon = list(dict.fromkeys(list(spec.required) + list(columns[name])))
    user = {c: u for u, c in inverse.items()}
    return [user.get(c, c) for c in canon]


def _load_canonical(folder: Path, mapping: ColumnMapping | None, opts: dict[str, Any],
                    columns: Mapping[str, Sequence[str] | None] | None = None) -> tuple[dict, int]:
    if not folder.is_dir():
        raise FormatError(f"{folder}: canonical data is a folder of tables ({', '.join(schema.TABLES)}); "
                          "this is a file. Pass the folder, or data_format='lines' for a flat order-lines file.",
                          source=str(folder))
    files = _canonical_files(folder)
    if columns is not None:
        bad = [t for t in columns if t not in schema.TABLES]
        if bad:
            raise ParameterError(f"columns names unknown table(s) {bad}; tables are {list(schema.TABLES)}.",
                                 allowed=list(schema.TABLES))
    absent = [t for t in schema.REQUIRED_TABLES if t not in files]
    if absent:
        others = sorted(p.name for p in folder.iterdir())[:20]
        raise SchemaError(f"{folder}: canonical table file(s) {absent} missing (found: {others}). A canonical "
                          f"folder holds {list(schema.REQUIRED_TABLES)} as .parquet/.csv/.xlsx files named after "
                          "the tables.", source=str(folder), column=absent[0], n_rows=len(absent))
    inverse = {v: k for k, v in (mapping.columns if mapping else {}).items()}
    tables, sources, n_rows = {}, {}, 0
    for name, p in files.items():
        spec = schema.TABLES[name]
        ids = [c.name for c in spec.columns if c.kind == "id"]
        str_cols = [inverse.get(c, c) for c in ids] + [u for u, c in inverse.items() if c in ids]
        raw = _read_any(p, str_columns=str_cols, columns=_projection(name, columns, inverse), arrow_strings=True,
                        **_reader_kwargs(opts))
        n_rows += len(raw)
        if mapping and mapping.columns:
            raw = raw.rename(columns={u: c for u, c in inverse.items() if u in raw.columns})
        raw = _apply_value_maps(raw, mapping.value_maps if mapping else {})
        tables[name] = schema.coerce_table(raw, name, source=str(p), date_format=opts.get("date_format"),
                                           dayfirst=bool(opts.get("dayfirst", False)))
        del raw  # before the next file is read
        sources[name] = str(p)
    tables = {n: tables[n] for n in schema.TABLES if n in tables}  # the data model's order
    schema.validate_tables(tables, sources=sources)
    return tables, n_rows


def _one_table(path: Path, mapping: ColumnMapping | None, opts: dict[str, Any]) -> pd.DataFrame:
    raw = _read_any(path, **_reader_kwargs(opts))
    if len(raw) == 0:
        raise DataError(f"{path}: the file has a header but no rows.", source=str(path), n_rows=0)
    df = _rename(raw, mapping, str(path))
    return _apply_value_maps(df, mapping.value_maps if mapping else {})


def load_dataset(data: str | Path | None = None, data_format: str | None = None,
                 mapping: str | Path | Mapping[str, Any] | ColumnMapping | None = None, *,
                 columns: Mapping[str, Sequence[str] | None] | None = None,
                 **read_options: Any) -> Dataset:
    """Read the user's data (or the bundled sample) into a :class:`Dataset`.

    Parameters
    ----------
    data : str or Path, optional
        A file or a folder. ``None`` reads the bundled sample (``data/sample``, canonical).
    data_format : str, optional
        One of :data:`FORMATS`. ``None``: the mapping's ``format``, then ``'lines'`` if a
        mapping is given, else :func:`detect_format`.
    mapping : str, Path, dict or ColumnMapping, optional
        Column-mapping file (see the module docstring), or the bare name of a shipped one.
    columns : dict, optional
        Column projection for ``canonical`` data: table name → canonical columns to read (the
        table's required columns are always read; optional canonical columns not read come
        back empty, extra columns are dropped). Tables not named are read whole. E.g.
        ``{"orders": ["status"], "order_items": []}`` reads what RFM needs from a wide export.
    **read_options
        ``sep``, ``decimal``, ``encoding``, ``date_format``, ``dayfirst``, ``sheet_name``; they
        override the mapping's ``read:`` section.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError, SchemaError, MappingError, FormatError
        Each names the file, column, number of rows and first bad value, and suggests a fix.

    Examples
    --------
    >>> ds = load_dataset()                                  # doctest: +SKIP
    >>> ds.format, sorted(ds.tables)                         # doctest: +SKIP
    ('canonical', ['customers', 'order_items', 'orders', 'products', 'service_contacts', ...])
    >>> ds = load_dataset("online_retail.parquet", mapping="online_retail")  # doctest: +SKIP
    """
    cmap = load_mapping(mapping) if mapping is not None else None
    opts = _read_options(cmap, read_options)
    if data_format is not None and data_format not in FORMATS:
        raise ParameterError(f"data_format {data_format!r} is not one of {list(FORMATS)}.", allowed=list(FORMATS))
    if data is None:
        if not (paths.SAMPLE_DIR / "orders.parquet").exists():
            raise DataError(f"the bundled sample data is missing in {paths.SAMPLE_DIR}; run `ecrm sample` "
                            "to regenerate it, or pass data=...", source=str(paths.SAMPLE_DIR))
        tables, n = _load_canonical(paths.SAMPLE_DIR, cmap, opts, columns)
        return Dataset("canonical", "bundled sample", tables=tables, mapping=cmap, n_input_rows=n)
    path = Path(data)
    if not path.exists():
        raise DataError(f"{data}: file not found (looked at {path.resolve()}). Check the path and the current "
                        "folder, or pass an absolute path.", source=str(data))
    fmt = data_format or (cmap.format if cmap else None) or ("lines" if cmap and not path.is_dir() else None) \
        or detect_format(path)
    if fmt == "canonical":
        tables, n = _load_canonical(path, cmap, opts, columns)
        return Dataset(fmt, str(data), tables=tables, mapping=cmap, n_input_rows=n)
    if columns is not None:
        raise ParameterError(f"columns (column projection) applies to canonical data; {data} is {fmt} data. "
                             "Drop the columns argument.", allowed=["canonical"])
    if path.is_dir():
        raise FormatError(f"{data}: is a folder, but {fmt} data is one file. Pass the file, or "
                          "data_format='canonical' for a folder of canonical tables.", source=str(data))
    if fmt == "lines":
        inverse_ids = [cmap.columns.get(c, c) for c in ("order_id", "customer_id", "product_id")] if cmap \
            else ["order_id", "customer_id", "product_id"]
        raw = _read_any(path, str_columns=inverse_ids, arrow_strings=True, **_reader_kwargs(opts))
        if cmap is None:
            cmap = ColumnMapping(format="lines", read=opts, source="(no mapping)")
        elif opts != cmap.read:
            cmap = ColumnMapping(cmap.format, opts, cmap.columns, cmap.rules, cmap.value_maps, cmap.source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # date-format inference chatter
            tables = split_order_lines(raw, cmap, str(data))
        # same hard checks as canonical data (value ranges, unique keys, no missing order ids)
        schema.validate_tables(tables, sources={name: str(data) for name in tables})
        return Dataset(fmt, str(data), tables=tables, mapping=cmap, n_input_rows=len(raw))
    if fmt == "baskets":
        baskets = read_baskets(path, sep=opts.get("sep") or ",", encoding=opts.get("encoding", "utf-8"))
        return Dataset(fmt, str(data), baskets=baskets, mapping=cmap, n_input_rows=len(baskets))
    frame = _one_table(path, cmap, opts)
    return Dataset(fmt, str(data), frame=frame, mapping=cmap, n_input_rows=len(frame))


__all__ = [
    "FORMATS", "ColumnMapping", "Dataset", "load_dataset", "detect_format", "read_table", "read_baskets",
    "load_mapping", "split_order_lines", "LINE_COLUMNS", "LINE_REQUIRED",
]
