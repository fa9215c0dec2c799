"""Tests for ecrm_research.data.quality: report, cleaning policy, quarantine and reconciliation."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from ecrm_research.data import schema
from ecrm_research.data.quality import REASONS, CleaningPolicy, clean, prepare, quality_report
from ecrm_research.paths import MAPPINGS_DIR


def shop() -> dict[str, pd.DataFrame]:
    """Six orders designed so that each reason code fires exactly where expected.

    o1 ok (3 lines: ok, qty 0, price 0) · o2 missing customer (2 lines) · o3 cancelled (1 line)
    o4 orphan customer 'ghost' (1 line) · o5 all lines bad (qty -1) · o6 no lines at all
    plus a line for an order that does not exist ('o9'), a line with an unknown product ('zz'),
    an exact duplicate of o1's first line, and a postage line.
    """
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3"]})
    products = pd.DataFrame({"product_id": ["p1", "p2", "POST"]})
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "customer_id": ["c1", None, "c2", "ghost", "c3", "c3"],
        "ordered_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05",
                                      "2024-03-31"]),
        "status": ["completed", "completed", "cancelled", "completed", "returned", "completed"],
        "discount_rate": [0.0, 0.2, None, None, None, None],
    })
    items = pd.DataFrame({
        "order_id": ["o1", "o1", "o1", "o2", "o2", "o3", "o4", "o5", "o9", "o1", "o1", "o1"],
        "line_no": [0, 1, 2, 0, 1, 0, 0, 0, 0, 3, 4, 5],
        "product_id": ["p1", "p2", "p2", "p1", "p2", "p1", "p1", "p1", "p1", "zz", "p1", "POST"],
        "quantity": [2, 0, 1, 1, 1, 1, 1, -1, 1, 1, 2, 1],
        "unit_price": [5.0, 3.0, 0.0, 5.0, 3.0, 5.0, 5.0, 5.0, 5.0, 1.0, 5.0, 4.5],
    })
    tables = {"customers": customers, "products": products, "orders": orders, "order_items": items}
    return {name: schema.coerce_table(df, name) for name, df in tables.items()}


def reasons_of(res, table: str) -> dict[int, str]:
    q = res.quarantine[res.quarantine["table"] == table]
    return dict(zip(q["row"].tolist(), q["reason"].tolist()))


def test_standard_policy_reason_per_row_with_priority_and_cascade():
    res = clean(shop())
    assert reasons_of(res, "order_items") == {
        1: "nonpositive_quantity", 2: "nonpositive_price",
        3: "missing_customer", 4: "missing_customer",  # cascaded from order o2
        5: "cancelled",  # cascaded from o3
        6: "orphan_key",  # order o4's customer is unknown
        7: "nonpositive_quantity",
        8: "orphan_key",  # order o9 does not exist
        9: "orphan_key",  # product zz does not exist
    }
    # o5 had a line, all quarantined -> no_kept_lines; o6 never had lines -> kept
    assert reasons_of(res, "orders") == {1: "missing_customer", 2: "cancelled", 3: "orphan_key",
                                         4: "no_kept_lines"}
    assert res.tables["orders"]["order_id"].tolist() == ["o1", "o6"]
    assert res.tables["order_items"]["line_no"].tolist() == [0, 4, 5]


def test_reconciliation_is_exact_per_table_and_reason():
    res = clean(shop())
    rec = res.reconciliation.set_index("table")
    assert rec["reconciles"].all()
    assert (rec["input_rows"] == rec["kept_rows"] + rec["quarantined_rows"]).all()
    assert (rec[list(REASONS)].sum(axis=1) == rec["quarantined_rows"]).all()
    items = rec.loc["order_items"]
    assert (items["input_rows"], items["kept_rows"]) == (12, 3)
    assert items[["orphan_key", "missing_customer", "cancelled", "nonpositive_quantity",
                  "nonpositive_price"]].tolist() == [3, 2, 1, 2, 1]
    assert rec.loc["customers", "quarantined_rows"] == 0  # master data is never dropped
    counts = res.quarantine.groupby(["table", "reason"]).size()
    assert counts[("order_items", "orphan_key")] == 3 and counts[("orders", "no_kept_lines")] == 1


def test_quarantine_carries_keys_for_each_dropped_line():
    res = clean(shop())
    q = res.quarantine.set_index(["table", "row"])
    row = q.loc[("order_items", 3)]
    assert (row["order_id"], row["line_no"], row["product_id"]) == ("o2", 0, "p1")
    assert pd.isna(row["customer_id"]) and pd.isna(row["source_row"])  # o2 has no customer; not from a flat file
    assert q.loc[("orders", 2), "customer_id"] == "c2"
    assert q.loc[("order_items", 5), "customer_id"] == "c2"  # line inherits its order's customer


def test_duplicates_and_non_product_are_opt_in():
    policy = CleaningPolicy(drop_duplicate_rows=True, drop_non_product=True)
    res = clean(shop(), policy, non_product_codes=["POST"])
    assert reasons_of(res, "order_items")[10] == "duplicate_row"  # copy of line 0 (o1, p1, 2 x 5.0)
    assert reasons_of(res, "order_items")[11] == "non_product"
    assert res.tables["order_items"]["line_no"].tolist() == [0]
    assert res.reconciliation.set_index("table")["reconciles"].all()


def test_turning_filters_off_keeps_rows():
    off = CleaningPolicy(drop_missing_customer=False, drop_cancelled=False, drop_nonpositive_quantity=False,
                         drop_nonpositive_price=False)
    res = clean(shop(), off)
    # only orphans remain quarantined
    assert set(res.quarantine["reason"]) == {"orphan_key"}
    assert len(res.tables["order_items"]) == 9


def test_policy_describe_follows_flags():
    std = CleaningPolicy().describe()
    assert any("without a customer id are set aside" in s for s in std)
    assert any("duplicate order lines are kept" in s for s in std)
    strict = CleaningPolicy(drop_duplicate_rows=True).describe()
    assert any("duplicate order lines are set aside" in s for s in strict)


def test_quality_report_counts():
    rep = quality_report(shop(), non_product_codes=["POST"])
    ranges = rep.ranges.set_index(["table", "column", "check"])["n_rows"]
    assert ranges[("order_items", "quantity", "negative")] == 1
    assert ranges[("order_items", "quantity", "zero")] == 1
    assert ranges[("order_items", "unit_price", "zero")] == 1
    orph = rep.orphans.set_index(["table", "column"])
    assert orph.loc[("orders", "customer_id"), "n_rows"] == 1
    assert orph.loc[("orders", "customer_id"), "example"] == "ghost"
    assert orph.loc[("order_items", "order_id"), "n_rows"] == 1
    assert orph.loc[("order_items", "product_id"), "n_rows"] == 1
    assert rep.duplicates.set_index("table").loc["order_items", "duplicate_rows"] == 1
    missing = rep.missing.set_index(["table", "column"])
    assert missing.loc[("orders", "customer_id"), "n_missing"] == 1
    assert missing.loc[("orders", "discount_rate"), "n_missing"] == 4
    st = rep.statuses.set_index("status")
    assert st.loc["cancelled", "n_orders"] == 1 and st.loc["completed", "n_lines"] == 9  # o1 6 + o2 2 + o4 1
    assert rep.date_range.set_index("column").loc["ordered_at", "max"] == pd.Timestamp("2024-03-31")
    assert rep.non_product["product_id"].tolist() == ["POST"]
    assert rep.non_product["revenue"].tolist() == [4.5]


def test_quality_report_markdown_and_long_frame():
    rep = quality_report(shop())
    md = rep.to_markdown()
    for heading in ("### Tables", "### Out-of-range values", "### Orphan foreign keys", "### Order statuses"):
        assert heading in md
    assert "| order\\_items | 12 |" in md
    long = rep.to_frame()
    assert list(long.columns) == ["section", "table", "column", "measure", "value"]
    assert long.query("section == 'summary' and table == 'orders' and measure == 'rows'")["value"].item() == 6


def test_discount_outside_range_reported():
    t = shop()
    t["orders"].loc[0, "discount_rate"] = 1.5
    rep = quality_report(t)
    r = rep.ranges.query("table == 'orders' and column == 'discount_rate'").iloc[0]
    assert (r["n_rows"], r["example"]) == (1, 1.5)


def test_bundled_sample_cleans_and_reconciles(sample_dir):
    ds, res = prepare()
    rec = res.reconciliation.set_index("table")
    assert rec["reconciles"].all()
    assert rec.loc["order_items", "input_rows"] == len(ds.tables["order_items"])
    # the sample has no orphans, missing customers or bad prices: only cancellations are dropped
    assert set(res.quarantine["reason"]) <= {"cancelled", "no_kept_lines"}
    assert rec.loc["orders", "cancelled"] == int((ds.tables["orders"]["status"] == "cancelled").sum())


def test_prepare_refuses_baskets(tmp_path):
    from ecrm_research.exceptions import FormatError

    p = tmp_path / "b.csv"
    p.write_text("a,b\nc\n")
    with pytest.raises(FormatError, match="baskets"):
        prepare(p)


# ---------------------------------------------------------------- Online Retail (real data)
@pytest.fixture(scope="module")
def retail_standard(online_retail_parquet):
    t0 = time.perf_counter()
    ds, res = prepare(online_retail_parquet, mapping=MAPPINGS_DIR / "online_retail.yaml")
    return ds, res, time.perf_counter() - t0


@pytest.mark.realdata
def test_online_retail_standard_filters(retail_standard):
    """Standard filters (customer id present, not cancelled, quantity > 0, price > 0), as in
    Chen et al. (2012) and the usual RFM tutorials: 397,884 lines, 4,338 customers."""
    ds, res, seconds = retail_standard
    items = res.tables["order_items"]
    assert len(items) == 397_884
    assert res.tables["orders"]["customer_id"].nunique() == 4_338
    assert round(float((items["quantity"] * items["unit_price"]).sum()), 2) == 8_911_407.90
    assert seconds < 60  # ~6 s on a 2-core laptop; target < 30 s


@pytest.mark.realdata
def test_online_retail_reconciles_every_input_row(retail_standard):
    ds, res, _ = retail_standard
    rec = res.reconciliation.set_index("table").loc["order_items"]
    assert rec["input_rows"] == 541_909 == ds.n_input_rows
    q = res.quarantine[res.quarantine["table"] == "order_items"]
    assert len(q) == 541_909 - 397_884
    by_reason = q["reason"].value_counts()
    assert by_reason["missing_customer"] == 135_080  # CustomerID null (SOURCE.md)
    assert by_reason["cancelled"] == 8_905  # 9,288 C-lines minus 383 without a customer
    assert by_reason["nonpositive_price"] == 40
    assert int(by_reason.sum()) == 541_909 - 397_884
    # each input row is accounted for exactly once: kept source rows + quarantined source rows
    kept = set(res.tables["order_items"]["source_row"])
    dropped = set(q["source_row"].astype(int))
    assert not kept & dropped and len(kept | dropped) == 541_909
    assert res.report.duplicates.set_index("table").loc["order_items", "duplicate_rows"] == 5_268


@pytest.mark.realdata
def test_online_retail_drop_duplicates(online_retail_parquet):
    _, res = prepare(online_retail_parquet, mapping="online_retail",
                     policy=CleaningPolicy(drop_duplicate_rows=True))
    items = res.tables["order_items"]
    assert len(items) == 392_692
    assert round(float((items["quantity"] * items["unit_price"]).sum()), 2) == 8_887_208.89
    rec = res.reconciliation.set_index("table").loc["order_items"]
    assert rec["duplicate_row"] == 397_884 - 392_692
    assert rec["kept_rows"] + rec["quarantined_rows"] == 541_909
