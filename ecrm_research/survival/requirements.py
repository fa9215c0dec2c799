"""What the data must hold before a churn analysis starts: the columns a customer table is read by,
and enough customers and churn events for survival curves, a Cox model and a holdout split.

Each check raises an error that names the file, the column or the counts and says what to do,
instead of letting pandas, scikit-learn or lifelines fail later with a raw exception.
"""

from __future__ import annotations

import difflib

import pandas as pd

from ..exceptions import AnalysisError, ParameterError
from ..prep.churn import ChurnData

#: Fewest customers a churn analysis accepts: a 30 % holdout must leave a few customers on each side.
MIN_CUSTOMERS = 10
#: Fewest churn events: the Cox model needs events to estimate anything, and the stratified holdout
#: split needs at least two of them.
MIN_EVENTS = 2


def require_table_columns(frame: pd.DataFrame, duration_col: str | None, event_col: str | None, *,
                          source: str | None = None) -> None:
    """Check that a customer table has the duration and event columns the user named.

    Parameters
    ----------
    frame : DataFrame
        The customer table as read.
    duration_col, event_col : str or None
        The ``duration_col`` and ``event_col`` parameters.
    source : str, optional
        The file's name, echoed in the message.

    Raises
    ------
    ParameterError
        When either is missing (None) or is not a column of the table; the message names the
        parameter, the file, the columns present and the closest column names.
    """
    where = f" of {source}" if source else ""
    columns = [str(c) for c in frame.columns]
    shown = ", ".join(columns[:40]) + (f", ... ({len(columns):,} columns)" if len(columns) > 40 else "")
    unset = [name for name, value in (("duration_col", duration_col), ("event_col", event_col)) if value is None]
    if unset:
        raise ParameterError(
            f"A customer table needs duration_col and event_col; {' and '.join(unset)} not given. Columns"
            f"{where}: {shown}. Pass e.g. -p duration_col tenure -p event_col Churn.", allowed=columns)
    for name, value in (("duration_col", duration_col), ("event_col", event_col)):
        if value not in frame.columns:
            close = difflib.get_close_matches(str(value), columns, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ParameterError(
                f"{name}={value!r} is not a column{where}.{hint} Columns present: {shown}. "
                f"Pass -p {name} COLUMN with one of them (names are case-sensitive).", allowed=columns)


def require_churn_data(data: ChurnData, *, min_customers: int = MIN_CUSTOMERS, min_events: int = MIN_EVENTS,
                       source: str | None = None) -> None:
    """Stop with a clear message when too few customers or churn events are left to analyse.

    Parameters
    ----------
    data : ChurnData
        The labelled customers (``label_churn`` or ``prepare_customer_table``).
    min_customers : int, default :data:`MIN_CUSTOMERS`
    min_events : int, default :data:`MIN_EVENTS`
    source : str, optional
        The data's name, echoed in the message.

    Raises
    ------
    AnalysisError
        With the counts, the churn definition and what to change (more data, a shorter
        ``inactivity_days``); ``data.accounting`` shows where the customers went.
    """
    n, events = data.n_customers, data.n_events
    if n >= min_customers and events >= min_events:
        return
    where = f" in {source}" if source else ""
    have = f"{n:,} customer(s) with {events:,} churn event(s){where}"
    if n < min_customers:
        need = (f"Churn analysis needs at least {min_customers} customers with time at risk; the data have "
                f"{have}. Survival curves, a Cox model and a holdout check are meaningless on so few.")
        todo = "Use data covering more customers"
    else:
        need = (f"Churn analysis needs at least {min_events} churn events to model who leaves sooner; "
                f"the data have {have}.")
        todo = "Use a longer history"
        if data.inactivity_days is not None:
            todo += f", or a shorter inactivity window than inactivity_days={data.inactivity_days:g}"
    raise AnalysisError(f"{need} {todo}; the accounting table (churn_data.accounting) shows where the "
                        f"customers of the input went.")
