"""The glossary of the reports: ``OUT/glossary.html``, linked from the index and every report.

One entry per term a report uses without explaining it at length; each says what the number means
for a decision and names the notebook that introduces it. The index writer
(:func:`~ecrm_research.report.site.write_index`) writes the page with every run, so a report's
``../glossary.html`` link always resolves. Terms are anchors (``glossary.html#lift``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from .render import NO_SCRIPT_CSP

__all__ = ["GLOSSARY", "GLOSSARY_PAGE", "glossary_anchor", "render_glossary", "write_glossary"]

GLOSSARY_PAGE = "glossary.html"

#: (term, definition, notebook that introduces it); sorted alphabetically on the page
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    ("Support", "Share of all baskets that contain an itemset. A rule A ⇒ B has the support of A and B "
     "together: how often the rule applies at all.", "01_association_rules"),
    ("Confidence", "Of the baskets that contain A, the share that also contain B: P(B | A). High confidence "
     "alone can mislead when B is in most baskets anyway.", "01_association_rules"),
    ("Lift", "Confidence divided by the support of B: how many times more often B is bought with A than "
     "on its own. 1 means independence; above 1, A and B go together.", "01_association_rules"),
    ("Leverage", "Support of A and B together minus what independence predicts (support A × support B): "
     "the extra share of baskets the pairing explains.", "01_association_rules"),
    ("Conviction", "(1 − support B) / (1 − confidence): how much more often the rule would be wrong if A "
     "and B were independent. ∞ for a rule that is never wrong.", "01_association_rules"),
    ("Frequent itemset", "A set of items whose support reaches the minimum support; rules are built only "
     "from these (Apriori, FP-growth).", "01_association_rules"),
    ("Holm correction", "Adjusts p-values for testing many rules at once, so the chance of any false "
     "discovery stays below alpha.", "01_association_rules"),
    ("Churn", "A customer who stopped buying: here, no completed order within the churn window after "
     "their last one. A modelling choice, not an observed event.", "02_churn_survival"),
    ("Censoring", "A customer whose churn has not (yet) been observed when the data ends: we know they "
     "survived at least this long. Survival methods use them instead of dropping them.",
     "02_churn_survival"),
    ("Kaplan–Meier curve", "The estimated share of customers still active after t days, accounting for "
     "censoring. Marks on the curve show censored customers.", "02_churn_survival"),
    ("Hazard", "The instantaneous churn rate among customers still active at time t.", "02_churn_survival"),
    ("Hazard ratio", "How many times the churn rate of one group is the rate of another (Cox model): 0.59 "
     "means 41% fewer churns at every moment; 1 means no difference.", "02_churn_survival"),
    ("Proportional hazards", "The Cox model's assumption that a hazard ratio is the same at all times. "
     "Checked with the Schoenfeld residual test.", "02_churn_survival"),
    ("Schoenfeld residual", "For each churn, the difference between the churner's covariate and its "
     "risk-weighted average among customers at risk. A trend over time means the effect changes: "
     "proportional hazards fails.", "02_churn_survival"),
    ("Concordance", "The share of customer pairs whose predicted risks are in the right order (who "
     "churns first). 0.5 is guessing, 1 is perfect; the survival analogue of AUC.", "02_churn_survival"),
    ("Log-rank test", "Tests whether two or more survival curves differ over the whole time range.",
     "02_churn_survival"),
    ("Cronbach's alpha", "Internal consistency of a survey scale: how strongly its items agree. 0.7 and "
     "above is usually acceptable.", "03_loyalty_drivers"),
    ("Composite reliability (CR)", "Reliability of a construct computed from its factor loadings; like "
     "alpha but without assuming equal loadings. 0.7 and above.", "03_loyalty_drivers"),
    ("Average variance extracted (AVE)", "The mean squared standardised loading of a construct's items: "
     "the share of item variance the construct explains. 0.5 and above.", "03_loyalty_drivers"),
    ("HTMT", "Heterotrait–monotrait ratio: correlation between two constructs relative to within them. "
     "Above 0.85–0.9, the two may not be distinct (discriminant validity fails).", "03_loyalty_drivers"),
    ("Mediation", "An effect that runs through another variable: trust raises satisfaction, which raises "
     "loyalty. The indirect effect is the product of the two paths.", "03_loyalty_drivers"),
    ("Structural equation model (SEM)", "Measurement model (items → constructs) and structural model "
     "(constructs → constructs) fitted together by maximum likelihood.", "03_loyalty_drivers"),
    ("RMSEA / CFI", "Fit indices of an SEM: RMSEA ≤ 0.06 and CFI ≥ 0.95 indicate good fit.",
     "03_loyalty_drivers"),
    ("Importance–performance map", "Drivers placed by importance (effect on the outcome) and performance "
     "(mean score): high importance with low performance is where to invest.", "03_loyalty_drivers"),
    ("RFM", "Recency (days since the last order), frequency (number of orders) and monetary value "
     "(spend): three numbers that describe a customer's buying.", "04_segmentation"),
    ("Segment", "A group of customers with similar behaviour, found by clustering; named after what "
     "distinguishes its profile.", "04_segmentation"),
    ("K-means", "Clustering that places k centres and assigns each customer to the nearest one, "
     "minimising within-cluster distances.", "04_segmentation"),
    ("Silhouette", "How much closer a customer is to their own cluster than to the next one, from −1 to "
     "1; the mean is used to choose k.", "04_segmentation"),
    ("Adjusted Rand index (ARI)", "Agreement of two clusterings corrected for chance (1 identical, 0 "
     "chance). Used here for stability: the same k on resampled data.", "04_segmentation"),
    ("Customer lifetime value (CLV)", "The expected value of a customer's future purchases over a horizon.",
     "04_segmentation"),
    ("Value tier", "Customers ranked by value and cut into tiers (e.g. top 20%), for service levels and "
     "budgets.", "04_segmentation"),
    ("Next best offer", "The product to recommend to one customer next, here from association rules over "
     "their own history, with a popularity fallback.", "05_customer_view"),
    ("Hit rate@k", "Share of customers whose next purchase is among the k offers made to them.",
     "05_customer_view"),
    ("AUC", "Area under the ROC curve: the chance that a random churner is ranked riskier than a random "
     "non-churner. 0.5 is guessing.", "05_customer_view"),
    ("Brier score", "Mean squared difference between predicted probability and outcome (0 or 1); lower is "
     "better, and it rewards calibration.", "05_customer_view"),
    ("Calibration", "Whether predicted probabilities match observed rates: of customers given 30%, about "
     "30% should churn.", "05_customer_view"),
    ("Lift (targeting)", "Churn rate in the top-scored decile divided by the overall rate: how much better "
     "than random the list is.", "05_customer_view"),
    ("Holdout", "Customers kept out of a campaign on purpose, so its effect can be measured against them.",
     "05_customer_view"),
    ("p-value", "The probability of a result at least this extreme if there were no effect. Small values "
     "(below alpha, e.g. 0.05) count as evidence; it is never exactly 0.", "00_overview"),
    ("Confidence interval", "A range that would contain the true value in 95% of repeated samples; wide "
     "intervals mean the data say little.", "00_overview"),
    ("Cohort retention", "For customers who first bought in the same month, the share still buying n "
     "months later.", "00_overview"),
    ("Quarantine", "Rows set aside in preparation with the reason, counted so totals reconcile; never "
     "dropped silently.", "00_overview"),
)


def glossary_anchor(term: str) -> str:
    """The anchor of `term` on the glossary page (``glossary.html#<anchor>``)."""
    return re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


def render_glossary() -> str:
    """HTML of the glossary page (no script; a Content-Security-Policy forbids any)."""
    entries = sorted(GLOSSARY, key=lambda t: t[0].lower())
    items = "\n".join(
        f'<dt id="{glossary_anchor(term)}">{html.escape(term)}</dt><dd>{html.escape(text)} '
        f'<span class="where">Introduced in {html.escape(nb)}.</span></dd>'
        for term, text, nb in entries)
    css = ("body{font:15px/1.55 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2933;"
           "max-width:860px;margin:0 auto;padding:0 1rem 3rem}nav a{color:#0b5cad;margin-right:1rem}"
           "dt{font-weight:600;margin-top:1rem}dd{margin:.2rem 0 0 1.2rem}.where{color:#616e7c;font-size:.9em}"
           "dt:target{background:#fffbea}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" + NO_SCRIPT_CSP
            + f"<title>Glossary</title><style>{css}</style></head><body>"
            '<nav class="ecrm-nav"><a href="index.html">← All reports</a></nav>'
            "<h1>Glossary</h1><p>The terms the reports use, in plain words.</p>"
            f"<dl>\n{items}\n</dl></body></html>\n")


def write_glossary(out: str | Path) -> Path:
    """Write ``out/glossary.html``; return its path."""
    path = Path(out) / GLOSSARY_PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_glossary(), encoding="utf-8")
    return path
