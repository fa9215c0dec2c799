"""Figures of the churn notebook (ecrm_research.survival.plots): censoring marks on Kaplan-Meier
curves as R's plot.survfit / survminer draw them, the number-at-risk table, labelled reference
lines, legends outside the data and print-size fonts (report.figure_quality)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ecrm_research.exceptions import ParameterError
from ecrm_research.report.figure_quality import figure_problems
from ecrm_research.survival import kaplan_meier
from ecrm_research.survival import plots as sp

matplotlib.use("Agg")  # tests only: no display (notebooks never set a backend; the runner does)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _planted() -> pd.DataFrame:
    """Two small groups with known censoring times.

    a: 1 (churn), 2 (censored), 3 (churn), 4 (censored)   -> Ŝ = 0.75 from t=1, 0.375 from t=3
    b: 1 (censored), 2 (churn), 5 (churn), 6 (censored), 6 (censored)
       -> Ŝ(2) = 1 - 1/4 = 0.75, Ŝ(5) = 0.75 · (1 - 1/3) = 0.5; two censored at t=6
    """
    return pd.DataFrame({
        "duration": [1, 2, 3, 4, 1, 2, 5, 6, 6],
        "event": [1, 0, 1, 0, 0, 1, 1, 0, 0],
        "grp": ["a"] * 4 + ["b"] * 5,
    })


def _censor_lines(ax):
    return {ln: ln for ln in ax.get_lines() if ln.get_gid() == sp.CENSOR_GID}


def _legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def _risk_table(ax):
    tabs = [a for a in ax.figure.axes if a.get_gid() == sp.RISK_TABLE_GID]
    assert len(tabs) == 1
    return tabs[0]


def test_km_censor_marks_sit_at_the_planted_censored_times():
    km = kaplan_meier(_planted(), group_col="grp")
    ax = sp.plot_km(km)
    lines = list(_censor_lines(ax))
    assert len(lines) == 2  # one mark line per group with censoring
    curves = {ln.get_gid(): ln.get_color() for ln in ax.get_lines() if str(ln.get_gid()).startswith("km-curve:")}
    by_colour = {ln.get_color(): ln for ln in lines}
    a, b = by_colour[curves["km-curve:a"]], by_colour[curves["km-curve:b"]]
    for ln in (a, b):
        assert ln.get_marker() == "+" and ln.get_linestyle() == "None"
    np.testing.assert_allclose(a.get_xdata(), [2, 4])
    np.testing.assert_allclose(a.get_ydata(), [0.75, 0.375])  # on the curve, after the drop at t=1 / t=3
    np.testing.assert_allclose(b.get_xdata(), [1, 6])  # t=6 holds two censored customers: one mark
    np.testing.assert_allclose(b.get_ydata(), [1.0, 0.5])


def test_km_legend_has_groups_censored_and_labelled_median_line():
    km = kaplan_meier(_planted(), group_col="grp")
    ax = sp.plot_km(km)
    texts = _legend_texts(ax)
    assert texts == ["a (n=4)", "b (n=5)", "median: Ŝ(t) = 0.5", "censored"]
    censored = ax.get_legend().legend_handles[-1]
    assert censored.get_marker() == "+"
    median = [ln for ln in ax.get_lines() if ln.get_label() == "median: Ŝ(t) = 0.5"]
    assert len(median) == 1 and set(median[0].get_ydata()) == {0.5}
    # legend outside the axes (to the right), so it never covers a curve
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(r).x0 >= ax.get_window_extent(r).x1


def test_km_without_censoring_has_no_marks_and_no_censored_entry():
    df = pd.DataFrame({"duration": [1, 2, 3, 4, 5], "event": [1, 1, 1, 1, 1]})
    km = kaplan_meier(df)
    ax = sp.plot_km(km)
    assert not _censor_lines(ax)
    assert "censored" not in _legend_texts(ax)
    assert "median: Ŝ(t) = 0.5" in _legend_texts(ax)


def test_km_censor_marks_can_be_switched_off():
    km = kaplan_meier(_planted(), group_col="grp")
    ax = sp.plot_km(km, censored=False, at_risk_counts=False)
    assert not _censor_lines(ax) and "censored" not in _legend_texts(ax)
    assert len(ax.figure.axes) == 1  # no risk table either


def test_censor_marks_are_thinned_to_one_per_bin_for_large_groups():
    rng = np.random.default_rng(7)
    n = 3000
    df = pd.DataFrame({"duration": rng.integers(1, 1000, n).astype(float), "event": rng.random(n) < 0.3})
    km = kaplan_meier(df)
    curve = km.table
    every = sp.censor_marks(curve, max_marks=None)
    assert len(every) == (curve["censored"] > 0).sum() > 500  # one per distinct censoring time
    thin = sp.censor_marks(curve, max_marks=40)
    assert 30 <= len(thin) <= 40
    assert set(thin["time"]) <= set(every["time"])  # marks only where customers were censored
    assert thin["censored"].sum() == curve["censored"].sum()  # every censored customer in some bin
    assert thin["time"].is_monotonic_increasing
    # and the drawn marks are the thinned ones
    ax = sp.plot_km(km, max_marks=40, at_risk_counts=False)
    (line,) = _censor_lines(ax)
    np.testing.assert_allclose(line.get_xdata(), thin["time"])
    np.testing.assert_allclose(line.get_ydata(), thin["survival"])


def test_censor_marks_rejects_a_zero_cap():
    km = kaplan_meier(_planted(), group_col="grp")
    with pytest.raises(ParameterError, match="max_marks"):
        sp.censor_marks(km.table[km.table["group"] == "a"], max_marks=0)


def test_risk_table_shows_the_numbers_at_risk_at_the_ticks():
    km = kaplan_meier(_planted(), group_col="grp")
    ax = sp.plot_km(km)
    tab = _risk_table(ax)
    assert tab.get_title(loc="left") == "Number at risk"
    assert [t.get_text() for t in tab.get_yticklabels()] == ["a", "b"]
    # at time t: customers with duration >= t (a: 1,2,3,4; b: 1,2,5,6,6)
    expected = {"a": {0: 4, 1: 4, 2: 3, 3: 2, 4: 1, 5: 0, 6: 0}, "b": {0: 5, 1: 5, 2: 4, 3: 3, 4: 3, 5: 3, 6: 2}}
    shown = {}
    for t in tab.texts:
        group = "a" if t.get_position()[1] == 1 else "b"  # first group on the top row
        shown.setdefault(group, {})[float(t.get_position()[0])] = int(t.get_text().replace(",", ""))
    assert shown["a"] and shown["b"]
    for group, at in shown.items():
        for time, n in at.items():
            assert float(time).is_integer() and n == expected[group][int(time)], (group, time, n)


def test_number_at_risk_counts_customers_still_observed():
    km = kaplan_meier(_planted(), group_col="grp")
    b = km.table[km.table["group"] == "b"]
    assert sp.number_at_risk(b, [0, 1, 1.5, 2, 5.5, 6, 7]).tolist() == [5, 5, 4, 4, 2, 2, 0]


def test_forest_plot_labels_the_reference_line_and_the_colours():
    summary = pd.DataFrame({"covariate": ["late", "member", "region_x"], "hazard_ratio": [1.6, 0.6, 1.02],
                            "ci_lower": [1.4, 0.5, 0.9], "ci_upper": [1.9, 0.7, 1.15],
                            "p_value": [1e-8, 1e-6, 0.7]})
    ax = sp.plot_forest(summary)
    ref = [ln for ln in ax.get_lines() if ln.get_label() == "HR = 1: no effect"]
    assert len(ref) == 1 and set(ref[0].get_xdata()) == {1.0}
    assert _legend_texts(ax) == ["HR = 1: no effect", "churn sooner (p < 0.05)", "churn later (p < 0.05)",
                                 "not significant (p ≥ 0.05)"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["member", "region_x", "late"]  # sorted by HR
    # plain tick labels on the log axis (1, 0.5, 2 ...), never 10^0
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "1" in labels and all("10^" not in s and "$" not in s for s in labels)
    assert all(float(s) > 0 for s in labels)


def test_hazard_ratio_ticks_are_round_and_spaced():
    ticks = sp.hazard_ratio_ticks(0.13, 2.1)
    assert 1.0 in ticks and {0.2, 0.5, 2.0} <= set(ticks)
    logs = np.log10(ticks)
    assert np.min(np.diff(logs)) / (np.log10(2.1) - np.log10(0.13)) >= 0.09
    assert sp.hazard_ratio_ticks(0.9, 1.1) == [0.9, 1.0, 1.1]
    assert sp.hazard_ratio_ticks(np.nan, 2) == [1.0]


def test_campaign_figures_label_break_even_lines():
    at_risk = pd.DataFrame({"customer_id": list("abcdef"), "churn_probability": [0.7, 0.6, 0.3, 0.2, 0.1, 0.05]})
    at_risk.attrs["horizon"] = 90
    ax = sp.plot_churn_probability(at_risk, threshold=0.5, unit="days")
    assert "break-even: 0.50" in _legend_texts(ax)
    assert ax.get_xlabel() == "churn probability within 90 days"
    curve = pd.DataFrame({"contacted": np.arange(1, 7), "net_gain": np.cumsum([0.08, 0.04, -0.08, -0.12, -0.16, -0.18])})
    ax2 = sp.plot_campaign(curve, recommended=2)
    assert _legend_texts(ax2) == ["cumulative net gain", "break-even (no gain)", "contact the top 2"]
    zero = [ln for ln in ax2.get_lines() if ln.get_label() == "break-even (no gain)"]
    assert set(zero[0].get_ydata()) == {0}


def test_long_group_names_are_wrapped_in_the_legend():
    df = _planted().assign(grp=lambda d: d["grp"].map({"a": "customers whose first delivery was late",
                                                      "b": "customers whose first delivery was on time"}))
    ax = sp.plot_km(kaplan_meier(df, group_col="grp"))
    assert all(max(len(line) for line in t.split("\n")) <= sp.WRAP for t in _legend_texts(ax))


@pytest.mark.parametrize("build", ["km", "km_long_names", "forest", "campaign"])
def test_figures_are_readable_at_print_size(build):
    """report.figure_quality: every text prints at >= 8 pt on A4, no overlapping labels, legends off the data."""
    if build == "km":
        rng = np.random.default_rng(3)
        df = pd.DataFrame({"duration": rng.exponential(300, 4000).round(), "event": rng.random(4000) < 0.4,
                           "grp": rng.choice(["members", "non-members"], 4000)})
        fig, ax = plt.subplots(figsize=(5.6, 5.0))
        sp.plot_km(kaplan_meier(df, group_col="grp", unit="days"), ax=ax)
    elif build == "km_long_names":
        df = _planted().assign(grp=lambda d: d["grp"].map({"a": "Month-to-month contract", "b": "Two year contract"}))
        fig, ax = plt.subplots(figsize=(5.6, 5.0))
        sp.plot_km(kaplan_meier(df, group_col="grp", unit="months"), ax=ax)
    elif build == "forest":
        names = ["first_order_late", "late_share", "return_share", "n_contacts", "mean_discount",
                 "n_orders_window", "is_member", "channel_web", "region_East", "region_North"]
        rng = np.random.default_rng(1)
        hr = np.exp(rng.normal(0, 0.4, len(names)))
        summary = pd.DataFrame({"covariate": names, "hazard_ratio": hr, "ci_lower": hr * 0.85, "ci_upper": hr / 0.85,
                                "p_value": rng.random(len(names)) / 10})
        fig = sp.plot_forest(summary).figure
    else:
        at_risk = pd.DataFrame({"customer_id": [f"C{i}" for i in range(500)],
                                "churn_probability": np.random.default_rng(0).beta(2, 9, 500)})
        at_risk.attrs["horizon"] = 90
        curve = pd.DataFrame({"contacted": np.arange(1, 501), "net_gain": -np.linspace(0, 60, 500) ** 1.2})
        fig, axes = plt.subplots(2, 1, figsize=(6.0, 6.4), layout="constrained")
        sp.plot_churn_probability(at_risk, ax=axes[0], threshold=0.5, unit="days")
        sp.plot_campaign(curve, ax=axes[1], recommended=3)
    assert figure_problems(fig) == []


def test_schoenfeld_plot_labels_the_fitted_coefficient_and_is_readable():
    from ecrm_research import prep, survival

    rng = np.random.default_rng(0)
    n = 400
    x, late = rng.normal(size=n), rng.random(n) < 0.3
    t, c = rng.exponential(100 * np.exp(-0.5 * x - 0.4 * late)), rng.uniform(0, 200, n)
    df = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "tenure": np.minimum(t, c).round() + 1,
                       "churn": (t <= c).astype(int), "x": x, "late": late})
    data = prep.prepare_customer_table(df, "tenure", "churn", covariates=["x", "late"])
    model = survival.ChurnCoxModel().fit(data, covariates=data.covariates)
    ax = sp.plot_schoenfeld(model, "x")
    ref = [ln for ln in ax.get_lines() if ln.get_label().startswith("fitted coefficient β")]
    assert len(ref) == 1
    np.testing.assert_allclose(ref[0].get_ydata(), float(model.cph_.params_["x"]))
    assert _legend_texts(ax)[0] == "lowess trend ≈ β(t)"
    lo, hi = ax.get_xlim()
    assert all(lo <= v <= hi for v in ax.get_xticks())  # no undrawn ticks outside the view
    assert figure_problems(ax.figure) == []
