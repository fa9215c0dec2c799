"""Behavioural clustering of customers (:class:`CustomerSegmenter`): features, transform, k selection, final fit.

k is chosen by silhouette (KMeans) or BIC (GMM) among the k whose bootstrap stability (mean
adjusted Rand index) is high enough; the criteria themselves are in :mod:`.k_selection`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..exceptions import AnalysisError, ParameterError
from .k_selection import describe_k_choice, elbow_k, k_choice_checks, silhouette_scores

#: Default clustering features: *how* customers buy — how often while active, how much per
#: order, how price-sensitive — rather than totals (which mostly measure tenure) or recency
#: (which is the RFM R score and shows up in the profiles as "lapsed"/"active").
#: Features whose data is absent (e.g. ``discount_rate`` in Online Retail) are dropped.
DEFAULT_FEATURES: tuple[str, ...] = ("orders_per_month", "mean_order_value", "discount_rate")

#: Every feature :func:`~ecrm_research.prep.customers.customer_features` can compute (``cat_<category>``
#: columns are added for the top categories when ``products.category`` is known).
OPTIONAL_FEATURES: tuple[str, ...] = (
    "recency_days", "frequency", "monetary", "tenure_days", "orders_per_month", "mean_order_value",
    "discount_rate", "basket_size", "app_share",
)

#: Features that are shares in [0, 1]; they are standardised but not log-transformed.
SHARE_FEATURES = ("discount_rate", "app_share")

#: Cluster id of customers with too few orders to be clustered.
UNCLUSTERED = -1


@dataclass
class _Fitted:
    """A fitted model and its labels on the rows it was fitted on."""

    model: object
    labels: np.ndarray


class CustomerSegmenter(BaseEstimator, ClusterMixin):
    """Cluster customers on transformed behaviour features; choose k when not given.

    Parameters
    ----------
    n_clusters : int or None, default None
        Fix k; ``None`` chooses k in ``k_range`` (see Notes).
    method : {'kmeans', 'gmm'}, default 'kmeans'
        KMeans (Euclidean, spherical clusters) or a Gaussian mixture (full covariances).
    features : sequence of str or None
        Feature columns; ``None`` = :data:`DEFAULT_FEATURES` present in the data.
    k_range : (int, int), default (2, 8)
        Inclusive range of k tried.
    n_bootstrap : int, default 20
        Bootstrap refits per k for the stability (adjusted Rand index) score; 0 skips it.
    stability_threshold : float, default 0.75
        Minimum mean bootstrap ARI for a k to be recommended.
    silhouette_sample : int, default 10000
        Silhouette is computed on a seeded sample of at most this many customers.
    max_fit_rows : int, default 20000
        k selection (not the final fit) uses a seeded sample of at most this many customers.
    n_init : int, default 10
        Restarts of KMeans / GMM for the final fit (bootstrap refits use ``max(1, n_init // 3)``).
    min_orders : int, default 3
        Customers with fewer completed orders (column ``frequency``) are not clustered: their
        purchase rate cannot be measured (one order has no gap, two orders one gap). They get
        cluster ``-1`` (:data:`UNCLUSTERED`) and keep their RFM segment. 1 clusters everyone
        (missing rates then take the median).
    log_transform : {'log', 'log1p'}, default 'log'
        Counts and amounts are log-transformed before standardising: ``'log'`` uses log(x) for
        a feature whose values are all > 0 and log1p(max(x, 0)) otherwise; ``'log1p'`` always
        uses log1p(max(x, 0)). Shares (``discount_rate``, ``app_share``, ``cat_*``) are not
        transformed.
    random_state : int, default 42
        Seed for every random step.
    progress : bool, default False
        Show a tqdm progress bar over the k-selection fits (one reference fit and
        ``n_bootstrap`` refits per k).

    Attributes
    ----------
    features_ : list of str
        Features used after dropping absent/constant ones.
    dropped_features_ : dict
        Feature → reason it was not used.
    log_features_ : dict
        Feature → 'log' or 'log1p' for the transformed features (counts and amounts).
    scaler_ : StandardScaler
    model_ : KMeans or GaussianMixture
    n_clusters_ : int
    k_selection_ : DataFrame
        ``k, inertia, silhouette, bic, stability_ari, stability_sd, elbow, recommended``.
    k_reason_ : str
        Why ``n_clusters_`` was chosen, in words.
    labels_ : ndarray
        Cluster of each training row, 0 = largest cluster, -1 = not clustered (< min_orders).
    n_clustered_ : int
        Customers that were clustered.
    diagnostics_ : list of str
        Warnings raised while fitting (tiny clusters, unstable k, a weak k, ...).
    stability_ari_, stability_sd_ : float
        Mean and sd of the bootstrap ARI of the chosen k (from ``k_selection_``, or ``n_bootstrap``
        refits of the fixed k; NaN when ``n_bootstrap = 0``).
    k_checks_ : DataFrame
        :func:`~ecrm_research.segmentation.k_selection.k_choice_checks`: is the choice of k firm
        or weak (silhouette/BIC tie, bootstrap ARI < 0.85, more than half the customers not
        clustered), each check with its verdict and reason.
    k_weak_ : bool
        Whether any check of ``k_checks_`` says weak.
    k_choice_ : str
        ``'weak'``, ``'firm'`` (every check passes) or ``'partly checked'`` (none weak, some not
        made: k fixed by the user, ``n_bootstrap = 0``).
    k_summary_ : str
        ``"k = 3 chosen, but weakly: ..."``, ``"k = 4 chosen firmly: ..."`` or ``"k = 3 chosen; no
        check found it weak: ... (not checked: ...)"``
        (:func:`~ecrm_research.segmentation.k_selection.describe_k_choice`).

    Notes
    -----
    Transform: ``z = (log(x) − mean) / sd`` for counts and amounts (see ``log_transform``),
    ``(x − mean)/sd`` for shares; the mean and sd are those of the clustered customers.
    Recommendation rule: among k whose mean bootstrap ARI ≥ ``stability_threshold``
    (all k if none is), KMeans takes the highest silhouette and GMM the lowest BIC. Stability:
    for each of ``n_bootstrap`` seeded resamples (with replacement) the model is refitted and
    its labels on all customers are compared with the reference fit by the adjusted Rand index
    (1 = identical partition, 0 = chance). Cluster ids are ordered by size (0 = largest).
    KMeans/GMM run single-threaded (``threadpoolctl``): on customer tables of this size that
    is faster than OpenMP threads on a shared machine, and results do not depend on threads.
    """

    def __init__(self, n_clusters: int | None = None, *, method: str = "kmeans",
                 features: Sequence[str] | None = None, k_range: Sequence[int] = (2, 8),
                 n_bootstrap: int = 20, stability_threshold: float = 0.75,
                 silhouette_sample: int = 10_000, max_fit_rows: int = 20_000, n_init: int = 10,
                 min_orders: int = 3, log_transform: str = "log", random_state: int = 42,
                 progress: bool = False):
        self.n_clusters = n_clusters
        self.method = method
        self.features = features
        self.k_range = k_range
        self.n_bootstrap = n_bootstrap
        self.stability_threshold = stability_threshold
        self.silhouette_sample = silhouette_sample
        self.max_fit_rows = max_fit_rows
        self.n_init = n_init
        self.min_orders = min_orders
        self.log_transform = log_transform
        self.random_state = random_state
        self.progress = progress

    # -- preparation -----------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.method not in ("kmeans", "gmm"):
            raise ParameterError(f"method={self.method!r} is not known; use 'kmeans' or 'gmm'.",
                                 allowed=["kmeans", "gmm"])
        if self.log_transform not in ("log", "log1p"):
            raise ParameterError(f"log_transform={self.log_transform!r} is not known; use 'log' or 'log1p'.",
                                 allowed=["log", "log1p"])
        lo, hi = (int(v) for v in self.k_range)
        if lo < 2 or hi < lo:
            raise ParameterError(f"k_range={list(self.k_range)} must be [low, high] with 2 ≤ low ≤ high, e.g. [2, 8].")
        if self.n_clusters is not None and int(self.n_clusters) < 1:
            raise ParameterError(f"n_clusters={self.n_clusters!r} must be a positive integer or None.")

    def _eligible(self, X: pd.DataFrame) -> np.ndarray:
        if self.min_orders and self.min_orders > 1 and "frequency" in X.columns:
            return (X["frequency"].astype(float) >= self.min_orders).to_numpy()
        return np.ones(len(X), dtype=bool)

    def _select_features(self, X: pd.DataFrame) -> None:
        requested = list(self.features) if self.features is not None else list(DEFAULT_FEATURES)
        explicit = self.features is not None
        unknown = [f for f in requested if f not in X.columns]
        if explicit and unknown:
            raise ParameterError(f"features {unknown} are not in the feature table; available: "
                                 f"{[c for c in X.columns if c != 'customer_id']}.",
                                 allowed=[c for c in X.columns if c != "customer_id"])
        self.dropped_features_ = {}
        use = []
        for f in requested:
            if f not in X.columns:
                self.dropped_features_[f] = "not in the data"
                continue
            col = X[f].astype(float)
            if col.isna().all():
                self.dropped_features_[f] = "no data (all missing)"
            elif col.nunique(dropna=True) < 2:
                self.dropped_features_[f] = "constant"
            else:
                use.append(f)
        if explicit and self.dropped_features_:
            warnings.warn(f"features not used: {self.dropped_features_}", UserWarning, stacklevel=3)
        if len(use) == 0:
            raise AnalysisError(f"no usable clustering feature among {requested}: {self.dropped_features_}. "
                                "Pass features=[...] with columns that vary between customers.")
        self.features_ = use
        self.log_features_ = {}
        for f in use:
            if f in SHARE_FEATURES or f.startswith("cat_"):
                continue
            positive = bool((X[f].dropna() > 0).all())
            self.log_features_[f] = "log" if (self.log_transform == "log" and positive) else "log1p"

    def _logged(self, X: pd.DataFrame) -> pd.DataFrame:
        M = X[self.features_].astype(float).copy()
        for f, how in self.log_features_.items():
            M[f] = np.log(M[f].where(M[f] > 0)) if how == "log" else np.log1p(M[f].clip(lower=0))
        return M

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        # missing values (e.g. no channel data, or a rate below min_orders) take the median
        return self._logged(X).fillna(self._medians).to_numpy()

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Standardised (log-transformed where applicable) features used by the clustering."""
        Z = self.scaler_.transform(self._raw(X))
        return pd.DataFrame(Z, columns=self.features_, index=X.index)

    # -- models ----------------------------------------------------------------------------
    def _make(self, k: int, seed: int, n_init: int):
        if self.method == "kmeans":
            return KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        return GaussianMixture(n_components=k, covariance_type="full", n_init=n_init,
                               random_state=seed, reg_covar=1e-4)

    def _fit_one(self, Z: np.ndarray, k: int, seed: int, n_init: int) -> _Fitted:
        m = self._make(k, seed, n_init).fit(Z)
        return _Fitted(m, m.predict(Z))

    def _select_k(self, Z: np.ndarray) -> None:
        """Score every k of ``k_range`` on a seeded sample of ``Z`` and recommend one (see the class Notes)."""
        lo, hi = (int(v) for v in self.k_range)
        n = len(Z)
        hi = min(hi, n - 1)
        rng = np.random.default_rng(self.random_state)
        Zs = Z[np.sort(rng.choice(n, self.max_fit_rows, replace=False))] if n > self.max_fit_rows else Z
        tab = self._score_ks(Zs, lo, hi)
        elbow = elbow_k(tab["k"].to_numpy(float), tab["inertia"].to_numpy(float))
        tab["elbow"] = tab["k"] == elbow
        stable, note = self._stable_ks(tab)
        cand = tab[stable]
        best, crit = self._best_k(cand)
        reason = self._k_reason(tab, cand, stable, best, crit, elbow, lo, hi)
        tab["recommended"] = tab["k"] == best
        self.k_selection_ = tab
        self.k_reason_ = reason + note
        self.n_clusters_ = best

    def _score_ks(self, Zs: np.ndarray, lo: int, hi: int) -> pd.DataFrame:
        """Inertia, BIC, bootstrap stability and silhouette of a reference fit per k in ``lo..hi``."""
        ns = len(Zs)
        sil_n = min(ns, self.silhouette_sample) if self.silhouette_sample else ns
        boot_init = max(1, self.n_init // 3)
        rows, refs = [], []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm  # lazy: tqdm.auto imports IPython to detect a notebook; only for a bar

            bar = tqdm(total=(hi - lo + 1) * (1 + int(self.n_bootstrap)), desc="k selection", unit="fit")
        for k in range(lo, hi + 1):
            ref = self._fit_one(Zs, k, self.random_state, self.n_init)
            if bar is not None:
                bar.update(1)
            inertia = float(ref.model.inertia_) if self.method == "kmeans" else float(
                KMeans(n_clusters=k, n_init=1, random_state=self.random_state).fit(Zs).inertia_)
            bic = float(ref.model.bic(Zs)) if self.method == "gmm" else np.nan
            refs.append(ref.labels)
            aris = self._bootstrap_aris(Zs, k, ref.labels, boot_init, bar)
            rows.append({"k": k, "inertia": inertia, "silhouette": np.nan, "bic": bic,
                         "stability_ari": float(np.mean(aris)) if aris else np.nan,
                         "stability_sd": float(np.std(aris)) if aris else np.nan})
        if bar is not None:
            bar.close()
        tab = pd.DataFrame(rows)
        scored = [i for i, lab in enumerate(refs) if len(np.unique(lab)) > 1]  # a single cluster has none
        if scored:
            sils = silhouette_scores(Zs, [refs[i] for i in scored], sample_size=sil_n if sil_n < ns else None,
                                     random_state=self.random_state)
            tab.loc[scored, "silhouette"] = sils
        return tab

    def _bootstrap_aris(self, Zs: np.ndarray, k: int, ref_labels: np.ndarray, boot_init: int, bar) -> list[float]:
        """Adjusted Rand index between the reference labels and each of ``n_bootstrap`` seeded resample refits."""
        ns = len(Zs)
        aris = []
        for b in range(int(self.n_bootstrap)):
            brng = np.random.default_rng([self.random_state, k, b])
            idx = brng.integers(0, ns, ns)
            m = self._make(k, self.random_state + 1 + b, boot_init).fit(Zs[idx])
            aris.append(adjusted_rand_score(ref_labels, m.predict(Zs)))
            if bar is not None:
                bar.update(1)
        return aris

    def _stable_ks(self, tab: pd.DataFrame) -> tuple[pd.Series, str]:
        """Which k reach the stability threshold (all of them, with a warning and a note, when none does)."""
        stable = tab["stability_ari"] >= self.stability_threshold
        if int(self.n_bootstrap) == 0:
            stable[:] = True
        note = ""
        if not stable.any():
            note = (f" No k reached the stability threshold (mean bootstrap ARI ≥ {self.stability_threshold:.2f}; "
                    f"best {tab['stability_ari'].max():.2f}), so all k were considered: treat the segments as soft.")
            self.diagnostics_.append("no stable k: " + note.strip())
            warnings.warn(note.strip(), UserWarning, stacklevel=4)
            stable[:] = True
        return stable, note

    def _best_k(self, cand: pd.DataFrame) -> tuple[int, str]:
        """The recommended k among the candidates and the criterion, in words."""
        if self.method == "kmeans":
            best = int(cand.loc[cand["silhouette"].idxmax(), "k"])
            crit = f"the highest silhouette ({cand['silhouette'].max():.3f})"
        else:
            best = int(cand.loc[cand["bic"].idxmin(), "k"])
            crit = f"the lowest BIC ({cand['bic'].min():,.0f})"
        return best, crit

    def _k_reason(self, tab: pd.DataFrame, cand: pd.DataFrame, stable: pd.Series, best: int, crit: str,
                  elbow: int | None, lo: int, hi: int) -> str:
        """Why ``best`` was chosen: criterion, stability, runner-up, elbow (the text of ``k_reason_``)."""
        row = tab.set_index("k").loc[best]
        parts = [f"k = {best}: {crit} among k in {lo}..{hi}"]
        if int(self.n_bootstrap):
            parts[0] += (f" with mean bootstrap ARI ≥ {self.stability_threshold:.2f}"
                         f" ({int(stable.sum())} of {len(tab)} k qualify)")
            parts.append(f"stability ARI {row['stability_ari']:.2f} ± {row['stability_sd']:.2f} "
                         f"over {int(self.n_bootstrap)} bootstrap refits")
        if self.method == "kmeans":
            runner_up = cand[cand["k"] != best]["silhouette"]
            if len(runner_up):
                parts.append(f"next-best silhouette {runner_up.max():.3f}")
        if elbow is not None:
            parts.append(f"the inertia elbow is at k = {elbow}" + (" (agrees)" if elbow == best else ""))
        if self.method == "gmm":
            parts.append(f"silhouette {row['silhouette']:.3f}")
        return "; ".join(parts) + "."

    def fit(self, X: pd.DataFrame, y=None) -> CustomerSegmenter:
        """Select features, transform, choose k (unless fixed) and fit the final model.

        Parameters
        ----------
        X : DataFrame
            Feature table (:func:`~ecrm_research.prep.customers.customer_features`), one row per customer.
        """
        self._check_params()
        if len(X) < 3:
            raise AnalysisError(f"only {len(X)} customer(s): segmentation needs at least 3.")
        self.diagnostics_ = []
        keep = self._eligible(X)
        if keep.sum() < 3:
            raise AnalysisError(f"only {int(keep.sum())} customer(s) have at least min_orders={self.min_orders} "
                                "completed orders: too few to cluster. Lower min_orders (e.g. 2) or use more data.")
        if not keep.all():
            self.diagnostics_.append(f"{int((~keep).sum()):,} customers with fewer than {self.min_orders} orders "
                                     f"are not clustered (cluster {UNCLUSTERED}).")
        Xk = X[keep]
        self._select_features(Xk)
        self._medians = self._logged(Xk).median()
        self.scaler_ = StandardScaler().fit(self._raw(Xk))
        Z = self.scaler_.transform(self._raw(Xk))
        self.n_clustered_ = int(keep.sum())
        if self.n_clusters is None:
            with threadpool_limits(1):
                self._select_k(Z)
        else:
            k = int(self.n_clusters)
            if k >= len(Z):
                raise ParameterError(f"k={k} needs more than {len(Z)} customers.")
            self.n_clusters_ = k
            self.k_selection_ = pd.DataFrame(columns=["k", "inertia", "silhouette", "bic", "stability_ari",
                                                      "stability_sd", "elbow", "recommended"])
            self.k_reason_ = f"k = {k} fixed by the user."
        with threadpool_limits(1):
            fitted = self._fit_one(Z, self.n_clusters_, self.random_state, self.n_init)
        self.model_ = fitted.model
        # relabel: 0 = largest cluster; ties broken by the smallest original label
        counts = pd.Series(fitted.labels).value_counts()
        order = sorted(counts.index, key=lambda c: (-counts[c], c))
        self.label_map_ = {int(old): new for new, old in enumerate(order)}
        labels_k = np.array([self.label_map_[int(v)] for v in fitted.labels])
        self.labels_ = np.full(len(X), UNCLUSTERED, dtype=int)
        self.labels_[keep] = labels_k
        small = [c for c, n in pd.Series(labels_k).value_counts().items() if n < max(10, 0.01 * len(Z))]
        if small:
            msg = (f"cluster(s) {sorted(small)} hold fewer than max(10, 1% of customers); "
                   "they may be outliers rather than segments.")
            self.diagnostics_.append(msg)
            warnings.warn(msg, UserWarning, stacklevel=2)
        if self.n_clusters is not None and len(self.labels_):
            sil_n = min(len(Z), self.silhouette_sample)
            self.silhouette_ = (silhouette_scores(Z, [labels_k], sample_size=sil_n if sil_n < len(Z) else None,
                                                  random_state=self.random_state)[0]
                                if self.n_clusters_ > 1 else np.nan)
        else:
            self.silhouette_ = float(self.k_selection_.set_index("k").loc[self.n_clusters_, "silhouette"]) \
                if len(self.k_selection_) else np.nan
        self._check_k(Z, len(X))
        return self

    def _check_k(self, Z: np.ndarray, n_customers: int) -> None:
        """Stability of the chosen k (measured here when k was fixed) and the weak-k checks."""
        if len(self.k_selection_):
            row = self.k_selection_.set_index("k").loc[self.n_clusters_]
            self.stability_ari_, self.stability_sd_ = float(row["stability_ari"]), float(row["stability_sd"])
        elif int(self.n_bootstrap) and 1 < self.n_clusters_ < len(Z):
            n = len(Z)
            rng = np.random.default_rng(self.random_state)
            Zs = Z[np.sort(rng.choice(n, self.max_fit_rows, replace=False))] if n > self.max_fit_rows else Z
            bar = None
            if self.progress:
                from tqdm.auto import tqdm  # lazy: tqdm.auto imports IPython to detect a notebook; only for a bar

                bar = tqdm(total=int(self.n_bootstrap), desc=f"stability of k = {self.n_clusters_}", unit="fit")
            with threadpool_limits(1):
                ref = self.model_.predict(Zs)
                aris = self._bootstrap_aris(Zs, self.n_clusters_, ref, max(1, self.n_init // 3), bar)
            if bar is not None:
                bar.close()
            self.stability_ari_, self.stability_sd_ = float(np.mean(aris)), float(np.std(aris))
        else:
            self.stability_ari_ = self.stability_sd_ = np.nan
        self.k_checks_ = k_choice_checks(
            self.k_selection_, self.n_clusters_, method=self.method, stability_ari=self.stability_ari_,
            n_bootstrap=int(self.n_bootstrap), n_clustered=self.n_clustered_, n_customers=n_customers,
            min_orders=self.min_orders)
        self.k_weak_ = bool((self.k_checks_["verdict"] == "weak").any())
        self.k_choice_ = "weak" if self.k_weak_ else (
            "firm" if (self.k_checks_["verdict"] == "passes").all() else "partly checked")
        self.k_summary_ = describe_k_choice(self.n_clusters_, self.k_checks_)
        if self.k_weak_:
            self.diagnostics_.append(self.k_summary_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster id (0 = largest training cluster; -1 = fewer than ``min_orders``) per row."""
        with threadpool_limits(1):
            raw = self.model_.predict(self.transform(X).to_numpy())
        out = np.array([self.label_map_[int(v)] for v in raw])
        out[~self._eligible(X)] = UNCLUSTERED
        return out

    def fit_predict(self, X: pd.DataFrame, y=None) -> np.ndarray:
        return self.fit(X).labels_
