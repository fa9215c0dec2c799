"""Tests of the synthetic sample generator (``ecrm_research.data.sample``).

The planted-truth tests recover each planted structure from the written tables with plain,
independent library calls (pandas, mlxtend, lifelines, semopy, scikit-learn) - never with the
project's analysis modules - and compare with the numbers in ``PLANTED``.
"""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from ecrm_research.data import schema
from ecrm_research.data.sample import PLANTED, SURVEY_ITEMS, generate, write_sample

TABLES = ("customers", "products", "orders", "order_items", "survey_responses", "service_contacts")


@pytest.fixture(scope="module")
def raw(sample_dir):
    """The committed sample, as read back from Parquet by plain pandas."""
    return {t: pd.read_parquet(sample_dir / f"{t}.parquet") for t in TABLES}


@pytest.fixture(scope="module")
def sample(raw):
    """The committed sample with canonical dtypes (what ``io`` hands to the analyses)."""
    return {t: schema.coerce_table(df, t) for t, df in raw.items()}


@pytest.fixture(scope="module")
def truth(sample_dir):
    return pd.read_parquet(sample_dir / "truth" / "customers_truth.parquet")


# ---------------------------------------------------------------------------------------------
# Shape, schema, determinism, size
# ---------------------------------------------------------------------------------------------

def test_committed_sample_is_canonical_and_valid(raw, sample):
    schema.validate_tables(sample)
    for t, df in raw.items():
        assert list(df.columns[: len(schema.TABLES[t].names)]) == schema.TABLES[t].names
        # plain read_parquet already gives the canonical dtype families (string storage may differ)
        assert df.dtypes.astype(str).equals(sample[t].dtypes.astype(str)), t
    assert len(sample["customers"]) == 5000
    assert len(sample["products"]) == 200
    assert sample["products"]["category"].nunique() == 10
    for t in ("orders", "order_items", "service_contacts", "survey_responses"):
        assert not schema.orphan_mask(sample, t, "customer_id" if t != "order_items" else "order_id").any()


def test_committed_sample_equals_a_fresh_generation(sample):
    fresh = generate()
    for t in TABLES:
        pd.testing.assert_frame_equal(sample[t], fresh[t], check_exact=True, obj=t)


def test_same_seed_gives_identical_parquet_bytes(tmp_path):
    a = write_sample(tmp_path / "a", n_customers=700, months=12, seed=3)
    b = write_sample(tmp_path / "b", n_customers=700, months=12, seed=3)
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
    c = write_sample(tmp_path / "c", n_customers=700, months=12, seed=4)
    assert a["orders"].read_bytes() != c["orders"].read_bytes()


def test_chunked_write_matches_generate_and_is_valid(tmp_path):
    """Several chunks: ids continue across chunks and the files equal generate() with the same chunking."""
    files = write_sample(tmp_path, n_customers=1200, months=12, seed=5, chunk_size=500)
    mem = generate(n_customers=1200, months=12, seed=5, chunk_size=500, truth=True)
    for t in TABLES:
        back = schema.coerce_table(pd.read_parquet(files[t]), t)
        pd.testing.assert_frame_equal(back, mem[t], check_exact=True, obj=t)
        assert pq_row_groups(files[t]) >= (1 if t == "products" else 3)
    schema.validate_tables({t: pd.read_parquet(files[t]) for t in TABLES})
    assert mem["customers"]["customer_id"].is_unique and mem["orders"]["order_id"].is_unique
    assert len(mem["customers_truth"]) == 1200


def pq_row_groups(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).num_row_groups


def test_sample_folder_size_and_truth_files(sample_dir):
    total = sum(p.stat().st_size for p in sample_dir.rglob("*.parquet"))
    assert total < 10 * 1024 * 1024
    assert json.loads((sample_dir / "truth" / "planted.json").read_text()) == json.loads(json.dumps(PLANTED))
    assert (sample_dir / "README.md").exists()


def test_realism_rates(sample):
    o, c = sample["orders"], sample["customers"]
    st = o["status"].value_counts(normalize=True)
    assert 0.02 < st["cancelled"] < 0.04 and 0.03 < st["returned"] < 0.05
    delivered = o[o["status"] != "cancelled"]
    assert o.loc[o["status"] == "cancelled", "delivery_days"].isna().all()
    assert delivered["promised_days"].between(2, 5).all()
    late = delivered["delivery_days"] > delivered["promised_days"]
    assert 0.17 < late.mean() < 0.23
    assert 0.27 < c["is_member"].mean() < 0.33
    assert set(o["channel"].unique()) == {"app", "web"}
    assert o["discount_rate"].between(0, 1).all()
    # service contacts are more likely after a late or returned order
    sc = sample["service_contacts"]
    share = sc["reason"].value_counts(normalize=True)
    assert share["late delivery"] > share["payment"]
    assert share["return"] > share["account"]


