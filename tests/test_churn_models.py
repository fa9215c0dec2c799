"""Churn-risk model comparison (customer_view.churn_models): metrics against independent implementations,
planted truths, no look-ahead, determinism, the sample and UCI Online Retail."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from ecrm_research import prep
from ecrm_research.customer_view import plots as cv_plots
from ecrm_research.customer_view.churn_models import (
    MODELS,
    ChurnModelComparison,
    auc_score,
    brier_score,
    calibration_table,
    churn_cutoffs,
    churn_frame,
    gains_table,
    top_decile_lift,
)
from ecrm_research.exceptions import AnalysisError, ParameterError
from ecrm_research.paths import MAPPINGS_DIR
from ecrm_research.prep.customers import resolve_as_of

matplotlib.use("Agg")


# ---------------------------------------------------------------------------------------------- helpers
def simulated_shop(n: int = 2000, days: int = 730, seed: int = 1) -> dict[str, pd.DataFrame]:
    """A shop where customers buy at a personal Poisson rate until an exponential lifetime ends:
    whoever has not ordered for long has probably left, so recency drives churn."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2022-01-01")
    rows = []
    for i in range(n):
        t = rng.uniform(0, 300)
        death = t + rng.exponential(250)
        rate = rng.lognormal(np.log(1 / 20), 0.5)
        while t < min(death, days):
            rows.append((f"C{i:05d}", t))
            t += rng.exponential(1 / rate)
    cust, t = zip(*rows)
    orders = pd.DataFrame({"order_id": [f"O{k:07d}" for k in range(len(rows))], "customer_id": list(cust),
                           "ordered_at": start + pd.to_timedelta(np.asarray(t), unit="D"), "status": "completed"})
    items = pd.DataFrame({"order_id": orders["order_id"], "line_no": 1, "product_id": "P1",
                          "quantity": rng.integers(1, 4, len(orders)).astype(float),
                          "unit_price": rng.uniform(5, 50, len(orders)).round(2)})
    return {"orders": orders, "order_items": items,
            "customers": pd.DataFrame({"customer_id": sorted(set(cust))})}


