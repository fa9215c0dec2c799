"""Segment names agree with their profiles (issue 15, item 4): every word of a name is read off one
z-score of the profile table / heat map, by the documented rule (``profiles.NAME_RULES``): high when
the z-score shown with one decimal is ≥ +0.5, low when ≤ −0.5, mid otherwise.

The rule is restated here independently of the package, so a name that contradicts its profile
(UCI Online Retail before the fix: "active high-frequency mid-value" for the segment with the
highest monetary z-score, +1.2) fails these tests.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ecrm_research import segmentation as seg
from ecrm_research.paths import MAPPINGS_DIR
from ecrm_research.prep import customers as prep_customers
from ecrm_research.segmentation.profiles import z_level

# word -> (candidate columns, first profiled one is read; level the word requires)
WORDS = {
    "active": (("recency_days",), "low"), "lapsed": (("recency_days",), "high"),
    "high-frequency": (("frequency", "orders_per_month"), "high"),
    "mid-frequency": (("frequency", "orders_per_month"), "mid"),
    "low-frequency": (("frequency", "orders_per_month"), "low"),
    "high-value": (("monetary", "mean_order_value"), "high"),
    "mid-value": (("monetary", "mean_order_value"), "mid"),
    "low-value": (("monetary", "mean_order_value"), "low"),
    "fast-repeat": (("orders_per_month",), "high"), "slow-repeat": (("orders_per_month",), "low"),
    "big-order": (("mean_order_value",), "high"), "small-order": (("mean_order_value",), "low"),
    "discount-seeking": (("discount_rate",), "high"), "app-first": (("app_share",), "high"),
}
TAG = re.compile(r" \(([+−])?([^)]+)\)$")


def level_shown(z: float) -> str:
    """The level of a z-score as the heat map prints it (seaborn annotates with fmt '.1f')."""
    shown = float(f"{z:.1f}")
    return "high" if shown >= 0.5 else ("low" if shown <= -0.5 else "mid")


def name_disagreements(profiles: pd.DataFrame) -> list[str]:
    """Every word of every clustered segment's name checked against its profile row."""
    problems = []
    profiled = {c[:-2] for c in profiles.columns if c.endswith("_z")}
    for row in profiles[profiles["cluster"] >= 0].itertuples(index=False):
        name = row.segment
        m = TAG.search(name)
        if m:  # disambiguation tag: "(+feature)" / "(−feature)" must agree with that z, or a number
            name = name[: m.start()]
            sign, tag = m.groups()
            if sign:
                z = getattr(row, f"{tag}_z")
                want = "high" if sign == "+" else "low"
                if level_shown(z) != want:
                    problems.append(f"{row.segment!r}: tag {sign}{tag} but z = {z:+.2f}")
            else:
                assert tag.isdigit(), row.segment
        words = name.split()
        read = set()
        for w in words:
            assert w in WORDS, f"{row.segment!r}: word {w!r} has no documented rule"
            cols, want = WORDS[w]
            col = next(c for c in cols if c in profiled and c not in read)
            read.add(col)
            z = getattr(row, f"{col}_z")
            if level_shown(z) != want:
                problems.append(f"{row.segment!r}: {w!r} reads {col} z = {z:+.2f} ({level_shown(z)})")
        # the frequency and value words are always there when their columns are profiled
        for stem in ("frequency", "value"):
            if profiled & set(WORDS[f"high-{stem}"][0]):
                n = sum(w.endswith(f"-{stem}") and w.split("-")[0] in ("high", "mid", "low") for w in words)
                if n != 1:
                    problems.append(f"{row.segment!r}: {n} {stem} words")
    return problems


