"""Plausibility guards: values that parse but cannot be right.

A date of 1900-01-01 or 2099-12-31, a unit price of 1e300 or ``inf``, a quantity of ten million:
each reads without an error, and each silently wrecks an analysis (revenue becomes ``inf``, RFM
is measured "as of 2099"). :func:`ecrm_research.data.quality.clean` quarantines such rows with
their own reason codes (``implausible_date``, ``non_finite_value``, ``implausible_value``) using
the masks computed here, and the quality report lists them (checks ``before ...``, ``after ...``,
``not finite``, ``above ...``).

The bounds are :class:`~ecrm_research.data.quality.CleaningPolicy` fields: ``min_date``
(default 1990-01-01), ``max_date`` (default: the day of the run), ``max_unit_price`` (1e7) and
``max_abs_quantity`` (1e6).

Public names: :func:`date_window`, :func:`outside_window`, :func:`not_finite`, :func:`above`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ParameterError


def _timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if pd.isna(ts):
        raise ParameterError(f"CleaningPolicy.{name} is {value!r}, not a date; give e.g. '1990-01-01' "
                             "(or None for no bound).", allowed=["YYYY-MM-DD", None])
    return ts.tz_convert(None) if ts.tzinfo is not None else ts


def date_window(min_date: Any = "1990-01-01", max_date: Any = None, *,
                today: pd.Timestamp | None = None) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """The plausible dates: from `min_date` (inclusive) up to the end of `max_date`'s day.

    Parameters
    ----------
    min_date : str, date or None
        Earliest plausible date; ``None`` = no lower bound.
    max_date : str, date or None
        Latest plausible date (its whole day counts); ``None`` = the day of the run.
    today : Timestamp, optional
        The run date (tests); default now.

    Returns
    -------
    tuple of (Timestamp or None, Timestamp)
        ``(lo, hi)`` with dates ``lo <= d < hi`` plausible.

    Raises
    ------
    ParameterError
        A bound that is not a date, or `min_date` after `max_date`.

    Examples
    --------
    >>> date_window("1990-01-01", "2024-12-31")
    (Timestamp('1990-01-01 00:00:00'), Timestamp('2025-01-01 00:00:00'))
    """
    lo = None if min_date is None else _timestamp(min_date, "min_date")
    last = (today or pd.Timestamp.now()) if max_date is None else _timestamp(max_date, "max_date")
    hi = last.normalize() + pd.Timedelta(days=1)
    if lo is not None and lo >= hi:
        raise ParameterError(f"CleaningPolicy.min_date ({lo.date()}) is after max_date ({last.date()}); "
                             "no date would be plausible.")
    return lo, hi


def outside_window(dates: pd.Series, lo: pd.Timestamp | None, hi: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """``(too_early, too_late)`` masks of a datetime column (missing dates are neither)."""
    values = dates.to_numpy(dtype="datetime64[ns]")
    given = ~np.isnat(values)
    early = given & (values < np.datetime64(lo.to_datetime64(), "ns")) if lo is not None \
        else np.zeros(len(values), dtype=bool)
    late = given & (values >= np.datetime64(hi.to_datetime64(), "ns"))
    return early, late


def not_finite(values: pd.Series) -> np.ndarray:
    """True where a number is ``inf``, ``-inf`` or missing (NaN): a required amount that cannot be used."""
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return ~np.isfinite(arr)


def above(values: pd.Series, bound: float | None, *, absolute: bool = False) -> np.ndarray:
    """True where a finite number exceeds `bound` (``|x| > bound`` with `absolute`); none when `bound` is None."""
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if bound is None:
        return np.zeros(len(arr), dtype=bool)
    x = np.abs(arr) if absolute else arr
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & (x > float(bound))


__all__ = ["date_window", "outside_window", "not_finite", "above"]
