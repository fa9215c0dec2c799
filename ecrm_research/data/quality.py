"""Step 2 of the mining process: data-quality report, cleaning and quarantine.

:func:`quality_report` describes the canonical tables (rows, missing values, duplicate keys and
rows, out-of-range values, orphan foreign keys, order statuses, date ranges, non-product lines)
without changing anything. :func:`clean` applies a :class:`CleaningPolicy` and sets every
dropped row aside in a *quarantine* with a reason code, so that for each table and reason::

    input rows = kept rows + quarantined rows

Reason codes, in priority order (a row is quarantined for the first reason that applies):

==========================  =====================================================================
``orphan_key``              a foreign key has no parent row (always applied to orders,
                            order_items and service_contacts; survey links are only reported)
``missing_customer``        the order has no customer id
``cancelled``               the order's status is 'cancelled'
``nonpositive_quantity``    the line's quantity is ≤ 0 (returns, adjustments)
``nonpositive_price``       the line's unit price is ≤ 0 (free samples, bad-debt adjustments)
``duplicate_row``           (opt-in) an exact copy of an earlier line
``non_product``             (opt-in) the product id is a non-product code (postage, fees...)
``no_kept_lines``           an order that had lines, all of which were quarantined
==========================  =====================================================================

Plausibility guards (:data:`GUARD_REASONS`), applied right after ``orphan_key`` and before the
other reasons above, so that a value that cannot be right is never analysed (bounds in :class:`CleaningPolicy`, masks in
:mod:`ecrm_research.data.plausibility`):

==========================  =====================================================================
``conflicting_order``       the order id has two customers or two timestamps in a lines file
                            (only with the mapping's ``rules.conflicting_orders: quarantine``;
                            otherwise reading fails and names the order)
``implausible_date``        the order's (or contact's) date is before ``min_date`` (1990-01-01)
                            or after ``max_date`` (default: the day of the run)
``non_finite_value``        the line's quantity or unit price is inf, -inf or missing (NaN)
``implausible_value``       the line's unit price is above ``max_unit_price`` (1e7) or its
                            quantity above ``max_abs_quantity`` (1e6) in absolute value
==========================  =====================================================================

The reconciliation has a column for every reason of :data:`REASONS` and, when they occur, for the
guard reasons.

Order-level decisions (orphan customer, missing customer, cancelled) cascade to the order's
lines with the same reason. Orders that had no lines in the input are kept (and counted in the
report). Customers and products are master data: they are never quarantined; count the
customers that still have orders as ``result.tables['orders'].customer_id.nunique()`` (also in
:attr:`CleanResult.summary`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SchemaError
from ..markup import escape_md
from . import plausibility, schema
from .dataset import load_dataset
from .keys import duplicated, key_isin, key_positions

REASONS: tuple[str, ...] = (
    "orphan_key", "missing_customer", "cancelled", "nonpositive_quantity", "nonpositive_price",
    "duplicate_row", "non_product", "no_kept_lines",
)
#: plausibility guards: quarantined right after orphan_key; a reconciliation column only when they occur
GUARD_REASONS: tuple[str, ...] = ("conflicting_order", "implausible_date", "non_finite_value", "implausible_value")
ALL_REASONS: tuple[str, ...] = REASONS + GUARD_REASONS
#: the orders column a lines file carries when ``rules.conflicting_orders: quarantine`` found conflicts
CONFLICT_COLUMN = "conflicting_order"
#: tables whose orphan foreign keys are quarantined (survey links are reported only)
_ORPHAN_DROP_TABLES = ("orders", "order_items", "service_contacts")
#: columns that make two order lines "different" without being data: the line key and provenance
_NOT_CONTENT = ("line_no", "source_row")


# --------------------------------------------------------------------------- policy
@dataclass
class CleaningPolicy:
    """Which rows :func:`clean` sets aside. The defaults are the "standard filters".

    Attributes
    ----------
    drop_missing_customer : bool
        Drop orders (and their lines) without a customer id.
    drop_cancelled : bool
        Drop cancelled orders (and their lines).
    drop_nonpositive_quantity : bool
        Drop lines with quantity ≤ 0.
    drop_nonpositive_price : bool
        Drop lines with unit price ≤ 0.
    drop_duplicate_rows : bool
        Drop exact copies of an earlier line (first copy kept). Off by default: in many
        exports a repeated line is a real repeated scan.
    drop_non_product : bool
        Drop lines whose product id is one of the ``non_product_codes`` (postage, fees...).
    min_date : str or None
        Orders and service contacts dated before it are quarantined (``implausible_date``);
        None: no lower bound. Default 1990-01-01 (placeholders such as 1900-01-01, 1970-01-01).
    max_date : str or None
        ... and after it (its whole day counts); None (default): after the day of the run.
    max_unit_price : float or None
        Lines with a unit price above it are quarantined (``implausible_value``); None: no bound.
    max_abs_quantity : float or None
        Lines with ``|quantity|`` above it are quarantined (``implausible_value``); None: no bound.
        Lines whose quantity or unit price is inf or NaN are always quarantined (``non_finite_value``).

    Examples
    --------
    >>> CleaningPolicy().describe()[0]
    'Order rows and lines whose key points at nothing (orphan foreign keys) are set aside.'
    """

    drop_missing_customer: bool = True
    drop_cancelled: bool = True
    drop_nonpositive_quantity: bool = True
    drop_nonpositive_price: bool = True
    drop_duplicate_rows: bool = False
    drop_non_product: bool = False
    min_date: str | None = "1990-01-01"
    max_date: str | None = None
    max_unit_price: float | None = 1e7
    max_abs_quantity: float | None = 1e6

    def date_window(self) -> tuple[pd.Timestamp | None, pd.Timestamp]:
        """``(lo, hi)``: dates ``lo <= d < hi`` are plausible (:func:`plausibility.date_window`)."""
        return plausibility.date_window(self.min_date, self.max_date)

    def guards(self) -> list[str]:
        """The plausibility guards in plain words, one sentence each (kept apart from
        :meth:`describe`, which lists the standard filters).

        Returns
        -------
        list of str
        """
        lo, hi = self.date_window()
        last = (hi - pd.Timedelta(days=1)).date()
        out = [f"Orders and service contacts dated {'before ' + str(lo.date()) + ' or ' if lo is not None else ''}"
               f"after {last} are set aside as implausible dates, orders with all their lines.",
               "Order lines whose quantity or unit price is infinite or missing are set aside."]
        if self.max_unit_price is not None or self.max_abs_quantity is not None:
            parts = ([f"a unit price above {self.max_unit_price:,.0f}"] if self.max_unit_price is not None else []) + \
                ([f"a quantity above {self.max_abs_quantity:,.0f} (either sign)"]
                 if self.max_abs_quantity is not None else [])
            out.append("Order lines with " + " or ".join(parts) + " are set aside as implausible values.")
        return out

    def describe(self) -> list[str]:
        """The filters in plain words, one sentence each, for reports.

        Returns
        -------
        list of str
        """
        def onoff(flag: bool, dropped: str, kept: str) -> str:
            return dropped if flag else kept

        return [
            "Order rows and lines whose key points at nothing (orphan foreign keys) are set aside.",
            onoff(self.drop_missing_customer,
                  "Orders without a customer id are set aside, with all their lines.",
                  "Orders without a customer id are kept."),
            onoff(self.drop_cancelled,
                  "Cancelled orders are set aside, with all their lines.",
                  "Cancelled orders are kept."),
            onoff(self.drop_nonpositive_quantity,
                  "Order lines with zero or negative quantity (returns, adjustments) are set aside.",
                  "Order lines with zero or negative quantity are kept."),
            onoff(self.drop_nonpositive_price,
                  "Order lines with zero or negative unit price (free items, adjustments) are set aside.",
                  "Order lines with zero or negative unit price are kept."),
            onoff(self.drop_duplicate_rows,
                  "Exact duplicate order lines are set aside (the first copy is kept).",
                  "Exact duplicate order lines are kept (they are counted in the quality report)."),
            onoff(self.drop_non_product,
                  "Non-product lines (postage, fees, manual adjustments) are set aside.",
                  "Non-product lines (postage, fees) are kept."),
            "Orders left without any kept line are set aside; customers and products are never dropped.",
        ]


# --------------------------------------------------------------------------- report
def _md_table(df: pd.DataFrame, max_rows: int = 40) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency such as tabulate).

    Every header and cell goes through :func:`~ecrm_research.markup.escape_md`: status names, product
    ids, column names and examples come from the user's file, and a value such as
    ``<img src=x onerror=...>`` or ``a | b`` must render as that text (in JupyterLab and in HTML
    reports), never as a tag, a link or an extra table column.
    """
    if df.empty:
        return "_none_\n"
    shown = df.head(max_rows)

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            if pd.isna(v):
                return ""
            return f"{v:,.0f}" if float(v).is_integer() else (f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}")
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"{v:,}"
        return "" if v is None or (not isinstance(v, (list, tuple)) and pd.isna(v)) else str(v)

    lines = ["| " + " | ".join(escape_md(c) for c in shown.columns) + " |",
             "|" + "|".join("---" for _ in shown.columns) + "|"]
    lines += ["| " + " | ".join(escape_md(fmt(v)) for v in row) + " |" for row in shown.itertuples(index=False)]
    if len(df) > max_rows:
        lines.append(f"\n… {len(df) - max_rows:,} more rows")
    return "\n".join(lines) + "\n"


