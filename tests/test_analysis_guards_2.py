"""Analyses on tiny or degenerate data: clear errors instead of raw exceptions (issue 14, item 7).

One customer or one order (segmentation, churn), a survey with constant answers (loyalty),
duration/event columns that are not in a customer table (churn), all orders cancelled (prep).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecrm_research import loyalty, prep, survival
from ecrm_research import segmentation as seg
from ecrm_research.exceptions import AnalysisError, ParameterError, SurvivalWarning
from ecrm_research.prep.orders import CompletedOrders, purchase_gaps, suggest_inactivity_days
from ecrm_research.report.runner import run_notebook

ECRM = str(Path(sys.executable).with_name("ecrm"))
ECSI_CONSTRUCTS = Path(__file__).resolve().parents[1] / "data" / "mappings" / "ecsi_mobi_constructs.yaml"


def _tiny_shop(sample_dir: Path, folder: Path, n_customers: int | None = None, *, one_order: bool = False,
               cancel_all: bool = False) -> Path:
    """Canonical CSV tables cut from the sample: the first ``n_customers`` buyers, or one order."""
    t = {n: pd.read_parquet(sample_dir / f"{n}.parquet") for n in ("customers", "products", "orders", "order_items")}
    orders = t["orders"]
    if one_order:
        orders = orders[orders["status"] == "completed"].iloc[:1]
    else:
        buyers = orders.loc[orders["status"] == "completed", "customer_id"].drop_duplicates().iloc[:n_customers]
        orders = orders[orders["customer_id"].isin(buyers)]
    if cancel_all:
        orders = orders.assign(status="cancelled")
    folder.mkdir(parents=True, exist_ok=True)
    orders.to_csv(folder / "orders.csv", index=False)
    t["order_items"][t["order_items"]["order_id"].isin(orders["order_id"])].to_csv(folder / "order_items.csv",
                                                                                 index=False)
    t["customers"][t["customers"]["customer_id"].isin(orders["customer_id"])].to_csv(folder / "customers.csv",
                                                                                     index=False)
    t["products"].to_csv(folder / "products.csv", index=False)
    return folder


# -- segmentation: one customer or one order ------------------------------------------------------

def test_require_customers_names_the_count_the_minimum_and_the_data():
    rfm = pd.DataFrame({"customer_id": ["c1"], "recency_days": [1], "frequency": [1], "monetary": [9.5]})
    with pytest.raises(AnalysisError) as e:
        seg.require_customers(rfm, source="shop.csv", as_of=pd.Timestamp("2024-03-01"))
    msg = str(e.value)
    assert "at least 5 customers with completed orders before 2024-03-01" in msg
    assert "the data in shop.csv have only 1 customer(s) (1 completed order(s))" in msg
    assert "RFM quintiles" in msg and "Use data covering more customers" in msg
    five = pd.concat([rfm] * 5, ignore_index=True)
    seg.require_customers(five)  # exactly the minimum: no error
    assert seg.MIN_CUSTOMERS == 5
    with pytest.raises(AnalysisError, match="have only 0 customer"):
        seg.require_customers(rfm.iloc[:0])


def test_rfm_scores_on_the_minimum_fill_every_quintile_once():
    rfm = pd.DataFrame({"customer_id": list("abcde"), "recency_days": [5, 4, 3, 2, 1], "frequency": [1, 2, 3, 4, 5],
                        "monetary": [10.0, 20, 30, 40, 50]})
    seg.require_customers(rfm)
    scored = seg.rfm_scores(rfm)
    assert scored["r_score"].tolist() == [1, 2, 3, 4, 5] and scored["f_score"].tolist() == [1, 2, 3, 4, 5]


def test_segmentation_notebook_on_a_one_order_shop_stops_in_step_2(sample_dir, tmp_path):
    data = _tiny_shop(sample_dir, tmp_path / "one_order", one_order=True)
    res = run_notebook("segmentation", data=str(data), out=tmp_path / "out", progress=False, render=False, pdf=False)
    assert res.status == "failed"
    assert "IndexError" not in res.error
    assert "AnalysisError" in res.error and "at least 5 customers" in res.error and "have only 1 customer" in res.error


def test_segmentation_notebook_runs_its_exercises_on_five_customers(sample_dir, tmp_path):
    """Five buyers, three of them with >= 3 orders: valid but tiny; every cell, exercises included, runs."""
    t = {n: pd.read_parquet(sample_dir / f"{n}.parquet") for n in ("customers", "products", "orders", "order_items")}
    done = t["orders"][t["orders"]["status"] == "completed"]
    freq = done.groupby("customer_id").size()
    keep = freq[freq >= 3].index[:3].tolist() + freq[freq == 1].index[:2].tolist()
    folder = tmp_path / "five"
    folder.mkdir()
    orders = t["orders"][t["orders"]["customer_id"].isin(keep)]
    orders.to_csv(folder / "orders.csv", index=False)
    t["order_items"][t["order_items"]["order_id"].isin(orders["order_id"])].to_csv(folder / "order_items.csv",
                                                                                 index=False)
    t["customers"][t["customers"]["customer_id"].isin(keep)].to_csv(folder / "customers.csv", index=False)
    t["products"].to_csv(folder / "products.csv", index=False)
    res = run_notebook("segmentation", data=str(folder), out=tmp_path / "out", progress=False, render=False,
                       pdf=False)
    assert res.status == "ok", res.error
    rfm = pd.read_csv(Path(res.out_dir) / "tables" / "rfm.csv")
    assert len(rfm) == 5
    executed = (Path(res.out_dir) / "segmentation.ipynb").read_text()
    assert "Exercise 2 needs more than 3 clustered customers; these data have 3." in executed


# -- churn: tiny shops, columns that are not there ----------------------------------------------

def test_require_table_columns_names_the_parameter_the_file_and_the_columns():
    frame = pd.DataFrame({"customerID": ["a"], "tenure": [3], "Churn": ["No"]})
    with pytest.raises(ParameterError) as e:
        survival.require_table_columns(frame, "tenur", "Churn", source="telco.csv")
    msg = str(e.value)
    assert "duration_col='tenur' is not a column of telco.csv" in msg and "Did you mean 'tenure'?" in msg
    assert "Columns present: customerID, tenure, Churn" in msg and "-p duration_col COLUMN" in msg
    assert e.value.allowed == ["customerID", "tenure", "Churn"]
    assert isinstance(e.value, ValueError)  # callers catching ValueError keep working
    with pytest.raises(ParameterError, match="event_col='churned' is not a column of telco.csv"):
        survival.require_table_columns(frame, "tenure", "churned", source="telco.csv")
    with pytest.raises(ParameterError, match="event_col not given.*-p duration_col tenure -p event_col Churn"):
        survival.require_table_columns(frame, "tenure", None, source="telco.csv")
    survival.require_table_columns(frame, "tenure", "Churn")  # both present: no error


def test_churn_notebook_on_a_customer_table_with_a_wrong_column(telco_csv, tmp_path):
    small = tmp_path / "telco_small.csv"
    pd.read_csv(telco_csv, nrows=200).to_csv(small, index=False)
    res = run_notebook("churn", data=str(small), out=tmp_path / "out", progress=False, render=False, pdf=False,
                       params={"data_format": "customers", "duration_col": "Tenure", "event_col": "Churn"})
    assert res.status == "failed"
    assert "ParameterError" in res.error and "duration_col='Tenure'" in res.error
    assert "telco_small.csv" in res.error and "Did you mean 'tenure'?" in res.error


def _churn_data(events: list[int]) -> survival.ChurnData:
    n = len(events)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "duration": np.arange(1, n + 1, dtype=float),
                          "event": events, "x": np.linspace(0, 1, n)})
    return survival.ChurnData(frame=frame, covariates=["x"], unit="days", inactivity_days=90)


def test_require_churn_data_counts_customers_and_events():
    with pytest.raises(AnalysisError) as e:
        survival.require_churn_data(_churn_data([1]), source="shop/")
    msg = str(e.value)
    assert "at least 10 customers" in msg and "1 customer(s) with 1 churn event(s) in shop/" in msg
    assert "inactivity_days" not in msg  # a shorter window does not add customers
    with pytest.raises(AnalysisError) as e:
        survival.require_churn_data(_churn_data([1] + [0] * 11))
    msg = str(e.value)
    assert "at least 2 churn events" in msg and "12 customer(s) with 1 churn event(s)" in msg
    assert "shorter inactivity window than inactivity_days=90" in msg
    survival.require_churn_data(_churn_data([1, 1] + [0] * 8))  # 10 customers, 2 events: enough


def test_holdout_concordance_with_a_single_censored_customer_splits_unstratified():
    rng = np.random.default_rng(0)
    n = 40
    x = rng.normal(size=n)
    frame = pd.DataFrame({"duration": rng.exponential(10 * np.exp(-x)) + 0.1, "event": [0] + [1] * (n - 1), "x": x})
    with pytest.warns(SurvivalWarning, match=r"not stratified by churn: the outcomes are \{1: 39, 0: 1\}"):
        res = survival.holdout_concordance(frame, covariates=["x"])
    assert res["n_train"] + res["n_test"] == n and 0 <= res["concordance_test"] <= 1
    with pytest.raises(AnalysisError, match="A holdout check needs more customers: 3 split"):
        survival.holdout_concordance(frame.iloc[:3], covariates=["x"])


def test_cox_without_usable_covariates_says_why():
    frame = pd.DataFrame({"duration": [1.0, 2, 3, 4, 5, 6], "event": [1, 0, 1, 1, 0, 1], "flat": [1.0] * 6})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurvivalWarning)
        with pytest.raises(AnalysisError) as e:
            survival.ChurnCoxModel(drop_problems=True).fit(frame, "duration", "event", ["flat"])
    msg = str(e.value)
    assert "No usable covariate" in msg and "6 customers, 4 churn events" in msg and "flat" in msg
    assert "vary between customers" in msg


def test_churn_cli_on_a_one_customer_shop_names_the_counts(sample_dir, tmp_path):
    data = _tiny_shop(sample_dir, tmp_path / "one_customer", 1)
    r = subprocess.run([ECRM, "run", "churn", "--data", str(data), "--out", str(tmp_path / "out"), "--no-pdf"],
                       capture_output=True, text=True, timeout=600)
    text = r.stdout + r.stderr
    assert r.returncode != 0 or "failed" in text
    assert "AnalysisError" in text and "at least 10 customers" in text and "1 customer(s)" in text
    assert "Traceback" not in text


# -- loyalty: constant answers --------------------------------------------------------------------

@pytest.fixture(scope="module")
def mobi(ecsi_dir) -> pd.DataFrame:
    return pd.read_csv(ecsi_dir / "mobi.csv")


def _constructs() -> dict[str, list[str]]:
    return dict(loyalty.load_constructs(str(ECSI_CONSTRUCTS)).constructs)


def test_drop_constant_items_drops_a_flat_item_with_a_reason(mobi):
    survey = mobi.assign(PERQ3=8)
    sc = loyalty.score_constructs(survey, _constructs(), scale_min=1, scale_max=10)
    with pytest.warns(UserWarning, match=r"PERQ3 \(perceived_quality\): no variance: all 250 respondents answered 8"):
        kept, review = loyalty.drop_constant_items(sc.items, _constructs())
    assert kept["perceived_quality"] == ["PERQ1", "PERQ2", "PERQ4", "PERQ5", "PERQ6", "PERQ7"]
    assert kept["loyalty"] == _constructs()["loyalty"]
    assert review[["construct", "item", "decision"]].values.tolist() == [["perceived_quality", "PERQ3", "drop"]]
    assert review["mean"].iloc[0] == 8 and review["sd"].iloc[0] == 0
    # the CFA now fits where it raised LinAlgError before
    cfa = loyalty.measurement_model(sc.items, kept)
    assert "PERQ3" not in set(cfa.loadings["item"]) and cfa.loadings["std_loading"].notna().all()


def test_drop_constant_items_leaves_a_varying_survey_alone(mobi):
    sc = loyalty.score_constructs(mobi, _constructs(), scale_min=1, scale_max=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept, review = loyalty.drop_constant_items(sc.items, _constructs())
    assert kept == _constructs() and review.empty
    assert list(review.columns) == loyalty.scoring.CONSTANT_ITEM_COLUMNS


def test_a_constant_construct_is_an_error_naming_its_items(mobi):
    survey = mobi.assign(CUSL1=7, CUSL2=7, CUSL3=7)
    sc = loyalty.score_constructs(survey, _constructs(), scale_min=1, scale_max=10)
    with pytest.raises(AnalysisError) as e:
        loyalty.drop_constant_items(sc.items, _constructs())
    msg = str(e.value)
    assert "loyalty: CUSL1 (no variance: all 250 respondents answered 7)" in msg and "CUSL3" in msg
    assert "0 item(s) left" in msg and "construct mapping" in msg


def test_a_two_item_construct_with_one_flat_item_is_an_error(mobi):
    survey = mobi.assign(PERV1=np.nan)  # nobody answered PERV1: perceived_value would keep one item
    sc = loyalty.score_constructs(survey, _constructs(), scale_min=1, scale_max=10)
    with pytest.raises(AnalysisError, match=r"perceived_value: PERV1 \(no variance: nobody answered this item\) "
                                            r"-> 1 item\(s\) left"):
        loyalty.drop_constant_items(sc.items, _constructs())


def test_measurement_model_refuses_a_flat_item_instead_of_linalgerror(mobi):
    sc = loyalty.score_constructs(mobi.assign(PERQ3=8), _constructs(), scale_min=1, scale_max=10)
    with pytest.raises(AnalysisError, match=r"item\(s\) \['PERQ3'\] have no variance.*drop_constant_items"):
        loyalty.measurement_model(sc.items, _constructs())


def test_loyalty_notebook_drops_a_constant_item_and_lists_it(ecsi_dir, mobi, tmp_path):
    survey = tmp_path / "mobi_flat.csv"
    mobi.assign(CUSL2=5).to_csv(survey, index=False)
    res = run_notebook("loyalty", data=str(survey), out=tmp_path / "out", progress=False, render=False, pdf=False,
                       params={"data_format": "survey", "constructs": str(ECSI_CONSTRUCTS), "n_boot": 50})
    assert res.status == "ok", res.error
    tables = Path(res.out_dir) / "tables"
    items = pd.read_csv(tables / "item_analysis.csv")
    row = items[items["item"] == "CUSL2"]
    assert row[["construct", "decision", "reason"]].values.tolist() == [
        ["loyalty", "drop", "no variance: all 250 respondents answered 5"]]
    rel = pd.read_csv(tables / "reliability.csv").set_index("construct")
    assert rel.loc["loyalty", "n_items"] == 2


# -- prep: all orders cancelled ---------------------------------------------------------------------

def test_completed_orders_message_says_cleaning_removed_everything(sample_dir, tmp_path):
    data = _tiny_shop(sample_dir, tmp_path / "cancelled", 20, cancel_all=True)
    p = prep.engine("pandas")
    cleaned = p.clean(p.load(str(data), None, None))
    assert len(cleaned.tables["orders"]) == 0
    with pytest.raises(AnalysisError) as e:
        CompletedOrders(cleaned.tables)
    msg = str(e.value)
    assert "'cancelled': 0" not in msg and "{" not in msg
    assert "cleaned orders table is empty" in msg and "removed in cleaning" in msg
    assert "reconciliation and the quarantine" in msg and "value_maps: status" in msg


def test_completed_orders_message_counts_the_statuses_left():
    orders = pd.DataFrame({"order_id": ["1", "2", "3"], "customer_id": ["a", "b", "c"],
                           "ordered_at": pd.to_datetime(["2024-01-01"] * 3),
                           "status": pd.Categorical(["returned"] * 3, categories=["completed", "cancelled", "returned"])})
    with pytest.raises(AnalysisError) as e:
        purchase_gaps({"orders": orders})
    msg = str(e.value)
    assert "among the 3 orders left after cleaning (statuses: {'returned': 3})" in msg
    assert "'completed': 0" not in msg


def test_suggest_inactivity_days_without_repeat_buyers_says_what_to_pass():
    with pytest.raises(AnalysisError, match=r"every customer has a single completed order.*-p inactivity_days 180"):
        suggest_inactivity_days(pd.Series([], dtype=float))
