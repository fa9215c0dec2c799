"""00_overview end to end (papermill), asserting on the tables it writes."""

import json

import pandas as pd
import pytest

from ecrm_research.paths import MAPPINGS_DIR

pytestmark = pytest.mark.notebook


def _stat(out, name):
    s = pd.read_csv(out / "tables" / "summary_statistics.csv").set_index("statistic")["value"]
    return s[name]


def test_overview_on_sample(run_nb):
    out = run_nb("overview")
    recon = pd.read_csv(out / "tables" / "reconciliation.csv")
    assert recon["reconciles"].all()
    assert (recon["input_rows"] == recon["kept_rows"] + recon["quarantined_rows"]).all()
    assert int(float(_stat(out, "customers with a completed order"))) > 4000
    monthly = pd.read_csv(out / "tables" / "monthly_activity.csv")
    assert len(monthly) == 24  # the sample spans 24 months
    cohorts = pd.read_csv(out / "tables" / "cohort_retention.csv")
    assert (cohorts.loc[cohorts["age"] == 0, "retention"] == 1).all()
    assert cohorts["retention"].between(0, 1).all()
    findings = json.loads((out / "findings.json").read_text())
    assert {f["key"] for f in findings["findings"]} >= {"input_rows", "customers", "revenue"}
    for fig in ("monthly_activity", "cohort_retention", "purchase_gaps"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 10_000


def test_overview_on_online_retail(run_nb, online_retail_parquet):
    out = run_nb("overview", data=str(online_retail_parquet), mapping=str(MAPPINGS_DIR / "online_retail.yaml"))
    recon = pd.read_csv(out / "tables" / "reconciliation.csv").set_index("table")
    assert recon.loc["order_items", "input_rows"] == 541_909
    assert recon.loc["order_items", "kept_rows"] == 397_884
    assert recon.loc["order_items", "missing_customer"] == 135_080
    assert recon["reconciles"].all()
    assert int(float(_stat(out, "customers with a completed order"))) == 4_338
    assert round(float(_stat(out, "revenue")), 2) == 8_911_407.90
    monthly = pd.read_csv(out / "tables" / "monthly_activity.csv")
    assert monthly["month"].iloc[0].startswith("2010-12") and monthly["month"].iloc[-1].startswith("2011-12")
    findings = json.loads((out / "findings.json").read_text())
    assert findings["data_format"] == "lines"


def test_index_thumbnail_is_the_declared_key_figure(run_nb, tmp_path):
    from ecrm_research.report import site as report_site

    out = run_nb("overview")
    findings = json.loads((out / "findings.json").read_text())
    assert findings["key_figure"] == "figures/cohort_retention.png"
    html = report_site.write_index(out.parent).read_text()
    assert 'src="overview/figures/cohort_retention.png"' in html
