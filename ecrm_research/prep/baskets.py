"""Baskets (pandas): one row per (basket, item) from orders, order lines or a basket file."""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import io, keys, quality, schema
from ..exceptions import ParameterError


def period_key(ts: pd.Series, window: str) -> pd.Series:
    """Text label of the period (``window``, a pandas frequency such as ``'M'`` or ``'30D'``) of each time."""
    try:
        return ts.dt.to_period(window).astype(str)
    except (ValueError, TypeError):
        try:
            return ts.dt.floor(window).astype(str)
        except (ValueError, TypeError):
            raise ParameterError(f"window={window!r} is not a pandas frequency; use e.g. 'M' (calendar month), "
                                 "'W' (week), 'Q' (quarter) or '30D' (30-day blocks).") from None



def product_labels(products: pd.DataFrame | None, ids: pd.Series, item_label: str) -> pd.Series:
    """Map product ids to readable item labels (names, made unique with the id; or the ids)."""
    if item_label == "id" or products is None or "product_name" not in products.columns:
        if item_label == "name":
            raise ParameterError("item_label='name' needs a products table with product_name.")
        return ids.astype(str)
    if item_label not in ("auto", "name"):
        raise ParameterError(f"item_label={item_label!r}; use 'auto', 'name' or 'id'.", allowed=["auto", "name", "id"])
    prod = products[["product_id", "product_name"]].dropna(subset=["product_id"]).drop_duplicates("product_id")
    prod = prod[prod["product_id"].isin(ids.unique())]
    name = prod["product_name"].astype("string").str.strip()
    name = name.where(name.notna() & (name != ""), prod["product_id"].astype("string"))
    # a name shared by several product ids is made unique with the id, so counts never merge
    dup = name.duplicated(keep=False)
    name = name.where(~dup, name + " [" + prod["product_id"].astype("string") + "]")
    lookup = pd.Series(name.astype(str).to_numpy(), index=prod["product_id"].astype(str).to_numpy())
    out = ids.astype(str).map(lookup)
    return out.fillna(ids.astype(str))



def baskets_from_orders(
    tables: Mapping[str, pd.DataFrame],
    *,
    item_level: str = "product",
    basket_by: str = "order",
    window: str | None = None,
    statuses: Sequence[str] | None = ("completed",),
    item_label: str = "auto",
) -> pd.DataFrame:
    """Build baskets from canonical ``orders`` and ``order_items``.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Canonical tables (see :mod:`ecrm_research.data.schema`); ``orders`` (keyed by ``order_id``,
        with ``customer_id``, ``ordered_at``, ``status``) and ``order_items`` are needed,
        ``products`` for names and categories. Usually ``quality.clean(...).tables``.
    item_level : {'product', 'category'}
        What an item is: a product, or its ``products.category`` (an item hierarchy as in
        arules' ``aggregate``; products without a category become ``"(no category)"``).
    basket_by : {'order', 'customer'}
        ``'order'``: one basket per order. ``'customer'``: everything a customer bought,
        over the whole period or per ``window``.
    window : str, optional
        With ``basket_by='customer'``, a pandas frequency that cuts the customer's history into
        baskets (``'M'`` calendar month, ``'Q'`` quarter, ``'30D'`` 30-day blocks).
    statuses : sequence of str or None
        Order statuses to keep (default: completed orders only); None keeps all.
    item_label : {'auto', 'name', 'id'}
        Product items are labelled by name when the products table has names (``'auto'``;
        a name shared by several ids gets ``" [id]"`` appended) or by ``product_id``.

    Returns
    -------
    DataFrame
        ``basket_id`` (text: the order id, the customer id, or ``"customer@period"``),
        ``item`` (str), ``ordered_at`` (the basket's first order time), ``customer_id``; one row
        per distinct item of each basket (in the order of the lines), baskets sorted by first
        order time, then by id. Lines with non-positive quantity (returns) are not purchases
        and are left out. Ids are ``string[pyarrow]`` (the canonical id dtype).

    Notes
    -----
    Built on integer codes, so the cost is a few int64 arrays of the length of ``order_items``:
    each line finds its order by position (:func:`schema.key_positions`), products and baskets
    are coded once, labels are made for the distinct products only, and the text of the
    baskets' ids is taken once at the end. The result is row for row what a merge of the
    lines with the orders, ``drop_duplicates(["basket_id", "item"])`` and a stable sort by
    ``(ordered_at, basket_id)`` give, in a fraction of their time and memory (figures in
    ``benchmarks/README.md``).
    """
    _check_basket_options(tables, item_level, basket_by)
    orders = tables["orders"]
    rows, opos = _purchase_lines(orders, tables["order_items"], statuses)
    icodes, item_labels = _item_codes(tables["order_items"]["product_id"], rows, tables.get("products"),
                                      item_level, item_label)
    del rows
    oused, okey = _basket_keys(orders, opos, basket_by, window)  # warns: called from here (stacklevel=3)
    bcodes_o, bnames = pd.factorize(okey.astype(schema.ID), sort=True)
    bcodes = _basket_of_lines(opos, oused, bcodes_o, len(orders))
    if basket_by == "customer":  # lines of orders without a customer id have no basket
        ok = bcodes >= 0
        bcodes, icodes, opos = bcodes[ok], icodes[ok], opos[ok]
    first, rank = _baskets_by_time(orders["ordered_at"], oused, bcodes_o, len(bnames))
    bcodes, icodes, opos = _distinct_items_in_time_order(bcodes, icodes, opos, rank, len(item_labels))
    out = pd.DataFrame({
        "basket_id": pd.Series(bnames.take(bcodes), dtype=schema.ID).array,
        "item": np.asarray(item_labels, dtype=object)[icodes],
        "ordered_at": first[bcodes],
    })
    out["customer_id"] = orders["customer_id"].take(opos).astype(schema.ID).array
    return out


