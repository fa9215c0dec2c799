"""Tests for ecrm_research.survival: parity with R/statsmodels, labelling, pre-flight checks, planted truths."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ecrm_research import survival as sv
from ecrm_research.exceptions import AnalysisError, DataError
from ecrm_research.prep import churn as prep_churn

ROSSI_COVARIATES = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


@pytest.fixture(scope="module")
def rossi(rossi_csv):
    return pd.read_csv(rossi_csv)


@pytest.fixture(scope="module")
def rossi_model(rossi):
    return sv.ChurnCoxModel().fit(rossi, "week", "arrest", ROSSI_COVARIATES)


# --------------------------------------------------------------------------- parity

@pytest.mark.realdata
def test_cox_matches_r_coxph_on_rossi(rossi_model):
    """R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data=rossi)

    R's default ties method is Efron; lifelines' partial likelihood uses Efron too (its
    ``baseline_estimation_method='breslow'`` only concerns the baseline hazard), so the
    numbers match R to 4 decimals. (Breslow ties would give fin -0.3790, wexp -0.1511.)
    """
    expected = {"fin": -0.3794, "age": -0.0574, "race": 0.3139, "wexp": -0.1498,
                "mar": -0.4337, "paro": -0.0849, "prio": 0.0915}
    coef = rossi_model.summary.set_index("covariate")["coef"]
    for name, value in expected.items():
        assert round(coef[name], 4) == pytest.approx(value, abs=1e-12), name
    assert round(rossi_model.concordance_, 3) == 0.640
    assert round(rossi_model.log_likelihood_, 2) == -658.75
    assert round(rossi_model.lr_test_["statistic"], 2) == 33.27
    assert rossi_model.lr_test_["df"] == 7
    assert rossi_model.lr_test_["p_value"] == pytest.approx(2.36e-5, rel=0.01)  # R: p=2.4e-05
    assert rossi_model.n_ == 432 and rossi_model.n_events_ == 114


@pytest.mark.realdata
def test_cox_agrees_with_statsmodels_phreg_efron(rossi, rossi_model):
    """Two independent implementations: statsmodels PHReg(ties='efron') vs lifelines, to 1e-4."""
    import statsmodels.api as sm

    res = sm.PHReg(rossi["week"], rossi[ROSSI_COVARIATES], status=rossi["arrest"], ties="efron").fit()
    s = rossi_model.summary.set_index("covariate").loc[ROSSI_COVARIATES]
    np.testing.assert_allclose(s["coef"].to_numpy(), np.asarray(res.params), atol=1e-4)
    np.testing.assert_allclose(s["se"].to_numpy(), np.asarray(res.bse), atol=1e-4)
    np.testing.assert_allclose(s["p_value"].to_numpy(), np.asarray(res.pvalues), atol=1e-4)
    assert rossi_model.log_likelihood_ == pytest.approx(res.llf, abs=1e-4)


@pytest.mark.realdata
def test_cox_summary_columns_and_ci_on_hazard_ratio_scale(rossi_model):
    s = rossi_model.summary
    assert list(s.columns) == ["covariate", "coef", "se", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]
    np.testing.assert_allclose(s["hazard_ratio"], np.exp(s["coef"]))
    np.testing.assert_allclose(s["ci_lower"], np.exp(s["coef"] - 1.959964 * s["se"]), rtol=1e-5)
    np.testing.assert_allclose(s["ci_upper"], np.exp(s["coef"] + 1.959964 * s["se"]), rtol=1e-5)
    fin = s.set_index("covariate").loc["fin"]
    assert round(fin["hazard_ratio"], 2) == 0.68  # R: exp(coef) 0.684, 95% CI 0.470-0.996
    assert round(fin["ci_lower"], 3) == 0.470 and round(fin["ci_upper"], 3) == 0.996


@pytest.mark.realdata
def test_ph_test_on_rossi_flags_age_and_wexp_with_advice(rossi_model):
    """R 4.2.2, survival 3.5.3: cox.zph(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro
    + prio, data=rossi)) (km): age chisq 5.974, p = 0.0145; wexp 4.225, p = 0.0398; fin p = 0.803.
    Full R parity (all transforms, factors, strata) is in tests/test_ph_test.py."""
    ph = rossi_model.check_proportional_hazards().set_index("covariate")
    assert set(ph.index[ph["ph_violated"] & (ph["term_type"] == "covariate")]) == {"age", "wexp"}
    assert round(ph.loc["age", "chi_square"], 3) == 5.974
    assert round(ph.loc["fin", "p_value"], 3) == 0.803
    assert round(ph.loc["wexp", "p_value"], 4) == 0.0398
    assert "time interaction" in ph.loc["age", "advice"]
    assert "stratify by 'wexp'" in ph.loc["wexp", "advice"]
    assert "no evidence" in ph.loc["fin", "advice"]


@pytest.mark.realdata
def test_churn_probability_matches_lifelines_conditional_survival(rossi, rossi_model):
    X = rossi.head(6)
    now, h = 20.0, 10.0
    p = rossi_model.predict_churn_probability(X, horizon=h, now=np.full(len(X), now))
    sf = rossi_model.cph_.predict_survival_function(rossi_model.design(X), times=[now, now + h])
    expected = 1 - sf.loc[now + h].to_numpy() / sf.loc[now].to_numpy()
    np.testing.assert_allclose(p.to_numpy(), expected, rtol=1e-10)
    assert ((p > 0) & (p < 1)).all()


@pytest.mark.realdata
def test_holdout_concordance_is_seeded_and_better_than_chance(rossi):
    a = sv.holdout_concordance(rossi, fraction=0.3, seed=7, duration_col="week", event_col="arrest",
                               covariates=ROSSI_COVARIATES)
    b = sv.holdout_concordance(rossi, fraction=0.3, seed=7, duration_col="week", event_col="arrest",
                               covariates=ROSSI_COVARIATES)
    assert a == b
    assert a["n_train"] + a["n_test"] == 432
    assert 0.5 < a["concordance_test"] < 0.8


# --------------------------------------------------------------------------- labelling

def _history() -> dict[str, pd.DataFrame]:
    rows = [  # customer, date, status, promised, delivered
        ("A", "2024-01-01", "completed", 3, 5), ("A", "2024-02-01", "completed", 3, 3),
        ("B", "2024-01-01", "completed", 3, 2), ("B", "2024-03-01", "completed", 3, 2),
        ("B", "2024-11-30", "completed", 3, 2),
        ("C", "2024-06-01", "completed", 3, 3), ("C", "2024-06-10", "returned", 3, 3),
        ("C", "2024-09-01", "completed", 3, 9), ("C", "2024-11-01", "completed", 3, 3),
        ("D", "2024-12-15", "completed", 3, 3),
        ("E", "2024-05-05", "cancelled", 3, None),
        ("F", "2024-01-01", "completed", 3, 3), ("F", "2024-04-10", "completed", 3, 3),
        ("F", "2024-07-01", "completed", 3, 3),
        ("A", "2024-12-31", "cancelled", 3, None),  # end of data = last order of any status
    ]
    orders = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "status", "promised_days", "delivery_days"])
    orders.insert(0, "order_id", [f"o{i}" for i in range(len(orders))])
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"])
    orders["discount_rate"] = 0.1
    customers = pd.DataFrame({"customer_id": list("ABCDEFG"),
                              "is_member": [True, False, True, False, False, True, False],
                              "channel": ["app", "web", "web", "app", "app", "web", "app"]})
    contacts = pd.DataFrame({"contact_id": ["s1", "s2", "s3"], "customer_id": ["A", "A", "C"],
                             "contacted_at": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-06-12"])})
    return {"orders": orders, "customers": customers, "service_contacts": contacts}


def test_label_churn_hand_made_histories_exact_durations():
    """W = 100 days, N = 30 days, end of data 2024-12-31.

    A: last order 2024-02-01, silent → churned 2024-05-11; duration 31 + 100 = 131.
    B: gap 2024-03-01 → 2024-11-30 (274 d) → churned 2024-06-09, duration 60 + 100 = 160, returned later.
    C: gaps 92 and 61 days; 2024-11-01 + 100 > as_of → censored at as_of, duration 213.
    F: a gap of exactly 100 days is *not* churn; churned 2024-07-01 + 100 = 2024-10-09, duration 282.
    D: first order 16 days before the end (< N) → excluded; E: no completed order → never at risk.
    """
    data = prep_churn.label_churn(_history(), inactivity_days=100, covariate_window_days=30)
    f = data.frame.set_index("customer_id")
    assert list(f.index) == ["A", "B", "C", "F"]
    assert data.as_of == pd.Timestamp("2024-12-31")
    assert f["duration"].to_dict() == {"A": 131.0, "B": 160.0, "C": 213.0, "F": 282.0}
    assert f["event"].to_dict() == {"A": 1, "B": 1, "C": 0, "F": 1}
    assert f.loc["A", "churned_at"] == pd.Timestamp("2024-05-11")
    assert f.loc["B", "churned_at"] == pd.Timestamp("2024-06-09")
    assert pd.isna(f.loc["C", "churned_at"])
    assert f["returned_after_churn"].to_dict() == {"A": False, "B": True, "C": False, "F": False}
    # covariates in [first order, first order + 30 days)
    assert f["first_order_late"].astype(bool).to_dict() == {"A": True, "B": False, "C": False, "F": False}
    assert f["n_orders_window"].to_dict() == {"A": 1.0, "B": 1.0, "C": 1.0, "F": 1.0}
    assert f.loc["C", "return_share"] == pytest.approx(0.5)  # 1 returned of 2 completed/returned in window
    assert f["n_contacts"].to_dict() == {"A": 1.0, "B": 0.0, "C": 1.0, "F": 0.0}
    assert f["is_member"].astype(bool).to_dict() == {"A": True, "B": False, "C": True, "F": True}
    acct = data.accounting.set_index("step")["customers"]
    assert acct["customers in the data"] == 7
    assert acct["customers with a completed order on or before as_of"] == 5
    assert acct["excluded: first order within 30 days of as_of"] == 1
    assert acct["labelled customers"] == 4
    assert acct["churned then returned (kept as churned)"] == 1
    assert "right-censored" in data.definition or "censored" in data.definition


def test_label_churn_as_of_backtests_and_ignores_later_orders():
    data = prep_churn.label_churn(_history(), inactivity_days=100, covariate_window_days=30, as_of="2024-06-30")
    f = data.frame.set_index("customer_id")
    # B: gap from 2024-03-01 not yet complete at June 30? 2024-03-01 + 100 = 2024-06-09 <= as_of -> churned
    assert f.loc["B", "event"] == 1 and f.loc["B", "duration"] == 160.0
    assert not f.loc["B", "returned_after_churn"]  # the return happens after as_of
    # F: last order before as_of is 2024-04-10; +100 = 2024-07-19 > as_of -> censored at 2024-06-30
    assert f.loc["F", "event"] == 0 and f.loc["F", "duration"] == 181.0
    assert "C" not in f.index  # first order 2024-06-01: window incomplete at as_of


def test_label_churn_warns_when_window_longer_than_inactivity():
    with pytest.warns(sv.SurvivalWarning, match="look-ahead"):
        prep_churn.label_churn(_history(), inactivity_days=30, covariate_window_days=60)


def test_label_churn_without_completed_orders_is_plain_error():
    t = _history()
    t["orders"] = t["orders"][t["orders"]["status"] == "cancelled"]
    with pytest.raises(AnalysisError, match="No completed orders"):
        prep_churn.label_churn(t, inactivity_days=100)


# --------------------------------------------------------------------------- customer tables

def _customer_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 400
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    hr = np.exp(np.select([plan == "plus", plan == "pro"], [-0.5, -1.0], 0.0))
    t = np.ceil(rng.exponential(20 / hr))
    cens = rng.uniform(1, 60, n)
    return pd.DataFrame({
        "customerID": [f"id{i}" for i in range(n)],
        "tenure": np.minimum(t, np.ceil(cens)).astype(int),
        "Churn": np.where(t <= cens, "Yes", "No"),
        "plan": plan,
        "Total": [" " if i < 3 else f"{v:.2f}" for i, v in enumerate(rng.uniform(10, 100, n))],
        "senior": rng.integers(0, 2, n),
    })


def test_prepare_customer_table_counts_blanks_and_zero_durations():
    df = _customer_table()
    df.loc[[0, 1, 2], "tenure"] = 0  # the blank totals belong to brand-new customers (as in Telco)
    data = prep_churn.prepare_customer_table(df, "tenure", "Churn", value_col="Total", unit="months")
    acct = data.accounting.set_index("step")["customers"]
    assert acct["rows in the customer table"] == 400
    assert acct["'Total': numeric text converted"] == 3
    assert acct["dropped: tenure ≤ 0"] == 3
    assert acct["customers analysed"] == 397 == data.n_customers
    assert acct["churned (event = 1)"] + acct["right-censored (event = 0)"] == 397
    assert data.covariates == ["plan", "Total", "senior"]  # customerID excluded as identifier
    assert set(data.frame["event"].unique()) <= {0, 1}
    assert data.frame["annual_value"].notna().all()


@pytest.mark.parametrize("values, expected", [
    (["Yes", "no", " YES "], [1, 0, 1]), ([True, False, True], [1, 0, 1]), ([1, 0, 1], [1, 0, 1]),
    (["true", "False", ""], [1, 0, np.nan]),
])
def test_coerce_event_accepts_01_bool_and_yes_no(values, expected):
    np.testing.assert_array_equal(prep_churn.coerce_event(pd.Series(values)).to_numpy(), np.asarray(expected, float))


def test_coerce_event_rejects_other_values_plainly():
    with pytest.raises(DataError, match="must be 0/1, true/false or yes/no.*'maybe' \\(1\\)"):
        prep_churn.coerce_event(pd.Series(["yes", "maybe"]), "Churn")


def test_categorical_covariates_become_indicators_against_reference_level():
    data = prep_churn.prepare_customer_table(_customer_table(), "tenure", "Churn", covariates=["plan", "senior"])
    m = sv.ChurnCoxModel().fit(data)
    assert list(m.summary["covariate"]) == ["plan_plus", "plan_pro", "senior"]
    assert m.encoding_.set_index("column").loc["plan_pro", "reference"] == "basic"
    hr = m.summary.set_index("covariate")["hazard_ratio"]
    assert hr["plan_pro"] < hr["plan_plus"] < 1  # planted log-HRs -1.0 and -0.5
    m2 = sv.ChurnCoxModel().fit(data, reference_levels={"plan": "pro"})
    assert list(m2.summary["covariate"]) == ["plan_basic", "plan_plus", "senior"]
    assert m2.summary.set_index("covariate").loc["plan_basic", "hazard_ratio"] > 1


# --------------------------------------------------------------------------- pre-flight checks

def _small(seed=0, n=300):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(np.exp(-0.5 * x)) * 10 + 0.1
    return pd.DataFrame({"duration": t, "event": (rng.random(n) < 0.7).astype(int), "x": x,
                         "g": rng.integers(0, 2, n)})


def test_preflight_constant_covariate_is_plain_error():
    df = _small().assign(const=1.0)
    with pytest.raises(AnalysisError, match="'const' has the same value .* for every customer"):
        sv.ChurnCoxModel().fit(df, covariates=["x", "const"])


def test_preflight_missing_values_named_with_count():
    df = _small()
    df.loc[[4, 9], "x"] = np.nan
    with pytest.raises(AnalysisError, match=r"'x' has 2 missing value\(s\) \(first at row 5\)"):
        sv.ChurnCoxModel().fit(df, covariates=["x", "g"])
    with pytest.warns(sv.SurvivalWarning, match="2 of 300 customers have missing covariate values"):
        m = sv.ChurnCoxModel(missing="drop").fit(df, covariates=["x", "g"])
    assert m.n_ == 298 and m.n_dropped_ == 2


def test_preflight_complete_separation_explained():
    df = _small()
    df["vip"] = 0
    df.loc[df.index[:40], "vip"] = 1
    df.loc[df["vip"] == 1, "event"] = 0  # no VIP ever churns
    with pytest.raises(AnalysisError, match=r"Complete separation on 'vip'.*0 churners among 40.*zero"):
        sv.ChurnCoxModel().fit(df, covariates=["x", "vip"])
    with pytest.warns(sv.SurvivalWarning, match="dropped from the model"):
        m = sv.ChurnCoxModel(drop_problems=True).fit(df, covariates=["x", "vip"])
    assert list(m.summary["covariate"]) == ["x"]
    assert (m.diagnostics_["severity"] == "dropped covariate").any()


def test_preflight_collinear_duplicate_and_low_events_per_covariate():
    df = _small(n=30)  # ~21 events for 3 columns: < 10 per column
    df["g_copy"] = 1 - df["g"]
    diag = sv.preflight_checks(df[["x", "g", "g_copy"]], df["duration"], df["event"])
    coll = diag[diag["check"] == "collinear"]
    assert list(coll["covariate"]) == ["g_copy"] and "same information as 'g'" in coll["message"].iloc[0]
    epv = diag[diag["check"] == "events per covariate"]
    assert len(epv) == 1 and epv["severity"].iloc[0] == "warning"


def test_preflight_near_constant_and_lookahead_warnings():
    df = _small(n=1000)
    df["rare"] = 0.0
    df.loc[df.index[:5], "rare"] = 1.0
    df["running_total"] = df["duration"] * 3 + np.random.default_rng(2).normal(size=len(df))
    diag = sv.preflight_checks(df[["x", "rare", "running_total"]], df["duration"], df["event"])
    checks = dict(zip(diag["covariate"], diag["check"]))
    assert checks["rare"] == "near-constant" and checks["running_total"] == "look-ahead"
    m = sv.ChurnCoxModel(drop_lookahead=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sv.SurvivalWarning)
        m.fit(df, covariates=["x", "rare", "running_total"])
    assert "running_total" not in list(m.summary["covariate"])


def test_clean_fit_has_no_diagnostics():
    with warnings.catch_warnings():
        warnings.simplefilter("error", sv.SurvivalWarning)
        m = sv.ChurnCoxModel().fit(_small(), covariates=["x", "g"])
    assert m.diagnostics_.empty


# --------------------------------------------------------------------------- KM, log-rank, campaign

def test_kaplan_meier_hand_computed():
    """Durations 1..5, events 1,0,1,1,0: S(1)=4/5, S(3)=4/5·2/3=0.5333, S(4)=0.2667; median 4."""
    df = pd.DataFrame({"duration": [1, 2, 3, 4, 5], "event": [1, 0, 1, 1, 0]})
    km = sv.kaplan_meier(df)
    t = km.table.set_index("time")
    assert list(km.table.columns) == ["group", "time", "at_risk", "events", "censored", "survival",
                                      "ci_lower", "ci_upper"]
    assert t.loc[1.0, "survival"] == pytest.approx(0.8)
    assert t.loc[3.0, "survival"] == pytest.approx(0.8 * 2 / 3)
    assert t.loc[4.0, "survival"] == pytest.approx(0.8 * 2 / 3 * 0.5)
    assert t.loc[3.0, "at_risk"] == 3 and t.loc[2.0, "censored"] == 1
    assert (t["ci_lower"] <= t["survival"]).all() and (t["survival"] <= t["ci_upper"]).all()
    assert km.summary.loc[0, "median"] == 4.0


@pytest.mark.realdata
def test_logrank_on_rossi_fin_matches_r_survdiff(rossi):
    """R: survdiff(Surv(week, arrest) ~ fin, data=rossi) -> Chisq= 3.8 on 1 df, p= 0.05."""
    lr = sv.logrank(rossi, "week", "arrest", group_col="fin")
    allg = lr.iloc[0]
    assert allg["comparison"] == "all groups" and allg["df"] == 1
    assert round(allg["test_statistic"], 2) == 3.84
    assert round(allg["p_value"], 2) == 0.05
    assert (lr["comparison"] == "pairwise").sum() == 1


def test_campaign_sizing_break_even():
    at_risk = pd.DataFrame({"customer_id": list("abcd"), "churn_probability": [0.9, 0.6, 0.4, 0.1],
                            "value_at_risk": [90.0, 60.0, 40.0, 10.0]})
    curve, s = sv.campaign_sizing(at_risk, cost_ratio=0.2, save_rate=0.4)
    assert s["threshold_probability"] == pytest.approx(0.5)
    assert s["recommended_size"] == 2
    assert s["net_gain"] == pytest.approx((0.9 + 0.6) * 0.4 - 2 * 0.2)
    assert curve["net_gain"].idxmax() == 1


# --------------------------------------------------------------------------- planted truths

@pytest.fixture(scope="module")
def sample_churn(sample_dir):
    from ecrm_research.data import io, quality, sample

    tables = quality.clean(io.load_dataset(sample_dir).tables).tables
    days = sample.PLANTED["churn"]["recommended_inactivity_days"]
    return prep_churn.label_churn(tables, inactivity_days=days)


@pytest.mark.parametrize("covariates", [["first_order_late", "is_member"], list(sv.DEFAULT_COVARIATES)],
                         ids=["planted-only", "default-covariates"])
def test_sample_planted_hazard_ratios_recovered_within_ci(sample_churn, covariates):
    """sample.PLANTED['churn']: HR 1.8 for a late first delivery, 0.6 for members (data card)."""
    from ecrm_research.data.sample import PLANTED

    truth = PLANTED["churn"]["hazard_ratios"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sv.SurvivalWarning)
        m = sv.ChurnCoxModel(missing="drop", drop_problems=True).fit(sample_churn, covariates=covariates)
    s = m.summary.set_index("covariate")
    for name in ("first_order_late", "is_member"):
        lo, hi = s.loc[name, "ci_lower"], s.loc[name, "ci_upper"]
        assert lo <= truth[name] <= hi, f"{name}: planted {truth[name]} outside [{lo:.3f}, {hi:.3f}]"


def test_scaled_schoenfeld_residuals_are_lifelines_scaled_plus_coefficient_on_rossi(rossi_csv):
    """R's cox.zph y = β̂ + d·r·I⁻¹; lifelines' compute_residuals('scaled_schoenfeld') = d·r·Var(β̂)."""
    import numpy as np

    df = pd.read_csv(rossi_csv)
    model = sv.ChurnCoxModel().fit(df, "week", "arrest")
    ours = model.scaled_schoenfeld_residuals().sort_index()
    ref = model.cph_.compute_residuals(model.training_df_, "scaled_schoenfeld").sort_index()
    assert (ours.index == ref.index).all()
    diff = ours.to_numpy() - model.cph_.params_[ours.columns].to_numpy() - ref[ours.columns].to_numpy()
    assert np.abs(diff).max() < 1e-6


def _risk_factors_by_row(model, df, top=3):
    """Reference: the per-customer pandas ranking and formatting risk_factors had before it was
    vectorised (the contribution matrix is the model's own)."""
    C = model.contributions(df)
    out = []
    for i, row in C.iterrows():
        pos = row[row > 0.01].sort_values(ascending=False, kind="stable").head(top)
        parts = []
        for v, c in pos.items():
            val = df.at[i, v] if v in df.columns else None
            if isinstance(val, (float, np.floating)) and not float(val).is_integer():
                val = f"{val:.2f}"
            if v in df.columns and pd.api.types.is_bool_dtype(df[v]):  # yes/no flags in words
                parts.append(f"{v}: {'yes' if val else 'no'} (×{np.exp(c):.2f})")
                continue
            parts.append(f"{v} = {val} (×{np.exp(c):.2f})")
        out.append("; ".join(parts))
    return pd.Series(out, index=df.index, name="main_risk_factors")


def test_risk_factors_equal_the_row_by_row_reference(sample_churn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sv.SurvivalWarning)
        m = sv.ChurnCoxModel(missing="drop", drop_problems=True).fit(sample_churn, covariates=list(sv.DEFAULT_COVARIATES))
    df = sample_churn.frame.iloc[:3000]
    for top in (1, 3):
        got = m.risk_factors(df, top=top)
        pd.testing.assert_series_equal(got, _risk_factors_by_row(m, df, top=top))
    got = m.risk_factors(df)
    assert (got != "").mean() > 0.5 and got.str.count("; ").max() == 2
    # the contributions add up to lifelines' partial hazard (centred at the training means)
    ph = m.cph_.predict_partial_hazard(m.design(df)[m.design_columns_]).to_numpy()
    np.testing.assert_allclose(np.exp(m.contributions(df).sum(axis=1).to_numpy()), ph, rtol=1e-9)
    assert got.str.contains(r"first_order_late: yes \(×1\.\d\d\)").any()  # the planted HR-1.8 factor shows up
    assert not got.str.contains(r"\b(?:True|False)\b").any()  # flags in words
