"""Cox proportional-hazards model of churn (:class:`ChurnCoxModel`): pre-flight checks, fit, PH test, predictions.

Model fitting is delegated to lifelines (Efron's method for tied event times, as R's
``coxph`` default) through :class:`~ecrm_research.survival.schoenfeld.FastSchoenfeldCoxPHFitter`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, ParameterError, SurvivalWarning
from ..phrasing import p_text
from ..prep.churn import ChurnData
from . import plots
from .checks import diagnostic, preflight_checks
from .covariates import encode_covariates
from .ph_test import PHTestResult, cox_zph, ph_caveat
from .schoenfeld import FastSchoenfeldCoxPHFitter

#: Columns of :attr:`ChurnCoxModel.summary`.
COX_SUMMARY_COLUMNS = ["covariate", "coef", "se", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]

#: Pre-flight errors that ``drop_problems=True`` fixes by dropping the covariate.
_DROPPABLE_CHECKS = ["constant", "complete separation", "collinear"]


def _warn(message: str, stacklevel: int = 3) -> None:
    """Issue a :class:`SurvivalWarning`; the default points at the caller of the method calling this."""
    warnings.warn(message, SurvivalWarning, stacklevel=stacklevel)


class ChurnCoxModel:
    """Cox proportional-hazards model of churn, lifelines-style, with pre-flight checks.

    Parameters
    ----------
    alpha : float
        1 − confidence level of the intervals (0.05 → 95 % CIs).
    penalizer : float
        L2 penalty passed to lifelines (0 = ordinary partial likelihood, as R's ``coxph``).
    missing : {'error', 'drop'}
        Rows with missing covariates: refuse with a plain message, or drop and count them.
    drop_problems : bool
        Covariates failing a pre-flight check with severity ``error`` (constant, separated,
        collinear): raise :class:`AnalysisError` (False) or drop them with a warning (True).
    drop_lookahead : bool
        Also drop covariates flagged as probable look-ahead (rank correlation ≥ 0.8 with the
        duration, e.g. a running total such as Telco ``TotalCharges``).
    min_events_per_covariate : float
        Threshold of the events-per-covariate warning.

    Attributes
    ----------
    summary : DataFrame
        ``covariate, coef, se, hazard_ratio, ci_lower, ci_upper, p_value`` — CI on the HR scale
        (exp of the Wald interval of the coefficient).
    concordance_ : float
        Harrell's C on the fitting data.
    log_likelihood_ : float
        Partial log-likelihood (Efron ties).
    lr_test_ : dict
        Likelihood-ratio test against the null model: ``statistic``, ``df``, ``p_value``.
    diagnostics_ : DataFrame
        Pre-flight findings and what was done about them.
    encoding_ : DataFrame
        Model column → source variable and level (reference level named).
    n_, n_events_, n_dropped_ : int
    cph_ : lifelines.CoxPHFitter

    Notes
    -----
    h(t | x) = h₀(t) · exp(xβ); hazard ratio exp(βⱼ) = multiplicative change in the churn
    hazard per unit of xⱼ (per level vs the reference level for indicators), assumed constant
    over time (checked by :meth:`check_proportional_hazards`). Ties: Efron's method (lifelines;
    R ``coxph`` default; statsmodels ``PHReg(ties='efron')``).
    """

    def __init__(self, alpha: float = 0.05, penalizer: float = 0.0, *, missing: str = "error",
                 drop_problems: bool = False, drop_lookahead: bool = False,
                 min_events_per_covariate: float = 10):
        if missing not in ("error", "drop"):
            raise ParameterError(f"missing must be 'error' or 'drop', got {missing!r}", allowed=["error", "drop"])
        self.alpha = alpha
        self.penalizer = penalizer
        self.missing = missing
        self.drop_problems = drop_problems
        self.drop_lookahead = drop_lookahead
        self.min_events_per_covariate = min_events_per_covariate

    # -- fitting
    def fit(self, data: ChurnData | pd.DataFrame, duration_col: str | None = None, event_col: str | None = None,
            covariates: Sequence[str] | None = None, *, reference_levels: Mapping[str, Any] | None = None,
            strata: Sequence[str] | str | None = None, id_col: str | None = None) -> ChurnCoxModel:
        """Fit the model; returns ``self``.

        ``data`` is a :class:`ChurnData` (columns default to ``duration``/``event`` and its
        covariates) or any DataFrame (then covariates default to every other column).
        ``strata`` (raw column names) fits a stratified model: a separate baseline hazard per
        stratum, no hazard ratio for the stratifying variable — the standard fix for a
        covariate that violates proportional hazards.
        """
        df, duration_col, event_col, id_col, covariates = self._resolve_columns(data, duration_col, event_col,
                                                                                covariates, id_col)
        strata = [strata] if isinstance(strata, str) else list(strata or [])
        covariates = [c for c in covariates if c not in strata]
        for c in [duration_col, event_col, *covariates, *strata]:
            if c not in df.columns:
                raise AnalysisError(f"column {c!r} is not in the data; have {list(df.columns)[:30]}.")
        self.duration_col, self.event_col, self.id_col = duration_col, event_col, id_col
        self.variables_ = list(covariates)
        self.strata_ = strata
        X, enc = encode_covariates(df, covariates, reference_levels)
        self.levels_ = enc.attrs["levels"]
        self.reference_levels = dict(reference_levels or {})
        X, enc, diags = self._drop_empty_columns(X, enc)
        X, row_diags = self._drop_incomplete_rows(X, df, strata)
        T = df.loc[X.index, duration_col].astype(float)
        E = df.loc[X.index, event_col].astype(float)
        X, enc, pre = self._checked_design(X, T, E, enc)
        self.diagnostics_ = pd.concat([pd.DataFrame(diags + row_diags, columns=pre.columns), pre], ignore_index=True)
        if X.shape[1] == 0:
            problems = self.diagnostics_.loc[self.diagnostics_["severity"] == "error", "message"].tolist()
            raise AnalysisError(
                f"No usable covariate is left for the Cox model ({len(X):,} customers, {int(E.sum()):,} churn "
                f"events; covariates asked for: {', '.join(map(str, covariates)) or 'none'}). "
                + (f"Dropped: {'; '.join(problems[:5])}. " if problems else "")
                + "Pass covariates that vary between customers (-p covariates ...), or use more data.")
        self.encoding_ = enc
        self.design_columns_ = list(X.columns)
        self._fit_lifelines(X, T, E, df, strata)
        self._summarise(X)
        return self

    def _resolve_columns(self, data: ChurnData | pd.DataFrame, duration_col: str | None, event_col: str | None,
                         covariates: Sequence[str] | None, id_col: str | None
                         ) -> tuple[pd.DataFrame, str, str, str | None, list[str]]:
        """The frame and its duration, event, id and covariate columns (defaults from ``ChurnData``); sets ``unit_``."""
        if isinstance(data, ChurnData):
            df = data.frame
            duration_col = duration_col or data.duration_col
            event_col = event_col or data.event_col
            id_col = id_col or data.id_col
            covariates = list(data.covariates) if covariates is None else list(covariates)
            self.unit_ = data.unit
        else:
            df = data
            duration_col = duration_col or "duration"
            event_col = event_col or "event"
            if covariates is None:
                covariates = [c for c in df.columns if c not in (duration_col, event_col, id_col)]
            self.unit_ = "days"
        return df, duration_col, event_col, id_col, covariates

    def _drop_empty_columns(self, X: pd.DataFrame, enc: pd.DataFrame
                            ) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
        """Model columns without any value: refuse, or (``drop_problems``) drop them with a warning."""
        empty = [c for c in X.columns if X[c].isna().all()]
        if not empty:
            return X, enc, []
        msg = (f"covariate column(s) {empty} have no values at all (not recorded in these data)")
        if not self.drop_problems:
            raise AnalysisError(f"The Cox model cannot be fitted as asked: {msg}. Remove them from covariates.")
        _warn(msg + "; dropped from the model.", stacklevel=4)
        diags = [diagnostic("no values", c, "dropped covariate", msg) for c in empty]
        return X.drop(columns=empty), enc[~enc["column"].isin(empty)].reset_index(drop=True), diags

    def _drop_incomplete_rows(self, X: pd.DataFrame, df: pd.DataFrame, strata: list[str]
                              ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """With ``missing='drop'``, drop (and count) rows with missing covariates or strata; sets ``n_dropped_``."""
        rowmask = X.notna().all(axis=1) & df[strata].notna().all(axis=1) if strata else X.notna().all(axis=1)
        n_drop = int((~rowmask).sum())
        diags = []
        if n_drop and self.missing == "drop":
            worst = X.isna().sum().sort_values(ascending=False)
            worst = ", ".join(f"{k} ({v:,})" for k, v in worst[worst > 0].head(5).items())
            msg = (f"{n_drop:,} of {len(X):,} customers have missing covariate values and were dropped "
                   f"before fitting (columns: {worst}).")
            _warn(msg, stacklevel=4)
            diags.append(diagnostic("missing values", None, "dropped rows", msg))
            X = X.loc[rowmask]
        self.n_dropped_ = n_drop if self.missing == "drop" else 0
        return X, diags

    def _checked_design(self, X: pd.DataFrame, T: pd.Series, E: pd.Series, enc: pd.DataFrame
                        ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Run :func:`preflight_checks`: raise on errors, or drop the covariates that ``drop_problems`` /
        ``drop_lookahead`` allow and re-check the rest; warn about the warnings."""
        pre = preflight_checks(X, T, E, min_events_per_covariate=self.min_events_per_covariate, encoding=enc)
        if self.drop_lookahead:
            pre.loc[pre["check"] == "look-ahead", "severity"] = "error"
        errors = pre[pre["severity"] == "error"]
        fixable = errors["covariate"].notna() & (
            (errors["check"].isin(_DROPPABLE_CHECKS) & self.drop_problems)
            | ((errors["check"] == "look-ahead") & self.drop_lookahead))
        if len(errors) and not fixable.all():
            raise AnalysisError("The Cox model cannot be fitted as asked:\n- " + "\n- ".join(errors["message"]))
        if len(errors):
            bad_cols = list(dict.fromkeys(errors["covariate"]))
            for msg in errors["message"]:
                _warn(msg + " (dropped from the model)", stacklevel=4)
            pre.loc[errors.index, "severity"] = "dropped covariate"
            X = X.drop(columns=bad_cols)
            enc = enc[~enc["column"].isin(bad_cols)].reset_index(drop=True)
            # re-check what remains (events per covariate etc.)
            pre2 = preflight_checks(X, T, E, min_events_per_covariate=self.min_events_per_covariate, encoding=enc)
            if (pre2["severity"] == "error").any():
                raise AnalysisError("The Cox model cannot be fitted:\n- "
                                    + "\n- ".join(pre2.loc[pre2["severity"] == "error", "message"]))
            pre = pd.concat([pre[pre["severity"] == "dropped covariate"], pre2], ignore_index=True)
        for msg in pre.loc[pre["severity"] == "warning", "message"]:
            _warn(msg, stacklevel=4)
        return X, enc, pre

    def _fit_lifelines(self, X: pd.DataFrame, T: pd.Series, E: pd.Series, df: pd.DataFrame,
                       strata: list[str]) -> None:
        """Fit lifelines' Cox model on the checked design; sets ``cph_``, ``training_df_``, ``n_``, ``n_events_``."""
        fit_df = X.copy()
        fit_df["_duration"] = T.to_numpy()
        fit_df["_event"] = E.to_numpy().astype(int)
        for s in strata:
            fit_df[s] = df.loc[X.index, s].astype(str).to_numpy()
        cph = FastSchoenfeldCoxPHFitter(alpha=self.alpha, penalizer=self.penalizer, strata=strata or None)
        try:
            cph.fit(fit_df, "_duration", "_event", fit_options={"precision": 1e-10, "r_precision": 1e-14})
        except Exception as exc:  # lifelines ConvergenceError and friends
            raise AnalysisError(f"The Cox fit did not converge ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
                                "Check diagnostics_ for near-constant or highly correlated covariates, or fit with "
                                "a small penalizer (e.g. 0.01).") from exc
        self.cph_ = cph
        self.training_df_ = fit_df
        self.index_ = X.index
        self.n_ = int(len(fit_df))
        self.n_events_ = int(fit_df["_event"].sum())

    def _summarise(self, X: pd.DataFrame) -> None:
        """Hazard-ratio summary, concordance, log-likelihood, LR test and covariate means of the fit."""
        cph = self.cph_
        s = cph.summary
        z = cph.summary["coef"] / cph.summary["se(coef)"]
        self.summary = pd.DataFrame({
            "covariate": s.index.astype(str), "coef": s["coef"].to_numpy(), "se": s["se(coef)"].to_numpy(),
            "hazard_ratio": s["exp(coef)"].to_numpy(),
            "ci_lower": s[f"exp(coef) lower {100 * (1 - self.alpha):g}%"].to_numpy(),
            "ci_upper": s[f"exp(coef) upper {100 * (1 - self.alpha):g}%"].to_numpy(),
            "p_value": s["p"].to_numpy()}, columns=COX_SUMMARY_COLUMNS).reset_index(drop=True)
        self.z_ = z.to_numpy()
        self.concordance_ = float(cph.concordance_index_)
        self.log_likelihood_ = float(cph.log_likelihood_)
        lr = cph.log_likelihood_ratio_test()
        # the degrees-of-freedom attribute is named differently across lifelines versions
        lr_df = getattr(lr, "degrees_freedom", getattr(lr, "degrees_of_freedom", len(self.design_columns_)))
        self.lr_test_ = {"statistic": float(lr.test_statistic), "df": int(lr_df), "p_value": float(lr.p_value)}
        self.means_ = X.mean()

    # -- design for new data
    def design(self, df: pd.DataFrame) -> pd.DataFrame:
        """Model columns for new rows, encoded with the fitted levels and reference levels."""
        X, _ = encode_covariates(df, self.variables_, self.reference_levels, levels=self.levels_)
        for c in self.design_columns_:
            if c not in X.columns:
                X[c] = 0.0
        return X[self.design_columns_]

    def fit_statistics(self) -> pd.DataFrame:
        """Customers, events, concordance, partial log-likelihood, LR test, AIC as a tidy table."""
        rows = [("customers", self.n_), ("events", self.n_events_), ("rows dropped (missing)", self.n_dropped_),
                ("model columns", len(self.design_columns_)), ("concordance", self.concordance_),
                ("partial log-likelihood", self.log_likelihood_),
                ("likelihood-ratio test statistic", self.lr_test_["statistic"]),
                ("likelihood-ratio test df", self.lr_test_["df"]),
                ("likelihood-ratio test p-value", self.lr_test_["p_value"]),
                ("partial AIC", float(self.cph_.AIC_partial_))]
        return pd.DataFrame(rows, columns=["statistic", "value"])

    # -- diagnostics
    def factors(self) -> dict[str, list[str]]:
        """Variable → its model columns (a categorical's indicator columns; a number's one column)."""
        out: dict[str, list[str]] = {}
        for var, col in zip(self.encoding_["variable"], self.encoding_["column"]):
            if col in self.design_columns_:
                out.setdefault(var, []).append(col)
        return out

    def ph_test(self, transform: str | Callable[[np.ndarray], Any] = "km", terms: bool | str = "both"
                ) -> PHTestResult:
        """The exact proportional-hazards score test of R survival ≥ 3 ``cox.zph`` (see :func:`cox_zph`).

        Efron ties (as the fit); a stratified model's risk sets are its strata.
        """
        cph = self.cph_
        df = self.training_df_
        cols = list(cph.params_.index)
        strata = list(df[self.strata_].astype(str).itertuples(index=False, name=None)) if self.strata_ else None
        return cox_zph(df[cols], df["_duration"], df["_event"], cph.params_.to_numpy(float), strata=strata,
                       ties="efron", transform=transform, terms=terms, factors=self.factors())

    def check_proportional_hazards(self, transform: str | Callable[[np.ndarray], Any] = "km", alpha: float = 0.05,
                                   terms: bool | str = "both") -> pd.DataFrame:
        """Test of proportional hazards (R survival ≥ 3 ``cox.zph``), with plain advice per row.

        Parameters
        ----------
        transform : {'km', 'rank', 'identity', 'log'} or callable
            g(t) the effects may drift with; ``km`` (R's default) is 1 − Kaplan-Meier Ŝ(t−).
        alpha : float
            Significance level of the ``ph_violated`` flag.
        terms : True, False or 'both'
            ``'both'`` (default): one row per model column (each dummy), one per multi-level
            categorical (its dummies jointly, df = number of dummies) and GLOBAL; ``True`` / ``False``:
            R's ``terms=TRUE`` / ``terms=FALSE`` tables.

        Returns
        -------
        DataFrame
            ``term_type`` (covariate / factor / global), ``covariate`` (model column, variable name of
            a factor row, or ``GLOBAL``), ``variable``, ``chi_square``, ``df``, ``p_value``,
            ``ph_violated``, ``advice``, ``method``. A small p-value means the hazard ratio changes
            over time; GLOBAL tests all effects at once.

        Notes
        -----
        The score test of adding γⱼ·g(t)·xⱼ to the model (Grambsch & Therneau 1994; R survival 3's
        exact form with the full information matrix, not lifelines' average-variance approximation).
        With thousands of customers tiny drifts are "significant": judge the size with
        :meth:`plot_schoenfeld` too.
        """
        if not 0 < alpha < 1:
            raise ParameterError(f"alpha must be between 0 and 1, got {alpha!r}")
        ph = self.ph_test(transform, terms).summary
        ph["ph_violated"] = ph["p_value"] < alpha
        ph["advice"] = [self._ph_advice(r) for r in ph.itertuples(index=False)]
        return ph[["term_type", "covariate", "variable", "chi_square", "df", "p_value", "ph_violated", "advice",
                   "method"]]

    def _ph_advice(self, row: Any) -> str:
        """What to do about one row of the PH test, in words."""
        if not row.ph_violated:
            if row.term_type == "global":
                return "no evidence against proportional hazards for the model as a whole."
            return "no evidence against proportional hazards: the hazard ratio can be read as constant over time."
        if row.term_type == "global":
            return ("at least one effect changes over time: see the rows above, and read hazard ratios of the "
                    "violating covariates as averages over follow-up.")
        var, cov = row.variable, row.covariate
        is_cat = self.levels_.get(var) is not None
        binary = row.term_type == "covariate" and set(np.unique(self.training_df_[cov])) <= {0.0, 1.0}
        if is_cat or binary:
            return (f"the effect of '{var}' changes over time: stratify by '{var}' (fit(..., strata='{var}')) "
                    "so each group gets its own baseline hazard, or report hazard ratios per time period.")
        return (f"the effect of '{cov}' changes over time: add a time interaction ('{cov}' × log t) "
                f"or bin '{cov}' and stratify by the bins.")

    def column_levels(self, column: str) -> tuple[str, str] | None:
        """Who a model column's hazard ratio compares, in words: (this group, compared with), None for a number.

        An indicator of a categorical reads ``("customers with Contract = Two year", "customers with
        Contract = Month-to-month")``; a yes/no covariate ``("members", "non-members")`` or
        ``("customers with PaperlessBilling: yes", ...)`` (:func:`plots.level_label`).
        """
        enc = self.encoding_.set_index("column")
        level = enc.at[column, "level"] if column in enc.index else None
        if level is not None and not pd.isna(level):
            var = enc.at[column, "variable"]
            ref = enc.at[column, "reference"]
            pair = [plots.level_label(var, x) for x in (level, ref)]
            if pair == [str(level), str(ref)]:  # not yes/no: name the variable
                pair = [f"{var} = {x}" for x in pair]
        else:
            values = self.training_df_[column] if column in self.training_df_ else pd.Series(dtype=float)
            if not (len(values) and set(np.unique(values)) <= {0.0, 1.0}):
                return None
            var = column
            pair = [plots.level_label(column, True), plots.level_label(column, False)]
        if var in plots.BOOLEAN_LEVEL_WORDS:
            return pair[0], pair[1]
        return f"customers with {pair[0]}", f"those with {pair[1]}"

    def effect_text(self, column: str, ph: pd.DataFrame | None = None) -> str:
        """One covariate's hazard ratio in words, with the PH caveat when its effect changes over time.

        ``ph`` is :meth:`check_proportional_hazards`; a covariate whose own row or whose factor's
        row fails it gets "… but this effect changes over time (PH test p = …)": a hazard ratio is
        then an average over follow-up, not a constant effect.
        """
        r = self.summary.set_index("covariate").loc[column]
        hr = float(r["hazard_ratio"])
        levels = self.column_levels(column)
        direction = "sooner" if hr > 1 else "later"
        stats_txt = f"95% CI {r['ci_lower']:.2f}–{r['ci_upper']:.2f}, {p_text(float(r['p_value']))}"
        if levels is None:
            text = (f"each unit of {column} multiplies the churn hazard by {hr:.2f} ({stats_txt}), "
                    f"i.e. churning {direction}")
        else:
            text = f"{levels[0]} churn at {hr:.2f} times the rate of {levels[1]} ({stats_txt}), i.e. {direction}"
        caveat = ph_caveat(ph, column) if ph is not None else None
        return text + (f", {caveat}" if caveat else "")

    def headline_effect(self, ph: pd.DataFrame) -> dict[str, Any]:
        """The clearest hazard ratio for a headline, never overstated.

        The covariate with the largest |z| = |β/se|; when it fails the PH test (``ph``, from
        :meth:`check_proportional_hazards`) the text carries the caveat and also names the clearest
        significant covariate whose effect passes the test, if there is one.

        Returns
        -------
        dict
            ``covariate``, ``hazard_ratio``, ``ph_violated``, ``text``.
        """
        s = self.summary.assign(z=(self.summary["coef"] / self.summary["se"]).abs()).sort_values("z", ascending=False)
        top = s.iloc[0]
        caveat = ph_caveat(ph, top["covariate"])
        text = f"Clearest effect: {self.effect_text(top['covariate'], ph)}"
        if caveat:
            ok = [c for c in s.loc[s["p_value"] < self.alpha, "covariate"] if not ph_caveat(ph, c)]
            text += (f". Clearest effect constant over time: {self.effect_text(ok[0], ph)}" if ok else
                     ". No significant effect passes the PH test: read the hazard ratios as averages over follow-up")
        return {"covariate": str(top["covariate"]), "hazard_ratio": float(top["hazard_ratio"]),
                "ph_violated": bool(caveat), "text": text}

    def scaled_schoenfeld_residuals(self, transform: str | Callable[[np.ndarray], Any] = "km") -> pd.DataFrame:
        """Scaled Schoenfeld residuals of the event rows, as R's ``cox.zph(fit, terms=FALSE)$y``.

        β̂ⱼ + (rᵢ · V̄⁻¹)ⱼ with rᵢ = xᵢ − x̄(tᵢ) (Efron-weighted mean of the risk set) and V̄ the
        information per event; their trend against time estimates βⱼ(t) (Grambsch & Therneau).
        Index: the event rows of ``training_df_`` in time order; :meth:`ph_test` also gives their
        event times (``time``) and the transformed time of the plot's x axis (``x``).
        """
        return self.ph_test(transform, terms=False).residuals

    # -- prediction
    def _cumhaz(self, X: pd.DataFrame, times: np.ndarray, strata_values: pd.Series | None = None) -> np.ndarray:
        cph = self.cph_
        ph = cph.predict_partial_hazard(X).to_numpy(float) if not self.strata_ else None
        bch = cph.baseline_cumulative_hazard_
        if not self.strata_:
            H0 = bch.iloc[:, 0]
            idx = np.searchsorted(H0.index.to_numpy(float), times, side="right") - 1
            h = np.where(idx >= 0, H0.to_numpy()[np.clip(idx, 0, None)], 0.0)
            return h * ph
        raise NotImplementedError("churn probabilities for stratified models: predict per stratum with cph_")

    def predict_churn_probability(self, df: pd.DataFrame, horizon: float, now: Sequence[float] | str | None = None
                                  ) -> pd.Series:
        """P(churn within ``horizon`` | still a customer at ``now``) for each row of ``df``.

        Parameters
        ----------
        df : DataFrame
            Raw covariates (as given to :meth:`fit`).
        horizon : float
            Horizon in the duration unit.
        now : array or column name, optional
            Each customer's time at risk so far; default the duration column (customers still
            active are censored at "now").

        Notes
        -----
        1 − S(now + h | x) / S(now | x) = 1 − exp(−[H₀(now + h) − H₀(now)] · exp((x − x̄)β)), with
        Breslow's baseline cumulative hazard H₀. H₀ is flat beyond the longest follow-up, so
        probabilities for customers near it are lower bounds.
        """
        if now is None:
            now = self.duration_col
        t_now = df[now].to_numpy(float) if isinstance(now, str) else np.asarray(now, float)
        X = self.design(df)
        h1 = self._cumhaz(X, t_now + float(horizon))
        h0 = self._cumhaz(X, t_now)
        return pd.Series(1.0 - np.exp(-(h1 - h0)), index=df.index, name="churn_probability")

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """Each variable's contribution Σ_{columns of v} βⱼ (xⱼ − x̄ⱼ) to each customer's log hazard.

        One row per row of ``df``, one column per model variable (its dummy columns summed),
        relative to an average customer; exp(contribution) is the variable's hazard ratio.
        """
        X = self.design(df)
        beta = self.cph_.params_.reindex(self.design_columns_).to_numpy()
        contrib = (X.to_numpy(float) - self.means_.reindex(self.design_columns_).to_numpy()) * beta
        var_of = dict(zip(self.encoding_["column"], self.encoding_["variable"]))
        vars_ = [var_of[c] for c in self.design_columns_]
        return pd.DataFrame(contrib, index=df.index, columns=self.design_columns_).T.groupby(vars_, sort=False).sum().T

    def risk_factors(self, df: pd.DataFrame, top: int = 3) -> pd.Series:
        """The main risk factors of each customer, as text.

        Contribution of variable v (:meth:`contributions`) to the log hazard (relative to
        an average customer); the ``top`` largest positive contributions are listed as
        ``variable = value (×HR)``, where ×HR = exp(contribution).
        """
        C = self.contributions(df)
        variables = list(C.columns)
        Cv = C.to_numpy(float)
        # largest first; among equal contributions the variable listed first (a stable sort)
        order = np.argsort(-Cv, axis=1, kind="stable")[:, :top]
        values = {v: (df[v].tolist() if v in df.columns else [None] * len(df)) for v in variables}
        # yes/no flags read as words ("is_member: no"), never as a Python True/False
        flags = {v for v in variables if v in df.columns and pd.api.types.is_bool_dtype(df[v])}
        for v in flags:
            values[v] = [f"{v}: {'yes' if x else 'no'}" if not pd.isna(x) else f"{v}: unknown" for x in values[v]]
        out = []
        for i in range(len(Cv)):  # plain lists: a pandas row per customer took ~25 µs each
            parts = []
            for j in order[i]:
                c = Cv[i, j]
                if not c > 0.01:
                    break
                v = variables[j]
                val = values[v][i]
                if isinstance(val, (float, np.floating)) and not float(val).is_integer():
                    val = f"{val:.2f}"
                parts.append(f"{val if v in flags else f'{v} = {val}'} (×{np.exp(c):.2f})")
            out.append("; ".join(parts))
        return pd.Series(out, index=df.index, name="main_risk_factors")

    # -- plots
    def plot_forest(self, ax=None, **kwargs):
        """Forest plot of hazard ratios with CIs (log scale); see :func:`plots.plot_forest`."""
        return plots.plot_forest(self.summary, ax=ax, **kwargs)

    def plot_schoenfeld(self, covariate: str, ax=None):
        """Scaled Schoenfeld residuals of ``covariate`` against time rank, with a lowess trend."""
        return plots.plot_schoenfeld(self, covariate, ax=ax)

    def __repr__(self) -> str:
        if not hasattr(self, "cph_"):
            return "ChurnCoxModel(unfitted)"
        return (f"ChurnCoxModel(n={self.n_}, events={self.n_events_}, columns={len(self.design_columns_)}, "
                f"concordance={self.concordance_:.3f})")

