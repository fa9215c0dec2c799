"""Pre-flight of ``ecrm run``: everything the user gave is checked before any kernel starts.

:func:`preflight` resolves the user's paths once against the caller's folder, checks every
parameter value against the notebooks' declarations
(:func:`~ecrm_research.report.notebooks.check_parameter_values`), checks the output folder,
reads and validates the data and the mapping once through the data layer
(:func:`~ecrm_research.data.dataset.load_dataset`), and decides which analyses fit the data.
An analysis whose input is absent (a survey for ``loyalty``; order lines for ``segmentation`` and
``customer_view``) is *skipped* with the reason and how to provide the data when the run is ``all``, and is an
error (:class:`~ecrm_research.exceptions.FormatError`) when it was named.

Errors are :class:`~ecrm_research.exceptions.EcrmError` (the CLI prints them and exits 2).
This module reads data (pandas), so the CLI imports it only when ``ecrm run`` runs.

Public names: :class:`Preflight`, :func:`preflight`, :func:`accepted_formats`, :func:`check_data`,
:data:`ACCEPTED_FORMATS`, :data:`HOW_TO_PROVIDE`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paths
from ..data.dataset import Dataset, load_dataset
from ..exceptions import DataError, FormatError, ParameterError
from ..prep.churn import event_coding
from .notebooks import (
    check_output_folder,
    check_parameter_values,
    check_run_parameters,
    notebook_parameters,
    notebook_path,
    resolve_names,
    resolve_path_parameters,
)

__all__ = ["ACCEPTED_FORMATS", "HOW_TO_PROVIDE", "Preflight", "accepted_formats", "check_data", "preflight"]

#: Data formats each analysis reads (``Dataset.require`` in its notebook); a notebook may declare its
#: own in ``metadata.ecrm.data_formats``. Notebooks in neither (course or test notebooks) are not checked.
ACCEPTED_FORMATS: dict[str, tuple[str, ...]] = {
    "overview": ("canonical", "lines"),
    "association": ("canonical", "lines", "baskets"),
    "churn": ("canonical", "lines", "customers"),
    "loyalty": ("survey", "canonical"),
    "segmentation": ("canonical", "lines"),
    "customer_view": ("canonical", "lines"),
}
#: What each analysis needs and how to give it, for the skip reasons and errors.
HOW_TO_PROVIDE: dict[str, str] = {
    "overview": "order data: pass --data orders.csv --mapping my_mapping.yaml (an order-lines file) "
                "or --data my_folder/ (canonical tables)",
    "association": "baskets: pass --data orders.csv --mapping my_mapping.yaml (order lines), a canonical "
                   "folder, or --data baskets.csv --data-format baskets (one transaction per line)",
    "churn": "purchase histories or a customer table: pass --data orders.csv --mapping my_mapping.yaml, a "
             "canonical folder, or --data customers.csv --data-format customers -p duration_col tenure "
             "-p event_col churned",
    "loyalty": "survey data: pass --data survey.csv --data-format survey -p constructs constructs.yaml "
               "(see data/mappings/ecsi_mobi_constructs.yaml), or a canonical folder with survey_responses",
    "segmentation": "order data: pass --data orders.csv --mapping my_mapping.yaml (an order-lines file) "
                    "or --data my_folder/ (canonical tables)",
    "customer_view": "order data with customer ids and order dates: pass --data orders.csv --mapping "
                     "my_mapping.yaml (an order-lines file) or --data my_folder/ (canonical tables; a "
                     "survey_responses table with customer_id adds satisfaction and loyalty scores)",
}


@dataclass
class Preflight:
    """The checked run: what to run, what to skip and why, and the parameters with absolute paths.

    Attributes
    ----------
    names : list of str
        Analyses to run, in notebook order.
    skipped : dict of str to str
        Analysis -> reason it cannot run on this data (with how to provide the data).
    given : dict
        ``data``/``data_format``/``mapping`` and the ``-p`` values, paths absolute, values checked.
    data_format : str or None
        The data's format as read (None when the data was not read: the bundled sample).
    """

    names: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    data_format: str | None = None


def accepted_formats(name: str, notebook: Path | None = None) -> tuple[str, ...] | None:
    """Formats analysis `name` accepts: the notebook's ``metadata.ecrm.data_formats``, else
    :data:`ACCEPTED_FORMATS`, else None (not checked)."""
    if notebook is not None:
        try:
            meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("ecrm", {})
            declared = meta.get("data_formats")
            if isinstance(declared, list) and declared:
                return tuple(str(f) for f in declared)
        except (OSError, ValueError, AttributeError):
            pass
    return ACCEPTED_FORMATS.get(name)


def _listed(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" or {items[-1]}"


def _unfit_reason(name: str, accepted: Sequence[str], ds: Dataset) -> str | None:
    """Why analysis `name` cannot use `ds` (None when it can)."""
    how = HOW_TO_PROVIDE.get(name, f"{_listed(accepted)} data")
    if ds.format not in accepted:
        return (f"{name} needs {how}. '{ds.source}' is {ds.format} data "
                f"({name} reads {_listed(accepted)} data).")
    if name == "loyalty" and ds.format == "canonical":
        survey = ds.tables.get("survey_responses")
        if survey is None or len(survey) == 0:
            return (f"{name} needs {how}. '{ds.source}' has no survey_responses table "
                    "(respondent_id, customer_id, answered_at, one column per item).")
    return None


def _check_customer_table(ds: Dataset, given: Mapping[str, Any]) -> None:
    """Churn on a customer table needs duration_col and event_col naming columns of the file, and
    an event column coded as :func:`~ecrm_research.prep.churn.event_coding` accepts (0/1, 1/2 as in
    R's Surv, true/false, yes/no)."""
    columns = [str(c) for c in ds.frame.columns] if ds.frame is not None else []
    for key, example in (("duration_col", "tenure"), ("event_col", "churned")):
        value = given.get(key)
        if value is None:
            raise ParameterError(
                f"churn on a customer table ({ds.source}) needs -p {key} COLUMN (e.g. -p {key} {example}); "
                f"columns of the file: {', '.join(columns[:30])}.", allowed=columns)
        if str(value) not in columns:
            raise ParameterError(
                f"-p {key} {value!r}: {ds.source} has no column {value!r}; its columns: "
                f"{', '.join(columns[:30])}.", allowed=columns)
    event_col = str(given["event_col"])
    event_coding(ds.frame[ds.frame.columns[columns.index(event_col)]], event_col, source=str(ds.source))


def check_data(names: Sequence[str], given: Mapping[str, Any], *, explicit: bool,
               notebooks_dir: str | Path | None = None) -> tuple[dict[str, str], str | None]:
    """Read and validate the data once; which of `names` cannot use it.

    Parameters
    ----------
    names : sequence of str
        Analyses of the run.
    given : dict
        The run's parameters with absolute paths (``data``, ``data_format``, ``mapping``, ...).
    explicit : bool
        The analyses were named (not ``all``): one that cannot use the data is an error.
    notebooks_dir : str or Path, optional

    Returns
    -------
    (skipped, data_format)
        Analysis -> reason, and the format the data was read as (None: not read).

    Raises
    ------
    DataError, SchemaError, MappingError, FormatError, ParameterError
        The data or the mapping cannot be read as given; a named analysis cannot use the data;
        no analysis of an ``all`` run can.
    """
    accepted = {n: accepted_formats(n, notebook_path(n, notebooks_dir)) for n in names}
    checked = [n for n in names if accepted[n]]
    data, mapping = given.get("data"), given.get("mapping")
    if not checked:
        return {}, None
    if data is None and mapping is None and given.get("data_format") in (None, "canonical"):
        if not (paths.SAMPLE_DIR / "orders.parquet").exists():
            raise DataError(f"the bundled sample data is missing in {paths.SAMPLE_DIR}; run `ecrm sample` "
                            "to regenerate it, or pass --data.", source=str(paths.SAMPLE_DIR))
        return {}, None  # the bundled sample holds every table
    ds = load_dataset(data, given.get("data_format"), mapping)
    skipped = {n: r for n in checked if (r := _unfit_reason(n, accepted[n], ds)) is not None}
    if explicit and skipped:
        raise FormatError(" ".join(skipped.values()), source=ds.source, example=ds.format)
    if len(skipped) == len(names):
        raise FormatError(f"None of the analyses can use {ds.source} ({ds.format} data): "
                          + " ".join(skipped.values()), source=ds.source, example=ds.format)
    if ds.format == "customers" and "churn" in names and "churn" not in skipped:
        _check_customer_table(ds, given)
    return skipped, ds.format


def preflight(names: str | Sequence[str], given: Mapping[str, Any], *, notebooks_dir: str | Path | None = None,
              base: str | Path | None = None, out: str | Path | None = None) -> Preflight:
    """Check a run before any kernel starts (see the module docstring).

    Parameters
    ----------
    names : "all" or sequence of str
        As for :func:`~ecrm_research.report.runner.run_all`; ``"all"`` skips the analyses the
        data does not fit, named analyses that do not fit are an error.
    given : dict
        ``data``, ``data_format``, ``mapping`` (when given) and the ``-p`` values.
    notebooks_dir : str or Path, optional
    base : str or Path, optional
        The caller's folder relative paths are taken from; default the current directory.
    out : str or Path, optional
        The output root; a path naming an existing file is an error.

    Returns
    -------
    Preflight
    """
    explicit = not (isinstance(names, str) and names == "all")
    order = resolve_names(names, notebooks_dir)
    base = Path(base) if base is not None else Path.cwd()
    checked = resolve_path_parameters(given, base)
    declared = {n: notebook_parameters(n, notebooks_dir=notebooks_dir) for n in order}
    check_run_parameters(order, declared, checked)
    for n in order:
        checked.update(check_parameter_values(n, {k: v for k, v in checked.items() if k in declared[n]},
                                              notebooks_dir=notebooks_dir))
    if out is not None:
        out_path = Path(out).expanduser()
        check_output_folder((out_path if out_path.is_absolute() else base / out_path).resolve(), order)
    skipped, fmt = check_data(order, checked, explicit=explicit, notebooks_dir=notebooks_dir)
    return Preflight(names=[n for n in order if n not in skipped], skipped=skipped, given=checked,
                     data_format=fmt)
