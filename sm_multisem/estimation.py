"""Maximum-likelihood and REML estimation with beta and the residual variance profiled out.

The optimizer sees only the relative standard deviations ``theta_l = sigma_l / sigma_e``
(lme4's relative Cholesky factor; bounded below by 0, so a variance can sit exactly on
its boundary), with the analytic gradient of the profiled deviance. A few Newton steps
on the interior coordinates polish the optimum to machine precision; convergence is
checked separately, after the fact, as lme4's ``checkConv`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .likelihood import NestedNormal

__all__ = ["Optimum", "fit_profiled", "convergence_problems", "START_MULTIPLIERS"]

#: Candidate starting points, all relative standard deviations equal to one of these.
START_MULTIPLIERS = (0.1, 0.5, 1.0, 2.0)
#: A relative standard deviation below this is tested for a boundary solution.
_BOUNDARY_THETA = 1e-3
#: Newton polishing stops once no gradient entry of the deviance exceeds this.
_CONVERGED_GRADIENT = 1e-9


@dataclass(frozen=True)
class Optimum:
    """The result of one profiled optimisation.

    Attributes
    ----------
    beta, level_var, resid_var
        Estimates on the variance scale (levels top first).
    theta : ndarray
        Relative standard deviations at the optimum.
    deviance : float
        ``-2`` times the (restricted) log-likelihood.
    reml : bool
    converged : bool
    gradient : ndarray
        Gradient of the deviance in ``theta`` at the optimum (0 for boundary entries).
    boundary : ndarray of bool
        Levels whose variance is estimated at 0.
    iterations, n_evaluations : int
    message : str
    """

    beta: np.ndarray
    level_var: np.ndarray
    resid_var: float
    theta: np.ndarray
    deviance: float
    reml: bool
    converged: bool
    gradient: np.ndarray
    boundary: np.ndarray
    iterations: int
    n_evaluations: int
    message: str


class _Counter:
    """The profiled deviance in ``theta`` with an evaluation count."""

    def __init__(self, lik: NestedNormal, reml: bool):
        self.lik, self.reml, self.count = lik, reml, 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.count += 1
        deviance, grad_rho = self.lik.profiled_deviance(theta * theta, self.reml)
        return deviance, 2.0 * theta * grad_rho


def _start(objective: _Counter, n_levels: int) -> np.ndarray:
    candidates = [np.full(n_levels, c) for c in START_MULTIPLIERS]
    values = [objective(c)[0] for c in candidates]
    return candidates[int(np.nanargmin(values))]


def _newton_polish(objective: _Counter, theta: np.ndarray, free: np.ndarray, steps: int = 8) -> np.ndarray:
    """Newton steps on the free coordinates with a finite-difference Hessian of the gradient."""
    if not free.any():
        return theta
    value, grad = objective(theta)
    for _ in range(steps):
        idx = np.flatnonzero(free)
        if np.max(np.abs(grad[idx])) <= _CONVERGED_GRADIENT:
            break
        eps = 1e-5 * np.maximum(np.abs(theta[idx]), 1e-2)
        hess = np.empty((len(idx), len(idx)))
        for col, (i, e) in enumerate(zip(idx, eps)):
            up, down = theta.copy(), theta.copy()
            up[i] += e
            down[i] -= e
            hess[:, col] = (objective(up)[1][idx] - objective(down)[1][idx]) / (2 * e)
        hess = 0.5 * (hess + hess.T)
        try:
            step = np.linalg.solve(hess, grad[idx])
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.any(np.linalg.eigvalsh(hess) <= 0):
            break
        trial = theta.copy()
        trial[idx] = np.maximum(theta[idx] - step, 0.0)
        trial_value, trial_grad = objective(trial)
        if not trial_value <= value + 1e-12 * abs(value):
            break
        theta, value, grad = trial, trial_value, trial_grad
        if np.max(np.abs(step)) < 1e-12 * max(1.0, np.max(np.abs(theta))):
            break
    return theta


def fit_profiled(
    lik: NestedNormal,
    *,
    reml: bool = False,
    start_theta: np.ndarray | None = None,
    maxiter: int = 500,
    gtol: float = 1e-6,
) -> Optimum:
    """Minimise the profiled deviance over the relative standard deviations.

    Parameters
    ----------
    lik : NestedNormal
    reml : bool
        REML instead of ML.
    start_theta : ndarray, optional
        Starting relative standard deviations; by default the best of
        :data:`START_MULTIPLIERS`.
    maxiter : int
        Iteration limit of L-BFGS-B.
    gtol : float
        Largest absolute gradient of the deviance (in ``theta``) accepted as converged.
    """
    objective = _Counter(lik, reml)
    n_levels = lik.n_levels
    theta0 = _start(objective, n_levels) if start_theta is None else np.asarray(start_theta, dtype=float)
    result = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * n_levels,
        options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-8},  # Newton steps finish the job
    )
    theta = np.asarray(result.x, dtype=float)
    boundary = _boundary_levels(objective, theta)
    theta[boundary] = 0.0
    theta = _newton_polish(objective, theta, ~boundary)
    deviance, gradient = objective(theta)
    gradient = np.where(boundary, 0.0, gradient)
    rho = theta * theta
    beta, _, quad = lik.gls(rho, 1.0)
    dof = lik.n_obs - (lik.n_columns - 1 if reml else 0)
    resid_var = quad / dof
    converged = bool(np.all(np.isfinite(theta)) and np.max(np.abs(gradient), initial=0.0) < gtol)
    return Optimum(
        beta=beta,
        level_var=rho * resid_var,
        resid_var=resid_var,
        theta=theta,
        deviance=float(deviance),
        reml=reml,
        converged=converged,
        gradient=gradient,
        boundary=boundary,
        iterations=int(result.nit),
        n_evaluations=objective.count,
        message=str(result.message),
    )


def _boundary_levels(objective: _Counter, theta: np.ndarray) -> np.ndarray:
    """Levels whose variance belongs at 0: small, and the deviance rises as it leaves 0.

    The derivative in ``theta`` vanishes at 0 whatever the data, so the test uses the
    derivative in the variance ratio ``rho = theta^2`` (the Kuhn-Tucker condition).
    """
    boundary = np.zeros(len(theta), dtype=bool)
    for level in np.flatnonzero(theta < _BOUNDARY_THETA):
        at_zero = theta.copy()
        at_zero[boundary] = 0.0
        at_zero[level] = 0.0
        value_zero, _ = objective(at_zero)
        _, grad_rho = objective.lik.profiled_deviance(at_zero * at_zero, objective.reml)
        value_here, _ = objective(np.where(boundary, 0.0, theta))
        if grad_rho[level] >= 0.0 or value_zero <= value_here:
            boundary[level] = True
    return boundary


def convergence_problems(optimum: Optimum, level_names: tuple[str, ...]) -> list[str]:
    """What a user should be warned about after a fit (empty when nothing).

    Kept apart from the optimizer so that fitting and judging the fit stay separate.
    """
    problems = []
    for name in np.asarray(level_names)[optimum.boundary]:
        problems.append(
            f"the variance of {name} is estimated at its boundary, 0: the data show no variation "
            f"between {name} units beyond what the other levels explain. Its standard error is not "
            "reported; consider removing the term."
        )
    if not optimum.converged:
        problems.append(
            f"the optimizer did not converge ({optimum.message}); the largest gradient of the "
            f"profiled deviance is {np.max(np.abs(optimum.gradient)):.2e}. Try other start_params, "
            "a larger maxiter, or rescaling the outcome and covariates."
        )
    return problems
