"""Results of a ``MultilevelSEM`` fit, built once from the finished fit."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from patsy import PatsyError
from scipy import stats
from statsmodels.base import wrapper as wrap
from statsmodels.base.model import (
    GenericLikelihoodModelResults,
    LikelihoodModelResults,
    LikelihoodResultsWrapper,
)

from .fit.estimation import Optimum, ProfiledObjective, fit_profiled
from .inference.hypothesis import LRTest, lr_test, lr_test_saturated, score_test
from .output.graphics import plot_random_effects
from .spec.data import check_columns, effect_values_of_new_rows
from .spec.spec import INTERCEPT

__all__ = ["MultilevelSEMResults"]


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
        Parameters held fixed on the boundary: variances estimated at 0, and the slope variance
        of a singular intercept-slope block (listed in ``singular`` too).
    singular : list of str
        Slope variances whose random intercept and slope are perfectly correlated (a singular
        2 x 2 covariance, lme4's "boundary (singular) fit").
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
        singular = np.zeros(len(optimum.boundary), dtype=bool) if optimum.singular is None else optimum.singular
        self.singular = [model.param_names[i] for i in model.plan.variance_index[singular]]
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
        if not 0.0 < alpha < 1.0:  # NaN fails too
            raise ValueError(f"alpha must lie strictly between 0 and 1 (0.05 for 95% intervals), got {alpha!r}")
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
        linear = fit_profiled(self.model.likelihood, reml=self.reml, fixed_zero=objective.is_effect)
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

    def wald_test(self, r_matrix, *args, **kwargs):
        """statsmodels' Wald test; a constraint written with a name that is not a parameter is refused,
        naming the parameters (the formula engine's own error named none)."""
        try:
            return super().wald_test(r_matrix, *args, **kwargs)
        except PatsyError as err:
            first = str(err).splitlines()[0]
            raise ValueError(f"cannot read the constraint {r_matrix!r} ({first}); its names must be parameters: "
                             f"{list(self.model.exog_names)} for the fixed effects") from None

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

        See :func:`sm_multisem.inference.hypothesis.score_test`. Example:
        ``res.score_test(res.model.relax_variance("k:j", by="type"))``; a wide model freeing
        covariances is tested the same way, ``res.score_test(res.model.relax_covariance("k:j",
        by="region"))`` (Stata ``estat scoretests``: are the effects uncorrelated?).
        """
        return score_test(self, relaxed_model, information=information)

    def score_tests(self, families=None, *, release=None, information: str = "expected", t=None):
        """Score tests of every constraint of the wide model, position by position (Stata ``estat scoretests``).

        See :func:`sm_multisem.inference.scoretests.score_tests`. Example: ``print(res.score_tests())``;
        ``res.score_tests(["S_e"])`` tests the residual variances only.
        """
        from .inference.scoretests import score_tests

        return score_tests(self, families, release=release, information=information, t=t)

    def lr_test_saturated(self) -> LRTest:
        """LR test against the saturated model of the wide data (see
        :func:`sm_multisem.inference.hypothesis.lr_test_saturated`)."""
        return lr_test_saturated(self)

    def gof(self):
        """Fit statistics of the wide model (Stata ``estat gof``, lavaan ``fitMeasures``).

        chi2 against the saturated and the baseline models, RMSEA with its 90% interval and
        pclose, CFI, TLI, SRMR, AIC and BIC (``N`` = top-level clusters, the rows of the wide
        model); see :func:`sm_multisem.inference.gof.goodness_of_fit`. Printing it gives Stata's layout.
        """
        from .inference.gof import goodness_of_fit

        return goodness_of_fit(self)

    def lr_test(self, other) -> LRTest:
        """LR test of this fit against a fit of a relaxation of its model (or the reverse)."""
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
        for name in ("fittedvalues", "resid", "random_effects", "random_effects_se"):
            self.__dict__.pop(name, None)
        super().remove_data()

    # ---------------------------------------------------------- predictions
    @cached_property
    def random_effects(self) -> dict[str, pd.Series | pd.DataFrame]:
        """Empirical Bayes predictions (BLUPs) of every unit's random effects, by level.

        ``E[v | y]`` at the estimates, as statsmodels ``MixedLM``'s ``random_effects``, lme4's
        ``ranef()`` and Stata's ``predict, reffects`` give them; their standard errors are
        :attr:`random_effects_se`.

        Returns
        -------
        dict
            Level name -> a Series indexed by the unit's ids (a MultiIndex below the top) for a
            level with a random intercept only; a DataFrame with a column per effect (``Intercept``,
            ``x``, ``type[pub]``) for a level with random slopes or effects on other columns.
        """
        beta, variances = self.model.plan.split(np.asarray(self.params))
        return self._by_unit(self.model.likelihood.random_effects(beta, variances), "effect")

    @cached_property
    def random_effects_se(self) -> dict[str, pd.Series | pd.DataFrame]:
        """Conditional standard deviations of the predicted random effects, by level.

        ``sqrt(Var(v | y))``, the square root of the diagonal of ``G - G Z' Sigma^{-1} Z G`` at
        the estimates, with the fixed effects held at their estimate: lme4's ``condVar``
        (``condsd`` in ``as.data.frame(ranef(fit, condVar = TRUE))``) and the diagonal of
        statsmodels ``MixedLM``'s ``random_effects_cov``, which holds the full conditional
        covariance of a group's effects. Indexed as :attr:`random_effects`.

        Returns
        -------
        dict
            Level name -> standard deviations, shaped as :attr:`random_effects`.
        """
        _, variances = self.model.plan.split(np.asarray(self.params))
        conditional = self.model.likelihood.random_effects_variance(variances)
        return self._by_unit([np.sqrt(v) for v in conditional], "se")

    def _by_unit(self, values: list[np.ndarray], name: str) -> dict[str, pd.Series | pd.DataFrame]:
        """Per-unit arrays of every level (top first) labelled by the units' ids: a Series for a level
        with a random intercept only, else a DataFrame with a column per effect."""
        model, layout = self.model, self.model.layout
        out = {}
        for level, level_values in enumerate(values[: len(model.effect_levels)]):
            ids = layout.unit_ids[level]
            index = pd.MultiIndex.from_frame(ids) if ids.shape[1] > 1 else pd.Index(ids.iloc[:, 0])
            effects = model.effect_names(level)
            if effects == [INTERCEPT]:
                out[layout.level_names[level]] = pd.Series(np.reshape(level_values, -1), index=index, name=name)
            else:
                out[layout.level_names[level]] = pd.DataFrame(level_values, index=index, columns=effects)
        return out

    def _level_effects_of_rows(self, level: int, unit: np.ndarray, effect_values: np.ndarray | None) -> np.ndarray:
        """The predicted effects of ``level`` times their columns, for rows in the units ``unit``
        (-1: a unit not in the fit, whose effects are 0); ``effect_values`` holds the rows' effect
        columns (None: a random intercept, whose column is 1)."""
        effects = np.asarray(self.random_effects[self.model.layout.level_names[level]], dtype=float)
        effects = np.vstack([effects.reshape(len(effects), -1), np.zeros((1, effects.size // max(len(effects), 1)))])
        per_row = effects[unit]  # the row of zeros at -1
        if effect_values is None:
            return per_row[:, 0]
        return np.einsum("nq,nq->n", per_row, effect_values[:, self.model.plan.level_effects[level].columns])

    def predict(self, exog=None, level: str | None = None):
        """Predictions, marginal (``level=None``) or conditional on the predicted effects.

        Parameters
        ----------
        exog : DataFrame, dict or array_like, optional
            New rows. A DataFrame (or a dict of columns) holds the columns the fixed part of
            the formula names (its design is built as the fit's was: the same categorical
            levels, the fit's state of transforms such as ``center(x)``), the labelling column
            of a slope relaxed by a label, and, for ``level``, the id columns of that level and
            the levels above. An array is the fixed-effect design itself (columns as
            ``model.exog_names``), for marginal predictions only. By default the rows used in
            the fit.
        level : str, optional
            Add the predicted random intercepts (:attr:`random_effects`) of every level from
            the top down to this one (``"k"``, ``"k:j"``). A new row takes the effects of the
            units whose ids it carries; a unit that was not in the fit, or a missing id, adds
            0, the expected effect of a new unit, so the row is predicted marginally from that
            level down (lme4's ``predict(fit, newdata, allow.new.levels = TRUE)``).

        Returns
        -------
        Series or ndarray
            A Series indexed as ``exog`` when it is a DataFrame (NaN where a covariate is
            missing); otherwise an array, for the rows used in the fit in their input order.

        Examples
        --------
        ``res.predict(new, level="k:j")`` predicts ``x' beta + u_k + v_jk`` for the rows of
        ``new``, with columns ``x``, ``k`` and ``j``.
        """
        model = self.model
        beta, _ = model.plan.split(np.asarray(self.params))
        depth = self._depth(level)
        if exog is None:
            fitted = model.model_data.exog @ beta
            layout = model.layout
            effects = model.model_data.effects
            values = None if effects is None else effects.values[layout.order]
            for index in range(depth):
                # back from the layout's sorted order to the input order
                fitted[layout.order] += self._level_effects_of_rows(index, layout.unit_of_rows(index), values)
            return fitted
        if isinstance(exog, dict):  # column name -> values, as statsmodels' formula models accept
            exog = pd.DataFrame(exog)
        if isinstance(exog, pd.DataFrame):
            prediction = model._new_exog(exog) @ beta + self._effects_of_new_rows(exog, depth)
            return pd.Series(prediction, index=exog.index, name="predicted")
        if depth:
            raise ValueError("conditional predictions of new rows need their ids: give exog as a DataFrame "
                             "with the columns of the formula and the id columns")
        exog = np.asarray(exog, dtype=float)
        if exog.ndim != 2 or exog.shape[1] != len(beta):
            raise ValueError(f"exog needs {len(beta)} columns {model.exog_names}, got shape {exog.shape}")
        return exog @ beta

    def _depth(self, level: str | None) -> int:
        """How many levels, from the top, a prediction at ``level`` adds effects of."""
        if level is None:
            return 0
        names = self.model.effect_levels
        if level not in names:
            raise ValueError(f"level {level!r} is not one of {list(names)}")
        return names.index(level) + 1

    def _effects_of_new_rows(self, frame: pd.DataFrame, depth: int) -> np.ndarray:
        """Sum of the predicted effects of the top ``depth`` levels for new rows, 0 for units not in the fit."""
        layout = self.model.layout
        needed = list(dict.fromkeys(column for grouping in layout.levels[:depth] for column in grouping))
        check_columns(frame, needed, "id column", "exog")
        values = None if self.model.model_data.effects is None or not depth else effect_values_of_new_rows(
            self.model.model_data, frame)
        total = np.zeros(len(frame))
        for level, (grouping, ids) in enumerate(zip(layout.levels[:depth], layout.unit_ids)):
            new_ids = pd.DataFrame({c: _as_ids_of(frame[c], ids[c]) for c in grouping}, index=frame.index)
            found = pd.MultiIndex.from_frame(ids).get_indexer(pd.MultiIndex.from_frame(new_ids))
            total += self._level_effects_of_rows(level, found, values)
        return total

    def resid_at(self, level: str | None = None) -> np.ndarray:
        """Residuals of the rows used in the fit at a level: the outcome minus ``predict(level=level)``.

        ``level=None`` gives the marginal residuals ``y - X beta`` (nlme's ``residuals(fit,
        level = 0)``); ``resid_at("k")`` removes the predicted effects of ``k`` as well, and the
        lowest level gives :attr:`resid`.
        """
        return self.model.model_data.endog - self.predict(level=level)

    @cached_property
    def fittedvalues(self) -> np.ndarray:
        """Predictions conditional on the predicted effects of every level."""
        return self.predict(level=self.model.effect_levels[-1])

    @cached_property
    def resid(self) -> np.ndarray:
        """Observation-level residuals: outcome minus :attr:`fittedvalues`."""
        return self.model.model_data.endog - self.fittedvalues

    def plot_random_effects(self, level: str | None = None, *, ax=None, alpha: float = 0.05):
        """Caterpillar plot of a level's predicted effects with ``1 - alpha`` intervals (needs matplotlib).

        See :func:`sm_multisem.output.graphics.plot_random_effects`; returns the matplotlib Figure.
        """
        return plot_random_effects(self, level, ax=ax, alpha=alpha)

    # -------------------------------------------------------------- reports
    def compare_mixedlm(self, **fit_kwargs) -> pd.DataFrame:
        """Fit statsmodels ``MixedLM`` to the same data and set the two fits side by side.

        See :func:`sm_multisem.output.compare.compare_mixedlm`.
        """
        from .output.compare import compare_mixedlm

        return compare_mixedlm(self, **fit_kwargs)

    def summary(self, alpha: float = 0.05, style: str = "mixed", max_equations: int = 10):
        """Summary of the fit, laid out as Stata ``mixed`` (default) or Stata ``sem`` prints it.

        Parameters
        ----------
        alpha : float
            ``1 - alpha`` is the coverage of the confidence intervals.
        style : {"mixed", "sem"}
            ``"mixed"``: groups, fixed effects, random-effects parameters, LR test against the
            linear model. ``"sem"``: the wide model read from its per-position parameter table
            (:attr:`MultilevelSEM.parameter_table`), one block per equation ``y1_1 <- x1_1 K J1
            _cons`` with the loadings fixed at 1 shown as constrained, then the residual and
            effect variances, each parameter with its constraint label (``bx``, ``c``, ``S_j``;
            relaxed models show theirs), and the LR test against the saturated model.
        max_equations : int
            With ``style="sem"``, above this many equations those with the same labels are shown
            once, as ``y{p}``.

        Returns
        -------
        statsmodels.iolib.summary2.Summary
            Printable, with ``as_text()``, ``as_html()`` and ``as_latex()``.
        """
        from .output.summary import build_summary

        return build_summary(self, alpha=alpha, style=style, max_equations=max_equations)

    def path_diagram(self, *, max_positions: int | None = 6):
        """The wide SEM as a path diagram, every path labelled with its estimate.

        Parameters
        ----------
        max_positions : int or None
            Draw this many positions and one node for the rest (``None``: all).

        Returns
        -------
        sm_multisem.output.diagram.PathDiagram
            See :meth:`MultilevelSEM.path_diagram <sm_multisem.MultilevelSEM.path_diagram>`.
        """
        from .output.diagram import path_diagram

        estimates = dict(zip(self.model.plan.labels, np.asarray(self.params)))
        table = self.model.single_group_table("the path diagram")
        return path_diagram(table, estimates=estimates, max_positions=max_positions)


class MultilevelSEMResultsWrapper(LikelihoodResultsWrapper):
    """Labels parameters, standard errors and intervals with the parameter names, residuals with the rows."""

    _wrap_methods = wrap.union_dicts(LikelihoodResultsWrapper._wrap_methods, {"resid_at": "rows"})


wrap.populate_wrapper(MultilevelSEMResultsWrapper, MultilevelSEMResults)


def _as_ids_of(new: pd.Series, fitted: pd.Series) -> pd.Series:
    """New ids in the kind of the fit's, as factor levels match: the text ``"5"`` is the integer id 5 (and
    an integer 5 the text id ``"5"``); numbers match numbers whatever their width, text matches text."""
    numeric = [series.dtype.kind in "iufb" for series in (new, fitted)]
    if numeric[1] and not numeric[0]:
        return pd.to_numeric(new, errors="coerce")
    if numeric[0] and not numeric[1]:
        whole = new.dtype.kind == "f" and bool(np.all(np.isnan(new) | (new == np.round(new))))
        return (new.astype("Int64") if whole else new).astype(str)
    return new
