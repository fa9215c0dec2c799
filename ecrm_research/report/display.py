"""How numbers look in notebook outputs and HTML reports.

:func:`setup` sets pandas display options so tables in the reports are readable: floats rounded
to a sensible number of digits with thousands separators (``8,911,408``, ``12,345.68``, ``0.0312``,
``1.2e-07``), at most 30 rows shown. The runner calls it in every kernel it starts
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
import re

import pandas as pd
from IPython import get_ipython

from ..markup import escape_md

__all__ = ["escape_md", "format_float", "frame_html", "setup"]

#: integer columns that are labels, not quantities: no thousands separator (2024, not 2,024)
_LABEL_COLUMN = re.compile(r"(^|_)(id|ids|year|row|line|no|code|zip|age|month|week|day|rank|k)($|_)", re.I)


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
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100_000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.2f}"
    if a >= 0.001:
        return f"{v:.3g}"
    return f"{v:.2e}"


def frame_html(df) -> str:
    """HTML of a DataFrame as a notebook shows it, with thousands separators in integer columns
    that hold quantities (not ids, years, row numbers ...) and :func:`format_float` for floats."""
    try:
        formatters = {}
        for col, dtype in df.dtypes.items():
            if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) \
                    and not _LABEL_COLUMN.search(str(col)) and df.columns.is_unique:
                formatters[col] = lambda v: f"{v:,}" if isinstance(v, (int,)) or hasattr(v, "__index__") else str(v)
        long = len(df) > pd.get_option("display.max_rows")  # as pandas: show min_rows of a long frame
        return df.to_html(
            max_rows=pd.get_option("display.min_rows") if long else None,
            max_cols=pd.get_option("display.max_columns"), show_dimensions=pd.get_option("display.show_dimensions"),
            formatters=formatters or None, float_format=format_float, notebook=True, border=1)
    except Exception:  # never let a display nicety break a notebook
        return df._repr_html_()


def setup(max_rows: int = 30) -> None:
    """Set pandas display options for readable tables (see module docstring); in IPython, also
    show DataFrames with :func:`frame_html`."""
    pd.set_option("display.float_format", format_float)
    pd.set_option("display.max_rows", max_rows)
    pd.set_option("display.min_rows", min(max_rows, 20))
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_colwidth", 60)
    pd.set_option("styler.format.thousands", ",")
    pd.set_option("styler.format.precision", 3)
    ip = get_ipython()
    if ip is not None:
        ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)
