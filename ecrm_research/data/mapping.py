"""Column-mapping files: the user's column names, status rules and value maps.

A mapping (YAML; ``data/mappings/online_retail.yaml`` is the worked example) renames the
user's columns to canonical names, gives reader options, the rules that mark cancelled and
returned order lines, and maps user values to canonical ones; see :mod:`ecrm_research.data.io`
for the file layout and the rule language.

Public names: :class:`ColumnMapping`, :func:`load_mapping`, :func:`rename_columns`,
:func:`apply_value_maps`, :func:`condition_mask` and the vocabulary constants
(:data:`READ_OPTIONS`, :data:`MAPPING_KEYS`, :data:`RULE_KEYS`, :data:`CONDITION_OPS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .. import paths
from ..exceptions import MappingError
from . import schema
from .formats import FORMATS, LINE_COLUMNS

#: Options accepted in ``read:`` and as ``**read_options`` of :func:`~ecrm_research.data.dataset.load_dataset`.
READ_OPTIONS = ("sep", "decimal", "encoding", "date_format", "dayfirst", "sheet_name")
MAPPING_KEYS = ("format", "read", "columns", "rules", "value_maps")
RULE_KEYS = ("cancelled_if", "returned_if", "non_product_codes", "conflicting_orders", "order_time_tolerance")
#: what to do with an order id whose lines name two customers or two timestamps (``rules.conflicting_orders``)
CONFLICT_ACTIONS = ("error", "quarantine")
CONDITION_OPS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "startswith", "endswith", "isnull")


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
        ``cancelled_if``, ``returned_if`` conditions, ``non_product_codes``, and what to do with
        an order id whose lines disagree: ``conflicting_orders`` (``error``, the default, or
        ``quarantine``) and ``order_time_tolerance`` (timestamps of one order this close are one
        time; default ``0s``).
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


def _check_conflict_rules(rules: Mapping[str, Any], where: str) -> None:
    """``rules.conflicting_orders`` is one of :data:`CONFLICT_ACTIONS`; ``rules.order_time_tolerance``
    a duration such as ``1min`` or ``90s``."""
    action = rules.get("conflicting_orders")
    if action is not None and action not in CONFLICT_ACTIONS:
        raise MappingError(f"{where}: rules.conflicting_orders is {action!r}; use one of {list(CONFLICT_ACTIONS)} "
                           "('quarantine' sets orders with two customers or timestamps aside).",
                           source=where, column="conflicting_orders", example=action)
    tol = rules.get("order_time_tolerance")
    if tol is not None:
        try:
            ok = pd.Timedelta(str(tol)) >= pd.Timedelta(0)
        except ValueError:
            ok = False
        if not ok:
            raise MappingError(f"{where}: rules.order_time_tolerance is {tol!r}; give a duration such as '1min', "
                               "'90s' or '0s' (timestamps of one order further apart are a conflict).",
                               source=where, column="order_time_tolerance", example=tol)


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
    raw, where = _read_raw_mapping(path_or_dict)
    _check_keys(raw, where)
    fmt = raw.get("format")
    read = dict(raw.get("read") or {})
    _check_names(list(read), READ_OPTIONS, where, "read", "unknown read option(s) {bad}; use {allowed}.")
    columns = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
    targets = _valid_targets(fmt)
    if targets is not None:
        _check_names(list(columns), targets, where, None,
                     f"unknown canonical name(s) {{bad}} under 'columns'. Valid names for "
                     f"{fmt or 'lines/canonical'} data: {{allowed}}. Write 'canonical_name: YourColumn'.")
    rules = dict(raw.get("rules") or {})
    _check_names(list(rules), RULE_KEYS, where, "rules", "unknown rule(s) {bad}; use {allowed}.")
    for name in ("cancelled_if", "returned_if"):
        if rules.get(name) is not None:
            _check_condition(rules[name], where, name)
    _check_conflict_rules(rules, where)
    value_maps = {str(k): dict(v or {}) for k, v in (raw.get("value_maps") or {}).items()}
    if targets is not None:
        _check_names(list(value_maps), targets, where, None,
                     "value_maps names unknown canonical column(s) {bad}; valid: {allowed}.")
    return ColumnMapping(format=fmt, read=read, columns=columns, rules=rules, value_maps=value_maps,
                         source=where)


def _read_raw_mapping(path_or_dict: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The mapping as a plain dict and where it came from (quoted in errors): a dict, or a YAML file."""
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict), "column mapping"
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
    return raw, where


