"""Applying the segments: a goal, offer and channel per segment, and customer lists ready for a CRM import."""

from __future__ import annotations

import re

import pandas as pd

# goal, offer, channel, rationale — chosen from the segment name's words, first match wins
_PLAYBOOK = (
    (("fewer",), "turn one- and two-time buyers into repeat customers",
     "second-order incentive (free delivery or 10 % off the next order) within 30 days", "e-mail",
     "most customers who order twice go on ordering; the next order is the one to win"),
    (("lapsed", "high-value"), "win back valuable lapsed customers",
     "personal 'we miss you' offer on their favourite categories", "e-mail + SMS",
     "they were worth a lot; a lapse is expensive"),
    (("lapsed",), "reactivate or let go cheaply", "time-limited re-activation voucher", "e-mail",
     "low cost per contact; stop after no response"),
    (("discount-seeking",), "protect margin while keeping them buying",
     "targeted coupons on high-margin items only, no blanket discounts", "app push",
     "they respond to price; aim the discounts"),
    (("high-frequency", "high-value"), "retain and reward the best customers",
     "VIP tier, early access, free delivery", "app push + e-mail", "most of the revenue: keep them"),
    (("high-frequency",), "raise order value", "bundles and cross-sell recommendations", "app push",
     "they already come often"),
    (("fast-repeat",), "raise order value", "bundles and cross-sell recommendations", "app push",
     "they already come back quickly"),
    (("big-order",), "raise purchase frequency", "replenishment reminders, loyalty points per order", "e-mail",
     "big orders, but not often enough"),
    (("slow-repeat",), "raise purchase frequency", "replenishment reminders, loyalty points per order", "e-mail",
     "long gaps between orders"),
    (("high-value",), "raise purchase frequency", "replenishment reminders, loyalty points per order", "e-mail",
     "they spend a lot; each extra order multiplies it"),
    (("active",), "turn new activity into a habit", "welcome series with a second-order incentive", "e-mail + app push",
     "recent customers: the second order matters most"),
    ((), "develop at low cost", "newsletter with seasonal best-sellers", "e-mail",
     "average behaviour; inexpensive broad communication"),
)


def segment_playbook(profiles: pd.DataFrame) -> pd.DataFrame:
    """Goal, offer and channel (e-mail / SMS / app push) per segment.

    The rules read the words of the segment name (see :func:`profile_segments` and
    :data:`~ecrm_research.segmentation.profiles.NAME_RULES`), first match wins: fewer than N orders
    (not clustered) → second-order incentive; lapsed high-value → win-back; lapsed → cheap
    reactivation; discount-seeking → targeted coupons; high-frequency high-value → VIP retention;
    high-frequency or fast-repeat → cross-sell (raise order value); big-order, slow-repeat or
    high-value → raise purchase frequency; active → second-order habit; otherwise low-cost development.

    Returns
    -------
    DataFrame
        ``segment, cluster, n_customers, share_revenue, goal, offer, channel, rationale``.
    """
    rows = []
    for p in profiles.itertuples(index=False):
        words = set(re.sub(r" \([^)]*\)$", "", p.segment).split())
        # the last rule needs no word, so a rule always matches
        goal, offer, channel, why = next(rule[1:] for rule in _PLAYBOOK if set(rule[0]) <= words)
        rows.append({"segment": p.segment, "cluster": p.cluster, "n_customers": p.n_customers,
                     "share_revenue": p.share_revenue, "goal": goal, "offer": offer,
                     "channel": channel, "rationale": why})
    return pd.DataFrame(rows)


def campaign_lists(segments: pd.DataFrame, playbook: pd.DataFrame) -> pd.DataFrame:
    """Customer lists per segment, ready for a CRM import.

    Returns
    -------
    DataFrame
        ``campaign, customer_id, segment, cluster, goal, offer, channel, value_tier, priority``
        (+ ``clv`` when present); ``priority`` = rank within the segment by CLV (else monetary),
        1 = contact first.
    """
    key = "clv" if "clv" in segments else "monetary"
    df = segments.merge(playbook[["cluster", "goal", "offer", "channel"]], on="cluster", how="left")
    df["campaign"] = "seg" + df["cluster"].astype(str) + "_" + df["segment"].str.replace(r"[^\w]+", "_", regex=True)
    df = df.sort_values(["cluster", key, "customer_id"], ascending=[True, False, True], kind="mergesort")
    df["priority"] = df.groupby("cluster").cumcount() + 1
    cols = ["campaign", "customer_id", "segment", "cluster", "goal", "offer", "channel", "value_tier", "priority"]
    if "clv" in df:
        cols.append("clv")
    return df[cols].reset_index(drop=True)
