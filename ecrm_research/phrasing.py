"""Numbers as a reader reads them: p-values that never read 0, counts with shares that never round to all or none.

One home for the wording every analysis's tables and headline findings use (layer 0, so every
analysis can share it without importing another analysis).

Examples
--------
>>> format_p_value(0.0), format_p_value(0.0412345), format_p_value(3.2e-45)
('< 1e-300', '0.0412', '3.2e-45')
>>> p_text(6.61e-22)
'p = 6.6e-22'
>>> share_text(1118, 1121, "rules")
'1,118 of 1,121 rules (99.7%)'
"""

from __future__ import annotations

import math

#: Below this a double-precision p-value has underflowed (to 0 or a denormal): it is shown as a bound.
P_FLOOR = 1e-300


def format_p_value(p: float, digits: int = 3) -> str:
    """A p-value as text that never reads 0.

    Parameters
    ----------
    p : float
        The p-value (NaN or None: ``'not available'``).
    digits : int
        Significant digits (``'0.0412'`` with 3, ``'3.2e-45'`` in scientific notation when small).

    Returns
    -------
    str
        ``'< 1e-300'`` below :data:`P_FLOOR` (where doubles underflow, so the exact value is unknown),
        else the value with ``digits`` significant digits.
    """
    if p is None:
        return "not available"
    try:
        v = float(p)
    except (TypeError, ValueError):
        return str(p)
    if not math.isfinite(v):
        return "not available"
    return f"< {P_FLOOR:g}" if v < P_FLOOR else f"{v:.{int(digits)}g}"


def p_text(p: float, digits: int = 2) -> str:
    """``'p = 0.012'``, ``'p = 2.3e-41'`` or ``'p < 1e-300'`` (never ``'p = 0'``) for running text."""
    txt = format_p_value(p, digits)
    return f"p {txt}" if txt.startswith("<") else ("p not available" if txt == "not available" else f"p = {txt}")


def share_text(k: int, n: int, noun: str = "", decimals: int = 1) -> str:
    """``'1,118 of 1,121 rules (99.7%)'``: a count and its share, never rounded up to 100% or down to 0%.

    More decimals are shown when ``decimals`` would round a share below 100% up to it (``'2,999 of
    3,000 (99.97%)'``) or a share above 0% down to it; exactly all or none reads ``'(100%)'`` /
    ``'(0%)'``. ``noun`` goes after the total (``share_text(3, 4, "rules")`` is ``'3 of 4 rules (75.0%)'``).
    """
    k, n = int(k), int(n)
    total = f"{k:,} of {n:,}" + (f" {noun}" if noun else "")
    if n <= 0:
        return total
    if k in (0, n):
        return f"{total} ({100 if k else 0}%)"
    pct = 100.0 * k / n
    d = int(decimals)
    while d < 12 and not (0 < round(pct, d) < 100):
        d += 1
    return f"{total} ({pct:.{d}f}%)"
