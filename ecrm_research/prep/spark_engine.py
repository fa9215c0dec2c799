"""The Spark preparation engine: the :class:`~ecrm_research.prep.base.PrepEngine` calls on Spark
(:mod:`ecrm_research.prep.spark`), locally or on a cluster, for canonical folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.io import Dataset
from ..data.quality import CleaningPolicy
from ..exceptions import ParameterError
from . import spark as spark_prep
from .churn_data import ChurnData

__all__ = ["SparkEngine"]


class SparkEngine:
    """Preparation on Spark (implements :class:`~ecrm_research.prep.base.PrepEngine`).

    ``cleaned.tables`` hold Spark DataFrames, ``cleaned.quarantine`` is a Spark DataFrame
    (``cleaned.write_quarantine(path)``); per-customer tables come back as pandas. There is no
    quality report (the pandas-only overview notebook has it). Spark reads canonical folders (a
    Parquet or CSV file per table) only. pyspark is imported on first use.

    Parameters
    ----------
    spark_master : str, optional
        ``local[2]`` (default), ``spark://host:7077``, ``yarn`` ...
    spark_conf : mapping, optional
        Extra Spark settings.
    progress : bool
        Progress bars over the Spark jobs.
    """

    name = "spark"

    def __init__(self, spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
                 progress: bool = False):
        self.spark_master = spark_master
        self.spark_conf = spark_conf
        self.progress = progress

    def load(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None
             ) -> Dataset:
        """Read a canonical folder into Spark; a :class:`~ecrm_research.data.io.Dataset` whose
        ``tables`` are Spark DataFrames."""
        if mapping is not None or data_format not in (None, "canonical"):
            raise ParameterError(
                f"prep_engine='spark' reads canonical folders only (one Parquet or CSV file per table), not "
                f"data_format={data_format!r} with mapping={mapping!r}. Convert the data once with the pandas "
                "engine (io.load_dataset(...).tables, written as Parquet) or use prep_engine='pandas'.")
        tables = spark_prep.read_tables(data, spark_master=self.spark_master, spark_conf=self.spark_conf)
        n_rows = sum(int(df.count()) for df in tables.values())
        return Dataset(format="canonical", source=str(data) if data is not None else "bundled sample",
                       tables=tables, n_input_rows=n_rows)

    def clean(self, dataset: Dataset, policy: CleaningPolicy | None = None, *,
              report: bool = False) -> spark_prep.SparkCleanResult:
        """:func:`ecrm_research.prep.spark.clean` with `policy` (default: the standard filters)."""
        if report:
            raise ParameterError("The quality report is computed by the pandas engine only (prep_engine='pandas'); "
                                 "the Spark engine gives the reconciliation and the quarantine.")
        return spark_prep.clean(dataset.tables, policy, progress=self.progress)

    def prepare(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
                policy: CleaningPolicy | None = None, *, report: bool = False
                ) -> tuple[Dataset, spark_prep.SparkCleanResult]:
        """``(Dataset, SparkCleanResult)``: :meth:`load` then :meth:`clean`."""
        dataset = self.load(data, data_format, mapping)
        return dataset, self.clean(dataset, policy, report=report)

    def resolve_as_of(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.Timestamp:
        """:func:`ecrm_research.prep.spark.resolve_as_of` (one small Spark job)."""
        return spark_prep.resolve_as_of(tables["orders"], as_of)

    def rfm_table(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.DataFrame:
        """:func:`ecrm_research.prep.spark.rfm_table`."""
        return spark_prep.rfm_table(tables, as_of, progress=self.progress)

    def customer_features(self, tables: Mapping[str, Any], as_of: Any = None, *,
                          top_categories: int = 5) -> pd.DataFrame:
        """:func:`ecrm_research.prep.spark.customer_features`."""
        return spark_prep.customer_features(tables, as_of, top_categories=top_categories, progress=self.progress)

    def suggest_inactivity_days(self, tables: Mapping[str, Any], quantile: float = 0.9, *,
                                round_to: int = 30) -> int:
        """:func:`ecrm_research.prep.spark.suggest_inactivity_days`."""
        return spark_prep.suggest_inactivity_days(tables, quantile, round_to=round_to)

    def label_churn(self, tables: Mapping[str, Any], *, inactivity_days: int = 180, as_of: Any = None,
                    covariate_window_days: int | None = None) -> ChurnData:
        """:func:`ecrm_research.prep.spark.label_churn`."""
        return spark_prep.label_churn(tables, inactivity_days=inactivity_days, as_of=as_of,
                                      covariate_window_days=covariate_window_days, progress=self.progress)

    def baskets(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
                **options: Any) -> Any:
        """Not available on Spark: baskets feed the in-memory miners; raises :class:`ParameterError`."""
        raise ParameterError("Baskets are built by the pandas engine (prep.engine('pandas').baskets(...)); the "
                             "association miners take them in memory.", allowed=["pandas"])