@dataclass
class QualityReport:
    """Data-quality findings as tidy DataFrames (nothing is changed by a report).

    Attributes
    ----------
    summary : DataFrame
        table, rows, columns, missing_cells, duplicate_keys, duplicate_rows, orphan_rows.
    missing : DataFrame
        table, column, n_missing, share (every column).
    duplicates : DataFrame
        table, key, duplicate_keys (surplus rows sharing a key), duplicate_rows (surplus exact
        copies; order lines compared on every column but ``line_no``/``source_row``).
    ranges : DataFrame
        table, column, check, n_rows, example: out-of-range values.
    orphans : DataFrame
        table, column, parent, n_rows, example: foreign keys without a parent.
    statuses : DataFrame
        status, n_orders, n_lines, share_orders.
    date_range : DataFrame
        table, column, min, max, n_missing.
    non_product : DataFrame
        product_id, n_lines, quantity, revenue for the non-product codes present.
    notes : list of str
        Decisions taken from the values while reading, with their evidence (e.g. dates read as
        day/month because some first field is above 12); :func:`prepare` fills them in.

    Notes
    -----
    ``ranges`` also lists the plausibility guards of the policy (checks ``before <date>``,
    ``after <date>``, ``not finite``, ``above <bound>``, ``conflicting customer or time``): the
    rows :func:`clean` quarantines as ``implausible_date``, ``non_finite_value``,
    ``implausible_value`` and ``conflicting_order``.
    """

    summary: pd.DataFrame
    missing: pd.DataFrame
    duplicates: pd.DataFrame
    ranges: pd.DataFrame
    orphans: pd.DataFrame
    statuses: pd.DataFrame
    date_range: pd.DataFrame
    non_product: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """All findings as one long table: section, table, column, measure, value.

        Returns
        -------
        DataFrame
        """
        parts = []
        for section in ("summary", "missing", "duplicates", "ranges", "orphans", "statuses", "non_product"):
            df = getattr(self, section)
            if df.empty:
                continue
            idcols = [c for c in ("table", "column", "check", "parent", "key", "status", "product_id")
                      if c in df.columns]
            long = df.melt(id_vars=idcols, var_name="measure", value_name="value")
            long.insert(0, "section", section)
            if "status" in long.columns:
                long["column"] = "status"
                long["table"] = "orders"
                long["measure"] = long["status"].astype(str) + ":" + long["measure"]
            if "product_id" in long.columns:
                long["table"] = "order_items"
                long["column"] = "product_id"
                long["measure"] = long["product_id"].astype(str) + ":" + long["measure"]
            if "check" in long.columns:
                long["measure"] = long["check"] + ":" + long["measure"]
            parts.append(long.reindex(columns=["section", "table", "column", "measure", "value"]))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["section", "table", "column", "measure", "value"])

    def to_markdown(self) -> str:
        """A readable Markdown summary (printed by ``ecrm validate``, shown in notebooks).

        Returns
        -------
        str
        """
        missing = self.missing[(self.missing["n_missing"] > 0) & (self.missing["share"] < 1)]
        out = ["## Data quality", "", "### Tables", _md_table(self.summary),
               "### Missing values (columns partly missing; wholly absent optional columns omitted)",
               _md_table(missing), "### Duplicates", _md_table(self.duplicates),
               "### Out-of-range values", _md_table(self.ranges),
               "### Orphan foreign keys", _md_table(self.orphans),
               "### Order statuses", _md_table(self.statuses),
               "### Date ranges", _md_table(self.date_range.astype({"min": str, "max": str})),
               "### Non-product lines", _md_table(self.non_product)]
        if self.notes:
            out += ["### Decisions taken from the values", *(f"* {n}" for n in self.notes), ""]
        return "\n".join(out)

    def _repr_markdown_(self) -> str:  # Jupyter display
        return self.to_markdown()


