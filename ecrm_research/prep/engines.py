"""Choosing a preparation engine by name: :func:`engine`.

The churn and segmentation notebooks prepare their data through an engine object, so one
parameter (``prep_engine``) moves the order-line work (reading, cleaning, RFM, behaviour
features, churn labels) from pandas to Spark without changing anything downstream::

    engine = prep.engine("spark", spark_master="spark://host:7077")
    dataset, cleaned = engine.prepare("s3a://shop/canonical")
    rfm = engine.rfm_table(cleaned.tables, as_of)        # pandas, one row per customer
"""

from __future__ import annotations

from collections.abc import Mapping

from ..exceptions import ParameterError
from .base import ENGINES
from .pandas_engine import PandasEngine
from .spark_engine import SparkEngine

__all__ = ["ENGINES", "engine"]


def engine(name: str = "pandas", *, spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
           progress: bool = False) -> PandasEngine | SparkEngine:
    """The preparation engine called `name` (``'pandas'`` or ``'spark'``).

    Parameters
    ----------
    name : {'pandas', 'spark'}
        Where the order lines are processed.
    spark_master, spark_conf, progress
        For ``'spark'`` (see :class:`~ecrm_research.prep.spark_engine.SparkEngine`); a
        `spark_master` with ``'pandas'`` is an error rather than silently ignored.

    Returns
    -------
    PandasEngine or SparkEngine
        Both implement :class:`~ecrm_research.prep.base.PrepEngine`.

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
        return PandasEngine()
    return SparkEngine(spark_master, spark_conf, progress)
