"""Malformed inputs: every case raises a project exception whose message names the file, the
column, how many rows and the first bad value, and says what to do next (never a pandas traceback)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecrm_research.data import io
from ecrm_research.exceptions import DataError, FormatError, MappingError, ParameterError, SchemaError

LINES_MAPPING = {
    "format": "lines",
    "columns": {"order_id": "Invoice", "customer_id": "Customer", "ordered_at": "Date", "product_id": "Sku",
                "quantity": "Qty", "unit_price": "Price"},
}


def write_lines(path: Path, **overrides) -> Path:
    df = pd.DataFrame({"Invoice": ["1", "1", "2", "3"], "Customer": ["a", "a", "b", "c"],
                       "Date": ["2024-01-02", "2024-01-02", "2024-01-05", "2024-02-01"],
                       "Sku": ["x", "y", "x", "z"], "Qty": [1, 2, 1, 3], "Price": [1.5, 2.0, 1.5, 0.5]})
    for col, values in overrides.items():
        df[col] = values
    df.to_csv(path, index=False)
    return path


def write_canonical(folder: Path, **tables: pd.DataFrame) -> Path:
    folder.mkdir(exist_ok=True)
    base = {
        "customers": pd.DataFrame({"customer_id": ["a", "b"]}),
        "products": pd.DataFrame({"product_id": ["x"]}),
        "orders": pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["a", "b"],
                                "ordered_at": ["2024-01-01", "2024-01-02"], "status": ["completed", "completed"]}),
        "order_items": pd.DataFrame({"order_id": ["o1", "o2"], "line_no": [0, 0], "product_id": ["x", "x"],
                                     "quantity": [1, 1], "unit_price": [2.0, 2.0]}),
    }
    base.update(tables)
    for name, df in base.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_missing_required_column_lists_columns_and_suggests_mapping(tmp_path):
    p = tmp_path / "sales.csv"
    pd.DataFrame({"Invoice": ["1"], "Customer": ["a"], "Sku": ["x"], "Qty": [1], "Price": [1.0]}).to_csv(p, index=False)
    with pytest.raises(SchemaError) as exc:
        io.load_dataset(p, data_format="lines")
    msg = str(exc.value)
    assert "sales.csv" in msg and "order_id" in msg
    assert "Invoice, Customer, Sku, Qty, Price" in msg  # what is there
    assert "--mapping" in msg  # what to do
    assert exc.value.column == "order_id"


def test_missing_required_column_in_canonical_table(tmp_path):
    folder = write_canonical(tmp_path / "shop", orders=pd.DataFrame(
        {"order_id": ["o1"], "customer_id": ["a"], "ordered_at": ["2024-01-01"]}))
    with pytest.raises(SchemaError) as exc:
        io.load_dataset(folder)
    msg = str(exc.value)
    assert "orders.csv" in msg and "['status']" in msg and "order_id, customer_id, ordered_at" in msg


def test_unparsable_dates_give_count_first_row_and_value(tmp_path):
    p = write_lines(tmp_path / "sales.csv", Date=["2024-01-02", "2024-01-02", "31/13/2024", "not a date"])
    with pytest.raises(SchemaError) as exc:
        io.load_dataset(p, mapping=LINES_MAPPING)
    msg = str(exc.value)
    assert "sales.csv" in msg and "'ordered_at'" in msg
    assert "2 value(s) that are not dates" in msg
    assert "row 3 = '31/13/2024'" in msg
    assert "date_format" in msg
    assert (exc.value.n_rows, exc.value.example) == (2, "31/13/2024")


def test_unparsable_numbers_hint_decimal_comma(tmp_path):
    p = tmp_path / "sales.csv"
    p.write_text("Invoice;Customer;Date;Sku;Qty;Price\n1;a;2024-01-02;x;1;1,50\n2;b;2024-01-03;y;2;2,00\n"
                 "3;c;2024-01-04;y;2;3\n", encoding="utf-8")
    with pytest.raises(SchemaError) as exc:
        io.load_dataset(p, mapping=LINES_MAPPING)
    msg = str(exc.value)
    assert "'unit_price'" in msg and "2 value(s) that are not numbers" in msg
    assert "row 1 = '1,50'" in msg and "decimal=','" in msg
    # the suggested fix works
    ds = io.load_dataset(p, mapping=LINES_MAPPING, decimal=",")
    assert ds.tables["order_items"]["unit_price"].tolist() == [1.5, 2.0, 3.0]


def test_wrong_encoding_suggests_latin1_with_byte_position(tmp_path):
    p = tmp_path / "clients.csv"
    p.write_bytes("name,city\nRené,Sète\n".encode("latin-1"))
    with pytest.raises(DataError) as exc:
        io.load_dataset(p, data_format="customers")
    msg = str(exc.value)
    assert "clients.csv" in msg and "utf-8" in msg
    assert "encoding='latin-1'" in msg
    assert "byte 0xe9 at position 13, line 2" in msg
    assert io.load_dataset(p, data_format="customers", encoding="latin-1").frame["name"].tolist() == ["René"]


def test_empty_file(tmp_path):
    p = tmp_path / "orders.csv"
    p.write_bytes(b"")
    with pytest.raises(DataError, match=r"orders\.csv: the file is empty \(0 bytes\)") as exc:
        io.load_dataset(p, data_format="lines")
    assert exc.value.n_rows == 0


def test_header_only_file_has_no_rows(tmp_path):
    p = tmp_path / "sales.csv"
    p.write_text("Invoice,Customer,Date,Sku,Qty,Price\n")
    with pytest.raises(DataError, match=r"sales\.csv: the file has a header but no rows"):
        io.load_dataset(p, mapping=LINES_MAPPING)


def test_duplicate_keys_in_canonical_orders(tmp_path):
    folder = write_canonical(tmp_path / "shop", orders=pd.DataFrame(
        {"order_id": ["o1", "o2", "o2"], "customer_id": ["a", "b", "b"],
         "ordered_at": ["2024-01-01", "2024-01-02", "2024-01-03"], "status": ["completed"] * 3}))
    with pytest.raises(SchemaError) as exc:
        io.load_dataset(folder)
    msg = str(exc.value)
    assert "orders.csv" in msg and "not unique" in msg and "2 rows share a key" in msg and "['o2']" in msg


def test_status_value_not_allowed_points_to_value_maps(tmp_path):
    folder = write_canonical(tmp_path / "shop", orders=pd.DataFrame(
        {"order_id": ["o1", "o2"], "customer_id": ["a", "b"], "ordered_at": ["2024-01-01", "2024-01-02"],
         "status": ["completed", "shipped"]}))
    with pytest.raises(SchemaError) as exc:
        io.load_dataset(folder)
    msg = str(exc.value)
    assert "orders.csv" in msg and "'status'" in msg and "1 value(s)" in msg
    assert "row 2 = 'shipped'" in msg and "value_maps" in msg
    # the suggested fix works
    ds = io.load_dataset(folder, mapping={"value_maps": {"status": {"shipped": "completed"}}})
    assert ds.tables["orders"]["status"].tolist() == ["completed", "completed"]


def test_unknown_mapping_key_lists_valid_keys(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("format: lines\ncolumn:\n  order_id: Invoice\n")
    with pytest.raises(MappingError) as exc:
        io.load_mapping(p)
    msg = str(exc.value)
    assert "m.yaml" in msg and "['column']" in msg
    assert "['format', 'read', 'columns', 'rules', 'value_maps']" in msg


def test_mapping_points_at_missing_column(tmp_path):
    p = write_lines(tmp_path / "sales.csv")
    bad = dict(LINES_MAPPING, columns=dict(LINES_MAPPING["columns"], customer_id="CustomerID"))
    with pytest.raises(MappingError) as exc:
        io.load_dataset(p, mapping=bad)
    msg = str(exc.value)
    assert "sales.csv" in msg and "'customer_id'" in msg and "'CustomerID'" in msg
    assert "Columns present: [Invoice, Customer, Date, Sku, Qty, Price]" in msg
    assert exc.value.column == "CustomerID"


def test_unknown_canonical_name_in_mapping():
    with pytest.raises(MappingError) as exc:
        io.load_mapping({"format": "lines", "columns": {"invoice": "InvoiceNo", "order_id": "InvoiceNo"}})
    msg = str(exc.value)
    assert "['invoice']" in msg and "'order_id'" in msg and "'unit_price'" in msg  # lists valid names
    assert exc.value.example == "invoice"


def test_unknown_rule_operator():
    with pytest.raises(MappingError, match=r"rules\.cancelled_if has unknown operator\(s\) \['starts'\]"):
        io.load_mapping({"rules": {"cancelled_if": {"column": "InvoiceNo", "starts": "C"}}})


def test_rule_on_missing_column(tmp_path):
    p = write_lines(tmp_path / "sales.csv")
    m = dict(LINES_MAPPING, rules={"cancelled_if": {"column": "InvoiceNo", "startswith": "C"}})
    with pytest.raises(MappingError, match=r"sales\.csv: rules\.cancelled_if uses column 'InvoiceNo'"):
        io.load_dataset(p, mapping=m)


def test_file_not_found(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError) as exc:
        io.load_dataset(missing)
    assert "nope.csv: file not found" in str(exc.value) and "Check the path" in str(exc.value)


def test_mapping_file_not_found_lists_shipped():
    with pytest.raises(MappingError, match=r"shipped mappings: \[.*'online_retail'"):
        io.load_mapping("no_such_mapping.yaml")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "sales.json"
    p.write_text("[]")
    with pytest.raises(FormatError) as exc:
        io.read_table(p)
    msg = str(exc.value)
    assert "sales.json" in msg and "'.json'" in msg and ".csv" in msg and ".parquet" in msg


def test_wrong_format_for_analysis():
    ds = io.Dataset("baskets", "groceries.csv", baskets=[["milk"]], n_input_rows=1)
    with pytest.raises(FormatError) as exc:
        ds.require(["canonical", "lines", "customers"], "churn")
    assert str(exc.value).startswith(
        "The churn analysis accepts canonical, lines or customers data; 'groceries.csv' is baskets data.")


def test_undetectable_format_lists_the_five_formats(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,tenure,churn\n1,3,0\n")
    with pytest.raises(FormatError) as exc:
        io.load_dataset(p)
    msg = str(exc.value)
    assert "-p data_format X" in msg
    for fmt in io.FORMATS:
        assert fmt in msg


def test_canonical_folder_missing_table(tmp_path):
    folder = write_canonical(tmp_path / "shop")
    (folder / "order_items.csv").unlink()
    with pytest.raises(SchemaError, match=r"canonical table file\(s\) \['order_items'\] missing"):
        io.load_dataset(folder)


def test_excel_sheet_not_found_lists_sheets(tmp_path):
    p = tmp_path / "book.xlsx"
    pd.DataFrame({"a": [1]}).to_excel(p, sheet_name="Sales", index=False)
    with pytest.raises(DataError, match=r"book\.xlsx: sheet 'Orders' not found; sheets are \['Sales'\]"):
        io.read_table(p, sheet_name="Orders")


def test_ragged_csv_suggests_sep_or_baskets(tmp_path):
    p = tmp_path / "odd.csv"
    p.write_text("a;b\n1;2\n3;4;5\n")
    with pytest.raises(DataError) as exc:
        io.read_table(p, sep=";")
    assert "odd.csv" in str(exc.value) and "sep" in str(exc.value) and "baskets" in str(exc.value)


def test_unknown_read_option():
    with pytest.raises(ParameterError) as exc:
        io.load_dataset(None, delimiter=";")
    assert "delimiter" in str(exc.value) and "sep" in exc.value.allowed


def test_corrupt_parquet(tmp_path):
    p = tmp_path / "orders.parquet"
    p.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"orders\.parquet: not a readable Parquet file"):
        io.read_table(p)
