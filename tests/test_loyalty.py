"""Tests of ecrm_research.loyalty: published reliabilities, independent formulas, statsmodels
Mediation agreement, Shapley additivity and planted-truth recovery."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from ecrm_research import loyalty as L
from ecrm_research.exceptions import DataError, ParameterError
from ecrm_research.loyalty.reliability import one_factor_reliability
from ecrm_research.loyalty.resampling import resample_counts, resample_covs

BANK = {p: [f"{p}{i}" for i in range(1, 6)] for p in ("imag", "expe", "qual")}
BANK.update(val=[f"val{i}" for i in range(1, 5)], sat=[f"sat{i}" for i in range(1, 5)],
            loy=[f"loy{i}" for i in range(1, 5)])


# --------------------------------------------------------------------------------------------
# simulated survey with a known structure (same paths as the sample survey)
# --------------------------------------------------------------------------------------------
PLANTED_SAT = {"trust": 0.45, "service_quality": 0.35}
PLANTED_LOY = {"satisfaction": 0.50, "habit": 0.25, "perceived_cost": -0.20, "entertainment": 0.10, "trust": 0.0}
SIM_CONSTRUCTS = {"trust": ["trust_1", "trust_2", "trust_3"], "service_quality": [f"quality_{i}" for i in range(1, 5)],
                  "perceived_cost": ["cost_1", "cost_2", "cost_3_r"], "habit": ["habit_1", "habit_2", "habit_3"],
                  "entertainment": ["ent_1", "ent_2", "ent_3"], "satisfaction": ["sat_1", "sat_2", "sat_3"],
                  "loyalty": ["loy_1", "loy_2", "loy_3", "loy_4_r"]}


def simulate_survey(n: int = 1500, seed: int = 7, p_missing: float = 0.03) -> pd.DataFrame:
    """Latent standardized model -> 1-7 Likert items (loadings 0.75-0.85), two reverse-coded items."""
    rng = np.random.default_rng(seed)
    lat = {k: rng.standard_normal(n) for k in ("trust", "service_quality", "perceived_cost", "habit", "entertainment")}
    lat["satisfaction"] = 0.45 * lat["trust"] + 0.35 * lat["service_quality"] + math.sqrt(0.675) * rng.standard_normal(n)
    lat["loyalty"] = (0.5 * lat["satisfaction"] + 0.25 * lat["habit"] - 0.2 * lat["perceived_cost"]
                      + 0.1 * lat["entertainment"] + math.sqrt(0.6375) * rng.standard_normal(n))
    cuts = np.array([-1.8, -1.15, -0.5, 0.15, 0.8, 1.45])
    out = {}
    for c, items in SIM_CONSTRUCTS.items():
        for j, it in enumerate(items):
            lam = 0.85 - 0.04 * j
            x = 1.0 + np.searchsorted(cuts, lam * lat[c] + math.sqrt(1 - lam ** 2) * rng.standard_normal(n))
            if it.endswith("_r"):
                x = 8.0 - x
            x[rng.random(n) < p_missing] = np.nan
            out[it] = x
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def sim():
    frame = simulate_survey()
    spec = L.load_constructs({"constructs": SIM_CONSTRUCTS, "reverse_items": ["cost_3_r", "loy_4_r"],
                              "scale": {"min": 1, "max": 7},
                              "roles": {"drivers": ["trust", "service_quality"],
                                        "direct_drivers": ["habit", "perceived_cost", "entertainment"]}})
    scores = L.score_constructs(frame, spec.constructs, reverse_items=spec.reverse_items, scale_min=1, scale_max=7)
    return frame, spec, scores


# --------------------------------------------------------------------------------------------
# reliability against published values
# --------------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_standardized_alpha_matches_cSEM_on_bank_satisfaction(ecsi_dir):
    """R cSEM / plspm `satisfaction` (plspm 0.4.9): plspm::plspm(satisfaction, ...)$unidim
    C.alpha SAT = 0.8940 (sat1-sat4), LOY = 0.8194 (loy1-loy4) -- standardized alpha."""
    bank = pd.read_csv(ecsi_dir / "plspm_satisfaction_bank.csv")
    res = L.item_analysis(bank, BANK).summary.set_index("construct")
    assert res.loc["sat", "standardized_alpha"] == pytest.approx(0.8940, abs=5e-5)
    assert res.loc["loy", "standardized_alpha"] == pytest.approx(0.8194, abs=5e-5)
    assert round(res.loc["sat", "standardized_alpha"], 4) == 0.8940
    assert round(res.loc["loy", "standardized_alpha"], 4) == 0.8194


@pytest.mark.realdata
def test_raw_alpha_agrees_with_independent_formula(ecsi_dir):
    bank = pd.read_csv(ecsi_dir / "plspm_satisfaction_bank.csv")
    for items in BANK.values():
        x = bank[items].to_numpy(float)
        k = x.shape[1]
        # alpha from the covariance matrix: k/(k-1) * (1 - tr(C)/sum(C))
        c = np.cov(x, rowvar=False)
        expected = k / (k - 1) * (1 - np.trace(c) / c.sum())
        assert L.cronbach_alpha(bank[items]) == pytest.approx(expected, rel=1e-12)
    assert L.cronbach_alpha(bank[BANK["sat"]]) == pytest.approx(0.89430, abs=5e-5)


def test_alpha_textbook_example():
    """Hand-computed example: 3 items x 5 respondents; item variances 2.5, 2.5, 0.7 and
    var(sum) = var(5, 5, 10, 10, 14) = 14.7, so alpha = 3/2 * (1 - 5.7/14.7) = 0.918367."""
    x = pd.DataFrame({"a": [1, 2, 3, 4, 5], "b": [2, 1, 4, 3, 5], "c": [2, 2, 3, 3, 4]}, dtype=float)
    expected = 1.5 * (1 - (2.5 + 2.5 + 0.7) / 14.7)
    assert expected == pytest.approx(0.918367, abs=1e-6)
    assert L.cronbach_alpha(x) == pytest.approx(expected, abs=1e-12)
    # standardized alpha = k r / (1 + (k-1) r)
    r = x.corr().to_numpy()[np.triu_indices(3, 1)].mean()
    assert L.standardized_alpha(x) == pytest.approx(3 * r / (1 + 2 * r), abs=1e-12)


def test_item_total_and_alpha_if_deleted():
    x = simulate_survey(n=400, seed=1, p_missing=0.0)[["trust_1", "trust_2", "trust_3"]]
    res = L.item_analysis(x, {"trust": list(x.columns)}).items.set_index("item")
    assert res.loc["trust_1", "item_total_r"] == pytest.approx(np.corrcoef(x["trust_1"], x["trust_2"] + x["trust_3"])[0, 1])
    assert res.loc["trust_1", "alpha_if_deleted"] == pytest.approx(L.cronbach_alpha(x[["trust_2", "trust_3"]]))


def test_weak_item_is_dropped_with_a_reason():
    frame = simulate_survey(n=600, seed=3, p_missing=0.0)
    frame["trust_4"] = np.random.default_rng(0).integers(1, 8, len(frame)).astype(float)  # pure noise item
    cons = {"trust": ["trust_1", "trust_2", "trust_3", "trust_4"], "habit": ["habit_1", "habit_2", "habit_3"]}
    ia = L.item_analysis(frame, cons)
    review = L.review_items(ia, L.measurement_model(frame, cons).loadings).set_index("item")
    assert review.loc["trust_4", "decision"] == "drop"
    assert "item-total r" in review.loc["trust_4", "reason"]
    assert (review.drop(index="trust_4")["decision"] == "keep").all()
    assert L.apply_item_review(cons, review.reset_index())["trust"] == ["trust_1", "trust_2", "trust_3"]


# --------------------------------------------------------------------------------------------
# scales
# --------------------------------------------------------------------------------------------
def test_reverse_coding_and_missing_policy_counts_everyone():
    frame = pd.DataFrame({"a1": [1, 2, np.nan, np.nan, 7], "a2": [1, np.nan, np.nan, 5, 7], "a3_r": [7, 6, 1, np.nan, 1]})
    sc = L.score_constructs(frame, {"a": ["a1", "a2", "a3_r"]}, reverse_items=["a3_r"], scale_min=1, scale_max=7)
    assert sc.items["a3_r"].tolist()[:3] == [1, 2, 7]          # 1 + 7 - x
    # 2 of 3 items needed: rows 0, 1, 4 scored; rows 2 (1 answer) and 3 (1 answer) not
    assert sc.scores["a"].notna().tolist() == [True, True, False, False, True]
    assert sc.scores["a"].iloc[1] == pytest.approx((2 + 2) / 2)
    cov = sc.coverage.iloc[0]
    assert (cov["n_scored"], cov["n_unscored"], cov["n_complete"], cov["min_answered"]) == (3, 2, 2, 2)
    assert cov["n_scored"] + cov["n_unscored"] == len(frame)


def test_scale_inferred_and_out_of_range_answers():
    frame = pd.DataFrame({"a1": [2, 3, 4, 99], "a2": [2, 4, 3, 4]})
    with pytest.warns(UserWarning, match="outside the scale"):
        sc = L.score_constructs(frame, {"a": ["a1", "a2"]}, scale_min=1, scale_max=5)
    assert sc.n_out_of_range == 1 and np.isnan(sc.items.loc[3, "a1"])
    with pytest.warns(UserWarning, match="inferred"):
        sc2 = L.score_constructs(frame.iloc[:3], {"a": ["a1", "a2"]}, reverse_items=["a2"])
    assert (sc2.scale_min, sc2.scale_max, sc2.scale_inferred) == (2.0, 4.0, True)


def test_unknown_items_and_text_answers_fail_clearly():
    with pytest.raises(DataError, match="not in the data"):
        L.score_constructs(pd.DataFrame({"a1": [1.0]}), {"a": ["a1", "a9"]})
    with pytest.raises(DataError, match="non-numeric"):
        L.score_constructs(pd.DataFrame({"a1": ["1", "agree"], "a2": [1, 2]}), {"a": ["a1", "a2"]})


def test_constructs_inferred_from_item_names():
    spec = L.load_constructs(None, columns=["respondent_id", "trust_1", "trust_2", "quality_1", "quality_2",
                                            "sat_1", "sat_2", "loy_1", "loy_2_r"])
    assert spec.constructs["service_quality"] == ["quality_1", "quality_2"]
    assert spec.reverse_items == ["loy_2_r"]
    assert spec.drivers == ["trust", "service_quality"]
    with pytest.raises(ParameterError, match="outcome"):
        L.load_constructs({"a": ["x", "y"]}, outcome="loyalty")


def test_mobi_yaml_mapping_is_valid():
    from ecrm_research.paths import MAPPINGS_DIR

    spec = L.load_constructs(MAPPINGS_DIR / "ecsi_mobi_constructs.yaml")
    assert list(spec.constructs) == ["image", "perceived_quality", "perceived_value", "satisfaction", "loyalty"]
    assert (spec.scale_min, spec.scale_max) == (1, 10)
    assert spec.drivers == ["image", "perceived_quality", "perceived_value"]


# --------------------------------------------------------------------------------------------
# regression, Shapley, mediation
# --------------------------------------------------------------------------------------------
def test_driver_regression_std_coefficients_and_cv(sim):
    _, spec, sc = sim
    m = L.fit_drivers(sc.scores, "satisfaction", ["trust", "service_quality"], robust=True, seed=1)
    s = m.summary.set_index("predictor")
    d = sc.scores[["satisfaction", "trust", "service_quality"]].dropna()
    for x in ("trust", "service_quality"):
        assert s.loc[x, "std_estimate"] == pytest.approx(s.loc[x, "estimate"] * d[x].std() / d["satisfaction"].std())
        assert s.loc[x, "ci_lower"] < s.loc[x, "estimate"] < s.loc[x, "ci_upper"]
    assert m.cov_type == "HC3"
    assert 0 < m.cv_r2 <= m.r2 + 0.01 and m.adj_r2 < m.r2
    assert set(m.diagnostics["test"].str.split().str[0]) >= {"Jarque-Bera", "Breusch-Pagan"}
    assert (s["vif"] < 1.2).all()       # independent drivers


def test_shapley_sums_to_r2(sim):
    _, _, sc = sim
    preds = ["satisfaction", "trust", "service_quality", "habit", "perceived_cost", "entertainment"]
    ri = L.relative_importance(sc.scores, "loyalty", preds)
    full = L.fit_drivers(sc.scores, "loyalty", preds).r2
    assert ri.summary["shapley_r2"].sum() == pytest.approx(full, abs=1e-10)
    assert ri.r2 == pytest.approx(full, abs=1e-10)
    assert ri.summary.iloc[0]["predictor"] == "satisfaction"
    # Monte Carlo path also sums to R² exactly
    mc = L.relative_importance(sc.scores, "loyalty", preds, max_exact=2, n_permutations=200)
    assert mc.summary["shapley_r2"].sum() == pytest.approx(full, abs=1e-10)


def test_shapley_two_predictors_closed_form():
    """For two predictors, phi_1 = (R² + r1² - r2²)/2."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(500), rng.standard_normal(500)
    df = pd.DataFrame({"x1": x1, "x2": 0.5 * x1 + x2, "y": x1 + 0.5 * x2 + rng.standard_normal(500)})
    ri = L.relative_importance(df, "y", ["x1", "x2"]).summary.set_index("predictor")
    r = df.corr()
    r2 = L.fit_drivers(df, "y", ["x1", "x2"]).r2
    assert ri.loc["x1", "shapley_r2"] == pytest.approx((r2 + r.loc["x1", "y"] ** 2 - r.loc["x2", "y"] ** 2) / 2)


