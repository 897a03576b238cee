"""``MultilevelSEM``: the statsmodels face of the pipeline.

A thin adapter: it chains parse -> layout -> specify -> compile (each a public function
of its own module) and exposes the likelihood with statsmodels' method names. Fitting
never changes the model: options of a fit belong to the fit and its results.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from statsmodels.base.model import GenericLikelihoodModel, LikelihoodModel
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from . import systems
from .compile.pattern_path import pattern_likelihood
from .compile.plan import Plan, compile_plan
from .engine.centring import Centring
from .engine.effects import EffectsNormal
from .engine.likelihood import NestedNormal
from .engine.moment_normal import NotPositiveDefinite
from .fit.covariance import CovarianceResult, check_cov_options, covariance, difference_scale, numerical_jacobian
from .fit.estimation import ProfiledObjective, convergence_problems, fit_profiled
from .fit.identification import check_absorbed_levels, check_effects, check_identification, check_rank
from .relaxing import Relaxing
from .spec.data import (
    ModelData,
    check_columns,
    cluster_weights,
    data_from_arrays,
    data_from_formula,
    design_of_new_rows,
    sampling_weights,
)
from .spec.formula import parse_formula
from .spec.layout import WideLayout, build_layout
from .spec.relax import LabelColumn, Relaxation, collect_labels, expand_slopes, key_slots
from .spec.spec import INTERCEPT, ParameterTable, effect_blocks, specify
from .wide_form import WideForm

__all__ = ["MultilevelSEM"]


class MultilevelSEM(Relaxing, WideForm, GenericLikelihoodModel):
    """Nested random-intercept model estimated as a wide, constrained SEM by FIML.

    Parameters
    ----------
    endog : array_like
        The outcome, one value per observation.
    exog : array_like
        Fixed-effect design (include a constant for an intercept).
    groups : sequence of array_like, or DataFrame
        One id array per grouping level, top level first. Ids of a level may repeat
        across units of the level above (nesting is implied, as lme4 reads ``k/j``).
    group_names : sequence of str, optional
        Names of the grouping levels.

    Notes
    -----
    Observation ``t`` in top-level cluster ``k``, unit ``j`` of ``k``:

    .. math:: y_t = x_t'\\beta + u_k + v_{jk} + e_t, \\quad u_k \\sim N(0, \\sigma_k^2),\\;
              v_{jk} \\sim N(0, \\sigma_j^2),\\; e_t \\sim N(0, \\sigma_e^2)

    In the wide form one row is one cluster, each slot of ``j`` and of the observations
    inside it is a position with its own equation, and equality constraints (shared
    slopes, equal variances) make the SEM identical to the mixed model; unbalanced data
    are missing positions, handled by full-information ML. ``nobs`` is the number of
    top-level clusters, the rows of the wide model.

    The parameter vector is the fixed effects (named as the design names them)
    followed by ``var(<level>)`` for each grouping level and ``var(Residual)``.

    Examples
    --------
    >>> import sm_multisem as sms
    >>> data = sms.simulate_article_data(n_clusters=50, seed=1)
    >>> res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    >>> list(res.params.index)
    ['Intercept', 'x', 'var(k)', 'var(k:j)', 'var(Residual)']
    """

    def __init__(self, endog, exog, groups, *, group_names=None, weights=None, **kwargs):
        model_data = data_from_arrays(endog, exog, groups, group_names)
        names = tuple(model_data.ids.columns)
        groupings = tuple(names[: i + 1] for i in range(len(names)))
        self._build(model_data, groupings, terms="groups " + "/".join(names), formula=None,
                    weights=sampling_weights(weights, None, model_data), **kwargs)

    @classmethod
    def from_formula(cls, formula: str, data: pd.DataFrame, subset=None, drop_cols=None, *args, **kwargs):
        """Create a model from a formula such as ``"y ~ x + (1|k/j)"``.

        Parameters
        ----------
        formula : str
            Fixed part as in ``statsmodels.formula.api.ols`` (categoricals, interactions,
            transforms) plus random terms as lme4 writes them, nested: random intercepts
            ``(1|k/j)``, ``(1|k) + (1|k:j)`` or any deeper nesting ``(1|a/b/c)``; random
            intercepts and slopes with an unstructured covariance, ``(1 + x|k/j)``,
            ``(1 + x + w|k) + (1|k:j)``; independent effects, ``(1 + x||k)`` or
            ``(1|k) + (0 + x|k)``; an effect per level of a factor, ``(0 + type|k)``.
        data : DataFrame
        subset : array_like, optional
            Boolean mask or index labels of the rows to use.
        weights : str or array_like, optional
            Sampling weights of the top-level clusters (a column, or one value per input
            row, constant within each cluster): the fit maximises the weighted
            pseudo-likelihood, and its standard errors are the sandwich (``cov_type="robust"``
            or ``"survey"`` with primary sampling units and strata).
        covariates : {"conditional", "joint"}
            ``"conditional"`` (default) conditions on the covariates, as mixed models do.
            ``"joint"`` models them with the outcome (free means, variances and
            covariances, as Stata ``sem`` does), so that rows missing a covariate are kept
            and handled by FIML under MAR; returns a
            :class:`~sm_multisem.wide_model.WideSEM` (see :func:`~sm_multisem.systems.joint_model`).

        Returns
        -------
        MultilevelSEM, or WideSEM
            A :class:`~sm_multisem.wide_model.WideSEM`, fitted by the dense wide engine, for
            ``covariates="joint"`` and for an endogenous covariate written as
            ``"y ~ w + [x ~ z1 + z2] + (1|k/j)"`` (``z1, z2`` its instruments; see
            :func:`~sm_multisem.systems.instrumental_model`).

        Notes
        -----
        Rows missing the outcome, a covariate or an id are dropped; how many, and why,
        is recorded in ``model.row_accounting`` and printed in the summary.
        """
        if drop_cols is not None or args:
            raise TypeError("from_formula accepts formula, data, subset and keyword options only")
        covariates = kwargs.pop("covariates", "conditional")
        if covariates not in systems.COVARIATES:
            raise ValueError(f"covariates must be one of {systems.COVARIATES}, got {covariates!r}")
        if systems.split_endogenous(formula)[1] is not None:
            if covariates == "joint":
                raise ValueError("an endogenous covariate is modelled by its own equation; covariates='joint' "
                                 "does not combine with [x ~ z]")
            return systems.instrumental_model(formula, data, subset=subset, **kwargs)
        if covariates == "joint":
            return systems.joint_model(formula, data, subset=subset, **kwargs)
        if subset is not None:
            mask = np.asarray(subset)
            if mask.dtype == bool and mask.shape != (len(data),):
                raise ValueError(f"subset has {mask.size:,} values; a boolean subset takes one per row of the data "
                                 f"({len(data):,})")
            data = data.loc[subset]
        eval_env = kwargs.pop("eval_env", 0)
        weights = kwargs.pop("weights", None)
        parsed = parse_formula(formula)
        model_data = data_from_formula(parsed, data, eval_env=eval_env + 1)
        terms = " + ".join(term.text for term in parsed.terms)
        model = cls.__new__(cls)
        model._build(model_data, parsed.groupings, terms=terms, formula=formula, frame=data,
                     weights=sampling_weights(weights, data, model_data), effects=effect_blocks(parsed, model_data),
                     **kwargs)
        return model

    def _build(self, source: ModelData, groupings, *, terms: str, formula: str | None, frame=None,
               relaxations: tuple[Relaxation, ...] = (), label_columns=None, weights=None,
               layout: WideLayout | None = None, effects=None, **kwargs) -> None:
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {sorted(kwargs)}")
        effects = dict(effects or {})
        check_effects(effects, relaxations)
        label_columns = dict(label_columns or {})
        exog, exog_names = expand_slopes(source.exog, source.exog_names, relaxations, label_columns)
        model_data = dataclasses.replace(source, exog=exog, exog_names=exog_names)
        check_rank(model_data)
        base_layout = layout or build_layout(model_data.ids, groupings, terms)  # a relaxation keeps the rows
        labels = collect_labels(relaxations, label_columns, base_layout)
        layout, self._wide_form_problem, self._groups = key_slots(base_layout, relaxations, labels)
        self.labels = labels
        if effects:
            self._wide_form_problem = _DEFINITION_VARIABLES.format(terms=terms)
        elif any(r.kind == "residual block" and r.per == "ar1" for r in relaxations):
            self._wide_form_problem = (
                "the wide form of AR(1) residuals evaluated as dense blocks (in real time, within a residual "
                "grouping or with a variance per label of the rows) is not written here: their covariances are "
                "rho to powers that differ from unit to unit; the integer-time AR(1) of relax_residuals("
                "structure='ar1', t=...) without within= has one")

        table = specify(model_data.endog_name, exog_names, layout, relaxations, labels, effects=effects)
        plan = compile_plan(table, exog_names, layout, labels, effect_names=source.effects.names if effects else ())
        self._recipe = {"source": source, "groupings": groupings, "terms": terms, "formula": formula,
                        "frame": frame, "relaxations": relaxations, "label_columns": label_columns,
                        "weights": weights, "layout": base_layout, "effects": effects}
        self.cluster_weights = None if weights is None else cluster_weights(weights, layout)
        self.relaxations = relaxations
        self._centring = Centring.of(model_data.exog, model_data.endog)
        columns = self._centring.columns(model_data.exog, model_data.endog, layout.sort_rows)
        # statsmodels' own view of the data shares the arrays (pandas would copy them by default)
        endog = pd.Series(model_data.endog, index=model_data.row_labels, name=model_data.endog_name, copy=False)
        exog = pd.DataFrame(model_data.exog, index=model_data.row_labels, columns=model_data.exog_names, copy=False)
        super().__init__(endog, exog, missing="none")
        self._data_attr.extend(["model_data", "layout", "likelihood", "_recipe"])  # dropped by remove_data()
        self.formula = formula
        self.model_data = model_data
        self.layout: WideLayout = layout
        self.table: ParameterTable = table
        self.plan: Plan = plan
        ar1_time = None
        if plan.row_correlation is not None:
            ar1_time = labels.values[("residual correlation", "Residual")][0]
        if plan.level_effects:
            effect_values = np.ones((layout.n_rows, 1)) if source.effects is None else source.effects.values
            self.likelihood = EffectsNormal(
                columns, layout.row_starts, layout.child_starts, layout.sort_rows(effect_values),
                plan.level_effects, plan.row_variance, cluster_weights=self.cluster_weights, centring=self._centring,
                siblings=plan.siblings, residual_block=plan.residual_block, residual_ar1=plan.residual_ar1,
            )
        else:
            self.likelihood = NestedNormal(
                columns, layout.row_starts, layout.child_starts, plan.unit_variance, plan.row_variance,
                ar1_time=ar1_time, ar1_index=plan.row_correlation, cluster_weights=self.cluster_weights,
                residual_covariance=len(plan.covariance_entries) > 0, centring=self._centring,
            )
        check_identification(self.likelihood, layout)
        check_absorbed_levels(model_data.exog, layout)
        self.data.param_names = list(plan.param_names)
        # the levels with random effects, top first: all but the residual grouping of exchangeable residuals
        self.effect_levels = tuple(layout.level_names[: len(table.latent_bases)])
        self.k_levels = len(layout.levels)
        self.nobs = layout.n_clusters
        self.nobs_long = layout.n_rows
        self.k_extra = plan.k_params - len(model_data.exog_names)
        self.df_model = float(len(model_data.exog_names) - int("Intercept" in model_data.exog_names))
        self.df_resid = float(self.nobs_long - len(model_data.exog_names))

    # ------------------------------------------------------------------ naming
    @property
    def param_names(self) -> list[str]:
        """Names of the parameters: fixed effects, ``var(<level>)``, ``var(Residual)``."""
        return list(self.plan.param_names)

    @property
    def row_accounting(self):
        """Rows used and dropped, by reason (:class:`~sm_multisem.spec.data.RowAccounting`)."""
        return self.model_data.accounting

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.formula is None or self._recipe is None:  # no formula, or its data removed (remove_data)
            return
        try:  # the formula engine's descriptions of the designs were not pickled (see ModelData)
            rebuilt = data_from_formula(parse_formula(self.formula), self._recipe["frame"])
        except ValueError:  # a name the formula used where the model was built is not defined here
            return

        def with_designs(data: ModelData) -> ModelData:
            effects = data.effects and dataclasses.replace(data.effects, designs=rebuilt.effects.designs)
            return dataclasses.replace(data, design=rebuilt.design, effects=effects)

        self._recipe["source"] = with_designs(self._recipe["source"])
        self.model_data = with_designs(self.model_data)

    def _new_exog(self, frame: pd.DataFrame) -> np.ndarray:
        """The fixed-effect design of new rows (columns as :attr:`exog_names`), NaN where a value is missing.

        Slopes relaxed by a label read the labelling column of ``frame``.
        """
        if self._recipe is None:
            raise ValueError("the model's data were removed (remove_data), and with them the design of new rows; "
                             f"give exog as an array with the columns {self.exog_names} for marginal predictions")
        source: ModelData = self._recipe["source"]  # the design before any slope was split by label
        if self.formula is not None and source.design is None:
            raise ValueError(f"the design of {self.formula!r} could not be rebuilt when the model was unpickled "
                             "(the formula names something not defined there); refit it to predict new rows")
        exog = design_of_new_rows(source, frame)
        slopes = [r for r in self.relaxations if r.kind in ("slope", "intercept")]
        check_columns(frame, [r.by for r in slopes], "labelling column", "exog")
        for relax in slopes:
            missing = int(frame[relax.by].isna().sum())
            if missing:
                raise ValueError(f"labelling column {relax.by!r} is missing in {missing:,} rows of exog; "
                                 f"the slope of {relax.target} depends on it")
        columns = {r.by: LabelColumn.of(frame[r.by].to_numpy(), r.by) for r in slopes}
        return expand_slopes(exog, source.exog_names, self.relaxations, columns, fitted=self.labels)[0]

    # -------------------------------------------------------------- likelihood
    def _arguments(self, params) -> tuple[np.ndarray, np.ndarray]:
        beta, variances = self.plan.split(params)
        residual = variances[self.plan.residual_variances]
        if np.any(residual <= 0):
            raise ValueError(f"residual variances must be positive, got {residual}")
        rho = variances[self.plan.ar1_entries]
        if np.any(np.abs(rho) >= 1):
            raise ValueError(f"rho(Residual) must lie in (-1, 1), got {rho[np.abs(rho) >= 1][0]}")
        problem = self.likelihood.block_problem(variances)
        if problem:
            raise ValueError(problem)
        return beta, variances

    def _likelihood_columns(self) -> np.ndarray:
        """``[X, y]`` as the likelihoods read them: sorted by the layout, centred (see :class:`Centring`)."""
        return self._centring.columns(self.model_data.exog, self.model_data.endog, self.layout.sort_rows)

    def loglike(self, params, reml: bool = False) -> float:
        """Log-likelihood (ML), or the restricted log-likelihood if ``reml``.

        The restricted log-likelihood does not depend on the fixed effects.
        """
        beta, variances = self._arguments(params)
        if reml:
            return float(self.likelihood.restricted_loglike(variances)[0])
        return float(self.likelihood.total(self.likelihood.loglikeobs(beta, variances)))

    def loglikeobs(self, params) -> np.ndarray:
        """ML log-likelihood of every top-level cluster (row of the wide data)."""
        return self.likelihood.loglikeobs(*self._arguments(params))

    def score_obs(self, params) -> np.ndarray:
        """ML score of every top-level cluster, one column per parameter."""
        return self.plan.gradient_to_params(self.likelihood.score_obs(*self._arguments(params)))

    def score(self, params, reml: bool = False) -> np.ndarray:
        """Gradient of :meth:`loglike` (analytic; weighted by the sampling weights, if any)."""
        if not reml:
            return self.likelihood.total(self.score_obs(params))
        beta, variances = self._arguments(params)
        grad = self.likelihood.restricted_loglike(variances)[1]
        return self.plan.gradient_to_params(np.r_[np.zeros(len(beta)), grad])

    def hessian(self, params, reml: bool = False) -> np.ndarray:
        """Hessian of :meth:`loglike`, by central differences of the analytic score."""
        params = np.asarray(params, dtype=float)
        typical = difference_scale(params, self.plan.variance_mask)
        hess = numerical_jacobian(lambda p: self.score(p, reml=reml), params, typical)
        return 0.5 * (hess + hess.T)

    def information(self, params, reml: bool = False, kind: str = "oim") -> np.ndarray:
        """Observed (``"oim"``) or expected (``"eim"``) information matrix.

        ``"oim"`` is minus the Hessian of the log-likelihood; under REML its variance block
        is minus the Hessian of the restricted log-likelihood, as statsmodels ``MixedLM``
        computes it. ``"eim"`` has ``X'Sigma^{-1}X`` for the fixed effects, a zero cross
        block, and ``tr(P Sigma_i P Sigma_j)/2`` for the variances (``P`` of the restricted
        likelihood under REML): the fixed-effect block is lme4's, nlme's and Stata
        ``mixed``'s.
        """
        if kind not in ("oim", "eim"):
            raise ValueError(f"kind must be 'oim' or 'eim', got {kind!r}")
        if kind == "eim" and len(self.plan.ar1_entries):
            raise ValueError("the expected information is not implemented for AR(1) residuals (Sigma is not "
                             "linear in rho); use the observed information ('oim')")
        beta, variances = self._arguments(params)
        n_beta = len(beta)

        def variance_gradient(v):
            """A function of the variances whose negative Jacobian is their information."""
            if kind == "oim":
                return self.likelihood.restricted_loglike(v)[1]
            return 0.5 * self.likelihood.logdet_gradient(v, restricted=reml)

        if kind == "oim":
            info_args = -self._hessian_arguments(beta, variances)
            if not reml:
                return self._to_params(info_args)
        else:
            info_args = np.zeros((n_beta + len(variances),) * 2)
            info_args[:n_beta, :n_beta] = self.likelihood.fixed_information(variances)
        var_block = -numerical_jacobian(variance_gradient, variances, self._variance_scale(variances))
        info_args[n_beta:, n_beta:] = 0.5 * (var_block + var_block.T)
        return self._to_params(info_args)

    def _hessian_arguments(self, beta, variances) -> np.ndarray:
        """ML Hessian with respect to the likelihood arguments ``[beta, variances]``.

        The score is linear in beta, so its Jacobian in beta is exact (``-X'Sigma^{-1}X``);
        only the columns of the variances are differenced, and the Hessian's symmetry gives
        the rest.
        """
        n_beta = len(beta)

        def gradient(v):
            return self.likelihood.total(self.likelihood.score_obs(beta, v))

        by_variance = numerical_jacobian(gradient, variances, self._variance_scale(variances))
        hess = np.empty((n_beta + len(variances),) * 2)
        hess[:n_beta, :n_beta] = -self.likelihood.fixed_information(variances)
        hess[:, n_beta:] = by_variance
        hess[n_beta:, :n_beta] = by_variance[:n_beta].T
        return 0.5 * (hess + hess.T)

    def _variance_scale(self, variances: np.ndarray) -> np.ndarray:
        """Typical magnitudes of the likelihood's variance arguments, for finite differences."""
        is_variance = ~np.isin(np.arange(len(variances)), self.plan.ar1_entries)
        return difference_scale(variances, is_variance)

    def _to_params(self, matrix_args: np.ndarray) -> np.ndarray:
        """Map a matrix over likelihood arguments to one over parameters."""
        jac = self.plan.gradient_to_params(np.eye(len(matrix_args)))
        return jac.T @ matrix_args @ jac

    def profiled_deviance(self, theta, reml: bool = False) -> float:
        """Deviance as a function of relative standard deviations only (lme4's ``devfun``).

        Parameters
        ----------
        theta : array_like
            The standard deviation of every variance parameter but the first residual
            variance, relative to the residual standard deviation, in the order of the
            variance parameters (for the standard model: ``sigma_level / sigma_e`` for
            each grouping level, top first).
        """
        objective = ProfiledObjective(self.likelihood, reml)
        return float(objective(np.asarray(theta, dtype=float))[0])

    def effect_names(self, level: int) -> list[str]:
        """The effect columns of a level's random effects (``["Intercept", "x"]``; ``["Intercept"]``
        for a random intercept)."""
        if not self.plan.level_effects:
            return [INTERCEPT]
        names = self.model_data.effects.names if self.model_data.effects is not None else (INTERCEPT,)
        own = [names[c] for c in self.plan.level_effects[level].columns]
        siblings = self.plan.siblings
        return [INTERCEPT] + own if siblings is not None and siblings.level == level else own

    @property
    def variance_names(self) -> list[str]:
        """Names of the variance parameters, in the likelihood's order."""
        return [self.plan.param_names[i] for i in self.plan.variance_index]

    @property
    def start_params(self) -> np.ndarray:
        """OLS coefficients, and the OLS residual variance split equally across the levels."""
        beta, *_ = np.linalg.lstsq(self.model_data.exog, self.model_data.endog, rcond=None)
        resid = self.model_data.endog - self.model_data.exog @ beta
        share = resid.var() / (self.k_levels + 1)
        start = np.full(len(self.plan.variance_index), share)
        start[self.plan.ar1_entries] = 0.0
        start[self.plan.covariance_mask[self.plan.variance_index]] = 0.0  # covariances
        start[self.plan.covariance_entries] = 0.0
        return self.plan.join(beta, start)

    def initialize(self) -> None:
        """statsmodels' set-up hook, without ``GenericLikelihoodModel``'s rank of the long design.

        That rank (an SVD of every row) only sets ``df_model`` and ``df_resid``, which
        :meth:`_build` sets from the design it has already checked for collinearity.
        """
        LikelihoodModel.initialize(self)

    # --------------------------------------------------------------------- fit
    def _fit_gmm(self, start_params, *, reml: bool, cov_type, cov_kwds):
        problem = _fit_gmm_refusal(self, start_params, reml, cov_type, cov_kwds)
        if problem:
            raise ValueError(problem)
        return systems.joint_model(self.formula, self._recipe["frame"]).fit(method="gmm")

    def fit(
        self,
        start_params=None,
        *,
        reml: bool = False,
        cov_type: str | None = None,
        cov_kwds: dict | None = None,
        maxiter: int = 500,
        gtol: float = 1e-6,
        disp: bool = False,
        **kwargs,
    ):
        """Estimate by maximum likelihood (default) or REML.

        Parameters
        ----------
        start_params : array_like, optional
            Starting values in the order of :attr:`param_names`; only the variances are
            used (the fixed effects are profiled out).
        reml : bool
            Restricted maximum likelihood.
        cov_type : {"oim", "eim", "opg", "robust", "cluster", "survey"}
            Covariance of the estimates (see :mod:`sm_multisem.fit.covariance`); by default
            ``"oim"``, or ``"robust"`` with sampling weights.
        cov_kwds : dict, optional
            Options of ``cov_type``: ``groups`` (cluster) and ``use_correction`` (robust,
            cluster).
        maxiter : int
            Iteration limit of the optimizer.
        method : {"ml", "gmm"}
            ``"gmm"``: asymptotically distribution-free GMM on the means and covariances of
            the outcomes and covariates of complete wide data (Stata ``sem, method(adf)``),
            the wide model with the covariates modelled jointly (see
            :func:`sm_multisem.fit.gmm.fit_gmm`); it returns a ``WideSEMResults``.
        gtol : float
            Largest gradient of the profiled deviance accepted as converged.
        disp : bool
            Print an iteration log as Stata does (``Iteration 3:   log likelihood = -768.96733``)
            and the optimizer's outcome.

        Returns
        -------
        MultilevelSEMResults
        """
        from .results import MultilevelSEMResults, MultilevelSEMResultsWrapper

        method = kwargs.pop("method", "ml")
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s) to fit: {sorted(kwargs)}")
        if method == "gmm":
            return self._fit_gmm(start_params, reml=reml, cov_type=cov_type, cov_kwds=cov_kwds)
        if method != "ml":
            raise ValueError(f"method must be 'ml' (REML with reml=True) or 'gmm', got {method!r}")
        if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
            raise ValueError(f"maxiter must be a positive integer (iterations of the optimizer), got {maxiter!r}")
        if not gtol >= 0:  # NaN fails too
            raise ValueError(f"gtol must be 0 or more (the largest gradient accepted as converged), got {gtol!r}")
        weighted = self.cluster_weights is not None
        cov_type = cov_type or ("robust" if weighted else "oim")
        check_cov_options(cov_type, cov_kwds, reml, weighted=weighted)
        start_theta = None
        if start_params is not None:
            _, variances = self._arguments(start_params)
            start_theta = ProfiledObjective(self.likelihood, reml).theta_of(variances)
        what = "log restricted-likelihood" if reml else "log likelihood"

        def report(iteration: int, deviance: float) -> None:
            print(f"Iteration {iteration}:   {what} = {-0.5 * deviance:.5f}")

        # a narrow design with many clusters is maximised on the wide model by missingness pattern
        patterns = pattern_likelihood(self, reml=reml)
        likelihood = self.likelihood if patterns is None else patterns
        optimum = fit_profiled(likelihood, reml=reml, start_theta=start_theta, maxiter=maxiter, gtol=gtol,
                               report=report if disp else None)
        for problem in convergence_problems(optimum, self.variance_names):
            warnings.warn(problem, ConvergenceWarning, stacklevel=2)
        params = self.plan.join(optimum.beta, optimum.variances)
        fixed = np.zeros(self.plan.k_params, dtype=bool)
        fixed[self.plan.variance_index[optimum.boundary]] = True
        # the information from the patterns costs microseconds; scores per cluster need the recursion
        by_patterns = patterns is not None and cov_type in ("oim", "eim")
        try:
            cov = covariance(self._evaluated_by(patterns) if by_patterns else self, params, reml=reml,
                             cov_type=cov_type, fixed=fixed, cov_kwds=cov_kwds)
        except NotPositiveDefinite:  # the estimates lie at the edge where a cluster's covariance stops being one
            warnings.warn("the standard errors are not computed: at a step from the estimates the covariance of "
                          "some cluster is not positive definite (the covariances of siblings are at the edge of "
                          "what the data admit); fit fewer covariances (equal=True, among= fewer labels)",
                          ConvergenceWarning, stacklevel=2)
            cov = CovarianceResult(np.full((self.plan.k_params,) * 2, np.nan), f"{cov_type.upper()} (not computed)")
        if disp:
            print(f"{'REML' if reml else 'ML'} fit: {optimum.message}; deviance {optimum.deviance:.8f} "
                  f"after {optimum.iterations} iterations ({optimum.n_evaluations} evaluations"
                  f"{'' if patterns is None else f' of {patterns.n_patterns} missingness pattern(s)'})")
        results = MultilevelSEMResults(self, params, cov.cov, optimum=optimum, cov_type=cov_type,
                                       cov_description=cov.description)
        return MultilevelSEMResultsWrapper(results)

    def _evaluated_by(self, likelihood) -> MultilevelSEM:
        """This model with its likelihood evaluated by ``likelihood``, another form of the same one
        (:class:`~sm_multisem.engine.patterns.PatternNormal`), for the information at a fit's estimates."""
        view = type(self).__new__(type(self))  # not copy.copy, whose __setstate__ rebuilds the design
        view.__dict__.update(self.__dict__, likelihood=likelihood)
        return view


def _fit_gmm_refusal(model, start_params, reml: bool, cov_type, cov_kwds) -> str:
    """Why ``fit(method="gmm")`` cannot be run on ``model``, or an empty string."""
    if reml:
        return "GMM does not combine with REML"
    if start_params is not None or cov_type is not None or cov_kwds:
        return "GMM takes no start_params, cov_type or cov_kwds (its covariance is the moment sandwich)"
    if model.relaxations:
        return ("GMM refits the standard model from its formula; relaxed models are not supported. Build the wide "
                "model with covariates='joint' and fit it with method='gmm'")
    if model.formula is None or model._recipe is None or model.cluster_weights is not None:
        return "GMM needs a model built from a formula and a DataFrame, without sampling weights"
    return ""


_DEFINITION_VARIABLES = (
    "the wide form of a random slope ({terms}) loads the slope's latent variable on every "
    "position with that position's own covariate value (a definition variable: the loading is data, "
    "different in every row of the wide data). Stata sem and lavaan take a fixed loading as one constant "
    "for all rows, so this model has no parameter table, Stata or lavaan syntax or path diagram here; "
    "fit the long form instead (Stata mixed, lme4 lmer)"
)
