"""One row per customer from order lines (pandas): the as-of date, RFM and behaviour features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..data.keys import key_codes, key_positions, key_runs
from ..data.schema import require_columns
from ..exceptions import AnalysisError, SchemaError
from .rules import DAYS_PER_MONTH, analysis_date, category_column, mean_or_nan, spend_share, status_codes

__all__ = ["DAYS_PER_MONTH", "RFM_COLUMNS", "resolve_as_of", "rfm_table", "rfm_frame", "rate_features",
           "customer_features"]

#: the columns RFM and the customer features read, per table (both engines check them)
RFM_COLUMNS = {"orders": ("order_id", "customer_id", "ordered_at", "status"),
               "order_items": ("order_id", "quantity", "unit_price")}


def require_rfm_columns(columns_of: dict[str, list], engine: str) -> None:
    """Raise :class:`SchemaError` when a table lacks a column of :data:`RFM_COLUMNS` (``columns_of``:
    table → its columns)."""
    for table, needed in RFM_COLUMNS.items():
        require_columns(columns_of[table], table, table, required=needed,
                        hint=f"RFM and the customer features need them ({engine} engine). Pass the cleaned "
                             "canonical tables (prep.engine(...).prepare(...)[1].tables).")



def resolve_as_of(orders: pd.DataFrame, as_of: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The analysis date: ``as_of`` as given, else the day after the last order.

    Parameters
    ----------
    orders : DataFrame
        Canonical ``orders`` (``ordered_at``).
    as_of : str or Timestamp, optional
        Any value :func:`pandas.Timestamp` accepts, e.g. ``"2011-12-10"``.

    Returns
    -------
    Timestamp
        Normalised to midnight.
    """
    if as_of is not None or len(orders) == 0:
        return analysis_date(as_of, None)
    return analysis_date(None, pd.Timestamp(orders["ordered_at"].max()))



_DAY_NS = 86_400 * 10**9



def _nan0(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), 0.0, x)



@dataclass
class _OrderCore:
    """Completed/returned orders before ``as_of`` with integer customer codes (internal).

    ``rows``: positions in ``orders``; ``cust``: customer code per such order; ``uniques``:
    the customer ids of the codes (in id order); ``completed``: bool per order; ``value``,
    ``returned_value``, ``units``, ``n_lines``: per-order sums; ``line_value``: quantity ×
    unit_price per order line; ``line_keep``: whether the line counts; ``run_starts`` /
    ``run_order``: the order lines as runs of one order each, with the run's position in
    ``rows`` (-1 = not one of these orders). :attr:`line_order` expands them per line.
    """

    rows: np.ndarray
    cust: np.ndarray
    uniques: pd.Index
    completed: np.ndarray
    ordered_ns: np.ndarray
    value: np.ndarray
    returned_value: np.ndarray
    units: np.ndarray
    n_lines: np.ndarray
    line_value: np.ndarray
    line_keep: np.ndarray
    run_starts: np.ndarray
    run_order: np.ndarray

    @property
    def line_order(self) -> np.ndarray:
        """Per order line, its position in ``rows``; -1 for lines that do not count."""
        lens = np.diff(np.r_[self.run_starts, len(self.line_value)])
        return np.where(self.line_keep, np.repeat(self.run_order, lens), -1)



