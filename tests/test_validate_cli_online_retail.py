"""`ecrm validate` reproduces the Online Retail accounting (issue: foundation, 'Done when')."""

import re

from ecrm_research import cli
from ecrm_research.paths import MAPPINGS_DIR


def _value(out: str, measure: str) -> float:
    m = re.search(rf"^\s*{measure}\s+([-\d.]+)\s*$", out, flags=re.M)
    assert m, f"{measure} not in output"
    return float(m.group(1))


def test_validate_accounts_for_every_online_retail_row(online_retail_parquet, capsys):
    code = cli.main(["validate", "--data", str(online_retail_parquet),
                     "--mapping", str(MAPPINGS_DIR / "online_retail.yaml")])
    out = capsys.readouterr().out
    assert code == 0
    # UCI Online Retail: 541,909 rows; standard filters -> 4,338 customers, 8,911,407.90 revenue
    assert _value(out, "input_lines") == 541_909
    assert _value(out, "kept_lines") == 397_884
    assert _value(out, "customers_with_orders") == 4_338
    assert round(_value(out, "revenue"), 2) == 8_911_407.90
    recon = re.search(r"order_items\s+541909\s+397884\s+144025\b.*True", out)
    assert recon, "order_items reconciliation row missing or not reconciling"
    assert "Cancelled orders are set aside" in out


def test_validate_bad_mapping_exits_2_without_traceback(online_retail_parquet, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: lines\ncolumns:\n  order_id: NoSuchColumn\n  customer_id: CustomerID\n")
    code = cli.main(["validate", "--data", str(online_retail_parquet), "--mapping", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "NoSuchColumn" in err and "Traceback" not in err
