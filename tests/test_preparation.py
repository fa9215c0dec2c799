"""The preparation engines behind the churn and segmentation notebooks (``prep_engine``)."""

from __future__ import annotations

import pytest

from ecrm_research import prep as preparation
from ecrm_research.exceptions import ParameterError
from ecrm_research.prep import churn as prep_churn
from ecrm_research.prep import customers as prep_customers


def test_engine_names_and_misuse_are_explained():
    assert preparation.engine("pandas").name == "pandas"
    assert preparation.engine("spark", spark_master="local[1]").spark_master == "local[1]"
    with pytest.raises(ParameterError, match="pandas, spark"):
        preparation.engine("polars")
    with pytest.raises(ParameterError, match="prep_engine='spark'"):
        preparation.engine("pandas", spark_master="spark://host:7077")


def test_spark_engine_refuses_order_lines_files_before_starting_spark():
    prep = preparation.engine("spark")
    with pytest.raises(ParameterError, match="canonical folders only"):
        prep.load("lines.csv", "lines", "online_retail")


def test_pandas_engine_is_the_pandas_path(sample_dir):
    from ecrm_research.data import quality

    prep = preparation.engine("pandas")
    ds, cleaned = prep.prepare(sample_dir)
    ref = quality.prepare(sample_dir)[1]
    assert cleaned.reconciliation.equals(ref.reconciliation) and cleaned.report is None
    assert cleaned.quarantine.equals(ref.quarantine)
    as_of = prep.resolve_as_of(cleaned.tables)
    assert prep.rfm_table(cleaned.tables, as_of).equals(
        prep_customers.rfm_table(ref.tables["orders"], ref.tables["order_items"], as_of))
    assert prep.label_churn(cleaned.tables, inactivity_days=120).frame.equals(
        prep_churn.label_churn(ref.tables, inactivity_days=120).frame)
    assert prep.suggest_inactivity_days(cleaned.tables) == 60  # 90th percentile of the sample's gaps, rounded up


@pytest.mark.notebook
@pytest.mark.spark
@pytest.mark.parametrize("name", ["churn", "segmentation"])
def test_notebook_gives_the_same_tables_on_spark(run_nb, tmp_path_factory, name):
    """The same notebook with prep_engine='spark' (local[2]) writes the same tables as with pandas."""
    pytest.importorskip("pyspark")
    pandas_out = run_nb(name, params={"seed": 42})
    spark_run = tmp_path_factory.mktemp(f"{name}-spark")
    from ecrm_research.report.runner import run_notebook

    res = run_notebook(name, out=spark_run, progress=False, pdf=False, render=False,
                       params={"prep_engine": "spark", "seed": 42})
    assert res.status == "ok", res.error
    ours = {p.name: p.read_bytes() for p in (pandas_out / "tables").glob("*.csv")}
    theirs = {p.name: p.read_bytes() for p in (res.out_dir / "tables").glob("*.csv")}
    assert len(ours) >= 5 and sorted(ours) == sorted(theirs)
    different = [n for n in ours if ours[n] != theirs[n]]
    assert not different, f"tables that differ between pandas and spark: {different}"