def test_survey_missing_and_reverse_items(sample):
    s = sample["survey_responses"]
    items = [i for lst in SURVEY_ITEMS.values() for i, _, _ in lst]
    assert 1850 < len(s) < 2150  # 40% of 5,000 customers
    miss = s[items].isna().to_numpy().mean()
    assert 0.02 < miss < 0.04
    vals = s[items].stack()
    assert vals.between(1, 7).all() and (vals == vals.round()).all()
    assert PLANTED["survey"]["reverse_coded"] == ["cost_3_r", "loy_4_r"]
    # a reverse-coded item correlates negatively with its siblings
    assert s["loy_4_r"].corr(s["loy_1"]) < -0.3
    assert s["cost_3_r"].corr(s["cost_1"]) < -0.3


# ---------------------------------------------------------------------------------------------
# Planted truth 1: bundles with known lift
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onehot(sample):
    o, it = sample["orders"], sample["order_items"]
    done = o.loc[o["status"] == "completed", "order_id"]
    lines = it[it["order_id"].isin(done)]
    return pd.crosstab(lines["order_id"], lines["product_id"]).gt(0)


def test_bundle_rules_recover_planted_lift(onehot):
    from mlxtend.frequent_patterns import apriori, association_rules

    freq = apriori(onehot, min_support=0.005, use_colnames=True, max_len=3)
    try:
        rules = association_rules(freq, num_itemsets=len(onehot), metric="lift", min_threshold=0.0)
    except TypeError:  # mlxtend < 0.23
        rules = association_rules(freq, metric="lift", min_threshold=0.0)
    found = {(frozenset(a), frozenset(c)): i for i, (a, c) in enumerate(zip(rules["antecedents"], rules["consequents"]))}
    for r in PLANTED["association"]["rules"]:
        got = rules.iloc[found[(frozenset(r["antecedent_ids"]), frozenset(r["consequent_ids"]))]]
        assert got["lift"] == pytest.approx(r["lift"], rel=0.10), (r["antecedents"], r["consequents"])
        assert got["support"] == pytest.approx(r["support"], rel=0.15)
        assert got["confidence"] == pytest.approx(r["confidence"], rel=0.12)


def test_non_bundle_pairs_have_lift_near_one(onehot):
    bundle_ids = {p for b in PLANTED["association"]["bundles"] for p in b["product_ids"]}
    x = onehot.drop(columns=[c for c in onehot.columns if c in bundle_ids]).astype(float)
    top = x.mean().nlargest(20).index
    x = x[top].to_numpy()
    n = len(x)
    p = x.mean(axis=0)
    expected = PLANTED["association"]["non_bundle_pair_lift"]
    lifts, z = [], []
    for i, j in combinations(range(len(top)), 2):
        both = (x[:, i] * x[:, j]).sum()
        lift = both / n / (p[i] * p[j])
        lifts.append(lift)
        z.append((lift - expected) / (expected / np.sqrt(both)))  # Poisson error of the pair count
    assert n > 30_000
    assert np.mean(lifts) == pytest.approx(expected, abs=0.03)
    assert max(np.abs(z)) < 4.5  # 190 pairs: no pair is out of line with independence


def test_mean_basket_size(onehot):
    assert onehot.sum(axis=1).mean() == pytest.approx(PLANTED["association"]["expected_mean_basket_size"], rel=0.03)


# ---------------------------------------------------------------------------------------------
# Planted truth 2: churn hazard ratios
# ---------------------------------------------------------------------------------------------

def churn_frame(sample, inactivity_days):
    o = sample["orders"]
    done = o[o["status"] == "completed"].sort_values(["customer_id", "ordered_at"])
    late = done["delivery_days"] > done["promised_days"]
    g = done.assign(late=late).groupby("customer_id")
    first = g["ordered_at"].min()
    last = g["ordered_at"].max()
    first_late = g["late"].first()
    end = o["ordered_at"].max()
    cust = sample["customers"].set_index("customer_id")
    df = pd.DataFrame({
        "duration": (last - first).dt.total_seconds() / 86400,
        "event": ((end - last).dt.total_seconds() / 86400 > inactivity_days).astype(int),
        "first_order_late": first_late.astype(int),
        "is_member": cust.loc[first.index, "is_member"].astype(int),
    })
    return df


