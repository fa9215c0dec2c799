"""The interactive companion of a report: ``explore.html``, opened from disk, offline.

A notebook adds tables (sortable, searchable, filterable per column: **itables** in offline mode,
i.e. DataTables bundled into the page, no CDN) and interactive figures (**plotly** figures with
hover details; plotly.js is copied next to the page) through
``ReportOutputs.explore_table`` / ``ReportOutputs.explore_figure``; every call rewrites::

    OUT/<name>/explore.html
    OUT/<name>/explore_files/plotly-<version>.min.js     (only when the page has a figure)

The reader report (``report.html``) stays script-free and links here; its PDF keeps the static
figures. User text is data here too: every text cell and column name is HTML-escaped here, once
(itables' own escaping misses the column names it writes into the filter footer), the figure JSON
is embedded with ``<``, ``>`` and ``&`` written as JSON escapes, so no cell, item or customer name
can end the script it sits in, and titles and descriptions are escaped.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .tables import CURRENCY_SYMBOLS, column_kinds, format_cell, table_frame

__all__ = ["ExploreItem", "explore_anchor", "explore_table_html", "explore_figure_html", "write_explore_page",
           "EXPLORE_PAGE", "ASSETS_DIR"]

EXPLORE_PAGE = "explore.html"
ASSETS_DIR = "explore_files"
#: rows embedded in one interactive table (the full table is always in tables/*.csv)
MAX_ROWS = 20_000
_ANCHOR = re.compile(r"[^A-Za-z0-9_-]+")

_PAGE_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2933;
       max-width: 1200px; margin: 0 auto; padding: 0 1rem 3rem; }
nav.ecrm-nav { font-size: 14px; padding: .6rem 0; border-bottom: 1px solid #d9e2ec; margin-bottom: 1rem; }
nav.ecrm-nav a { color: #0b5cad; margin-right: 1.2rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #d9e2ec; padding-bottom: .2rem;
     margin-top: 2rem; }
p.ecrm-note { color: #616e7c; font-size: 14px; }
section.ecrm-explore { margin-bottom: 2.5rem; overflow-x: auto; }  /* a wide table scrolls inside its section */
.ecrm-explore table.dataTable { font-size: 13px; }
.ecrm-explore table.dataTable td { white-space: normal; max-width: 28rem; }
.ecrm-plot { width: 100%; min-height: 480px; }
"""


def explore_anchor(name: str) -> str:
    """The HTML id of an item called `name` on the explore page (``explore.html#<id>``)."""
    return _ANCHOR.sub("-", str(name)).strip("-") or "item"


@dataclass
class ExploreItem:
    """One section of the explore page: a table or a figure, already as HTML."""

    name: str
    title: str
    description: str | None
    html: str
    needs_plotly: bool = False


def _explore_frame(df: pd.DataFrame, kinds: Mapping[str, str] | None) -> tuple[pd.DataFrame, list[str]]:
    """Values for an interactive table, and the kind of each of its columns: numbers stay numbers
    (so they sort; the page formats them, :data:`_JS_DISPLAY`), shares in percent points (column
    renamed ``… (%)``), money to the cent, other floats to 4 significant digits (2 decimals from
    1,000 up), lists, sets and dicts as text, booleans as yes/no, dates as ISO dates, missing text
    as an empty cell. Text and column names come back HTML-escaped (see :func:`explore_table_html`)."""
    flat = table_frame(df)
    kinds_ = column_kinds(flat, kinds)
    out, out_kinds = {}, []
    for col in flat.columns:
        s, kind = flat[col], kinds_[col]
        if kind == "share":
            out[f"{col} (%)"] = (pd.to_numeric(s, errors="coerce") * 100).map(_percent).astype(float)
        elif kind == "money":  # 4 significant digits would show revenue 123,456.78 as 123,500
            out[col] = pd.to_numeric(s, errors="coerce").astype(float).round(2)
        elif kind in ("float", "p"):
            out[col] = pd.to_numeric(s, errors="coerce").map(_sig4).astype(float)
        elif kind in ("int", "label"):
            v = pd.to_numeric(s, errors="coerce")
            # a nullable integer column with a gap: floats (NaN shows as an empty cell), not "<NA>"
            out[col] = v.astype(float) if v.isna().any() or not pd.api.types.is_integer_dtype(v.dtype) else v
        elif kind == "bool":
            out[col] = s.map(lambda v: "yes" if v is True or v is np.True_ else ("no" if v in (False, np.False_)
                                                                                 else ""))
        elif kind == "date":
            out[col] = pd.to_datetime(s, errors="coerce").dt.strftime("%Y-%m-%d")
        else:
            out[col] = s.map(_cell_text)
        out_kinds.append(kind)
    frame = pd.DataFrame(out)
    # itables writes the column names into the filter footer without escaping them, so a name such
    # as "<img onerror=...>" would become markup there: escape names and text here, once, and let
    # itables pass them through (allow_html=True) -- the same as its own escaping of the cells
    frame.columns = [html.escape(str(c), quote=False) for c in frame.columns]
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            col = col.astype(object)
            frame.isetitem(i, col.where(col.notna(), "").map(
                lambda v: html.escape(v, quote=False) if isinstance(v, str) else v))
    return frame, out_kinds


