"""Step 2 of the mining process (prepare the data) as an engine: pandas or Spark."""

from .engines import ENGINES, PandasPreparation, SparkPreparation, engine

__all__ = ["ENGINES", "PandasPreparation", "SparkPreparation", "engine"]
