"""The Spark preparation engine (ecrm_research.prep.spark) gives the pandas path's results.

Reference = the pandas path on the same input: ``quality.clean`` (reconciliation, quarantine,
summary), ``prep_customers.rfm_table`` / ``customer_features`` and ``prep_churn.label_churn``
(frame and accounting). Integers, dates, labels and row order must be identical; sums of money
may differ by floating-point round-off only (rtol 1e-9; about 1e-15 is measured).

One local[2] session for the module (tests marked ``spark``); locally a missing pyspark skips
them, in CI (CI=true or ECRM_REQUIRE_DATASETS=1) it fails.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import skip_or_fail
from table_checks import RTOL, assert_same_table

from ecrm_research import survival
from ecrm_research.data import io, quality, schema
from ecrm_research.exceptions import AnalysisError, ParameterError, SchemaError
from ecrm_research.prep import churn as prep_churn
from ecrm_research.prep import customers as prep_customers
from ecrm_research.prep import orders as prep_orders

pytestmark = pytest.mark.spark

if importlib.util.find_spec("pyspark") is None:  # pragma: no cover - depends on the installation
    skip_or_fail("pyspark is not installed (pip install pyspark; needs Java 17+)")

from ecrm_research.prep import spark as spark_prep  # noqa: E402 - after the skip
from ecrm_research.prep.spark.gaps import numpy_linear_quantile  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    """One local[2] session for the module (the association engine's session, reused).

    When this module starts the JVM, it compiles with the quick JIT tier only: these short jobs
    then spend about a third less CPU compiling Spark's own code. Results do not depend on it.
    """
    return spark_prep.spark_session("local[2]", {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"})


# ---------------------------------------------------------------------------------------------
# the bundled sample: pandas reference and Spark results, each computed once
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pandas_clean(sample_dir) -> quality.CleanResult:
    return quality.prepare(str(sample_dir))[1]


@pytest.fixture(scope="module")
def spark_clean(spark, sample_dir) -> spark_prep.SparkCleanResult:
    # the sample is valid (test_sample.py); validation is tested on the small CSV folders below
    tables = spark_prep.read_tables(sample_dir, spark, validate=False)
    res = spark_prep.clean(tables)
    yield res
    res.unpersist()


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, dtypes, row order; exact for everything but floats (rtol 1e-9)."""
    assert_same_table(got, want, rtol=RTOL)


def max_rel_diff(got: pd.DataFrame, want: pd.DataFrame) -> float:
    cols = [c for c in want.columns if pd.api.types.is_float_dtype(want[c])]
    a, b = got[cols].to_numpy(float), want[cols].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
    return float(np.nanmax(np.where(a == b, 0.0, d))) if d.size else 0.0


def quarantine_rows(q: pd.DataFrame) -> list[tuple]:
    """Quarantine rows as sorted tuples (the pandas ``row`` position has no Spark equivalent)."""
    cols = ["table", "reason", "order_id", "line_no", "customer_id", "product_id", "contact_id", "source_row"]
    q = q[cols].astype(object)
    rows = [tuple(None if pd.isna(v) else (int(v) if c in ("line_no", "source_row") else str(v))
                  for c, v in zip(cols, r)) for r in q.itertuples(index=False)]
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def test_sample_reconciliation_identical(spark_clean, pandas_clean):
    pd.testing.assert_frame_equal(spark_clean.reconciliation, pandas_clean.reconciliation)
    assert spark_clean.reconciliation.set_index("table").loc["orders", "cancelled"] == 1612


def test_sample_quarantine_and_summary_identical(spark_clean, pandas_clean, tmp_path):
    got = spark_clean.quarantine.toPandas()
    assert quarantine_rows(got) == quarantine_rows(pandas_clean.quarantine)
    s, p = spark_clean.summary.set_index("measure")["value"], pandas_clean.summary.set_index("measure")["value"]
    assert s.index.tolist() == p.index.tolist()
    np.testing.assert_allclose(s.astype(float), p.astype(float), rtol=RTOL)
    path = spark_clean.write_quarantine(tmp_path / "quarantine")
    back = spark_clean.quarantine.sparkSession.read.parquet(path)
    assert back.count() == len(pandas_clean.quarantine)


def test_sample_rfm_identical(spark_clean, pandas_clean):
    as_of = "2024-06-30"  # the default as-of date is customer_features' (below)
    t = pandas_clean.tables
    want = prep_customers.rfm_table(t["orders"], t["order_items"], as_of)
    got = spark_prep.rfm_table(spark_clean.tables, as_of)
    assert_same_frame(got, want)
    assert got.attrs["as_of"] == want.attrs["as_of"]
    assert max_rel_diff(got, want) < 1e-12


def test_sample_customer_features_identical(spark_clean, pandas_clean, capsys):
    want = prep_customers.customer_features(pandas_clean.tables)
    got = spark_prep.customer_features(spark_clean.tables, progress=True)
    assert [c for c in got.columns if c.startswith("cat_")] == [c for c in want.columns if c.startswith("cat_")]
    assert len([c for c in got.columns if c.startswith("cat_")]) == 5
    assert_same_frame(got, want)
    assert max_rel_diff(got, want) < 1e-12
    assert "spark features" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs", [
    {},  # 180 days, end of data, 90-day behaviour window
    {"inactivity_days": 120, "as_of": "2024-06-30 12:00", "covariate_window_days": 60},
])
def test_sample_churn_labels_identical(spark_clean, pandas_clean, kwargs):
    want = prep_churn.label_churn(pandas_clean.tables, **kwargs)
    got = spark_prep.label_churn(spark_clean.tables, **kwargs)
    assert_same_frame(got.frame, want.frame)
    pd.testing.assert_frame_equal(got.accounting, want.accounting)
    assert got.covariates == want.covariates
    assert (got.definition, got.as_of, got.inactivity_days, got.covariate_window_days) == \
        (want.definition, want.as_of, want.inactivity_days, want.covariate_window_days)
    assert 0 < got.n_events < got.n_customers
    assert max_rel_diff(got.frame, want.frame) < 1e-12


