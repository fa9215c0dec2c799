"""Churn labels (pandas): one row per customer with duration, event and covariates (ChurnData)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..data.keys import arrow_strings, key_codes, key_isin, key_positions, key_runs
from ..data.schema import ID
from ..exceptions import AnalysisError, DataError
from .churn_data import UNITS_PER_YEAR, ChurnData, finish_churn_labels
from .rules import (
    REGISTRATION_ATTRIBUTES,
    RETURNED,
    STATUS_CODES,
    accounting_row,
    churn_windows,
    end_of_data,
    mean_or_nan,
    status_codes,
)

__all__ = ["ChurnData", "UNITS_PER_YEAR", "coerce_event", "event_coding", "label_churn", "prepare_customer_table"]


def _as_arrow_text(ids: pd.Series):
    """Customer ids as a pyarrow string array (ids held as numbers or objects are cast to text)."""
    arr = arrow_strings(ids)
    if arr is None:
        obj = np.asarray(ids.astype(object).where(ids.notna(), None), dtype=object)
        arr = pa.chunked_array([pa.array([None if v is None else str(v) for v in obj], type=pa.string())])
    return arr



def _by_customer_then_time(code: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """Permutation sorting by (customer code, time); ties keep no particular order.

    Times are almost always whole seconds (or coarser): then code and time fit one 64-bit
    key and a single sort replaces :func:`numpy.lexsort` (about 3 times faster).
    """
    if len(code) < 2:
        return np.arange(len(code))
    t0 = int(t_ns.min())
    rel = t_ns - t0
    for unit in (86_400 * 10**9, 10**9, 10**6, 10**3, 1):
        if unit == 1 or not (rel % unit).any():
            break
    span = int(rel.max()) // unit
    if span.bit_length() + int(code.max()).bit_length() <= 62:
        return np.argsort((code << span.bit_length()) | (rel // unit))
    return np.lexsort((t_ns, code))



@dataclass(frozen=True, eq=False)
class _CompletedByCustomer:
    """The completed orders up to ``as_of``, coded per customer and sorted by (customer, time).

    Customers are referred to by their *rank*: the position of their id among the customers with a
    completed order, in the order of the ids as text (row r of the labels is rank r).
    """

    n_in_data: int             # customers in the data: customers table ∪ customers with orders
    ids: pd.Series             # ids (text) of the customers to label, by rank
    names: np.ndarray          # the same ids as an object array
    rows: np.ndarray           # rows in ``orders`` of the completed orders, sorted
    customer: np.ndarray       # rank per sorted completed order
    t_ns: np.ndarray           # time (ns) per sorted completed order
    first: np.ndarray          # True at each customer's first sorted completed order
    last: np.ndarray           # True at each customer's last sorted completed order
    order_status: np.ndarray   # status code of every order (:func:`~.rules.status_codes`)
    order_t_ns: np.ndarray     # time (ns) of every order; NaT is the int64 minimum
    order_customer: np.ndarray  # rank of every order's customer; -1: no id, or no completed order

    @property
    def n_customers(self) -> int:
        return len(self.ids)


def _completed_by_customer(tables: Mapping[str, pd.DataFrame], ts: pd.Series, as_of: pd.Timestamp
                           ) -> _CompletedByCustomer:
    """Code the orders' customers once and sort the completed orders up to ``as_of`` by customer, then time.

    Raises
    ------
    AnalysisError
        No completed order on or before ``as_of``.
    """
    orders = tables["orders"]
    status = orders["status"]
    # integer codes, no per-row Python: customers are coded once and every later group-by is a
    # bincount / ufunc.at over the codes (the reference implementation grouped on id strings)
    st_low = status_codes(status)
    ts_ns = ts.to_numpy("datetime64[ns]").view(np.int64)
    nat = ts_ns == np.iinfo(np.int64).min
    has_cust = np.asarray(orders["customer_id"].notna(), dtype=bool)
    sel = (st_low == 1) & ~nat & has_cust & (ts_ns <= as_of.value)

    # one integer coding of the orders' customer ids (in the order of the ids as text, so
    # code order is name order) serves every later look-up
    cust_ids = pd.Series(pd.arrays.ArrowStringArray(_as_arrow_text(orders["customer_id"])))
    ccode, cuniq = key_codes(cust_ids, sort=True)
    n_dict = len(cuniq)
    n_all = n_dict + _registered_without_orders(tables, cuniq)
    if not sel.any():
        raise AnalysisError(f"No completed orders on or before as_of={as_of.date()}: nothing to label. "
                            f"Order statuses present: {status.astype('string').value_counts().to_dict()}.")
    rows = np.flatnonzero(sel)
    labelled = np.zeros(n_dict, dtype=bool)
    labelled[ccode[rows]] = True
    lab_codes = np.flatnonzero(labelled)      # codes of the customers to label, in name order
    lab_ids = pd.Series(cuniq[lab_codes])     # their ids (text), row r of the result = rank r
    rank_of_code = np.full(n_dict + 1, -1, dtype=np.int64)  # last slot: missing customer id
    rank_of_code[lab_codes] = np.arange(len(lab_codes))
    crank = rank_of_code[ccode[rows]]
    t_all = ts_ns[rows]
    perm = _by_customer_then_time(crank, t_all)
    cs, tsrt = crank[perm], t_all[perm]
    _break_time_ties(perm, cs, tsrt, orders["order_id"].iloc[rows])
    return _CompletedByCustomer(
        n_in_data=n_all, ids=lab_ids, names=lab_ids.to_numpy(dtype=object), rows=rows[perm], customer=cs,
        t_ns=tsrt, first=np.r_[True, cs[1:] != cs[:-1]], last=np.r_[cs[1:] != cs[:-1], True],
        order_status=st_low, order_t_ns=ts_ns, order_customer=rank_of_code[ccode])


def label_churn(
    tables: Mapping[str, pd.DataFrame],
    *,
    inactivity_days: int = 180,
    as_of: Any = None,
    covariate_window_days: int | None = None,
) -> ChurnData:
    """Label churn from canonical orders of a non-contractual shop (right-censored survival data).

    Parameters
    ----------
    tables : mapping of DataFrames
        Cleaned canonical tables; ``orders`` is required, ``customers``, ``order_items`` and
        ``service_contacts`` are used when present.
    inactivity_days : int
        Length of the inactivity window *W*: a customer churns after *W* days without a
        completed order.
    as_of : date-like, optional
        End of the observation period ("end of data"). Default: the latest ``ordered_at`` in
        ``orders`` (any status). Orders after ``as_of`` are ignored, so an earlier ``as_of``
        back-tests the labelling.
    covariate_window_days : int, optional
        Length *N* of the behaviour window after the first order in which covariates are
        measured. Default ``min(90, inactivity_days)``.

    Returns
    -------
    ChurnData
        ``frame`` has ``customer_id``, ``first_order_at``, ``last_order_at``, ``duration`` (days),
        ``event``, ``churned_at``, ``returned_after_churn``, ``n_orders_total``,
        ``spend_to_date``, ``annual_value`` and the covariates below.

    Notes
    -----
    Only *completed* orders count as activity. Let t₀ < t₁ < … be a customer's completed
    order times up to ``as_of`` and W = ``inactivity_days``.

    * **Time origin**: the first completed order t₀ (duration 0).
    * **Event (churn)**: the first order tⱼ after which no completed order follows within
      (tⱼ, tⱼ + W] *and* tⱼ + W ≤ ``as_of`` (the whole window was observed). The customer is
      churned at ``churned_at`` = tⱼ + W, so ``duration`` = tⱼ + W − t₀ (always ≥ W). It is a
      first-passage time: a customer who orders again after such a gap keeps event = 1 and is
      flagged ``returned_after_churn`` (a win-back, not modelled).
    * **Censoring**: customers with no such gap are still inside their window at the end of
      data; they are right-censored at ``as_of`` with ``duration`` = ``as_of`` − t₀.
    * **Covariates without look-ahead** are measured in the behaviour window [t₀, t₀ + N),
      N = ``covariate_window_days`` ≤ W, which ends before any churn can be declared:
      ``first_order_late`` (delivery_days > promised_days on the first order),
      ``late_share`` (share of late deliveries), ``return_share`` (returned / (completed +
      returned) orders), ``n_contacts`` (service contacts), ``mean_discount`` (mean
      discount_rate), ``n_orders_window`` (completed orders), ``spend_window``; plus the
      registration attributes ``is_member``, ``channel``, ``region``, ``age_band``,
      ``acquisition_source`` from ``customers``. Customers whose first order is less than N
      days before ``as_of`` have an incomplete window and are excluded (counted in
      ``accounting``).
    * ``annual_value`` = completed spend up to ``as_of`` × 365.25 / max(``as_of`` − t₀, N)
      (annualised historical spend), used for value at risk.
    """
    W, N = churn_windows(tables, inactivity_days, covariate_window_days)
    ts = pd.to_datetime(tables["orders"]["ordered_at"])
    as_of = end_of_data(as_of, ts.max())
    done = _completed_by_customer(tables, ts, as_of)
    acct: list[dict[str, Any]] = [
        accounting_row("customers in the data", done.n_in_data, "customers table ∪ customers with orders")]
    lab = _first_passage_labels(done, W, as_of)
    acct.append(accounting_row("customers with a completed order on or before as_of", len(lab),
                               f"{done.n_in_data - len(lab):,} customers without one are never at risk"))
    per_order = _completed_order_values(tables, done.rows)
    spend_total = (np.zeros(done.n_customers) if per_order is None
                   else np.bincount(done.customer, weights=per_order, minlength=done.n_customers))
    cov = _window_covariates(tables, done, N, as_of, per_order)
    return finish_churn_labels(lab, cov, spend_total, acct, as_of=as_of, W=W, N=N)


def _first_passage_labels(done: _CompletedByCustomer, W: int, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per customer (by rank): first and last order, event, churn date, duration (days),
    returned after churning, number of completed orders (see :func:`label_churn`'s notes)."""
    cid_code, first_mask, last_mask = done.customer, done.first, done.last
    nc = done.n_customers
    t = done.t_ns.view("datetime64[ns]")
    nxt = np.r_[t[1:], np.datetime64("NaT")]
    window = np.timedelta64(W, "D")
    with np.errstate(invalid="ignore"):
        gap_flag = (~last_mask) & ((nxt - t) > window)
    end_flag = last_mask & ((t + window) <= as_of.to_datetime64())
    flag = gap_flag | end_flag

    first_at = t[first_mask]
    last_at = t[last_mask]
    n_total = np.bincount(cid_code, minlength=nc)
    big = np.iinfo(np.int64).max
    first_flag_pos = np.full(nc, big, dtype=np.int64)
    np.minimum.at(first_flag_pos, cid_code[flag], np.flatnonzero(flag))
    flagged = first_flag_pos < big
    last_pos = np.flatnonzero(last_mask)
    returned = flagged & (first_flag_pos < last_pos)

    lab = pd.DataFrame({"customer_id": done.names, "first_order_at": first_at, "last_order_at": last_at})
    churn_at = np.where(flagged, t[np.minimum(first_flag_pos, len(t) - 1)], np.datetime64("NaT")
                        ).astype("datetime64[ns]") + np.timedelta64(W, "D")
    lab["event"] = flagged.astype(int)
    lab["churned_at"] = churn_at
    end = np.where(flagged, churn_at, as_of.to_datetime64()).astype("datetime64[ns]")
    lab["duration"] = (end - first_at) / np.timedelta64(1, "D")
    lab["returned_after_churn"] = returned.astype(bool)
    lab["n_orders_total"] = n_total.astype(float)
    return lab


