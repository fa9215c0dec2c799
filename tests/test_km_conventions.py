"""R's conventions in Kaplan-Meier (issue 15, part 3): interval types, the median and its interval,
and the 1/2 event coding of R's ``Surv`` in the customer-table path.

Reference numbers come from R 4.2.2 with survival 3.5.3 (``survfit``, ``summary(fit)$table``);
the R calls are quoted next to them. R is not called here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecrm_research.cli import main
from ecrm_research.exceptions import DataError, ParameterError
from ecrm_research.prep import churn as prep_churn
from ecrm_research.report.preflight import preflight
from ecrm_research.survival.kaplan_meier import greenwood_se, kaplan_meier, survival_median

CI_TYPES = ("log-log", "log", "plain")
NAN = float("nan")


def _check_rows(km, expected, tol=1e-10):
    """`expected`: (group, time, survival, (lower, upper) per type in CI_TYPES order) for km's ci_type."""
    t = km.table.set_index(["group", "time"])
    k = CI_TYPES.index(km.ci_type)
    for group, time, surv, *limits in expected:
        row = t.loc[(group, float(time))]
        lo, hi = limits[k]
        assert row["survival"] == pytest.approx(surv, abs=tol), (group, time)
        for got, want in ((row["ci_lower"], lo), (row["ci_upper"], hi)):
            if np.isnan(want):
                assert np.isnan(got), (group, time, km.ci_type, got)
            else:
                assert got == pytest.approx(want, abs=tol), (group, time, km.ci_type)


def _median_row(summary: pd.DataFrame, key) -> np.ndarray:
    return summary.loc[key, ["median", "median_ci_lower", "median_ci_upper"]].to_numpy(float)


# --------------------------------------------------------------------------- pointwise intervals

#: R: for (ct in c("log-log", "log", "plain"))
#:      survfit(Surv(week, arrest) ~ fin, data=rossi, conf.type=ct)   # $surv, $lower, $upper
#: (group, week, survival, log-log (lower, upper), log (lower, upper), plain (lower, upper))
ROSSI_R = [
    ("0", 1, 0.99537037037037, (0.967594249178681, 0.999346554659674), (0.986358535190068, 1.0),
     (0.98631749181677, 1.0)),
    ("0", 8, 0.962962962962963, (0.927308456199976, 0.981303908380536), (0.938104327781091, 0.98848032204665),
     (0.937777837118548, 0.988148088807378)),
    ("0", 20, 0.902777777777778, (0.85479223040506, 0.935499989101341), (0.864120976191761, 0.943163907027436),
     (0.86326892517043, 0.942286630385126)),
    ("0", 35, 0.805555555555556, (0.746206425621742, 0.852400118586847), (0.754467777831088, 0.860102673903327),
     (0.752775877883689, 0.858335233227422)),
    ("0", 52, 0.694444444444444, (0.628288307594275, 0.751190933456741), (0.635652505728589, 0.758674090125691),
     (0.633013801380761, 0.755875087508127)),
    ("1", 8, 0.981481481481482, (0.95141570852309, 0.993009159188492), (0.963666158039544, 0.999626157310336),
     (0.963502487359775, 0.999460475603188)),
    ("1", 20, 0.912037037037037, (0.865564185753626, 0.942969979641422), (0.875035896322516, 0.950602781466593),
     (0.874264393704663, 0.949809680369411)),
    ("1", 35, 0.86574074074074, (0.812591012601378, 0.904697064480678), (0.821447927521769, 0.912421840833561),
     (0.820274686416194, 0.911206795065286)),
    ("1", 52, 0.777777777777778, (0.716243778974065, 0.827580452505185), (0.724265218905511, 0.835244128551559),
     (0.722335288157148, 0.833220267398407)),
]

