"""Synthetic baskets with Zipf item popularity, for benchmarks and scale tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_baskets(n_baskets: int, n_items: int = 10_000, mean_size: float = 4.0, *,
                      zipf_exponent: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Random baskets with Zipf item popularity, for benchmarks and scale tests.

    Basket sizes are 1 + Poisson(mean_size − 1); items are drawn with probability ∝ 1/rank^s
    (``s = zipf_exponent``); an item drawn twice in a basket counts once, so baskets hold
    slightly fewer than ``mean_size`` distinct items on average.

    Returns
    -------
    DataFrame
        Long basket table: ``basket_id`` (int64, sorted), ``item`` (str such as ``'i00042'``,
        object dtype, as read from a CSV).
    """
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.poisson(max(mean_size - 1.0, 0.0), int(n_baskets))
    p = 1.0 / np.arange(1, n_items + 1, dtype=float) ** zipf_exponent
    p /= p.sum()
    codes = rng.choice(n_items, size=int(sizes.sum()), p=p)
    bid = np.repeat(np.arange(int(n_baskets), dtype=np.int64), sizes)
    key = np.unique(bid * n_items + codes)  # distinct items per basket, sorted by basket
    width = len(str(n_items - 1))
    labels = np.array([f"i{i:0{width}d}" for i in range(n_items)], dtype=object)
    return pd.DataFrame({"basket_id": key // n_items, "item": labels[key % n_items]})
