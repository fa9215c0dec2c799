"""Order-lines data: one flat row per order line split into the canonical tables.

:func:`split_order_lines` turns the user's flat file (renamed through a
:class:`~ecrm_research.data.mapping.ColumnMapping`) into ``customers``, ``products``,
``orders`` and ``order_items`` with canonical dtypes; order status follows the mapping's rules.

Public names: :func:`split_order_lines`, :func:`conflicting_orders`, :func:`separator_hint`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataError, SchemaError
from . import schema
from .formats import (
    LINE_CUSTOMER_COLUMNS,
    LINE_OPTIONAL,
    LINE_ORDER_COLUMNS,
    LINE_PRODUCT_COLUMNS,
    LINE_REQUIRED,
)
from .mapping import ColumnMapping, apply_value_maps, condition_mask, rename_columns

_STATUS_RANK = {"completed": 0, "returned": 1, "cancelled": 2}


def _first_by(key: pd.Series, frame: pd.DataFrame) -> pd.DataFrame:
    """First non-null value of each column per key, keys in order of first appearance."""
    return frame.groupby(key, sort=False, observed=True).first()


def split_order_lines(lines: pd.DataFrame, mapping: ColumnMapping | None, source: str, *,
                      notes: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Turn a flat order-lines table into the canonical customers/products/orders/order_items.

    Parameters
    ----------
    lines : DataFrame
        The user's flat file, one row per order line, with the user's column names.
    mapping : ColumnMapping or None
        Renames user columns to canonical names (see :data:`LINE_COLUMNS`), and gives the
        status rules and value maps. ``None`` when the file already uses canonical names.
    source : str
        File name quoted in error messages.
    notes : list of str, optional
        Collects decisions taken from the values (day/month order of text dates).

    Returns
    -------
    dict of DataFrame
        ``customers``, ``products``, ``orders``, ``order_items`` with canonical dtypes.
        ``order_items`` keeps ``source_row`` (0-based row in ``lines``) and ``row_hash`` (a
        64-bit hash of the user's whole row, so :func:`ecrm_research.data.quality.clean` can find
        rows that are exact duplicates in the user's file).

    Notes
    -----
    * An order id whose lines name two customers, or two timestamps further apart than the
      mapping's ``rules.order_time_tolerance`` (default 0), is a :class:`DataError` naming the
      order and both values; with ``rules.conflicting_orders: quarantine`` such orders get
      ``conflicting_order = True`` in ``orders`` and :func:`~ecrm_research.data.quality.clean`
      quarantines them with their lines (reason ``conflicting_order``).
    * Orders take the first non-null customer and the first timestamp of their lines (file order).
    * Status: the most severe status of its lines under ``rules`` (cancelled > returned >
      completed); without rules, a mapped ``status`` column (first per order) or 'completed'.
    * Products take their first non-null name/category; customers are the distinct non-null
      customer ids with their first non-null region and other attributes.
    * ``line_no`` numbers the lines of an order 0, 1, ... in file order.

    Examples
    --------
    >>> from ecrm_research.data.mapping import load_mapping
    >>> raw = pd.DataFrame({"Inv": ["1", "1", "C2"], "Cust": [7.0, 7.0, 8.0],
    ...     "When": ["2024-01-01", "2024-01-01", "2024-01-02"], "Sku": ["a", "b", "a"],
    ...     "Qty": [1, 2, -1], "Price": [2.5, 1.0, 2.5]})
    >>> m = load_mapping({"columns": {"order_id": "Inv", "customer_id": "Cust", "ordered_at": "When",
    ...     "product_id": "Sku", "quantity": "Qty", "unit_price": "Price"},
    ...     "rules": {"cancelled_if": {"column": "Inv", "startswith": "C"}}})
    >>> t = split_order_lines(raw, m, "x.csv")
    >>> t["orders"]["status"].tolist(), t["customers"]["customer_id"].tolist()
    (['completed', 'cancelled'], ['7', '8'])
    """
    if len(lines) == 0:
        raise DataError(f"{source}: the file has a header but no rows.", source=source, n_rows=0)
    raw = lines.reset_index(drop=True)
    df = rename_columns(raw, mapping, source)
    _require_line_columns(raw, df, source, mapping)
    rules = mapping.rules if mapping else {}
    value_maps = mapping.value_maps if mapping else {}
    read = mapping.read if mapping else {}
    df = apply_value_maps(df, value_maps)
    c = _coerce_line_columns(df, rules, read, source, notes)
    _require_order_keys(c, source, mapping)
    conflicting = conflicting_orders(c, rules, source)
    rank = _status_rank(raw, df, c, rules, source)
    out = {
        "customers": _customers(c),
        "products": _products(c),
        "orders": _orders(c, rank),
        "order_items": _order_items(c, raw),
    }
    if conflicting is not None:
        out["orders"]["conflicting_order"] = out["orders"]["order_id"].isin(conflicting).to_numpy()
    return {name: schema.coerce_table(df_, name, source=source, dayfirst=False) for name, df_ in out.items()}