def _content_columns(df: pd.DataFrame, table: str) -> list[str]:
    return [c for c in df.columns if not (table == "order_items" and c in _NOT_CONTENT)]


def _duplicate_rows(df: pd.DataFrame, table: str, cache: dict | None = None) -> pd.Series:
    """Exact copies of an earlier row (first copy not marked)."""
    cols = _content_columns(df, table)
    # integer codes per column (keys.duplicated); object columns holding lists do not hash,
    # so fall back to their text
    try:
        return pd.Series(duplicated(df, cols, keep="first", cache=cache), index=df.index)
    except TypeError:
        return df[cols].astype(str).duplicated(keep="first")


def _order_positions(tables: Mapping[str, pd.DataFrame], memo: dict) -> np.ndarray:
    """Row of each order line's order in ``orders`` (-1: none), computed once per clean."""
    if "order_pos" not in memo:
        memo["order_pos"] = key_positions(tables["order_items"]["order_id"], tables["orders"]["order_id"])
    return memo["order_pos"]


def _orphans(tables: Mapping[str, pd.DataFrame], table: str, column: str, memo: dict) -> pd.Series:
    """:func:`schema.orphan_mask`, computed once per (table, column) in a report + clean."""
    key = ("orphan", table, column)
    if key not in memo:
        if (table, column) == ("order_items", "order_id") and "orders" in tables:
            child = tables[table][column]
            memo[key] = pd.Series(np.asarray(child.notna(), dtype=bool) & (_order_positions(tables, memo) < 0),
                                  index=child.index)
        else:
            memo[key] = schema.orphan_mask(dict(tables), table, column)
    return memo[key]


def _first(values: pd.Series, mask: pd.Series) -> Any:
    v = values[mask]
    if v.empty:
        return None
    x = v.iloc[0]
    return x.item() if hasattr(x, "item") else x


_RANGE_CHECKS: tuple[tuple[str, str, str, Any], ...] = (
    ("order_items", "quantity", "negative", lambda s: s < 0),
    ("order_items", "quantity", "zero", lambda s: s == 0),
    ("order_items", "unit_price", "negative", lambda s: s < 0),
    ("order_items", "unit_price", "zero", lambda s: s == 0),
    ("orders", "discount_rate", "outside 0-1", lambda s: (s < 0) | (s > 1)),
    ("orders", "delivery_days", "negative", lambda s: s < 0),
    ("orders", "promised_days", "negative", lambda s: s < 0),
    ("products", "list_price", "negative", lambda s: s < 0),
)


def quality_report(tables: Mapping[str, pd.DataFrame], *, non_product_codes: Iterable[str] = (),
                   policy: CleaningPolicy | None = None) -> QualityReport:
    """Describe the quality of canonical tables without changing them.

    Parameters
    ----------
    tables : dict of DataFrame
        Canonical tables (as in :attr:`ecrm_research.data.io.Dataset.tables`).
    non_product_codes : iterable of str
        Product ids that are not goods (postage, fees...), e.g. from the mapping's rules.
    policy : CleaningPolicy, optional
        Bounds of the plausibility checks listed in ``ranges`` (default ``CleaningPolicy()``).

    Returns
    -------
    QualityReport

    Examples
    --------
    >>> import pandas as pd
    >>> t = {"orders": pd.DataFrame({"order_id": ["1", "1"], "customer_id": ["a", None]})}
    >>> quality_report(t).duplicates["duplicate_keys"].tolist()
    [1]
    """
    return _quality_report(tables, {str(c) for c in non_product_codes}, {}, policy or CleaningPolicy())


