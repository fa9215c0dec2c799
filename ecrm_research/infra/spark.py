"""The process-wide SparkSession shared by the Spark mining engine and the Spark preparation engine.

pyspark is imported inside the functions (an optional, heavy dependency: ``pip install
'ecrm-research[spark]'`` and Java 17+), so importing this module costs nothing without it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

#: Spark master used by ``engine='spark'`` when no ``spark_master`` is given.
DEFAULT_SPARK_MASTER = "local[2]"


#: Spark settings used for sessions this module starts (``spark_conf`` overrides them).
SPARK_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "2g",
}


#: sessions started by :func:`get_session`, by master URL
SESSIONS: dict[str, Any] = {}


def get_session(master: str | None, conf: Mapping[str, str] | None = None) -> Any:
    """A SparkSession for ``master`` (started once per process and reused)."""
    from pyspark.sql import SparkSession  # why: optional, heavy (JVM); see the module docstring

    master = master or DEFAULT_SPARK_MASTER
    s = SESSIONS.get(master)
    if s is not None and s.sparkContext._jsc is not None:
        return s
    builder = SparkSession.builder.master(master).appName("ecrm_research.association")
    for k, v in {**SPARK_DEFAULTS, **dict(conf or {})}.items():
        builder = builder.config(k, str(v))
    s = builder.getOrCreate()
    actual = s.sparkContext.master
    if actual != master:
        warnings.warn(f"A Spark session with master {actual!r} is already running in this process; "
                      f"it is used instead of {master!r}.", stacklevel=4)
    s.sparkContext.setLogLevel("ERROR")
    SESSIONS[master] = s
    return s