#: R: telco$ev <- as.integer(telco$Churn == "Yes")
#:    for (ct in ...) survfit(Surv(tenure, ev) ~ Contract, data=telco, conf.type=ct)
#: Tenure 0 is a real (censored) row; log-log is NA wherever S = 1 (R's survfit_confint).
TELCO_R = [
    ("Month-to-month", 1, 0.901935483870968, (0.892138057628675, 0.910887955508452),
     (0.89262004221994, 0.91134814208565), (0.892571602154345, 0.91129936558759)),
    ("Month-to-month", 12, 0.703096636348866, (0.687259357620823, 0.718304075430178),
     (0.687745033819113, 0.718790911945879), (0.687574958082937, 0.718618314614795)),
    ("Month-to-month", 24, 0.585915473904667, (0.567554236633079, 0.603789138932503),
     (0.56807214982958, 0.604319262375244), (0.567794806462956, 0.604036141346378)),
    ("Month-to-month", 72, 0.128951900614394, (0.0759447830994757, 0.196396271049966),
     (0.0805223399077135, 0.206509059363186), (0.0682278302183983, 0.18967597101039)),
    ("One year", 0, 1.0, (NAN, NAN), (1.0, 1.0), (1.0, 1.0)),
    ("One year", 12, 0.990808204074866, (0.984219530770167, 0.99465343150468),
     (0.985845304705972, 0.99579608745497), (0.985832833609998, 0.995783574539733)),
    ("One year", 48, 0.916546804158991, (0.897067155386497, 0.932479362724381),
     (0.89911483883052, 0.934316739012699), (0.898946935690439, 0.934146672627543)),
    ("One year", 72, 0.568145682028672, (0.446758066998985, 0.672522964750978),
     (0.465021813521188, 0.694138439579066), (0.454349764756573, 0.681941599300771)),
    ("Two year", 0, 1.0, (NAN, NAN), (1.0, 1.0), (1.0, 1.0)),
    ("Two year", 12, 1.0, (NAN, NAN), (1.0, 1.0), (1.0, 1.0)),
    ("Two year", 35, 0.998675965887269, (0.994715306215686, 0.999668768346951), (0.996843597941046, 1.0),
     (0.996841914870139, 1.0)),
    ("Two year", 72, 0.935738580646726, (0.913336129352771, 0.952500628924231),
     (0.916605761113085, 0.955270770115445), (0.916407451202328, 0.955069710091125)),
]


@pytest.fixture(scope="module")
def rossi(rossi_csv):
    return pd.read_csv(rossi_csv)


@pytest.fixture(scope="module")
def telco(telco_csv):
    return pd.read_csv(telco_csv)


@pytest.mark.realdata
@pytest.mark.parametrize("ci_type", CI_TYPES)
def test_rossi_intervals_match_r_survfit(rossi, ci_type):
    km = kaplan_meier(rossi, "week", "arrest", "fin", ci_type=ci_type)
    assert km.ci_type == ci_type
    _check_rows(km, ROSSI_R)
    t0 = km.table[km.table["time"] == 0]  # R's survfit0: time 0 added with S = lower = upper = 1
    assert len(t0) == 2 and (t0[["survival", "ci_lower", "ci_upper"]] == 1.0).all().all()
    # R: summary(fit)$table -> median, 0.95LCL, 0.95UCL all NA (survival stays above 0.69)
    assert km.summary[["median", "median_ci_lower", "median_ci_upper"]].isna().all().all()
    assert not km.summary["median_reached"].any()


@pytest.mark.realdata
@pytest.mark.parametrize("ci_type", CI_TYPES)
def test_telco_by_contract_intervals_and_medians_match_r_survfit(telco, ci_type):
    df = telco.assign(ev=(telco["Churn"] == "Yes").astype(int))
    km = kaplan_meier(df, "tenure", "ev", "Contract", ci_type=ci_type)
    _check_rows(km, TELCO_R)
    # R: summary(survfit(Surv(tenure, ev) ~ Contract, data=telco, conf.type=ct))$table, every ct:
    #    Month-to-month 35 (32, 38); One year NA (72, NA); Two year NA (NA, NA)
    s = km.summary.set_index("group")
    np.testing.assert_array_equal(_median_row(s, "Month-to-month"), [35.0, 32.0, 38.0])
    np.testing.assert_array_equal(_median_row(s, "One year"), [NAN, 72.0, NAN])
    np.testing.assert_array_equal(_median_row(s, "Two year"), [NAN, NAN, NAN])
    at = km.survival_at(12).set_index("group")  # survival_at reads the same interval type
    want = {g: lim[CI_TYPES.index(ci_type)] for g, time, _s, *lim in TELCO_R if time == 12}
    for g, (lo, hi) in want.items():
        np.testing.assert_allclose(at.loc[g, ["ci_lower", "ci_upper"]].to_numpy(float), [lo, hi], atol=1e-10)


