"""00_overview end to end (papermill), asserting on the tables it writes, and its figures at print size."""

import json
import re

import nbformat
import pandas as pd
import pytest
from findings_checks import finding_problems, report_body

from ecrm_research.paths import MAPPINGS_DIR

#: Python reprs that must never reach a reader (issue 16): paths, Series footers, list/dict/set literals
RAW_REPR = re.compile(r"PosixPath\(|WindowsPath\(|dtype: (?:float|int|object|bool)|^\s*[\[{]'|Name: \w+, dtype",
                      re.MULTILINE)


def _stat(out, name):
    s = pd.read_csv(out / "tables" / "summary_statistics.csv").set_index("statistic")["value"]
    return s[name]


def _check_report(out, name):
    """What a reader sees: no raw Python repr, readable figures, objectives first and takeaways last."""
    nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
    body = report_body(nb)
    assert not RAW_REPR.search(body), RAW_REPR.search(body).group(0)
    checks = json.loads((out / "figures" / "figure_checks.json").read_text())
    assert checks and all(problems == [] for problems in checks.values()), checks
    assert "objectives" in nb.cells[1].metadata.get("tags", []) and "takeaways" in nb.cells[-1].metadata["tags"]
    assert finding_problems(out) == []
    return body


@pytest.mark.notebook
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
    body = _check_report(out, "overview")
    # the gaps behind the churn window are stated, the raw 90th percentile and the rounded window
    assert re.search(r"90% of the gaps are within \d+ days, rounded up to a multiple of 30 days", body)
    # exercise 1's solution reconciles with the headline revenue (completed orders only)
    assert f"Revenue of the completed orders: {float(_stat(out, 'revenue')):,.0f}" in body


@pytest.mark.notebook
@pytest.mark.realdata
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
    _check_report(out, "overview")


@pytest.mark.notebook
def test_index_thumbnail_is_the_declared_key_figure(run_nb, tmp_path):
    from ecrm_research.report import site as report_site

    out = run_nb("overview")
    findings = json.loads((out / "findings.json").read_text())
    assert findings["key_figure"] == "figures/cohort_retention.png"
    html = report_site.write_index(out.parent).read_text()
    assert 'src="overview/figures/cohort_retention.png"' in html


# ------------------------------------------------------------------------------------------------
# the overview figures at print size (no notebook run)
# ------------------------------------------------------------------------------------------------

def _monthly(n_months):
    months = pd.date_range("2021-01-01", periods=n_months, freq="MS")
    k = pd.Series(range(n_months), dtype=float)
    return pd.DataFrame({"month": months, "orders": 300 + 120 * k, "active_customers": 250 + 80 * k,
                         "new_customers": 240 - k, "revenue": 40_000 + 18_000 * k})


def _cohorts(n_cohorts, max_age=12):
    rows = []
    for i, c in enumerate(pd.date_range("2021-01-01", periods=n_cohorts, freq="MS")):
        for age in range(min(max_age, n_cohorts - 1 - i) + 1):
            rows.append({"cohort": c, "age": age, "customers": 200, "cohort_size": 230,
                         "retention": 1.0 if age == 0 else 0.7 - 0.03 * age})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n", [13, 24, 60])
def test_overview_figures_print_readably(n):
    import matplotlib.pyplot as plt
    import numpy as np

    from ecrm_research.activity import plots
    from ecrm_research.report.figure_quality import figure_problems

    gaps = pd.Series(np.random.default_rng(n).gamma(2.0, 12.0, 5_000))
    axes = [plots.plot_monthly_activity(_monthly(n)), plots.plot_cohort_retention(_cohorts(n)),
            plots.plot_purchase_gaps(gaps, marker=180)]
    try:
        for ax in axes:
            assert figure_problems(ax.figure) == [], ax.get_title()
        # the window line and the 90th percentile are explained in the legend, below the axes
        legend = [t.get_text() for t in axes[2].get_legend().get_texts()]
        assert "suggested inactivity window: 180 days" in legend
        q90 = float(np.quantile(gaps, 0.9))
        assert f"90% of gaps are within {q90:.0f} days" in legend
        assert any(t.startswith("gaps over") for t in legend)  # the clipped tail has its own bar
        # cohort cells carry their percentage when they fit (up to 36 cohorts)
        assert (len(axes[1].texts) > 0) == (n <= 36)
    finally:
        plt.close("all")
