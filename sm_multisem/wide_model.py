"""A wide SEM given by its per-position parameter table, fitted by FIML or by GMM (ADF).

The nested likelihood (:mod:`sm_multisem.engine.likelihood`) is fast because the wide model of a
mixed model has block structure it can exploit. Models outside that family (outcomes
regressed on other outcomes, covariates modelled jointly with the outcomes, several
equations per position) are fitted here, from the table alone: the table is compiled into
RAM matrices (:mod:`sm_multisem.engine.ram`) and the rows of the wide data are evaluated by
missingness pattern (:mod:`sm_multisem.engine.wide_normal`). The cost grows with the number of
positions cubed, so this is for wide models of modest width (up to a few hundred
positions), as in Stata ``sem`` and lavaan.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.base import wrapper as wrap
from statsmodels.base.model import (
    GenericLikelihoodModel,
    GenericLikelihoodModelResults,
    LikelihoodModel,
    LikelihoodModelResults,
    LikelihoodResultsWrapper,
)
from statsmodels.iolib.summary2 import Summary
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .engine.ram import RamModel, compile_ram
from .engine.wide_normal import PatternedNormal
from .fit.covariance import check_cov_options, covariance, difference_scale, numerical_jacobian
from .fit.gmm import fit_gmm
from .inference.hypothesis import check_same_rows

__all__ = ["MAX_POSITIONS", "ExtraTest", "WideFit", "WideSEM", "WideSEMResults"]

#: Widest model fitted by the dense wide engine (observed outcomes).
MAX_POSITIONS = 400
_CONVERGED_GRADIENT = 1e-7  # largest |score| per row at an accepted optimum


@dataclass(frozen=True)
class ExtraTest:
    """A test printed under the estimates (exogeneity, over-identification)."""

    title: str
    statistic: float
    df: int
    pvalue: float

    def __str__(self) -> str:
        return f"{self.title}: chi2({self.df}) = {self.statistic:.2f}   Prob > chi2 = {self.pvalue:.4f}"


@dataclass(frozen=True)
class WideFit:
    """What an optimizer leaves of a wide model's fit (the ML fit and GMM build their results from it)."""

    params: np.ndarray
    converged: bool
    message: str
    gradient: np.ndarray
    iterations: int
    boundary: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


