"""The preparation engines behind the churn and segmentation notebooks (``prep_engine``)."""

from __future__ import annotations

import pandas as pd
import pytest
from table_checks import assert_same_csv_tables

from ecrm_research import prep
from ecrm_research.data import quality
from ecrm_research.exceptions import ParameterError
from ecrm_research.prep import churn as prep_churn
from ecrm_research.prep import customers as prep_customers
from ecrm_research.report.runner import run_notebook


def test_engine_names_and_misuse_are_explained():
    assert prep.engine("pandas").name == "pandas"
    assert prep.engine("spark", spark_master="local[1]").spark_master == "local[1]"
    with pytest.raises(ParameterError, match="pandas, spark"):
        prep.engine("polars")
    with pytest.raises(ParameterError, match="prep_engine='spark'"):
        prep.engine("pandas", spark_master="spark://host:7077")


def test_spark_engine_refuses_order_lines_files_before_starting_spark():
    with pytest.raises(ParameterError, match="canonical folders only"):
        prep.engine("spark").load("lines.csv", "lines", "online_retail")


def test_pandas_engine_is_the_pandas_path(sample_dir):
    engine = prep.engine("pandas")
    assert isinstance(engine, prep.PrepEngine) and isinstance(prep.engine("spark"), prep.PrepEngine)
    ds, cleaned = engine.prepare(sample_dir)
    ref = quality.prepare(sample_dir)[1]
    assert cleaned.reconciliation.equals(ref.reconciliation) and cleaned.report is None
    assert cleaned.quarantine.equals(ref.quarantine)
    as_of = engine.resolve_as_of(cleaned.tables)
    assert engine.rfm_table(cleaned.tables, as_of).equals(
        prep_customers.rfm_table(ref.tables["orders"], ref.tables["order_items"], as_of))
    assert engine.label_churn(cleaned.tables, inactivity_days=120).frame.equals(
        prep_churn.label_churn(ref.tables, inactivity_days=120).frame)
    assert engine.suggest_inactivity_days(cleaned.tables) == 60  # 90th percentile of the sample's gaps, rounded up
    with_report = engine.prepare(sample_dir, report=True)[1]
    assert with_report.report is not None and with_report.reconciliation.equals(ref.reconciliation)


def test_spark_engine_has_no_quality_report_or_baskets():
    engine = prep.engine("spark")
    with pytest.raises(ParameterError, match="pandas engine only"):
        engine.clean(None, report=True)
    with pytest.raises(ParameterError, match="pandas engine"):
        engine.baskets()


@pytest.mark.notebook
@pytest.mark.spark
@pytest.mark.parametrize("name", ["churn", "segmentation"])
def test_notebook_gives_the_same_tables_on_spark(run_nb, tmp_path_factory, name):
    """The same notebook with prep_engine='spark' (local[2]) writes the same tables as with pandas:
    integers, text and dates identical, floats to 1e-9 relative (Spark sums in another order)."""
    pytest.importorskip("pyspark")
    pandas_out = run_nb(name, params={"seed": 42})
    spark_run = tmp_path_factory.mktemp(f"{name}-spark")
    res = run_notebook(name, out=spark_run, progress=False, pdf=False, render=False,
                       params={"prep_engine": "spark", "seed": 42})
    assert res.status == "ok", res.error
    assert_same_csv_tables(res.out_dir / "tables", pandas_out / "tables", min_tables=5)


def test_csv_table_comparison_is_exact_except_for_float_round_off(tmp_path):
    """The parity check above: a float in the 12th digit passes, an integer or a label does not."""
    want = pd.DataFrame({"k": [1, 2], "label": ["a", "b"], "x": [0.1 + 0.2, 1e6 / 3]})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want.to_csv(tmp_path / "a" / "t.csv", index=False)
    got = want.assign(x=want["x"] * (1 + 3e-12))
    got.to_csv(tmp_path / "b" / "t.csv", index=False)
    assert_same_csv_tables(tmp_path / "b", tmp_path / "a")
    for bad in (want.assign(k=[1, 3]), want.assign(label=["a", "c"]), want.assign(x=want["x"] * (1 + 1e-6))):
        bad.to_csv(tmp_path / "b" / "t.csv", index=False)
        with pytest.raises(AssertionError):
            assert_same_csv_tables(tmp_path / "b", tmp_path / "a")


@pytest.mark.parametrize("engine_cls", [prep.PandasEngine, prep.SparkEngine])
def test_engines_implement_the_protocol_with_its_signatures(engine_cls):
    """runtime_checkable only checks that the methods exist; the calls must also be the same on both engines."""
    import inspect

    methods = [n for n, v in vars(prep.PrepEngine).items() if callable(v) and not n.startswith("_")]
    assert set(methods) >= {"load", "clean", "prepare", "baskets", "rfm_table", "customer_features",
                            "label_churn", "resolve_as_of", "suggest_inactivity_days"}
    for name in methods:
        want = inspect.signature(getattr(prep.PrepEngine, name))
        got = inspect.signature(getattr(engine_cls, name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == \
               [(p.name, p.kind, p.default) for p in want.parameters.values()], f"{engine_cls.__name__}.{name}"
