"""No guessing, nothing lost (issue 14, items 4 and 6): ambiguous dates, implausible values,
conflicting order ids, duplicate column names, basket-file blanks, and the quarantine written
next to the counts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ecrm_research import paths
from ecrm_research.data import io, quality, schema
from ecrm_research.data.plausibility import date_window
from ecrm_research.data.quality import ALL_REASONS, CleaningPolicy, clean
from ecrm_research.exceptions import DataError, MappingError, ParameterError, SchemaError
from ecrm_research.prep.baskets import load_baskets

_MAP = {"format": "lines",
        "columns": {"order_id": "Inv", "customer_id": "Cust", "ordered_at": "When", "product_id": "Sku",
                    "quantity": "Qty", "unit_price": "Price"}}


def _lines(tmp_path, rows, name="shop.csv"):
    p = tmp_path / name
    pd.DataFrame(rows, columns=["Inv", "Cust", "When", "Sku", "Qty", "Price"]).to_csv(p, index=False)
    return p


def _assert_reconciles(res):
    rec = res.reconciliation.set_index("table")
    guards = [r for r in ALL_REASONS if r in rec.columns]
    assert (rec["input_rows"] == rec["kept_rows"] + rec["quarantined_rows"]).all()
    assert (rec[guards].sum(axis=1) == rec["quarantined_rows"]).all()
    assert rec["reconciles"].all()
    q = res.quarantine.groupby(["table", "reason"]).size()
    for (table, reason), n in q.items():
        assert rec.loc[table, reason] == n


# ----------------------------------------------------------------------------- 4a dates
def test_ambiguous_day_month_dates_are_an_error_naming_both_readings(tmp_path):
    # a dd/mm shop of January to July whose days are all <= 12: both readings parse
    p = _lines(tmp_path, [["1", "c1", "03/01/2024", "a", 1, 2.0], ["2", "c2", "05/07/2024", "b", 1, 2.0],
                          ["3", "c1", "12/02/2024", "a", 1, 2.0]])
    with pytest.raises(SchemaError) as e:
        io.load_dataset(p, mapping=_MAP)
    msg = str(e.value)
    assert "shop.csv" in msg and "'ordered_at'" in msg and "'03/01/2024'" in msg
    assert "1 March 2024 read as day/month" in msg and "3 January 2024 read as month/day" in msg
    assert "date_format" in msg and "read:" in msg and "-p date_format" in msg
    assert e.value.column == "ordered_at"


def test_ambiguous_dates_read_as_stated_with_date_format(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "03/01/2024", "a", 1, 2.0], ["2", "c2", "05/07/2024", "b", 1, 2.0]])
    ds = io.load_dataset(p, mapping=_MAP, date_format="%d/%m/%Y")
    assert ds.tables["orders"]["ordered_at"].tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-07-05")]
    ds = io.load_dataset(p, mapping=dict(_MAP, read={"dayfirst": False}))  # stated: month first
    assert ds.tables["orders"]["ordered_at"].tolist() == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-05-07")]
    assert ds.notes == []


def test_dates_decided_by_the_values_are_reported_with_evidence(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "03/01/2024", "a", 1, 2.0], ["2", "c2", "25/07/2024", "b", 1, 2.0]])
    ds, res = quality.prepare(p, mapping=_MAP)
    assert ds.tables["orders"]["ordered_at"].tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-07-25")]
    assert len(ds.notes) == 1 and "day/month/year" in ds.notes[0] and "'25/07/2024'" in ds.notes[0]
    assert res.report.notes == ds.notes and "'25/07/2024'" in res.report.to_markdown()
    p2 = _lines(tmp_path, [["1", "c1", "03/01/2024", "a", 1, 2.0], ["2", "c2", "07/25/2024", "b", 1, 2.0]], "us.csv")
    ds2 = io.load_dataset(p2, mapping=_MAP)
    assert ds2.tables["orders"]["ordered_at"].tolist() == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-07-25")]
    assert "month/day/year" in ds2.notes[0]


def test_same_day_and_month_and_iso_dates_are_not_ambiguous():
    spec = schema.TABLES["orders"].column("ordered_at")
    same = schema.coerce_column(pd.Series(["01/01/2024", "02/02/2024"]), spec, table="orders")
    assert same.tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-02")]
    iso = schema.coerce_column(pd.Series(["2024-01-03", "2024-02-01"]), spec, table="orders")
    assert iso.tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-02-01")]


# ----------------------------------------------------------------------------- 4b plausibility
def _tables(when, qty, price):
    n = len(when)
    orders = pd.DataFrame({"order_id": [str(i) for i in range(n)], "customer_id": ["c"] * n,
                           "ordered_at": pd.to_datetime(when), "status": ["completed"] * n})
    items = pd.DataFrame({"order_id": [str(i) for i in range(n)], "line_no": [0] * n, "product_id": ["p"] * n,
                          "quantity": qty, "unit_price": price, "source_row": list(range(n))})
    customers = pd.DataFrame({"customer_id": ["c"]})
    return {"customers": customers, "orders": orders, "order_items": items}


def test_implausible_dates_and_values_are_quarantined_with_their_own_reasons():
    t = _tables(["1900-01-01", "2099-12-31", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
                [1.0, 1.0, 1.0, 1.0, 2e6, 1.0, np.nan], [2.0, 2.0, np.inf, 1e300, 2.0, 3.0, 1.0])
    res = clean(t)
    reasons = res.quarantine.query("table == 'order_items'").set_index("row")["reason"].to_dict()
    assert reasons == {0: "implausible_date", 1: "implausible_date", 2: "non_finite_value",
                       3: "implausible_value", 4: "implausible_value", 6: "non_finite_value"}
    assert res.tables["order_items"]["source_row"].tolist() == [5]
    assert np.isfinite(res.summary.set_index("measure").loc["revenue", "value"])
    rec = res.reconciliation.set_index("table")
    assert rec.loc["order_items", ["implausible_date", "non_finite_value", "implausible_value"]].tolist() == [2, 2, 2]
    assert rec.loc["orders", "implausible_date"] == 2 and rec.loc["orders", "no_kept_lines"] == 4
    _assert_reconciles(res)
    ranges = res.report.ranges.set_index(["table", "column", "check"])["n_rows"]
    assert ranges[("orders", "ordered_at", "before 1990-01-01")] == 1
    assert ranges[("order_items", "unit_price", "not finite")] == 1
    assert ranges[("order_items", "unit_price", "above 1e+07")] == 1
    assert ranges[("order_items", "quantity", "|x| above 1e+06")] == 1
    assert "above 1e\\+07" in res.report.to_markdown()


def test_plausibility_bounds_are_configurable():
    t = _tables(["1985-06-01", "2024-01-01"], [1.0, 5e6], [2e7, 2.0])
    res = clean(t, CleaningPolicy(min_date="1980-01-01", max_unit_price=None, max_abs_quantity=1e7))
    assert res.quarantine.empty and len(res.tables["order_items"]) == 2
    res = clean(t, CleaningPolicy(max_date="2024-06-30"))  # 1985 too early; quantity 5e6 too large
    assert res.quarantine.query("table == 'order_items'")["reason"].tolist() == ["implausible_date",
                                                                                 "implausible_value"]
    res = clean(t, CleaningPolicy(min_date=None, max_date="2023-12-31"))  # now 2024 is the future
    # order 0 keeps its 1985 date but its line's price 2e7 is above the default bound
    assert res.quarantine.query("table == 'orders'")["reason"].tolist() == ["no_kept_lines", "implausible_date"]
    _assert_reconciles(res)
    assert date_window(None, "2024-01-31")[1] == pd.Timestamp("2024-02-01")
    with pytest.raises(ParameterError, match="max_date"):
        clean(t, CleaningPolicy(max_date="not a date"))
    with pytest.raises(ParameterError, match="after max_date"):
        date_window("2030-01-01", "2020-01-01")


def test_reconciliation_has_no_guard_columns_when_nothing_is_implausible():
    res = clean(_tables(["2024-01-01"], [1.0], [2.0]))
    assert [c for c in res.reconciliation.columns if c in quality.GUARD_REASONS] == []
    assert list(res.reconciliation.columns[4:-1]) == list(quality.REASONS)


def test_plausibility_guards_through_a_lines_file(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "2024-01-03", "a", 1, 2.0], ["2", "c2", "1900-01-01", "b", 1, 2.0],
                          ["3", "c1", "2024-02-01", "a", 1, "inf"], ["4", "c1", "2024-02-02", "a", 1, 1e300]])
    ds, res = quality.prepare(p, mapping=_MAP)
    q = res.quarantine.query("table == 'order_items'")
    assert q.set_index("source_row")["reason"].to_dict() == {1: "implausible_date", 2: "non_finite_value",
                                                             3: "implausible_value"}
    _assert_reconciles(res)


# ----------------------------------------------------------------------------- 4c conflicting orders
def test_order_with_two_customers_is_an_error_naming_both(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "2024-01-03", "a", 1, 2.0], ["1", "c2", "2024-01-03", "b", 1, 2.0],
                          ["2", "c1", "2024-01-04", "a", 1, 2.0]])
    with pytest.raises(DataError) as e:
        io.load_dataset(p, mapping=_MAP)
    msg = str(e.value)
    assert "order '1' has two customers" in msg and "'c1' (row 1)" in msg and "'c2' (row 2)" in msg
    assert "conflicting_orders: quarantine" in msg and "shop.csv" in msg and e.value.column == "customer_id"


def test_order_with_two_timestamps_is_an_error_unless_within_tolerance(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "2024-01-03 10:00", "a", 1, 2.0], ["1", "c1", "2024-01-03 10:01", "b", 1, 2.0]])
    with pytest.raises(DataError, match=r"order '1' has two timestamps: '2024-01-03 10:00:00' \(row 1\) and "
                                        r"'2024-01-03 10:01:00' \(row 2\).*order_time_tolerance"):
        io.load_dataset(p, mapping=_MAP)
    ds = io.load_dataset(p, mapping=dict(_MAP, rules={"order_time_tolerance": "1min"}))
    assert ds.tables["orders"]["ordered_at"].tolist() == [pd.Timestamp("2024-01-03 10:00")]


def test_conflicting_orders_quarantined_when_opted_in(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "2024-01-03", "a", 1, 2.0], ["1", "c2", "2024-01-03", "b", 1, 2.0],
                          ["2", "c1", "2024-01-04", "a", 1, 2.0], ["3", "c3", "2024-01-04", "a", 1, 2.0],
                          ["3", "c3", "2024-01-09", "b", 1, 2.0]])
    ds, res = quality.prepare(p, mapping=dict(_MAP, rules={"conflicting_orders": "quarantine"}))
    q = res.quarantine
    assert q.query("table == 'orders'").set_index("order_id")["reason"].to_dict() == {
        "1": "conflicting_order", "3": "conflicting_order"}
    assert sorted(q.query("table == 'order_items'")["source_row"].tolist()) == [0, 1, 3, 4]
    assert res.tables["orders"]["order_id"].tolist() == ["2"]
    assert quality.CONFLICT_COLUMN not in res.tables["orders"].columns
    ranges = res.report.ranges.set_index("check")["n_rows"]
    assert ranges["conflicting customer or time"] == 2
    _assert_reconciles(res)


def test_conflict_rules_are_checked():
    with pytest.raises(MappingError, match="conflicting_orders"):
        io.load_mapping(dict(_MAP, rules={"conflicting_orders": "merge"}))
    with pytest.raises(MappingError, match="order_time_tolerance"):
        io.load_mapping(dict(_MAP, rules={"order_time_tolerance": "soon"}))


# ----------------------------------------------------------------------------- 4d duplicate columns
def test_duplicate_column_names_are_an_error(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("Inv,Cust,When,Sku,Qty,Price,Price\n1,c1,2024-01-03,a,1,2.0,3.0\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        io.load_dataset(p, mapping=_MAP)
    assert "'Price' appears more than once" in str(e.value) and "columns 6 and 7" in str(e.value)
    assert "dup.csv" in str(e.value) and e.value.column == "Price"
    x = tmp_path / "dup.xlsx"
    pd.DataFrame([[1, 2.0, 3.0]], columns=["Inv", "Price", "Price "]).to_excel(x, index=False)
    assert list(io.read_table(x).columns) == ["Inv", "Price", "Price "]  # different names are fine
    df = pd.DataFrame([[1, 2.0, 3.0]])
    df.columns = ["Inv", "Price", "Price"]
    df.to_excel(x, index=False)
    with pytest.raises(DataError, match="'Price' appears more than once"):
        io.read_table(x)


# ----------------------------------------------------------------------------- 4e basket files
def test_basket_blanks_and_repeats_are_dropped_and_counted(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text("milk,bread,milk\n\n , \nmilk,,bread\r\nbeer, \n", encoding="utf-8")
    counts: dict = {}
    baskets = io.read_baskets(p, counts=counts)
    assert baskets == [["milk", "bread"], ["milk", "bread"], ["beer"]]
    assert counts == {"blank_lines": 2, "blank_items": 2, "repeated_items": 1}
    bd = load_baskets(p, "baskets")
    excl = bd.exclusions.set_index("reason")["rows"]
    assert excl["blank line (no items; not a basket)"] == 2
    assert excl["blank or whitespace-only item"] == 2
    assert excl["item repeated within a basket (counted once)"] == 1
    assert " " not in set(bd.baskets["item"]) and bd.n_baskets == 3


# ----------------------------------------------------------------------------- 6 quarantine rows
def test_quarantine_rows_carry_reason_source_row_and_keys(tmp_path):
    p = _lines(tmp_path, [["1", "c1", "2024-01-03", "a", 1, 2.0], ["2", "", "2024-01-03", "b", 1, 2.0],
                          ["3", "c1", "2024-01-04", "a", -1, 2.0]])
    ds, res = quality.prepare(p, mapping=_MAP)
    q = quality.quarantine_frame(res.quarantine)
    assert list(q.columns) == ["table", "reason", "order_id", "line_no", "customer_id", "product_id", "contact_id",
                               "source_row"]
    assert q["table"].tolist() == ["order_items", "order_items", "orders", "orders"]  # sorted by table and key
    lines = q.query("table == 'order_items'").set_index("source_row")
    assert lines.loc[1, "reason"] == "missing_customer" and lines.loc[2, "reason"] == "nonpositive_quantity"
    assert lines.loc[2, "order_id"] == "3" and lines.loc[2, "product_id"] == "a"
    assert len(q) == int(res.reconciliation["quarantined_rows"].sum())


def test_notebooks_write_the_quarantine_next_to_the_counts():
    for name in ("00_overview", "01_association_rules", "02_churn_survival", "04_segmentation"):
        nb = json.loads((paths.NOTEBOOKS_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
        code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert '"quarantine")' in code, name