def _check_keys(raw: Mapping[str, Any], where: str) -> None:
    """Top-level keys and ``format`` of a raw mapping."""
    unknown = [k for k in raw if k not in MAPPING_KEYS]
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {unknown}; a column mapping has the keys {list(MAPPING_KEYS)}.",
                           source=where, column=str(unknown[0]), example=unknown[0])
    fmt = raw.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise MappingError(f"{where}: format {fmt!r} is not one of {list(FORMATS)}.", source=where,
                           column="format", example=fmt)


def _check_names(names: list[str], allowed: tuple[str, ...], where: str, column: str | None, message: str) -> None:
    """Raise :class:`MappingError` for the first of `names` not in `allowed`; `message` gets
    ``{bad}`` and ``{allowed}`` filled in; the error's column is `column` or the bad name."""
    bad = [k for k in names if k not in allowed]
    if bad:
        raise MappingError(f"{where}: " + message.format(bad=bad, allowed=list(allowed)),
                           source=where, column=column or bad[0], example=bad[0])


def apply_value_maps(df: pd.DataFrame, value_maps: Mapping[str, Mapping[Any, Any]]) -> pd.DataFrame:
    """Replace user values by canonical ones; unmapped values are left for validation to report."""
    for col, vmap in value_maps.items():
        if col in df.columns and vmap:
            as_text = df[col].astype("string").str.strip()
            keys = {str(k).strip(): v for k, v in vmap.items()}
            mapped = as_text.map(keys).astype(object)
            df[col] = mapped.where(mapped.notna(), df[col].astype(object))
    return df


def rename_columns(raw: pd.DataFrame, mapping: ColumnMapping | None, source: str) -> pd.DataFrame:
    """Canonical-named frame: mapped columns renamed, other columns kept unchanged.

    Raises :class:`MappingError` when the mapping names a column the file does not have."""
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


def condition_mask(raw: pd.DataFrame, renamed: pd.DataFrame, cond: Any, source: str, name: str) -> pd.Series:
    """Rows where a ``cancelled_if``/``returned_if`` rule holds (a list of conditions: any of them).

    A condition's ``column`` is looked up among the user's columns (`raw`), then the canonical
    ones (`renamed`); all its operators must hold.
    """
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
            if op != "column":
                m &= pd.Series(_operator_hit(s, op, val), index=raw.index).fillna(False).astype(bool)
        total |= m
    return total


def _operator_hit(s: pd.Series, op: str, val: Any) -> Any:
    """Where one condition operator (see :data:`CONDITION_OPS`) holds on column `s`."""
    if op in ("startswith", "endswith"):
        txt = s.astype("string")
        return txt.str.startswith(str(val)) if op == "startswith" else txt.str.endswith(str(val))
    if op in ("lt", "le", "gt", "ge"):
        num = pd.to_numeric(s, errors="coerce")
        return getattr(num, op)(float(val))
    if op in ("eq", "ne"):
        hit = s.astype("string") == str(val)
        return ~hit if op == "ne" else hit
    if op in ("in", "not_in"):
        vals = [str(v) for v in (val if isinstance(val, (list, tuple)) else [val])]
        hit = s.astype("string").isin(vals)
        return ~hit if op == "not_in" else hit
    return s.isna() if val else s.notna()  # isnull