class WideSEM(GenericLikelihoodModel):
    """A linear SEM on wide data, one row per top-level cluster.

    Parameters
    ----------
    table : DataFrame
        Per-position rows ``lhs, op, rhs, label, free, value`` (lavaan's operators ``=~``,
        ``~``, ``~1``, ``~~``); free rows sharing a label share a parameter.
    wide : DataFrame
        One row per top-level cluster; NaN where an outcome is missing.
    exogenous : list of str
        Columns of ``wide`` conditioned on (fixed covariates). Where one is missing its
        value does not matter only if every outcome that depends on it is missing too.
    names : dict, optional
        Display name of each label (``{"bx": "x", "S_k": "var(k)"}``); by default the label.
    start : dict, optional
        Starting value of each label; the others start at 0, and variances at half the
        outcomes' average variance.
    source : MultilevelSEM, optional
        The nested model the wide data came from: its row accounting and clusters are used
        in the summary and for ``cov_type="cluster"``.
    accounting : RowAccounting, optional
        Rows used and dropped, when they differ from ``source``'s.
    title : str
        The first line of the summary.
    tests : callable, optional
        ``tests(results) -> list[ExtraTest]``, printed under the estimates.
    """

    def __init__(self, table: pd.DataFrame, wide: pd.DataFrame, *, exogenous: list[str], names=None, start=None,
                 source=None, accounting=None, title: str = "Wide structural equation model", tests=None):
        self.ram: RamModel = compile_ram(table, exogenous)
        if len(self.ram.observed) > MAX_POSITIONS:
            raise ValueError(f"the wide model has {len(self.ram.observed)} observed outcomes; the dense wide "
                             f"engine fits at most {MAX_POSITIONS}")
        missing = sorted(set(self.ram.observed) | set(exogenous) - set(wide.columns))
        missing = [name for name in missing if name not in wide.columns]
        if missing:
            raise ValueError(f"the wide data have no column(s) {missing}")
        outcomes = wide[list(self.ram.observed)].to_numpy(dtype=float)
        exog = np.column_stack([np.ones(len(wide)), wide[list(exogenous)].to_numpy(dtype=float)])
        needed = self._needed_exogenous(outcomes)
        if np.any(np.isnan(exog) & needed):
            rows = int(np.any(np.isnan(exog) & needed, axis=1).sum())
            raise ValueError(f"{rows} wide row(s) have an outcome observed but a covariate it depends on missing")
        self.table = table.reset_index(drop=True)
        self.wide = wide
        self.exogenous = list(exogenous)
        self.normal = PatternedNormal(outcomes, np.nan_to_num(exog))
        self.source = source
        self._accounting = accounting
        self.title = title
        self._tests = tests
        self._names = dict(names or {})
        self._start = dict(start or {})
        self.cluster_weights = None
        super().__init__(pd.DataFrame(outcomes, columns=list(self.ram.observed)), None, missing="none")
        self.data.param_names = self.param_names
        self.nobs = len(wide)
        self.k_extra = 0
        self.df_model = float(self.ram.k_params)
        self.df_resid = float(self.nobs - self.ram.k_params)
        self._variance_mask = self._variances()

    def _needed_exogenous(self, outcomes: np.ndarray) -> np.ndarray:
        """Which exogenous values each row needs: those of its observed outcomes' equations."""
        mean, _ = self.ram.implied(np.ones(self.ram.k_params))
        return (~np.isnan(outcomes)).astype(float) @ (mean != 0) > 0

    def _variances(self) -> np.ndarray:
        """True for the parameters that are variances (diagonal of S)."""
        table = self.table
        diagonal = table[(table["op"] == "~~") & (table["lhs"] == table["rhs"]) & table["free"]]
        labels = {label if label else f"{lhs}~~{lhs}" for label, lhs in zip(diagonal["label"], diagonal["lhs"])}
        return np.array([label in labels for label in self.ram.labels])

    def initialize(self) -> None:
        LikelihoodModel.initialize(self)

    def with_table(self, table: pd.DataFrame, names: dict[str, str] | None = None) -> WideSEM:
        """The same data under an edited table: parameters fixed (``free=False``), freed, or relabelled.

        Display names, start values, row accounting and tests carry over for the labels kept;
        ``names`` gives display names of new labels (``{"C_j": "cov(k:j)"}``).
        """
        return WideSEM(table, self.wide, exogenous=self.exogenous, names={**self._names, **(names or {})},
                       start=self._start, source=self.source, accounting=self._accounting, title=self.title,
                       tests=self._tests)

    def check_identification(self, params=None) -> None:
        """Refuse a model whose parameters the positions present in the data cannot identify.

        The FIML likelihood depends on the parameters only through the implied means and
        covariances of the outcomes each row observes (one missingness pattern after another).
        The model is locally identified at ``params`` when the Jacobian of those moments, every
        pattern's ``M_o`` and the upper triangle of ``Sigma_oo`` stacked, has full column rank;
        a direction in its null space moves parameters without changing the likelihood.

        Parameters
        ----------
        params : array_like, optional
            Where to evaluate the Jacobian; by default :attr:`start_params` (for models linear
            in their parameters, as the nested model's wide form, the Jacobian is constant).

        Raises
        ------
        ValueError
            Naming the parameters that move together in the directions the data cannot see.
        """
        params = self.start_params if params is None else np.asarray(params, dtype=float)
        jac_mean, jac_sigma = self.ram.jacobian(params)
        blocks = []
        for pattern in self.normal.patterns:
            o = pattern.observed
            upper = np.triu_indices(len(o))
            blocks += [jac_mean[:, o].reshape(len(params), -1), jac_sigma[:, o][:, :, o][:, upper[0], upper[1]]]
        jacobian = np.hstack(blocks).T
        _, singular, vt = np.linalg.svd(jacobian, full_matrices=True)
        tol = max(jacobian.shape) * np.finfo(float).eps * 1e3 * max(singular.max(initial=0.0), 1.0)
        rank = int(np.sum(singular > tol))
        if rank == len(params):
            return
        null = vt[rank:]
        involved = np.flatnonzero(np.max(np.abs(null), axis=0) > 1e-6)
        names = [self.param_names[i] for i in involved]
        raise ValueError(
            f"the wide model is not identified by the positions present in the data: {names} can move together "
            f"without changing the implied means and covariances of any observed pattern (their Jacobian has rank "
            f"{rank} for {len(params)} parameters); fix or tie some of them"
        )

    # ------------------------------------------------------------------ naming
    @property
    def param_names(self) -> list[str]:
        return [self._names.get(label, label) for label in self.ram.labels]

    @property
    def labels(self) -> list[str]:
        """The constraint label of every parameter, in the order of :attr:`param_names`."""
        return list(self.ram.labels)

    @property
    def parameter_table(self) -> pd.DataFrame:
        """The per-position table the model was built from."""
        return self.table.copy()

    def to_lavaan(self) -> str:
        """The model in lavaan syntax; fit it with ``sem(model, data = wide, fixed.x = TRUE, missing = "ml")``,
        ``wide`` being :attr:`wide` (the covariates conditioned on are its exogenous columns)."""
        from .output.export import to_lavaan

        return to_lavaan(self.table)

    def to_stata(self) -> str:
        """The model as a Stata ``sem`` command for :attr:`wide`.

        See :func:`sm_multisem.output.export.to_stata_wide`.
        """
        from .output.export import to_stata_wide

        columns = [*self.ram.observed, *self.exogenous]
        return to_stata_wide(self.table, balanced=not self.wide[columns].isna().any().any())

    @property
    def model_data(self):
        return None if self.source is None else self.source.model_data

    @property
    def layout(self):
        return None if self.source is None else self.source.layout

    @property
    def row_accounting(self):
        if self._accounting is not None or self.source is None:
            return self._accounting
        return self.source.row_accounting

    # ------------------------------------------------------------ likelihood
    def loglike(self, params, reml: bool = False) -> float:
        """FIML log-likelihood of the wide rows (``-inf`` where Sigma is not positive definite)."""
        _no_reml(reml)
        return self.normal.loglike(*self.ram.implied(np.asarray(params, dtype=float)))[0]

    def loglikeobs(self, params) -> np.ndarray:
        return self.normal.loglikeobs(*self.ram.implied(np.asarray(params, dtype=float)))

    def score(self, params, reml: bool = False) -> np.ndarray:
        """Analytic gradient of :meth:`loglike`."""
        _no_reml(reml)
        params = np.asarray(params, dtype=float)
        _, d_mean, d_sigma = self.normal.loglike(*self.ram.implied(params))
        jac_mean, jac_sigma = self.ram.jacobian(params)
        return np.einsum("pq,kpq->k", d_mean, jac_mean) + np.einsum("pq,kpq->k", d_sigma, jac_sigma)

    def score_obs(self, params) -> np.ndarray:
        """Score of every wide row (top-level cluster), one column per parameter."""
        params = np.asarray(params, dtype=float)
        d_mean, d_sigma = self.normal.derivatives_obs(*self.ram.implied(params))
        jac_mean, jac_sigma = self.ram.jacobian(params)
        return np.einsum("npq,kpq->nk", d_mean, jac_mean) + np.einsum("npq,kpq->nk", d_sigma, jac_sigma)

    def hessian(self, params, reml: bool = False) -> np.ndarray:
        """Hessian of :meth:`loglike`, by central differences of the analytic score."""
        _no_reml(reml)
        params = np.asarray(params, dtype=float)
        hess = numerical_jacobian(self.score, params, difference_scale(params, self._variance_mask))
        return 0.5 * (hess + hess.T)

    def information(self, params, reml: bool = False, kind: str = "oim") -> np.ndarray:
        """Observed (``"oim"``, minus the Hessian) or expected (``"eim"``) information."""
        _no_reml(reml)
        if kind == "oim":
            return -self.hessian(params)
        if kind != "eim":
            raise ValueError(f"kind must be 'oim' or 'eim', got {kind!r}")
        params = np.asarray(params, dtype=float)
        return self.normal.expected_information(*self.ram.implied(params), *self.ram.jacobian(params))

    @property
    def start_params(self) -> np.ndarray:
        outcomes = self.endog
        variance = float(np.nanmean(np.nanvar(outcomes, axis=0))) if np.isfinite(outcomes).any() else 1.0
        default = np.where(self._variance_mask, 0.5 * variance, 0.0)
        return np.array([self._start.get(label, d) for label, d in zip(self.ram.labels, default)])

    # --------------------------------------------------------------------- fit
    def fit(self, start_params=None, *, method: str = "ml", cov_type: str = "oim", cov_kwds=None,
            maxiter: int = 2000, disp: bool = False, **kwargs) -> WideSEMResults:
        """Estimate by full-information ML (``method="ml"``) or by GMM (``"gmm"``, ADF).

        Parameters
        ----------
        start_params : array_like, optional
        method : {"ml", "gmm"}
            ``"gmm"`` is asymptotically distribution-free estimation on the means and
            covariances of complete wide data (Stata ``sem, method(adf)``, lavaan
            ``estimator = "WLS"``); see :func:`fit_gmm`.
        cov_type : {"oim", "eim", "opg", "robust", "cluster"}
            Covariance of the ML estimates (GMM has its own).
        cov_kwds : dict, optional
        maxiter : int
        disp : bool
            Print the optimizer's outcome.
        """
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s) to fit: {sorted(kwargs)}")
        if method not in ("ml", "gmm"):
            raise ValueError(f"method must be 'ml' or 'gmm', got {method!r}")
        start = self.start_params if start_params is None else np.asarray(start_params, dtype=float)
        if method == "gmm":
            if cov_type != "oim" or cov_kwds:
                raise ValueError("GMM estimates have their own covariance (the sandwich of the moment conditions); "
                                 "cov_type does not apply")
            return self._fit_gmm(start, maxiter)
        check_cov_options(cov_type, cov_kwds, reml=False)
        fitted = self._fit_ml(start, maxiter)
        if not fitted.converged:
            warnings.warn(f"the wide SEM did not converge: {fitted.message}", ConvergenceWarning, stacklevel=2)
        if disp:
            print(f"ML fit: {fitted.message} after {fitted.iterations} iterations")
        cov = covariance(self, fitted.params, reml=False, cov_type=cov_type, fixed=fitted.boundary,
                         cov_kwds=cov_kwds)
        results = WideSEMResults(self, fitted.params, cov.cov, fit=fitted, method="ml",
                                 cov_type=cov_type, cov_description=cov.description)
        return WideSEMResultsWrapper(results)

    def _fit_gmm(self, start: np.ndarray, maxiter: int) -> WideSEMResultsWrapper:
        """GMM (ADF) estimates from the ML ones, as results (see :func:`~sm_multisem.fit.gmm.fit_gmm`)."""
        estimate = fit_gmm(self, lambda: self._fit_ml(start, maxiter).params, maxiter=maxiter)
        j_test = ExtraTest("Test of over-identifying restrictions (J)", estimate.j_statistic, estimate.j_df,
                           estimate.j_pvalue)
        fitted = WideFit(estimate.params, estimate.converged, "converged" if estimate.converged else "iteration limit",
                         estimate.gradient, estimate.iterations, np.zeros(len(estimate.params), dtype=bool))
        results = WideSEMResults(self, estimate.params, estimate.cov, fit=fitted, method="gmm", cov_type="gmm",
                                 cov_description="GMM (ADF weight)", extra_tests=[j_test])
        return WideSEMResultsWrapper(results)

    def _fit_ml(self, start: np.ndarray, maxiter: int) -> WideFit:
        """L-BFGS-B (variances bounded at 0), then Newton steps to the gradient's precision."""
        n = max(self.nobs, 1)
        bounds = [(0.0, None) if is_var else (None, None) for is_var in self._variance_mask]

        def objective(params):
            llf = self.loglike(params)
            if not np.isfinite(llf):
                return np.inf, np.zeros_like(params)
            return -llf / n, -self.score(params) / n

        first = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                                  options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10})
        params = first.x
        boundary = self._variance_mask & (params <= 1e-10)
        params, steps = self._newton(params, ~boundary)
        gradient = self.score(params) / n
        converged = bool(np.max(np.abs(gradient[~boundary]), initial=0.0) < _CONVERGED_GRADIENT * 10)
        message = "converged" if converged else f"largest gradient {np.max(np.abs(gradient[~boundary])):.2e}"
        return WideFit(params, converged, message, gradient, int(first.nit) + steps, boundary)

    def _newton(self, params: np.ndarray, free: np.ndarray, steps: int = 20) -> tuple[np.ndarray, int]:
        """Newton steps on the free parameters, halved until the log-likelihood rises.

        The observed information gives quadratic convergence; where it is not positive
        definite (far from the optimum) the expected information, which always is, is used.
        """
        llf = self.loglike(params)
        for step in range(steps):
            gradient = self.score(params)[free]
            if np.max(np.abs(gradient), initial=0.0) / max(self.nobs, 1) < _CONVERGED_GRADIENT:
                return params, step
            info = self.information(params, kind="oim")[np.ix_(free, free)]
            if np.linalg.eigvalsh(info).min() <= 0:
                info = self.information(params, kind="eim")[np.ix_(free, free)]
            direction = np.zeros_like(params)
            direction[free] = np.linalg.solve(info, gradient)
            for _ in range(30):
                trial = params + direction
                trial_llf = self.loglike(trial)
                if trial_llf >= llf - 1e-12 * abs(llf) and np.all(trial[self._variance_mask] >= 0):
                    break
                direction /= 2.0
            else:
                return params, step
            params, llf = trial, trial_llf
        return params, steps