def test_sample_inactivity_suggestion_identical(spark_clean, pandas_clean):
    """The exact 90th percentile of purchase gaps, from the gaps inside Spark's bracket."""
    gaps = prep_orders.purchase_gaps(pandas_clean.tables)
    assert spark_prep.suggest_inactivity_days(spark_clean.tables, 0.9, round_to=1) == \
        prep_orders.suggest_inactivity_days(gaps, 0.9, round_to=1)
    days = np.sort(gaps.to_numpy())
    for q in np.linspace(0, 1, 41):  # numpy's interpolation, to the last bit
        assert numpy_linear_quantile(days, 0, len(days), q) == np.quantile(days, q)
    start = len(days) // 2 - 5  # from a slice, as the bracket gives it
    assert numpy_linear_quantile(days[start:], start, len(days), 0.5) == np.quantile(days, 0.5)


# ---------------------------------------------------------------------------------------------
# small hand-made tables with every reason code planted
# ---------------------------------------------------------------------------------------------

def dirty_tables() -> dict[str, pd.DataFrame]:
    """Orders o1..o12 and lines with one planted row per reason code (comments), plus returned
    orders, negative lines, same-time orders, products without a category and missing values."""
    ts = pd.Timestamp
    customers = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4"],
        "registered_at": [ts("2023-12-01"), ts("2023-12-15"), None, ts("2024-01-02")],
        "channel": ["app", "web", None, "app"],
        "region": ["North", None, "South", "North"],
        "is_member": [True, False, None, True],
    })
    products = pd.DataFrame({
        "product_id": ["p1", "p2", "p3", "POST"],
        "category": ["Tea & Coffee", "Garden", None, None],
        "list_price": [10.0, 5.0, 2.0, 3.0],
    })
    orders = pd.DataFrame([
        ("o1", "c1", ts("2024-01-05 10:00"), "completed", 2.0, 3.0, 0.1, "app"),
        ("o2", "c9", ts("2024-01-06 10:00"), "completed", 2.0, 2.0, 0.0, "web"),    # orphan customer
        ("o3", None, ts("2024-01-07 10:00"), "completed", 2.0, 2.0, 0.0, "web"),    # missing customer
        ("o4", "c2", ts("2024-01-08 10:00"), "cancelled", 2.0, 2.0, 0.0, "web"),    # cancelled
        ("o5", "c2", ts("2024-01-09 10:00"), "completed", 2.0, 1.0, None, "web"),   # all lines bad: no_kept_lines
        ("o6", "c2", ts("2024-01-10 10:00"), "completed", None, 1.0, 0.2, None),    # no lines: kept
        ("o7", "c1", ts("2024-02-01 09:00"), "returned", 2.0, 2.0, 0.0, "app"),     # return document
        ("o8", "c1", ts("2024-02-01 09:00"), "completed", 2.0, 5.0, 0.3, "web"),
        ("o9", "c1", ts("2024-09-15 18:30"), "completed", 2.0, 1.0, 0.0, "app"),    # after a long gap
        ("o10", "c3", ts("2024-03-03 03:03"), "completed", 3.0, 1.0, None, None),
        ("o11", "c3", ts("2024-03-03 03:03"), "completed", 1.0, 4.0, 0.5, "web"),   # same time as o10
        ("o12", "c4", ts("2024-11-30 23:59"), "completed", 2.0, 2.0, 0.0, "app"),   # too new for the window
    ], columns=["order_id", "customer_id", "ordered_at", "status", "promised_days", "delivery_days",
                "discount_rate", "channel"])
    items = pd.DataFrame([
        ("o1", 0, "p1", 2.0, 10.0), ("o1", 1, "p2", 1.0, 5.0),
        ("o1", 2, "p1", 2.0, 10.0),    # duplicate_row (opt-in): copy of line 0
        ("o1", 3, "POST", 1.0, 3.0),   # non_product (opt-in)
        ("o1", 4, "p404", 1.0, 1.0),   # orphan_key: unknown product
        ("o1", 5, "p1", -1.0, 10.0),   # nonpositive_quantity
        ("o1", 6, "p2", 1.0, 0.0),     # nonpositive_price
        ("o2", 0, "p1", 1.0, 10.0),    # orphan_key (cascaded from the order)
        ("o3", 0, "p1", 1.0, 10.0),    # missing_customer (cascaded)
        ("o4", 0, "p2", 3.0, 5.0),     # cancelled (cascaded)
        ("o5", 0, "p1", 0.0, 10.0), ("o5", 1, "p2", 1.0, -5.0),
        ("o7", 0, "p1", -1.0, 10.0), ("o7", 1, "p2", 2.0, 5.0),
        ("o8", 0, "p3", 4.0, 2.5), ("o8", 1, "p1", 1.0, 10.0), ("o8", 2, "p2", -2.0, 5.0),
        ("o9", 0, "p2", 3.0, 5.0), ("o10", 0, "p1", 1.0, 9.5), ("o11", 0, "p3", 2.0, 2.0),
        ("o12", 0, "p1", 1.0, 10.0),
        ("o99", 0, "p1", 1.0, 10.0),   # orphan_key: no such order
    ], columns=["order_id", "line_no", "product_id", "quantity", "unit_price"])
    items["source_row"] = np.arange(len(items)) + 2
    contacts = pd.DataFrame({
        "contact_id": ["s1", "s2", "s3", "s4"],
        "customer_id": ["c1", "c9", "c2", "c3"],   # s2: orphan_key
        "contacted_at": [ts("2024-01-20"), ts("2024-01-21"), ts("2024-01-12"), ts("2024-06-01")],
        "reason": ["delivery", "refund", "delivery", "other"],
    })
    raw = {"customers": customers, "products": products, "orders": orders, "order_items": items,
           "service_contacts": contacts}
    return {name: schema.coerce_table(df, name) for name, df in raw.items()}


