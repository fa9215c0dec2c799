"""The survey's constructs: which items measure what, and the roles the constructs play.

A :class:`ConstructSpec` comes from a YAML file, a dict, or item names like ``trust_1``
(:func:`load_constructs`, :func:`resolve_constructs`); :func:`survey_from_dataset` picks the
survey (and, for canonical data, the orders) out of a loaded dataset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..exceptions import AnalysisError, ParameterError
from ..paths import MAPPINGS_DIR

#: Default constructs of the bundled sample survey (item-name prefix -> construct).
SAMPLE_PREFIXES = {
    "trust": "trust", "quality": "service_quality", "cost": "perceived_cost", "habit": "habit",
    "ent": "entertainment", "sat": "satisfaction", "loy": "loyalty",
}

_ITEM_RE = re.compile(r"^(?P<prefix>.+?)_?(?P<num>\d+)(?P<rev>_r)?$")


@dataclass
class ConstructSpec:
    """A survey's constructs and the roles they play in the loyalty model.

    Attributes
    ----------
    constructs : dict
        Construct name -> list of item columns.
    reverse_items : list of str
        Items to reverse-code (``min + max - x``).
    scale_min, scale_max : float or None
        Answer scale; ``None`` means inferred from the data.
    outcome, mediator : str
        Outcome (loyalty) and mediator (satisfaction) construct names.
    drivers : list of str
        Constructs that drive the mediator (and may also act directly on the outcome).
    direct_drivers : list of str
        Constructs that act on the outcome only.
    labels : dict
        Optional display labels.
    source : str
        Where the specification came from.
    """

    constructs: dict[str, list[str]]
    reverse_items: list[str] = field(default_factory=list)
    scale_min: float | None = None
    scale_max: float | None = None
    outcome: str = "loyalty"
    mediator: str = "satisfaction"
    drivers: list[str] = field(default_factory=list)
    direct_drivers: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    source: str = "inline"

    def label(self, name: str) -> str:
        return self.labels.get(name, name.replace("_", " "))


def infer_constructs(columns: Iterable[str], prefixes: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Group item columns named ``<prefix>_<n>`` (optionally ``_r`` for reverse-coded) by prefix.

    Parameters
    ----------
    columns : iterable of str
        Column names; non-item columns (ids, dates) are ignored.
    prefixes : mapping, optional
        Prefix -> construct name (default :data:`SAMPLE_PREFIXES`; unknown prefixes keep their name).

    Returns
    -------
    dict
        Construct -> items, in column order; only groups with at least two items.
    """
    prefixes = dict(SAMPLE_PREFIXES if prefixes is None else prefixes)
    groups: dict[str, list[str]] = {}
    for col in columns:
        if col in ("respondent_id", "customer_id", "answered_at"):
            continue
        m = _ITEM_RE.match(str(col))
        if not m:
            continue
        name = prefixes.get(m.group("prefix"), m.group("prefix"))
        groups.setdefault(name, []).append(str(col))
    return {k: v for k, v in groups.items() if len(v) >= 2}


