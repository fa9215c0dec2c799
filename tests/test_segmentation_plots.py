"""The segmentation figures: readable in print (issue 16) and true to their tables; the interactive
segment scatter: one trace per segment, every customer drawn once (or a seeded sample of at most
5,000), hover text escaped.

Print size as in the report: a figure saved at 110 dpi with `bbox_inches="tight"` prints at
min(110/96, 7.3 in / tight width) of its size on an A4 page; every text must print at 8 pt or more.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from ecrm_research import segmentation as seg
from ecrm_research.report.figure_quality import figure_problems
from ecrm_research.segmentation import plots

DPI, PRINT_WIDTH, MIN_PT = 110, 7.3, 8.0


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _planted_features(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers in four planted behaviour groups plus one-/two-order customers (cluster -1), with the
    14 profile columns of the sample shop, so the segment names are as long as the real ones."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 5, n)  # 4 = too few orders
    opm = np.exp(rng.normal(0.0, 0.25, n) + np.array([0.0, 0.0, -1.0, 1.2, -0.3])[g])
    mov = np.exp(rng.normal(4.5, 0.2, n) + np.array([0.0, -0.6, 0.6, 0.7, 0.2])[g])
    freq = np.where(g == 4, rng.integers(1, 3, n), rng.integers(3, 30, n) + np.array([0, 0, -1, 20, 0])[g])
    feats = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "recency_days": rng.integers(1, 700, n).astype(float),
        "frequency": freq.astype(float),
        "monetary": freq * mov,
        "tenure_days": rng.integers(60, 730, n).astype(float),
        "orders_per_month": opm,
        "mean_order_value": mov,
        "basket_size": np.exp(rng.normal(1.4, 0.2, n) + np.array([0.0, -0.4, 0.3, 0.3, 0.0])[g]),
        "discount_rate": np.clip(rng.normal(0.1, 0.03, n) + np.array([-0.05, 0.2, 0.0, -0.05, 0.0])[g], 0, 1),
        "app_share": rng.uniform(0, 1, n),
    })
    for c in ("phone_tech", "outdoor_camping", "fashion", "coffee_tea", "home_kitchen"):
        feats[f"cat_{c}"] = rng.uniform(0, 0.4, n)
    labels = np.where(g == 4, seg.UNCLUSTERED, g)
    return feats, labels


@pytest.fixture(scope="module")
def planted():
    feats, labels = _planted_features()
    profiles = seg.profile_segments(feats, labels)
    scored = seg.rfm_scores(feats[["customer_id", "recency_days", "frequency", "monetary", "tenure_days"]])
    segments = seg.customer_segments(scored, feats, labels, profiles)
    ks = np.arange(2, 9)
    k_selection = pd.DataFrame({"k": ks, "inertia": 9000 / ks, "silhouette": [0.39, 0.45, 0.51, 0.42, 0.40, 0.34, 0.34],
                                "bic": np.nan, "stability_ari": [0.47, 0.99, 0.99, 0.96, 0.91, 0.92, 0.82],
                                "stability_sd": [0.5, 0.004, 0.002, 0.09, 0.11, 0.06, 0.1], "recommended": ks == 4})
    return dict(features=feats, labels=labels, profiles=profiles, scored=scored, segments=segments,
                k_selection=k_selection)


def _printed_sizes(fig) -> list[tuple[float, str]]:
    """(printed points, text) of every visible text, by the formula of the figure conventions."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    scale = min(DPI / 96, PRINT_WIDTH / fig.get_tightbbox(renderer).width)
    return [(t.get_fontsize() * scale, t.get_text()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


def _static_figure(p, name):
    clustered = p["labels"] >= 0
    names = dict(zip(p["profiles"]["cluster"], p["profiles"]["segment"]))
    draw = {
        "segment_profiles": lambda: plots.plot_segment_profiles(p["profiles"]).figure,
        "segment_sizes": lambda: plots.plot_segment_sizes(p["profiles"]),
        "k_selection": lambda: plots.plot_k_selection(p["k_selection"]),
        "rfm_heatmap": lambda: plots.plot_rfm_heatmap(p["scored"]).figure,
        "rfm_distributions": lambda: plots.plot_rfm_distributions(p["scored"]),
        "rfm_vs_cluster": lambda: plots.plot_rfm_cluster_crosstab(p["segments"]).figure,
        "segments_pca": lambda: plots.plot_segments_2d(np.random.default_rng(1).normal(size=(int(clustered.sum()), 3)),
                                                       p["labels"][clustered], names=names).figure,
    }
    return draw[name]()


@pytest.mark.parametrize("name", ["segment_profiles", "segment_sizes", "k_selection", "rfm_heatmap",
                                  "rfm_distributions", "rfm_vs_cluster", "segments_pca"])
def test_static_figure_prints_at_8pt_or_more_without_problems(planted, name):
    fig = _static_figure(planted, name)
    sizes = _printed_sizes(fig)
    assert sizes, name
    smallest = min(sizes)
    assert smallest[0] >= MIN_PT - 1e-9, f"{name}: {smallest[1]!r} prints at {smallest[0]:.1f} pt"
    assert figure_problems(fig, dpi=DPI) == []


@pytest.mark.parametrize("n_columns", [3, 7, 14])
def test_segment_profiles_without_problems_for_few_or_many_features(planted, n_columns):
    """Online Retail has 7 profile columns (no discount, channel or category): the title of a narrow
    heat map ran into the colour bar's tick labels."""
    columns = [c for c in planted["features"].columns if c != "customer_id"][:n_columns]
    profiles = seg.profile_segments(planted["features"], planted["labels"], columns=columns)
    assert sum(c.endswith("_z") for c in profiles.columns) == n_columns
    fig = plots.plot_segment_profiles(profiles).figure
    assert min(_printed_sizes(fig))[0] >= MIN_PT - 1e-9
    assert figure_problems(fig, dpi=DPI) == []


def test_segment_profiles_cells_print_at_8pt_with_five_long_names(planted):
    """The key figure used to have ~6 px cell numbers: 14 feature columns in an 18 in wide figure."""
    ax = plots.plot_segment_profiles(planted["profiles"])
    zcols = [c for c in planted["profiles"].columns if c.endswith("_z")]
    assert len(zcols) == 14 and len(planted["profiles"]) == 5
    cells = [t for t in ax.texts if t.get_text()]
    assert len(cells) == 14 * 5
    scale = min(DPI / 96, PRINT_WIDTH / ax.figure.get_tightbbox(ax.figure.canvas.get_renderer()).width)
    assert min(t.get_fontsize() for t in cells) * scale >= MIN_PT
    # the numbers are the profile z-scores with one decimal (−0.0 shown as 0.0)
    shown = [float(t.get_text()) for t in cells]
    expected = [round(float(f"{z:.1f}"), 1) + 0.0 for z in planted["profiles"][zcols].to_numpy().ravel()]
    assert shown == pytest.approx(expected)


def test_segment_size_chart_numbers_are_the_segment_counts(planted):
    profiles = planted["profiles"]
    fig = plots.plot_segment_sizes(profiles)
    left, right = fig.axes
    counts = [b.get_width() for b in left.patches]
    assert counts == profiles["n_customers"].tolist()
    assert sum(counts) == len(planted["features"])
    assert [t.get_text() for t in left.texts] == [f"{n:,}" for n in profiles["n_customers"]]
    widths = [b.get_width() for b in right.patches]
    k = len(profiles)
    assert widths[:k] == pytest.approx((profiles["share_customers"] * 100).tolist())
    assert widths[k:] == pytest.approx((profiles["share_revenue"] * 100).tolist())
    assert [t.get_text() for t in left.get_yticklabels()] == [plots._wrap(s, 26) for s in profiles["segment"]]
    # legend outside the data (above the panel, below the title)
    legend = right.get_legend()
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert right.get_window_extent(r).y1 <= legend.get_window_extent(r).y0


def test_k_selection_reference_line_is_labelled(planted):
    fig = plots.plot_k_selection(planted["k_selection"])
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert labels == ["recommended k = 4"]
    assert all(any(line.get_linestyle() == "--" and line.get_xdata()[0] == 4 for line in ax.get_lines())
               for ax in fig.axes)


def test_log_axes_have_plain_tick_labels(planted):
    fig = plots.plot_rfm_distributions(planted["scored"])
    fig.canvas.draw()
    for ax in fig.axes[1:]:
        assert ax.get_xscale() == "log"
        texts = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert texts and all("10^" not in t and "$" not in t for t in texts), texts
        assert set(texts) & {"1", "10", "100", "1,000"}


# --------------------------------------------------------------------------- interactive scatter


def test_scatter_has_one_trace_per_segment_with_every_customer(planted):
    segments = planted["segments"]
    fig = plots.segment_scatter_figure(segments)
    names = [tr.name for tr in fig.data]
    order = [c for c in planted["profiles"].sort_values("cluster")["cluster"] if c >= 0] + [seg.UNCLUSTERED]
    expected = dict(zip(planted["profiles"]["cluster"], planted["profiles"]["segment"]))
    assert names == [html.escape(expected[c]) for c in order]
    counts = {tr.name: len(tr.x) for tr in fig.data}
    by_segment = segments["segment"].value_counts()
    assert counts == {html.escape(s): int(n) for s, n in by_segment.items()}
    assert sum(counts.values()) == len(segments) == 2000
    # each point's hover names its customer, segment and the RFM values
    first = fig.data[0]
    row = segments[segments["segment"] == expected[order[0]]].iloc[0]
    assert first.text[0].startswith(f"<b>{row['customer_id']}</b><br>segment: ")
    assert "value tier: " + row["value_tier"] in first.text[0]
    assert f"frequency: {int(row['frequency']):,}" in first.text[0]
    assert first.hovertemplate == "%{text}<extra></extra>"
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_scatter_subsample_is_deterministic_and_capped():
    rng = np.random.default_rng(3)
    n = 12_000
    df = pd.DataFrame({"customer_id": [f"K{i}" for i in range(n)], "frequency": rng.integers(1, 50, n),
                       "monetary": rng.uniform(10, 5000, n), "cluster": rng.integers(0, 3, n)})
    df["segment"] = df["cluster"].map({0: "a", 1: "b", 2: "c"})

    def ids(fig):
        return sorted(t.split("</b>")[0][3:] for tr in fig.data for t in tr.text)

    a = plots.segment_scatter_figure(df, random_state=7)
    b = plots.segment_scatter_figure(df, random_state=7)
    c = plots.segment_scatter_figure(df, random_state=8)
    assert sum(len(tr.x) for tr in a.data) == plots.MAX_SCATTER_POINTS == 5000
    assert ids(a) == ids(b) and ids(a) != ids(c)
    assert set(ids(a)) <= set(df["customer_id"])
    assert "5,000 of 12,000 customers (a random sample)" in a.layout.title.text
    # the points are those customers' values
    first = a.data[0]
    sub = df.set_index("customer_id").loc[[t.split("</b>")[0][3:] for t in first.text]]
    assert np.allclose(first.x, sub["frequency"]) and np.allclose(first.y, sub["monetary"])
    small = plots.segment_scatter_figure(df, max_points=100, random_state=7)
    assert sum(len(tr.x) for tr in small.data) == 100


def test_scatter_escapes_customer_ids_and_segment_names():
    df = pd.DataFrame({"customer_id": ["<script>alert(1)</script>", "a&b", "plain"],
                       "frequency": [1, 5, 9], "monetary": [10.0, 500.0, 900.0], "cluster": [0, 0, 1],
                       "segment": ['<img src=x onerror="alert(2)">', '<img src=x onerror="alert(2)">', "fine"],
                       "value_tier": ["mature", "<b>growth</b>", "development"]})
    fig = plots.segment_scatter_figure(df, log_x=False, log_y=False)
    payload = fig.to_json()
    assert "<script>" not in payload and "<img" not in payload and "<b>growth" not in payload
    assert fig.data[0].name == "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"
    texts = list(fig.data[0].text)
    assert texts[0].startswith("<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>")
    assert texts[1].startswith("<b>a&amp;b</b>") and "value tier: &lt;b&gt;growth&lt;/b&gt;" in texts[1]


def test_scatter_leaves_out_points_it_cannot_draw_and_says_so():
    df = pd.DataFrame({"customer_id": list("abcd"), "orders_per_month": [1.0, np.nan, 2.0, 0.5],
                       "monetary": [100.0, 50.0, 0.0, 3000.0], "cluster": [0, 0, 1, seg.UNCLUSTERED],
                       "segment": ["x", "x", "y", "few orders"]})
    fig = plots.segment_scatter_figure(df, x="orders_per_month", log_y=True)
    assert [(tr.name, len(tr.x)) for tr in fig.data] == [("x", 1), ("few orders", 1)]  # NaN rate, 0 on a log axis
    assert "2 of 4 customers" in fig.layout.title.text
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.type == "linear"
    with pytest.raises(ValueError, match="one cluster per row"):
        plots.segment_scatter_figure(df, labels=[0, 1])
