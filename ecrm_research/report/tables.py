"""One table renderer for the notebooks, their HTML reports and the PDFs.

Every DataFrame a notebook shows goes through :func:`render_table` (the runner makes it pandas'
HTML display in every kernel, see :func:`~ecrm_research.report.display.setup`; notebooks call
:func:`show_table` or ``ReportOutputs.table(..., show=True)`` when they want a caption, a currency
or a CSV link). It is built on **great-tables** (``GT``), with pandas' ``Styler`` as the fallback
when great-tables is missing; both use the same cell formatters, so a number reads the same in
either:

* integers as integers (``2,968``; ids, years and codes without separators), and whole numbers in
  a float column (``n``, ``k``, counts from ``describe``) without decimals;
* p-values as ``0.0412`` or ``3.2 × 10⁻⁴⁵`` (never ``0``: ``< 10⁻³⁰⁰`` where doubles underflow);
* shares (columns named ``share``, ``rate``, ``support``, ``confidence``, ``probability`` ... with
  every value in [0, 1]) as percentages, ``7.4%``;
* money (``revenue``, ``monetary``, ``clv``, ``value_at_risk`` ...) with the ``currency`` when one
  is given (``€1,234.56``), else as a plain number with two decimals;
* text wrapped, never cut; lists and sets as ``a, b, c``; dicts as ``key: value``; dates as ISO
  dates; missing values as ``—``;
* no index column: a meaningful index becomes the first column, row numbers (an unnamed
  ``RangeIndex`` or integer index, as filtering and sorting leave) are dropped;
* more than ``max_rows`` rows: the first ``max_rows`` are shown, with a note giving the total and a
  link to the full CSV when ``csv_href`` is given;
* wide tables (many columns or long text) sit in a scroll container on screen and are printed on a
  landscape page with smaller type in the PDF (``templates/report.css``).

Column kinds are inferred from names and values (:func:`column_kinds`); ``kinds={"col": "money"}``
overrides. User text is escaped (great-tables and ``Styler`` escape cell text; captions and notes
are escaped here), so a cell can never inject markup into a report.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import HTML, display

from ..phrasing import P_FLOOR

__all__ = ["KINDS", "CURRENCY_SYMBOLS", "WIDE_CHARS", "XWIDE_CHARS", "printed_width", "column_kinds", "format_cell",
           "format_number", "format_p_value_table", "render_table", "show_table", "set_default_currency",
           "default_currency", "table_frame"]

#: the kinds a column can have; ``label``: an integer that names something (id, year), no separator
KINDS = ("int", "label", "float", "p", "share", "money", "text", "date", "bool")
CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "JPY": "¥", "CNY": "¥", "INR": "₹"}
MISSING = "—"

_LABEL = re.compile(r"(^|_)(id|ids|year|code|zip|postcode|seed|no|number|rank|k|cluster|segment)$|"
                    r"^(row|line|month|week|day|source_row)$", re.I)
_P = re.compile(r"(^|_)(p|pval|pvalue|p_value|p_adj|p_adjusted|p_holm|p_bh|p_fdr|q|qvalue|q_value)($|_)|^p_", re.I)
_SHARE = re.compile(r"share|rate|pct|percent|proportion|support|confidence|coverage|probab|(^|_)prob($|_)|"
                    r"(^|_)hit|recall|precision|retention|(^|_)frac|churned_by|survival", re.I)
_MONEY = re.compile(r"revenue|monetary|spend|sales|price|amount|order_value|(^|_)clv($|_)|value_at_risk|(^|_)aov($|_)|"
                    r"profit|(^|_)cost($|_)|budget|basket_value|(^|_)value_eur|turnover|expected_value|net_value|"
                    r"(^|_)value_(before|after|gained|lost)", re.I)
_NOT_MONEY = re.compile(r"(^|_)(n|count|share|rate|z|rank|score|tier|p)($|_)", re.I)
_default = {"currency": None}
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def set_default_currency(currency: str | None) -> None:
    """Currency that :func:`render_table` uses when none is passed (``None``: plain numbers).

    The notebooks' ``currency`` parameter sets it through ``ReportOutputs(..., currency=...)``.
    """
    _default["currency"] = currency or None


def default_currency() -> str | None:
    """The currency set with :func:`set_default_currency` (``None`` when none)."""
    return _default["currency"]


# --------------------------------------------------------------------------- cell formatters


def format_p_value_table(p: Any) -> str:
    """A p-value in a table: ``0.0412`` (3 significant digits) from 0.001 up, ``3.2 × 10⁻⁴⁵`` below,
    ``< 10⁻³⁰⁰`` where a double has underflowed; never ``0``.

    Examples
    --------
    >>> [format_p_value_table(v) for v in (0.04123, 0.00031, 0.0, float("nan"))]
    ['0.0412', '3.1 × 10⁻⁴', '< 10⁻³⁰⁰', '—']
    """
    v = _float(p)
    if v is None:
        return MISSING
    if v < P_FLOOR:
        return "< 10" + str(int(math.log10(P_FLOOR))).translate(_SUPERSCRIPT)
    if v >= 0.001:
        return f"{v:.3g}"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def _float(value: Any) -> float | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def format_number(v: float, *, whole_as_int: bool = True, ascii_exponent: bool = False) -> str:
    """A finite float for a table or text output.

    Whole numbers as integers (``2,968``; with `whole_as_int`), else no decimals from 100,000 up,
    2 decimals from 1 up, 3 significant digits below 1, scientific below 0.001 (``1.20 × 10⁻⁷``, or
    ``1.20e-07`` with `ascii_exponent`, as pandas' text display needs).

    Examples
    --------
    >>> [format_number(v) for v in (2968.0, 8911407.9, 12345.678, 0.031234, 1.2e-7)]
    ['2,968', '8,911,408', '12,345.68', '0.0312', '1.20 × 10⁻⁷']
    """
    if math.isinf(v):
        return ("∞" if v > 0 else "−∞") if not ascii_exponent else ("inf" if v > 0 else "-inf")
    a = abs(v)
    if a == 0:
        return "0"
    if whole_as_int and float(v).is_integer() and a < 1e15:
        return f"{int(v):,}"
    if a >= 100_000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.2f}"
    if a >= 0.001:
        return f"{v:.3g}"
    if ascii_exponent:
        return f"{v:.2e}"
    mantissa, exponent = f"{v:.2e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def _share(v: float) -> str:
    """A share as a percentage with one decimal; two where one would round a share that is not 0 or 1
    to 0% or 100%; beyond that a bound (``> 99.99%``, ``< 0.01%``), never a run of digits."""
    pct = 100 * v
    if not math.isfinite(pct) or pct in (0, 100) or not 0 < abs(pct) < 100:
        return f"{pct:.1f}%" if math.isfinite(pct) else ("∞" if pct > 0 else "−∞")
    for d in (1, 2):
        if 0 < round(abs(pct), d) < 100:
            return f"{pct:.{d}f}%"
    return "> 99.99%" if abs(pct) > 50 else ("< 0.01%" if pct > 0 else "> −0.01%")


def _money(v: float, currency: str | None) -> str:
    body = f"{abs(v):,.2f}"
    sign = "−" if v < 0 else ""
    if not currency:
        return f"{sign}{body}"
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        items = [_text(v) for v in value]  # nested sets, dicts, floats: as text too, never a repr
        return ", ".join(sorted(items) if isinstance(value, (set, frozenset)) else items)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_text(v) if not isinstance(v, float) else format_number(v)}"
                         for k, v in value.items())
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.date().isoformat() if (value.hour, value.minute, value.second) == (0, 0, 0) else \
            value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (float, np.floating)):
        return format_number(float(value)) if not math.isnan(value) else MISSING
    if isinstance(value, (int, np.integer)):  # a number in a mixed column of a key/value table
        return f"{int(value):,}"
    return str(value)


def format_cell(value: Any, kind: str, currency: str | None = None) -> str:
    """Text of one cell of a column of `kind` (see :data:`KINDS`).

    Examples
    --------
    >>> format_cell(2968.0, "float"), format_cell(0.0742, "share"), format_cell(1234.5, "money", "EUR")
    ('2,968', '7.4%', '€1,234.50')
    >>> format_cell(["milk", "bread"], "text"), format_cell(2024, "label"), format_cell(True, "bool")
    ('milk, bread', '2024', 'yes')
    """
    if not isinstance(value, (list, tuple, set, frozenset, np.ndarray, Mapping, pd.Series)):
        if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
            return MISSING
    if kind == "p":
        return format_p_value_table(value)
    if kind in ("int", "float", "share", "money", "label"):
        v = _float(value)
        if v is None or isinstance(value, (bool, np.bool_)):
            return _text(value)
        if kind in ("int", "float", "label") and isinstance(value, (int, np.integer)):
            # exact: a 17-digit id must not pass through a double (12345678901234567 -> ...568)
            return str(int(value)) if kind == "label" else f"{int(value):,}"
        if kind == "label":
            return str(int(v)) if v.is_integer() else format_number(v)
        if kind == "share":
            return _share(v)
        if kind == "money":
            return _money(v, currency)
        return format_number(v)
    return _text(value)


# --------------------------------------------------------------------------- kinds


def column_kinds(df: pd.DataFrame, kinds: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kind of every column of `df` (column name → one of :data:`KINDS`).

    Inference: booleans ``bool``; datetimes ``date``; integer columns ``label`` when the name says
    id/year/code/rank (no thousands separator), else ``int``; numeric columns ``p`` when named like a
    p-value and within [0, 1], ``share`` when named like a share or rate and within [0, 1], ``money``
    when named like an amount of money with some value above 1 in size (a matrix of coefficients
    whose columns are named after a construct such as ``perceived_cost`` stays ``float``), else
    ``float``; everything else ``text``. `kinds` overrides.
    """
    kinds = dict(kinds or {})
    bad = {k: v for k, v in kinds.items() if v not in KINDS}
    if bad:
        raise ValueError(f"render_table: unknown column kind(s) {bad}; use one of {', '.join(KINDS)}")
    out: dict[str, str] = {}
    for i, col in enumerate(df.columns):
        name = str(col)
        if col in kinds:
            out[name] = kinds[col]
            continue
        s = df.iloc[:, i]
        dtype = s.dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[name] = "bool"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            out[name] = "date"
        elif pd.api.types.is_numeric_dtype(dtype):
            values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            unit = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
            if _P.search(name) and (unit or finite.size == 0):
                out[name] = "p"
            elif pd.api.types.is_integer_dtype(dtype):
                out[name] = "label" if _LABEL.search(name) else "int"  # counts; money is a float
            elif _LABEL.search(name) and finite.size and np.all(finite == np.round(finite)):
                out[name] = "label"  # ids and years with a missing value arrive as floats: still no separator
            elif _SHARE.search(name) and unit and (not _MONEY.search(name) or _NOT_MONEY.search(name)):
                out[name] = "share"  # "revenue_share" is a share of money, not money
            elif _MONEY.search(name) and not _NOT_MONEY.search(name) and (finite.size == 0
                                                                         or np.abs(finite).max() > 1):
                out[name] = "money"  # amounts; a column of coefficients named after "cost" stays a number
            else:
                out[name] = "float"
        else:
            out[name] = "text"
    return out


# --------------------------------------------------------------------------- the table


def _flat_name(col: Any) -> str:
    if isinstance(col, tuple):
        return " · ".join(str(c) for c in col if str(c) != "")
    return str(col)


def table_frame(data: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """`data` as the flat frame that is shown: a Series becomes a two-column table, a meaningful
    index becomes the first column(s), row numbers are dropped (a default ``RangeIndex``, and an
    unnamed integer index as left by filtering or sorting: ``rules[rules.lift > 1]``) and column
    names are flattened to unique strings."""
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else "value"
        data = data.to_frame(name=name)
    df = data
    idx = df.index
    default = idx.nlevels == 1 and idx.name is None and (
        isinstance(idx, pd.RangeIndex) or pd.api.types.is_integer_dtype(idx.dtype))
    if not default:
        names = [n if n is not None else ("" if idx.nlevels == 1 else f"level_{i}") for i, n in enumerate(idx.names)]
        taken = {_flat_name(c) for c in df.columns}
        names = [n if n not in taken else f"{n} (index)" for n in names]
        df = df.copy()
        df.index = df.index.set_names(names)
        df = df.reset_index()
    else:
        df = df.reset_index(drop=True)
    cols, seen = [], {}
    for c in df.columns:
        name = _flat_name(c)
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 0
        cols.append(name)
    if cols != list(df.columns):
        df = df.copy()
        df.columns = cols
    return df


#: narrowest printed width (characters) above which a table is printed in smaller type
#: (``ecrm-wide``) and above which it gets a landscape page (``ecrm-xwide``): A4 portrait holds
#: ~110 characters at 9 pt and ~135 at 7.5 pt; every landscape page breaks the flow, so it is the last resort
WIDE_CHARS, XWIDE_CHARS = 95, 135


def printed_width(formatted: pd.DataFrame, numeric: set[str] | frozenset[str] = frozenset()) -> int:
    """Narrowest printed width of a formatted table in characters: per column the longest of its
    cells for numbers (they never wrap) or up to 16 for text (it wraps at spaces), and the longest
    word of the header (headers wrap at spaces and after underscores), plus padding."""
    total = 0
    for c in formatted.columns:
        longest = max((len(v) for v in formatted[c].head(200)), default=0)
        body = longest if c in numeric else min(longest, 16)
        header = max((len(w) for w in re.split(r"[\s_]+", str(c))), default=0)
        total += max(header, body) + 2
    return total


def _width_class(formatted: pd.DataFrame, numeric: set[str]) -> str:
    width = printed_width(formatted, numeric)
    if width > XWIDE_CHARS or formatted.shape[1] > 16:
        return " ecrm-wide ecrm-xwide"
    return " ecrm-wide" if width > WIDE_CHARS or formatted.shape[1] > 10 else ""


def _table_id(df: pd.DataFrame, caption: str | None) -> str:
    """A deterministic id (great-tables scopes its CSS to it): same table → same HTML."""
    h = hashlib.sha1(f"{caption}|{list(df.columns)}|{df.shape}".encode())
    try:
        h.update(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
    except Exception:  # unhashable cells: columns and shape are enough for an id
        pass
    return "t" + h.hexdigest()[:10]


def render_table(data: pd.DataFrame | pd.Series, *, caption: str | None = None, currency: str | None = None,
                 kinds: Mapping[str, str] | None = None, max_rows: int = 30, csv_href: str | None = None,
                 engine: str = "auto") -> str:
    """HTML of a table for a report (see the module docstring for the formatting rules).

    Parameters
    ----------
    data : DataFrame or Series
        The table. Its index is shown as the first column(s) unless it holds row numbers (an
        unnamed ``RangeIndex`` or integer index; see :func:`table_frame`).
    caption : str, optional
        Title shown above the table (plain text; escaped).
    currency : str, optional
        ISO code (``"EUR"``, ``"GBP"``, ``"USD"`` ...) for money columns; default the one set with
        :func:`set_default_currency`; none: plain numbers with two decimals.
    kinds : mapping, optional
        Column name → kind (:data:`KINDS`), overriding the inference of :func:`column_kinds`.
    max_rows : int
        Rows shown; a longer table shows its first `max_rows` rows and a note with the total.
    csv_href : str, optional
        Relative link to the full table (``tables/rules.csv``), shown in the note of a capped table.
    engine : {"auto", "great_tables", "styler"}
        ``auto``: great-tables when installed, else pandas' ``Styler``.

    Returns
    -------
    str
        An HTML fragment: ``<div class="ecrm-table">`` holding the table, plus ``ecrm-wide`` for a
        table printed in smaller type and ``ecrm-xwide`` for one printed on a landscape page
        (:func:`printed_width`), then the note.

    Examples
    --------
    >>> html = render_table(pd.DataFrame({"n": [2968], "share": [0.0742], "p_value": [0.0]}))
    >>> "2,968" in html and "7.4%" in html and "10⁻³⁰⁰" in html
    True
    """
    if engine not in ("auto", "great_tables", "styler"):
        raise ValueError(f"render_table: engine={engine!r} is not one of 'auto', 'great_tables', 'styler'")
    df = table_frame(data)
    n_rows = len(df)
    currency = currency if currency is not None else default_currency()
    kinds_ = column_kinds(df, kinds)
    shown = df.head(max_rows) if max_rows and n_rows > max_rows else df
    counts = _count_rows(data)  # describe(): "count" of a money column is a count, not money
    formatted = pd.DataFrame({c: [format_cell(v, "int" if i in counts else kinds_[c], currency)
                                  for i, v in enumerate(shown[c])] for c in shown.columns},
                             columns=list(shown.columns))
    note = ""
    if len(shown) < n_rows:
        link = (f' Full table: <a href="{html.escape(csv_href, quote=True)}">{html.escape(csv_href)}</a>.'
                if csv_href else "")
        note = f'<p class="ecrm-table-note">Showing the first {len(shown):,} of {n_rows:,} rows.{link}</p>'
    elif csv_href:
        note = (f'<p class="ecrm-table-note">As CSV: <a href="{html.escape(csv_href, quote=True)}">'
                f'{html.escape(csv_href)}</a></p>')
    numeric = [c for c, k in kinds_.items() if k in ("int", "float", "p", "share", "money")]
    use_gt = engine == "great_tables" or engine == "auto" and _has_great_tables()
    table_id = _table_id(formatted, f"{caption}|{n_rows}")  # the shown rows only: cheap for a long table
    body = (_great_table(formatted, numeric, caption, table_id) if use_gt
            else _styler_table(formatted, numeric, caption, table_id))
    return f'<div class="ecrm-table{_width_class(formatted, set(numeric))}">{body}</div>{note}'


#: the rows of a ``describe()`` table that hold counts whatever the column
_COUNT_ROWS = frozenset({"count", "unique", "freq"})


def _count_rows(data: pd.DataFrame | pd.Series) -> set[int]:
    """Positions of the count rows of a ``describe()`` table (index with ``count`` and ``mean`` or
    ``top``); empty for any other table."""
    idx = data.index
    if idx.nlevels != 1 or idx.dtype != object:
        return set()
    labels = [str(v) for v in idx]
    if "count" not in labels or not ({"mean", "top"} & set(labels)):
        return set()
    return {i for i, v in enumerate(labels) if v in _COUNT_ROWS}


def _has_great_tables() -> bool:
    try:
        import great_tables  # noqa: F401
    except ImportError:
        return False
    return True


def _great_table(formatted: pd.DataFrame, numeric: list[str], caption: str | None, table_id: str) -> str:
    from great_tables import GT, loc, style
    from great_tables import html as gt_html

    gt = GT(formatted, id=table_id)
    # a long snake_case header may break after an underscore (``<wbr>``), never inside a word
    breaks = {c: gt_html(html.escape(c).replace("_", "_<wbr>")) for c in formatted.columns if "_" in c}
    if breaks:
        gt = gt.cols_label(cases=breaks)
    if caption:
        gt = gt.tab_header(title=caption)  # great-tables escapes plain strings
    if numeric:
        gt = gt.cols_align(align="right", columns=numeric).tab_style(
            style=style.text(whitespace="nowrap"), locations=loc.body(columns=numeric))
    text_cols = [c for c in formatted.columns if c not in numeric]
    if text_cols:
        gt = gt.cols_align(align="left", columns=text_cols)
    gt = gt.tab_options(table_font_size="13px", column_labels_font_weight="bold", data_row_padding="3px",
                        table_margin_left="0", container_overflow_x="visible")
    return gt.as_raw_html(inline_css=False)


def _styler_table(formatted: pd.DataFrame, numeric: list[str], caption: str | None, table_id: str) -> str:
    # escape the cells and the column names; a fixed uuid (the table id) makes the HTML deterministic
    styler = (formatted.style.hide(axis="index").format(escape="html").format_index(escape="html", axis=1)
              .set_uuid(table_id))
    if caption:
        styler = styler.set_caption(html.escape(caption))
    styler = styler.set_table_attributes('class="ecrm-styler"')
    if numeric:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right", "white-space": "nowrap"})
    return styler.to_html()


def show_table(data: pd.DataFrame | pd.Series, **kwargs: Any) -> None:
    """Display :func:`render_table` of `data` in the notebook (same arguments)."""
    display(HTML(render_table(data, **kwargs)))