def test_mediation_point_estimates_match_ols(sim):
    import statsmodels.formula.api as smf

    _, spec, sc = sim
    med = L.mediation_analysis(sc.scores, ["trust", "service_quality"], "satisfaction", "loyalty",
                               direct_drivers=["habit"], n_boot=50, seed=1)
    d = sc.scores.dropna(subset=["trust", "service_quality", "satisfaction", "loyalty", "habit"])
    a = smf.ols("satisfaction ~ trust + service_quality", d).fit().params
    b = smf.ols("loyalty ~ satisfaction + trust + service_quality + habit", d).fit().params
    ind = med.effects("indirect").set_index("driver")
    tot = med.effects("total").set_index("driver")
    assert ind.loc["trust", "estimate"] == pytest.approx(a["trust"] * b["satisfaction"], rel=1e-9)
    assert tot.loc["trust", "estimate"] == pytest.approx(a["trust"] * b["satisfaction"] + b["trust"], rel=1e-9)
    assert tot.loc["habit", "estimate"] == pytest.approx(b["habit"], rel=1e-9)


def test_mediation_bootstrap_agrees_with_statsmodels_mediation(sim):
    """statsmodels.stats.mediation.Mediation (bootstrap) vs our percentile bootstrap, same two models.

    statsmodels follows Imai, Keele & Tingley (2010): in every replicate it *simulates* potential
    mediator and outcome values (with residual noise) and averages them, so its ACME interval adds
    Monte-Carlo noise and comes out ~1.3-1.5x wider than the plain bootstrap of a*b; it is also not
    reproducible with np.random.seed. We therefore check: equal point estimates (ACME, ADE, total),
    overlapping intervals, and our bootstrap SE against the first-order delta (Sobel) SE.
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from statsmodels.stats.mediation import Mediation

    _, _, sc = sim
    d = sc.scores[["trust", "service_quality", "satisfaction", "loyalty"]].dropna().iloc[:600].reset_index(drop=True)
    ours = L.mediation_analysis(d, ["trust", "service_quality"], "satisfaction", "loyalty", n_boot=400, seed=3)
    r = ours.effects("indirect").set_index("driver").loc["trust"]
    outcome_model = sm.OLS.from_formula("loyalty ~ satisfaction + trust + service_quality", d)
    mediator_model = sm.OLS.from_formula("satisfaction ~ trust + service_quality", d)
    np.random.seed(3)
    tab = Mediation(outcome_model, mediator_model, "trust", "satisfaction").fit(method="bootstrap", n_rep=400).summary()
    acme, ade, total = tab.loc["ACME (average)"], tab.loc["ADE (average)"], tab.loc["Total effect"]
    width = r["ci_upper"] - r["ci_lower"]
    assert r["estimate"] == pytest.approx(acme["Estimate"], abs=0.15 * width)
    assert acme["Lower CI bound"] <= r["estimate"] <= acme["Upper CI bound"]
    overlap = min(r["ci_upper"], acme["Upper CI bound"]) - max(r["ci_lower"], acme["Lower CI bound"])
    assert overlap >= 0.8 * width
    assert 0.5 <= width / (acme["Upper CI bound"] - acme["Lower CI bound"]) <= 1.1
    direct = ours.effects("direct").set_index("driver").loc["trust", "estimate"]
    tot = ours.effects("total").set_index("driver").loc["trust", "estimate"]
    assert direct == pytest.approx(ade["Estimate"], abs=0.02)
    assert tot == pytest.approx(total["Estimate"], abs=0.02)
    fa = smf.ols("satisfaction ~ trust + service_quality", d).fit()
    fb = smf.ols("loyalty ~ satisfaction + trust + service_quality", d).fit()
    sobel = math.hypot(fb.params["satisfaction"] * fa.bse["trust"], fa.params["trust"] * fb.bse["satisfaction"])
    assert r["se"] == pytest.approx(sobel, rel=0.2)


def test_bootstrap_is_seeded(sim):
    _, _, sc = sim
    kw = dict(direct_drivers=["habit"], n_boot=60, seed=11)
    a = L.mediation_analysis(sc.scores, ["trust"], "satisfaction", "loyalty", **kw).summary
    b = L.mediation_analysis(sc.scores, ["trust"], "satisfaction", "loyalty", **kw).summary
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------
# planted truth: SEM and corrected bootstrap recover the latent paths
# --------------------------------------------------------------------------------------------
def _check_planted(paths: pd.DataFrame, tol_se: float = 3.0, floor: float = 0.05):
    """Tolerance: |estimate - planted| <= max(3 SE, 0.05) (Likert discretisation adds a small bias)."""
    p = paths.set_index(["lval", "rval"])
    for lhs, planted in (("satisfaction", PLANTED_SAT), ("loyalty", PLANTED_LOY)):
        for rhs, value in planted.items():
            est, se = p.loc[(lhs, rhs), "std_estimate"], p.loc[(lhs, rhs), "std_se"]
            assert abs(est - value) <= max(tol_se * se, floor), (lhs, rhs, est, value, se)
    assert p.loc[("loyalty", "trust"), "p_value"] > 0.05


def test_sem_recovers_planted_paths_on_simulated_survey(sim):
    _, spec, sc = sim
    sem = L.fit_sem(sc.items, spec.constructs, L.structural_paths(spec), mediator="satisfaction", outcome="loyalty")
    _check_planted(sem.paths)
    fit = sem.fit.set_index("index")
    assert fit.loc["CFI", "value"] > 0.95 and fit.loc["RMSEA", "value"] < 0.06 and fit.loc["SRMR", "value"] < 0.08
    assert sem.n_obs > 1300          # pairwise: respondents who skipped one item still count


def test_srmr_matches_hand_computation(sim):
    _, spec, sc = sim
    cons = {k: spec.constructs[k] for k in ("trust", "habit")}
    mm = L.measurement_model(sc.items, cons, missing="listwise")
    model = mm.model
    s, sig = np.asarray(model.mx_cov), np.asarray(model.calc_sigma()[0])
    r_obs = s / np.sqrt(np.outer(np.diag(s), np.diag(s)))
    r_mod = sig / np.sqrt(np.outer(np.diag(s), np.diag(s)))
    iu = np.triu_indices(len(s))
    assert L.srmr(model) == pytest.approx(np.sqrt(np.mean((r_obs - r_mod)[iu] ** 2)))
    assert mm.summary["composite_reliability"].between(0.75, 0.9).all()


def test_corrected_indirect_effects_cover_planted_values(sim):
    _, spec, sc = sim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        med = L.mediation_analysis(sc.scores, spec.drivers, spec.mediator, spec.outcome,
                                   direct_drivers=spec.direct_drivers, items=sc.items, constructs=spec.constructs,
                                   n_boot=200, seed=5)
    ind = med.effects("indirect", "disattenuated").set_index("driver")
    for drv, planted in (("trust", 0.225), ("service_quality", 0.175)):
        assert ind.loc[drv, "std_ci_lower"] <= planted <= ind.loc[drv, "std_ci_upper"], ind.loc[drv]
    direct = med.effects("direct", "disattenuated").set_index("driver")
    assert direct.loc["trust", "std_ci_lower"] <= 0 <= direct.loc["trust", "std_ci_upper"]
    # the composite version is attenuated: smaller satisfaction -> loyalty path
    b_comp = med.effects("direct", "composite").set_index("driver").loc["satisfaction", "std_estimate"]
    assert b_comp < direct.loc["satisfaction", "std_estimate"]


def test_one_factor_reliability_is_exact_for_known_loadings():
    lam = np.array([0.8, 0.7, 0.6, 0.5])
    cov = np.outer(lam, lam)
    np.fill_diagonal(cov, 1.0)
    expected = lam.sum() ** 2 / cov.sum()
    assert one_factor_reliability(cov) == pytest.approx(expected, abs=1e-4)


# --------------------------------------------------------------------------------------------
# IPA, discriminant validity, repurchase
# --------------------------------------------------------------------------------------------
def test_importance_performance_quadrants(sim):
    _, spec, sc = sim
    totals = pd.DataFrame({"driver": ["trust", "perceived_cost", "habit", "entertainment"],
                           "estimate": [0.3, -0.25, 0.05, 0.02], "ci_lower": [0.2, -0.3, 0.0, -0.02],
                           "ci_upper": [0.4, -0.2, 0.1, 0.06]})
    ipa = L.importance_performance(totals, sc).set_index("lever")
    assert ipa.loc["perceived_cost", "reversed"] and ipa.loc["perceived_cost", "importance"] == 0.25
    perf = sc.rescale(sc.scores["perceived_cost"].mean())
    assert ipa.loc["perceived_cost", "performance"] == pytest.approx(100 - perf)
    assert set(ipa["action"]) <= {"concentrate here", "keep up", "low priority", "possible overkill"}
    hi = ipa["importance"] >= ipa.attrs["importance_cut"]
    assert (ipa.loc[hi, "action"].isin(["concentrate here", "keep up"])).all()
    rank = L.lever_ranking(ipa.reset_index(), scale=(1, 7))
    assert rank["lever"].tolist()[:2] == ["trust", "perceived_cost"]
    assert rank.loc[1, "advice"].startswith("Lowering perceived cost by one point")


def test_htmt_and_fornell_larcker(sim):
    _, spec, sc = sim
    h = L.htmt(sc.items, spec.constructs)
    assert (h.where(~np.eye(len(h), dtype=bool)).stack() < 0.85).all()
    mm = L.measurement_model(sc.items, spec.constructs)
    assert mm.fornell_larcker["fl_ok"].all()


def test_stated_vs_actual_detects_real_link():
    rng = np.random.default_rng(2)
    n = 400
    loy = rng.standard_normal(n)
    survey = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                           "answered_at": pd.Timestamp("2024-01-01")})
    buy = rng.random(n) < 1 / (1 + np.exp(-(loy - 0.2)))
    orders = pd.DataFrame({"customer_id": [f"c{i}" for i in np.flatnonzero(buy)] + ["c0"],
                           "ordered_at": [pd.Timestamp("2024-02-01")] * int(buy.sum()) + [pd.Timestamp("2024-12-31")],
                           "status": "completed"})
    res = L.stated_vs_actual(pd.DataFrame({"loyalty": loy}), survey, orders)
    s = res.summary.set_index("measure")
    assert s.loc["odds_ratio_per_sd", "value"] > 1.5 and s.loc["odds_ratio_per_sd", "p_value"] < 0.001
    assert s.loc["auc", "value"] > 0.6 and res.n_linked == n


# --------------------------------------------------------------------------------------------
# the bundled sample survey (planted by ecrm_research.data.sample)
# --------------------------------------------------------------------------------------------
def test_sample_survey_recovers_planted_paths(sample_dir):
    from ecrm_research.data.sample import PLANTED

    survey = pd.read_parquet(sample_dir / "survey_responses.parquet")
    spec = L.resolve_constructs(None, survey.columns)
    assert spec.constructs == PLANTED["survey"]["items"]
    assert sorted(spec.reverse_items) == sorted(PLANTED["survey"]["reverse_coded"])
    sc = L.score_constructs(survey, spec.constructs, reverse_items=spec.reverse_items,
                            scale_min=spec.scale_min, scale_max=spec.scale_max)
    sem = L.fit_sem(sc.items, spec.constructs, L.structural_paths(spec), mediator=spec.mediator,
                    outcome=spec.outcome)
    _check_planted(sem.paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        med = L.mediation_analysis(sc.scores, spec.drivers, spec.mediator, spec.outcome,
                                   direct_drivers=spec.direct_drivers, items=sc.items, constructs=spec.constructs,
                                   n_boot=200, seed=42)
    ind = med.effects("indirect", "disattenuated").set_index("driver")
    for drv, planted in (("trust", 0.225), ("service_quality", 0.175)):
        assert ind.loc[drv, "std_ci_lower"] <= planted <= ind.loc[drv, "std_ci_upper"], ind.loc[drv]
    assert med.effects("direct", "disattenuated").set_index("driver").loc["trust", "p_value"] > 0.05


def test_resample_covariances_equal_numpy_cov_of_each_resample():
    """The bootstrap computes all resamples' covariance matrices from row counts at once; each
    must equal np.cov of that resample (rows with a missing answer left out, as before)."""
    rng = np.random.default_rng(5)
    z = rng.integers(1, 8, (300, 5)).astype(float) + 100.0  # far-from-zero means: the centring matters
    z[rng.random(300) < 0.15, 2] = np.nan
    ok = ~np.isnan(z).any(axis=1)
    draws = [rng.integers(0, 300, 300) for _ in range(40)]
    counts = resample_counts(draws, 300)
    assert counts.shape == (40, 300) and (counts.sum(axis=1) == 300).all()
    ref = np.stack([np.cov(z[r[ok[r]]], rowvar=False) for r in draws])
    for got in (resample_covs(z, counts, ok), resample_covs(z, counts, ok, max_bytes=0)):  # batched, fallback
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=0)
    full = z[:, [0, 1, 3]]
    np.testing.assert_allclose(resample_covs(full, counts),
                               np.stack([np.cov(full[r], rowvar=False) for r in draws]), rtol=1e-11, atol=0)