@pytest.fixture(scope="module")
def dirty() -> dict[str, pd.DataFrame]:
    return dirty_tables()


@pytest.fixture(scope="module")
def dirty_spark(spark, dirty):
    return spark_prep.from_pandas(dirty, spark)


POLICIES = {  # the default policy is the sample's (above); "everything" adds the opt-in reasons to it
    "everything": quality.CleaningPolicy(drop_duplicate_rows=True, drop_non_product=True),
    "nothing_optional": quality.CleaningPolicy(drop_missing_customer=False, drop_cancelled=False,
                                               drop_nonpositive_quantity=False, drop_nonpositive_price=False),
}


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_reason_code_like_pandas(dirty, dirty_spark, policy):
    want = quality.clean(dirty, POLICIES[policy], non_product_codes=["POST"])
    got = spark_prep.clean(dirty_spark, POLICIES[policy], non_product_codes=["POST"], persist=False)
    pd.testing.assert_frame_equal(got.reconciliation, want.reconciliation)
    assert quarantine_rows(got.quarantine.toPandas()) == quarantine_rows(want.quarantine)
    if policy == "everything":
        rec = got.reconciliation.set_index("table")
        planted = {"orphan_key": 3, "missing_customer": 1, "cancelled": 1, "nonpositive_quantity": 4,
                   "nonpositive_price": 2, "duplicate_row": 1, "non_product": 1}
        assert rec.loc["order_items", list(planted)].to_dict() == planted
        order_reasons = ["orphan_key", "missing_customer", "cancelled", "no_kept_lines"]
        assert rec.loc["orders", order_reasons].tolist() == [1, 1, 1, 1]
        assert rec.loc["service_contacts", "orphan_key"] == 1
        kept = {k: v.toPandas() for k, v in got.tables.items()}
        assert sorted(kept["orders"]["order_id"]) == sorted(want.tables["orders"]["order_id"])
        assert len(kept["order_items"]) == len(want.tables["order_items"])