#: R: survfit(Surv(c(1,2,2,3,4,5,6), c(0,1,1,0,1,1,1)) ~ 1, conf.type=ct): $lower, $upper at times 1..6
#: (S = 1 at t = 1 (a censoring), S = 0 at t = 6; NA and NaN printed as nan)
SMALL_R = {
    "log": ([1.0, 0.3786065, 0.3786065, 0.1668079, 0.0407029, NAN], [1, 1, 1, 1, 1, NAN]),
    "log-log": ([NAN, 0.194616637, 0.194616637, 0.066186753, 0.009569137, NAN],
                [NAN, 0.9044342, 0.9044342, 0.7849084, 0.6147205, NAN]),
    "plain": ([1.0, 0.289471422, 0.289471422, 0.008896892, 0.0, NAN], [1.0, 1.0, 1.0, 0.8799920, 0.5994175, NAN]),
}


@pytest.mark.parametrize("ci_type", CI_TYPES)
def test_limits_at_survival_one_and_zero_follow_r(ci_type):
    """NA where R gives NA: log-log at S = 1 and S = 0; log and plain at S = 0. Plain is clipped to
    [0, 1] and the log upper limit capped at 1. Median 4, 0.95LCL 2, 0.95UCL NA for every type."""
    df = pd.DataFrame({"duration": [1, 2, 2, 3, 4, 5, 6], "event": [0, 1, 1, 0, 1, 1, 1]})
    km = kaplan_meier(df, ci_type=ci_type)
    t = km.table[km.table["time"] > 0]
    lo, hi = SMALL_R[ci_type]
    np.testing.assert_allclose(t["ci_lower"].to_numpy(), lo, atol=5e-8)  # R printed to 7 digits
    np.testing.assert_allclose(t["ci_upper"].to_numpy(), hi, atol=5e-8)
    np.testing.assert_array_equal(_median_row(km.summary, 0), [4.0, 2.0, NAN])


def test_greenwood_se_is_rs_std_err():
    """R: survfit(Surv(c(1,2,2,3,4,5,6), c(0,1,1,0,1,1,1)) ~ 1)$std.err = 0, .2886751, .2886751, .5, .8660254, Inf."""
    se = greenwood_se([7, 6, 4, 3, 2, 1], [0, 2, 0, 1, 1, 1])
    np.testing.assert_allclose(se, [0, 0.2886751, 0.2886751, 0.5, 0.8660254, np.inf], atol=5e-8)


def test_unknown_ci_type_is_a_parameter_error():
    df = pd.DataFrame({"duration": [1, 2], "event": [1, 0]})
    with pytest.raises(ParameterError, match=r"ci_type='logit'.*'log-log', 'log', 'plain'") as e:
        kaplan_meier(df, ci_type="logit")
    assert e.value.allowed == ["log-log", "log", "plain"]


def test_default_stays_log_log():
    df = pd.DataFrame({"duration": [1, 2, 2, 3, 4, 5, 6], "event": [0, 1, 1, 0, 1, 1, 1]})
    assert kaplan_meier(df).ci_type == "log-log"
    assert kaplan_meier(df).table["ci_upper"].iloc[2] == pytest.approx(0.9044342, abs=5e-8)


# --------------------------------------------------------------------------- the median and its interval

def test_median_on_an_exact_half_plateau_is_its_midpoint():
    """R: print(survfit(Surv(c(1,2,3,4), c(1,1,1,1)) ~ 1)) -> median 2.5, 0.95LCL 1, 0.95UCL NA."""
    km = kaplan_meier(pd.DataFrame({"duration": [1, 2, 3, 4], "event": [1, 1, 1, 1]}), ci_type="log")
    np.testing.assert_array_equal(_median_row(km.summary, 0), [2.5, 1.0, NAN])
    assert bool(km.summary.loc[0, "median_reached"])


