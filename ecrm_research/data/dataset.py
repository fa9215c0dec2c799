"""The user's data after reading: :class:`Dataset` and :func:`load_dataset`.

:func:`load_dataset` decides the data format (explicit, the mapping's, or detected), reads the
file(s) and returns a :class:`Dataset`: canonical tables (``canonical`` folders, ``lines``
files split by :func:`~ecrm_research.data.lines.split_order_lines`), one frame (``customers``,
``survey``) or transactions (``baskets``).

Public names: :class:`Dataset`, :func:`load_dataset`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import paths
from ..exceptions import DataError, FormatError, ParameterError, SchemaError
from . import schema
from .formats import FORMATS, detect_format
from .lines import split_order_lines
from .mapping import READ_OPTIONS, ColumnMapping, apply_value_maps, load_mapping, rename_columns
from .reading import SUPPORTED_EXTENSIONS, file_suffix, read_baskets, read_tabular_file


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
    notes : list of str
        Decisions taken from the values while reading, with their evidence (e.g. dates read as
        day/month because some first field is above 12); shown in the quality report.
    basket_exclusions : dict of str to int
        For ``baskets``: what reading left out, counted (``blank_lines``, ``blank_items``,
        ``repeated_items``; see :func:`~ecrm_research.data.reading.read_baskets`).
    """

    format: str
    source: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    frame: pd.DataFrame | None = None
    baskets: list[list[str]] | None = None
    mapping: ColumnMapping | None = None
    n_input_rows: int = 0
    notes: list[str] = field(default_factory=list)
    basket_exclusions: dict[str, int] = field(default_factory=dict)

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


def _read_options(mapping: ColumnMapping | None, read_options: Mapping[str, Any]) -> dict[str, Any]:
    """Reader options: the mapping's ``read:`` section, overridden by explicit options."""
    bad = [k for k in read_options if k not in READ_OPTIONS]
    if bad:
        raise ParameterError(f"unknown read option(s) {bad}; use {list(READ_OPTIONS)}.",
                             allowed=list(READ_OPTIONS))
    opts = dict(mapping.read) if mapping else {}
    opts.update({k: v for k, v in read_options.items() if v is not None})  # explicit options win
    return opts


def _reader_kwargs(opts: Mapping[str, Any]) -> dict[str, Any]:
    """The options the file readers take (``date_format``/``dayfirst`` go to the casts)."""
    return {k: opts[k] for k in ("sep", "decimal", "encoding", "sheet_name") if k in opts}


def _canonical_files(folder: Path) -> dict[str, Path]:
    """Canonical table name -> its file in `folder` (other files and sub-folders ignored)."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue  # sub-folders such as truth/ are not canonical tables
        stem = p.name.split(".")[0]
        if stem in schema.TABLES and file_suffix(p) in SUPPORTED_EXTENSIONS:
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


def _dayfirst(opts: Mapping[str, Any]) -> bool | None:
    """The ``dayfirst`` read option; ``None`` when not stated (the values decide, or it is an error)."""
    return None if opts.get("dayfirst") is None else bool(opts["dayfirst"])


def _load_canonical(folder: Path, mapping: ColumnMapping | None, opts: dict[str, Any],
                    columns: Mapping[str, Sequence[str] | None] | None = None,
                    notes: list[str] | None = None) -> tuple[dict, int]:
    """Read, cast and validate the canonical tables of a folder; also the rows read."""
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
        raw = read_tabular_file(p, str_columns=str_cols, columns=_projection(name, columns, inverse),
                                arrow_strings=True, **_reader_kwargs(opts))
        n_rows += len(raw)
        if mapping and mapping.columns:
            raw = raw.rename(columns={u: c for u, c in inverse.items() if u in raw.columns})
        raw = apply_value_maps(raw, mapping.value_maps if mapping else {})
        tables[name] = schema.coerce_table(raw, name, source=str(p), date_format=opts.get("date_format"),
                                           dayfirst=_dayfirst(opts), notes=notes)
        del raw  # before the next file is read
        sources[name] = str(p)
    tables = {n: tables[n] for n in schema.TABLES if n in tables}  # the data model's order
    schema.validate_tables(tables, sources=sources)
    return tables, n_rows


def _one_table(path: Path, mapping: ColumnMapping | None, opts: dict[str, Any]) -> pd.DataFrame:
    """A ``customers``/``survey`` file read as one frame, renamed and value-mapped."""
    raw = read_tabular_file(path, **_reader_kwargs(opts))
    if len(raw) == 0:
        raise DataError(f"{path}: the file has a header but no rows.", source=str(path), n_rows=0)
    df = rename_columns(raw, mapping, str(path))
    return apply_value_maps(df, mapping.value_maps if mapping else {})


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
        notes: list[str] = []
        tables, n = _load_canonical(paths.SAMPLE_DIR, cmap, opts, columns, notes)
        return Dataset("canonical", "bundled sample", tables=tables, mapping=cmap, n_input_rows=n, notes=notes)
    path = Path(data)
    if not path.exists():
        raise DataError(f"{data}: file not found (looked at {path.resolve()}). Check the path and the current "
                        "folder, or pass an absolute path.", source=str(data))
    fmt = data_format or (cmap.format if cmap else None) or ("lines" if cmap and not path.is_dir() else None) \
        or detect_format(path)
    if fmt == "canonical":
        notes = []
        tables, n = _load_canonical(path, cmap, opts, columns, notes)
        return Dataset(fmt, str(data), tables=tables, mapping=cmap, n_input_rows=n, notes=notes)
    if columns is not None:
        raise ParameterError(f"columns (column projection) applies to canonical data; {data} is {fmt} data. "
                             "Drop the columns argument.", allowed=["canonical"])
    if path.is_dir():
        raise FormatError(f"{data}: is a folder, but {fmt} data is one file. Pass the file, or "
                          "data_format='canonical' for a folder of canonical tables.", source=str(data))
    if fmt == "lines":
        return _load_lines(path, str(data), cmap, opts)
    if fmt == "baskets":
        counts: dict[str, int] = {}
        baskets = read_baskets(path, sep=opts.get("sep") or ",", encoding=opts.get("encoding", "utf-8"),
                               counts=counts)
        return Dataset(fmt, str(data), baskets=baskets, mapping=cmap, n_input_rows=len(baskets),
                       basket_exclusions=counts)
    frame = _one_table(path, cmap, opts)
    return Dataset(fmt, str(data), frame=frame, mapping=cmap, n_input_rows=len(frame))


def _load_lines(path: Path, source: str, cmap: ColumnMapping | None, opts: dict[str, Any]) -> Dataset:
    """Read a flat order-lines file and split it into checked canonical tables."""
    inverse_ids = [cmap.columns.get(c, c) for c in ("order_id", "customer_id", "product_id")] if cmap \
        else ["order_id", "customer_id", "product_id"]
    raw = read_tabular_file(path, str_columns=inverse_ids, arrow_strings=True, **_reader_kwargs(opts))
    if cmap is None:
        cmap = ColumnMapping(format="lines", read=opts, source="(no mapping)")
    elif opts != cmap.read:
        cmap = ColumnMapping(cmap.format, opts, cmap.columns, cmap.rules, cmap.value_maps, cmap.source)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # date-format inference chatter
        tables = split_order_lines(raw, cmap, source, notes=notes)
    # same hard checks as canonical data (value ranges, unique keys, no missing order ids)
    schema.validate_tables(tables, sources={name: source for name in tables})
    return Dataset("lines", source, tables=tables, mapping=cmap, n_input_rows=len(raw), notes=notes)
