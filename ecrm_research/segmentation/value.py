"""Customer value: mature / growth / development tiers, historical CLV, and the one-row-per-customer segment table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, ParameterError
from ..prep.customers import DAYS_PER_MONTH

#: Documented value-tier rules (applied in this order; scores from :func:`rfm_scores`).
VALUE_TIER_RULES = pd.DataFrame([
    ("mature", "m_score ≥ 4 and tenure_days ≥ median tenure",
     "established customers bringing profit now: keep and deepen"),
    ("growth", "not mature and r_score ≥ 4 and (f_score ≥ 3 or m_score ≥ 4)",
     "recent customers whose frequency or value is already high: grow them"),
    ("development", "everything else", "new, occasional or low-value customers: develop or serve cheaply"),
], columns=["value_tier", "rule", "meaning"])


def value_tiers(scored: pd.DataFrame) -> pd.Series:
    """Mature / growth / development tier per customer (see :data:`VALUE_TIER_RULES`).

    Parameters
    ----------
    scored : DataFrame
        :func:`rfm_scores` output (needs ``r_score, f_score, m_score, tenure_days``).
    """
    med = scored["tenure_days"].median()
    mature = (scored["m_score"] >= 4) & (scored["tenure_days"] >= med)
    growth = ~mature & (scored["r_score"] >= 4) & ((scored["f_score"] >= 3) | (scored["m_score"] >= 4))
    tier = np.select([mature, growth], ["mature", "growth"], default="development")
    return pd.Series(pd.Categorical(tier, categories=["mature", "growth", "development"]),
                     index=scored.index, name="value_tier")


def historical_clv(rfm: pd.DataFrame, *, margin: float = 0.3, horizon_months: int = 12,
                   monthly_retention: float = 0.9, annual_discount: float = 0.1,
                   lapse_days: int | None = 365) -> pd.DataFrame:
    """Customer-lifetime value as a documented historical projection (not BG/NBD).

    Parameters
    ----------
    rfm : DataFrame
        :func:`~ecrm_research.prep.customers.rfm_table` output.
    margin : float, default 0.3
        Gross margin on revenue (0–1).
    horizon_months : int, default 12
        Projection horizon.
    monthly_retention : float, default 0.9
        Probability that an active customer is still buying next month.
    annual_discount : float, default 0.1
        Yearly discount rate for future cash flows.
    lapse_days : int or None, default 365
        Customers whose last order is older than this are projected at zero (lapsed).

    Returns
    -------
    DataFrame
        ``customer_id, monthly_spend, expected_months, clv``.

    Notes
    -----
    ``monthly_spend = max(monetary, 0) / max(1, tenure_days / 30.4375)`` (average spend per
    month since the first order); ``expected_months = Σ_{t=1..H} r^t / (1 + d)^t`` with monthly
    retention r and monthly discount d = (1 + annual_discount)^(1/12) − 1 — the expected
    number of discounted future months with purchases; ``clv = monthly_spend ×
    expected_months × margin``. It ignores individual purchase-rate heterogeneity that
    BG/NBD + Gamma-Gamma model; rank customers with it, do not book it as revenue.
    """
    for name, v in {"margin": margin, "monthly_retention": monthly_retention}.items():
        if not 0 <= v <= 1:
            raise ParameterError(f"{name}={v!r} must be between 0 and 1 (e.g. 0.3).")
    if horizon_months < 1:
        raise ParameterError(f"horizon_months={horizon_months!r} must be ≥ 1.")
    d = (1 + annual_discount) ** (1 / 12) - 1
    t = np.arange(1, int(horizon_months) + 1)
    exp_months = float(np.sum(monthly_retention ** t / (1 + d) ** t))
    months = np.maximum(1.0, rfm["tenure_days"].astype(float) / DAYS_PER_MONTH)
    spend = rfm["monetary"].astype(float).clip(lower=0) / months
    em = pd.Series(exp_months, index=rfm.index)
    if lapse_days is not None:
        em[rfm["recency_days"] > lapse_days] = 0.0
    return pd.DataFrame({"customer_id": rfm["customer_id"], "monthly_spend": spend,
                         "expected_months": em, "clv": spend * em * margin})


def customer_segments(scored: pd.DataFrame, features: pd.DataFrame, labels: Sequence[int],
                      profiles: pd.DataFrame, clv: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per customer: ``customer_id, segment, cluster, r_score, f_score, m_score,
    value_tier`` then ``rfm_segment``, ``clv`` and the RFM values.

    ``scored`` (:func:`rfm_scores`) and ``features`` must be in the same customer order.
    """
    if not (scored["customer_id"].to_numpy() == features["customer_id"].to_numpy()).all():
        raise AnalysisError("scored and features are not in the same customer order; build both from the same tables.")
    names = dict(zip(profiles["cluster"], profiles["segment"]))
    out = pd.DataFrame({
        "customer_id": scored["customer_id"].to_numpy(),
        "segment": [names[int(c)] for c in labels],
        "cluster": np.asarray(labels, dtype=int),
        "r_score": scored["r_score"].to_numpy(), "f_score": scored["f_score"].to_numpy(),
        "m_score": scored["m_score"].to_numpy(),
        "value_tier": value_tiers(scored).astype(str).to_numpy(),
        "rfm_segment": scored["rfm_segment"].astype(str).to_numpy() if "rfm_segment" in scored else pd.NA,
    })
    if clv is not None:
        out["clv"] = clv["clv"].to_numpy()
    for c in ("recency_days", "frequency", "monetary"):
        out[c] = scored[c].to_numpy()
    return out
