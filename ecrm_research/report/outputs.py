"""What an analysis notebook writes: tables, figures and headline findings.

Every notebook creates one :class:`ReportOutputs` and writes through it, so the report site,
the tests and the reader see the same files::

    OUT/<name>/tables/*.csv (+ .parquet)   OUT/<name>/figures/*.png   OUT/<name>/findings.json

CSV tables are opened in spreadsheets, so text that a spreadsheet would run as a formula is
neutralised there (:func:`neutralise_formulas`, OWASP's CSV-injection guidance); the Parquet copy
keeps every value exactly as the analysis produced it.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import math
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from IPython import get_ipython
from IPython.display import HTML, display

from ..paths import REPORTS_DIR
from .explore import (
    EXPLORE_PAGE,
    ExploreItem,
    explore_anchor,
    explore_figure_html,
    explore_table_html,
    write_explore_page,
)
from .figure_quality import figure_problems
from .tables import render_table, set_default_currency

__all__ = ["FORMULA_PREFIXES", "ReportOutputs", "neutralise_formulas"]

#: first characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a
#: formula or a command (OWASP "CSV Injection"): ``= + - @``, tab and carriage return
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: a plain number written as text ("-3", "+1.5e-4"): a spreadsheet reads it as that number, no formula
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _neutral(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _is_text(dtype: Any) -> bool:
    return (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype))


def neutralise_formulas(df: pd.DataFrame, *, index: bool = False) -> pd.DataFrame:
    """A copy of `df` whose text cells cannot run as spreadsheet formulas.

    A text cell (and a column name) that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return gets a leading single quote, as OWASP's CSV-injection guidance advises:
    ``=HYPERLINK("http://x", "click")`` is written as ``'=HYPERLINK("http://x", "click")``, which
    Excel and LibreOffice show as text instead of evaluating. Numbers are never touched: numeric,
    boolean and date columns keep their values, a number inside a text column stays a number, and
    text that is just a number (``-3``, ``+1.5e-4``) is left as is. Only object, string and
    categorical columns are looked at; with ``index=True`` the index labels too.

    Parameters
    ----------
    df : DataFrame
        The table about to be written as CSV.
    index : bool
        Also neutralise the index (when the CSV includes it).

    Returns
    -------
    DataFrame
        `df` itself when nothing needed a change, else a neutralised copy.

    Examples
    --------
    >>> t = pd.DataFrame({"item": ["=HYPERLINK(0)", "-3", "milk"], "n": [-1, 2, 3]})
    >>> safe = neutralise_formulas(t)
    >>> safe["item"].tolist(), safe["n"].tolist()
    (["'=HYPERLINK(0)", '-3', 'milk'], [-1, 2, 3])
    """
    out = df
    for i, dtype in enumerate(df.dtypes):
        if not _is_text(dtype):
            continue
        values = df.iloc[:, i].astype(object)
        new = values.map(_neutral)
        if not new.equals(values):
            out = df.copy() if out is df else out
            out.isetitem(i, new)
    names = [_neutral(c) for c in df.columns]
    if names != list(df.columns):
        out = df.copy() if out is df else out
        out.columns = names
    if index and _is_text(df.index.dtype):
        labels = df.index.map(_neutral)
        if not labels.equals(df.index):
            out = df.copy() if out is df else out
            out.index = labels
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [_jsonable(v) for v in list(value)]
    if value is pd.NA or value is None:
        return None
    return value


def _alt_text(fig: Any, name: str) -> str:
    """A figure's text alternative: its suptitle and axes titles, else its file name in words."""
    titles = []
    suptitle = fig.get_suptitle().strip() if hasattr(fig, "get_suptitle") else ""  # matplotlib >= 3.8
    if suptitle:
        titles.append(suptitle)
    titles += [ax.get_title().strip() for ax in fig.axes if ax.get_title().strip()]
    return "Figure: " + ("; ".join(dict.fromkeys(titles)) if titles else name.replace("_", " "))


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (papermill, JupyterLab), where figures are displayed."""
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class ReportOutputs:
    """Writer for one analysis' outputs.

    Parameters
    ----------
    out_dir : str or Path or None
        Folder for this analysis (created). ``None`` means ``reports/<name>`` in the project.
    name : str
        Short analysis name (``association``, ``churn`` ...).
    currency : str, optional
        ISO code of the money in the data (``"EUR"``, ``"GBP"`` ...): money columns of every table
        shown in this kernel carry it (:func:`~ecrm_research.report.tables.set_default_currency`).
        ``None``: plain numbers.
    title : str, optional
        Title of the interactive page (``explore.html``); default the name.

    Examples
    --------
    >>> out = ReportOutputs(None, "overview")            # doctest: +SKIP
    >>> out.table(df, "quality_summary")                  # doctest: +SKIP
    >>> out.finding("n_customers", 4338, "4,338 customers after cleaning")   # doctest: +SKIP
    >>> out.write_findings("What data do we have?")       # doctest: +SKIP
    """

    def __init__(self, out_dir: str | Path | None, name: str, *, currency: str | None = None,
                 title: str | None = None):
        self.name = name
        self.title = title or name
        self.currency = currency or None
        set_default_currency(self.currency)
        self.explore_items: list[ExploreItem] = []
        self.figure_checks: dict[str, list[str]] = {}
        self.dir = Path(out_dir) if out_dir is not None else REPORTS_DIR / name
        self.tables_dir = self.dir / "tables"
        self.figures_dir = self.dir / "figures"
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        self.findings: list[dict[str, Any]] = []
        self.key_figure: str | None = None

    def table(self, df: pd.DataFrame, name: str, *, parquet: bool = False, index: bool = False,
              show: bool | pd.DataFrame = False, caption: str | None = None,
              kinds: dict[str, str] | None = None, max_rows: int = 30) -> Path:
        """Write ``tables/<name>.csv`` (and ``.parquet`` when types matter); return the CSV path.

        ``show=True`` also displays the table in the notebook with the report renderer
        (:func:`~ecrm_research.report.tables.render_table`: `caption`, column `kinds`, at most
        `max_rows` rows and a link to the CSV). ``show=<DataFrame>`` displays that frame instead
        (the columns a reader needs) with the same link to the full CSV.

        CSV floats carry 12 significant digits: enough for every published figure we check, and it
        hides last-bit round-off (~1e-14) that iterative solvers (semopy's SEM) show between runs,
        so reruns with the same inputs and seed give byte-identical CSVs. Parquet keeps full precision.

        Text cells that a spreadsheet would run as a formula (``=...``, ``+...``, ``-...``, ``@...``,
        leading tab or carriage return) get a leading ``'`` in the CSV only
        (:func:`neutralise_formulas`); numbers are never changed and the Parquet copy keeps the
        exact text.
        """
        path = self.tables_dir / f"{name}.csv"
        csv_df = df.copy()
        for col in csv_df.columns:
            # list-valued cells (itemsets) are written as "a|b" so the CSV stays flat
            if csv_df[col].dtype == object and csv_df[col].map(
                    lambda v: isinstance(v, (list, tuple, frozenset, set))).any():
                csv_df[col] = csv_df[col].map(
                    lambda v: "|".join(sorted(map(str, v))) if isinstance(v, (list, tuple, frozenset, set)) else v)
        neutralise_formulas(csv_df, index=index).to_csv(path, index=index, float_format="%.12g")
        if parquet:
            pq = df.copy()
            pq.attrs = {}  # pandas stores attrs in the file; they may hold timings, so reruns would differ
            for col in pq.columns:
                if pq[col].dtype == object and pq[col].map(lambda v: isinstance(v, (frozenset, set, tuple))).any():
                    pq[col] = pq[col].map(
                        lambda v: sorted(map(str, v)) if isinstance(v, (frozenset, set, tuple)) else v)
            pq.to_parquet(self.tables_dir / f"{name}.parquet", index=index)
        if show is not False and _in_kernel():
            shown = show if isinstance(show, pd.DataFrame) else df
            display(HTML(render_table(shown, caption=caption, currency=self.currency, kinds=kinds,
                                      max_rows=max_rows, csv_href=f"tables/{name}.csv")))
        return path

    def explore_table(self, df: pd.DataFrame, name: str, *, title: str, description: str | None = None,
                      kinds: dict[str, str] | None = None) -> Path:
        """Add a sortable, searchable, filterable table to ``explore.html`` (see
        :mod:`~ecrm_research.report.explore`) and show a link to it in the notebook; return the page."""
        csv = self.tables_dir / f"{name}.csv"
        html_ = explore_table_html(df, name, kinds=kinds, currency=self.currency,
                                   csv_href=f"tables/{name}.csv" if csv.is_file() else None)
        return self._explore(ExploreItem(name, title, description, html_),
                             f"All {len(df):,} rows to sort, search and filter")

    def explore_figure(self, fig: Any, name: str, *, title: str, description: str | None = None) -> Path:
        """Add an interactive plotly figure (hover details, zoom) to ``explore.html``; return the page.
        The static matplotlib figure stays in the report and its PDF."""
        html_ = explore_figure_html(fig, name)
        return self._explore(ExploreItem(name, title, description, html_, needs_plotly=True),
                             "Interactive chart with hover details and zoom")

    def _explore(self, item: ExploreItem, what: str) -> Path:
        anchor = explore_anchor(item.name)  # "at risk" and "at-risk" share an anchor: one replaces the other
        self.explore_items = [i for i in self.explore_items if explore_anchor(i.name) != anchor] + [item]
        page = write_explore_page(self.dir, self.title, self.explore_items)
        if _in_kernel():
            href = f"{EXPLORE_PAGE}#{anchor}"
            display(HTML(f'<p class="ecrm-explore-link">{html_lib.escape(what)} (works offline): '
                         f'<a href="{html_lib.escape(href, quote=True)}">{html_lib.escape(item.title)}</a></p>'))
        return page

    def figure(self, fig_or_ax: Any, name: str, *, dpi: int = 110, key: bool = False, show: bool = True,
               alt: str | None = None) -> Path:
        """Save a matplotlib Figure (or the figure of an Axes) to ``figures/<name>.png``.

        The figure is shown with `alt` as its text alternative (default: the figure's and its
        axes' titles, else the name), for screen readers and for a reader whose image fails to
        load. Its readability at print size is checked (:func:`~.figure_quality.figure_problems`)
        and recorded in ``figures/figure_checks.json``.

        ``key=True`` marks the analysis' key figure: the report index shows it on the card.
        ``show=True`` (in a Jupyter kernel only) displays the saved PNG and closes the figure, so
        the notebook and its reports show exactly the file in ``figures/`` and matplotlib does
        not draw the figure a second time for the inline backend (a following ``plt.show()``
        then has nothing left to draw). Outside a kernel the figure is left open.
        """
        fig = getattr(fig_or_ax, "figure", None) if not hasattr(fig_or_ax, "savefig") else fig_or_ax
        if fig is None:
            raise TypeError(f"figure(): expected a matplotlib Figure or Axes, got {type(fig_or_ax).__name__}")
        path = self.figures_dir / f"{name}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        # print-size fonts, overlapping labels, legends over data: recorded for the report-quality check
        self.figure_checks[name] = figure_problems(fig, dpi=dpi)
        (self.figures_dir / "figure_checks.json").write_text(json.dumps(self.figure_checks, indent=1), encoding="utf-8")
        if key:
            self.key_figure = f"figures/{name}.png"
        if show and _in_kernel():
            import matplotlib.pyplot as plt  # lazy: only in a kernel, where a figure is shown

            text = alt or _alt_text(fig, name)
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            display(HTML(f'<img class="ecrm-figure" src="data:image/png;base64,{data}" '
                         f'alt="{html_lib.escape(text, quote=True)}">'))
            plt.close(fig)
        return path

    def finding(self, key: str, value: Any, text: str) -> None:
        """Record a headline number with a one-sentence plain-language statement."""
        self.findings = [f for f in self.findings if f["key"] != key]
        self.findings.append({"key": key, "value": _jsonable(value), "text": text})

    def write_findings(self, question: str, **extra: Any) -> Path:
        """Write ``findings.json`` with the analysis question, findings and extra context."""
        payload = {"analysis": self.name, "question": question, "findings": self.findings}
        if self.key_figure:
            payload["key_figure"] = self.key_figure
        payload.update({k: _jsonable(v) for k, v in extra.items()})
        path = self.dir / "findings.json"
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        return path
