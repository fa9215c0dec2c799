"""Spark engine for data preparation: reading, cleaning, RFM, behaviour features and churn labels.

The pandas path (:mod:`~ecrm_research.data.io` → :mod:`~ecrm_research.data.quality` →
:mod:`~ecrm_research.segmentation` / :mod:`~ecrm_research.survival`) holds every order line in
memory. This module computes the same preparation steps with the Spark DataFrame API, so data
that does not fit one machine can stay in a cluster::

    folder ──read_tables──► Spark tables ──clean──► SparkCleanResult.tables (Spark)
    (pandas tables: from_pandas)             │  .reconciliation (pandas, counts)
                                             │  .quarantine (Spark; write_quarantine)
                                             ├─► rfm_table ─────────► pandas, 1 row/customer
                                             ├─► customer_features ─► pandas, 1 row/customer
                                             ├─► suggest_inactivity_days ─► int
                                             └─► label_churn ───────► prep.ChurnData

A notebook switches engine with one parameter (``prep.engine(prep_engine)``, the same
:class:`~ecrm_research.prep.base.PrepEngine` calls on pandas or Spark); everything downstream
(scores, clustering, Cox) is unchanged.

Design
------
* Everything of order-line or order size stays in Spark: validation, the cleaning joins, the
  per-order and per-customer group-bys, the window functions of the churn labelling. Order
  lines are first summed per order (a map-side partial aggregation), then per customer.
* Only *small* results come back to the driver: count tables (the reconciliation) and
  per-customer tables. One row per customer is small even at 10 million customers (a few
  hundred MB), and it is what the models (clustering, Kaplan-Meier, Cox) need anyway; they run
  unchanged on the driver.
* The last arithmetic on the per-customer sums (whole days between dates, means, shares,
  annualised values, the accounting) is done in pandas with the same numpy expressions as the
  pandas path. Integers, dates, labels and row order are therefore identical; sums of money
  agree to floating-point round-off, because Spark adds the same numbers in another order
  (RFM and features: at most 6e-15 relative on the bundled sample and on a 40,000-customer
  sample; the churn frame was bit-identical; ``tests/test_spark_prep.py`` checks 1e-9).

Differences from the pandas path (documented, by design)
---------------------------------------------------------
* Spark timestamps have microsecond resolution; sub-microsecond parts are truncated (floor).
* A distributed table has no row positions: the quarantine identifies a row by its key
  columns (``order_id``, ``line_no``, ``contact_id``, ``source_row``) instead of ``row``.
  With ``drop_duplicate_rows`` the copy kept is the one with the smallest ``line_no`` (the
  pandas path keeps the first in file order, which is the same for data stored by order line).
* Keys must be unique (``read_tables`` and ``from_pandas`` check it): the cleaning joins
  would repeat rows otherwise, where the pandas path takes the first match.
* CSV dates must be ISO 8601 (``2024-01-31 12:00:00``) unless ``date_format`` is given.
* The quality *report* (``quality.CleanResult.report``) is not computed here; the
  reconciliation is.

Modules: :mod:`.session` (session, lazy pyspark, progress), :mod:`.columns` (column expressions),
:mod:`.validation` and :mod:`.reading` (canonical tables in Spark), :mod:`.cleaning` (quarantine),
:mod:`.customers` (as-of date, RFM, features), :mod:`.gaps` (inactivity window), :mod:`.churn`
(churn labels). The rules shared with the pandas engine live in :mod:`ecrm_research.prep.rules`.
pyspark is imported on first use (:func:`.session.sql_functions`), so importing this package
costs nothing without it. Most code calls it through ``prep.engine("spark")``.

Examples
--------
>>> from ecrm_research.prep import spark as spark_prep               # doctest: +SKIP
>>> tables = spark_prep.read_tables("s3a://shop/canonical", spark_master="yarn")  # doctest: +SKIP
>>> cleaned = spark_prep.clean(tables)                                # doctest: +SKIP
>>> cleaned.reconciliation                                            # doctest: +SKIP
>>> rfm = spark_prep.rfm_table(cleaned.tables)                        # doctest: +SKIP
>>> churn = spark_prep.label_churn(cleaned.tables, inactivity_days=180)  # doctest: +SKIP
"""

from .churn import label_churn
from .cleaning import SparkCleanResult, clean
from .customers import customer_features, resolve_as_of, rfm_table
from .gaps import suggest_inactivity_days
from .reading import from_pandas, read_tables
from .session import spark_session

__all__ = [
    "spark_session", "read_tables", "from_pandas", "SparkCleanResult", "clean", "resolve_as_of",
    "rfm_table", "customer_features", "suggest_inactivity_days", "label_churn",
]
