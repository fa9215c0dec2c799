"""The preparation interface: everything from order lines to one row per customer or one basket
per transaction, the same calls on every engine (:class:`PrepEngine`).

Engines: :class:`~ecrm_research.prep.pandas_engine.PandasEngine` (in memory, every format, the
quality report) and :class:`~ecrm_research.prep.spark_engine.SparkEngine` (canonical folders,
locally or on a cluster); :func:`ecrm_research.prep.engine` returns one by name. Both return the
same per-customer tables (pandas DataFrames) and the same reconciliation counts
(``tests/test_spark_prep.py``); the rules they share live in :mod:`ecrm_research.prep.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from ..data.quality import CleaningPolicy

__all__ = ["ENGINES", "PrepEngine"]

#: preparation engines accepted by :func:`ecrm_research.prep.engine`
ENGINES = ("pandas", "spark")


@runtime_checkable
class PrepEngine(Protocol):
    """Step 2 of the mining process (prepare the data) on one engine.

    ``tables`` below is the cleaned canonical tables (``prepare(...)[1].tables``): pandas
    DataFrames on pandas, Spark DataFrames on Spark. Per-customer results are pandas on both.
    """

    #: ``'pandas'`` or ``'spark'``
    name: str

    def load(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None) -> Any:
        """Read the user's data (None = the bundled sample) into a :class:`~ecrm_research.data.io.Dataset`."""
        ...

    def clean(self, dataset: Any, policy: CleaningPolicy | None = None, *, report: bool = False) -> Any:
        """Clean the dataset's order tables with ``policy`` (default: the standard filters), every dropped
        row quarantined with a reason code; ``report=True`` adds the quality report (pandas only)."""
        ...

    def prepare(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
                policy: CleaningPolicy | None = None, *, report: bool = False) -> tuple[Any, Any]:
        """``(dataset, cleaned)``: :meth:`load` then :meth:`clean`."""
        ...

    def resolve_as_of(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.Timestamp:
        """The analysis date: ``as_of`` normalised, else the day after the last order."""
        ...

    def rfm_table(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.DataFrame:
        """Recency, frequency and monetary value, one row per customer with a completed order."""
        ...

    def customer_features(self, tables: Mapping[str, Any], as_of: Any = None, *,
                          top_categories: int = 5) -> pd.DataFrame:
        """Behaviour features per customer (RFM, order rates, basket size, discount, app share, categories)."""
        ...

    def suggest_inactivity_days(self, tables: Mapping[str, Any], quantile: float = 0.9, *,
                                round_to: int = 30) -> int:
        """An inactivity window for churn labelling: the ``quantile`` of purchase gaps, rounded up."""
        ...

    def label_churn(self, tables: Mapping[str, Any], *, inactivity_days: int = 180, as_of: Any = None,
                    covariate_window_days: int | None = None) -> Any:
        """Churn labels, one row per customer (:class:`~ecrm_research.prep.churn_data.ChurnData`)."""
        ...

    def baskets(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
                **options: Any) -> Any:
        """One basket per transaction (:class:`~ecrm_research.prep.baskets.BasketData`)."""
        ...