def _quality_report(tables: Mapping[str, pd.DataFrame], codes: set[str], memo: dict,
                    policy: CleaningPolicy) -> QualityReport:
    """:func:`quality_report`; ``memo`` keeps the order positions and orphan masks for :func:`clean`."""
    summary, missing, dups, orphans, dates = [], [], [], [], []
    for name, df in tables.items():
        na = df.isna().sum()
        missing += _missing_rows(name, df, na)
        dup = _duplicate_counts(name, df)
        dups.append(dup)
        table_orphans = _orphan_rows(tables, name, memo)
        orphans += table_orphans
        dates += _date_rows(name, df)
        summary.append({"table": name, "rows": len(df), "columns": df.shape[1],
                        "missing_cells": int(na.sum()), "duplicate_keys": dup["duplicate_keys"],
                        "duplicate_rows": dup["duplicate_rows"],
                        "orphan_rows": max([0, *(o["n_rows"] for o in table_orphans)])})
    return QualityReport(
        summary=pd.DataFrame(summary, columns=["table", "rows", "columns", "missing_cells", "duplicate_keys",
                                               "duplicate_rows", "orphan_rows"]),
        missing=pd.DataFrame(missing, columns=["table", "column", "n_missing", "share"]),
        duplicates=pd.DataFrame(dups, columns=["table", "key", "duplicate_keys", "duplicate_rows"]),
        ranges=pd.DataFrame(_range_rows(tables) + _guard_rows(tables, policy),
                            columns=["table", "column", "check", "n_rows", "example"]),
        orphans=pd.DataFrame(orphans, columns=["table", "column", "parent", "n_rows", "example"]),
        statuses=_status_counts(tables, memo),
        date_range=pd.DataFrame(dates, columns=["table", "column", "min", "max", "n_missing"]),
        non_product=_non_product(tables, codes),
    )


def _missing_rows(name: str, df: pd.DataFrame, na: pd.Series) -> list[dict[str, Any]]:
    """Missing values of each column of one table (`na`: ``df.isna().sum()``)."""
    return [{"table": name, "column": col, "n_missing": int(n), "share": float(n) / len(df) if len(df) else 0.0}
            for col, n in na.items()]


def _duplicate_counts(name: str, df: pd.DataFrame) -> dict[str, Any]:
    """Duplicate keys and exact duplicate rows of one table."""
    spec = schema.TABLES.get(name)
    key = list(spec.key) if spec else []
    cache: dict = {}  # integer codes of the columns, shared by the two duplicate checks
    n_dup_key = int(duplicated(df, key, cache=cache).sum()) if key and set(key) <= set(df.columns) else 0
    n_dup_row = int(_duplicate_rows(df, name, cache).sum()) if len(df.columns) else 0
    return {"table": name, "key": ", ".join(key), "duplicate_keys": n_dup_key, "duplicate_rows": n_dup_row}


def _orphan_rows(tables: Mapping[str, pd.DataFrame], name: str, memo: dict) -> list[dict[str, Any]]:
    """Orphan foreign keys of one table, one row per foreign key whose parent table is present."""
    spec = schema.TABLES.get(name)
    df = tables[name]
    rows = []
    for col, (parent, pcol) in (spec.foreign_keys.items() if spec else ()):
        if col not in df.columns or parent not in tables:
            continue
        m = _orphans(tables, name, col, memo)
        rows.append({"table": name, "column": col, "parent": f"{parent}.{pcol}", "n_rows": int(m.sum()),
                     "example": _first(df[col], m)})
    return rows


def _date_rows(name: str, df: pd.DataFrame) -> list[dict[str, Any]]:
    """First and last date of each date column of one table."""
    return [{"table": name, "column": col, "min": df[col].min(), "max": df[col].max(),
             "n_missing": int(df[col].isna().sum())}
            for col in df.columns if pd.api.types.is_datetime64_any_dtype(df[col])]


def _range_rows(tables: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Out-of-range values (:data:`_RANGE_CHECKS`) of the columns present."""
    rows = []
    for table, col, check, fn in _RANGE_CHECKS:
        if table in tables and col in tables[table].columns:
            s = tables[table][col]
            m = fn(s).fillna(False).astype(bool)
            rows.append({"table": table, "column": col, "check": check, "n_rows": int(m.sum()),
                         "example": _first(s, m)})
    return rows


def _guard_rows(tables: Mapping[str, pd.DataFrame], policy: CleaningPolicy) -> list[dict[str, Any]]:
    """The plausibility checks (see :data:`GUARD_REASONS`) of every date column and of the order
    lines' amounts; customers' and surveys' dates are reported only (master data is never dropped)."""
    lo, hi = policy.date_window()
    rows = []
    for name, df in tables.items():
        for col in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[col]):
                early, late = plausibility.outside_window(df[col], lo, hi)
                if lo is not None:
                    rows.append(_check_row(name, col, f"before {lo.date()}", df[col], early))
                rows.append(_check_row(name, col, f"after {(hi - pd.Timedelta(days=1)).date()}", df[col], late))
    items = tables.get("order_items")
    amounts = (("quantity", policy.max_abs_quantity, True), ("unit_price", policy.max_unit_price, False))
    for col, bound, absolute in amounts:
        if items is not None and col in items.columns:
            rows.append(_check_row("order_items", col, "not finite", items[col], plausibility.not_finite(items[col])))
            if bound is not None:
                rows.append(_check_row("order_items", col, f"{'|x| ' if absolute else ''}above {bound:g}", items[col],
                                       plausibility.above(items[col], bound, absolute=absolute)))
    orders = tables.get("orders")
    if orders is not None and CONFLICT_COLUMN in orders.columns:
        rows.append(_check_row("orders", "order_id", "conflicting customer or time", orders["order_id"],
                               _bool(orders[CONFLICT_COLUMN])))
    return rows