def test_analyses_on_uncleaned_tables_like_pandas(dirty, dirty_spark):
    """Returned orders, negative lines, missing customers/categories/discounts, same-time orders."""
    as_of = "2024-12-01"
    assert_same_frame(spark_prep.rfm_table(dirty_spark, as_of),
                      prep_customers.rfm_table(dirty["orders"], dirty["order_items"], as_of))
    got = spark_prep.customer_features(dirty_spark, as_of, top_categories=3)
    want = prep_customers.customer_features(dirty, as_of, top_categories=3)
    assert_same_frame(got, want)
    assert "cat_unknown" in got.columns
    kwargs = {"inactivity_days": 60, "covariate_window_days": 30, "as_of": "2024-12-01"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", survival.SurvivalWarning)
        got_c = spark_prep.label_churn(dirty_spark, **kwargs)
    want_c = prep_churn.label_churn(dirty, **kwargs)
    assert_same_frame(got_c.frame, want_c.frame)
    pd.testing.assert_frame_equal(got_c.accounting, want_c.accounting)
    assert got_c.covariates == want_c.covariates
    assert got_c.frame["returned_after_churn"].any()
    # orders alone: no spend, contacts or registration attributes; channel from the first order
    only = {"orders": dirty_spark["orders"]}
    got_o = spark_prep.label_churn(only, **kwargs)
    want_o = prep_churn.label_churn({"orders": dirty["orders"]}, **kwargs)
    assert_same_frame(got_o.frame, want_o.frame)
    pd.testing.assert_frame_equal(got_o.accounting, want_o.accounting)
    assert "channel" in got_o.covariates and "spend_window" not in got_o.frame


def test_churn_warnings_and_errors_like_pandas(dirty_spark):
    with warnings.catch_warnings():  # raised as an error: stops before any Spark work
        warnings.simplefilter("error", survival.SurvivalWarning)
        with pytest.raises(survival.SurvivalWarning, match="look-ahead"):
            spark_prep.label_churn(dirty_spark, inactivity_days=60, covariate_window_days=90)
    with pytest.raises(AnalysisError, match="No completed orders on or before"):
        spark_prep.label_churn(dirty_spark, as_of="2023-01-01")
    with pytest.raises(AnalysisError, match="no completed orders before the as-of date"):
        spark_prep.rfm_table(dirty_spark, "2023-01-01")


def test_rfm_refuses_duplicate_order_ids(spark, dirty):
    orders = pd.concat([dirty["orders"], dirty["orders"].iloc[[0]]], ignore_index=True)
    tables = spark_prep.from_pandas({"orders": orders, "order_items": dirty["order_items"]}, spark, validate=False)
    with pytest.raises(SchemaError, match="order_id is not unique .* first: 'o1'"):
        spark_prep.rfm_table(tables, "2024-12-01")


def values(df: pd.DataFrame) -> dict[str, list]:
    """Column → Python values (missing = None), so Spark's and pandas' dtypes compare by value."""
    out = {}
    for c in df.columns:
        s = df[c].astype(object)
        out[c] = [None if pd.isna(v) else (v.item() if hasattr(v, "item") and not isinstance(v, pd.Timestamp)
                                            else v) for v in s]
    return out


def test_csv_folder_read_like_the_pandas_reader(spark, dirty, tmp_path):
    """CSV text parsed to the canonical types as io.load_dataset does: ';' separator, decimal
    comma, day-first dates, padded ids, upper-case categories, yes/no flags, empty cells."""
    for name, df in dirty.items():
        df = df.copy()
        for c in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[c]):
                df[c] = df[c].dt.strftime("%d/%m/%Y %H:%M")
        if name == "orders":
            df["customer_id"] = " " + df["customer_id"].astype(object).fillna("") + "\u00a0"
            df["status"] = df["status"].astype(str).str.upper()
        df.to_csv(tmp_path / f"{name}.csv", index=False, sep=";", decimal=",")
    options = {"sep": ";", "decimal": ",", "date_format": "%d/%m/%Y %H:%M"}
    got = spark_prep.read_tables(tmp_path, spark, **options)
    want = io.load_dataset(tmp_path, "canonical", **options).tables
    assert list(got) == list(want)
    assert got["orders"].schema["ordered_at"].dataType.typeName() == "timestamp_ntz"
    for name in want:
        assert values(got[name].toPandas()) == values(want[name]), name


