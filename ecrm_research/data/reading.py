"""Reading one file of the user's data: CSV/text, Parquet, Excel and basket files.

Every reader fails with a :class:`~ecrm_research.exceptions.DataError` (or
:class:`~ecrm_research.exceptions.FormatError`) that names the file and says what to do, never
with a pandas traceback: missing or empty file, unsupported extension, wrong encoding (with the
byte position), unparsable text, unreadable Parquet or Excel.

Public names: :func:`read_table`, :func:`read_baskets`, :func:`read_tabular_file` (the reader
behind :func:`read_table`, with ids kept as text), :func:`read_header`, :func:`sniff_sep`,
:func:`file_suffix`, :func:`check_file` and the ``*_EXTENSIONS`` constants.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import DataError, FormatError
from . import schema

#: Extensions read by :func:`read_table` (compression suffixes .gz/.bz2/.zip/.xz allowed on text).
TEXT_EXTENSIONS = (".csv", ".txt", ".tsv", ".dat")
PARQUET_EXTENSIONS = (".parquet", ".pq")
EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls")
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS + PARQUET_EXTENSIONS + EXCEL_EXTENSIONS
_COMPRESSION = (".gz", ".bz2", ".zip", ".xz")


def file_suffix(path: Path) -> str:
    """Lower-case extension that says how to read `path`, ignoring a compression suffix (``.csv.gz`` -> ``.csv``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def check_file(path: Path) -> str:
    """Fail clearly unless `path` is a readable, non-empty file of a supported type; return its extension."""
    if not path.exists():
        raise DataError(f"{path}: file not found (looked at {path.resolve()}). Check the path and the "
                        "current folder, or pass an absolute path.", source=str(path))
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file. Pass a file, or use data_format='canonical' "
                        "for a folder of canonical tables.", source=str(path))
    ext = file_suffix(path)
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
    """Field separator of a text file, sniffed among ``, ; TAB |`` in its first 64 kB."""
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


def read_tabular_file(path: str | Path, *, sep: str | None = None, decimal: str = ".", encoding: str = "utf-8",
              sheet_name: Any = 0, str_columns: Sequence[str] = (), columns: Sequence[str] | None = None,
              arrow_strings: bool = False) -> pd.DataFrame:
    """Read one tabular file (:func:`read_table`); ``str_columns`` are kept as text (ids keep leading zeros).

    ``columns`` (optional) projects: only those of the file's columns are read (Parquet reads
    only their column chunks; CSV parses only them). ``arrow_strings`` reads Parquet text as
    ``string[pyarrow]``.
    """
    path = Path(path)
    ext = check_file(path)
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
        check_unique_columns(_raw_header(path, sep, encoding), path)
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


def _raw_header(path: Path, sep: str, encoding: str) -> list[Any]:
    """The first line of a text table as written (pandas renames a repeated name 'x' to 'x.1')."""
    first = pd.read_csv(path, sep=sep, encoding=encoding, header=None, nrows=1, dtype=str)
    return list(first.iloc[0]) if len(first) else []


def check_unique_columns(names: Sequence[Any], path: Path | str) -> None:
    """Raise :class:`DataError` when a column name appears twice in a file's header.

    pandas would silently rename the second ``Price`` to ``Price.1`` and the analysis would
    use whichever the mapping names, ignoring the other.
    """
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name is None or (isinstance(name, float) and pd.isna(name)):
            continue
        if str(name) in seen:
            j = seen[str(name)]
            raise DataError(
                f"{path}: column name {str(name)!r} appears more than once in the header (columns {j + 1} and "
                f"{i + 1}); which one is meant cannot be told. Rename or remove one of them in the file so "
                "every column has its own name.", source=str(path), column=str(name), example=str(name))
        seen[str(name)] = i


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
        names = pq.read_schema(path).names
        check_unique_columns(names, path)
        if columns is not None:
            wanted = set(columns)
            columns = [c for c in names if c in wanted]
        table = pq.read_table(path, columns=columns)
        return table.to_pandas(types_mapper=_arrow_types if arrow_strings else None, self_destruct=True)
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid subclasses ValueError
        raise DataError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]}). "
                        "Re-export it, or save it as CSV.", source=str(path)) from None


