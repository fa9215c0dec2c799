"""The pandas preparation engine: step 2 in memory, every data format, the quality report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..data import io, quality
from . import baskets, churn, customers, orders
from .churn_data import ChurnData

__all__ = ["PandasEngine"]


class PandasEngine:
    """Preparation in memory with pandas (implements :class:`~ecrm_research.prep.base.PrepEngine`):
    every format :func:`~ecrm_research.data.io.load_dataset` reads, row-level quarantine and, on
    request, the quality report (the overview notebook shows it)."""

    name = "pandas"

    def load(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None
             ) -> io.Dataset:
        """:func:`ecrm_research.data.io.load_dataset`."""
        return io.load_dataset(data, data_format, mapping)

    def clean(self, dataset: io.Dataset, policy: quality.CleaningPolicy | None = None, *,
              report: bool = False) -> quality.CleanResult:
        """:func:`ecrm_research.data.quality.clean` with `policy` (default: the standard filters) and the
        mapping's non-product codes; ``report=False`` skips the quality report (at 10⁷ lines it is
        about half the time of a clean)."""
        codes = dataset.mapping.non_product_codes if getattr(dataset, "mapping", None) else ()
        return quality.clean(dataset.tables, policy, non_product_codes=codes, report=report)

    def prepare(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
                policy: quality.CleaningPolicy | None = None, *, report: bool = False
                ) -> tuple[io.Dataset, quality.CleanResult]:
        """``(Dataset, CleanResult)``: :func:`ecrm_research.data.quality.prepare` (order data only)."""
        return quality.prepare(data, data_format, mapping, policy, report=report)

    def resolve_as_of(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.Timestamp:
        """:func:`ecrm_research.prep.customers.resolve_as_of` on ``tables['orders']``."""
        return customers.resolve_as_of(tables["orders"], as_of)

    def rfm_table(self, tables: Mapping[str, Any], as_of: Any = None) -> pd.DataFrame:
        """:func:`ecrm_research.prep.customers.rfm_table`."""
        return customers.rfm_table(tables["orders"], tables["order_items"], as_of)

    def customer_features(self, tables: Mapping[str, Any], as_of: Any = None, *,
                          top_categories: int = 5) -> pd.DataFrame:
        """:func:`ecrm_research.prep.customers.customer_features`."""
        return customers.customer_features(dict(tables), as_of, top_categories=top_categories)

    def suggest_inactivity_days(self, tables: Mapping[str, Any], quantile: float = 0.9, *,
                                round_to: int = 30) -> int:
        """:func:`~ecrm_research.prep.orders.suggest_inactivity_days` of the
        :func:`~ecrm_research.prep.orders.purchase_gaps`."""
        return orders.suggest_inactivity_days(orders.purchase_gaps(dict(tables)), quantile, round_to=round_to)

    def label_churn(self, tables: Mapping[str, Any], *, inactivity_days: int = 180, as_of: Any = None,
                    covariate_window_days: int | None = None) -> ChurnData:
        """:func:`ecrm_research.prep.churn.label_churn`."""
        return churn.label_churn(tables, inactivity_days=inactivity_days, as_of=as_of,
                                 covariate_window_days=covariate_window_days)

    def baskets(self, data: str | Path | None = None, data_format: str | None = None, mapping: Any = None,
                **options: Any) -> baskets.BasketData:
        """:func:`ecrm_research.prep.baskets.load_baskets` (``options``: ``item_level``, ``basket_by``,
        ``window``, ``hierarchy``, ``hierarchy_level``, ``policy``)."""
        return baskets.load_baskets(data, data_format, mapping, **options)