def _check_basket_options(tables: Mapping[str, pd.DataFrame], item_level: str, basket_by: str) -> None:
    """The tables and options :func:`baskets_from_orders` needs, or a :class:`ParameterError` saying what is wrong."""
    for t in ("orders", "order_items"):
        if t not in tables:
            raise ParameterError(f"baskets_from_orders: table '{t}' missing; have {sorted(tables)}.")
    if item_level not in ("product", "category"):
        raise ParameterError(f"item_level={item_level!r}; use 'product' or 'category'.",
                             allowed=["product", "category"])
    if basket_by not in ("order", "customer"):
        raise ParameterError(f"basket_by={basket_by!r}; use 'order' or 'customer'.", allowed=["order", "customer"])
    products = tables.get("products")
    if item_level == "category" and (products is None or "category" not in products.columns):
        raise ParameterError("item_level='category' needs a products table with a category column.")


def _purchase_lines(orders: pd.DataFrame, lines: pd.DataFrame, statuses: Sequence[str] | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The lines that are purchases in a kept order, in their order in the table: their rows in
    ``lines`` and the rows of their orders in ``orders``."""
    pos = keys.key_positions(lines["order_id"], orders["order_id"])  # row of each line's order; -1: none
    keep = pos >= 0
    if statuses is not None:
        keep &= _status_in(orders["status"], statuses)[np.maximum(pos, 0)]
    if "quantity" in lines.columns:
        keep &= _true(lines["quantity"] > 0)
    rows = np.flatnonzero(keep)
    return rows, pos[rows]


def _item_codes(product_ids: pd.Series, rows: np.ndarray, products: pd.DataFrame | None, item_level: str,
                item_label: str) -> tuple[np.ndarray, np.ndarray]:
    """One item code per purchase line (``rows``) and the item labels the codes index; labels are
    made for the distinct products only."""
    pcodes, puniq = pd.factorize(product_ids, use_na_sentinel=False)
    pcodes = pcodes[rows]
    used = np.flatnonzero(np.bincount(pcodes, minlength=len(puniq)))
    ids = pd.Series(puniq.take(used))
    if item_level == "category":
        cat = products.drop_duplicates("product_id").set_index("product_id")["category"].astype("string")
        labels = ids.map(cat).fillna("(no category)").astype(str)
    else:
        labels = product_labels(products, ids, item_label)
    lcodes, item_labels = pd.factorize(np.asarray(labels, dtype=object))
    code_of_product = np.full(len(puniq), -1, dtype=np.int64)
    code_of_product[used] = lcodes
    return code_of_product[pcodes], item_labels


def _basket_keys(orders: pd.DataFrame, opos: np.ndarray, basket_by: str, window: str | None
                 ) -> tuple[np.ndarray, pd.Series]:
    """The orders that hold purchase lines (rows in ``orders``; for customer baskets only those with
    a customer id) and each one's basket key as text: the order id, the customer id or
    ``"customer@period"``.

    Warns when customer baskets leave out lines without a customer id; the warning points at the
    caller of :func:`baskets_from_orders`, which must call this function directly.
    """
    oused = np.flatnonzero(np.bincount(opos, minlength=len(orders)))
    if basket_by == "order":
        okey = orders["order_id"].iloc[oused]
    else:
        cust = orders["customer_id"]
        na_cust = np.asarray(cust.isna(), dtype=bool)
        if na_cust[opos].any():
            n = int(na_cust[opos].sum())
            warnings.warn(f"{n:,} order lines have no customer_id and are left out of customer baskets.",
                          stacklevel=3)
        oused = oused[~na_cust[oused]]
        okey = cust.iloc[oused]
        if window:
            period = period_key(orders["ordered_at"].iloc[oused], window).to_numpy(dtype=object)
            okey = pd.Series(okey.astype(str).to_numpy(dtype=object) + "@" + period, dtype=object)
    if not isinstance(okey.dtype, pd.StringDtype):
        okey = okey.astype(str)
    return oused, okey


def _basket_of_lines(opos: np.ndarray, oused: np.ndarray, bcodes_o: np.ndarray, n_orders: int) -> np.ndarray:
    """The basket code of each purchase line (through its order); -1 for an order without a basket."""
    basket_of_order = np.full(n_orders, -1, dtype=np.int64)
    basket_of_order[oused] = bcodes_o
    return basket_of_order[opos]


def _baskets_by_time(ordered_at: pd.Series, oused: np.ndarray, bcodes_o: np.ndarray, n_baskets: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each basket's time (its first order's) and its rank when baskets are sorted by that time, then by id."""
    times = pd.Series(ordered_at.to_numpy()[oused])
    first = times.groupby(bcodes_o).min().reindex(np.arange(n_baskets)).to_numpy()
    by_time = pd.DataFrame({"t": first, "c": np.arange(n_baskets)}).sort_values(["t", "c"], kind="stable")
    rank = np.empty(n_baskets, dtype=np.int64)
    rank[by_time.index.to_numpy()] = np.arange(n_baskets)
    return first, rank


def _distinct_items_in_time_order(bcodes: np.ndarray, icodes: np.ndarray, opos: np.ndarray, rank: np.ndarray,
                                  n_labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One line per (basket, item), the first line winning, then the baskets in time order (``rank``)."""
    n_labels = max(n_labels, 1)
    first_line = ~pd.Series(bcodes * n_labels + icodes).duplicated(keep="first").to_numpy()
    bcodes, icodes, opos = bcodes[first_line], icodes[first_line], opos[first_line]
    order = np.argsort(rank[bcodes], kind="stable")
    return bcodes[order], icodes[order], opos[order]



def _true(mask: Any) -> np.ndarray:
    """A boolean mask as a numpy array; missing values are False (as in boolean indexing)."""
    s = mask if isinstance(mask, pd.Series) else pd.Series(mask)
    if s.dtype == bool:
        return s.to_numpy()
    return np.asarray(s.fillna(False), dtype=bool)



def _status_in(status: pd.Series, statuses: Sequence[str]) -> np.ndarray:
    """``status.astype(str).isin(statuses)`` as a bool array; a categorical is tested on its categories."""
    wanted = list(statuses)
    if isinstance(status.dtype, pd.CategoricalDtype):
        ok = np.append(pd.Index(status.cat.categories).astype(str).isin(wanted), str(np.nan) in wanted)
        return ok[status.cat.codes.to_numpy()]  # code -1 (missing) reads the last slot
    return np.asarray(status.astype(str).isin(wanted), dtype=bool)



@dataclass
class BasketData:
    """Baskets ready for mining plus what was excluded on the way (for step 2 of a report).

    Attributes
    ----------
    baskets : DataFrame
        Long basket table (``basket_id``, ``item`` [, ``ordered_at``, ``customer_id``]).
    format : str
        Data format of the source (``canonical``, ``lines`` or ``baskets``).
    source : str
        Where the data came from.
    has_timestamps : bool
        True when baskets carry ``ordered_at`` (needed for the holdout check).
    exclusions : DataFrame
        ``step, reason, rows`` — what was left out and why (quality quarantine counts, orders
        with another status, return lines, empty baskets).
    policy : list of str
        The cleaning filters in plain words (empty for basket files).
    quarantine : DataFrame or None
        The rows cleaning set aside (:attr:`ecrm_research.data.quality.CleanResult.quarantine`:
        table, row, reason, key columns); None for basket files (their exclusions are counts).
    products : DataFrame or None
        ``product_id`` [, ``product_name``] of the cleaned products table, so item labels can be
        traced back to stock codes (e.g. for the variant check of cross-selling); None for basket files.
    """

    baskets: pd.DataFrame
    format: str
    source: str
    has_timestamps: bool
    exclusions: pd.DataFrame
    policy: list[str] = field(default_factory=list)
    quarantine: pd.DataFrame | None = None
    products: pd.DataFrame | None = None

    @property
    def n_baskets(self) -> int:
        return int(self.baskets["basket_id"].nunique())



def load_baskets(data: Any = None, data_format: str | None = None, mapping: Any = None, *,
                 item_level: str = "product", basket_by: str = "order", window: str | None = None,
                 hierarchy: pd.DataFrame | Mapping[str, str] | None = None, hierarchy_level: str | None = None,
                 policy: Any = None) -> BasketData:
    """Load the user's data and turn it into baskets (step 2 for the association notebook).

    Accepts the data formats ``canonical`` and ``lines`` (cleaned with :func:`quality.prepare`;
    the quarantine counts explain what was dropped) and ``baskets`` (a basket file; no
    timestamps, so no holdout check). Other formats raise ``FormatError`` via
    ``Dataset.require``.

    Parameters
    ----------
    data, data_format, mapping :
        As for :func:`ecrm_research.data.io.load_dataset` (``data=None`` is the bundled sample).
    item_level, basket_by, window :
        See :func:`baskets_from_orders`. For basket files ``item_level='category'`` needs a
        ``hierarchy`` (e.g. Groceries' item info) and ``basket_by`` must be ``'order'``.
    hierarchy, hierarchy_level :
        Optional item hierarchy for :func:`aggregate_items`.
    policy : quality.CleaningPolicy, optional
        Cleaning filters for canonical/lines data. Default: the standard filters, except that
        orders without a customer id are kept for order baskets (a guest's basket is still a
        basket) and non-product codes (postage, fees; the mapping's ``non_product_codes``) are
        dropped.

    Notes
    -----
    Memory at scale (the order lines dominate): a canonical folder is read with only the
    required columns (products whole); cleaning gets only the columns its reasons and the baskets
    need (:data:`_BASKET_COLUMNS`), skips the quality report (not shown here) and replaces the
    tables as read; the baskets are built on integer codes; each copy is freed as soon as the next
    exists. The exclusions and baskets are the same as with the whole tables.
    """
    if policy is None:
        # guest orders are still baskets; postage/fees are not products anyone cross-sells
        policy = quality.CleaningPolicy(drop_missing_customer=(basket_by == "customer"), drop_non_product=True)
    cmap = io.load_mapping(mapping) if mapping is not None else None
    columns = _basket_projection(data, data_format, cmap, policy)
    ds = io.load_dataset(data, data_format, cmap, **({"columns": columns} if columns else {}))
    ds.require(["canonical", "lines", "baskets"], "association")
    fmt, source = ds.format, str(ds.source)
    descr: list[str] = []
    quarantine = products = None
    if fmt == "baskets":
        b, rows = _file_baskets(ds, item_level=item_level, basket_by=basket_by, hierarchy=hierarchy)
    else:
        tables, rows, quarantine = _cleaned_order_tables(ds, policy)
        del ds
        descr = list(policy.describe())
        n_lines = len(tables["order_items"])
        # called from here (not from a helper): its warning's stacklevel points at this function
        b = baskets_from_orders(tables, item_level=item_level, basket_by=basket_by, window=window)
        prod = tables["products"]
        products = prod[[c for c in ("product_id", "product_name") if c in prod.columns]].copy()
        del tables, prod
        _free(n_lines)
    if hierarchy is not None:
        b = aggregate_items(b, hierarchy, hierarchy_level)
    excl = pd.DataFrame(rows, columns=["step", "reason", "rows"])
    return BasketData(baskets=b, format=fmt, source=source, has_timestamps=fmt != "baskets", exclusions=excl,
                      policy=descr, quarantine=quarantine, products=products)


def _file_baskets(ds: Any, *, item_level: str, basket_by: str, hierarchy: Any
                  ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The long basket table of a basket file and its exclusion rows (empty basket lines)."""
    if basket_by != "order":
        raise ParameterError("basket_by='customer' needs order data with customer ids; a basket file has "
                             "one basket per line. Use basket_by='order'.", allowed=["order"])
    b = baskets_from_lists(ds.baskets or [])
    rows = basket_file_exclusions(getattr(ds, "basket_exclusions", None) or {})
    n_empty = int(b["item"].isna().sum())
    if n_empty:
        rows.append({"step": "baskets", "reason": "empty basket line (kept in the basket count)", "rows": n_empty})
    if item_level == "category" and hierarchy is None:
        raise ParameterError("item_level='category' on a basket file needs an item hierarchy "
                             "(hierarchy=..., hierarchy_level=...), e.g. Groceries' groceries_iteminfo.csv.")
    return b, rows


#: exclusion reasons of a basket file, from :func:`ecrm_research.data.reading.read_baskets`'s counts
BASKET_FILE_REASONS = {
    "blank_lines": "blank line (no items; not a basket)",
    "blank_items": "blank or whitespace-only item",
    "repeated_items": "item repeated within a basket (counted once)",
}


def basket_file_exclusions(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """Exclusion rows (``step='reading'``) for what reading a basket file dropped, one per non-zero count.

    Examples
    --------
    >>> basket_file_exclusions({"blank_lines": 2, "blank_items": 0, "repeated_items": 1})[0]["rows"]
    2
    """
    return [{"step": "reading", "reason": text, "rows": int(counts[key])}
            for key, text in BASKET_FILE_REASONS.items() if counts.get(key)]


def _cleaned_order_tables(ds: Any, policy: Any) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]], pd.DataFrame]:
    """Clean the order tables taken out of ``ds`` for baskets; the cleaned tables, the exclusion
    rows (quarantine counts, orders with another status, return lines) and the quarantine."""
    codes = _non_product_codes(ds)
    # the tables are handed over, not kept here: clean() works on them and they are freed
    # when it returns, with only the cleaned copies left
    cleaned = quality.clean(_basket_tables(ds, policy), policy, non_product_codes=codes, report=False)
    rows = _quarantine_rows(cleaned.quarantine)
    tables, quarantine = cleaned.tables, cleaned.quarantine
    del cleaned
    _free(len(tables["order_items"]))
    rows.extend(_not_basket_rows(tables))
    return tables, rows, quarantine


def _quarantine_rows(quarantine: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Exclusion rows from the cleaning quarantine: one per (table, reason)."""
    rows = []
    if quarantine is not None and len(quarantine):
        counts = quarantine.groupby(["table", "reason"]).size().reset_index(name="rows")
        for r in counts.itertuples(index=False):
            rows.append({"step": f"cleaning ({r.table})", "reason": str(r.reason), "rows": int(r.rows)})
    return rows


def _not_basket_rows(tables: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Exclusion rows for what cleaning keeps but baskets leave out: orders with a status other
    than completed (per status) and lines with quantity ≤ 0."""
    rows = []
    status = tables["orders"]["status"].astype(str)
    other = status[status != "completed"]
    if len(other):
        for st, n in other.value_counts().items():
            rows.append({"step": "baskets", "reason": f"order status '{st}' (only completed orders form baskets)",
                         "rows": int(n)})
    nonpos = int((tables["order_items"]["quantity"] <= 0).sum())
    if nonpos:
        rows.append({"step": "baskets", "reason": "order line with quantity <= 0 (a return, not a purchase)",
                     "rows": nonpos})
    return rows



#: Columns that cleaning (reasons and orphan checks) and :func:`baskets_from_orders` use, per table.
#: Survey answers are neither cleaned nor used, so they are left out; so is ``line_no``, which only
#: the key check of the load needs (each column of the order lines costs 8 bytes x lines, per copy).
_BASKET_COLUMNS = {
    "customers": ["customer_id"],
    "products": None,  # all: names and categories label the items
    "orders": ["order_id", "customer_id", "ordered_at", "status", "conflicting_order"],
    "order_items": ["order_id", "product_id", "quantity", "unit_price"],
    "service_contacts": ["contact_id", "customer_id", "contacted_at"],
}



def _basket_projection(data: Any, data_format: str | None, cmap: Any, policy: Any) -> dict | None:
    """``columns=`` for :func:`io.load_dataset` when the data is a canonical folder, else None.

    Only the required columns are read (products whole); with ``drop_duplicate_rows`` the order
    lines are read whole, since a duplicate line is one equal on every column.
    """
    if data_format not in (None, "canonical") or (cmap is not None and cmap.format not in (None, "canonical")):
        return None
    if data is not None and not Path(data).is_dir():
        return None
    cols: dict[str, list[str] | None] = {"customers": [], "orders": [], "order_items": [], "service_contacts": [],
                                         "survey_responses": []}
    if getattr(policy, "drop_duplicate_rows", False):
        del cols["order_items"]
    return cols



def _basket_tables(ds: Any, policy: Any) -> dict[str, pd.DataFrame]:
    """Take the tables out of ``ds`` (``ds.tables`` is emptied) with only the columns that cleaning
    and basket building need (see :data:`_BASKET_COLUMNS`).

    The quarantine counts do not change: every reason and orphan check reads only these
    columns, and with ``drop_duplicate_rows`` the order lines keep all their columns.
    """
    tables, ds.tables = ds.tables, {}
    out = {}
    for name, df in tables.items():
        if name not in _BASKET_COLUMNS:
            continue
        cols = _BASKET_COLUMNS[name]
        if cols is None or (name == "order_items" and getattr(policy, "drop_duplicate_rows", False)):
            out[name] = df
        else:
            out[name] = df[[c for c in df.columns if c in cols]]
    tables = df = None
    _free(len(out.get("order_items", ())))
    return out



#: Order lines from which dropped tables are worth an explicit collection (~25 MB per column).
_COLLECT_FROM_ROWS = 3_000_000



def _free(rows: int) -> None:
    """Free the tables just dropped *now*, when they were large (`rows` order lines).

    pandas frames sit in reference cycles (frame, column cache, block references), so dropping
    the last name does not free them: they wait for Python's cyclic collector, which may run much
    later, when another full copy of the data has been made. One collection keeps a copy of the
    order lines out of the peak; it costs ~0.1 s in a kernel full of imported modules, which is
    not worth it for small data.
    """
    if rows >= _COLLECT_FROM_ROWS:
        gc.collect()



def _non_product_codes(ds: Any) -> tuple:
    m = getattr(ds, "mapping", None)
    for attr in ("non_product_codes",):
        v = getattr(m, attr, None) if m is not None else None
        if v:
            return tuple(v)
    rules = getattr(m, "rules", None) if m is not None else None
    if isinstance(rules, Mapping) and rules.get("non_product_codes"):
        return tuple(rules["non_product_codes"])
    return ()


def check_long_baskets(baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """The long basket table (``basket_id, item``) checked, or built from a list of baskets."""
    if isinstance(baskets, pd.DataFrame):
        missing = [c for c in ("basket_id", "item") if c not in baskets.columns]
        if missing:
            raise ParameterError(
                f"baskets: column(s) {missing} missing; a basket table has one row per (basket_id, item). "
                f"Columns present: {list(baskets.columns)}. Build it with baskets_from_orders() or "
                "baskets_from_lists().")
        return baskets
    if isinstance(baskets, (list, tuple)):
        return baskets_from_lists(baskets)
    raise ParameterError(f"baskets: expected a DataFrame (basket_id, item) or a list of lists, "
                         f"got {type(baskets).__name__}")



def baskets_from_lists(baskets: Sequence[Iterable[str]]) -> pd.DataFrame:
    """Turn a list of baskets (as read from a basket file) into the long basket table.

    Parameters
    ----------
    baskets : sequence of iterables of str
        One inner sequence per basket (transaction). Duplicate items within a basket are
        counted once; empty baskets are kept (they count in the number of baskets, as an empty
        line is a transaction in arules' ``read.transactions``).

    Returns
    -------
    DataFrame
        Columns ``basket_id`` (int, position in the list) and ``item`` (str), one row per
        distinct item of each basket. Empty baskets contribute a row with ``item`` missing, so
        that they are still counted.

    Notes
    -----
    Item labels are kept exactly as given (Groceries has labels with a trailing space, such as
    ``"cream cheese "``; stripping them would break parity with arules' labels).
    """
    ids: list[int] = []
    items: list[Any] = []
    for i, basket in enumerate(baskets):
        if isinstance(basket, str):
            raise ParameterError(f"baskets_from_lists: basket {i} is a string ({basket!r}), not a list of items. "
                                 "Split basket lines into items first (io.read_baskets does this).")
        seen = list(dict.fromkeys(str(x) for x in basket
                                  if x is not None and not (isinstance(x, float) and math.isnan(x))))
        if not seen:
            ids.append(i)
            items.append(None)
        for it in seen:
            ids.append(i)
            items.append(it)
    return pd.DataFrame({"basket_id": np.asarray(ids, dtype="int64"),
                         "item": pd.Series(items, dtype="object")})



def aggregate_items(baskets: pd.DataFrame, hierarchy: pd.DataFrame | Mapping[str, str], level: str | None = None,
                    *, item_column: str = "labels") -> pd.DataFrame:
    """Replace items by a coarser level of an item hierarchy (arules' ``aggregate``).

    Parameters
    ----------
    baskets : DataFrame
        Long basket table (``basket_id``, ``item``).
    hierarchy : DataFrame or mapping
        A table with one row per item (``item_column``) and one column per level (Groceries'
        ``groceries_iteminfo.csv``: ``labels, level2, level1``), or a plain item → group mapping.
    level : str, optional
        Column of ``hierarchy`` to use (required when ``hierarchy`` is a DataFrame).

    Returns
    -------
    DataFrame
        Same columns, items replaced, duplicates within a basket removed. Items missing from
        the hierarchy keep their own label (with a warning naming the first few).
    """
    baskets = check_long_baskets(baskets)
    if isinstance(hierarchy, pd.DataFrame):
        if level is None or level not in hierarchy.columns or item_column not in hierarchy.columns:
            raise ParameterError(f"aggregate_items: need item column {item_column!r} and a level column; "
                                 f"hierarchy has {list(hierarchy.columns)} (level={level!r}).",
                                 allowed=[c for c in hierarchy.columns if c != item_column])
        lookup = dict(zip(hierarchy[item_column].astype(str), hierarchy[level].astype(str)))
    else:
        lookup = {str(k): str(v) for k, v in hierarchy.items()}
    items = baskets["item"]
    mapped = items.map(lookup)
    unmapped = items.notna() & mapped.isna()
    if unmapped.any():
        first = list(dict.fromkeys(items[unmapped].astype(str)))[:5]
        warnings.warn(f"{unmapped.sum():,} basket rows have items not in the hierarchy (first: {first}); "
                      "they keep their own label.", stacklevel=2)
    out = baskets.copy()
    out["item"] = mapped.where(~unmapped, items).where(items.notna(), None)
    return out.drop_duplicates(["basket_id", "item"]).reset_index(drop=True)