def interaction_frame(n: int, seed: int, horizon: int = 90) -> pd.DataFrame:
    """Churn decided by the sign of x1·x2 (an XOR): no single feature, and no linear score, separates it."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.uniform(-1, 1, (3, n))
    churned = (rng.uniform(size=n) < np.where(x1 * x2 > 0, 0.85, 0.15)).astype(float)
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "x1": x1, "x2": x2, "x3": x3,
                          "churned": churned,
                          "days_to_next_order": np.where(churned == 1, horizon, rng.integers(1, horizon + 1, n))})
    frame.attrs["horizon_days"] = horizon
    return frame


@pytest.fixture(scope="module")
def shop():
    return simulated_shop()


@pytest.fixture(scope="module")
def sample_tables():
    p = prep.engine("pandas")
    return p.clean(p.load(None, None, None)).tables


def compare(tables, horizon=90, **kw):
    as_of = resolve_as_of(tables["orders"])
    train_cut, test_cut = churn_cutoffs(as_of, horizon)
    train, test = churn_frame(tables, train_cut, horizon), churn_frame(tables, test_cut, horizon)
    return ChurnModelComparison(**kw).fit(train).evaluate(test), train, test


# ---------------------------------------------------------------------------------------------- metrics
def test_auc_matches_sklearn_and_a_pairwise_count():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.3, 0.3, 0.9, 0.2, 0.7, 0.3, 0.6, 0.05])  # ties across classes at 0.3
    pairs = [(i, j) for i, j in itertools.product(range(10), range(10)) if y[i] == 1 and y[j] == 0]
    brute = sum(1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0 for i, j in pairs) / len(pairs)
    assert auc_score(y, p) == pytest.approx(brute, abs=1e-12)
    assert brute == pytest.approx(0.84)  # 21 of 25 pairs (two ties count ½): 5 + 3.5 + 5 + 3.5 + 4
    rng = np.random.default_rng(3)
    y2, p2 = rng.integers(0, 2, 500), rng.normal(size=500).round(1)  # many ties
    assert auc_score(y2, p2) == pytest.approx(roc_auc_score(y2, p2), abs=1e-12)
    assert np.isnan(auc_score(np.zeros(5), np.arange(5)))


def test_brier_lift_calibration_and_gains_by_hand():
    rng = np.random.default_rng(4)
    y, p = rng.integers(0, 2, 300), rng.uniform(size=300)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    # 20 customers, 5 churners; top decile = the 2 highest scores: one churner → rate 0.5 / 0.25 = 2
    y = np.array([1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0])
    p = np.linspace(0.95, 0.0, 20)
    assert top_decile_lift(y, p) == pytest.approx((1 / 2) / (5 / 20))
    cal = calibration_table(y, p)
    assert list(cal["n"]) == [2] * 10
    assert cal["observed"].iloc[-1] == 0.5 and cal["mean_predicted"].iloc[-1] == pytest.approx((0.95 + 0.9) / 2)
    g = gains_table(y, p, steps=10)
    assert g["share_of_churners"].iloc[0] == 0 and g["share_of_churners"].iloc[-1] == 1
    assert g["share_of_churners"].iloc[2] == pytest.approx(2 / 5)  # top 4 hold churners 1 and 4


# ---------------------------------------------------------------------------------------------- frames
def test_churn_frame_has_no_look_ahead(sample_tables):
    cutoff = pd.Timestamp("2024-06-01")
    before = churn_frame(sample_tables, cutoff, 90)
    changed = {k: v.copy() for k, v in sample_tables.items()}
    o = changed["orders"]
    after = pd.to_datetime(o["ordered_at"]) >= cutoff
    late_ids = set(o.loc[after, "order_id"])
    changed["orders"] = o[~after | (np.arange(len(o)) % 2 == 0)].copy()  # drop half the later orders
    changed["orders"].loc[after & (np.arange(len(o)) % 4 == 0), "delivery_days"] = 99.0  # later deliveries
    it = changed["order_items"]
    it.loc[it["order_id"].isin(late_ids), "unit_price"] *= 10  # later prices
    sc = changed["service_contacts"]
    changed["service_contacts"] = sc[pd.to_datetime(sc["contacted_at"]) < cutoff]
    now = churn_frame(changed, cutoff, 90)
    feats = [c for c in before.columns if c not in ("churned", "days_to_next_order")]
    pd.testing.assert_frame_equal(before[feats], now[feats])
    assert (before["churned"] != now["churned"]).any()  # the outcome does see the change


def test_churn_frame_outcome_and_unknown_future(shop):
    cutoff = pd.Timestamp("2023-06-01")
    f = churn_frame(shop, cutoff, 60)
    o = shop["orders"]
    nxt = o[(o["ordered_at"] >= cutoff) & (o["ordered_at"] < cutoff + pd.Timedelta(days=60))]
    assert set(f.loc[f["churned"] == 0, "customer_id"]) == set(nxt["customer_id"])
    assert f["days_to_next_order"].between(1, 60).all()
    assert (f.loc[f["churned"] == 1, "days_to_next_order"] == 60).all()
    assert set(f["customer_id"]) == set(o.loc[o["ordered_at"] < cutoff, "customer_id"])
    late = churn_frame(shop, resolve_as_of(o), 60)
    assert late["churned"].isna().all()


def test_parameter_errors(shop):
    as_of = resolve_as_of(shop["orders"])
    train_cut, _ = churn_cutoffs(as_of, 400)
    with pytest.raises(ParameterError, match="too long"):
        churn_frame(shop, train_cut, 400)
    with pytest.raises(ParameterError, match="positive"):
        churn_cutoffs(as_of, 0)
    f = interaction_frame(200, 0)
    with pytest.raises(ParameterError, match="no churners"):
        ChurnModelComparison().fit(f.assign(churned=0.0))
    with pytest.raises(ParameterError, match="only churners"):
        ChurnModelComparison().fit(f.assign(churned=1.0))
    with pytest.raises(ParameterError, match="unknown"):
        ChurnModelComparison().fit(churn_frame(shop, as_of, 60))
    with pytest.raises(ParameterError, match="Unknown churn models"):
        ChurnModelComparison(models=["svm"])


# ---------------------------------------------------------------------------------------------- planted truths
def test_recency_driven_shop_all_models_good_and_logistic_as_good(shop):
    cmp_, _, test = compare(shop, 60, n_bootstrap=100)
    s = cmp_.summary_.set_index("model")
    assert list(s.index) == list(MODELS)
    assert (s["auc"] > 0.7).all(), s
    assert ((s["auc_ci_lower"] <= s["auc"]) & (s["auc"] <= s["auc_ci_upper"])).all()
    assert cmp_.verdict_.startswith("The simple model is as good as the complex ones")
    d = cmp_.auc_differences_.set_index("model")
    assert (d["auc_difference"] < 0.01).all()
    p = cmp_.predict_proba(test, "cox")
    assert p.between(0, 1).all() and p.index.equals(test.index)


def test_interaction_gradient_boosting_wins():
    cmp_ = ChurnModelComparison(models=["logistic", "gradient_boosting"], n_bootstrap=100)
    cmp_.fit(interaction_frame(3000, 1)).evaluate(interaction_frame(3000, 2))
    s = cmp_.summary_.set_index("model")
    assert s.loc["logistic", "auc"] < 0.6
    assert s.loc["gradient_boosting", "auc"] > 0.75
    d = cmp_.auc_differences_.set_index("model").loc["gradient_boosting"]
    assert d["auc_difference"] > 0.15 and d["ci_lower"] > 0.1
    assert cmp_.verdict_.startswith("The complex model is better: the gradient boosting")
    assert cmp_.best_model_ == "gradient_boosting"


def test_same_seed_same_summary(shop):
    a, _, _ = compare(shop, 60, n_bootstrap=50, random_state=7)
    b, _, _ = compare(shop, 60, n_bootstrap=50, random_state=7)
    pd.testing.assert_frame_equal(a.summary_, b.summary_)
    assert a.verdict_ == b.verdict_


def test_plots_draw_from_the_tables(shop):
    cmp_, _, _ = compare(shop, 60, models=["logistic", "gradient_boosting"], n_bootstrap=20)
    ax = cv_plots.plot_calibration(cmp_)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["perfect calibration", "logistic regression", "gradient boosting"]
    assert ax.xaxis.label.get_fontsize() >= 8
    ax = cv_plots.plot_gains(cmp_)
    assert "random targeting" in [t.get_text() for t in ax.get_legend().get_texts()]
    line = ax.get_lines()[1]
    assert np.allclose(line.get_ydata(), cmp_.gains_.query("model == 'logistic'")["share_of_churners"])


# ---------------------------------------------------------------------------------------------- real data
def test_sample_comparison(sample_tables):
    # measured (seed 0, 200 resamples, horizon 90, test cut-off 2024-10-02, 4,871 customers, 48.5% churn):
    # AUC cox 0.951, logistic 0.950, gradient boosting 0.951, MLP 0.940; Brier 0.079 / 0.072 / 0.074 / 0.085
    cmp_, train, test = compare(sample_tables)
    s = cmp_.summary_.set_index("model")
    assert (s["auc"] > 0.9).all()
    assert ((s["auc_ci_lower"] <= s["auc"]) & (s["auc"] <= s["auc_ci_upper"])).all()
    assert (s["top_decile_lift"] > 1.9).all()  # max possible = 1 / 0.485 = 2.06
    assert cmp_.best_model_ == "logistic" and s.loc["logistic", "brier"] == pytest.approx(0.072, abs=0.005)
    assert "as good as" in cmp_.verdict_
    # planted truth: members churn less (hazard ratio 0.6), a late first delivery more (1.8)
    logit = cmp_.estimators_["logistic"][-1].coef_[0]
    coef = dict(zip(cmp_.features_, logit))
    assert coef["is_member"] < 0 and coef["first_order_late"] > 0
    now = churn_frame(sample_tables, resolve_as_of(sample_tables["orders"]), 90)
    p = cmp_.refit(test).predict_proba(now)
    assert p.between(0, 1).all() and len(p) == 5000


@pytest.mark.realdata
def test_online_retail_comparison(online_retail_parquet):
    # measured (seed 0, horizon 90, test cut-off 2011-09-11, 3,370 customers, 43.0% churn):
    # AUC logistic 0.735, cox 0.728 (paired difference −0.007, CI −0.010 to −0.003)
    p = prep.engine("pandas")
    tables = p.clean(p.load(str(online_retail_parquet), None, str(MAPPINGS_DIR / "online_retail.yaml"))).tables
    cmp_, _, test = compare(tables)
    s = cmp_.summary_.set_index("model")
    assert (s["auc"] > 0.65).all(), s
    assert ((s["auc_ci_lower"] <= s["auc"]) & (s["auc"] <= s["auc_ci_upper"])).all()
    assert (s["brier"] < 0.25).all()  # better than a constant ½
    assert (s["top_decile_lift"] > 1.3).all()  # measured 1.46–1.53 (max possible 1 / 0.43 = 2.33)
    assert cmp_.predict_proba(test, "cox").between(0, 1).all()


def test_backtest_plot_draws_each_method_with_its_interval():
    bt = pd.DataFrame({"method": ["rules", "rules", "popularity", "popularity"], "k": [1, 3, 1, 3],
                       "hit_rate": [0.2, 0.4, 0.1, 0.3], "hit_rate_ci_lower": [0.15, 0.35, 0.05, 0.25],
                       "hit_rate_ci_upper": [0.25, 0.45, 0.15, 0.35]})
    ax = cv_plots.plot_backtest(bt)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rules", "popularity"]
    assert [round(x, 6) for x in ax.get_lines()[0].get_xdata()] == [0.85, 2.85]  # offsets keep CIs apart
    assert list(ax.get_lines()[0].get_ydata()) == [0.2, 0.4] and ax.xaxis.label.get_fontsize() >= 8
    with pytest.raises(AnalysisError, match="missing columns"):
        cv_plots.plot_backtest(bt.drop(columns="hit_rate_ci_lower"))