def _no_reml(reml: bool) -> None:
    if reml:
        raise ValueError("the wide SEM is fitted by ML (FIML) or GMM; REML applies to the nested mixed model only")


class WideSEMResults(GenericLikelihoodModelResults):
    """Estimates of a :class:`WideSEM`.

    Attributes
    ----------
    params : Series
    llf : float
        The log-likelihood (NaN for GMM fits).
    method : {"ml", "gmm"}
    tests : list of ExtraTest
        Tests printed under the estimates: exogeneity of an endogenous covariate,
        over-identification (J) of a GMM fit.
    """

    def __init__(self, model: WideSEM, params: np.ndarray, cov: np.ndarray, *, fit: WideFit, method: str,
                 cov_type: str, cov_description: str, extra_tests: list[ExtraTest] = ()):
        LikelihoodModelResults.__init__(self, model, params, normalized_cov_params=cov, scale=1.0)
        self._cache = {}
        self._data_attr = []
        self._data_in_cache = []
        self.nobs = model.nobs
        self.df_model = model.df_model
        self.df_resid = model.df_resid
        self.fit_outcome = fit
        self.converged = fit.converged
        self.method = method
        self.cov_type = cov_type
        self.cov_description = cov_description
        self.boundary = [model.param_names[i] for i in np.flatnonzero(fit.boundary)]
        self.row_accounting = model.row_accounting
        self.mle_retvals = {"converged": fit.converged, "iterations": fit.iterations, "message": fit.message}
        self._extra_tests = list(extra_tests)

    @property
    def llf(self) -> float:
        return self.model.loglike(self.params) if self.method == "ml" else np.nan

    @property
    def j_statistic(self) -> ExtraTest | None:
        """Hansen's J test of the over-identifying restrictions of a GMM fit; None for an ML fit."""
        return self._extra_tests[0] if self.method == "gmm" else None

    @property
    def tests(self) -> list[ExtraTest]:
        model_tests = self.model._tests(self) if self.model._tests is not None else []
        return self._extra_tests + list(model_tests)

    def summary(self, alpha: float = 0.05) -> Summary:
        """Estimates with their labels, as Stata ``sem`` reports a constrained model."""
        from .output.summary import estimates_table, format_number

        summary = Summary()
        summary.add_title(self.model.title)
        info = {
            "Estimation method:": "ml (FIML)" if self.method == "ml" else "gmm (ADF)",
            "Clusters (wide rows):": f"{self.model.nobs:,}",
            "Observed outcomes:": f"{len(self.model.ram.observed)}",
            "Log likelihood:": format_number(self.llf, 8) if self.method == "ml" else "",
            "Parameters:": f"{len(self.params)}",
            "Covariance:": self.cov_description,
        }
        summary.add_dict(info)
        table = estimates_table(self, alpha)
        table.insert(0, "Label", self.model.labels)
        summary.add_df(table)
        notes = [] if self.row_accounting is None else [f"Rows: {self.row_accounting.describe()}."]
        notes += [str(test) for test in self.tests]
        notes += [f"Note: {name} is estimated on the boundary (0); it is held fixed for the standard errors."
                  for name in self.boundary]
        if not self.converged:
            notes.append(f"Warning: the fit did not converge ({self.fit_outcome.message}).")
        for note in notes:
            summary.add_text(note)
        return summary

    def lr_test(self, other) -> ExtraTest:
        """LR test against a fit nested in this one (or containing it); df = difference in parameters."""
        if self.method != "ml" or getattr(other, "method", "ml") != "ml":
            raise ValueError("LR tests compare ML fits")
        check_same_rows(self.model, other.model)
        small, big = sorted([self, other], key=lambda r: len(r.params))
        statistic = max(2.0 * (big.llf - small.llf), 0.0)
        df = len(big.params) - len(small.params)
        return ExtraTest("LR test", statistic, df, float(stats.chi2.sf(statistic, df)))


class WideSEMResultsWrapper(LikelihoodResultsWrapper):
    """Labels parameters, standard errors and intervals with the parameter names."""


wrap.populate_wrapper(WideSEMResultsWrapper, WideSEMResults)