#: R: d <- data.frame(t=c(1,2,3,4,5,6,7,8, 2,3,3,5,6,8,9,11,12,12,14,15,17,20,22,25,30,30),
#:                    e=c(1,1,1,1,0,0,0,0, 1,1,0,1,1,1,0,1,1,1,0,1,1,0,1,1,0,0), g=rep(c("A","B"), c(8,18)))
#:    summary(survfit(Surv(t, e) ~ g, data=d, conf.type=ct))$table[, c("median", "0.95LCL", "0.95UCL")]
PLATEAU_R = {"log": {"A": (4, 3, NAN), "B": (15, 11, NAN)},
             "log-log": {"A": (4, 1, NAN), "B": (15, 6, 25)},
             "plain": {"A": (4, 2, NAN), "B": (15, 8, 25)}}


@pytest.mark.parametrize("ci_type", CI_TYPES)
def test_median_and_its_interval_by_type_match_r_summary_table(ci_type):
    t = [1, 2, 3, 4, 5, 6, 7, 8, 2, 3, 3, 5, 6, 8, 9, 11, 12, 12, 14, 15, 17, 20, 22, 25, 30, 30]
    e = [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0]
    df = pd.DataFrame({"t": t, "e": e, "g": ["A"] * 8 + ["B"] * 18})
    s = kaplan_meier(df, "t", "e", "g", ci_type=ci_type).summary.set_index("group")
    for g, want in PLATEAU_R[ci_type].items():
        np.testing.assert_array_equal(_median_row(s, g), np.asarray(want, float))


def test_half_plateau_to_the_end_gives_its_start_as_r_print():
    """A: S = 0.5 from t = 4 to the last observation (8). R's print/summary table give 4 (R's
    quantile(fit, 0.5) would give (4 + 8) / 2 = 6; the table's rule is the one followed)."""
    assert survival_median(np.arange(1, 9.0), [0.875, 0.75, 0.625, 0.5, 0.5, 0.5, 0.5, 0.5]) == 4.0
    assert survival_median(np.arange(1, 5.0), [0.75, 0.5, 0.5, 0.25]) == 3.0
    assert np.isnan(survival_median(np.arange(1, 4.0), [0.9, 0.8, 0.6]))
    assert survival_median(np.arange(1, 4.0), [NAN, 0.4, NAN]) == 2.0


def test_one_subject_group_has_no_median_interval():
    """R: summary(survfit(Surv(c(118,5,6,7), c(1,1,0,1)) ~ c("a","b","b","b")))$table ->
    a: median 118, 0.95LCL NA, 0.95UCL NA; b: 7, 5, NA (log; the same for log-log and plain)."""
    df = pd.DataFrame({"d": [118, 5, 6, 7], "e": [1, 1, 0, 1], "g": ["a", "b", "b", "b"]})
    for ci_type in CI_TYPES:
        s = kaplan_meier(df, "d", "e", "g", ci_type=ci_type).summary.set_index("group")
        np.testing.assert_array_equal(_median_row(s, "a"), [118.0, NAN, NAN])
        np.testing.assert_array_equal(_median_row(s, "b"), [7.0, 5.0, NAN])


# --------------------------------------------------------------------------- event coding 1/2 (R's Surv)

@pytest.mark.parametrize("values, coding, expected", [
    ([1, 2, 2, 1], "1/2", [0, 1, 1, 0]),
    ([2, 2], "1/2", [1, 1]),            # R: largest value 2 -> 1/2 coding
    ([1, 1], "0/1", [1, 1]),            # R: all 1 is 0/1 coding (every subject churned)
    ([1.0, np.nan, 2.0], "1/2", [0, np.nan, 1]),
    (["1", "2", " 2 ", ""], "1/2", [0, 1, 1, np.nan]),
    (["0", "1"], "0/1", [0, 1]),
    (["Yes", "no"], "yes/no", [1, 0]),
    ([True, False], "true/false", [1, 0]),
])
def test_event_codings_accepted(values, coding, expected):
    s = pd.Series(values)
    assert prep_churn.event_coding(s, "Churn") == coding
    np.testing.assert_array_equal(prep_churn.coerce_event(s, "Churn").to_numpy(), np.asarray(expected, float))