def conflicting_orders(c: pd.DataFrame, rules: dict[str, Any], source: str) -> pd.Index | None:
    """Order ids whose lines name two customers or two timestamps (apart by more than
    ``rules.order_time_tolerance``).

    Returns ``None`` when there are none; the ids when ``rules.conflicting_orders`` is
    ``quarantine``; otherwise raises :class:`DataError` naming the first such order (file order),
    its two values and their rows, and how to opt in to the quarantine.
    """
    key = c["order_id"]
    g = c[["customer_id", "ordered_at"]].groupby(key, sort=False, observed=True)
    n_customers = g["customer_id"].nunique()
    tolerance = pd.Timedelta(str(rules.get("order_time_tolerance") or "0s"))
    spread = g["ordered_at"].max() - g["ordered_at"].min()
    bad = (n_customers > 1) | (spread > tolerance)
    if not bool(bad.any()):
        return None
    ids = bad.index[bad.to_numpy()]
    if rules.get("conflicting_orders") == "quarantine":
        return ids
    oid = ids[0]
    rows = np.flatnonzero((key == oid).to_numpy(dtype=bool, na_value=False))
    column = "customer_id" if n_customers[oid] > 1 else "ordered_at"
    values = c[column].iloc[rows]
    given = values.notna().to_numpy()
    first = values[given].iloc[0]
    other = np.flatnonzero(given & (values != first).fillna(False).to_numpy(dtype=bool))[0]
    r1, r2 = rows[np.flatnonzero(given)[0]], rows[other]
    what = "customers" if column == "customer_id" else "timestamps"
    extra = "" if column == "customer_id" else (
        " If the lines of one order are stamped a little apart (e.g. a minute), state how far apart is still "
        "one order with `order_time_tolerance: 1min` under `rules:`.")
    raise DataError(
        f"{source}: order {str(oid)!r} has two {what}: {_show(values.iloc[np.flatnonzero(given)[0]])} (row "
        f"{r1 + 1}) and {_show(values.iloc[other])} (row {r2 + 1}); {len(ids):,} order id(s) conflict like this. "
        f"One order id must have one customer and one time: fix the export, or set such orders aside with "
        f"`conflicting_orders: quarantine` under `rules:` in the mapping (reason 'conflicting_order').{extra}",
        source=source, column=column, n_rows=len(ids), example=str(oid))


def _show(value: Any) -> str:
    return repr(str(value))


def _require_line_columns(raw: pd.DataFrame, df: pd.DataFrame, source: str,
                          mapping: ColumnMapping | None = None) -> None:
    """Fail clearly when a required order-line column is missing after renaming; when the header
    is one cell that another separator would split into the wanted columns, say which separator."""
    missing = [c for c in LINE_REQUIRED if c not in df.columns]
    if missing:
        present = ", ".join(map(str, raw.columns[:40]))
        wanted = [mapping.columns.get(c, c) if mapping else c for c in missing]
        sep = separator_hint(raw.columns, wanted)
        todo = (f"The header looks separated by {sep!r}, not by the separator used to read it: set "
                f"`read: {{sep: {sep!r}}}` in the mapping (--mapping) and read the file again." if sep else
                f"Pass a column-mapping file (--mapping) with e.g. 'columns: {{{missing[0]}: YourColumn}}' "
                "(see data/mappings/online_retail.yaml).")
        raise SchemaError(
            f"{source}: order-lines data needs column(s) {missing}, which are missing. Columns present: "
            f"[{present}]. {todo}",
            source=source, column=missing[0], n_rows=len(missing), example=list(map(str, raw.columns[:10])))


def separator_hint(columns: Any, wanted: list[str]) -> str | None:
    """The separator (``;``, tab, ``|`` or ``,``) that would split a one-cell header into columns
    including some of `wanted`, or ``None``.

    >>> separator_hint(["order_id;customer_id;price"], ["order_id", "price"])
    ';'
    >>> separator_hint(["a", "b"], ["order_id"]) is None
    True
    """
    names = [str(c) for c in columns]
    if len(names) != 1:
        return None
    best, hits = None, 0
    for sep in (";", "\t", "|", ","):
        parts = [p.strip().strip('"') for p in names[0].split(sep)]
        n = sum(w in parts for w in wanted)
        if len(parts) > 1 and n > hits:
            best, hits = sep, n
    return best


def _require_order_keys(c: pd.DataFrame, source: str, mapping: ColumnMapping | None) -> None:
    """Every line needs an order id, and every order a time: name the file row (1-based data row)
    of the first line without, and how many there are."""
    key = c["order_id"]
    no_id = key.isna().to_numpy(dtype=bool)
    dated = key[c["ordered_at"].notna().to_numpy(dtype=bool)].unique()
    no_time = ~no_id & ~key.isin(dated).to_numpy(dtype=bool)
    for column, bad, what in (("order_id", no_id, "every order line needs an order id"),
                              ("ordered_at", no_time, "an order needs a date (no other line of the order has one)")):
        n = int(bad.sum())
        if not n:
            continue
        user = mapping.columns.get(column, column) if mapping else column
        named = f"'{column}'" if user == column else f"'{column}' (your column '{user}')"
        scope = f"all {n:,} rows" if n == len(c) else f"{n:,} row(s)"
        row = int(np.flatnonzero(bad)[0]) + 1
        raise DataError(
            f"{source}: column {named} is empty in {scope} (first: row {row}, counting data rows from 1); "
            f"{what}. Fix the rows in the file, or map the right column with "
            f"'columns: {{{column}: YourColumn}}' in the mapping (--mapping).",
            source=source, column=column, n_rows=n, example=row)


