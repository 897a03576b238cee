"""Results of a ``MultilevelSEM`` fit, built once from the finished fit."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.base import wrapper as wrap
from statsmodels.base.model import (
    GenericLikelihoodModelResults,
    LikelihoodModelResults,
    LikelihoodResultsWrapper,
)

from .estimation import Optimum, ProfiledObjective, fit_profiled

__all__ = ["MultilevelSEMResults", "LRTest"]


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio test with the reference distribution it was referred to.

    Attributes
    ----------
    statistic : float
    df : int
    pvalue : float
    distribution : str
        ``"chibar2(01)"`` for a single variance tested at its boundary (a 50:50 mixture of
        chi2(0) and chi2(1)), ``"chi2(df)"`` otherwise.
    note : str
        Caveat to print with the test, empty when there is none.
    """

    statistic: float
    df: int
    pvalue: float
    distribution: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.distribution} = {self.statistic:.2f}   Prob > chi2 = {self.pvalue:.4f}"


class MultilevelSEMResults(GenericLikelihoodModelResults):
    """Estimates, their covariance and tests for a fitted :class:`~sm_multisem.MultilevelSEM`.

    Attributes
    ----------
    params : Series
        Fixed effects, then ``var(<level>)`` for every grouping level and ``var(Residual)``.
    llf : float
        Log-likelihood (restricted log-likelihood for REML fits).
    nobs : int
        Number of top-level clusters (rows of the wide model).
    nobs_long : int
        Number of observations (long rows) used.
    reml : bool
    cov_type : str
    cov_description : str
        How the covariance was computed, as the summary prints it.
    converged : bool
    boundary : list of str
        Variances estimated at 0.
    optimum : Optimum
        The optimizer's outcome (iterations, gradient, message).
    """

    def __init__(self, model, params: np.ndarray, cov: np.ndarray, *, optimum: Optimum, cov_type: str,
                 cov_description: str = ""):
        LikelihoodModelResults.__init__(self, model, params, normalized_cov_params=cov, scale=1.0)
        self._cache = {}
        self._data_attr = []
        self._data_in_cache = []
        self.optimum = optimum
        self.reml = optimum.reml
        self.cov_type = cov_type
        self.cov_description = cov_description or cov_type.upper()
        self.converged = optimum.converged
        self.nobs = model.nobs
        self.nobs_long = model.nobs_long
        self.df_model = model.df_model
        self.df_resid = model.df_resid
        self.row_accounting = model.row_accounting
        self.boundary = [model.param_names[i] for i in model.plan.variance_index[optimum.boundary]]
        self.method = "reml" if optimum.reml else "ml"
        self.mle_retvals = {
            "converged": optimum.converged,
            "iterations": optimum.iterations,
            "fcalls": optimum.n_evaluations,
            "gradient": optimum.gradient,
            "message": optimum.message,
        }

    # ----------------------------------------------------------- statistics
    @cached_property
    def llf(self) -> float:
        return -0.5 * self.optimum.deviance

    @cached_property
    def df_modelwc(self) -> int:
        """Number of estimated parameters (fixed effects and variances)."""
        return len(self.params)

    @cached_property
    def aic(self) -> float:
        """Akaike's criterion; missing with sampling weights (a pseudo-likelihood has none)."""
        if self.model.cluster_weights is not None:
            return np.nan
        return -2.0 * self.llf + 2.0 * self.df_modelwc

    @cached_property
    def bic(self) -> float:
        """BIC with ``nobs`` = number of top-level clusters, as Stata ``sem`` counts; missing with weights."""
        if self.model.cluster_weights is not None:
            return np.nan
        return -2.0 * self.llf + np.log(self.nobs) * self.df_modelwc

    @property
    def _variance_mask(self) -> np.ndarray:
        return self.model.plan.variance_mask

    @cached_property
    def tvalues(self) -> np.ndarray:
        """z statistics of the fixed effects; missing for variances (a test of 0 is a boundary test)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            z = self.params / self.bse
        return np.where(self._variance_mask, np.nan, z)

    @cached_property
    def pvalues(self) -> np.ndarray:
        return 2.0 * stats.norm.sf(np.abs(self.tvalues))

    def conf_int(self, alpha: float = 0.05, cols=None) -> np.ndarray:
        """Confidence intervals; variances on the log scale and correlations on the atanh scale, as Stata.

        .. math:: \\exp\\{\\log\\hat v \\pm z_{1-\\alpha/2}\\,\\mathrm{se}(\\hat v)/\\hat v\\}
        """
        params, bse = np.asarray(self.params), np.asarray(self.bse)
        q = stats.norm.ppf(1 - alpha / 2)
        lower, upper = params - q * bse, params + q * bse
        var = self._variance_mask
        with np.errstate(invalid="ignore", divide="ignore"):
            log_se = bse[var] / params[var]
            lower[var] = params[var] * np.exp(-q * log_se)
            upper[var] = params[var] * np.exp(q * log_se)
        corr = self.model.plan.correlation_mask  # on the atanh scale, as Stata reports correlations
        atanh_se = bse[corr] / (1.0 - params[corr] ** 2)
        lower[corr] = np.tanh(np.arctanh(params[corr]) - q * atanh_se)
        upper[corr] = np.tanh(np.arctanh(params[corr]) + q * atanh_se)
        out = np.column_stack([lower, upper])
        return out if cols is None else out[cols]

    @cached_property
    def llf_linear(self) -> float:
        """(Restricted) log-likelihood of the linear regression: every random-intercept variance 0.

        Any residual-variance ratios are estimated again under that constraint.
        """
        objective = ProfiledObjective(self.model.likelihood, self.reml)
        linear = fit_profiled(self.model.likelihood, reml=self.reml, fixed_zero=objective.is_level)
        return -0.5 * linear.deviance

    def lr_test_linear(self) -> LRTest:
        """LR test against the linear regression (Stata's "LR test vs. linear model").

        With one variance tested the statistic is referred to the chi-bar-square mixture
        ``chibar2(01)``; with several, to ``chi2(k)``, which is conservative.
        """
        statistic = max(2.0 * (self.llf - self.llf_linear), 0.0)
        df = len(self.model.plan.level_variances)
        if df == 1:
            pvalue = 0.5 * stats.chi2.sf(statistic, 1) if statistic > 0 else 1.0
            return LRTest(statistic, 1, pvalue, "chibar2(01)")
        pvalue = stats.chi2.sf(statistic, df)
        return LRTest(statistic, df, pvalue, f"chi2({df})", "LR test is conservative and provided only for reference.")

    def wald_test_fixed(self) -> tuple[float, int, float]:
        """Joint Wald chi2 test that every fixed effect except the intercept is 0."""
        names = list(self.model.exog_names)
        idx = [self.model.plan.beta_index[i] for i, n in enumerate(names) if n != "Intercept"]
        if not idx:
            return np.nan, 0, np.nan
        b = np.asarray(self.params)[idx]
        cov = np.asarray(self.cov_params())[np.ix_(idx, idx)]
        statistic = float(b @ np.linalg.solve(cov, b))
        return statistic, len(idx), float(stats.chi2.sf(statistic, len(idx)))

    @cached_property
    def groups(self) -> pd.DataFrame:
        """Number of groups and observations per group (min, mean, max) at each level."""
        layout = self.model.layout
        rows = []
        for level, name in enumerate(layout.level_names):
            sizes = layout.unit_sizes(level)
            rows.append((name, len(sizes), sizes.min(), sizes.mean(), sizes.max()))
        return pd.DataFrame(rows, columns=["level", "groups", "min", "mean", "max"]).set_index("level")

    def score_test(self, relaxed_model, information: str = "expected"):
        """Score test of the constraints a relaxation of this model releases.

        See :func:`sm_multisem.hypothesis.score_test`. Example:
        ``res.score_test(res.model.relax_variance("k:j", by="type"))``.
        """
        from .hypothesis import score_test

        return score_test(self, relaxed_model, information=information)

    def lr_test_saturated(self) -> LRTest:
        """LR test against the saturated model of the wide data (see
        :func:`sm_multisem.hypothesis.lr_test_saturated`)."""
        from .hypothesis import lr_test_saturated

        return lr_test_saturated(self)

    def lr_test(self, other) -> LRTest:
        """LR test of this fit against a fit of a relaxation of its model (or the reverse)."""
        from .hypothesis import lr_test

        small, large = (self, other) if len(self.params) < len(other.params) else (other, self)
        return lr_test(small, large)

    def remove_data(self) -> None:
        """Drop the data from the results and the model, keeping what :meth:`summary` prints.

        The long data, the wide layout and the per-unit sums go, so that the pickled results
        are small. Parameters, standard errors, intervals, Wald tests, the summary and
        marginal predictions for new ``exog`` keep working; whatever needs the data again
        (random effects, fitted values, score and LR tests against other fits) fails, as in
        statsmodels.
        """
        self.groups  # computed now: the summary prints them
        if self.model.cluster_weights is None:
            self.llf_linear
        for name in ("fittedvalues", "resid", "random_effects"):
            self.__dict__.pop(name, None)
        super().remove_data()

    # ---------------------------------------------------------- predictions
    @cached_property
    def random_effects(self) -> dict[str, pd.Series]:
        """Empirical Bayes predictions (BLUPs) of every unit's random intercept, by level.

        Returns
        -------
        dict
            Level name -> Series indexed by the unit's ids (a MultiIndex below the top).
        """
        model = self.model
        beta, variances = model.plan.split(np.asarray(self.params))
        out = {}
        for level, prediction in enumerate(model.likelihood.random_effects(beta, variances)):
            ids = model.layout.unit_ids[level]
            index = pd.MultiIndex.from_frame(ids) if ids.shape[1] > 1 else pd.Index(ids.iloc[:, 0])
            out[model.layout.level_names[level]] = pd.Series(prediction, index=index, name="effect")
        return out

    def predict(self, exog=None, level: str | None = None) -> np.ndarray:
        """Predictions, marginal (``level=None``) or conditional on the predicted effects.

        Parameters
        ----------
        exog : array_like, optional
            Fixed-effect design of new rows (columns as ``model.exog_names``), for marginal
            predictions ``exog @ beta``. By default the rows used in the fit.
        level : str, optional
            Add the predicted random intercepts of every level from the top down to this one
            (``"k"``, ``"k:j"``); only for the rows used in the fit.
        """
        model = self.model
        beta, variances = model.plan.split(np.asarray(self.params))
        if exog is not None:
            if level is not None:
                raise NotImplementedError("conditional predictions for new rows need their ids; "
                                          "give level=None for marginal predictions")
            exog = np.asarray(exog, dtype=float)
            if exog.ndim != 2 or exog.shape[1] != len(beta):
                raise ValueError(f"exog needs {len(beta)} columns {model.model_data.exog_names}, got shape {exog.shape}")
            return exog @ beta
        fitted = model.model_data.exog @ beta
        if level is None:
            return fitted
        if level not in model.layout.level_names:
            raise ValueError(f"level {level!r} is not one of {list(model.layout.level_names)}")
        layout = model.layout
        effects = np.zeros(layout.n_rows)
        predictions = model.likelihood.random_effects(beta, variances)
        for index in range(layout.level_names.index(level) + 1):
            effects += predictions[index][layout.unit_of_rows(index)]
        fitted[layout.order] += effects  # back from the layout's sorted order to the input order
        return fitted

    @cached_property
    def fittedvalues(self) -> np.ndarray:
        """Predictions conditional on the predicted effects of every level."""
        return self.predict(level=self.model.layout.level_names[-1])

    @cached_property
    def resid(self) -> np.ndarray:
        """Observation-level residuals: outcome minus :attr:`fittedvalues`."""
        return self.model.model_data.endog - self.fittedvalues

    # -------------------------------------------------------------- reports
    def compare_mixedlm(self, **fit_kwargs) -> pd.DataFrame:
        """Fit statsmodels ``MixedLM`` to the same data and set the two fits side by side.

        See :func:`sm_multisem.compare.compare_mixedlm`.
        """
        from .compare import compare_mixedlm

        return compare_mixedlm(self, **fit_kwargs)

    def summary(self, alpha: float = 0.05):
        """Stata ``mixed``-style summary: groups, fixed effects, random-effects parameters, LR test.

        Returns
        -------
        statsmodels.iolib.summary2.Summary
            Printable, with ``as_text()``, ``as_html()`` and ``as_latex()``.
        """
        from .summary import build_summary

        return build_summary(self, alpha=alpha)

    def path_diagram(self, *, max_positions: int | None = 6):
        """The wide SEM as a path diagram, every path labelled with its estimate.

        Parameters
        ----------
        max_positions : int or None
            Draw this many positions and one node for the rest (``None``: all).

        Returns
        -------
        sm_multisem.diagram.PathDiagram
            See :meth:`MultilevelSEM.path_diagram <sm_multisem.MultilevelSEM.path_diagram>`.
        """
        from .diagram import path_diagram

        estimates = dict(zip(self.model.plan.labels, np.asarray(self.params)))
        return path_diagram(self.model.parameter_table, estimates=estimates, max_positions=max_positions)


class MultilevelSEMResultsWrapper(LikelihoodResultsWrapper):
    """Labels parameters, standard errors and intervals with the parameter names."""


wrap.populate_wrapper(MultilevelSEMResultsWrapper, MultilevelSEMResults)
