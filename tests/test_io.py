"""Tests for ecrm_research.data.io: reading files, column mapping, format detection, order-line splitting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecrm_research.data import io, schema
from ecrm_research.exceptions import FormatError
from ecrm_research.paths import MAPPINGS_DIR

ONLINE_RETAIL_MAPPING = MAPPINGS_DIR / "online_retail.yaml"


def canonical_frames() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": ["007", "c2", "c3"], "region": ["north", "south", None],
                              "channel": ["app", "web", "app"], "is_member": ["yes", "no", "1"]})
    products = pd.DataFrame({"product_id": ["p1", "p2"], "product_name": ["tea", "milk"],
                             "list_price": [2.5, 1.0]})
    orders = pd.DataFrame({"order_id": ["o1", "o2", "o3"], "customer_id": ["007", "c2", "c3"],
                           "ordered_at": ["2024-01-02 10:00", "2024-01-03 11:00", "2024-02-01 09:30"],
                           "status": ["completed", "cancelled", "returned"],
                           "discount_rate": [0.0, 0.1, None]})
    items = pd.DataFrame({"order_id": ["o1", "o1", "o2", "o3"], "line_no": [0, 1, 0, 0],
                          "product_id": ["p1", "p2", "p1", "p2"], "quantity": [1, 2, 1, -1],
                          "unit_price": [2.5, 1.0, 2.5, 1.0]})
    return {"customers": customers, "products": products, "orders": orders, "order_items": items}


@pytest.fixture
def canonical_dir(tmp_path: Path) -> Path:
    """A canonical folder mixing Parquet and CSV, plus things io must ignore."""
    frames = canonical_frames()
    d = tmp_path / "shop"
    d.mkdir()
    frames["customers"].to_csv(d / "customers.csv", index=False)
    frames["products"].to_parquet(d / "products.parquet")
    frames["orders"].to_csv(d / "orders.csv", index=False)
    frames["order_items"].to_parquet(d / "order_items.parquet")
    (d / "truth").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(d / "truth" / "orders.parquet")  # must not shadow orders.csv
    (d / "README.md").write_text("data card")
    return d


def test_load_canonical_folder_coerces_and_ignores_subfolders(canonical_dir):
    ds = io.load_dataset(canonical_dir)
    assert ds.format == "canonical"
    assert set(ds.tables) == {"customers", "products", "orders", "order_items"}
    assert ds.n_input_rows == 3 + 2 + 3 + 4
    orders = ds.tables["orders"]
    assert orders["ordered_at"].dtype == "datetime64[ns]"
    assert orders["status"].tolist() == ["completed", "cancelled", "returned"]
    assert ds.tables["customers"]["is_member"].tolist() == [True, False, True]
    # ids read from CSV keep their leading zeros
    assert ds.tables["customers"]["customer_id"].iloc[0] == "007"
    assert orders["customer_id"].iloc[0] == "007"
    assert ds.tables["order_items"]["quantity"].dtype == "float64"


def test_load_canonical_with_mapping_renames_and_maps_values(tmp_path):
    frames = canonical_frames()
    d = tmp_path / "shop"
    d.mkdir()
    for name, df in frames.items():
        if name == "orders":
            df = df.rename(columns={"order_id": "OrderNo"}).assign(status=["done", "void", "back"])
        df.to_parquet(d / f"{name}.parquet")
    mapping = {"format": "canonical", "columns": {"order_id": "OrderNo"},
               "value_maps": {"status": {"done": "completed", "void": "cancelled", "back": "returned"}}}
    ds = io.load_dataset(d, mapping=mapping)
    assert ds.tables["orders"]["order_id"].tolist() == ["o1", "o2", "o3"]
    assert ds.tables["orders"]["status"].tolist() == ["completed", "cancelled", "returned"]


def test_bundled_sample_loads_as_canonical(sample_dir):
    ds = io.load_dataset()
    assert ds.format == "canonical" and ds.source == "bundled sample"
    assert list(ds.tables)[:4] == ["customers", "products", "orders", "order_items"]
    for name in schema.REQUIRED_TABLES:
        assert len(ds.tables[name]) > 0
    assert ds.n_input_rows == sum(len(t) for t in ds.tables.values())
    assert "truth" not in ds.tables
    # the same folder passed explicitly is detected as canonical
    assert io.load_dataset(sample_dir).n_input_rows == ds.n_input_rows


def test_read_table_sniffs_semicolon_and_decimal_comma(tmp_path):
    p = tmp_path / "de.csv"
    p.write_text("Artikel;Preis;Menge\nTee;2,50;3\nMilch;0,99;1\n", encoding="utf-8")
    df = io.read_table(p, decimal=",")
    assert list(df.columns) == ["Artikel", "Preis", "Menge"]
    assert df["Preis"].tolist() == [2.5, 0.99]


def test_read_table_latin1_with_encoding(tmp_path):
    p = tmp_path / "fr.csv"
    p.write_bytes("ville,n\nSète,1\nNîmes,2\n".encode("latin-1"))
    assert io.read_table(p, encoding="latin-1")["ville"].tolist() == ["Sète", "Nîmes"]


def test_read_table_excel_sheet(tmp_path):
    p = tmp_path / "t.xlsx"
    with pd.ExcelWriter(p) as xw:
        pd.DataFrame({"a": [1]}).to_excel(xw, sheet_name="first", index=False)
        pd.DataFrame({"b": [2, 3]}).to_excel(xw, sheet_name="data", index=False)
    assert io.read_table(p, sheet_name="data")["b"].tolist() == [2, 3]


def test_read_baskets_keeps_trailing_spaces_and_dedupes(tmp_path):
    p = tmp_path / "b.csv"
    p.write_bytes(b"milk,cream cheese ,milk\r\nbread\n\nbeer,,chips\n")
    assert io.read_baskets(p) == [["milk", "cream cheese "], ["bread"], ["beer", "chips"]]


def test_groceries_baskets_match_arules(groceries_csv):
    """R: summary(read.transactions('groceries.csv', sep=',')) -> 9835 transactions, 169 items."""
    ds = io.load_dataset(groceries_csv)
    assert ds.format == "baskets"
    assert ds.n_input_rows == 9835 == len(ds.baskets)
    items = {i for b in ds.baskets for i in b}
    assert len(items) == 169
    assert "cream cheese " in items  # arules keeps the trailing space
    assert ds.baskets[0] == ["citrus fruit", "semi-finished bread", "margarine", "ready soups"]


def test_detect_format_rules(tmp_path, canonical_dir):
    assert io.detect_format(canonical_dir) == "canonical"
    b = tmp_path / "b.txt"
    b.write_text("a,b,c\nd\ne,f\n")
    assert io.detect_format(b) == "baskets"
    lines = tmp_path / "lines.csv"
    pd.DataFrame({"order_id": [1], "customer_id": [2], "ordered_at": ["2024-01-01"], "product_id": ["x"],
                  "quantity": [1], "unit_price": [1.0]}).to_csv(lines, index=False)
    assert io.detect_format(lines) == "lines"
    table = tmp_path / "t.csv"
    table.write_text("id,tenure,churn\n1,3,0\n2,5,1\n")
    with pytest.raises(FormatError, match="data_format"):
        io.detect_format(table)


def test_explicit_format_wins_over_detection(tmp_path):
    table = tmp_path / "telco.csv"
    table.write_text("customerID,tenure,Churn\nA1,3,No\nB2,5,Yes\n")
    ds = io.load_dataset(table, data_format="customers")
    assert ds.format == "customers" and ds.tables == {} and ds.frame.shape == (2, 3)
    assert ds.n_input_rows == 2


def test_customers_format_with_rename_mapping(telco_csv):
    ds = io.load_dataset(telco_csv, data_format="customers", mapping={"columns": {"customer_id": "customerID"}})
    assert ds.frame.shape == (7043, 21)  # Telco churn: 7,043 customers, 21 columns
    assert "customer_id" in ds.frame.columns and "customerID" not in ds.frame.columns


def test_survey_format_reads_one_table(tmp_path):
    p = tmp_path / "survey.csv"
    p.write_text("respondent,q1,q2\nr1,5,6\nr2,7,1\nr3,4,4\n")
    ds = io.load_dataset(p, data_format="survey")
    assert ds.format == "survey" and ds.frame["q1"].sum() == 16
    ds.require(["survey"], "loyalty")  # no error


def test_load_mapping_shipped_online_retail():
    m = io.load_mapping("online_retail")  # bare name resolves to data/mappings/online_retail.yaml
    assert m.format == "lines"
    assert m.columns["customer_id"] == "CustomerID"
    assert set(m.non_product_codes) == {"POST", "DOT", "M", "BANK CHARGES", "C2", "D", "S", "AMAZONFEE",
                                        "CRUK", "PADS", "B"}
    assert io.load_mapping(ONLINE_RETAIL_MAPPING).columns == m.columns


def _raw_lines() -> pd.DataFrame:
    return pd.DataFrame({
        "Inv": ["100", "100", "101", "C102", "103", "100"],
        "Cust": [7.0, 7.0, None, 8.0, 9.0, 7.0],
        "When": ["2024-01-01 10:00", "2024-01-01 10:05", "2024-01-02 09:00", "2024-01-03 12:00",
                 "2024-01-04 08:00", "2024-01-01 09:00"],
        "Sku": ["a", "b", "a", "a", "c", "b"],
        "Name": [None, "Bread", "Apple", "apple", "Cheese", "bread"],
        "Qty": [1, 2, 3, -1, -2, 1],
        "Price": [0.5, 1.2, 0.5, 0.5, 3.0, 1.2],
        "Country": ["UK", "UK", "FR", "DE", "ES", "UK"],
        "Device": ["Mobile", "Mobile", "Desktop", "Mobile", "Desktop", "Mobile"],
    })


_LINE_MAPPING = {
    "format": "lines",
    "columns": {"order_id": "Inv", "customer_id": "Cust", "ordered_at": "When", "product_id": "Sku",
                "product_name": "Name", "quantity": "Qty", "unit_price": "Price", "region": "Country",
                "channel": "Device"},
    # order 100's lines are stamped 09:00-10:05: one order only because the tolerance says so
    # (without it, two timestamps for one order id are an error: tests/test_data_guards.py)
    "rules": {"cancelled_if": {"column": "Inv", "startswith": "C"}, "returned_if": {"column": "Qty", "lt": 0},
              "order_time_tolerance": "2h"},
    "value_maps": {"channel": {"Mobile": "app", "Desktop": "web"}},
}


def test_split_order_lines_builds_canonical_tables():
    t = io.split_order_lines(_raw_lines(), io.load_mapping(_LINE_MAPPING), "shop.csv")
    orders = t["orders"].set_index("order_id")
    assert orders.index.tolist() == ["100", "101", "C102", "103"]
    assert orders["status"].astype(str).to_dict() == {"100": "completed", "101": "completed",
                                                      "C102": "cancelled", "103": "returned"}
    # first timestamp of the order's lines in file order (not the minimum)
    assert orders.loc["100", "ordered_at"] == pd.Timestamp("2024-01-01 10:00")
    assert orders.loc["100", "channel"] == "app" and orders.loc["101", "channel"] == "web"
    assert pd.isna(orders.loc["101", "customer_id"])
    assert orders.loc["100", "customer_id"] == "7"  # 7.0 -> '7'
    items = t["order_items"]
    assert items["source_row"].tolist() == [0, 1, 2, 3, 4, 5]
    assert items["line_no"].tolist() == [0, 1, 0, 0, 0, 2]
    products = t["products"].set_index("product_id")
    assert products.loc["a", "product_name"] == "Apple"  # first non-null name
    customers = t["customers"].set_index("customer_id")
    assert customers.index.tolist() == ["7", "8", "9"]
    assert customers["region"].tolist() == ["UK", "DE", "ES"]


def test_lines_csv_roundtrip_through_load_dataset(tmp_path):
    p = tmp_path / "shop.csv"
    _raw_lines().to_csv(p, index=False)
    ds = io.load_dataset(p, mapping=_LINE_MAPPING)
    assert ds.format == "lines" and ds.n_input_rows == 6
    assert len(ds.tables["order_items"]) == 6 and len(ds.tables["orders"]) == 4


def test_lines_rule_list_means_any(tmp_path):
    m = dict(_LINE_MAPPING, rules={"cancelled_if": [{"column": "Inv", "startswith": "C"},
                                                    {"column": "Cust", "eq": "9.0"}],
                                   "order_time_tolerance": "2h"})
    t = io.split_order_lines(_raw_lines(), io.load_mapping(m), "shop.csv")
    assert t["orders"]["status"].astype(str).tolist() == ["completed", "completed", "cancelled", "cancelled"]


def test_require_accepts_listed_format():
    ds = io.Dataset("lines", "x.csv", tables={}, n_input_rows=0)
    ds.require(["canonical", "lines"], "churn")


@pytest.fixture(scope="module")
def online_retail(online_retail_parquet):
    return io.load_dataset(online_retail_parquet, mapping=ONLINE_RETAIL_MAPPING)


@pytest.mark.realdata
def test_online_retail_splits_into_canonical_tables(online_retail):
    """Counts from SOURCE.md: 541,909 rows, 25,900 invoices, 4,070 stock codes, 4,372 customers."""
    t = online_retail.tables
    assert online_retail.n_input_rows == 541_909 == len(t["order_items"])
    assert len(t["orders"]) == 25_900
    assert len(t["products"]) == 4_070
    assert len(t["customers"]) == 4_372
    assert t["customers"]["customer_id"].iloc[0] == "17850"  # float 17850.0 -> '17850'
    statuses = t["orders"]["status"].value_counts()
    assert statuses["cancelled"] == 3_836  # invoices starting with C
    assert int(t["orders"]["customer_id"].isna().sum()) == 3_710
    assert t["order_items"]["source_row"].tolist()[:3] == [0, 1, 2]
    assert t["orders"]["ordered_at"].min() == pd.Timestamp("2010-12-01 08:26")


@pytest.mark.realdata
@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_online_retail_slice_same_from_csv_and_excel(online_retail_parquet, tmp_path, ext):
    """The shipped mapping reads the original sheet's text layout (12/1/2010 8:26, ids as floats)."""
    raw = pd.read_parquet(online_retail_parquet).iloc[:3000]
    p = tmp_path / f"retail.{ext}"
    if ext == "csv":
        out = raw.assign(InvoiceDate=raw["InvoiceDate"].map(lambda t: f"{t.month}/{t.day}/{t.year} {t:%H:%M}"))
        out.to_csv(p, index=False)
    else:
        raw.to_excel(p, index=False)
    from_file = io.load_dataset(p, mapping="online_retail").tables
    direct = io.split_order_lines(raw, io.load_mapping("online_retail"), "slice")
    for name in ("customers", "products", "orders"):
        pd.testing.assert_frame_equal(from_file[name], direct[name], check_categorical=False)
    cols = ["order_id", "line_no", "product_id", "quantity", "unit_price", "source_row"]
    pd.testing.assert_frame_equal(from_file["order_items"][cols], direct["order_items"][cols])