def test_missing_column_names_file_and_column(spark, dirty, tmp_path):
    for name, df in dirty.items():
        df = df.drop(columns=["status"]) if name == "orders" else df
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(SchemaError, match=r"orders\.csv: required column\(s\) \['status'\] missing") as err:
        spark_prep.read_tables(tmp_path, spark)
    assert err.value.column == "status" and err.value.source.endswith("orders.csv")


def test_bad_values_and_duplicate_keys_are_schema_errors(spark, dirty, tmp_path):
    for name, df in dirty.items():
        if name not in schema.REQUIRED_TABLES:
            continue
        if name == "orders":
            df = df.astype({"status": object})
            df.loc[3, "status"] = "lost"
        if name == "order_items":
            df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(SchemaError, match=r"column 'status' has 1 value\(s\) that are not one of .* 'lost'"):
        spark_prep.read_tables(tmp_path, spark)
    dirty["orders"].to_csv(tmp_path / "orders.csv", index=False)
    with pytest.raises(SchemaError, match=r"key \['order_id', 'line_no'\] is not unique: 1 surplus"):
        spark_prep.read_tables(tmp_path, spark)


def test_clean_rejects_a_policy_that_is_not_a_cleaning_policy(dirty_spark):
    with pytest.raises(ParameterError, match="CleaningPolicy"):
        spark_prep.clean(dirty_spark, {"drop_cancelled": False})
    with pytest.raises(SchemaError, match="order_items"):
        spark_prep.clean({"orders": dirty_spark["orders"]})


# ---------------------------------------------------------------------------------------------
# plausibility guards: implausible_date, non_finite_value, implausible_value (data/plausibility.py)
# ---------------------------------------------------------------------------------------------

def guarded_tables() -> dict[str, pd.DataFrame]:
    """:func:`dirty_tables` plus values that parse but cannot be right, with the precedence
    (orphan_key, then the guards, then the other reasons) planted in the comments."""
    t = dirty_tables()
    ts, inf, nan = pd.Timestamp, float("inf"), float("nan")
    orders = pd.DataFrame([
        ("o13", "c1", ts("1900-01-01"), "completed"),   # implausible_date (too early)
        ("o14", "c2", ts("2099-12-31"), "completed"),   # implausible_date (too late)
        ("o15", "c9", ts("1900-01-01"), "completed"),   # orphan_key wins over the date
        ("o16", "c1", ts("1900-01-01"), "cancelled"),   # implausible_date wins over cancelled
        ("o17", None, ts("2099-12-31"), "completed"),   # implausible_date wins over missing_customer
        ("o18", "c4", ts("2024-05-05"), "completed"),   # its only line is inf: no_kept_lines
    ], columns=["order_id", "customer_id", "ordered_at", "status"])
    items = pd.DataFrame([
        ("o1", 7, "p1", 1.0, inf),       # non_finite_value
        ("o1", 8, "p2", 1.0, nan),       # non_finite_value
        ("o8", 3, "p1", 1.0, 1e300),     # implausible_value (price)
        ("o9", 1, "p2", 2e6, 5.0),       # implausible_value (quantity)
        ("o9", 2, "p2", -2e6, -1.0),     # implausible_value wins over nonpositive quantity/price
        ("o1", 9, "p404", 1.0, nan),     # orphan_key (unknown product) wins over non_finite_value
        ("o4", 1, "p1", 1.0, -inf),      # non_finite_value wins over the order's cancelled
        ("o13", 0, "p1", 1.0, inf),      # the order's implausible_date wins over the line's guard
        ("o14", 0, "p1", 1.0, 10.0), ("o15", 0, "p1", 1.0, 10.0), ("o16", 0, "p1", 1.0, 10.0),
        ("o17", 0, "p1", 1.0, 10.0),
        ("o18", 0, "p1", inf, 10.0),     # non_finite_value (quantity)
    ], columns=["order_id", "line_no", "product_id", "quantity", "unit_price"])
    items["source_row"] = np.arange(len(items)) + 100
    contacts = pd.DataFrame({"contact_id": ["s5", "s6", "s7"], "customer_id": ["c1", "c9", "c2"],
                             "contacted_at": [ts("1900-01-01"), ts("1900-01-01"), ts("2099-12-31")],
                             "reason": ["other", "other", "other"]})   # s6: orphan_key wins
    add = {"orders": orders, "order_items": items, "service_contacts": contacts}
    for name, extra in add.items():
        t[name] = schema.coerce_table(pd.concat([t[name], schema.coerce_table(extra, name)], ignore_index=True),
                                      name)
    return t


