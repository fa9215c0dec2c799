"""The proportional-hazards test against R survival ≥ 3 ``cox.zph`` (exact score test), and planted truths.

Reference numbers: R 4.2.2, survival 3.5.3 (``Rscript``, ``options(digits=12)``); each test quotes
its R call. R's coxph converges to ~1e-9 in the log-likelihood and our lifelines fit to 1e-10 in
the step, so the χ² of the fitted models agree to 1e-4 relative; with R's own coefficients
:func:`cox_zph` agrees to 1e-7.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

from ecrm_research import survival as sv
from ecrm_research.exceptions import DataError, ParameterError
from ecrm_research.phrasing import p_text
from ecrm_research.survival import plots as survival_plots
from ecrm_research.survival.ph_test import cox_zph, transform_time

ROSSI_COVARIATES = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
ROSSI_TERMS = [*ROSSI_COVARIATES, "GLOBAL"]

# R: fit <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data=rossi, ties="efron")
#    cox.zph(fit, transform=tr)$table[, "chisq"]
R_ROSSI_EFRON = {
    "km": [0.0624297513581, 5.9739816534184, 2.0682653874805, 4.2245956334216, 1.0110215644358,
           0.0183832991690, 0.5205842503030, 17.6944152544550],
    "rank": [1.3838084514070, 0.8964214615663, 2.2599781512000, 4.1596837531657, 0.0895921418466,
             0.0218516556887, 1.6408034519445, 11.0251834071226],
    "identity": [0.0089505587513, 6.6159437892942, 2.1444262567845, 3.8767551246737, 1.0313483187116,
                 0.0281765987231, 0.4247983963029, 18.1826870391293],
    "log": [0.1375994332571, 8.2314983419423, 1.6170849394269, 2.0858548410984, 1.1259733148419,
            0.2192028103310, 0.0134790732013, 17.6615705707482],
}
# R: coef(fit) (Efron) and coef(coxph(..., ties="breslow"))
R_ROSSI_COEF_EFRON = [-0.3794221664859, -0.0574377426841, 0.3138997878425, -0.1497956976665, -0.4337038779373,
                      -0.0848710825004, 0.0914970809853]
R_ROSSI_COEF_BRESLOW = [-0.3790218874307941, -0.0572459250446639, 0.3141297669073693, -0.1511146000559651,
                        -0.4327825737628727, -0.0849828352673010, 0.0911115420915654]
# R: cox.zph(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data=rossi,
#                  ties="breslow"))$table[, "chisq"]
R_ROSSI_BRESLOW_KM = [0.0613846365751, 5.9408467283235, 2.0553715309305, 4.1907146299719, 1.0050067827340,
                      0.0189931778149, 0.5100188390544, 17.5732787749159]
# R: fits <- coxph(Surv(week, arrest) ~ fin + age + race + mar + paro + prio + strata(wexp), data=rossi)
#    cox.zph(fits)$table ; cox.zph(fits, transform="rank")$table
R_ROSSI_STRATA = {
    "km": [6.03081940334e-02, 1.09503355881e+01, 1.95112037049e+00, 2.37309265765e-01, 8.00771192102e-04,
           2.83353614175e-02, 1.34057982983e+01],
    "rank": [1.3639637190183, 2.8354787213144, 2.1354320918869, 0.0415156680187, 0.0662757086741,
             0.6397049449629, 6.9328706354611],
}

# R: tel <- read.csv("WA_Fn-UseC_-Telco-Customer-Churn.csv"); tel <- tel[tel$tenure > 0, ]
#    tel$event <- as.integer(tel$Churn == "Yes")
#    ft <- coxph(Surv(tenure, event) ~ Contract + PaymentMethod + MonthlyCharges + SeniorCitizen
#                + PaperlessBilling, data=tel, ties="efron")
TELCO_COVARIATES = ["Contract", "PaymentMethod", "MonthlyCharges", "SeniorCitizen", "PaperlessBilling"]
TELCO_COLUMNS = ["Contract_One year", "Contract_Two year", "PaymentMethod_Credit card (automatic)",
                 "PaymentMethod_Electronic check", "PaymentMethod_Mailed check", "MonthlyCharges",
                 "SeniorCitizen", "PaperlessBilling_Yes"]
# cox.zph(ft)$table (terms=TRUE, km): Contract, PaymentMethod, MonthlyCharges, SeniorCitizen, PaperlessBilling, GLOBAL
R_TELCO_TERMS_KM = [109.095062224906, 47.325879894956, 61.282346990537, 0.118908640859, 0.888359686384,
                    211.541313593850]
R_TELCO_TERMS_KM_P = [2.04318756330e-24, 2.96283341626e-10, 4.94494219356e-15, 7.30221183897e-01,
                      3.45922204710e-01, 2.35346034478e-41]
# cox.zph(ft, transform="rank")$table (terms=TRUE)
R_TELCO_TERMS_RANK = [114.8353409930019, 40.9038349861842, 54.2199437711515, 0.0466254624578, 0.4220737376437,
                      208.5382965248014]
# cox.zph(ft, terms=FALSE)$table (km): one row per model column, then GLOBAL
R_TELCO_COLUMNS_KM = [77.212771482614, 19.972960820533, 16.266855597327, 3.934028059216, 24.085201156074,
                      61.282346990537, 0.118908640859, 0.888359686384, 211.541313593850]
# cox.zph(ft, terms=FALSE, transform="identity")$table
R_TELCO_COLUMNS_IDENTITY = [8.09831969200e+01, 2.22670757708e+01, 1.10109561009e+01, 5.27626725630e+00,
                            1.51129324819e+01, 4.29546806019e+01, 7.58099515851e-03, 1.76781302853e-02,
                            1.97955951389e+02]

RTOL = 1e-4


@pytest.fixture(scope="module")
def rossi(rossi_csv):
    return pd.read_csv(rossi_csv)


@pytest.fixture(scope="module")
def rossi_model(rossi):
    return sv.ChurnCoxModel().fit(rossi, "week", "arrest", ROSSI_COVARIATES)


@pytest.fixture(scope="module")
def telco(telco_csv):
    tel = pd.read_csv(telco_csv)
    tel = tel[tel["tenure"] > 0].copy()
    tel["event"] = (tel["Churn"] == "Yes").astype(int)
    return tel


@pytest.fixture(scope="module")
def telco_model(telco):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sv.SurvivalWarning)
        return sv.ChurnCoxModel().fit(telco, "tenure", "event", TELCO_COVARIATES)


def _chisq(ph: pd.DataFrame, names: list[str]) -> np.ndarray:
    return ph.set_index("covariate").loc[names, "chi_square"].to_numpy(float)


# --------------------------------------------------------------------------- Rossi (R parity)

@pytest.mark.realdata
@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_rossi_matches_r_cox_zph_for_every_transform(rossi_model, transform):
    """R: cox.zph(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data=rossi,
    ties="efron"), transform=<transform>)"""
    ph = rossi_model.check_proportional_hazards(transform=transform)
    assert list(ph["covariate"]) == ROSSI_TERMS
    assert list(ph["term_type"]) == ["covariate"] * 7 + ["global"]
    np.testing.assert_allclose(_chisq(ph, ROSSI_TERMS), R_ROSSI_EFRON[transform], rtol=RTOL)
    assert list(ph["df"]) == [1] * 7 + [7]
    assert ph["method"].iloc[0] == f"exact score test (R survival ≥ 3 cox.zph, transform {transform}, Efron ties)"


@pytest.mark.realdata
def test_rossi_with_r_coefficients_agrees_to_1e7(rossi):
    """The statistic alone (R's own β̂): Efron and Breslow ties."""
    ours = cox_zph(rossi[ROSSI_COVARIATES], rossi["week"], rossi["arrest"], R_ROSSI_COEF_EFRON).summary
    np.testing.assert_allclose(ours["chi_square"], R_ROSSI_EFRON["km"], rtol=1e-7)
    bres = cox_zph(rossi[ROSSI_COVARIATES], rossi["week"], rossi["arrest"], R_ROSSI_COEF_BRESLOW,
                   ties="breslow").summary
    np.testing.assert_allclose(bres["chi_square"], R_ROSSI_BRESLOW_KM, rtol=1e-7)
    # R: pchisq(chisq, df, lower.tail=FALSE) of the km table: age 0.0145184627740, GLOBAL 0.0134275067857
    np.testing.assert_allclose(ours.set_index("covariate").loc[["age", "GLOBAL"], "p_value"],
                               [0.0145184627740, 0.0134275067857], rtol=1e-7)


@pytest.mark.realdata
@pytest.mark.parametrize("transform", ["km", "rank"])
def test_rossi_stratified_matches_r(rossi, transform):
    """R: cox.zph(coxph(Surv(week, arrest) ~ fin + age + race + mar + paro + prio + strata(wexp),
    data=rossi), transform=<transform>)"""
    cols = ["fin", "age", "race", "mar", "paro", "prio"]
    model = sv.ChurnCoxModel().fit(rossi, "week", "arrest", cols, strata="wexp")
    ph = model.check_proportional_hazards(transform=transform)
    np.testing.assert_allclose(_chisq(ph, [*cols, "GLOBAL"]), R_ROSSI_STRATA[transform], rtol=RTOL)
    assert "2 strata" in ph["method"].iloc[0]


@pytest.mark.realdata
def test_rossi_scaled_residuals_and_time_axis_match_r(rossi_model):
    """R: z <- cox.zph(fit); head(z$y, 5); head(z$x, 5); tail(z$y, 3) (km transform)."""
    res = rossi_model.ph_test("km", terms=False)
    r_head = [[-2.10910171822, -0.134551588266, 1.366329251985, -2.49430142432, 0.0955683630482, -3.21154351097,
               -0.422343081280179],
              [-2.55763113922, 1.075107033190, 0.660226868487, -1.09689587178, -4.9759601622719, 2.45111218854,
               0.000163804723105]]
    r_last = [-2.38457168798, 0.4432867016557, 1.13397368918, 0.755859752928, -3.7777793385720, 1.81545322102,
              0.0894187978358]
    assert res.residuals.shape == (114, 7)
    np.testing.assert_allclose(res.residuals.iloc[:2].to_numpy(), r_head, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(res.residuals.iloc[-1].to_numpy(), r_last, rtol=RTOL)
    np.testing.assert_allclose(res.x.iloc[:5], [0.0, 0.00231481481481, 0.00462962962963, 0.00694444444444,
                                                0.00925925925926], atol=1e-10)
    assert list(res.time.iloc[:5]) == [1, 2, 3, 4, 5]
    # R's y is centred on β̂: the residuals' mean is close to the coefficient
    assert abs(res.residuals["age"].mean() - rossi_model.cph_.params_["age"]) < 0.05
    pd.testing.assert_frame_equal(rossi_model.scaled_schoenfeld_residuals(), res.residuals)


@pytest.mark.realdata
def test_rossi_verdicts_and_advice(rossi_model):
    """R km table: age p = 0.0145, wexp p = 0.0398 fail at 5 %; fin p = 0.80 passes; GLOBAL p = 0.0134."""
    ph = rossi_model.check_proportional_hazards().set_index("covariate")
    assert set(ph.index[ph["ph_violated"]]) == {"age", "wexp", "GLOBAL"}
    assert "time interaction" in ph.loc["age", "advice"]
    assert "stratify by 'wexp'" in ph.loc["wexp", "advice"]
    assert "no evidence" in ph.loc["fin", "advice"]
    assert "at least one effect changes over time" in ph.loc["GLOBAL", "advice"]
    assert not rossi_model.check_proportional_hazards(alpha=0.01)["ph_violated"].any()


# --------------------------------------------------------------------------- Telco: factors and ties

@pytest.mark.realdata
def test_telco_has_many_tied_event_times(telco):
    events = telco.loc[telco["event"] == 1, "tenure"]
    assert events.nunique() == 72 and len(events) == 1869  # 1,869 churn events on 72 distinct months


@pytest.mark.realdata
def test_telco_terms_true_matches_r_with_joint_factor_rows(telco_model):
    """R: cox.zph(ft) (terms=TRUE, km) and cox.zph(ft, transform="rank"): one row per factor."""
    names = ["Contract", "PaymentMethod", "MonthlyCharges", "SeniorCitizen", "PaperlessBilling_Yes", "GLOBAL"]
    ph = telco_model.check_proportional_hazards(terms=True)
    assert list(ph["covariate"]) == names
    assert list(ph["term_type"]) == ["factor", "factor", "covariate", "covariate", "covariate", "global"]
    assert list(ph["df"]) == [2, 3, 1, 1, 1, 8]
    np.testing.assert_allclose(_chisq(ph, names), R_TELCO_TERMS_KM, rtol=RTOL)
    np.testing.assert_allclose(ph["p_value"], R_TELCO_TERMS_KM_P, rtol=1e-3)
    rank = telco_model.check_proportional_hazards(transform="rank", terms=True)
    np.testing.assert_allclose(_chisq(rank, names), R_TELCO_TERMS_RANK, rtol=RTOL)


@pytest.mark.realdata
def test_telco_terms_false_matches_r_per_dummy(telco_model):
    """R: cox.zph(ft, terms=FALSE) (km) and cox.zph(ft, terms=FALSE, transform="identity")."""
    names = [*TELCO_COLUMNS, "GLOBAL"]
    ph = telco_model.check_proportional_hazards(terms=False)
    assert list(ph["covariate"]) == names and "factor" not in set(ph["term_type"])
    np.testing.assert_allclose(_chisq(ph, names), R_TELCO_COLUMNS_KM, rtol=RTOL)
    ident = telco_model.check_proportional_hazards(transform="identity", terms=False)
    np.testing.assert_allclose(_chisq(ident, names), R_TELCO_COLUMNS_IDENTITY, rtol=RTOL)


@pytest.mark.realdata
def test_telco_report_layout_has_dummies_factors_and_global(telco_model):
    """The default (the report's ph_test.csv): every dummy, each multi-level factor jointly, GLOBAL."""
    ph = telco_model.check_proportional_hazards()
    assert list(ph.columns) == ["term_type", "covariate", "variable", "chi_square", "df", "p_value", "ph_violated",
                                "advice", "method"]
    assert list(ph["covariate"]) == [*TELCO_COLUMNS, "Contract", "PaymentMethod", "GLOBAL"]
    assert list(ph["term_type"]) == ["covariate"] * 8 + ["factor", "factor", "global"]
    np.testing.assert_allclose(_chisq(ph, ["Contract", "PaymentMethod", "GLOBAL"]),
                               [R_TELCO_TERMS_KM[0], R_TELCO_TERMS_KM[1], R_TELCO_TERMS_KM[5]], rtol=RTOL)
    row = ph.set_index("covariate").loc["Contract"]
    assert row["ph_violated"] and "stratify by 'Contract'" in row["advice"] and row["variable"] == "Contract"
    assert ph.set_index("covariate").loc["Contract_One year", "variable"] == "Contract"


@pytest.mark.realdata
def test_headline_effect_carries_the_ph_caveat(telco_model):
    """Contract = Two year is the clearest effect and fails the PH test (R: p = 2.0e-24 for Contract)."""
    ph = telco_model.check_proportional_hazards()
    head = telco_model.headline_effect(ph)
    assert head["covariate"] == "Contract_Two year" and head["ph_violated"]
    assert "but this effect changes over time (PH test p = 2e-24)" in head["text"]
    assert "customers with Contract = Two year churn at 0.02 times the rate of those with Contract = Month-to-month" \
        in head["text"]
    # the clearest significant effect that passes: PaperlessBilling (R: PH p = 0.346, Cox p = 1.4e-05)
    assert "Clearest effect constant over time: customers with PaperlessBilling: yes" in head["text"]
    assert " True" not in head["text"] and "p = 0 " not in head["text"]


# --------------------------------------------------------------------------- planted truths

def _piecewise_data(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    """x_drift: log HR +1 before t = 1, −1 after (a changing effect); x_const: log HR 0.5 throughout."""
    rng = np.random.default_rng(seed)
    x_drift = rng.integers(0, 2, n).astype(float)
    x_const = rng.normal(size=n)
    early = np.exp(1.0 * x_drift + 0.5 * x_const)
    late = np.exp(-1.0 * x_drift + 0.5 * x_const)
    e1 = rng.exponential(1 / early)
    t = np.where(e1 < 1, e1, 1 + rng.exponential(1 / late))
    c = rng.uniform(0.5, 4, n)
    return pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "x_drift": x_drift,
                         "x_const": x_const})


def test_planted_time_varying_effect_is_flagged_and_constant_one_is_not():
    df = _piecewise_data()
    model = sv.ChurnCoxModel().fit(df, "time", "event", ["x_drift", "x_const"])
    for transform in ("km", "rank", "log"):
        ph = model.check_proportional_hazards(transform=transform).set_index("covariate")
        assert ph.loc["x_drift", "p_value"] < 1e-6, transform
        assert ph.loc["x_const", "p_value"] > 0.05, transform
        assert ph.loc["GLOBAL", "ph_violated"]
    # the residual trend falls from about +1 towards −1 (β(t) of x_drift)
    res = model.ph_test("identity", terms=False)
    early = res.residuals["x_drift"][res.time < 0.5].mean()
    late = res.residuals["x_drift"][res.time > 1.5].mean()
    assert early > 0.6 and late < -0.2


def test_no_ties_breslow_equals_efron():
    """Without tied event times Efron and Breslow weighting are the same computation."""
    df = _piecewise_data(500, seed=5)
    X = df[["x_drift", "x_const"]]
    a = cox_zph(X, df["time"], df["event"], [0.3, 0.5], ties="efron").summary["chi_square"]
    b = cox_zph(X, df["time"], df["event"], [0.3, 0.5], ties="breslow").summary["chi_square"]
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_callable_transform_and_bad_input():
    df = _piecewise_data(800)
    X = df[["x_drift", "x_const"]]
    ident = cox_zph(X, df["time"], df["event"], [0.3, 0.5], transform="identity").summary
    func = cox_zph(X, df["time"], df["event"], [0.3, 0.5], transform=lambda t: 2 * t + 7)
    np.testing.assert_allclose(func.summary["chi_square"], ident["chi_square"], rtol=1e-10)  # g is centred
    assert func.transform == "user"
    sq = cox_zph(X, df["time"], df["event"], [0.3, 0.5], transform=np.sqrt)
    assert sq.transform == "sqrt" and "transform sqrt" in sq.method
    with pytest.raises(ParameterError, match="transform must be one of"):
        cox_zph(X, df["time"], df["event"], [0.3, 0.5], transform="loglog")
    with pytest.raises(ParameterError, match="positive times"):
        transform_time(np.array([0.0, 1.0]), np.array([1, 1]), "log")
    with pytest.raises(ParameterError, match="ties must be"):
        cox_zph(X, df["time"], df["event"], [0.3, 0.5], ties="exact")
    with pytest.raises(DataError, match="shapes do not agree"):
        cox_zph(X, df["time"], df["event"], [0.3])
    with pytest.raises(DataError, match="no events"):
        cox_zph(X, df["time"], np.zeros(len(df)), [0.3, 0.5])


def test_km_transform_is_one_minus_left_continuous_km():
    """R: 1 - c(1, survfitKM(...)$surv)[findInterval(times, km$time, left.open=TRUE) + 1]."""
    t = np.array([1, 2, 2, 3, 4, 4, 5], float)
    e = np.array([1, 1, 0, 1, 0, 1, 1])
    g, name = transform_time(t, e, "km")
    s1 = 1 - 1 / 7                      # Ŝ after t = 1
    s2 = s1 * (1 - 1 / 6)               # after t = 2 (one event of 6 at risk)
    s3 = s2 * (1 - 1 / 4)
    s4 = s3 * (1 - 1 / 3)
    np.testing.assert_allclose(g, 1 - np.array([1, s1, s1, s2, s3, s3, s4]))
    assert name == "km"


def test_p_text_never_reads_zero():
    assert p_text(0.0) == "p < 1e-300"
    assert p_text(1e-320) == "p < 1e-300"
    assert p_text(0.0123) == "p = 0.012"
    assert p_text(2.3e-41) == "p = 2.3e-41"


def test_level_labels_read_as_words():
    s = pd.Series([True, False, None], dtype="boolean")
    assert survival_plots.level_labels(s, "is_member").tolist() == ["members", "non-members", None]
    assert survival_plots.level_labels(pd.Series([0, 1]), "SeniorCitizen").tolist() == ["SeniorCitizen: no",
                                                                                       "SeniorCitizen: yes"]
    other = pd.Series(["Two year", "One year"])
    assert survival_plots.level_labels(other, "Contract") is other


def test_runs_on_200k_customers_in_seconds():
    """200,000 customers, 15 covariates, integer-day times (heavy ties): ~1 s on the dev machine."""
    rng = np.random.default_rng(0)
    n, p = 200_000, 15
    X = rng.normal(size=(n, p))
    beta = rng.normal(scale=0.2, size=p)
    t = np.ceil(rng.exponential(300 / np.exp(X @ beta)))
    e = (rng.random(n) < 0.6).astype(int)
    start = time.perf_counter()
    res = cox_zph(pd.DataFrame(X), t, e, beta)
    assert time.perf_counter() - start < 15
    assert len(res.summary) == p + 1 and res.residuals.shape == (int(e.sum()), p)
    # β̂ is the truth, not the MLE: still, no effect drifts, so GLOBAL is unremarkable
    assert res.summary["p_value"].iloc[-1] > 1e-3