def _order_core(orders: pd.DataFrame, order_items: pd.DataFrame, as_of: pd.Timestamp) -> _OrderCore:
    """Vectorised core of :func:`rfm_table`: one pass over the order lines, integer keys only.

    The order-line → order join is :func:`keys.key_runs` (done once; a sort-merge on
    integers for fixed-width ids), per run of lines of one order; lines are summed per run
    (``numpy.add.reduceat``) and runs per order and customer with ``numpy.bincount``, so no
    per-line position array is built and peak memory stays at a few float arrays of the
    order-line length.
    """
    require_rfm_columns({"orders": list(orders.columns), "order_items": list(order_items.columns)}, "pandas")
    ts = pd.to_datetime(orders["ordered_at"]).to_numpy("datetime64[ns]").view(np.int64)
    st = status_codes(orders["status"])
    sel = np.asarray(orders["customer_id"].notna(), dtype=bool) & (st > 0) & (ts < as_of.value)
    sel &= ts != np.iinfo(np.int64).min  # NaT
    rows = np.flatnonzero(sel)
    oid = orders["order_id"].iloc[rows]
    starts, run_order, unique = key_runs(order_items["order_id"], oid, return_unique=True)
    m = len(rows)
    if not unique:
        dup = oid[oid.duplicated(keep=False)]
        raise SchemaError(f"orders: order_id is not unique ({len(dup):,} rows share an id, first: {dup.iloc[0]!r}); "
                          "RFM needs one row per order. Pass the cleaned tables (quality.prepare(...)[1].tables).",
                          source="orders", column="order_id", n_rows=len(dup), example=dup.iloc[0])
    completed = st[rows] == 1
    q = order_items["quantity"].to_numpy(dtype=float, na_value=np.nan)
    value = q * order_items["unit_price"].to_numpy(dtype=float, na_value=np.nan)
    lens = np.diff(np.r_[starts, len(value)])
    has_run = run_order >= 0
    run_completed = np.zeros(len(starts), dtype=bool)
    run_completed[has_run] = completed[run_order[has_run]]
    # positive lines of a returned order went back: they count for nothing
    keep = np.repeat(has_run, lens) & (np.repeat(run_completed, lens) | (value < 0))
    v0 = np.where(keep, _nan0(value), 0.0)  # a line without a value counts as 0
    per_run = {}
    if len(value):
        per_run = {"value": np.add.reduceat(v0, starts), "ret": np.add.reduceat(np.minimum(v0, 0.0), starts),
                   "units": np.add.reduceat(np.where(keep, _nan0(np.maximum(q, 0.0)), 0.0), starts),
                   "n": np.add.reduceat(keep.astype(np.int64), starts).astype(float)}
    ro = run_order[has_run]

    def per_order(name: str) -> np.ndarray:
        return np.bincount(ro, weights=per_run[name][has_run], minlength=m) if per_run else np.zeros(m)

    cust, uniques = key_codes(orders["customer_id"].iloc[rows], sort=True)  # code order = id order
    return _OrderCore(rows, cust, uniques, completed, ts[rows], per_order("value"), per_order("ret"),
                      per_order("units"), per_order("n"), value, keep, starts, run_order)



