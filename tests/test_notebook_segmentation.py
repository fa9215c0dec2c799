"""End-to-end runs of notebooks/04_segmentation.ipynb; assertions on the tables it writes."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest
from findings_checks import finding_problems

from ecrm_research.paths import MAPPINGS_DIR

pytestmark = pytest.mark.notebook

LEAD = ["customer_id", "segment", "cluster", "r_score", "f_score", "m_score", "value_tier"]
TABLES = ["rfm", "customer_segments", "segment_profiles", "k_selection", "k_checks", "campaign_lists"]


def _check_reader_outputs(out):
    """No raw Python in the reader's view: nothing printed to stdout and no result shown as a bare repr
    (sentences are Markdown, tables DataFrames); objectives first, takeaways last, a hint per exercise;
    the explore page holds the segment list, the profiles and the segment scatter."""
    nb = nbformat.read(out / f"{out.name}.ipynb", as_version=4)
    printed = [(i, o.get("text", "")[:80]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout"]
    assert printed == []
    # a result shown only as text/plain is a Python repr (a Path, list, dict ...), not a table or a sentence
    reprs = [(i, o["data"]["text/plain"][:80]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for o in c.get("outputs", []) if o.get("output_type") in ("execute_result", "display_data")
             and set(o.get("data", {})) == {"text/plain"}]
    assert reprs == []
    tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
    assert nb.cells[1].metadata.get("tags") == ["objectives"] and nb.cells[-1].metadata.get("tags") == ["takeaways"]
    assert tags.count("hint") == tags.count("exercise") == 3
    page = (out / "explore.html").read_text(encoding="utf-8")
    for anchor in ("segment_scatter", "customer_segments", "segment_profiles"):
        assert f'id="{anchor}"' in page, anchor
    assert "Plotly.newPlot" in page and "<script>alert" not in page


def _check_outputs(out, n_customers=None):
    for name in TABLES:
        assert (out / "tables" / f"{name}.csv").exists(), name
    segs = pd.read_csv(out / "tables" / "customer_segments.csv", dtype={"customer_id": str})
    assert list(segs.columns[: len(LEAD)]) == LEAD
    assert segs["customer_id"].is_unique
    assert set(segs["value_tier"]) <= {"mature", "growth", "development"}
    rfm = pd.read_csv(out / "tables" / "rfm.csv", dtype={"customer_id": str})
    if n_customers is not None:
        assert len(rfm) == len(segs) == n_customers
    campaigns = pd.read_csv(out / "tables" / "campaign_lists.csv", dtype={"customer_id": str})
    assert len(campaigns) == len(segs) and campaigns["channel"].notna().all()
    profiles = pd.read_csv(out / "tables" / "segment_profiles.csv")
    assert profiles["n_customers"].sum() == len(segs)
    findings = json.loads((out / "findings.json").read_text())
    assert findings["analysis"] == "segmentation" and 3 <= len(findings["findings"]) <= 5
    for fig in ["k_selection", "rfm_heatmap", "segment_profiles", "segment_sizes", "segments_pca", "rfm_vs_cluster"]:
        assert (out / "figures" / f"{fig}.png").exists(), fig
    checks_file = out / "figures" / "figure_checks.json"  # print-size fonts, overlaps, legends over data
    if checks_file.exists():
        assert {k: v for k, v in json.loads(checks_file.read_text()).items() if v} == {}
    _check_reader_outputs(out)
    # every number of the headline findings is in the report body; no p = 0, no True/False
    assert finding_problems(out) == []
    checks = pd.read_csv(out / "tables" / "k_checks.csv")
    k_text = next(f["text"] for f in findings["findings"] if f["key"] == "k")
    choice = ("weak" if (checks["verdict"] == "weak").any()
              else "firm" if (checks["verdict"] == "passes").all() else "partly checked")
    assert findings["k_choice"] == choice
    lead = {"weak": ", but weakly: ", "firm": " firmly: ", "partly checked": "; no check found it weak"}[choice]
    assert k_text.startswith(f"k = {findings['n_clusters']} chosen{lead}")
    return rfm, segs, profiles, findings


@pytest.mark.realdata
def test_notebook_segmentation_online_retail(run_nb, online_retail_parquet):
    out = run_nb("segmentation", data=str(online_retail_parquet), mapping=str(MAPPINGS_DIR / "online_retail.yaml"),
                 params={"k_range": [2, 5], "n_bootstrap": 5})
    rfm, segs, profiles, findings = _check_outputs(out, n_customers=4338)
    assert rfm["monetary"].sum() == pytest.approx(8_911_407.90, abs=0.01)
    ks = pd.read_csv(out / "tables" / "k_selection.csv")
    assert ks["k"].tolist() == [2, 3, 4, 5] and ks["recommended"].sum() == 1
    assert findings["findings"][0]["value"] == 4338
    # 2,328 of 4,338 customers have fewer than 3 orders: more than half are not clustered
    assert "2,328 of 4,338 customers (54%) are not clustered" in findings["findings"][1]["text"]
    assert findings["k_choice"] == "weak"


def test_notebook_segmentation_sample_recovers_four_segments(run_nb, sample_dir):
    out = run_nb("segmentation", params={"k_range": [2, 6], "n_bootstrap": 5})
    _, segs, _, findings = _check_outputs(out)
    ks = pd.read_csv(out / "tables" / "k_selection.csv")
    assert int(ks.loc[ks["recommended"], "k"].iloc[0]) == 4
    assert segs.loc[segs["cluster"] >= 0, "cluster"].nunique() == 4
    assert findings["n_clusters"] == 4 and findings["k_choice"] == "firm"
    top = next(f["text"] for f in findings["findings"] if f["key"] == "top_segment_revenue_share")
    assert top.startswith("The 'high-frequency high-value fast-repeat big-order' segment")   # planted champions
