"""The SEM reaches the ML optimum and reports what lavaan reports (issue 15).

On an ill-conditioned survey (two constructs almost the same) semopy's default optimiser (SLSQP)
stops short of the ML optimum: χ² a few thousandths too high, structural paths off by several
hundredths, one with the wrong sign, and nothing says so. ``loyalty.fit_sem`` checks the gradient,
runs a second optimiser and a restart, keeps the lowest objective, and then matches lavaan 0.6.

Reference numbers: R 4.2, lavaan 0.6-14 (``lavInspect(fit, "options")``: estimator ML,
likelihood normal, information expected, se standard), from
``fit <- sem(model, data = d); parameterEstimates(fit); standardizedSolution(fit); fitMeasures(fit)``
on the survey written by ``ill_conditioned_survey().to_csv(...)``; the tests never call R.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ecrm_research import loyalty as L
from ecrm_research.loyalty import mlfit, structural

CONSTRUCTS = {c: [f"{c}_{k}" for k in (1, 2, 3)] for c in ("trust", "quality", "value", "satisfaction", "loyalty")}
PATHS = {"satisfaction": ["trust", "quality", "value"], "loyalty": ["satisfaction", "trust", "quality", "value"]}
TOL = 1e-3


def ill_conditioned_survey(n: int = 300, seed: int = 9) -> pd.DataFrame:
    """A seeded survey on a 0-10 scale whose perceived value and satisfaction are almost the same
    construct (HTMT 0.936): loyalty depends on value, hardly on satisfaction, and the two paths
    trade off along a flat valley of the likelihood."""
    rng = np.random.default_rng(seed)
    trust = rng.standard_normal(n)
    quality = 0.5 * trust + np.sqrt(0.75) * rng.standard_normal(n)
    value = 0.4 * trust + 0.3 * quality + np.sqrt(1 - 0.16 - 0.09 - 0.12) * rng.standard_normal(n)
    value /= value.std()
    sat = 0.93 * value + 0.1 * trust + 0.1 * quality + 0.3 * rng.standard_normal(n)
    sat = (sat - sat.mean()) / sat.std()
    loy = 0.1 * sat + 0.2 * trust + 0.3 * value + 0.75 * rng.standard_normal(n)
    loy = (loy - loy.mean()) / loy.std()
    items = {}
    for name, eta in zip(CONSTRUCTS, (trust, quality, value, sat, loy)):
        for k in range(3):
            lam = 0.75 + 0.08 * (k - 1)
            y = lam * eta + np.sqrt(1 - lam ** 2) * rng.standard_normal(n)
            items[f"{name}_{k + 1}"] = np.clip(np.round(6 + 2.2 * y), 0, 10)
    return pd.DataFrame(items)


# R> model <- 'trust =~ trust_1 + trust_2 + trust_3
#              quality =~ quality_1 + quality_2 + quality_3
#              value =~ value_1 + value_2 + value_3
#              satisfaction =~ satisfaction_1 + satisfaction_2 + satisfaction_3
#              loyalty =~ loyalty_1 + loyalty_2 + loyalty_3
#              satisfaction ~ trust + quality + a*value
#              loyalty ~ b*satisfaction + trust + quality + c*value
#              ind := a*b; tot := a*b + c'
# R> fit <- sem(model, data = d)        # lavaan 0.6-14, converged in 67 iterations
# (lhs, op, rhs): (est, se, est.std, se of est.std)
LAVAAN = {
    ("value", "=~", "value_1"): (1.000000, 0.000000, 0.623782, 0.040067),
    ("value", "=~", "value_2"): (1.148791, 0.115519, 0.712304, 0.033778),
    ("satisfaction", "=~", "satisfaction_1"): (1.000000, 0.000000, 0.673888, 0.035556),
    ("satisfaction", "=~", "satisfaction_3"): (1.212216, 0.100485, 0.795900, 0.026711),
    ("satisfaction", "~", "trust"): (0.102885, 0.062057, 0.104951, 0.062639),
    ("satisfaction", "~", "quality"): (0.246033, 0.060821, 0.260518, 0.059477),
    ("satisfaction", "~", "value"): (0.821431, 0.106749, 0.746511, 0.058353),
    ("loyalty", "~", "satisfaction"): (-0.023915, 0.858128, -0.025171, 0.903172),
    ("loyalty", "~", "trust"): (0.170568, 0.114314, 0.183129, 0.120851),
    ("loyalty", "~", "quality"): (0.034445, 0.225054, 0.038388, 0.250771),
    ("loyalty", "~", "value"): (0.440375, 0.736372, 0.421222, 0.701808),
    ("satisfaction", "~~", "satisfaction"): (0.093018, 0.091082, 0.044685, 0.042829),
    ("loyalty", "~~", "loyalty"): (1.317499, 0.255037, 0.701121, 0.058031),
}
# R> standardizedSolution(fit)[standardizedSolution(fit)$op == ":=", c("lhs", "est.std", "se")]
LAVAAN_DEFINED = {"ind": (-0.018790, 0.674460), "tot": (0.402432, 0.088534)}
# R> fitMeasures(fit, c("fmin", "chisq", "df", "cfi", "tli", "rmsea", "srmr", "baseline.chisq"))
LAVAAN_FIT = {"fmin": 0.1873760744, "chisq": 112.4256447, "df": 80, "cfi": 0.9822820012, "tli": 0.9767451266,
              "rmsea": 0.03675688408, "srmr": 0.03743857632, "baseline.chisq": 1935.096335}


@pytest.fixture(scope="module")
def survey() -> pd.DataFrame:
    return ill_conditioned_survey()


@pytest.fixture(scope="module")
def fitted(survey):
    return L.fit_sem(survey, CONSTRUCTS, PATHS, mediator="satisfaction", outcome="loyalty")


def _row(params: pd.DataFrame, lhs: str, op: str, rhs: str) -> pd.Series:
    """A lavaan row in our table (``construct =~ item`` is ``item ~ construct`` in semopy's orientation)."""
    if op == "=~":
        lhs, op, rhs = rhs, "~", lhs
    hit = params[(params["lval"] == lhs) & (params["op"] == op) & (params["rval"] == rhs)]
    if op == "~~" and hit.empty:
        hit = params[(params["lval"] == rhs) & (params["op"] == op) & (params["rval"] == lhs)]
    assert len(hit) == 1, (lhs, op, rhs)
    return hit.iloc[0]


def test_survey_is_ill_conditioned(survey):
    h = L.htmt(survey, CONSTRUCTS)
    assert h.loc["value", "satisfaction"] == pytest.approx(0.936, abs=0.001)
    assert survey.min().min() == 0 and survey.max().max() == 10


def test_semopy_default_alone_misses_the_ml_optimum(survey):
    """semopy 2.3's default (SLSQP) stops with χ² 0.0027 above lavaan's minimum, paths off by up to 0.045,
    and loyalty ~ satisfaction with the wrong sign; this is what fit_sem guards against."""
    import semopy

    model = semopy.Model(structural.sem_description(CONSTRUCTS, PATHS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(survey)
    chi2 = len(survey) * mlfit.objective(model, model.param_vals)
    assert chi2 - LAVAAN_FIT["chisq"] > 0.002
    std = model.inspect(std_est=True)
    paths = std[(std["op"] == "~") & std["lval"].isin(CONSTRUCTS) & std["rval"].isin(CONSTRUCTS)]
    gaps = {(r.lval, r.rval): r["Est. Std"] - LAVAAN[(r.lval, "~", r.rval)][2] for _, r in paths.iterrows()}
    assert max(abs(g) for g in gaps.values()) > 0.03
    semopy_sat = LAVAAN[("loyalty", "~", "satisfaction")][2] + gaps[("loyalty", "satisfaction")]
    assert np.sign(semopy_sat) != np.sign(LAVAAN[("loyalty", "~", "satisfaction")][2])


def test_fit_sem_matches_lavaan_estimates_and_standard_errors(fitted):
    for (lhs, op, rhs), (est, se, std, std_se) in LAVAAN.items():
        r = _row(fitted.parameters, lhs, op, rhs)
        assert r["estimate"] == pytest.approx(est, abs=TOL), (lhs, op, rhs)
        if se > 0:
            assert r["se"] == pytest.approx(se, abs=TOL), (lhs, op, rhs)
        else:
            assert np.isnan(r["se"]) and not r["free"]
        assert r["std_estimate"] == pytest.approx(std, abs=TOL), (lhs, op, rhs)
        assert r["std_se"] == pytest.approx(std_se, abs=TOL), (lhs, op, rhs)
    p = fitted.paths.set_index(["lval", "rval"])
    assert p.loc[("loyalty", "satisfaction"), "std_estimate"] < 0  # lavaan's sign


def test_standardized_effects_match_lavaan_defined_parameters(fitted):
    e = fitted.effects.set_index(["driver", "effect"])
    for key, (std, se) in {("value", "indirect"): LAVAAN_DEFINED["ind"], ("value", "total"): LAVAAN_DEFINED["tot"]}.items():
        assert e.loc[key, "std_estimate"] == pytest.approx(std, abs=TOL)
        assert e.loc[key, "std_se"] == pytest.approx(se, abs=TOL)


def test_fit_indices_match_lavaan(fitted):
    f = fitted.fit.set_index("index")["value"]
    assert f["chi2"] == pytest.approx(LAVAAN_FIT["chisq"], abs=TOL)
    assert fitted.objective == pytest.approx(2 * LAVAAN_FIT["fmin"], abs=1e-6)  # F_ML = 2 fmin
    assert f["CFI"] == pytest.approx(LAVAAN_FIT["cfi"], abs=TOL)
    assert f["TLI"] == pytest.approx(LAVAAN_FIT["tli"], abs=TOL)
    assert f["RMSEA"] == pytest.approx(LAVAAN_FIT["rmsea"], abs=1e-5)
    assert f["SRMR"] == pytest.approx(LAVAAN_FIT["srmr"], abs=1e-5)
    n, df, chi2 = 300, LAVAAN_FIT["df"], f["chi2"]
    assert f["RMSEA_n_minus_1"] == pytest.approx(np.sqrt((chi2 - df) / (df * (n - 1))))
    assert f["RMSEA_n_minus_1"] > f["RMSEA"]


def test_convergence_is_reported_in_the_fit_table(fitted):
    f = fitted.fit.set_index("index")
    assert fitted.converged and f.loc["converged", "verdict"] == "yes"
    assert f.loc["gradient_norm", "value"] <= L.GRADIENT_TOLERANCE
    assert f.loc["optimiser", "verdict"] == fitted.optimiser != "semopy SLSQP"
    runs = fitted.convergence.set_index("optimiser")
    assert runs.loc["semopy SLSQP", "gradient_norm"] > 1e-4            # semopy stopped on a slope
    assert runs.loc["semopy SLSQP", "chi2"] - f.loc["chi2", "value"] > 0.002
    assert runs["kept"].sum() == 1 and not fitted.warnings_


def test_p_values_are_exact_not_rounded_to_zero(fitted):
    p = fitted.parameters
    assert (p["p_value"].dropna() > 0).all() and (p["std_p_value"].dropna() > 0).all()
    assert L.format_p_value(0.0) == "< 1e-300" and L.format_p_value(3.2e-45) == "3.2e-45"
    shown = L.readable(fitted.paths)
    assert "0" not in set(shown["p_value"]) and shown["p_value"].str.len().gt(0).all()


# --- improper solutions ---------------------------------------------------------------------------------------

def planted_heywood(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Items whose sample covariance is exactly a one-factor structure with a loading above 1: for
    construct A, r12 = r13 = 0.8 and r23 = 0.5 force λ1² = r12·r13/r23 = 1.28, so the residual
    variance of A_1 is 1 − 1.28 = −0.28 (a Heywood case); B is a clean construct with B ~ A."""
    lam_a = np.array([np.sqrt(1.28), 0.8 / np.sqrt(1.28), 0.8 / np.sqrt(1.28)])
    lam_b = np.array([0.7, 0.7, 0.7])
    beta = 0.5
    lam = np.zeros((6, 2))
    lam[:3, 0], lam[3:, 1] = lam_a, lam_b
    phi = np.array([[1.0, beta], [beta, 1.0]])
    cov = lam @ phi @ lam.T
    np.fill_diagonal(cov, 1.0)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 6))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False, bias=True))).T  # sample cov exactly I
    x = z @ np.linalg.cholesky(cov).T
    return pd.DataFrame(5 + 2 * x, columns=["A_1", "A_2", "A_3", "B_1", "B_2", "B_3"])


def test_planted_heywood_case_is_warned_about():
    data = planted_heywood()
    with pytest.warns(UserWarning, match="improper solution"):
        res = L.fit_sem(data, {"A": ["A_1", "A_2", "A_3"], "B": ["B_1", "B_2", "B_3"]}, {"B": ["A"]})
    assert res.converged                                   # a proper minimum of an improper model
    text = " ".join(res.warnings_)
    assert "negative variance (Heywood case): A_1" in text and "beyond ±1" in text
    p = res.parameters
    assert _row(p, "A", "=~", "A_1")["std_estimate"] == pytest.approx(np.sqrt(1.28), abs=TOL)  # planted
    assert _row(p, "A_1", "~~", "A_1")["std_estimate"] == pytest.approx(-0.28, abs=TOL)
    assert _row(p, "B", "~", "A")["std_estimate"] == pytest.approx(0.5, abs=TOL)
    assert res.fit.set_index("index").loc["chi2", "value"] == pytest.approx(0, abs=1e-6)


def test_unconverged_solution_is_warned_about(fitted):
    sol = fitted.solution
    stuck = mlfit.MLSolution(sol.params, sol.objective, 0.02, "semopy SLSQP", False, sol.attempts,
                             sol.information, sol.n_obs)
    text = structural.sem_warnings(fitted.parameters, fitted.r2, stuck)
    assert len(text) == 1 and "did not converge" in text[0] and "0.02" in text[0]
    assert L.fit_table({"chi2": 1.0, "df": 1}, stuck).set_index("index").loc["converged", "verdict"] == "no"


# --- real data: the ECSI mobile survey, an improper solution lavaan reports too ----------------------------------

# R> d <- read.csv("mobi.csv")       # semPLS::mobi, 250 respondents, 1-10 scale
# R> fit <- sem('image =~ IMAG1 + IMAG2 + IMAG3 + IMAG4 + IMAG5
#               perceived_quality =~ PERQ1 + PERQ2 + PERQ3 + PERQ4 + PERQ5 + PERQ6 + PERQ7
#               perceived_value =~ PERV1 + PERV2
#               satisfaction =~ CUSA1 + CUSA2 + CUSA3
#               loyalty =~ CUSL1 + CUSL3
#               satisfaction ~ image + perceived_quality + perceived_value
#               loyalty ~ satisfaction + image + perceived_quality + perceived_value', data = d)
# lavaan 0.6-14: "WARNING: some estimated lv variances are negative"; fitMeasures: chisq 394.1444156, df 142,
# cfi 0.8954332345, rmsea 0.08427727804, srmr 0.05581171353
MOBI = {("loyalty", "~", "satisfaction"): (5.594540, 3.489038, 2.858488, 1.724719),
        ("satisfaction", "~", "perceived_quality"): (0.547372, 0.178188, 0.703053, 0.219163),
        ("loyalty", "~~", "loyalty"): (-0.303668, 0.916004, -0.109504, 0.329678),
        ("image", "~~", "perceived_quality"): (1.126430, 0.151744, 0.926329, 0.028687)}


@pytest.mark.realdata
def test_mobi_matches_lavaan_and_flags_its_heywood_case(ecsi_dir):
    d = pd.read_csv(ecsi_dir / "mobi.csv")
    cons = {"image": [f"IMAG{i}" for i in range(1, 6)], "perceived_quality": [f"PERQ{i}" for i in range(1, 8)],
            "perceived_value": ["PERV1", "PERV2"], "satisfaction": ["CUSA1", "CUSA2", "CUSA3"],
            "loyalty": ["CUSL1", "CUSL3"]}
    paths = {"satisfaction": ["image", "perceived_quality", "perceived_value"],
             "loyalty": ["satisfaction", "image", "perceived_quality", "perceived_value"]}
    with pytest.warns(UserWarning, match="negative variance"):
        res = L.fit_sem(d, cons, paths)
    for key, (est, se, std, std_se) in MOBI.items():
        r = _row(res.parameters, *key)
        assert (r["estimate"], r["se"], r["std_estimate"], r["std_se"]) == pytest.approx((est, se, std, std_se),
                                                                                     abs=TOL), key
    f = res.fit.set_index("index")["value"]
    assert f["chi2"] == pytest.approx(394.1444156, abs=TOL) and f["CFI"] == pytest.approx(0.8954332345, abs=TOL)
    assert f["RMSEA"] == pytest.approx(0.08427727804, abs=1e-5) and f["SRMR"] == pytest.approx(0.05581171353, abs=1e-5)
    assert res.convergence.set_index("optimiser").loc["semopy SLSQP", "chi2"] - f["chi2"] > 0.1
