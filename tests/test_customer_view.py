"""The customer view (ecrm_research.customer_view.view): planted small tables known by hand, and the
bundled sample against its planted truths (data/sample/README.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ecrm_research import prep
from ecrm_research.customer_view import view as cv
from ecrm_research.data import schema
from ecrm_research.exceptions import DataError, ParameterError
from ecrm_research.paths import MAPPINGS_DIR

AS_OF = "2024-04-01"


def planted_tables() -> dict[str, pd.DataFrame]:
    """Six customers; C3 has only a returned order (no completed one), so it is not in the view."""
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3", "P4"], "category": ["A", "B", "C", None],
                             "list_price": [10.0, 5.0, 1.0, 3.0]})
    orders = pd.DataFrame([
        ("O01", "C1", "2024-01-01", "completed"), ("O02", "C1", "2024-02-01", "completed"),
        ("O03", "C1", "2024-03-01", "completed"), ("O04", "C1", "2024-03-15", "cancelled"),
        ("O05", "C1", "2024-04-10", "completed"),  # after as_of: ignored
        ("O06", "C2", "2024-03-20", "completed"), ("O07", "C3", "2024-02-10", "returned"),
        ("O08", "C4", "2024-01-05", "completed"), ("O09", "C4", "2024-01-20", "completed"),
        ("O10", "C4", "2024-02-05", "completed"),
        ("O11", "C5", "2024-02-01", "completed"), ("O12", "C5", "2024-02-15", "completed"),
        ("O13", "C5", "2024-03-01", "completed"), ("O14", "C6", "2023-12-01", "completed"),
    ], columns=["order_id", "customer_id", "ordered_at", "status"])
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"])
    items = pd.DataFrame([
        ("O01", "P1", 1, 10.0), ("O02", "P1", 1, 10.0), ("O02", "P2", 1, 5.0), ("O03", "P1", 1, 10.0),
        ("O03", "P3", 2, 1.0), ("O04", "P2", 10, 5.0), ("O05", "P2", 100, 5.0),
        ("O06", "P2", 2, 5.0), ("O06", "P4", 1, 3.0), ("O07", "P1", 1, 10.0),
        ("O08", "P3", 1, 1.0), ("O09", "P3", 1, 1.0), ("O10", "P3", 1, 1.0),
        ("O11", "P2", 2, 5.0), ("O11", "P1", 1, 10.0), ("O12", "P2", 1, 5.0), ("O13", "P2", 1, 5.0),
        ("O14", "P1", 1, 10.0), ("O14", "P2", 2, 5.0),  # C6: A and B tie at 10
    ], columns=["order_id", "product_id", "quantity", "unit_price"])
    items["line_no"] = items.groupby("order_id").cumcount() + 1
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(1, 7)]})
    return {"customers": schema.coerce_table(customers, "customers"),
            "products": schema.coerce_table(products, "products"),
            "orders": schema.coerce_table(orders, "orders"),
            "order_items": schema.coerce_table(items, "order_items")}


def expected_months(r: float = 0.9, annual_discount: float = 0.1, horizon: int = 12) -> float:
    d = (1 + annual_discount) ** (1 / 12) - 1
    return sum(r ** t / (1 + d) ** t for t in range(1, horizon + 1))


# ---------------------------------------------------------------- profiles, categories, satisfaction

@pytest.fixture(scope="module")
def planted_profiles():
    with warnings.catch_warnings():  # 3 clustered customers: the small-cluster warning is expected
        warnings.simplefilter("ignore")
        return cv.customer_profiles(planted_tables(), AS_OF, k=2, n_bootstrap=0)


def test_profiles_by_hand(planted_profiles):
    p = planted_profiles.set_index("customer_id")
    assert list(p.index) == ["C1", "C2", "C4", "C5", "C6"]  # C3: no completed order
    # C1: 3 completed orders before as_of (the cancelled one and the later one ignored): 10 + 15 + 12 = 37
    assert p.loc["C1", "monetary"] == 37.0 and p.loc["C1", "frequency"] == 3
    assert p.loc["C1", "last_order_at"] == pd.Timestamp("2024-03-01")
    # historical CLV: monthly spend 37 / (91 days / 30.4375) × expected months × margin 0.3
    clv_c1 = 37 / (91 / 30.4375) * expected_months() * 0.3
    assert p.loc["C1", "clv"] == pytest.approx(clv_c1, rel=1e-12)
    assert p.loc["C1", "clv"] == pytest.approx(23.000953, abs=1e-6)
    # C2: tenure 12 days is floored at one month: 13 × expected months × 0.3
    assert p.loc["C2", "clv"] == pytest.approx(13 * expected_months() * 0.3, rel=1e-12)
    assert (p["value"] == p["clv"]).all()
    assert p.loc["C2", "segment"] == "fewer than 3 orders" and p.loc["C6", "segment"] == "fewer than 3 orders"
    assert p.loc["C2", "rfm_segment"] == "New customers"
    assert p.attrs["value_definition"] == cv.VALUE_DEFINITION


def test_profiles_deterministic(planted_profiles):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = cv.customer_profiles(planted_tables(), AS_OF, k=2, n_bootstrap=0)
    pd.testing.assert_frame_equal(again, planted_profiles)


def test_top_categories_by_hand():
    t = planted_tables()
    top = cv.top_categories(t, end=AS_OF).set_index("customer_id")["top_categories"]
    # C1: A 30, B 5, C 2 (the cancelled and the later order ignored); C2: B 10, uncategorised P4 3;
    # C6: A and B tie at 10 -> by name
    assert top.to_dict() == {"C1": "A;B;C", "C2": "B;unknown", "C4": "C", "C5": "B;A", "C6": "A;B"}
    top1 = cv.top_categories(t, end=AS_OF, n=1).set_index("customer_id")["top_categories"]
    assert top1["C1"] == "A" and top1["C5"] == "B"
    later = cv.top_categories(t, end="2024-05-01").set_index("customer_id")["top_categories"]
    assert later["C1"] == "B;A;C"  # the 100 × P2 order of 2024-04-10 now counts: B 505
    assert cv.top_categories(t, end=AS_OF, start="2024-03-01").set_index("customer_id").index.tolist() == \
        ["C1", "C2", "C5"]
    with pytest.raises(ParameterError, match="n=0"):
        cv.top_categories(t, end=AS_OF, n=0)
    no_cat = dict(t, products=t["products"].drop(columns="category"))
    empty = cv.top_categories(no_cat, end=AS_OF)
    assert empty.empty and "no product categories" in empty.attrs["reason"]


SPEC = {"constructs": {"satisfaction": ["sat_1", "sat_2"], "loyalty": ["loy_1", "loy_2_r"]},
        "reverse_items": ["loy_2_r"], "scale": {"min": 1, "max": 7}}


def survey_tables(survey: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    t = planted_tables()
    if survey is not None:
        t["survey_responses"] = survey
    return t


def test_satisfaction_scores_by_hand():
    survey = pd.DataFrame({
        "respondent_id": ["R1", "R2", "R3", "R4", "R5"],
        "customer_id": pd.array(["C1", "C2", "C2", None, "C4"], dtype="string"),
        "answered_at": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-01-01", "2024-01-01", "2024-01-01"]),
        "sat_1": [7, 1, 4, 7, 5], "sat_2": [5, 1, 4, 7, np.nan],
        "loy_1": [4, 7, 4, 7, 3], "loy_2_r": [2, 1, 4, 7, 5],
    })
    s = cv.satisfaction_scores(survey_tables(survey), constructs=SPEC).set_index("customer_id")
    assert list(s.index) == ["C1", "C2", "C4"]  # R4 has no customer_id; C2 answered twice
    # C1: satisfaction mean(7, 5) = 6 -> 100 (6 - 1) / 6; loyalty mean(4, 8 - 2) = 5 -> 100 (5 - 1) / 6
    assert s.loc["C1", "satisfaction_score"] == pytest.approx(100 * 5 / 6)
    assert s.loc["C1", "loyalty_score"] == pytest.approx(100 * 4 / 6)
    # C2: the latest answer (R2, 2024-03-01): satisfaction 1 -> 0; loyalty mean(7, 8 - 1) = 7 -> 100
    assert s.loc["C2", "satisfaction_score"] == 0.0 and s.loc["C2", "loyalty_score"] == 100.0
    # C4: one of two satisfaction items answered (< 2/3): unscored; loyalty mean(3, 3) = 3 -> 33.3
    assert np.isnan(s.loc["C4", "satisfaction_score"])
    assert s.loc["C4", "loyalty_score"] == pytest.approx(100 * 2 / 6)
    assert cv.satisfaction_reason(survey_tables(survey), constructs=SPEC) is None
    # as of 2024-02-01 only the answers before count: C2's latest is R3 (4, 4 -> 50; loyalty (4 + 4) / 2 -> 50)
    early = cv.satisfaction_scores(survey_tables(survey), constructs=SPEC, as_of="2024-02-01").set_index("customer_id")
    assert early.loc["C2", "satisfaction_score"] == 50.0 and early.loc["C2", "loyalty_score"] == 50.0
    assert cv.satisfaction_scores(survey_tables(survey), constructs=SPEC, as_of="2023-06-01") is None
    assert "before the as-of date 2023-06-01" in cv.satisfaction_reason(survey_tables(survey), constructs=SPEC,
                                                                         as_of="2023-06-01")


def test_satisfaction_none_with_reason():
    t = survey_tables(None)
    assert cv.satisfaction_scores(t) is None
    assert "no survey_responses" in cv.satisfaction_reason(t)
    unlinked = pd.DataFrame({"respondent_id": ["R1"], "customer_id": pd.array([None], dtype="string"),
                             "sat_1": [3], "sat_2": [4], "loy_1": [5], "loy_2_r": [2]})
    t = survey_tables(unlinked)
    assert cv.satisfaction_scores(t, constructs=SPEC) is None
    assert "no customer_id" in cv.satisfaction_reason(t, constructs=SPEC)
    no_id = unlinked.drop(columns="customer_id")
    assert cv.satisfaction_scores(survey_tables(no_id), constructs=SPEC) is None
    other = dict(SPEC, constructs={"trust": ["sat_1", "sat_2"], "loyalty": ["loy_1", "loy_2_r"]})
    linked = unlinked.assign(customer_id=pd.array(["C1"], dtype="string"))
    with pytest.raises(ParameterError, match="mediator construct 'satisfaction' is not among"):
        cv.satisfaction_scores(survey_tables(linked), constructs=other)  # the user's mapping: an error
    unnamed = linked.rename(columns={"sat_1": "q_1", "sat_2": "q_2"})  # inferred constructs q and loy
    assert cv.satisfaction_scores(survey_tables(unnamed)) is None
    assert "do not form satisfaction and loyalty" in cv.satisfaction_reason(survey_tables(unnamed))


# ---------------------------------------------------------------- the view by hand

def hand_inputs():
    customers = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6", "C7"],
        "segment": ["s1", "s1", "s2", "s2", "s2", "s1", "s1"],
        "rfm_segment": ["Champions", "Loyal", "At risk", "Lost", "Champions", "Need attention", "Hibernating"],
        "value_tier": ["mature", "growth", "development", "development", "mature", "development", "development"],
        "clv": [100.0, 40.0, 10.0, 0.0, 80.0, 20.0, 30.0],
        "last_order_at": pd.to_datetime(["2024-03-30"] * 7),
    })
    customers["value"] = customers["clv"]
    churn = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4", "C5", "C7", "C9"],
                          "churn_probability": [0.1, 0.2, 0.7, 0.9, 0.6, 0.3, 0.5]})  # C6 missing, C9 unknown
    offers = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
                           "next_best_offer": ["P2", "P7", "P1", "P1", "P3", "P4"],
                           "next_best_offer_reason": ["rule A", "rule B", "pop", "pop", "pop", "pop"],
                           "next_best_offers": ["P2;P3", "P7", "P1", "P1", "P3", "P4"],
                           "next_best_offer_reasons": ["rule A;pop", "rule B", "pop", "pop", "pop", "pop"],
                           "offer_source": ["rule", "rule", "popularity", "popularity", "popularity", "popularity"],
                           "offer_confidence": [0.5, 0.4, 0.1, 0.1, 0.1, 0.1]})
    satisfaction = pd.DataFrame({"customer_id": ["C1", "C3"], "satisfaction_score": [80.0, 20.0],
                                 "loyalty_score": [70.0, 10.0]})
    top = pd.DataFrame({"customer_id": ["C1", "C2"], "top_categories": ["A;B", "B"]})
    return customers, churn, offers, satisfaction, top


def test_view_by_hand():
    customers, churn, offers, satisfaction, top = hand_inputs()
    v = cv.build_customer_view(customers, churn=churn, offers=offers, satisfaction=satisfaction,
                               top_categories=top, horizon_days=90, as_of=AS_OF)
    assert list(v.columns) == list(cv.VIEW_COLUMNS)
    assert v["customer_id"].tolist() == customers["customer_id"].tolist()  # C9 (churn only) not added
    v = v.set_index("customer_id")
    assert (v["horizon_days"] == 90).all() and (v["as_of"] == pd.Timestamp(AS_OF)).all()
    np.testing.assert_allclose(v["value_at_risk"].to_numpy(), [10.0, 8.0, 7.0, 0.0, 48.0, np.nan, 9.0])
    # high value = value ≥ 0.75 quantile of [100, 40, 10, 0, 80, 20, 30] = 40 + 0.5 × 40 = 60: C1 and C5
    assert v["recommended_action"].to_dict() == {
        "C1": "loyalty reward",               # low risk, Champions
        "C2": "cross-sell P7",                # low risk, an offer
        "C3": "low-cost win-back e-mail",     # 0.7 ≥ 0.5, value 10 < 60
        "C4": "low-cost win-back e-mail",     # 0.9, value 0
        "C5": "retention call/offer",         # 0.6, value 80 ≥ 60 (a Champion, but risk comes first)
        "C6": "review (no churn estimate)",   # no churn probability
        "C7": "regular newsletter",           # low risk, no offer, not a Champion
    }
    assert v.loc["C5", "action_rule"] == "retention" and v.loc["C7", "action_rule"] == "maintain"
    assert v.loc["C1", "satisfaction_score"] == 80.0 and np.isnan(v.loc["C2", "satisfaction_score"])
    assert v.loc["C1", "top_categories"] == "A;B" and pd.isna(v.loc["C3", "top_categories"])
    assert v.loc["C2", "offer_confidence"] == 0.4 and pd.isna(v.loc["C7", "next_best_offer"])
    cover = cv.view_coverage(v.reset_index()).set_index("column")["n_filled"]
    assert cover["churn_probability"] == 6 and cover["satisfaction_score"] == 2 and cover["customer_id"] == 7


def test_view_thresholds_change_actions():
    customers, churn, offers, _, _ = hand_inputs()
    v = cv.build_customer_view(customers, churn=churn, offers=offers, horizon_days=90, as_of=AS_OF,
                               high_risk=0.8, high_value_quantile=0.0).set_index("customer_id")
    # only C4 (0.9) is high risk now; its value 0 is never high
    assert v.loc["C4", "recommended_action"] == "low-cost win-back e-mail"
    assert v.loc["C5", "recommended_action"] == "loyalty reward"
    assert v.loc["C3", "recommended_action"] == "cross-sell P1"
    assert v["satisfaction_score"].isna().all() and v["top_categories"].isna().all()


def test_view_errors():
    customers, churn, offers, _, _ = hand_inputs()
    dup = pd.concat([churn, churn.iloc[[0]]])
    with pytest.raises(DataError, match="churn has 1 duplicated customer_id"):
        cv.build_customer_view(customers, churn=dup, offers=offers, horizon_days=90, as_of=AS_OF)
    with pytest.raises(DataError, match=r"customers lacks column\(s\) \['value'\]"):
        cv.build_customer_view(customers.drop(columns="value"), churn=churn, offers=offers, horizon_days=90,
                               as_of=AS_OF)
    with pytest.raises(DataError, match="offers lacks"):
        cv.build_customer_view(customers, churn=churn, offers=offers.drop(columns="next_best_offers"),
                               horizon_days=90, as_of=AS_OF)
    with pytest.raises(ParameterError, match="high_risk=1.5"):
        cv.build_customer_view(customers, churn=churn, offers=offers, horizon_days=90, as_of=AS_OF, high_risk=1.5)
    with pytest.raises(ParameterError, match="horizon_days=0"):
        cv.build_customer_view(customers, churn=churn, offers=offers, horizon_days=0, as_of=AS_OF)


def test_view_columns_documented():
    table = cv.view_columns_table()
    assert table["column"].tolist()[:3] == ["customer_id", "as_of", "segment"]
    assert table["description"].str.len().min() > 10
    for c in ("churn_probability", "value_at_risk", "next_best_offer_reasons", "recommended_action"):
        assert c in cv.VIEW_COLUMNS


# ---------------------------------------------------------------- the bundled sample

@pytest.fixture(scope="module")
def sample(sample_dir):
    preparation = prep.engine("pandas")
    _, cleaned = preparation.prepare(None, None, None)
    tables = cleaned.tables
    as_of = preparation.resolve_as_of(tables, None)
    profiles = cv.customer_profiles(tables, as_of, seed=0)
    truth = pd.read_parquet(sample_dir / "truth" / "customers_truth.parquet")
    truth["customer_id"] = truth["customer_id"].astype("string")
    return tables, as_of, profiles, truth


def test_sample_segments_match_planted(sample):
    _, _, profiles, truth = sample
    m = profiles.merge(truth[["customer_id", "segment"]], on="customer_id", suffixes=("", "_true"), validate="1:1")
    clustered = m[m["cluster"] >= 0]
    assert len(clustered) == 4226 and profiles.attrs["n_clusters"] == 4
    # measured: ARI 0.886 on the clustered customers (the data card: 0.89); 0.683 with the unclustered group
    assert adjusted_rand_score(clustered["segment_true"], clustered["segment"]) == pytest.approx(0.886, abs=0.01)
    table = pd.crosstab(clustered["segment"], clustered["segment_true"])
    majority = table.idxmax(axis=1)
    assert sorted(majority) == ["bargain hunters", "champions", "occasional", "regulars"]  # one cluster each
    assert table.max(axis=1).sum() / table.to_numpy().sum() == pytest.approx(0.958, abs=0.01)
    champions = majority[majority == "champions"].index[0]
    assert "high-frequency" in champions and "high-value" in champions
    bargain = majority[majority == "bargain hunters"].index[0]
    assert "discount-seeking" in bargain


def test_sample_view_rows_and_satisfaction(sample):
    tables, as_of, profiles, truth = sample
    orders = tables["orders"]
    done = orders[(orders["status"] == "completed") & (orders["ordered_at"] < as_of)]
    buyers = set(done["customer_id"].astype(str))
    # a stand-in churn score (the churn models are tested elsewhere): recency over the longest recency
    churn = profiles[["customer_id"]].assign(
        churn_probability=profiles["recency_days"] / profiles["recency_days"].max())
    sat = cv.satisfaction_scores(tables, as_of=as_of)
    assert cv.satisfaction_reason(tables, as_of=as_of) is None
    view = cv.build_customer_view(profiles, churn=churn, offers=None, satisfaction=sat,
                                  top_categories=cv.top_categories(tables, end=as_of), horizon_days=90, as_of=as_of)
    assert len(view) == len(buyers) == 5000 and view["customer_id"].is_unique
    assert set(view["customer_id"].astype(str)) == buyers
    m = view.merge(truth[["customer_id", "is_respondent", "satisfaction", "loyalty"]], on="customer_id")
    resp = m["is_respondent"].to_numpy(bool)
    assert resp.sum() == 2014
    assert m.loc[~resp, ["satisfaction_score", "loyalty_score"]].isna().all().all()
    # filled for respondents, except those who answered fewer than 2 of the 3 (4) items: 3 and 11
    assert m.loc[resp, "satisfaction_score"].notna().sum() == 2011
    assert m.loc[resp, "loyalty_score"].notna().sum() == 2003
    # the scores follow the planted latent constructs: measured r = 0.908 (satisfaction), 0.918 (loyalty)
    r_sat = m.loc[resp, ["satisfaction_score", "satisfaction"]].corr().iloc[0, 1]
    r_loy = m.loc[resp, ["loyalty_score", "loyalty"]].corr().iloc[0, 1]
    assert r_sat == pytest.approx(0.908, abs=0.01) and r_loy == pytest.approx(0.918, abs=0.01)
    assert view["top_categories"].notna().all()
    assert set(view["recommended_action"]) <= {"retention call/offer", "low-cost win-back e-mail", "loyalty reward",
                                               "regular newsletter"}


def test_online_retail_view_without_survey(online_retail_parquet):
    """UCI Online Retail through the shipped mapping: no survey, no categories; every buyer has a row."""
    preparation = prep.engine("pandas")
    _, cleaned = preparation.prepare(online_retail_parquet, None, MAPPINGS_DIR / "online_retail.yaml")
    tables = cleaned.tables
    as_of = preparation.resolve_as_of(tables, None)
    assert as_of == pd.Timestamp("2011-12-10")
    assert cv.satisfaction_scores(tables, as_of=as_of) is None
    assert "no survey_responses table" in cv.satisfaction_reason(tables, as_of=as_of)
    top = cv.top_categories(tables, end=as_of)
    assert top.empty and "no product categories" in top.attrs["reason"]
    profiles = cv.customer_profiles(tables, as_of, n_bootstrap=0)
    orders = tables["orders"]
    buyers = orders.loc[(orders["status"] == "completed") & (orders["ordered_at"] < as_of), "customer_id"].nunique()
    assert len(profiles) == buyers == 4338
    view = cv.build_customer_view(profiles, churn=None, offers=None, satisfaction=None, top_categories=top,
                                  horizon_days=90, as_of=as_of)
    assert len(view) == 4338 and view["customer_id"].is_unique
    assert view[["satisfaction_score", "loyalty_score", "top_categories", "churn_probability"]].isna().all().all()
    assert (view["recommended_action"] == "review (no churn estimate)").all()
