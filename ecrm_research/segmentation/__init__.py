"""Customer segmentation: RFM, behavioural clustering, choosing k, profiles, value tiers, CLV.

The analysis answers *who are our customers, and whom should we target how?* in the five
steps of the mining process. It works on the cleaned canonical tables (``orders`` and
``order_items``; ``products.category`` and ``orders.discount_rate`` / ``orders.channel``
are used when present)::

    tables ─► rfm_table ─► rfm_scores (quintiles, named RFM segments)
       │                       │
       └► customer_features ─► CustomerSegmenter (log1p + standardise, KMeans / GMM, k chosen
                               by elbow, silhouette, BIC and bootstrap stability; k_checks_ flag a weak k)
                                   │
                                   └► profile_segments ─► segment_playbook ─► campaign_lists
    rfm ─► value_tiers (mature / growth / development), historical_clv

Definitions (exact; the table is built in step 2 by :func:`ecrm_research.prep.customers.rfm_table`)
---------------------------------------------------------------------------------------------------
as-of date
    The analysis date. Default: the calendar day after the last order in ``orders``
    (``max(ordered_at).normalize() + 1 day``). Orders on or after the as-of date are ignored.
recency_days
    Whole calendar days from the date of the customer's last *completed* order to the as-of
    date: ``(as_of.normalize() - last_completed.normalize()).days``; a customer who bought on
    the last day of the data (with the default as-of) has recency 1.
frequency
    Number of distinct completed orders.
monetary
    Net spend: Σ quantity × unit_price over the lines of completed orders (negative lines of a
    completed order are returned units and are subtracted), plus Σ quantity × unit_price over
    the *negative* lines of orders whose status is ``returned`` (return documents reduce
    spend). Positive lines of a ``returned`` order are excluded (the goods went back, net
    zero). Cancelled orders are excluded entirely. Duplicate rows are *not* removed here:
    that is a cleaning decision (``quality.CleaningPolicy.drop_duplicate_rows``, off by default).
tenure_days
    Calendar days from the first completed order to the as-of date.

Only customers with at least one completed order before the as-of date get a row.

Modules
-------
``rfm``          :func:`rfm_scores`, :func:`rfm_segment`, :data:`RFM_SEGMENT_RULES`,
                 :func:`require_customers` (at least :data:`MIN_CUSTOMERS` customers, else a clear error)
``clustering``   :class:`CustomerSegmenter`, :data:`DEFAULT_FEATURES`, :data:`OPTIONAL_FEATURES`,
                 :data:`UNCLUSTERED`
``k_selection``  the criteria for k: inertia elbow, silhouette of several labellings at once; whether the
                 chosen k is weak (:func:`k_choice_checks`: silhouette/BIC tie, bootstrap ARI < 0.85, more
                 than half the customers not clustered; :func:`describe_k_choice`)
``profiles``     :func:`profile_segments` with names built from the z-scores by :data:`NAME_RULES`
                 (:func:`segment_name_rules` lists them), :func:`outlier_summary`
``value``        :func:`value_tiers`, :data:`VALUE_TIER_RULES`, :func:`historical_clv`, :func:`customer_segments`
``playbook``     :func:`segment_playbook`, :func:`campaign_lists`
``plots``        the figures
"""

from __future__ import annotations

from .clustering import DEFAULT_FEATURES, OPTIONAL_FEATURES, UNCLUSTERED, CustomerSegmenter
from .k_selection import describe_k_choice, k_choice_checks
from .playbook import campaign_lists, segment_playbook
from .profiles import NAME_RULES, outlier_summary, profile_segments, segment_name_rules
from .rfm import MIN_CUSTOMERS, RFM_SEGMENT_RULES, require_customers, rfm_scores, rfm_segment
from .value import VALUE_TIER_RULES, customer_segments, historical_clv, value_tiers

__all__ = [
    "DEFAULT_FEATURES", "OPTIONAL_FEATURES", "UNCLUSTERED", "RFM_SEGMENT_RULES", "VALUE_TIER_RULES",
    "MIN_CUSTOMERS", "require_customers",
    "rfm_scores", "rfm_segment", "outlier_summary", "CustomerSegmenter", "profile_segments", "value_tiers",
    "historical_clv", "segment_playbook", "campaign_lists", "customer_segments",
    "NAME_RULES", "segment_name_rules", "k_choice_checks", "describe_k_choice",
]
