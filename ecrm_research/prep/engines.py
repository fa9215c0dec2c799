"""Step 2 on one machine or on a cluster: the same preparation calls on pandas or on Spark.

The churn and segmentation notebooks prepare their data through an engine object, so one
parameter (``prep_engine``) moves the order-line work — reading, cleaning, RFM, behaviour
features, churn labels — from pandas to Spark (:mod:`ecrm_research.prep.spark`) without
changing anything downstream::

    prep = preparation.engine("spark", spark_master="spark://host:7077")
    dataset, cleaned = prep.prepare("s3a://shop/canonical")
    rfm = prep.rfm_table(cleaned.tables, as_of)        # pandas, one row per customer

Both engines return the same per-customer tables (``tests/test_spark_prep.py`` checks them
against each other on the sample), and ``cleaned.reconciliation`` has the same counts. Neither
computes the quality report (``cleaned.report`` is None; :func:`ecrm_research.data.quality.clean` and
the overview notebook have it). With
Spark, ``cleaned.tables`` hold Spark DataFrames, ``cleaned.quarantine`` is a Spark DataFrame
(``cleaned.write_quarantine(path)``) and there is no quality report (the pandas-only overview
notebook has it). Spark reads canonical folders (a Parquet or CSV file per table) only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import ParameterError

__all__ = ["ENGINES", "PandasPreparation", "SparkPreparation", "engine"]

#: preparation engines accepted by :func:`engine`
ENGINES = ("pandas", "spark")


class PandasPreparation:
    """Preparation in memory with pandas (:mod:`io`, :mod:`quality`, :mod:`segmentation`,
    :mod:`survival`): every format, the quality report, row-level quarantine."""

    name = "pandas"

    def load(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None):
        """:func:`ecrm_research.data.io.load_dataset`."""
        from ..data.io import load_dataset

        return load_dataset(data, data_format, mapping)

    def clean(self, dataset: Any):
        """:func:`ecrm_research.data.quality.clean` with the standard filters (and the mapping's
        non-product codes), without the quality report (as on Spark; at 10⁷ lines the report
        is about half the time of a clean — the overview notebook shows it)."""
        from ..data.quality import clean

        codes = dataset.mapping.non_product_codes if getattr(dataset, "mapping", None) else ()
        return clean(dataset.tables, non_product_codes=codes, report=False)

    def prepare(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None):
        """``(Dataset, CleanResult)``: :func:`ecrm_research.data.quality.prepare` without the quality report."""
        from ..data.quality import prepare

        return prepare(data, data_format, mapping, report=False)

    def resolve_as_of(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.Timestamp:
        from .customers import resolve_as_of

        return resolve_as_of(tables["orders"], as_of)

    def rfm_table(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.DataFrame:
        from .customers import rfm_table

        return rfm_table(tables["orders"], tables["order_items"], as_of)

    def customer_features(self, tables: Mapping[str, Any], as_of: Any = None, **kwargs: Any) -> pd.DataFrame:
        from .customers import customer_features

        return customer_features(dict(tables), as_of, **kwargs)

    def suggest_inactivity_days(self, tables: Mapping[str, Any]) -> int:
        from .orders import purchase_gaps, suggest_inactivity_days

        return suggest_inactivity_days(purchase_gaps(tables))

    def label_churn(self, tables: Mapping[str, Any], **kwargs: Any):
        from .churn import label_churn

        return label_churn(tables, **kwargs)


class SparkPreparation:
    """Preparation on Spark (:mod:`ecrm_research.prep.spark`), locally or on a cluster.

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

    def load(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None):
        """Read a canonical folder into Spark; a :class:`~ecrm_research.data.io.Dataset` whose
        ``tables`` are Spark DataFrames."""
        from ..data.io import Dataset
        from . import spark as spark_prep

        if mapping is not None or data_format not in (None, "canonical"):
            raise ParameterError(
                f"prep_engine='spark' reads canonical folders only (one Parquet or CSV file per table), not "
                f"data_format={data_format!r} with mapping={mapping!r}. Convert the data once with the pandas "
                "engine (io.load_dataset(...).tables, written as Parquet) or use prep_engine='pandas'.")
        tables = spark_prep.read_tables(data, spark_master=self.spark_master, spark_conf=self.spark_conf)
        n_rows = sum(int(df.count()) for df in tables.values())
        return Dataset(format="canonical", source=str(data) if data is not None else "bundled sample",
                       tables=tables, n_input_rows=n_rows)

    def clean(self, dataset: Any):
        """:func:`ecrm_research.prep.spark.clean` with the standard filters."""
        from . import spark as spark_prep

        return spark_prep.clean(dataset.tables)

    def prepare(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None):
        """``(Dataset, SparkCleanResult)``: :meth:`load` then :meth:`clean`."""
        dataset = self.load(data, data_format, mapping)
        return dataset, self.clean(dataset)

    def resolve_as_of(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.Timestamp:
        from . import spark as spark_prep

        return spark_prep.resolve_as_of(tables["orders"], as_of)

    def rfm_table(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.DataFrame:
        from . import spark as spark_prep

        return spark_prep.rfm_table(tables, as_of, progress=self.progress)

    def customer_features(self, tables: Mapping[str, Any], as_of: Any = None, **kwargs: Any) -> pd.DataFrame:
        from . import spark as spark_prep

        return spark_prep.customer_features(tables, as_of, progress=self.progress, **kwargs)

    def suggest_inactivity_days(self, tables: Mapping[str, Any]) -> int:
        from . import spark as spark_prep

        return spark_prep.suggest_inactivity_days(tables)

    def label_churn(self, tables: Mapping[str, Any], **kwargs: Any):
        from . import spark as spark_prep

        return spark_prep.label_churn(tables, progress=self.progress, **kwargs)


def engine(name: str = "pandas", *, spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
           progress: bool = False) -> PandasPreparation | SparkPreparation:
    """The preparation engine called `name` (``'pandas'`` or ``'spark'``).

    Parameters
    ----------
    name : {'pandas', 'spark'}
        Where the order lines are processed.
    spark_master, spark_conf, progress
        For ``'spark'`` (see :class:`SparkPreparation`); a `spark_master` with ``'pandas'`` is
        an error rather than silently ignored.

    Examples
    --------
    >>> engine("pandas").name
    'pandas'
    """
    if name not in ENGINES:
        raise ParameterError(f"prep_engine={name!r} is not known; use one of {', '.join(ENGINES)}.",
                             allowed=list(ENGINES))
    if name == "pandas":
        if spark_master:
            raise ParameterError(f"spark_master={spark_master!r} is given but prep_engine='pandas'; "
                                 "set prep_engine='spark' to prepare the data on that Spark.")
        return PandasPreparation()
    return SparkPreparation(spark_master, spark_conf, progress)