#: how the page shows a number of each kind (DataTables render functions: sorting and type
#: detection see the number itself; a missing value is an empty cell that sorts first)
_JS_DISPLAY = {
    "int": "x.toLocaleString('en-US')",
    "label": "String(x)",
    "money": "x.toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2})",
    # already rounded in Python (4 significant digits, more where a share would round to 0 or 100)
    "float": "(x !== 0 && Math.abs(x) < 1e-4) ? x.toExponential() : x.toLocaleString('en-US', "
             "{maximumFractionDigits: 10})",
    "p": "x === 0 ? '< 1e-300' : (x < 0.001 ? x.toExponential(1) : String(Number(x.toPrecision(3))))",
}
_JS_DISPLAY["share"] = _JS_DISPLAY["float"]
_JS_RENDER = ("function (data, type) { var x = data; if (x === null || x === undefined || x === '' "
              "|| (typeof x === 'number' && isNaN(x))) { return ''; } if (typeof x !== 'number' || "
              "(type !== 'display' && type !== 'filter')) { return x; } var text = %s; "
              "return type === 'filter' ? text + ' ' + String(x) : text; }")


def _js_string(text: str) -> str:
    """`text` as a JavaScript string literal that cannot end the script it sits in."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _column_defs(kinds: Sequence[str], currency: str | None = None) -> list[dict[str, Any]]:
    """DataTables ``columnDefs`` that format the numeric columns of an explore table by kind (money
    with the currency's symbol, or its code after the number)."""
    from itables import JavascriptFunction

    display = dict(_JS_DISPLAY)
    if currency:
        symbol = CURRENCY_SYMBOLS.get(currency.upper())
        display["money"] = (f"{_js_string(symbol)} + {display['money']}" if symbol
                            else f"{display['money']} + {_js_string(' ' + currency)}")
    targets: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        if kind in display:
            targets.setdefault(kind, []).append(i)
    return [{"targets": cols, "render": JavascriptFunction(_JS_RENDER % display[kind])}
            for kind, cols in targets.items()]


def _sig4(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    if not math.isfinite(f) or f == 0:
        return f
    if abs(f) >= 1000:  # 4 significant digits would turn 1,234,567.9 into 1,235,000
        return round(f, 2)
    return float(f"{f:.4g}")


def _percent(v: Any) -> Any:
    """A share in percent points to 4 significant digits, never rounded to 0 or 100 (99.996)."""
    f = _sig4(v)
    if isinstance(f, float) and f in (0.0, 100.0) and 0 < float(v) < 100:
        for digits in range(5, 16):
            f = float(f"{float(v):.{digits}g}")
            if f not in (0.0, 100.0):
                break
    return f


def _cell_text(v: Any) -> str:
    if not isinstance(v, (list, tuple, set, frozenset, np.ndarray, Mapping, pd.Series)):
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            return ""
    return format_cell(v, "text")  # the report's text rules: lists, sets, dicts, bools, dates, no reprs


def explore_table_html(df: pd.DataFrame, name: str, *, kinds: Mapping[str, str] | None = None,
                       max_rows: int = MAX_ROWS, currency: str | None = None, csv_href: str | None = None) -> str:
    """HTML of one interactive table (itables, offline: needs the page's DataTables bundle).

    Parameters
    ----------
    df : DataFrame
        The table (index shown as first column unless default; see :func:`~.tables.table_frame`).
    name : str
        Its id on the page.
    kinds : mapping, optional
        Column kinds as for :func:`~.tables.render_table`.
    max_rows : int
        Rows embedded (the first `max_rows`; the note says when rows were left out).
    currency : str, optional
        ISO code shown with money columns.
    csv_href : str, optional
        Link to the full table, given in the note when rows were left out.
    """
    import itables  # lazy: only notebooks that build an explore page pay for it

    frame, frame_kinds = _explore_frame(df, kinds)
    note = ""
    if len(frame) > max_rows:
        link = (f'; the full table: <a href="{html.escape(csv_href, quote=True)}">{html.escape(csv_href)}</a>'
                if csv_href else "")
        note = f'<p class="ecrm-note">The first {max_rows:,} of {len(frame):,} rows{link}.</p>'
        frame = frame.head(max_rows)
    table = itables.to_html_datatable(
        frame, table_id=f"tbl-{explore_anchor(name)}", connected=False, column_filters="footer", showIndex=False,
        classes="display compact", lengthMenu=[10, 25, 100, 500], pageLength=25, allow_html=True,
        maxBytes=0, warn_on_undocumented_option=False, format_floats_in_python=False,
        columnDefs=_column_defs(frame_kinds, currency))
    return table + note


def explore_figure_html(fig: Any, name: str) -> str:
    """HTML of one plotly figure (needs the page's plotly.js). The figure JSON is embedded with
    ``<``, ``>`` and ``&`` as ``\\u003c``-style escapes, so text in it cannot end the script."""
    spec = fig.to_json()
    spec = spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    div = f"plot-{explore_anchor(name)}"
    return (f'<div id="{div}" class="ecrm-plot"></div>\n<script>(function () {{ var spec = {spec};\n'
            f'Plotly.newPlot("{div}", spec.data, spec.layout, {{responsive: true, displaylogo: false}}); }})();'
            f'</script>')


def _plotly_asset(folder: Path) -> str:
    import plotly  # lazy: only a page with a figure needs it

    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    rel = f"{ASSETS_DIR}/plotly-{plotly.__version__}.min.js"
    target = folder / rel
    if not target.exists() or target.stat().st_size != src.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return rel


@functools.lru_cache(maxsize=1)
def _datatables_init() -> str:
    """The DataTables bundle as itables' offline init block (~1 MB, base64): built once per process,
    as the page is rewritten at every explore_* call."""
    import itables
    from itables.javascript import generate_init_offline_itables_html

    return generate_init_offline_itables_html(Path(itables.__file__).parent / "html" / "dt_bundle.js")


def write_explore_page(folder: str | Path, title: str, items: Sequence[ExploreItem]) -> Path:
    """Write ``folder/explore.html`` with `items` (and plotly.js beside it when a figure needs it).

    Returns
    -------
    Path
        The page.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head = [f"<title>{html.escape(title)} — explore</title>", '<meta charset="utf-8">',
            f"<style>{_PAGE_CSS}</style>"]
    if any(i.needs_plotly for i in items):
        head.append(f'<script src="{html.escape(_plotly_asset(folder), quote=True)}"></script>')
    has_tables = any(not i.needs_plotly for i in items)
    toc = "".join(f'<li><a href="#{explore_anchor(i.name)}">{html.escape(i.title)}</a></li>' for i in items)
    sections = []
    for item in items:
        desc = f'<p class="ecrm-note">{html.escape(item.description)}</p>' if item.description else ""
        sections.append(f'<section class="ecrm-explore" id="{explore_anchor(item.name)}">'
                        f"<h2>{html.escape(item.title)}</h2>{desc}{item.html}</section>")
    body = (f'<nav class="ecrm-nav"><a href="report.html">← Report</a><a href="../index.html">All reports</a>'
            f'<a href="../glossary.html">Glossary</a></nav>'
            f"<h1>{html.escape(title)}: explore</h1>"
            '<p class="ecrm-note">Sort by clicking a column header, search all columns in the search box, filter '
            "one column in the boxes under the table; hover over a chart for details, drag to zoom, double-click "
            "to reset. Everything on this page is stored in it: it works offline.</p>"
            f"<ul>{toc}</ul>" + "".join(sections))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head>" + "".join(head) + "</head><body>"
            + (_datatables_init() if has_tables else "") + body + "</body></html>\n")
    path = folder / EXPLORE_PAGE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path

