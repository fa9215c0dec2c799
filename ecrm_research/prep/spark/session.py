"""The Spark session, the lazily imported ``pyspark.sql.functions`` and stage progress for Spark jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...exceptions import ParameterError
from ...infra.progress import Stages
from ...infra.spark import get_session

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import SparkSession


def sql_functions() -> Any:
    """``pyspark.sql.functions``, imported on first use: pyspark is optional (``pip install
    'ecrm-research[spark]'``) and heavy, so the package imports without it; a clear error otherwise."""
    try:
        from pyspark.sql import functions as F  # why: optional, heavy (JVM); see the docstring
    except ImportError:  # pragma: no cover - depends on the installation
        raise ParameterError("The Spark engine needs pyspark and Java 17+: `pip install 'ecrm-research[spark]'` "
                             "(or `pip install pyspark`). Without it use the pandas path (quality.prepare).",
                             allowed=["pandas"]) from None
    return F


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The project's SparkSession for ``master``, started once per process and reused.

    Parameters
    ----------
    master : str, optional
        Spark master URL: ``'local[4]'``, ``'spark://host:7077'``, ``'yarn'``...; default
        :data:`ecrm_research.association.DEFAULT_SPARK_MASTER` (``'local[2]'``).
    conf : mapping, optional
        Spark settings; they override :data:`ecrm_research.association.SPARK_DEFAULTS`
        (e.g. ``{"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "200"}``).

    Returns
    -------
    SparkSession
        The same session the association engine uses (one JVM per process).
    """
    sql_functions()
    return get_session(master, conf)


def session_of(tables: Mapping[str, Any]) -> SparkSession:
    """The session of the first Spark table in ``tables`` (the project's session when there is none)."""
    for df in tables.values():
        if hasattr(df, "sparkSession"):
            return df.sparkSession
    return spark_session()


class SparkStages:
    """Stage progress (association's tqdm bar) plus the job description shown in the Spark UI."""

    def __init__(self, spark: SparkSession, enabled: bool, total: int, desc: str):
        self.spark, self.desc = spark, desc
        self.stages = Stages(enabled, total, desc)

    def stage(self, name: str) -> None:
        self.stages.stage(name)
        try:
            self.spark.sparkContext.setJobDescription(f"ecrm_research {self.desc}: {name}")
        except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext; the bar is enough
            pass

    def close(self) -> None:
        self.stages.close()
        try:
            self.spark.sparkContext.setJobDescription(None)
        except Exception:  # noqa: BLE001
            pass
