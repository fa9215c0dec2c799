"""End-to-end runs of notebooks/02_churn_survival.ipynb, asserting on the tables it writes."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest
from findings_checks import finding_problems, report_body

pytestmark = pytest.mark.notebook

COX_COLUMNS = ["covariate", "coef", "se", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]
REQUIRED_TABLES = ["km_by_group", "logrank", "cox_summary", "ph_test", "at_risk_customers"]


def _tables(out):
    return {p.stem: p for p in (out / "tables").glob("*.csv")}


def _check_common(out):
    tables = _tables(out)
    for name in REQUIRED_TABLES:
        assert name in tables, f"missing table {name}"
    cox = pd.read_csv(tables["cox_summary"])
    assert list(cox.columns) == COX_COLUMNS
    assert (cox["ci_lower"] <= cox["hazard_ratio"]).all() and (cox["hazard_ratio"] <= cox["ci_upper"]).all()
    assert {"km_by_group.png", "cox_forest.png", "ph_schoenfeld_worst.png", "campaign.png"} <= {
        p.name for p in (out / "figures").glob("*.png")}
    findings = json.loads((out / "findings.json").read_text())
    assert findings["analysis"] == "churn"
    assert 3 <= len(findings["findings"]) <= 5
    return tables, findings


@pytest.mark.realdata
def test_churn_notebook_on_telco_customer_table(run_nb, telco_csv):
    out = run_nb("churn", data=str(telco_csv), data_format="customers",
                 params={"duration_col": "tenure", "event_col": "Churn", "group_col": "Contract",
                         "duration_unit": "months", "value_col": "TotalCharges"})
    tables, findings = _check_common(out)
    km = pd.read_csv(tables["km_by_group"])
    assert sorted(km["group"].unique()) == ["Month-to-month", "One year", "Two year"]
    lr = pd.read_csv(tables["logrank"])
    overall = lr[lr["comparison"] == "all groups"].iloc[0]
    assert overall["p_value"] < 1e-10 and overall["df"] == 2
    assert (lr[lr["comparison"] == "pairwise"]["p_holm"] < 1e-10).all()
    # all 7,043 customers accounted for: 11 with tenure 0 (and blank TotalCharges) dropped and counted
    acct = pd.read_csv(tables["accounting"]).set_index("step")["customers"]
    assert acct["rows in the customer table"] == 7043
    assert acct["dropped: tenure ≤ 0"] == 11
    assert acct["'TotalCharges': numeric text converted"] == 11
    assert acct["customers analysed"] == 7032
    assert acct["churned (event = 1)"] == 1869 and acct["right-censored (event = 0)"] == 5163
    medians = pd.read_csv(tables["km_medians"]).set_index("group")
    assert medians.loc["Month-to-month", "median"] == 35  # months
    assert not medians.loc["Two year", "median_reached"]
    cox = pd.read_csv(tables["cox_summary"]).set_index("covariate")
    assert cox.loc["Contract_Two year", "hazard_ratio"] < cox.loc["Contract_One year", "hazard_ratio"] < 1
    assert "TotalCharges" not in cox.index  # running total: dropped as look-ahead
    assert "OnlineSecurity_No internet service" not in cox.index  # duplicates InternetService_No
    pre = pd.read_csv(tables["preflight_diagnostics"])
    assert {"collinear", "look-ahead"} <= set(pre["check"])
    ph = pd.read_csv(tables["ph_test"]).set_index("covariate")
    assert ph.loc["Contract_One year", "ph_violated"] and "stratify by 'Contract'" in ph.loc["Contract_One year", "advice"]
    # one row per dummy, one per multi-level factor (jointly), and GLOBAL (R survival ≥ 3 cox.zph)
    assert ph.loc["Contract", "term_type"] == "factor" and ph.loc["Contract", "df"] == 2
    assert ph.loc["GLOBAL", "term_type"] == "global" and ph.loc["GLOBAL", "df"] == (ph["term_type"] == "covariate").sum()
    assert ph["method"].str.startswith("exact score test (R survival ≥ 3 cox.zph, transform km").all()
    head = {f["key"]: f["text"] for f in findings["findings"]}["clearest_hazard_ratio"]
    assert "Contract" in head and "but this effect changes over time (PH test p = " in head
    hold = pd.read_csv(tables["holdout_concordance"]).iloc[0]
    assert hold["n_train"] + hold["n_test"] == 7032 and hold["concordance_test"] > 0.8
    at_risk = pd.read_csv(tables["at_risk_customers"])
    assert len(at_risk) == 5163
    assert at_risk["churn_probability"].between(0, 1).all()
    assert (at_risk["value_at_risk"] <= at_risk["annual_value"] + 1e-9).all()


def test_churn_notebook_on_bundled_sample(run_nb, sample_dir):
    from ecrm_research.data.sample import PLANTED

    out = run_nb("churn")
    tables, findings = _check_common(out)
    assert findings["inactivity_days"] == PLANTED["churn"]["recommended_inactivity_days"]
    km = pd.read_csv(tables["km_by_group"])
    assert sorted(km["group"].astype(str).unique()) == ["members", "non-members"]  # is_member, in words
    texts = " ".join(f["text"] for f in findings["findings"])
    assert "True" not in texts and "False" not in texts and "p = 0 " not in texts
    assert "between members and non-members" in texts
    ph = pd.read_csv(tables["ph_test"])
    assert ph["term_type"].iloc[-1] == "global" and {"chi_square", "df", "p_value", "method"} <= set(ph.columns)
    cox = pd.read_csv(tables["cox_summary"]).set_index("covariate")
    for name in ("first_order_late", "is_member"):
        truth = PLANTED["churn"]["hazard_ratios"][name]
        assert cox.loc[name, "ci_lower"] <= truth <= cox.loc[name, "ci_upper"]
    acct = pd.read_csv(tables["accounting"]).set_index("step")["customers"]
    assert acct["labelled customers"] == acct["churned (event = 1)"] + acct["right-censored (event = 0)"]
    at_risk = pd.read_csv(tables["at_risk_customers"])
    assert len(at_risk) == acct["right-censored (event = 0)"]
    assert at_risk["main_risk_factors"].notna().any()
    # issue 16: a tidy covariate summary (no describe() full of NaN), the at-risk list to explore offline,
    # readable figures, no raw Python reprs, and every headline number in the report body
    summary = pd.read_csv(tables["covariate_summary"]).set_index("covariate")
    assert list(summary.columns) == ["type", "count", "mean", "sd", "min", "median", "max"]
    assert (summary["count"] == acct["labelled customers"]).all() and not summary.isna().any().any()
    assert summary.loc["is_member", "type"].startswith("yes/no") and 0 < summary.loc["is_member", "mean"] < 1
    levels = pd.read_csv(tables["covariate_levels"])
    assert set(levels["covariate"]) == {"channel", "region"}
    assert levels.groupby("covariate")["customers"].sum().eq(acct["labelled customers"]).all()
    explore = (out / "explore.html").read_text(encoding="utf-8")
    assert 'id="at_risk_customers"' in explore and "C0" in explore
    checks = json.loads((out / "figures" / "figure_checks.json").read_text())
    assert checks == {name: [] for name in ("km_by_group", "cox_forest", "ph_schoenfeld_worst", "campaign")}
    body = report_body(nbformat.read(out / "churn.ipynb", as_version=4))
    for repr_ in ("PosixPath(", "dtype:", "array(", "{'"):
        assert repr_ not in body, repr_
    assert finding_problems(out) == []