def _coerce_line_columns(df: pd.DataFrame, rules: dict[str, Any], read: dict[str, Any], source: str,
                         notes: list[str] | None = None) -> pd.DataFrame:
    """The canonical order-line columns present in `df`, cast to their canonical dtypes."""
    present_opt = [c for c in LINE_OPTIONAL if c in df.columns]
    specs = {}
    for table in ("orders", "order_items", "products", "customers"):
        for c in schema.TABLES[table].columns:
            specs.setdefault(c.name, c)
    cols = {}
    for name in LINE_REQUIRED + tuple(present_opt):
        if name == "status" and (rules.get("cancelled_if") or rules.get("returned_if")):
            continue  # rules decide the status; the raw column may hold other codes
        cols[name] = schema.coerce_column(df[name], specs[name], table="order lines", source=source,
                                          date_format=read.get("date_format"),
                                          dayfirst=None if read.get("dayfirst") is None else bool(read["dayfirst"]),
                                          notes=notes)
    return pd.DataFrame(cols)


def _status_rank(raw: pd.DataFrame, df: pd.DataFrame, c: pd.DataFrame, rules: dict[str, Any],
                 source: str) -> pd.Series:
    """Status of each line as a rank (0 completed, 1 returned, 2 cancelled): the rules, else a
    mapped ``status`` column, else completed."""
    rank = pd.Series(0, index=raw.index, dtype="int8")
    if rules.get("cancelled_if") or rules.get("returned_if"):
        if rules.get("returned_if"):
            rank[condition_mask(raw, df, rules["returned_if"], source, "returned_if")] = 1
        if rules.get("cancelled_if"):
            rank[condition_mask(raw, df, rules["cancelled_if"], source, "cancelled_if")] = 2
    elif "status" in c.columns:
        rank = c["status"].astype(object).map(_STATUS_RANK).fillna(0).astype("int8")
    return rank


def _order_items(c: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """One row per line, numbered within its order, with its source row and a hash of the user's row."""
    order_key = c["order_id"]
    return pd.DataFrame({
        "order_id": order_key,
        "line_no": order_key.groupby(order_key, sort=False).cumcount().astype("int64"),
        "product_id": c["product_id"],
        "quantity": c["quantity"],
        "unit_price": c["unit_price"],
        "source_row": np.arange(len(c), dtype="int64"),
        "row_hash": pd.util.hash_pandas_object(raw, index=False).to_numpy(),
    })


def _orders(c: pd.DataFrame, rank: pd.Series) -> pd.DataFrame:
    """One row per order: its first customer, timestamp and order attributes; the most severe status."""
    order_key = c["order_id"]
    oparts = c[["customer_id", "ordered_at"] + [x for x in LINE_ORDER_COLUMNS if x in c.columns and x != "status"]]
    orders = _first_by(order_key, oparts)
    ranks = rank.groupby(order_key.to_numpy(), sort=False).max()
    names = {v: k for k, v in _STATUS_RANK.items()}
    orders["status"] = ranks.reindex(orders.index).map(names).to_numpy()
    return orders.rename_axis("order_id").reset_index()


def _products(c: pd.DataFrame) -> pd.DataFrame:
    """One row per product with its first non-null attributes and its most frequent name."""
    pcols = [x for x in LINE_PRODUCT_COLUMNS if x in c.columns]
    products = (_first_by(c["product_id"], c[pcols]) if pcols
                else pd.DataFrame(index=pd.Index(c["product_id"].unique())))
    if "product_name" in pcols:
        # the most frequent description names the product (ties: first seen); the first one seen
        # is often a one-off stock note such as "mailout" in Online Retail
        names_ = c[["product_id", "product_name"]].dropna()
        counts = (names_.groupby(["product_id", "product_name"], sort=False, observed=True).size()
                  .rename("n").reset_index())
        best = counts.sort_values("n", ascending=False, kind="stable").drop_duplicates("product_id")
        products["product_name"] = best.set_index("product_id")["product_name"].reindex(products.index)
    return products.rename_axis("product_id").reset_index()


def _customers(c: pd.DataFrame) -> pd.DataFrame:
    """The distinct non-null customer ids with their first non-null attributes."""
    has_cust = c["customer_id"].notna()
    ccols = [x for x in LINE_CUSTOMER_COLUMNS if x in c.columns]
    cc = c.loc[has_cust]
    customers = (_first_by(cc["customer_id"], cc[ccols]) if ccols
                 else pd.DataFrame(index=pd.Index(cc["customer_id"].unique())))
    return customers.rename_axis("customer_id").reset_index()
