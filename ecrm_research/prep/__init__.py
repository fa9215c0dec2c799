"""Step 2 of the mining process (prepare the data) as an engine interface: pandas or Spark.

``prep.engine(name)`` returns a :class:`PrepEngine` (load, clean with quarantine, prepare, baskets,
RFM, customer features, churn labels, the as-of date, the suggested inactivity window).
Modules: :mod:`.base` (the protocol), :mod:`.engines` (:func:`engine`), :mod:`.pandas_engine` and
:mod:`.spark_engine` (the two engines), :mod:`.rules` (what both engines share), the pandas steps
:mod:`.baskets`, :mod:`.customers`, :mod:`.orders`, :mod:`.churn`, :mod:`.churn_data`, and the
Spark steps :mod:`.spark`.
"""

from .base import ENGINES, PrepEngine
from .churn import prepare_customer_table
from .churn_data import ChurnData
from .engines import engine
from .orders import purchase_gaps, require_completed_orders
from .pandas_engine import PandasEngine
from .spark_engine import SparkEngine

__all__ = ["ENGINES", "PrepEngine", "PandasEngine", "SparkEngine", "engine", "ChurnData", "prepare_customer_table",
           "purchase_gaps", "require_completed_orders"]