def planted_shop(n_per: int = 250, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Four groups over one year. Group 0 orders three times a month at an *ordinary* order value,
    so its total spend is the highest: it must be named high-value (by spend) and fast-repeat,
    never mid-value for its ordinary orders. 1: rare big orders; 2: rare small orders; 3: discounts."""
    rng = np.random.default_rng(seed)
    centres = [(3.0, 40, 0.03), (0.3, 200, 0.03), (0.4, 15, 0.03), (1.0, 40, 0.30)]
    frames, truth = [], []
    for g, (opm, aov, disc) in enumerate(centres):
        rate = np.exp(np.log(opm) + rng.normal(0, 0.15, n_per))
        value = np.exp(np.log(aov) + rng.normal(0, 0.15, n_per))
        freq = np.maximum(3, np.round(rate * 12 + 1))
        frames.append(pd.DataFrame({
            "recency_days": rng.integers(1, 40, n_per).astype(float), "frequency": freq,
            "monetary": freq * value, "tenure_days": np.full(n_per, 365.0), "orders_per_month": rate,
            "mean_order_value": value, "discount_rate": np.clip(disc + rng.normal(0, 0.02, n_per), 0, 1)}))
        truth += [g] * n_per
    X = pd.concat(frames, ignore_index=True)
    X.insert(0, "customer_id", [f"c{i:05d}" for i in range(len(X))])
    return X, np.array(truth)


def test_levels_read_the_z_score_as_the_heat_map_shows_it():
    # 0.45 is printed "0.5" by '{:.1f}' (its float is 0.4500000000000000111): high, as the reader sees
    assert [z_level(v) for v in (0.45, 0.44, -0.45, -0.44, 0.0, np.nan, 2.0)] == \
        ["high", "mid", "low", "mid", "mid", "mid", "high"]
    assert [level_shown(v) for v in (0.45, 0.44, -0.45)] == ["high", "mid", "low"]


def test_planted_groups_get_names_that_agree_with_their_profiles():
    X, truth = planted_shop()
    prof = seg.profile_segments(X, truth)
    assert name_disagreements(prof) == []
    names = dict(zip(prof["cluster"], prof["segment"]))
    z = prof.set_index("cluster")
    # group 0: highest spend (monetary z ≈ +1.1) from many ordinary orders
    assert z["monetary_z"].idxmax() == 0 and z.loc[0, "monetary_z"] > 0.5
    assert -0.5 < z.loc[0, "mean_order_value_z"] < 0.5
    assert names[0] == "high-frequency high-value fast-repeat", names
    assert "big-order" in names[1] and "slow-repeat" in names[1]
    assert "small-order" in names[2] and "low-value" in names[2]
    assert names[3].endswith("discount-seeking")
    assert prof["segment"].is_unique
    play = seg.segment_playbook(prof).set_index("cluster")["goal"]
    assert play[0] == "retain and reward the best customers" and play[1] == "raise purchase frequency"


def test_duplicate_names_get_a_feature_that_sets_them_apart():
    X, truth = planted_shop(seed=1)
    # split group 0 by basket size: same name on the naming columns, apart on basket_size
    X["basket_size"] = 2.0
    g0 = np.flatnonzero(truth == 0)
    X.loc[g0[: len(g0) // 2], "basket_size"] = 9.0
    labels = truth.copy()
    labels[g0[: len(g0) // 2]] = 4
    prof = seg.profile_segments(X, labels)
    assert prof["segment"].is_unique
    assert name_disagreements(prof) == []
    twins = prof[prof["cluster"].isin([0, 4])].set_index("cluster")["segment"]
    assert twins[4].endswith("(+basket_size)"), twins.tolist()
    assert twins[0].startswith("high-frequency high-value fast-repeat ("), twins.tolist()
    # identical twins: nothing sets them apart, so they are numbered in size order
    Y = pd.concat([X, X], ignore_index=True)
    lab = np.r_[truth, np.where(truth == 0, 9, truth)]
    lab[np.flatnonzero(lab == 9)[:10]] = 0  # cluster 0 is larger than its twin
    prof = seg.profile_segments(Y, lab)
    assert prof["segment"].is_unique and name_disagreements(prof) == []


def test_rule_table_lists_the_words_of_the_profiled_columns():
    X, truth = planted_shop()
    rules = seg.segment_name_rules(seg.profile_segments(X, truth))
    got = dict(zip(rules["word"], rules["column"]))
    assert got["high-value"] == "monetary" and got["big-order"] == "mean_order_value"
    assert got["fast-repeat"] == "orders_per_month" and got["high-frequency"] == "frequency"
    assert "app-first" not in got                      # app_share is not profiled here
    no_totals = seg.segment_name_rules(["orders_per_month", "mean_order_value"])
    assert set(no_totals["column"]) == {"orders_per_month", "mean_order_value"}
    assert "fast-repeat" not in set(no_totals["word"])  # the rate carries the frequency word
    assert set(seg.segment_name_rules()["word"]) == set(WORDS)


def test_sample_planted_segments_get_their_names(sample_dir):
    """data/sample/README.md, planted truth 4: champions (3.2 orders/month, bigger baskets), regulars
    (1.2), bargain hunters (1.2, discount 0.30), occasional (0.55, bigger baskets)."""
    from sklearn.metrics import adjusted_rand_score

    from ecrm_research.data import quality
    _, cleaned = quality.prepare(None)
    feats = prep_customers.customer_features(cleaned.tables)
    s = seg.CustomerSegmenter(k_range=(2, 6), n_bootstrap=5, random_state=42).fit(feats)
    prof = seg.profile_segments(feats, s.labels_)
    assert name_disagreements(prof) == []
    truth = pd.read_parquet(sample_dir / "truth" / "customers_truth.parquet")
    truth = truth.set_index(truth["customer_id"].astype(str))["segment"].reindex(feats["customer_id"]).astype(str)
    names = dict(zip(prof["cluster"], prof["segment"]))
    named = pd.Series(s.labels_).map(names)
    clustered = s.labels_ >= 0
    majority = pd.crosstab(truth.to_numpy()[clustered], named[clustered]).idxmax(axis=1)
    assert adjusted_rand_score(truth[clustered], s.labels_[clustered]) >= 0.8
    assert majority["champions"] == "high-frequency high-value fast-repeat big-order"
    assert majority["regulars"] == "mid-frequency mid-value"
    assert "discount-seeking" in majority["bargain hunters"] and "small-order" in majority["bargain hunters"]
    assert "slow-repeat" in majority["occasional"] and "big-order" in majority["occasional"]
    assert not s.k_weak_, s.k_checks_


@pytest.mark.realdata
def test_online_retail_names_agree_with_profiles_and_k_is_flagged_weak(online_retail_parquet):
    """UCI Online Retail: the top-spending segment (monetary z +1.2) was named "mid-value" from its
    mean order value; now every word reads its own column."""
    from ecrm_research.data import quality
    _, cleaned = quality.prepare(str(online_retail_parquet), None, str(MAPPINGS_DIR / "online_retail.yaml"))
    feats = prep_customers.customer_features(cleaned.tables)
    s = seg.CustomerSegmenter(k_range=(2, 5), n_bootstrap=5, random_state=42).fit(feats)
    prof = seg.profile_segments(feats, s.labels_)
    assert name_disagreements(prof) == []
    clustered = prof[prof["cluster"] >= 0].set_index("segment")
    top = clustered["monetary_z"].idxmax()
    assert clustered.loc[top, "monetary_z"] > 1.0 and "high-value" in top.split(), top
    checks = s.k_checks_.set_index("check")
    # 2,328 of 4,338 customers have fewer than 3 completed orders: the segments cover 46%
    assert checks.loc["customers not clustered", "verdict"] == "weak"
    assert checks.loc["customers not clustered", "value"] == pytest.approx(2328 / 4338)
    assert "2,328 of 4,338 customers (54%)" in checks.loc["customers not clustered", "reason"]
    assert s.k_weak_ and s.k_summary_.startswith(f"k = {s.n_clusters_} chosen, but weakly: ")