def read_constructs_file(path: str | Path) -> dict[str, Any]:
    """The raw contents of a user's YAML constructs file (see :func:`load_constructs` for its shape).

    The only place the loyalty analysis reads a file: the constructs mapping is user input, like
    the column mappings that :mod:`ecrm_research.data.io` reads.
    """
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"constructs file {str(path)!r} not found. Pass a YAML file with a "
                             f"'constructs:' section or an inline dict.")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_constructs(spec: str | Path | Mapping[str, Any] | None = None, *, columns: Iterable[str] | None = None,
                    **overrides: Any) -> ConstructSpec:
    """Read a construct specification from a YAML file, a dict, or infer it from item names.

    Parameters
    ----------
    spec : str, Path, dict or None
        * path to a YAML file with ``constructs:`` (name -> items) and optionally
          ``reverse_items``, ``scale: {min, max}``, ``roles: {outcome, mediator, drivers,
          direct_drivers}``, ``labels``;
        * a dict of that shape, or a plain ``{construct: [items]}`` dict;
        * ``None``: constructs are inferred from ``columns`` named ``<prefix>_<n>[_r]``
          (the sample survey's convention; items ending in ``_r`` are reverse-coded).
    columns : iterable of str, optional
        The survey's columns (needed when ``spec`` is None).
    **overrides
        Non-None values replace the file's (``reverse_items``, ``scale_min``, ``scale_max``,
        ``outcome``, ``mediator``, ``drivers``, ``direct_drivers``).

    Returns
    -------
    ConstructSpec
        With default roles filled in: drivers = every construct that is neither outcome nor
        mediator nor a direct driver.
    """
    source = "inline"
    if spec is None:
        if columns is None:
            raise ParameterError("constructs=None needs the survey's columns to infer the constructs from "
                                 "item names like 'trust_1'. Pass constructs={'trust': ['t1', 't2'], ...} "
                                 "or a YAML file.")
        cols = list(columns)
        raw: dict[str, Any] = {"constructs": infer_constructs(cols),
                               "reverse_items": [c for c in cols if str(c).endswith("_r")]}
        source = "inferred from item names"
        if not raw["constructs"]:
            raise ParameterError(f"No item columns named like 'trust_1' found among {cols[:20]}. Pass "
                                 f"constructs= (name -> items) or a YAML file such as "
                                 f"data/mappings/ecsi_mobi_constructs.yaml.")
    elif isinstance(spec, (str, Path)):
        raw = read_constructs_file(spec)
        source = str(Path(spec))
    else:
        raw = dict(spec)
    if "constructs" not in raw:
        raw = {"constructs": raw}
    constructs = {str(k): [str(i) for i in (v if isinstance(v, (list, tuple)) else [v])]
                  for k, v in dict(raw["constructs"]).items()}
    roles = dict(raw.get("roles") or {})
    scale = dict(raw.get("scale") or {})
    out = ConstructSpec(
        constructs=constructs,
        reverse_items=[str(i) for i in (raw.get("reverse_items") or [])],
        scale_min=scale.get("min"), scale_max=scale.get("max"),
        outcome=roles.get("outcome", "loyalty"), mediator=roles.get("mediator", "satisfaction"),
        drivers=list(roles.get("drivers") or []), direct_drivers=list(roles.get("direct_drivers") or []),
        labels=dict(raw.get("labels") or {}), source=source,
    )
    for key, value in overrides.items():
        if value is None:
            continue
        if not hasattr(out, key):
            raise ParameterError(f"unknown construct-spec option {key!r}",
                                 allowed=["reverse_items", "scale_min", "scale_max", "outcome", "mediator",
                                          "drivers", "direct_drivers"])
        setattr(out, key, list(value) if isinstance(value, (list, tuple)) else value)
    for role in ("outcome", "mediator"):
        name = getattr(out, role)
        if name not in out.constructs:
            raise ParameterError(f"{role} construct {name!r} is not among the constructs "
                                 f"{list(out.constructs)}. Pass {role}='<one of them>'.",
                                 allowed=list(out.constructs))
    if not out.drivers and not (overrides.get("drivers") is not None):
        out.drivers = [c for c in out.constructs
                       if c not in (out.outcome, out.mediator) and c not in out.direct_drivers]
    unknown = [c for c in out.drivers + out.direct_drivers if c not in out.constructs]
    if unknown:
        raise ParameterError(f"driver(s) {unknown} are not constructs; known: {list(out.constructs)}",
                             allowed=list(out.constructs))
    return out


def resolve_constructs(constructs: str | Path | Mapping[str, Any] | None, columns: Iterable[str],
                       **overrides: Any) -> ConstructSpec:
    """The notebook's rule for ``constructs=None``: the sample survey's mapping
    (``data/mappings/sample_constructs.yaml``) when the survey has its items, otherwise
    constructs inferred from item names ``<prefix>_<n>[_r]``. Otherwise :func:`load_constructs`."""
    cols = list(columns)
    if constructs is None:
        sample_yaml = MAPPINGS_DIR / "sample_constructs.yaml"
        if sample_yaml.exists():
            spec = load_constructs(sample_yaml, **overrides)
            if all(i in cols for its in spec.constructs.values() for i in its):
                return spec
        return load_constructs(None, columns=cols, **overrides)
    return load_constructs(constructs, **overrides)


def survey_from_dataset(ds: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The survey frame (and the orders, for canonical data) of an :class:`ecrm_research.data.io.Dataset`.

    Raises
    ------
    FormatError
        The dataset is neither ``survey`` nor ``canonical``.
    AnalysisError
        Canonical data without a ``survey_responses`` table.
    """
    ds.require(["survey", "canonical"], "loyalty-driver")
    if ds.format == "survey":
        return ds.frame, None
    survey = ds.tables.get("survey_responses")
    if survey is None or len(survey) == 0:
        raise AnalysisError(f"{ds.source}: the canonical data has no survey_responses table, so there are no "
                            f"answers to analyse. Add survey_responses.parquet/csv (respondent_id, customer_id, "
                            f"answered_at, one column per item) or pass a survey file with data_format='survey'.")
    return survey, ds.tables.get("orders")
