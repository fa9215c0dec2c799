"""User-controlled text made safe for Markdown and HTML displays (bottom layer: every layer may use it).

A file called ``<img src=x onerror=alert(1)>.csv``, a product id ``<script>...</script>`` or an order
status ``[click](javascript:...)`` must show as that text wherever it is displayed -- a notebook's
``display(Markdown(...))``, a Markdown table of the data-quality report in JupyterLab, the HTML reports
nbconvert makes from them -- and never become a tag, a link or a table cell boundary. It lives here, in
layer 0, so that ``data/`` (the quality report) and ``report/`` (notebook displays, re-exported by
:mod:`ecrm_research.report.display`) escape alike.

Public names: :func:`escape_md`.
"""

from __future__ import annotations

import html
import re
import string

__all__ = ["escape_md"]

#: ASCII punctuation Markdown may give a meaning to, escaped with a backslash; ``& < > " '`` become
#: HTML entities instead (a backslash before them would not stop raw HTML in every renderer)
_MD_PUNCT = re.compile("([" + re.escape("".join(c for c in string.punctuation if c not in "&<>\"'")) + "])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def escape_md(value: object) -> str:
    r"""User-controlled text made safe for a Markdown (or HTML) display: shown as typed, never markup.

    Every ASCII punctuation character Markdown could act on (`` ` * _ [ ] ( ) # | ! \ ``...) gets a
    backslash, ``& < > " '`` become HTML entities (so no tag, attribute or entity of the value
    reaches the page) and line breaks become spaces (no new block: heading, list, raw HTML; in a
    table, no new row). ``|`` becomes ``\|``, so a value stays in its table cell. Use it for every
    value that comes from the user -- file names, ``-p`` parameter values, column, item, product and
    customer names, status values, error messages that quote them -- and not for the Markdown around
    them. ``None`` shows as ``None``.

    Parameters
    ----------
    value : object
        Anything; it is converted with ``str``.

    Returns
    -------
    str
        Markdown source that renders (nbconvert/mistune, JupyterLab/marked) as exactly ``str(value)``
        on one line.

    Examples
    --------
    >>> print(escape_md("<img src=x onerror=alert(1)>.csv"))
    &lt;img src\=x onerror\=alert\(1\)&gt;\.csv
    >>> print(escape_md("**bold** & `code`"))
    \*\*bold\*\* &amp; \`code\`
    """
    text = _LINE_BREAKS.sub(" ", str(value))
    return html.escape(_MD_PUNCT.sub(r"\\\1", text), quote=True)