def _check_row(table: str, col: str, check: str, values: pd.Series, mask: np.ndarray) -> dict[str, Any]:
    mask = pd.Series(np.asarray(mask, dtype=bool), index=values.index)
    return {"table": table, "column": col, "check": check, "n_rows": int(mask.sum()), "example": _first(values, mask)}


def _status_counts(tables: Mapping[str, pd.DataFrame], memo: dict | None = None) -> pd.DataFrame:
    cols = ["status", "n_orders", "n_lines", "share_orders"]
    orders = tables.get("orders")
    if orders is None or "status" not in orders.columns:
        return pd.DataFrame(columns=cols)
    status = orders["status"].astype(object).fillna("(missing)")
    n_orders = status.value_counts()
    n_lines = pd.Series(0, index=n_orders.index)
    items = tables.get("order_items")
    if items is not None and "order_id" in items.columns:
        pos = _order_positions(tables, memo if memo is not None else {})
        scode, slevels = pd.factorize(status)
        per_level = np.bincount(scode[pos[pos >= 0]], minlength=len(slevels))
        line_counts = pd.Series(per_level, index=pd.Index(slevels, dtype=object))
        n_orphan = int((pos < 0).sum())
        if n_orphan:
            line_counts = pd.concat([line_counts, pd.Series([n_orphan], index=["(orphan)"])])
        n_lines = line_counts.reindex(n_orders.index, fill_value=0)
    out = pd.DataFrame({"status": n_orders.index.astype(str), "n_orders": n_orders.to_numpy(),
                        "n_lines": n_lines.to_numpy()})
    out["share_orders"] = out["n_orders"] / max(len(orders), 1)
    return out.reset_index(drop=True)


def _non_product(tables: Mapping[str, pd.DataFrame], codes: set[str]) -> pd.DataFrame:
    cols = ["product_id", "n_lines", "quantity", "revenue"]
    items = tables.get("order_items")
    if not codes or items is None or "product_id" not in items.columns:
        return pd.DataFrame(columns=cols)
    sel = items[key_isin(items["product_id"], pd.Series(sorted(codes), dtype=schema.ID))]
    if sel.empty:
        return pd.DataFrame(columns=cols)
    g = sel.assign(revenue=sel["quantity"] * sel["unit_price"]).groupby("product_id", observed=True)
    out = g.agg(n_lines=("quantity", "size"), quantity=("quantity", "sum"), revenue=("revenue", "sum"))
    return out.reset_index().sort_values("n_lines", ascending=False, ignore_index=True)[cols]


# --------------------------------------------------------------------------- cleaning
@dataclass
class CleanResult:
    """Outcome of :func:`clean`.

    Attributes
    ----------
    tables : dict of DataFrame
        Cleaned canonical tables (index reset).
    quarantine : DataFrame
        One row per dropped row: table, row (0-based position in the input table), reason, and
        the key columns order_id, line_no, customer_id, product_id, contact_id, source_row
        (missing where they do not apply).
    reconciliation : DataFrame
        Per table: input_rows, kept_rows, quarantined_rows, one column per reason code, and
        ``reconciles`` (input = kept + quarantined).
    report : QualityReport or None
        Report on the *input* tables (None when ``clean(..., report=False)``).
    policy : CleaningPolicy
        The policy applied.
    """

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    reconciliation: pd.DataFrame
    report: QualityReport
    policy: CleaningPolicy = field(default_factory=CleaningPolicy)

    @property
    def summary(self) -> pd.DataFrame:
        """Headline counts after cleaning: lines, orders, customers with orders, revenue.

        Returns
        -------
        DataFrame
            measure, value.
        """
        items = self.tables.get("order_items", pd.DataFrame(columns=["quantity", "unit_price"]))
        orders = self.tables.get("orders", pd.DataFrame(columns=["customer_id"]))
        rec = self.reconciliation.set_index("table")
        rows = {
            "input_lines": int(rec.loc["order_items", "input_rows"]) if "order_items" in rec.index else 0,
            "kept_lines": len(items),
            "kept_orders": len(orders),
            "customers_with_orders": int(orders["customer_id"].nunique()),
            "revenue": float((items["quantity"] * items["unit_price"]).sum()),
            "quarantined_rows": len(self.quarantine),
        }
        return pd.DataFrame({"measure": list(rows), "value": list(rows.values())})


#: reason code of a row: 0 = kept, i + 1 = REASONS[i]; int8 arrays keep 10M-row cleaning cheap
_KEPT = 0
_CODE = {r: i + 1 for i, r in enumerate(ALL_REASONS)}
_REASON_OF_CODE = np.array([None, *ALL_REASONS], dtype=object)


