"""How numbers look in notebook outputs and HTML reports.

:func:`setup` makes every DataFrame and Series a notebook displays go through the report table
renderer (:func:`~ecrm_research.report.tables.render_table`: integers as integers, p-values,
shares as percentages, money with a currency, no index column, text wrapped, at most 30 rows), and
sets pandas' text display options (floats with thousands separators: ``8,911,408``,
``12,345.68``, ``0.0312``, ``1.2e-07``). The runner calls it in every kernel it starts
(``--IPKernelApp.exec_lines``), so the notebooks themselves need nothing; call it at the top of a
notebook to get the same look in JupyterLab.

:func:`escape_md` makes user-controlled text (file names, parameter values, column, item and
customer names) safe to put into ``display(Markdown(f"..."))``: a file called
``<img src=x onerror=alert(1)>.csv`` shows as that text in the notebook and its HTML reports
instead of running script when the report is opened. It lives in :mod:`ecrm_research.markup` (the
bottom layer, so that ``data/`` can use it too) and is re-exported here for the notebooks.
"""

from __future__ import annotations

import math
from pathlib import PurePath

import pandas as pd
from IPython import get_ipython

from ..markup import escape_md
from .tables import format_number, render_table

__all__ = ["escape_md", "format_float", "frame_html", "setup"]



def format_float(value: float) -> str:
    """Format one float for display.

    ``|x| ≥ 100,000`` → no decimals; ``1 ≤ |x| < 100,000`` → 2 decimals (money);
    ``0.001 ≤ |x| < 1`` → 3 significant digits;
    smaller → scientific with 2 decimals (p-values). NaN is shown as ``NaN``.

    Examples
    --------
    >>> [format_float(v) for v in (8911407.9, 12345.678, 3.14159, 0.031234, 1.2e-7, 0.0)]
    ['8,911,408', '12,345.68', '3.14', '0.0312', '1.20e-07', '0']
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "NaN"
    return format_number(v, whole_as_int=False, ascii_exponent=True)  # the tables' rules, as plain text


def frame_html(df) -> str:
    """HTML of a DataFrame (or Series) as a notebook shows it: :func:`~ecrm_research.report.tables.render_table`
    (integers as integers, p-values, shares as percentages, money with the session's currency, no
    index column, text wrapped, long tables capped at ``display.max_rows``)."""
    try:
        return render_table(df, max_rows=pd.get_option("display.max_rows") or 30)
    except Exception:  # never let a display nicety break a notebook
        return df.to_frame()._repr_html_() if isinstance(df, pd.Series) else df._repr_html_()


def setup(max_rows: int = 30) -> None:
    """Set pandas display options for readable tables (see module docstring); in IPython, also
    show DataFrames and Series with :func:`frame_html` (the report table renderer)."""
    pd.set_option("display.float_format", format_float)
    pd.set_option("display.max_rows", max_rows)
    pd.set_option("display.min_rows", min(max_rows, 20))
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_colwidth", 60)
    pd.set_option("styler.format.thousands", ",")
    pd.set_option("styler.format.precision", 3)
    ip = get_ipython()
    if ip is not None:
        html = ip.display_formatter.formatters["text/html"]
        html.for_type(pd.DataFrame, frame_html)
        html.for_type(pd.Series, frame_html)  # a Series shows as a table, never as "dtype: float64" text
        # a path a cell happens to return (out.table(...) as its last line) reads as text, not PosixPath('...')
        ip.display_formatter.formatters["text/plain"].for_type(PurePath, lambda p, printer, cycle: printer.text(str(p)))