def _order_values(orders: pd.DataFrame, order_items: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per completed or returned order before ``as_of`` with its net value."""
    c = _order_core(orders, order_items, as_of)
    o = orders.iloc[c.rows][["order_id", "customer_id", "ordered_at"]].copy()
    o["status"] = np.where(c.completed, "completed", "returned")
    o["value"], o["returned_value"], o["units"], o["n_lines"] = c.value, c.returned_value, c.units, c.n_lines
    return o



def _rfm_from_core(c: _OrderCore, as_of: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
    """The RFM table and, per row, the customer code it belongs to."""
    nc = len(c.uniques)
    done = c.completed
    freq = np.bincount(c.cust[done], minlength=nc)
    first = np.full(nc, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(nc, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, c.cust[done], c.ordered_ns[done])
    np.maximum.at(last, c.cust[done], c.ordered_ns[done])
    money = np.bincount(c.cust, weights=c.value, minlength=nc)
    ret = np.bincount(c.cust, weights=c.returned_value, minlength=nc)
    codes = np.flatnonzero(freq > 0)
    names = np.asarray(c.uniques[codes].astype(str), dtype=object)
    if len(names) > 1 and not isinstance(c.uniques.dtype, pd.StringDtype):
        # text ids are coded in text order already (key_codes(sort=True)); ids of other
        # types (numbers) are sorted here as text, like the id strings of the output
        order = pc.sort_indices(pa.array(names, type=pa.string())).to_numpy()  # stable, code-point order
        codes, names = codes[order], names[order]
    return rfm_frame(names, first[codes], last[codes], freq[codes], money[codes], ret[codes], as_of), codes


def rfm_frame(customer_ids: np.ndarray, first_ns: np.ndarray, last_ns: np.ndarray, frequency: np.ndarray,
              monetary: np.ndarray, returned_value: np.ndarray, as_of: pd.Timestamp) -> pd.DataFrame:
    """The RFM table from per-customer sums (both engines): whole days from the first/last completed
    order's day to ``as_of``; ``first_ns``/``last_ns`` are nanoseconds since the epoch."""
    day0 = as_of.value
    rfm = pd.DataFrame({
        "customer_id": customer_ids,
        "recency_days": (day0 - (last_ns // _DAY_NS) * _DAY_NS) // _DAY_NS,
        "frequency": np.asarray(frequency).astype("int64"),
        "monetary": monetary,
        "tenure_days": (day0 - (first_ns // _DAY_NS) * _DAY_NS) // _DAY_NS,
        "first_order_at": first_ns.view("datetime64[ns]"),
        "last_order_at": last_ns.view("datetime64[ns]"),
        "returned_value": returned_value,
    })
    rfm["recency_days"] = rfm["recency_days"].astype("int64")
    rfm["tenure_days"] = rfm["tenure_days"].astype("int64")
    rfm.attrs["as_of"] = as_of
    return rfm


def rate_features(rfm: pd.DataFrame) -> pd.DataFrame:
    """The first feature columns (both engines): ``customer_id, recency_days, frequency, monetary,
    tenure_days, orders_per_month, mean_order_value`` (definitions in :func:`customer_features`)."""
    feats = rfm[["customer_id", "recency_days", "frequency", "monetary", "tenure_days"]].copy()
    span_days = (rfm["last_order_at"] - rfm["first_order_at"]).dt.total_seconds() / 86400.0
    span_months = np.maximum(span_days, 1.0) / DAYS_PER_MONTH
    feats["orders_per_month"] = ((feats["frequency"] - 1) / span_months).where(feats["frequency"] >= 2)
    feats["mean_order_value"] = feats["monetary"] / feats["frequency"]
    return feats



def rfm_table(orders: pd.DataFrame, order_items: pd.DataFrame,
              as_of: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer as of a date.

    Parameters
    ----------
    orders, order_items : DataFrame
        Canonical tables (cleaned: :func:`ecrm_research.data.quality.prepare`).
    as_of : str or Timestamp, optional
        Analysis date; default the day after the last order (see the module docstring).

    Returns
    -------
    DataFrame
        One row per customer with at least one completed order, sorted by ``customer_id``:
        ``customer_id, recency_days, frequency, monetary, tenure_days, first_order_at,
        last_order_at, returned_value`` (``returned_value`` ≤ 0 is the part of ``monetary``
        that came from returned units). ``df.attrs["as_of"]`` holds the as-of date.

    Raises
    ------
    SchemaError
        A required column is missing, or ``orders.order_id`` is not unique.

    Notes
    -----
    recency = (as_of − date of last completed order) in days; frequency = #distinct completed
    orders; monetary = Σ quantity × unit_price over completed orders' lines + Σ of negative
    lines of returned orders. Cancelled orders never count.

    Scale: one join of the order lines on ``order_id`` (:func:`keys.key_positions`) and then integer group-bys
    (``numpy.bincount``); about 3 float arrays of the order-line length are alive at the peak.
    ``benchmarks/bench_prep.py`` compares it with a DuckDB query on 10 million lines.
    """
    as_of = resolve_as_of(orders, as_of)
    core = _order_core(orders, order_items, as_of)
    if not core.completed.any():
        raise AnalysisError(f"no completed orders before the as-of date {as_of.date()}: nothing to segment. "
                            "Choose a later as_of or check the order statuses.")
    return _rfm_from_core(core, as_of)[0]



def customer_features(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None = None, *,
                      top_categories: int = 5) -> pd.DataFrame:
    """Behaviour features per customer (one row per customer of :func:`rfm_table`).

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned canonical tables; needs ``orders`` and ``order_items``; uses ``products``.
    as_of : str or Timestamp, optional
        Analysis date (default: the day after the last order).
    top_categories : int, default 5
        Number of categories (by spend) with a ``cat_<name>`` spend-share column.

    Returns
    -------
    DataFrame
        ``customer_id`` then: ``recency_days, frequency, monetary, tenure_days`` (as
        :func:`rfm_table`); ``orders_per_month`` = orders per *active* month =
        (frequency − 1) / (days from first to last completed order / 30.4375), the span floored
        at one day, NaN for one-order customers (no gap observed);
        ``mean_order_value`` = monetary / frequency; ``basket_size`` = mean units per completed
        order; ``discount_rate`` = mean ``orders.discount_rate`` over completed orders (NaN when
        the data has none); ``app_share`` = share of completed orders placed in the app (NaN
        when ``orders.channel`` is absent); ``cat_*`` = share of positive spend per category.
    """
    orders, items = tables["orders"], tables["order_items"]
    as_of = resolve_as_of(orders, as_of)
    core = _order_core(orders, items, as_of)
    if not core.completed.any():
        raise AnalysisError(f"no completed orders before the as-of date {as_of.date()}: nothing to segment. "
                            "Choose a later as_of or check the order statuses.")
    rfm, codes = _rfm_from_core(core, as_of)
    nc = len(core.uniques)
    feats = rate_features(rfm)

    done = core.completed
    dcust = core.cust[done]

    def mean_by_customer(x: np.ndarray) -> np.ndarray:
        """Mean of x over each customer's completed orders, NaN values skipped (all NaN → NaN)."""
        ok = ~np.isnan(x)
        return mean_or_nan(np.bincount(dcust[ok], weights=x[ok], minlength=nc),
                           np.bincount(dcust[ok], minlength=nc))[codes]

    feats["basket_size"] = mean_by_customer(core.units[done])
    done_rows = core.rows[done]
    if "discount_rate" in orders and orders["discount_rate"].iloc[done_rows].notna().any():
        feats["discount_rate"] = mean_by_customer(
            orders["discount_rate"].iloc[done_rows].to_numpy(dtype=float, na_value=np.nan))
    else:
        feats["discount_rate"] = np.nan
    if "channel" in orders and orders["channel"].iloc[done_rows].notna().any():
        ch = orders["channel"].iloc[done_rows]
        app = ch.astype("string").str.lower().eq("app").astype(float).to_numpy(dtype=float, na_value=np.nan)
        app[np.asarray(ch.isna(), dtype=bool)] = np.nan
        feats["app_share"] = mean_by_customer(app)
    else:
        feats["app_share"] = np.nan

    products = tables.get("products")
    if top_categories and products is not None and "category" in products and products["category"].notna().any():
        for col, share in _category_shares(core, items, products, top_categories).items():
            feats[col] = share[codes]
    feats.attrs["as_of"] = as_of
    return feats


def _category_shares(core: _OrderCore, items: pd.DataFrame, products: pd.DataFrame, top_categories: int
                     ) -> dict[str, np.ndarray]:
    """``cat_<name>`` → share of positive spend per customer code, for the top categories by spend."""
    nc = len(core.uniques)
    done = core.completed
    # positive lines of completed orders, with their category ('unknown' when not known)
    lo = core.line_order
    qty = items["quantity"].to_numpy(dtype=float, na_value=np.nan)
    sel = np.flatnonzero(lo >= 0)
    sel = sel[done[lo[sel]] & (qty[sel] > 0)]
    ppos = key_positions(items["product_id"].iloc[sel], products["product_id"])
    pcat = products["category"].astype("string")
    cat_codes, cat_names = pd.factorize(pcat)
    cat_names = pd.Index(cat_names.astype(object))
    if (cat_codes < 0).any() or (ppos < 0).any():
        cat_names = cat_names.append(pd.Index(["unknown"])) if "unknown" not in cat_names else cat_names
    unknown = cat_names.get_loc("unknown") if "unknown" in cat_names else -1
    line_cat = np.where(ppos >= 0, cat_codes[np.maximum(ppos, 0)] if len(cat_codes) else -1, -1)
    line_cat = np.where(line_cat >= 0, line_cat, unknown)
    val = core.line_value[sel]
    ok = ~np.isnan(val)
    lcust = core.cust[lo[sel]]
    totals = np.bincount(line_cat[ok], weights=val[ok], minlength=len(cat_names))
    present = np.bincount(line_cat, minlength=len(cat_names)) > 0
    by_cat = pd.Series(totals[present], index=cat_names[present]).sort_index()
    top = by_cat.sort_values(ascending=False).head(top_categories).index
    spend_all = np.bincount(lcust[ok], weights=val[ok], minlength=nc)
    has_line = np.bincount(lcust, minlength=nc) > 0
    shares = {}
    for cat in top:
        k = cat_names.get_loc(cat)
        mk = ok & (line_cat == k)
        spend = np.bincount(lcust[mk], weights=val[mk], minlength=nc)
        shares[category_column(cat)] = spend_share(spend, spend_all, has_line)
    return shares