@pytest.mark.parametrize("values, shown", [
    ([0, 1, 2, 1, 1, 2], r"1 \(3\), 2 \(2\), 0 \(1\)"),
    ([3, 4, 4], r"4 \(2\), 3 \(1\)"),
    (["0", "1", "2"], r"'0' \(1\), '1' \(1\), '2' \(1\)"),
    (["yes", "lost", "lost"], r"'lost' \(2\), 'yes' \(1\)"),
])
def test_other_codings_are_a_data_error_with_counts_and_the_recode_hint(values, shown):
    with pytest.raises(DataError, match=shown + r".*map the values to 0/1 \(1 = churned.*1/2 \(2 = churned"
                                      r".*R's Surv") as e:
        prep_churn.coerce_event(pd.Series(values), "Churn", source="customers.csv")
    assert str(e.value).startswith("customers.csv: event column 'Churn'")
    assert e.value.column == "Churn" and e.value.n_rows == len(values)


@pytest.mark.realdata
def test_telco_coded_1_2_gives_the_0_1_results_and_says_so(telco):
    yes_no = prep_churn.prepare_customer_table(telco, "tenure", "Churn", covariates=["Contract"], unit="months")
    coded = telco.assign(Churn=telco["Churn"].map({"Yes": 2, "No": 1}))
    r12 = prep_churn.prepare_customer_table(coded, "tenure", "Churn", covariates=["Contract"], unit="months")
    zero_one = prep_churn.prepare_customer_table(coded.assign(Churn=coded["Churn"] - 1), "tenure", "Churn",
                                                 covariates=["Contract"], unit="months")
    pd.testing.assert_frame_equal(r12.frame, zero_one.frame)
    pd.testing.assert_frame_equal(r12.frame, yes_no.frame)
    acct = r12.accounting.set_index("step")
    assert acct.loc["churned (event = 1)", "customers"] == 1869
    assert acct.loc["right-censored (event = 0)", "customers"] == 5163  # 7,043 − 11 with tenure 0 − 1,869
    assert acct.loc["churned (event = 1)", "note"] == "Churn = 2 (coded 1/2 as in R's Surv)"
    assert acct.loc["right-censored (event = 0)", "note"].startswith("Churn = 1: ")
    assert "Event column 'Churn' coded 1/2 as in R's Surv: 2 = churned (1,869), 1 = censored (5,163)." \
        in r12.definition
    assert "coded 0/1: 1 = churned (1,869), 0 = censored (5,163)." in zero_one.definition
    assert "coded yes/no: yes = churned (1,869)" in yes_no.definition
    a = kaplan_meier(r12.frame, group_col="Contract", ci_type="log")
    b = kaplan_meier(zero_one.frame, group_col="Contract", ci_type="log")
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.summary, b.summary)


def _customers_csv(folder, churn):
    n = len(churn)
    df = pd.DataFrame({"customerID": [f"c{i:03d}" for i in range(n)], "tenure": np.arange(1, n + 1) % 40 + 1,
                       "plan": np.where(np.arange(n) % 2, "basic", "plus"), "Churn": churn})
    p = folder / "customers.csv"
    df.to_csv(p, index=False)
    return p


def test_cli_refuses_a_0_1_2_event_column_in_the_preflight_with_exit_2(tmp_path, capsys):
    churn = [0, 1, 2] * 20 + [1] * 5
    p = _customers_csv(tmp_path, churn)
    out = tmp_path / "out"
    code = main(["run", "churn", "--data", str(p), "--data-format", "customers", "-p", "duration_col", "tenure",
                 "-p", "event_col", "Churn", "--out", str(out), "--no-progress", "--no-pdf"])
    err = capsys.readouterr().err
    assert code == 2
    assert "customers.csv: event column 'Churn'" in err
    assert "1 (25), 0 (20), 2 (20)" in err
    assert "map the values to 0/1 (1 = churned, 0 = still a customer) or 1/2 (2 = churned" in err
    assert "Traceback" not in err
    assert not (out / "churn").exists()  # stopped before any kernel


def test_preflight_accepts_a_1_2_event_column(tmp_path):
    p = _customers_csv(tmp_path, [1, 2] * 30)
    checked = preflight("churn", {"data": str(p), "data_format": "customers", "duration_col": "tenure",
                                  "event_col": "Churn"})
    assert checked.names == ["churn"] and checked.data_format == "customers"