def _reason_codes(conditions: Sequence[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    """First applicable reason per row as an int8 code (0 = kept); earlier conditions win."""
    out = np.zeros(n, dtype=np.int8)
    for reason, cond in reversed(conditions):  # the earliest condition is written last and wins
        out[np.asarray(cond, dtype=bool)] = _CODE[reason]
    return out


def _bool(s: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(s, np.ndarray) and s.dtype == bool:
        return s
    return np.asarray(pd.Series(s).fillna(False), dtype=bool)


def _date_guard(df: pd.DataFrame, column: str, policy: CleaningPolicy) -> list[tuple[str, np.ndarray]]:
    """``implausible_date`` for the rows of `df` whose `column` is outside the policy's window."""
    if column not in df.columns:
        return []
    early, late = plausibility.outside_window(df[column], *policy.date_window())
    return [("implausible_date", early | late)]


def _order_reasons(tables: Mapping[str, pd.DataFrame], policy: CleaningPolicy, memo: dict) -> np.ndarray:
    orders = tables["orders"]
    # a key that points nowhere first (the row belongs to nothing known), then the guards, then the rest
    conds = [("orphan_key", _bool(_orphans(tables, "orders", "customer_id", memo)))]
    if CONFLICT_COLUMN in orders.columns:
        conds.append(("conflicting_order", _bool(orders[CONFLICT_COLUMN])))
    conds += _date_guard(orders, "ordered_at", policy)
    if policy.drop_missing_customer:
        conds.append(("missing_customer", _bool(orders["customer_id"].isna())))
    if policy.drop_cancelled:
        conds.append(("cancelled", _equals(orders["status"], "cancelled")))
    return _reason_codes(conds, len(orders))


def _equals(series: pd.Series, value: str) -> np.ndarray:
    """``series == value`` as a bool array; a categorical is compared on its few categories."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = np.asarray(series.cat.categories.astype(object) == value, dtype=bool)
        codes = series.cat.codes.to_numpy()
        return np.where(codes >= 0, cats[np.maximum(codes, 0)] if len(cats) else False, False)
    return _bool(series.astype(object) == value)


def _inherited_conditions(tables: Mapping[str, pd.DataFrame], order_reason: np.ndarray, order_pos: np.ndarray,
                          memo: dict) -> list[tuple[str, np.ndarray]]:
    """The cascade from orders to lines: each line takes its order's reason (orphan, missing customer,
    cancelled); a line whose order does not exist, or whose product does not, is an orphan."""
    inherited = np.where(order_pos >= 0, order_reason[np.maximum(order_pos, 0)], _CODE["orphan_key"])
    orphan = inherited == _CODE["orphan_key"]
    if "products" in tables:
        orphan |= _bool(_orphans(tables, "order_items", "product_id", memo))
    conds = [("orphan_key", orphan)]
    conds += [(reason, inherited == _CODE[reason]) for reason in ("conflicting_order", "implausible_date")]
    for reason in ("missing_customer", "cancelled"):
        conds.append((reason, inherited == _CODE[reason]))
    return conds


def _amount_guards(items: pd.DataFrame, policy: CleaningPolicy) -> list[tuple[str, np.ndarray]]:
    """``non_finite_value`` (inf or NaN quantity/price), then ``implausible_value`` (beyond the bounds)."""
    q, p = items["quantity"], items["unit_price"]
    return [("non_finite_value", plausibility.not_finite(q) | plausibility.not_finite(p)),
            ("implausible_value", plausibility.above(q, policy.max_abs_quantity, absolute=True)
             | plausibility.above(p, policy.max_unit_price))]


def _line_conditions(items: pd.DataFrame, policy: CleaningPolicy, codes: set[str]) -> list[tuple[str, np.ndarray]]:
    """The line-level reasons the policy asks for, in priority order: quantity, price, duplicate, non-product."""
    conds = []
    if policy.drop_nonpositive_quantity:
        conds.append(("nonpositive_quantity", _bool(items["quantity"] <= 0)))
    if policy.drop_nonpositive_price:
        conds.append(("nonpositive_price", _bool(items["unit_price"] <= 0)))
    if policy.drop_duplicate_rows:
        conds.append(("duplicate_row", _bool(_duplicate_rows(items, "order_items"))))
    if policy.drop_non_product and codes:
        conds.append(("non_product", key_isin(items["product_id"], pd.Series(sorted(codes), dtype=schema.ID))))
    return conds


def _item_reasons(tables: Mapping[str, pd.DataFrame], order_reason: np.ndarray, order_pos: np.ndarray,
                  policy: CleaningPolicy, codes: set[str], memo: dict) -> np.ndarray:
    """Reason code of every order line: the reasons inherited from its order first, then its own."""
    items = tables["order_items"]
    inherited = _inherited_conditions(tables, order_reason, order_pos, memo)
    # orphan, the order's guards, the line's own guards, the order's other reasons, the line's own reasons
    conds = inherited[:3] + _amount_guards(items, policy) + inherited[3:] + _line_conditions(items, policy, codes)
    return _reason_codes(conds, len(items))


def _mark_orders_without_kept_lines(order_reason: np.ndarray, item_reason: np.ndarray, order_pos: np.ndarray
                                    ) -> None:
    """Set ``no_kept_lines`` (in place) on kept orders that had lines but kept none of them."""
    n_orders = len(order_reason)
    has_order = order_pos >= 0
    kept_line_orders = np.bincount(order_pos[has_order & (item_reason == _KEPT)], minlength=n_orders)
    any_line_orders = np.bincount(order_pos[has_order], minlength=n_orders)
    no_kept = (order_reason == _KEPT) & (any_line_orders > 0) & (kept_line_orders == 0)
    order_reason[no_kept] = _CODE["no_kept_lines"]


def _contact_reasons(tables: Mapping[str, pd.DataFrame], policy: CleaningPolicy, memo: dict) -> np.ndarray:
    """Reason code of every service contact: ``orphan_key`` when its customer does not exist, then
    ``implausible_date``."""
    contacts = tables["service_contacts"]
    conds = [("orphan_key", _bool(_orphans(tables, "service_contacts", "customer_id", memo)))]
    conds += _date_guard(contacts, "contacted_at", policy)
    return _reason_codes(conds, len(contacts))


def _row_reasons(tables: Mapping[str, pd.DataFrame], policy: CleaningPolicy, codes: set[str], memo: dict
                 ) -> dict[str, np.ndarray]:
    """Reason code (0 = kept) of every row of the tables that can lose rows: orders, order_items and
    service_contacts; customers, products and surveys are not in the result (never quarantined)."""
    order_reason = _order_reasons(tables, policy, memo)
    order_pos = _order_positions(tables, memo)
    item_reason = _item_reasons(tables, order_reason, order_pos, policy, codes, memo)
    _mark_orders_without_kept_lines(order_reason, item_reason, order_pos)
    reasons = {"orders": order_reason, "order_items": item_reason}
    if "service_contacts" in tables:
        reasons["service_contacts"] = _contact_reasons(tables, policy, memo)
    return reasons


_QCOLS = ["table", "row", "reason", "order_id", "line_no", "customer_id", "product_id", "contact_id", "source_row"]
_QDTYPES = {"table": "string", "row": "int64", "reason": "string", "order_id": schema.ID, "line_no": "Int64",
            "customer_id": schema.ID, "product_id": schema.ID, "contact_id": schema.ID, "source_row": "Int64"}


def _quarantine_part(table: str, df: pd.DataFrame, reason: np.ndarray, extra: Mapping[str, Any] | None = None
                     ) -> pd.DataFrame:
    """The quarantined rows of one table: position, reason and the key columns it has (or `extra` gives)."""
    dropped = np.flatnonzero(reason)
    part = pd.DataFrame({"table": table, "row": dropped, "reason": _REASON_OF_CODE[reason[dropped]]})
    for c in _QCOLS[3:]:
        if c in df.columns:
            part[c] = df[c].iloc[dropped].to_numpy()
        elif extra and c in extra:
            part[c] = extra[c](dropped) if callable(extra[c]) else np.asarray(extra[c])[dropped]
    return part


def _line_customers(orders: pd.DataFrame, order_pos: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving the customer id of the order lines at positions ``rows`` (None for orphans);
    the quarantine asks it for the quarantined lines only."""
    def customers(rows: np.ndarray) -> np.ndarray:
        pos = order_pos[rows]
        # picked first, then made Python objects: not one object per order of the whole table
        cust = orders["customer_id"].iloc[np.maximum(pos, 0)].to_numpy(dtype=object, na_value=None) \
            if len(orders) else np.full(len(rows), None, dtype=object)
        return np.where(pos >= 0, cust, None)

    return customers


def _build_quarantine(tables: Mapping[str, pd.DataFrame], reasons: Mapping[str, np.ndarray],
                      line_customers: Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
    """Every dropped row of every table, in table order, with the quarantine's columns and dtypes."""
    parts = []
    for name, df in tables.items():
        if name in reasons:
            extra = {"customer_id": line_customers} if name == "order_items" else None
            parts.append(_quarantine_part(name, df, reasons[name], extra))
    quarantine = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_QCOLS)).reindex(
        columns=_QCOLS)
    return quarantine.astype(_QDTYPES)


def _kept_rows(df: pd.DataFrame, reason: np.ndarray | None) -> pd.DataFrame:
    """The rows of `df` with reason 0, renumbered; a table without reasons is copied whole."""
    if reason is None:
        return df.copy()  # the cleaned tables never share data with the input
    if CONFLICT_COLUMN in df.columns:  # its rows are quarantined; the marker is not data
        df = df.drop(columns=CONFLICT_COLUMN)
    kept = df.loc[reason == _KEPT]  # a new frame: renumbered in place, not copied a second time
    kept.index = pd.RangeIndex(len(kept))
    return kept


def _reconciliation(tables: Mapping[str, pd.DataFrame], reasons: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per table: input, kept and quarantined rows and the count of each reason (see :func:`_rec_row`)."""
    rows = [_rec_row(name, len(df), reasons.get(name)) for name, df in tables.items()]
    guards = [r for r in GUARD_REASONS if any(r in row for row in rows)]
    columns = ["table", "input_rows", "kept_rows", "quarantined_rows", *REASONS, *guards, "reconciles"]
    return pd.DataFrame(rows, columns=columns).fillna({r: 0 for r in guards}).astype({r: "int64" for r in guards})


def _require_order_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    """Raise :class:`SchemaError` unless `tables` has ``orders`` and ``order_items``."""
    missing = [t for t in ("orders", "order_items") if t not in tables]
    if missing:
        raise SchemaError(f"clean: table(s) {missing} missing; have {sorted(tables)}. Cleaning needs canonical "
                          "orders and order_items (load them with io.load_dataset).", column=missing[0])


def clean(tables: Mapping[str, pd.DataFrame], policy: CleaningPolicy | None = None, *,
          non_product_codes: Iterable[str] = (), report: bool = True) -> CleanResult:
    """Apply a cleaning policy, quarantining every dropped row with a reason code.

    Parameters
    ----------
    tables : dict of DataFrame
        Canonical tables; ``orders`` and ``order_items`` are required.
    policy : CleaningPolicy, optional
        Defaults to the standard filters, ``CleaningPolicy()``.
    non_product_codes : iterable of str
        Product ids that are not goods; used by ``policy.drop_non_product`` and the report.
    report : bool
        Also describe the input (:func:`quality_report`; about half the time of a clean at
        scale). False: ``CleanResult.report`` is None, everything else is the same.

    Returns
    -------
    CleanResult
        Cleaned tables, quarantine, reconciliation (input = kept + quarantined, per table and
        reason) and the quality report of the input.

    Raises
    ------
    SchemaError
        ``orders`` or ``order_items`` missing.

    Notes
    -----
    See the module docstring for the reason codes and their priority.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["a", None],
    ...                        "status": ["completed", "completed"]})
    >>> items = pd.DataFrame({"order_id": ["1", "1", "2"], "line_no": [0, 1, 0],
    ...                       "product_id": ["p", "q", "p"], "quantity": [1.0, -1.0, 2.0],
    ...                       "unit_price": [2.0, 2.0, 2.0]})
    >>> res = clean({"orders": orders, "order_items": items})
    >>> res.quarantine.query("table == 'order_items'")["reason"].tolist()
    ['nonpositive_quantity', 'missing_customer']
    >>> res.reconciliation.set_index("table").loc["orders", ["kept_rows", "missing_customer"]].astype(int).tolist()
    [1, 1]
    """
    policy = policy or CleaningPolicy()
    _require_order_tables(tables)
    codes = {str(c) for c in non_product_codes}
    # clean only reads the tables: one with the default index is used as it is (no copy of 10^7 lines)
    tables = {k: v if _default_index(v) else v.reset_index(drop=True) for k, v in tables.items()}
    memo: dict = {}  # order positions and orphan masks, computed once for the report and the cleaning
    described = _quality_report(tables, codes, memo, policy) if report else None
    reasons = _row_reasons(tables, policy, codes, memo)
    line_customers = _line_customers(tables["orders"], _order_positions(tables, memo))
    return CleanResult(
        tables={name: _kept_rows(df, reasons.get(name)) for name, df in tables.items()},
        quarantine=_build_quarantine(tables, reasons, line_customers),
        reconciliation=_reconciliation(tables, reasons),
        report=described,
        policy=policy,
    )


def _default_index(df: pd.DataFrame) -> bool:
    """True when ``df`` has the index ``reset_index(drop=True)`` would give it (0, 1, ..., n-1)."""
    idx = df.index
    return isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1 and idx.name is None


def _rec_row(table: str, n: int, reason: np.ndarray | None) -> dict[str, Any]:
    """One reconciliation row; ``reconciles`` checks input = kept + quarantined = sum over reasons.

    Every reason of :data:`REASONS` has a column; a guard reason (:data:`GUARD_REASONS`) only
    when some row of the run has it (:func:`_reconciliation` fills the other tables with 0)."""
    counts = (np.bincount(reason, minlength=len(ALL_REASONS) + 1) if reason is not None
              else np.zeros(len(ALL_REASONS) + 1, dtype=np.int64))
    q = int(counts[1:].sum())
    row: dict[str, Any] = {"table": table, "input_rows": n, "kept_rows": n - q, "quarantined_rows": q}
    row.update({r: int(counts[_CODE[r]]) for r in REASONS})
    row.update({r: int(counts[_CODE[r]]) for r in GUARD_REASONS if counts[_CODE[r]]})
    row["reconciles"] = row["kept_rows"] + row["quarantined_rows"] == n and q == int(counts[1:].sum()) \
        and q == sum(row.get(r, 0) for r in ALL_REASONS)
    return row


def quarantine_frame(quarantine: Any) -> pd.DataFrame:
    """The quarantine as a pandas table to write next to the counts (``out.table(..., "quarantine")``).

    One row per dropped row: ``table, reason`` and the key columns (``order_id, line_no,
    customer_id, product_id, contact_id, source_row``), so any dropped row can be found in the
    user's file: ``source_row`` is the row of a lines file (0-based, header excluded); in a
    canonical folder the table's key (``order_id`` + ``line_no``, ``contact_id``) names the row.
    Sorted by table and key, so both preparation engines write the same table; a Spark
    quarantine (``prep_engine='spark'``) is collected (it holds the dropped rows only). The
    position column ``row`` of the pandas quarantine is left out (Spark has no row order).

    Parameters
    ----------
    quarantine : DataFrame
        :attr:`CleanResult.quarantine` (pandas) or the Spark engine's.

    Returns
    -------
    DataFrame
    """
    # a Spark DataFrame is collected: no pyspark import needed in the data layer
    frame = quarantine if isinstance(quarantine, pd.DataFrame) else quarantine.toPandas()
    frame = frame.reindex(columns=[c for c in _QCOLS if c != "row"])
    return frame.sort_values(["table", "order_id", "line_no", "contact_id"], kind="stable",
                             na_position="last").reset_index(drop=True)


def prepare(data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
            policy: CleaningPolicy | None = None, *, report: bool = True, **read_options: Any):
    """Load the user's data and clean it: :func:`io.load_dataset` + :func:`clean`.

    Parameters
    ----------
    data, data_format, mapping, **read_options
        As for :func:`ecrm_research.data.io.load_dataset`. The data must be ``canonical`` or ``lines``.
    policy : CleaningPolicy, optional
        Defaults to the standard filters.
    report : bool, default True
        Also build the quality report (see :func:`clean`).

    Returns
    -------
    tuple of (Dataset, CleanResult)
        The non-product codes come from the mapping's ``rules.non_product_codes``.

    Raises
    ------
    FormatError
        The data are baskets, customers or survey data (no order tables to clean).

    Examples
    --------
    >>> ds, res = prepare("online_retail.parquet", mapping="online_retail")  # doctest: +SKIP
    >>> len(res.tables["order_items"])                                        # doctest: +SKIP
    397884
    """
    ds = load_dataset(data, data_format, mapping, **read_options)
    ds.require(("canonical", "lines"), "data-preparation")
    codes = ds.mapping.non_product_codes if ds.mapping else ()
    result = clean(ds.tables, policy, non_product_codes=codes, report=report)
    if result.report is not None:
        result.report.notes = list(ds.notes)
    return ds, result


__all__ = ["REASONS", "GUARD_REASONS", "ALL_REASONS", "CONFLICT_COLUMN",
           "CleaningPolicy", "CleanResult", "QualityReport", "quality_report", "clean", "prepare",
           "quarantine_frame"]