def _read_excel(path: Path, sheet_name: Any, str_columns: Sequence[str]) -> pd.DataFrame:
    if file_suffix(path) == ".xls":
        try:
            import xlrd  # noqa: F401  # optional dependency: only checks that old .xls files can be read
        except ImportError:
            raise FormatError(f"{path}: old .xls files need the 'xlrd' package, which is not installed. "
                              "Save the sheet as .xlsx or CSV.", source=str(path)) from None
    try:
        head = pd.read_excel(path, sheet_name=sheet_name, header=None, nrows=1)
        check_unique_columns(list(head.iloc[0]) if len(head) else [], path)
        return pd.read_excel(path, sheet_name=sheet_name, dtype={c: str for c in str_columns} or None)
    except DataError:
        raise
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
    return read_tabular_file(path, sep=sep, decimal=decimal, encoding=encoding, sheet_name=sheet_name, columns=columns)


def read_baskets(path: str | Path, *, sep: str = ",", encoding: str = "utf-8",
                 counts: dict[str, int] | None = None) -> list[list[str]]:
    """Read a basket file: one transaction per line, items separated by ``sep``.

    Items are kept exactly as written, including leading/trailing spaces (as R's arules does:
    ``"cream cheese "`` stays distinct from ``"cream cheese"``); only the line end is removed.
    Blank items (empty or only whitespace: ``a,,b``, ``a, ,b``) are dropped, and so are lines
    with no item left (blank lines); an item repeated within a line is kept once, at its first
    position. Each is counted in `counts`, so nothing is dropped unseen.

    Parameters
    ----------
    path : str or Path
        Text file (no header).
    sep : str
        Item separator.
    encoding : str
        Text encoding.
    counts : dict, optional
        Filled with what was dropped: ``blank_lines`` (lines without an item, the file's final
        line end excepted), ``blank_items`` (empty or whitespace-only items on lines that have
        items) and ``repeated_items`` (second and later copies of an item within a line).

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
    check_file(path)
    try:
        with open(path, encoding=encoding, newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, exc) from None
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}; use e.g. 'utf-8' or 'latin-1'.",
                        source=str(path), example=encoding) from None
    baskets, n_blank_lines, n_blank_items, n_repeated = [], 0, 0, 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the line end of the last line, not a blank line
    for line in lines:
        line = line[:-1] if line.endswith("\r") else line
        fields = line.split(sep)
        items = [it for it in fields if it.strip() != ""]
        if not items:
            n_blank_lines += 1
            continue
        distinct = list(dict.fromkeys(items))
        n_blank_items += len(fields) - len(items)
        n_repeated += len(items) - len(distinct)
        baskets.append(distinct)
    if counts is not None:
        counts.update(blank_lines=n_blank_lines, blank_items=n_blank_items, repeated_items=n_repeated)
    if not baskets:
        raise DataError(f"{path}: no transactions found (only blank lines).", source=str(path), n_rows=0)
    return baskets


def read_header(path: Path, encoding: str = "utf-8") -> list[str]:
    """Column names of a table file, or ``[]`` when it cannot be read (detection is best effort)."""
    ext = file_suffix(path)
    try:
        if ext in PARQUET_EXTENSIONS:
            return list(pq.read_schema(path).names)
        if ext in EXCEL_EXTENSIONS:
            return [str(c) for c in pd.read_excel(path, nrows=0).columns]
        return [str(c) for c in pd.read_csv(path, sep=sniff_sep(path, encoding, ext, "."), nrows=0,
                                            encoding=encoding).columns]
    except Exception:  # noqa: BLE001 - detection is best effort; reading reports the real error
        return []