GUARD_POLICIES = {
    "default": quality.CleaningPolicy(),
    "wide_bounds": quality.CleaningPolicy(min_date=None, max_date="2099-12-31", max_unit_price=None,
                                          max_abs_quantity=None),
    "everything": quality.CleaningPolicy(drop_duplicate_rows=True, drop_non_product=True, max_date="2025-12-31"),
}


@pytest.mark.parametrize("policy", list(GUARD_POLICIES))
def test_plausibility_guards_like_pandas(spark, policy):
    """Same reconciliation (exact, guard columns only when they occur) and same quarantine keys
    and reasons as quality.clean on a 1900/2099 date, inf/NaN/1e300 prices and a 2e6 quantity."""
    tables = guarded_tables()
    pol = GUARD_POLICIES[policy]
    want = quality.clean(tables, pol, non_product_codes=["POST"])
    # NaN unit prices fail validation (the column is not nullable): clean must still set them aside
    got = spark_prep.clean(spark_prep.from_pandas(tables, spark, validate=False), pol,
                           non_product_codes=["POST"], persist=False)
    pd.testing.assert_frame_equal(got.reconciliation, want.reconciliation)
    got_q = got.quarantine.toPandas()
    assert quarantine_rows(got_q) == quarantine_rows(want.quarantine)
    rec = got.reconciliation.set_index("table")
    assert rec["reconciles"].all()
    assert (rec["input_rows"] == rec["kept_rows"] + rec["quarantined_rows"]).all()
    reason = {(r.table, r.order_id, r.line_no, r.contact_id): r.reason
              for r in got_q.astype(object).where(got_q.notna(), None).itertuples()}
    if policy == "wide_bounds":  # no date or bound guard: no column for them
        assert "implausible_date" not in rec.columns and "implausible_value" not in rec.columns
        assert rec.loc["order_items", "non_finite_value"] == 5
        assert reason[("order_items", "o9", 2, None)] == "nonpositive_quantity"
        return
    guards = ["implausible_date", "non_finite_value", "implausible_value"]
    assert list(rec.columns[-4:]) == [*guards, "reconciles"]
    assert "conflicting_order" not in rec.columns  # lines files only
    assert rec.loc["orders", guards].tolist() == [4, 0, 0]
    assert rec.loc["order_items", guards].tolist() == [4, 4, 3]
    assert rec.loc["service_contacts", guards].tolist() == [2, 0, 0]
    assert rec.loc["customers", guards].tolist() == [0, 0, 0]
    assert {k: reason[k] for k in [("orders", "o15", None, None), ("orders", "o16", None, None),
                                   ("orders", "o17", None, None), ("orders", "o18", None, None),
                                   ("order_items", "o1", 9, None), ("order_items", "o4", 1, None),
                                   ("order_items", "o13", 0, None), ("order_items", "o9", 2, None),
                                   ("service_contacts", None, None, "s6")]} == {
        ("orders", "o15", None, None): "orphan_key", ("orders", "o16", None, None): "implausible_date",
        ("orders", "o17", None, None): "implausible_date", ("orders", "o18", None, None): "no_kept_lines",
        ("order_items", "o1", 9, None): "orphan_key", ("order_items", "o4", 1, None): "non_finite_value",
        ("order_items", "o13", 0, None): "implausible_date", ("order_items", "o9", 2, None): "implausible_value",
        ("service_contacts", None, None, "s6"): "orphan_key"}
    kept = got.tables["order_items"].toPandas()
    assert np.isfinite(kept[["quantity", "unit_price"]].to_numpy()).all()
    assert kept["unit_price"].max() <= 1e7 and kept["quantity"].abs().max() <= 1e6
    assert sorted(got.tables["orders"].toPandas()["order_id"]) == sorted(want.tables["orders"]["order_id"])