def test_churn_hazard_ratios_recovered_by_cox(sample):
    from lifelines import CoxPHFitter

    df = churn_frame(sample, PLANTED["churn"]["recommended_inactivity_days"])
    assert 0.3 < df["event"].mean() < 0.6
    cph = CoxPHFitter().fit(df, "duration", "event")
    s = cph.summary
    for cov in ("first_order_late", "is_member"):
        hr = PLANTED["churn"]["hazard_ratios"][cov]
        lo, hi = s.loc[cov, "exp(coef) lower 95%"], s.loc[cov, "exp(coef) upper 95%"]
        assert lo < hr < hi, (cov, s.loc[cov, "exp(coef)"], lo, hi)


def test_slowest_segment_is_far_below_inactivity_threshold():
    gaps = PLANTED["segments"]["mean_gap_days"]
    assert max(gaps.values()) <= PLANTED["churn"]["recommended_inactivity_days"] / 3


def test_true_churn_share_in_window(truth):
    assert 0.4 < truth["churned_in_window"].mean() < 0.6
    # segment does not drive the churn time
    by_seg = truth.groupby("segment", observed=True)["churn_days"].median()
    assert by_seg.max() / by_seg.min() < 1.25


# ---------------------------------------------------------------------------------------------
# Planted truth 3: survey paths (semopy)
# ---------------------------------------------------------------------------------------------

def test_survey_paths_recovered_by_semopy(sample):
    import semopy

    s = sample["survey_responses"].copy()
    for item in PLANTED["survey"]["reverse_coded"]:
        s[item] = 8 - s[item]
    items = PLANTED["survey"]["items"]
    short = {"trust": "TR", "service_quality": "SQ", "perceived_cost": "PC", "habit": "HA",
             "entertainment": "EN", "satisfaction": "SA", "loyalty": "LO"}
    desc = "\n".join(f"{short[c]} =~ {' + '.join(its)}" for c, its in items.items())
    desc += "\nSA ~ TR + SQ\nLO ~ SA + HA + PC + EN + TR\n"
    data = s[[i for its in items.values() for i in its]]
    data = data.fillna(data.mean())  # ~3% MCAR: mean imputation is enough for this check
    model = semopy.Model(desc)
    model.fit(data)
    est = model.inspect(std_est=True)
    paths = est[est["op"] == "~"].set_index(["lval", "rval"])
    planted = {("SA", short[k]): v for k, v in PLANTED["survey"]["satisfaction_paths"].items()}
    planted.update({("LO", short[k]): v for k, v in PLANTED["survey"]["loyalty_paths"].items()})
    for key, value in planted.items():
        assert paths.loc[key, "Est. Std"] == pytest.approx(value, abs=0.07), key
    assert float(paths.loc[("LO", "TR"), "p-value"]) > 0.05


# ---------------------------------------------------------------------------------------------
# Planted truth 4: behavioural segments
# ---------------------------------------------------------------------------------------------

def segment_features(sample, min_orders=3):
    o = sample["orders"]
    done = o[o["status"] == "completed"]
    lines = sample["order_items"]
    value = (lines["quantity"] * lines["unit_price"]).groupby(lines["order_id"]).sum()
    done = done.assign(value=done["order_id"].map(value))
    g = done.groupby("customer_id")
    n = g.size()
    span_months = (g["ordered_at"].max() - g["ordered_at"].min()).dt.total_seconds() / 86400 / 30.4375
    f = pd.DataFrame({
        "log_orders_per_month": np.log((n - 1) / span_months.where(span_months > 0)),
        "log_mean_order_value": np.log(g["value"].mean()),
        "mean_discount": g["discount_rate"].mean(),
    })
    return f[n >= min_orders]


def test_segments_recovered_by_kmeans(sample, truth):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    f = segment_features(sample)
    x = StandardScaler().fit_transform(f)
    labels = truth.set_index("customer_id").loc[f.index, "segment"].astype(str)
    km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(x)
    ari = adjusted_rand_score(labels, km.labels_)
    assert ari >= 0.85, ari
    sil = {k: silhouette_score(x, KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x),
                               sample_size=3000, random_state=0) for k in range(2, 9)}
    assert max(sil, key=sil.get) == 4, sil
    assert len(f) > 0.6 * len(sample["customers"])