@dataclass(frozen=True, eq=False)
class _BehaviourWindow:
    """The behaviour window [t₀, t₀ + N) of each customer (by rank), t₀ the first completed order."""

    first_ns: np.ndarray  # t₀ (ns) per customer
    length_ns: int        # N in ns

    def contains(self, code: np.ndarray, when_ns: np.ndarray) -> np.ndarray:
        """Whether each event (customer rank ``code``, time ``when_ns``) falls in its customer's window;
        False for rank -1 and for NaT."""
        ok = code >= 0
        f = self.first_ns[np.maximum(code, 0)]
        return ok & (when_ns >= f) & (when_ns < f + self.length_ns) & (when_ns != np.iinfo(np.int64).min)


def _mean_by(code: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``x`` per customer rank ``code`` (``n`` customers), ignoring NaN; NaN where none."""
    ok = ~np.isnan(x)
    return mean_or_nan(np.bincount(code[ok], weights=x[ok], minlength=n), np.bincount(code[ok], minlength=n))


def _order_floats(orders: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """Column ``name`` of ``orders`` at ``rows`` as floats (NaN where missing)."""
    return orders[name].iloc[rows].to_numpy(dtype=float, na_value=np.nan)


def _window_covariates(tables: Mapping[str, pd.DataFrame], done: _CompletedByCustomer, N: int,
                       as_of: pd.Timestamp, per_order: np.ndarray | None) -> pd.DataFrame:
    """The covariates measured without look-ahead in each customer's behaviour window, plus the
    registration attributes; one row per customer (by rank), indexed by ``customer_id``.

    ``per_order``: the value of each sorted completed order (None without ``order_items``).
    """
    orders = tables["orders"]
    nc = done.n_customers
    window = _BehaviourWindow(done.t_ns[done.first], N * 86_400 * 10**9)
    win = window.contains(done.customer, done.t_ns)
    wcode = done.customer[win]
    cov = pd.DataFrame(index=pd.Index(done.names, name="customer_id"))
    if {"promised_days", "delivery_days"} <= set(orders.columns):
        _add_late_deliveries(cov, orders, done, win)
    cov["return_share"] = _return_share(done, window, as_of)
    sc = tables.get("service_contacts")
    if sc is not None and len(sc):
        scode = key_positions(sc["customer_id"], done.ids)  # position in ids = customer rank
        when = pd.to_datetime(sc["contacted_at"]).to_numpy("datetime64[ns]").view(np.int64)
        cov["n_contacts"] = np.bincount(scode[window.contains(scode, when)], minlength=nc).astype(float)
    if "discount_rate" in orders.columns and orders["discount_rate"].iloc[done.rows].notna().any():
        cov["mean_discount"] = _mean_by(wcode, _order_floats(orders, "discount_rate", done.rows)[win], nc)
    cov["n_orders_window"] = np.bincount(wcode, minlength=nc).astype(float)
    if per_order is not None:
        cov["spend_window"] = np.bincount(wcode, weights=per_order[win], minlength=nc)
    if "customers" in tables:
        _add_registration_attributes(cov, tables["customers"], done.ids)
    if "channel" not in cov.columns and "channel" in orders.columns and orders["channel"].iloc[done.rows].notna().any():
        cov["channel"] = orders["channel"].iloc[done.rows[done.first]].astype(object).to_numpy()
    return cov


def _add_late_deliveries(cov: pd.DataFrame, orders: pd.DataFrame, done: _CompletedByCustomer,
                         win: np.ndarray) -> None:
    """``first_order_late`` (nullable boolean) and ``late_share`` (share of late deliveries in the
    window; ``win`` marks the sorted completed orders inside it)."""
    dl, pr = _order_floats(orders, "delivery_days", done.rows), _order_floats(orders, "promised_days", done.rows)
    with np.errstate(invalid="ignore"):
        late = np.where(np.isnan(dl) | np.isnan(pr), np.nan, (dl > pr).astype(float))
    first_late = late[done.first]
    cov["first_order_late"] = pd.array(np.where(np.isnan(first_late), None, first_late == 1), dtype="boolean")
    cov["late_share"] = _mean_by(done.customer[win], late[win], done.n_customers)


def _return_share(done: _CompletedByCustomer, window: _BehaviourWindow, as_of: pd.Timestamp) -> np.ndarray:
    """Returned / (completed + returned) orders per customer in the window; 0 without any."""
    st_low, ts_ns, code_of_cust = done.order_status, done.order_t_ns, done.order_customer
    nat = ts_ns == np.iinfo(np.int64).min
    rel = (st_low > 0) & ~nat & (ts_ns <= as_of.value) & window.contains(code_of_cust, ts_ns)
    is_return = (st_low[rel] == STATUS_CODES[RETURNED]).astype(float)
    return np.nan_to_num(_mean_by(code_of_cust[rel], is_return, done.n_customers), nan=0.0)


def _registered_without_orders(tables: Mapping[str, pd.DataFrame], order_customers: pd.Index) -> int:
    """Registered customers (``customers`` table) without any order."""
    if "customers" not in tables:
        return 0
    reg = tables["customers"]["customer_id"].dropna()
    reg = reg if isinstance(reg.dtype, pd.StringDtype) else reg.astype(str).astype(ID)
    return int(reg[~key_isin(reg, pd.Series(order_customers))].nunique())


def _break_time_ties(perm: np.ndarray, code: np.ndarray, t_ns: np.ndarray, order_ids: pd.Series) -> None:
    """Reorder ``perm`` in place where one customer has orders at the same time: order ids break the
    tie, as a sort on them would (``code``/``t_ns`` are already permuted; ``order_ids`` are not)."""
    tie = np.flatnonzero((code[1:] == code[:-1]) & (t_ns[1:] == t_ns[:-1]))
    if not len(tie):
        return
    pos_in = np.unique(np.r_[tie, tie + 1])
    grp = np.cumsum(~np.isin(pos_in - 1, tie))  # a group starts where a position is not tied to the previous
    sub = pd.DataFrame({"g": grp, "oid": order_ids.iloc[perm[pos_in]].astype(str).to_numpy(),
                        "p": perm[pos_in]}).sort_values(["g", "oid"], kind="mergesort")
    perm[pos_in] = sub["p"].to_numpy()


def _completed_order_values(tables: Mapping[str, pd.DataFrame], drows: np.ndarray) -> np.ndarray | None:
    """Σ quantity × unit_price per completed order (``drows``: their rows in ``orders``, sorted);
    None without order lines."""
    if "order_items" not in tables or not len(tables["order_items"]):
        return None
    items, order_ids = tables["order_items"], tables["orders"]["order_id"]
    # lines are summed per run of one order, runs per completed order: no per-line join array
    starts, opos = key_runs(items["order_id"], order_ids)  # run of lines -> row in orders
    sorted_pos = np.full(len(order_ids) + 1, -1, dtype=np.int64)  # row in orders -> position in drows
    sorted_pos[drows] = np.arange(len(drows))
    ipos = sorted_pos[opos]  # opos -1 reads the last slot, -1
    v = items["quantity"].to_numpy(dtype=float, na_value=np.nan) * items["unit_price"].to_numpy(dtype=float,
                                                                                                 na_value=np.nan)
    run_sum = np.add.reduceat(np.where(np.isnan(v), 0.0, v), starts)  # a line without a value adds 0
    ok = ipos >= 0
    return np.bincount(ipos[ok], weights=run_sum[ok], minlength=len(drows))


def _add_registration_attributes(cov: pd.DataFrame, cust: pd.DataFrame, lab_ids: pd.Series) -> None:
    """The customers' registration attributes (:data:`~.rules.REGISTRATION_ATTRIBUTES`) as covariates."""
    cpos = key_positions(lab_ids,
                         cust["customer_id"] if isinstance(cust["customer_id"].dtype, pd.StringDtype)
                         else cust["customer_id"].astype(str))
    for c in REGISTRATION_ATTRIBUTES:
        if c in cust.columns and cust[c].notna().any():
            s = cust[c].iloc[np.maximum(cpos, 0)].reset_index(drop=True) if len(cust) else cust[c]
            s.index = cov.index
            s = s.where(pd.Series(cpos >= 0, index=cov.index)) if (cpos < 0).any() else s
            if c == "is_member":
                s = s.astype("boolean")
            elif isinstance(s.dtype, pd.CategoricalDtype):
                s = s.cat.remove_unused_categories()
            else:
                s = s.astype(object).where(s.notna(), np.nan)
            cov[c] = s



_TRUE = {"1", "1.0", "true", "yes", "y", "t", "churn", "churned"}



_FALSE = {"0", "0.0", "false", "no", "n", "f"}



#: Per coding of :func:`event_coding`: the churned value, the censored value, and the coding in words.
_EVENT_VALUES = {"0/1": ("1", "0", "coded 0/1"), "1/2": ("2", "1", "coded 1/2 as in R's Surv"),
                 "true/false": ("true", "false", "coded true/false"),
                 "yes/no": ("yes", "no", "coded yes/no")}


def _values_with_counts(values: pd.Series, limit: int = 10) -> str:
    """``'0' (141), '1' (5,033), '2' (1,869)``: the distinct non-missing values, most frequent first."""
    counts = values.dropna().value_counts(sort=False)
    counts = counts.iloc[np.argsort(-counts.to_numpy(), kind="stable")]
    shown = ", ".join(f"{v!r} ({n:,})" if isinstance(v, str) else f"{v} ({n:,})"
                      for v, n in counts.iloc[:limit].items())
    return shown + (f" and {len(counts) - limit:,} more value(s)" if len(counts) > limit else "")


def _numeric_coding(values: pd.Series) -> str | None:
    """R's ``Surv`` rule for numbers: ``"1/2"`` when the largest value is 2 and every value is 1 or 2,
    ``"0/1"`` when every value is 0 or 1, else None."""
    v = values.dropna()
    if len(v) and v.max() == 2 and v.isin([1, 2]).all():
        return "1/2"
    return "0/1" if v.isin([0, 1]).all() else None


def _text_numbers(s: pd.Series) -> pd.Series | None:
    """The numbers of a text column whose every non-blank value is a number, else None."""
    num = pd.to_numeric(s, errors="coerce")
    return num if bool((num.notna() == s.notna()).all()) else None


def event_coding(series: pd.Series, name: str = "event", *, source: str | None = None) -> str:
    """How an event (churned?) column is coded; every other coding is an error.

    Parameters
    ----------
    series : Series
        The event column as read.
    name : str
        Its name, for the message.
    source : str, optional
        The file it comes from, for the message.

    Returns
    -------
    str
        ``"0/1"`` (1 = churned, 0 = censored), ``"1/2"`` (R's ``Surv`` convention: 2 = churned,
        1 = censored; chosen as R does, when the largest value is 2), ``"true/false"``
        (booleans) or ``"yes/no"`` (text: yes/no, true/false, y/n, t/f, 1/0, churned).

    Raises
    ------
    DataError
        Any other values (0/1/2, 3/4, 'maybe'...): the message lists the values found with
        their counts and how to recode them.
    """
    if pd.api.types.is_bool_dtype(series):
        return "true/false"
    if pd.api.types.is_numeric_dtype(series):
        coding, shown = _numeric_coding(series), series
    else:
        s = series.astype("string").str.strip().str.lower()
        s = s.mask(s == "")
        num = _text_numbers(s)
        if num is not None:
            coding = _numeric_coding(num)
        else:
            known = s.isin(_TRUE | _FALSE).fillna(False).to_numpy(bool)
            coding = "yes/no" if bool((known | s.isna().to_numpy(bool)).all()) else None
        shown = series.astype("string").str.strip().mask(lambda x: x == "")
    if coding is not None:
        return coding
    where = f"{source}: " if source else ""
    raise DataError(f"{where}event column '{name}' must be 0/1, true/false or yes/no, or 1/2 as in R's Surv; "
                    f"it holds {_values_with_counts(shown)}. Recode it in the file: map the values to 0/1 "
                    f"(1 = churned, 0 = still a customer) or 1/2 (2 = churned, 1 = still a customer, R's Surv "
                    f"convention), or to yes/no.", source=source, column=str(name),
                    n_rows=int(series.notna().sum()), example=shown.dropna().iloc[0] if shown.notna().any() else None)


def coerce_event(series: pd.Series, name: str = "event", *, source: str | None = None) -> pd.Series:
    """Event indicator as float 0/1 (1 = churned; NaN where missing) from any coding
    :func:`event_coding` accepts (0/1, R's 1/2 with 2 = churned, booleans, yes/no text).

    Raises
    ------
    DataError
        Any other coding, echoing the values found (see :func:`event_coding`).
    """
    coding = event_coding(series, name, source=source)
    if coding == "true/false":
        return series.astype("Float64").astype(float)
    if coding == "yes/no":
        s = series.astype("string").str.strip().str.lower()
        out = pd.Series(np.nan, index=series.index)
        out[s.isin(_TRUE).fillna(False).to_numpy(bool)] = 1.0
        out[s.isin(_FALSE).fillna(False).to_numpy(bool)] = 0.0
        return out
    num = series.astype(float) if pd.api.types.is_numeric_dtype(series) else \
        pd.to_numeric(series.astype("string").str.strip().mask(lambda x: x == ""), errors="coerce").astype(float)
    return num - 1.0 if coding == "1/2" else num


def _numeric_text(s: pd.Series, min_share: float = 0.9) -> pd.Series | None:
    """Numbers parsed from a text column when ≥ ``min_share`` of its non-blank values are numbers."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return None
    txt = s.astype("string").str.strip()
    nonblank = txt.notna() & (txt != "")
    if not nonblank.any():
        return None
    num = pd.to_numeric(txt.where(nonblank), errors="coerce")
    if num[nonblank].notna().mean() >= min_share:
        return num.astype(float)
    return None



def _looks_like_id(s: pd.Series, name: str) -> bool:
    if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
            or pd.api.types.is_integer_dtype(s)):
        return False
    low = name.lower().replace("_", "")
    named = low == "id" or low.endswith("id") or low.endswith("key")
    return bool(named and s.is_unique) or bool(
        (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)) and s.is_unique and len(s) > 20)



def prepare_customer_table(
    frame: pd.DataFrame,
    duration_col: str,
    event_col: str,
    *,
    covariates: Sequence[str] | None = None,
    id_col: str | None = None,
    value_col: str | None = None,
    unit: str = "days",
) -> ChurnData:
    """Survival data from a ready customer table (one row per customer).

    Parameters
    ----------
    frame : DataFrame
        The customer table, e.g. Telco with ``tenure`` and ``Churn``.
    duration_col : str
        Time observed so far (tenure) for active customers, time to churn for churners.
    event_col : str
        Churned? 0/1 (1 = churned), 1/2 as in R's ``Surv`` (2 = churned, 1 = censored), boolean,
        or yes/no / true/false text (see :func:`event_coding`); the coding used is stated in
        ``accounting`` and ``definition``.
    covariates : list of str, optional
        Model covariates. Default: every other column except identifiers (``id_col``, or a
        column named ``*id``/``*key`` with unique values, or a unique text column).
    id_col : str, optional
        Customer identifier; default detected, else the row number.
    value_col : str, optional
        Historical total spend per customer (e.g. Telco ``TotalCharges``); annualised as
        value / duration × periods per year for value at risk.
    unit : str
        Unit of ``duration_col``: ``days``, ``weeks``, ``months`` or ``years``.

    Returns
    -------
    ChurnData

    Notes
    -----
    * Numeric columns stored as text (Telco ``TotalCharges`` has 11 blank " " values) are
      converted; each blank becomes missing and is counted in ``accounting``.
    * Rows with a missing duration/event, or a duration ≤ 0 (joined in the current period:
      no time at risk yet, e.g. Telco's 11 tenure-0 customers), are dropped and counted.
    * Missing covariate values are left in place; :class:`ChurnCoxModel` reports them (and
      drops the rows with a count when ``missing='drop'``).
    """
    _check_table_arguments(frame, duration_col, event_col, unit)
    df = frame.copy()
    acct = [accounting_row("rows in the customer table", len(df), "input")]
    if id_col is None:
        id_col = _detect_id_column(df, duration_col, event_col)
    ids = df[id_col].astype(str) if id_col is not None else pd.Series(np.arange(len(df)).astype(str), index=df.index)
    covariates = _covariate_columns(df, covariates, {duration_col, event_col, id_col}, value_col)
    notes = _convert_numeric_text(df, set(covariates) | ({value_col} if value_col else set()) | {duration_col})
    duration = pd.to_numeric(df[duration_col], errors="coerce").astype(float)
    coding = event_coding(df[event_col], event_col)
    event = coerce_event(df[event_col], event_col)
    acct.extend(notes)
    keep, dropped = _rows_at_risk(duration, event, duration_col, event_col)
    acct.extend(dropped)
    out = pd.DataFrame({"customer_id": ids[keep].to_numpy(), "duration": duration[keep].to_numpy(),
                        "event": event[keep].astype(int).to_numpy()})
    if value_col is not None:
        out["annual_value"] = _annual_value(df, keep, value_col, out["duration"].to_numpy(), unit)
    for c in covariates:
        out[c] = df.loc[keep, c].to_numpy() if not isinstance(df[c].dtype, pd.CategoricalDtype) \
            else df.loc[keep, c].reset_index(drop=True).to_numpy()
    acct.append(accounting_row("customers analysed", len(out), "one row each"))
    churned_value, censored_value, how = _EVENT_VALUES[coding]
    n_churned, n_censored = int(out["event"].sum()), int((out["event"] == 0).sum())
    acct.append(accounting_row("churned (event = 1)", n_churned, f"{event_col} = {churned_value} ({how})"))
    acct.append(accounting_row("right-censored (event = 0)", n_censored,
                                f"{event_col} = {censored_value}: still a customer at the end of data"))
    definition = (f"Customer table: '{duration_col}' ({unit}) is the time from joining to churning for churners "
                  f"('{event_col}' = {churned_value}, event) and the time observed so far for current customers "
                  f"(right-censored at the end of data). Event column '{event_col}' {how}: "
                  f"{churned_value} = churned ({n_churned:,}), {censored_value} = censored ({n_censored:,}).")
    return ChurnData(frame=out, covariates=list(covariates), unit=unit, accounting=pd.DataFrame(acct),
                     definition=definition)


def _check_table_arguments(frame: pd.DataFrame, duration_col: str, event_col: str, unit: str) -> None:
    """The duration unit is known and the duration and event columns exist."""
    if unit not in UNITS_PER_YEAR:
        raise AnalysisError(f"unit must be one of {list(UNITS_PER_YEAR)}, got {unit!r}.")
    for col, what in ((duration_col, "duration_col"), (event_col, "event_col")):
        if col is None or col not in frame.columns:
            raise AnalysisError(f"{what}={col!r} is not a column of the customer table. Columns: "
                                f"{list(frame.columns)[:30]}. Pass duration_col= and event_col=.")


def _detect_id_column(df: pd.DataFrame, duration_col: str, event_col: str) -> str | None:
    """The first column (other than duration and event) that looks like a customer id, else None."""
    cands = [c for c in df.columns if c not in (duration_col, event_col) and _looks_like_id(df[c], str(c))]
    return cands[0] if cands else None


def _covariate_columns(df: pd.DataFrame, covariates: Sequence[str] | None, excluded: set,
                       value_col: str | None) -> list[str]:
    """The covariates asked for (checked to be columns), or by default every column neither
    ``excluded`` nor an identifier (``value_col`` is kept even when it looks like one)."""
    if covariates is None:
        return [c for c in df.columns if c not in excluded
                and not (c != value_col and _looks_like_id(df[c], str(c)))]
    missing = [c for c in covariates if c not in df.columns]
    if missing:
        raise AnalysisError(f"covariate(s) {missing} are not columns of the customer table. "
                            f"Columns: {list(df.columns)[:30]}.")
    return list(covariates)


def _convert_numeric_text(df: pd.DataFrame, columns: set) -> list[dict[str, Any]]:
    """Replace, in place, each of ``columns`` that holds numbers as text by the numbers; one
    accounting row per converted column (blanks that became missing)."""
    notes = []
    for c in columns:
        num = _numeric_text(df[c])
        if num is not None:
            blanks = int(num.isna().sum() - df[c].isna().sum())
            df[c] = num
            notes.append(accounting_row(f"'{c}': numeric text converted", blanks,
                                         f"{blanks:,} blank/non-numeric value(s) became missing"))
    return notes


def _rows_at_risk(duration: pd.Series, event: pd.Series, duration_col: str, event_col: str
                  ) -> tuple[pd.Series, list[dict[str, Any]]]:
    """The rows kept (a duration and an event, duration > 0) and the accounting rows of those dropped."""
    bad = duration.isna() | event.isna()
    nonpos = ~bad & (duration <= 0)
    dropped = [accounting_row("dropped: missing duration or event", int(bad.sum()),
                              f"{duration_col} or {event_col} empty"),
               accounting_row(f"dropped: {duration_col} ≤ 0", int(nonpos.sum()),
                              "joined in the current period: no time at risk yet")]
    return ~(bad | nonpos), dropped


def _annual_value(df: pd.DataFrame, keep: pd.Series, value_col: str, duration: np.ndarray, unit: str) -> np.ndarray:
    """Historical spend ``value_col`` of the kept rows, annualised: value / duration × periods per year."""
    if value_col not in df.columns:
        raise AnalysisError(f"value_col={value_col!r} is not a column of the customer table.")
    v = pd.to_numeric(df.loc[keep, value_col], errors="coerce").to_numpy(float)
    return v / duration * UNITS_PER_YEAR[unit]
