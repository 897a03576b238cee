"""Maximum-likelihood and REML estimation with beta and the residual variance profiled out.

The optimizer sees only the relative standard deviations ``theta_l = sigma_l / sigma_e``
(lme4's relative Cholesky factor; bounded below by 0, so a variance can sit exactly on
its boundary; for a random intercept and slope, the lower triangle of the Cholesky
factor of their 2 x 2 covariance) and any correlation parameter, with the analytic
gradient of the profiled deviance. A few Newton steps
on the interior coordinates polish the optimum to machine precision; convergence is
checked separately, after the fact, as lme4's ``checkConv`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import optimize

from ..engine.likelihood import NestedNormal
from ..engine.moment_normal import NotPositiveDefinite
from .partial_correlations import correlation_gradient, correlation_matrix, partial_correlations

__all__ = ["Optimum", "ProfiledObjective", "fit_profiled", "convergence_problems", "START_MULTIPLIERS"]

#: Candidate starting points, all relative standard deviations equal to one of these.
START_MULTIPLIERS = (0.1, 0.5, 1.0, 2.0)
#: A relative standard deviation below this is tested for a boundary solution.
_BOUNDARY_THETA = 1e-3
#: How often the optimizer restarts a variance stranded at 0, and where it restarts it.
_RESTARTS = 3
_RESTART_THETA = 0.5
#: Newton polishing stops once no gradient entry of the deviance exceeds this.
_CONVERGED_GRADIENT = 1e-7
#: Evaluations of the profiled deviance a fit remembers.
_REMEMBERED = 8
#: A gradient below this whose Newton step is below ``_NOISE_STEP`` (relative) ends the polish.
_NOISE_GRADIENT = 1e-6
_NOISE_STEP = 1e-9
#: Smallest ratio of two residual standard deviations the optimizer may reach.
_SMALLEST_RESIDUAL_RATIO = 1e-4
#: Largest absolute correlation the optimizer may reach.
_LARGEST_CORRELATION = 0.999
#: Where a correlation raised to fractional powers starts (its derivative is infinite at 0).
_POSITIVE_START = 0.5
#: A derivative of the deviance above this, at a Cholesky diagonal held at 0, says it falls on one side of 0.
_FIRST_ORDER_RISE = 1e-6
#: Steepness of the wall past points whose covariance is not positive definite, relative to the deviance.
_WALL = 1e4


@dataclass(frozen=True)
class Optimum:
    """The result of one profiled optimisation.

    Attributes
    ----------
    beta, variances
        Estimates; the likelihood's vector of variances (on their own scale) and
        correlations.
    theta : ndarray
        Relative standard deviations at the optimum (every variance but the reference
        residual variance, relative to it).
    deviance : float
        ``-2`` times the (restricted) log-likelihood.
    reml : bool
    converged : bool
    gradient : ndarray
        Gradient of the deviance in ``theta`` at the optimum (0 for boundary entries).
    boundary : ndarray of bool
        Entries of the variance vector estimated at 0 (or, for the second variance of a
        Cholesky block, whose relative factor ``l22`` is 0: see ``singular``).
    iterations, n_evaluations : int
    message : str
    """

    beta: np.ndarray
    variances: np.ndarray
    theta: np.ndarray
    deviance: float
    reml: bool
    converged: bool
    gradient: np.ndarray
    boundary: np.ndarray
    iterations: int
    n_evaluations: int
    message: str
    #: Entries of ``boundary`` that are the second variance of a singular 2 x 2 block (``l22 = 0``:
    #: the intercept and slope perfectly correlated), not variances at 0.
    singular: np.ndarray | None = None


class ProfiledObjective:
    """The profiled deviance as a function of ``theta``.

    Every variance is ``sigma^2 * theta_v^2``, where ``sigma^2`` is the reference residual
    variance (the first one), profiled out with the fixed effects. ``theta`` holds every
    other parameter: random-intercept variances may be 0, residual ratios not, and a
    correlation (AR(1) ``rho``) enters as itself, inside (-1, 1). A q x q block of correlated
    effects (:attr:`NestedNormal.cholesky_blocks`: a random intercept and slopes) enters as the
    lower triangle of its relative Cholesky factor, ``G / sigma^2 = L L'``, the diagonal bounded
    below by 0 (lme4's ``theta``). The covariance ``c`` of
    exchangeable residuals enters as its correlation ``c / v`` with the residual variance ``v``
    of its units, inside ``(-1/(n - 1), 1)`` for the largest unit size ``n``: a box that keeps
    every block positive definite; the covariance of correlated siblings as its share
    ``c / sqrt(v_a v_b)`` of their variances, inside (-1, 1) (``(-1/(n - 1), 1)`` for one covariance
    shared by ``n`` slots). With ``definite``, the covariances of every pair of a set of sibling slots,
    one each, enter instead by the partial correlations of their correlation matrix
    (:mod:`~sm_multisem.fit.partial_correlations`), each inside (-1, 1), which keeps that matrix positive
    definite (the start of :func:`fit_profiled`). The last few evaluations
    are remembered: the start grid, the optimizer, the Newton polish and the final report
    often ask for the same point again.
    """

    def __init__(self, lik: NestedNormal, reml: bool, definite: bool = False):
        self.lik, self.reml, self.count = lik, reml, 0
        self._recent: dict[bytes, tuple[float, np.ndarray]] = {}
        self._defined: np.ndarray | None = None  # the last point where the deviance was defined
        self.best: tuple[float, np.ndarray] | None = None  # the lowest deviance evaluated, and where
        self.reference = int(lik.residual_variances[0])
        self.free = np.delete(np.arange(lik.n_var), self.reference)
        self.is_level = np.isin(self.free, lik.level_variances)
        self.is_correlation = np.isin(self.free, lik.correlations)
        #: correlations raised to fractional powers (AR(1) in real time), inside (0, 1)
        self.is_positive_correlation = np.isin(self.free, lik.positive_correlations)
        position = {int(entry): i for i, entry in enumerate(self.free)}
        # positions in theta of the entries of every Cholesky block (the lower triangle is L's)
        self.blocks = [np.vectorize(position.__getitem__, otypes=[np.intp])(block) for block in lik.cholesky_blocks]
        self.is_off_diagonal = np.zeros(len(self.free), dtype=bool)
        #: diagonal entries of a Cholesky factor that later covariances of their block depend on
        self.first_order_diagonal = np.zeros(len(self.free), dtype=bool)
        for block in self.blocks:
            self.is_off_diagonal[block[np.tril_indices(len(block), -1)]] = True
            self.first_order_diagonal[np.diagonal(block)[:-1]] = True
        self.is_covariance = np.isin(self.free, lik.covariances)
        # every scaled covariance c and the variances v_a, v_b it is a share of
        self._covariance, self._scale_a, self._scale_b = lik.scaled_covariances.T
        self._covariance_theta = np.searchsorted(self.free, self._covariance)
        # with definite, the shares that make one correlation matrix are taken by its partial correlations
        index_of = {int(c): k for k, c in enumerate(self._covariance)}
        self._correlation_blocks = [
            (np.array([index_of[int(e)] for e in block[np.tril_indices(len(block), -1)]], dtype=np.intp), len(block))
            for block in (lik.correlation_blocks if definite else ())]

    @property
    def is_effect(self) -> np.ndarray:
        """Entries of ``theta`` that are parameters of the random effects (all 0: no random effects)."""
        return self.is_level | self.is_off_diagonal

    def rel_var(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        values = np.where(self.is_correlation | self.is_off_diagonal, theta, theta * theta)
        for block in self.blocks:
            lower = np.tril_indices(len(block))
            factor = np.zeros(block.shape)
            factor[lower] = theta[block[lower]]
            values[block[lower]] = (factor @ factor.T)[lower]
        rho = np.ones(self.lik.n_var)
        rho[self.free] = values
        rho[self._covariance] = self._shares(theta)[0] * np.sqrt(rho[self._scale_a] * rho[self._scale_b])
        return rho

    def _shares(self, theta: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Every scaled covariance's share of its variances, and the factor ``L`` of every correlation block."""
        shares, factors = theta[self._covariance_theta].copy(), []
        for index, size in self._correlation_blocks:
            matrix, factor = correlation_matrix(theta[self._covariance_theta[index]], size)
            shares[index] = matrix[np.tril_indices(size, -1)]
            factors.append(factor)
        return shares, factors

    def _chain(self, theta: np.ndarray, grad_rho: np.ndarray) -> np.ndarray:
        """Gradient in ``theta`` from the gradient in the relative variances of :meth:`rel_var`
        (``grad_rho`` over the whole vector; the covariance shares of exchangeable residuals
        are handled by the caller). For a Cholesky block ``G = L L'``, ``dL = 2 Gbar L`` with
        ``Gbar`` the symmetric gradient in ``G`` (half of a covariance's on each side)."""
        grad_free = grad_rho[self.free]
        gradient = np.where(self.is_correlation | self.is_off_diagonal, 1.0, 2.0 * theta) * grad_free
        for block in self.blocks:
            lower = np.tril_indices(len(block))
            factor = np.zeros(block.shape)
            factor[lower] = theta[block[lower]]
            g_bar = grad_free[block] * np.where(np.eye(len(block), dtype=bool), 1.0, 0.5)
            gradient[block[lower]] = (2.0 * g_bar @ factor)[lower]
        return gradient

    def theta_of(self, variances: np.ndarray) -> np.ndarray:
        """The ``theta`` of the likelihood's vector of variances (the inverse of :meth:`rel_var`
        times the reference variance); a negative variance counts as 0, and a block that is not
        positive semi-definite is factored as far as it is."""
        variances = np.asarray(variances, dtype=float)
        relative = variances / variances[self.reference]
        theta = np.where(self.is_correlation, variances[self.free], np.sqrt(np.maximum(relative[self.free], 0.0)))
        for block, entries in zip(self.blocks, self.lik.cholesky_blocks):
            lower = np.tril_indices(len(block))
            theta[block[lower]] = _semidefinite_cholesky(relative[entries])[lower]
        scale = np.sqrt(variances[self._scale_a] * variances[self._scale_b])
        theta[self._covariance_theta] = np.divide(variances[self._covariance], scale, out=np.zeros(len(scale)),
                                                  where=scale > 0)
        for index, size in self._correlation_blocks:
            matrix = np.eye(size)
            matrix[np.tril_indices(size, -1)] = theta[self._covariance_theta[index]]
            matrix = np.tril(matrix) + np.tril(matrix, -1).T
            theta[self._covariance_theta[index]] = partial_correlations(matrix, _LARGEST_CORRELATION)
        return theta

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The deviance and its gradient; past a point where some cluster's covariance is not positive
        definite (reachable only by free covariances of siblings), a quadratic wall.

        The optimizer cannot take an infinite or undefined deviance (L-BFGS-B stops at the first), so
        such a point is pulled back along the segment from the last point that was defined, to the
        last defined point on it, ``theta_d``, and gets ``f(theta_d) + mu |theta - theta_d|^2`` with its
        gradient: continuous, rising away from the region of definite covariances, equal to the deviance
        inside it.
        """
        theta = np.asarray(theta, dtype=float)
        try:
            value = self._evaluate(theta)
        except NotPositiveDefinite:
            if self._defined is None:
                raise
            inside = self._last_defined(theta)
            deviance, gradient = self._evaluate(inside)
            mu = _WALL * (1.0 + abs(deviance))
            return deviance + mu * float((theta - inside) @ (theta - inside)), gradient + 2.0 * mu * (theta - inside)
        self._defined = theta
        return value

    def defined(self, theta: np.ndarray) -> np.ndarray:
        """``theta`` where every covariance is positive definite; else the lowest deviance evaluated (the
        optimizer can stop on the wall of :meth:`__call__`, which a long step overshoots into)."""
        try:
            self.lik.definite_moments(self.rel_var(theta))
            return theta
        except NotPositiveDefinite:
            if self.best is None:
                raise
            return self.best[1].copy()

    def _last_defined(self, theta: np.ndarray) -> np.ndarray:
        """The last point of the segment from the last defined point to ``theta`` where the deviance is
        defined (to 1/2^20 of the segment)."""
        inside, outside = 0.0, 1.0
        for _ in range(20):
            middle = 0.5 * (inside + outside)
            try:
                self.lik.definite_moments(self.rel_var(self._defined + middle * (theta - self._defined)))
                inside = middle
            except NotPositiveDefinite:
                outside = middle
        return self._defined + inside * (theta - self._defined)

    def _evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        key = theta.tobytes()
        if key not in self._recent:
            self.count += 1
            rel_var = self.rel_var(theta)
            deviance, grad_rho = self.lik.profiled_deviance(rel_var, self.reml)
            # c = share * sqrt(v_a v_b) moves with v_a and v_b: dc/dv_a = share * sqrt(v_a v_b) / (2 v_a)
            (share, factors), by_covariance = self._shares(theta), grad_rho[self._covariance]
            scale = np.sqrt(rel_var[self._scale_a] * rel_var[self._scale_b])
            for variance in (self._scale_a, self._scale_b):
                half = np.divide(0.5 * scale, rel_var[variance], out=np.zeros(len(scale)), where=rel_var[variance] > 0)
                np.add.at(grad_rho, variance, share * by_covariance * half)
            gradient = self._chain(theta, grad_rho)
            gradient[self._covariance_theta] = by_covariance * scale
            for (index, _), factor in zip(self._correlation_blocks, factors):
                gradient[self._covariance_theta[index]] = correlation_gradient(
                    theta[self._covariance_theta[index]], factor, gradient[self._covariance_theta[index]])
            if len(self._recent) >= _REMEMBERED:
                del self._recent[next(iter(self._recent))]  # the oldest
            self._recent[key] = (deviance, gradient)
            if self.best is None or deviance < self.best[0]:
                self.best = (float(deviance), theta.copy())
        deviance, gradient = self._recent[key]
        return deviance, gradient.copy()

    def gradient_in_rho(self, theta: np.ndarray) -> np.ndarray:
        """Derivative in the relative variances ``rho = theta^2`` (non-zero at theta = 0)."""
        return self.lik.profiled_deviance(self.rel_var(theta), self.reml)[1][self.free]

    def scale_free(self) -> np.ndarray:
        """Entries of the parameter vector that the profiled scale does not multiply."""
        return self.lik.correlations

    @property
    def bounds(self) -> list[tuple[float, float | None]]:
        bounds = [(-_LARGEST_CORRELATION, _LARGEST_CORRELATION) if corr
                  else (None, None) if off else (0.0, None) if level else (_SMALLEST_RESIDUAL_RATIO, None)
                  for level, corr, off in zip(self.is_level, self.is_correlation, self.is_off_diagonal)]
        for at, lower in zip(self._covariance_theta, self.lik.covariance_lower):
            bounds[at] = (_LARGEST_CORRELATION * lower, _LARGEST_CORRELATION)
        for at in np.flatnonzero(self.is_positive_correlation):
            bounds[at] = (1.0 - _LARGEST_CORRELATION, _LARGEST_CORRELATION)
        return bounds


def _semidefinite_cholesky(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular ``L`` with ``L L' = matrix`` for a positive semi-definite ``matrix``; a
    pivot that is not positive (a singular or indefinite block) gives a column of zeros."""
    q = len(matrix)
    factor = np.zeros((q, q))
    for j in range(q):
        pivot = matrix[j, j] - factor[j, :j] @ factor[j, :j]
        if pivot <= 0.0:
            continue
        factor[j, j] = np.sqrt(pivot)
        factor[j + 1:, j] = (matrix[j + 1:, j] - factor[j + 1:, :j] @ factor[j, :j]) / factor[j, j]
    return factor


def _start(objective: ProfiledObjective) -> np.ndarray:
    centred = objective.is_correlation | objective.is_off_diagonal | objective.is_covariance
    candidates = [np.where(objective.is_level, c, np.where(objective.is_positive_correlation, _POSITIVE_START,
                                                           np.where(centred, 0.0, 1.0)))
                  for c in START_MULTIPLIERS]
    values = [objective(c)[0] for c in candidates]
    return candidates[int(np.nanargmin(values))]


def _newton_polish(objective: ProfiledObjective, theta: np.ndarray, free: np.ndarray, steps: int = 8) -> np.ndarray:
    """Newton steps on the free coordinates with a forward-difference Hessian of the gradient.

    Forward differences cost one gradient per coordinate; their O(step) error only slows the
    last digits of a quadratically convergent iteration to a fast linear one.
    """
    idx = np.flatnonzero(free)
    if not len(idx):
        return theta
    lower = np.array([-np.inf if b[0] is None else b[0] for b in objective.bounds])[idx]
    upper = np.array([np.inf if b[1] is None else b[1] for b in objective.bounds])[idx]
    value, grad = objective(theta)
    for _ in range(steps):
        if np.max(np.abs(grad[idx])) <= _CONVERGED_GRADIENT:
            break
        eps = 1e-6 * np.maximum(np.abs(theta[idx]), 1e-2)
        eps = np.where(theta[idx] + eps > upper, -eps, eps)  # a correlation near its bound steps inwards
        hess = np.empty((len(idx), len(idx)))
        for col, (i, e) in enumerate(zip(idx, eps)):
            moved = theta.copy()
            moved[i] += e
            hess[:, col] = (objective(moved)[1][idx] - grad[idx]) / e
        hess = 0.5 * (hess + hess.T)
        try:
            step = np.linalg.solve(hess, grad[idx])
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.any(np.linalg.eigvalsh(hess) <= 0):
            break
        trial = theta.copy()
        trial[idx] = np.clip(theta[idx] - step, lower, upper)
        trial_value, trial_grad = objective(trial)
        if not trial_value <= value + 1e-12 * abs(value):
            break
        theta, value, grad = trial, trial_value, trial_grad
        # a small gradient whose next step, as this Hessian predicts it, is this small is at
        # the rounding noise of a sum over every cluster: further steps only wander where the
        # deviance cannot tell points apart
        next_step = np.linalg.solve(hess, grad[idx])
        if (np.max(np.abs(grad[idx])) <= _NOISE_GRADIENT
                and np.max(np.abs(next_step)) < _NOISE_STEP * max(1.0, np.max(np.abs(theta)))):
            break
    return theta


def fit_profiled(
    lik: NestedNormal,
    *,
    reml: bool = False,
    start_theta: np.ndarray | None = None,
    maxiter: int = 500,
    gtol: float = 1e-6,
    fixed_zero: np.ndarray | None = None,
    report: Callable[[int, float], None] | None = None,
) -> Optimum:
    """Minimise the profiled deviance over the relative standard deviations.

    Parameters
    ----------
    lik : NestedNormal
    reml : bool
        REML instead of ML.
    start_theta : ndarray, optional
        Starting relative standard deviations (see :class:`ProfiledObjective`); by
        default the best of :data:`START_MULTIPLIERS` for the random-intercept variances
        and 1 for residual ratios.
    maxiter : int
        Iteration limit of L-BFGS-B.
    gtol : float
        Largest absolute gradient of the deviance (in ``theta``) accepted as converged.
    fixed_zero : ndarray of bool, optional
        Entries of ``theta`` held at 0 (e.g. every parameter of the random effects,
        :attr:`ProfiledObjective.is_effect`, for the linear regression the LR test compares with).
    report : callable, optional
        Called as ``report(iteration, deviance)`` after every optimizer iteration.
    """
    objective = ProfiledObjective(lik, reml)
    theta0 = _start(objective) if start_theta is None else np.asarray(start_theta, dtype=float)
    if lik.correlation_blocks and start_theta is None:
        theta0 = _definite_start(objective, theta0, maxiter)
    held = np.zeros(len(theta0), dtype=bool) if fixed_zero is None else np.asarray(fixed_zero, dtype=bool)
    theta0 = np.where(held, 0.0, theta0)
    bounds = [(0.0, 0.0) if h else b for h, b in zip(held, objective.bounds)]
    theta, iterations, message = theta0, 0, "nothing to optimize"
    for _ in range(_RESTARTS + 1):
        if not len(theta) or held.all():
            break
        steps = iter(range(iterations + 1, iterations + maxiter + 2))

        def callback(intermediate_result):  # scipy passes the iterate under this exact name
            if report is not None:
                report(next(steps), float(intermediate_result.fun))

        result = optimize.minimize(
            objective, theta, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback,
            options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-8},  # Newton steps finish the job
        )
        theta, message = np.asarray(result.x, dtype=float), str(result.message)
        iterations += int(result.nit)
        # theta = 0 is stationary in theta whatever the data: a variance that sank to 0 while
        # the deviance still falls as it grows was stranded there; move it off and go on
        small, rises = _kuhn_tucker(objective, theta)
        stranded = small & ~rises & ~held
        if not stranded.any():
            break
        for block in objective.blocks:  # the side of a Cholesky diagonal's column where the deviance falls
            for i in np.flatnonzero(stranded[np.diagonal(block)[:-1]]):
                theta[block[i + 1:, i]] *= -1.0
        theta = np.where(stranded, _RESTART_THETA, theta)
    theta = objective.defined(theta)
    small, rises = _kuhn_tucker(objective, theta)
    boundary = held | (small & rises)
    theta[boundary] = 0.0
    theta = objective.defined(_newton_polish(objective, theta, ~boundary))
    deviance, gradient = objective(theta)
    gradient = np.where(boundary, 0.0, gradient)
    rho = objective.rel_var(theta)
    beta, _, quad = lik.gls(rho)
    dof = lik.weighted_obs - (lik.n_columns - 1 if reml else 0)
    scale = np.ones(lik.n_var) * quad / dof
    scale[objective.scale_free()] = 1.0
    boundary_var = np.zeros(lik.n_var, dtype=bool)
    boundary_var[objective.free] = boundary
    singular = np.zeros(lik.n_var, dtype=bool)
    for block in lik.cholesky_blocks:
        later = np.diagonal(block)[1:]  # a later effect of a block whose factor's diagonal is 0
        singular[later] = boundary_var[later] & (rho[later] > 0)
    converged = bool(np.all(np.isfinite(theta)) and np.max(np.abs(gradient), initial=0.0) < gtol)
    return Optimum(
        beta=beta,
        variances=rho * scale,
        theta=theta,
        deviance=float(deviance),
        reml=reml,
        converged=converged,
        gradient=gradient,
        boundary=boundary_var,
        iterations=iterations,
        n_evaluations=objective.count,
        message=message,
        singular=singular,
    )


def _definite_start(objective: ProfiledObjective, theta: np.ndarray, maxiter: int) -> np.ndarray:
    """The maximum over correlation matrices of the free sibling pairs that are positive definite, as a start.

    The likelihood is defined wherever every cluster's covariance is, which admits a slightly indefinite
    matrix of the siblings' effects (the wide SEM's, as lavaan fits it); taken pair by pair, though, the
    optimizer stalls against the edge of the definite ones long before reaching it. Over the partial
    correlations (:mod:`~sm_multisem.fit.partial_correlations`) it cannot leave them: the optimum there
    is the start of the fit in the pairs, which goes on past that edge only if the likelihood does.
    """
    definite = ProfiledObjective(objective.lik, objective.reml, definite=True)
    start = definite.theta_of(objective.rel_var(theta))
    result = optimize.minimize(definite, start, jac=True, method="L-BFGS-B", bounds=definite.bounds,
                               options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-8})
    objective.count += definite.count
    return objective.theta_of(definite.rel_var(np.asarray(result.x, dtype=float)))


def _kuhn_tucker(objective: ProfiledObjective, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Small random-intercept variances, and whether the deviance rises as each leaves 0.

    The derivative in ``theta`` vanishes at 0 whatever the data, so the test uses the
    derivative in the variance ratio ``rho = theta^2``, with every small variance at 0 (the
    Kuhn-Tucker condition): where it is non-negative the variance belongs on the boundary;
    where it is negative the variance was stranded at 0 on the way and must move off.
    """
    small = objective.is_level & (theta < _BOUNDARY_THETA)
    if not small.any():
        return small, small
    at_zero = np.where(small, 0.0, theta)
    try:
        rises = objective.gradient_in_rho(at_zero) >= 0.0
    except NotPositiveDefinite:  # at 0 the covariances of siblings leave a covariance indefinite: keep them off it
        return small, np.zeros_like(small)
    # a diagonal entry of a Cholesky factor moves later covariances of its block too (G_ji = ... + L_ji L_ii),
    # so its derivative need not vanish at 0; but at L_ii = 0 the deviance does not change with the sign of
    # the column below it, which flips that derivative: a non-zero one means a descent from 0 on the other
    # side (see fit_profiled), and only a zero one leaves the test in the variance
    first_order = objective.first_order_diagonal & small
    if first_order.any():
        rises[first_order & (np.abs(objective(at_zero)[1]) > _FIRST_ORDER_RISE)] = False
    return small, rises


def convergence_problems(optimum: Optimum, variance_names: list[str]) -> list[str]:
    """What a user should be warned about after a fit (empty when nothing).

    Kept apart from the optimizer so that fitting and judging the fit stay separate.
    """
    problems = []
    singular = np.zeros(len(variance_names), dtype=bool) if optimum.singular is None else optimum.singular
    for name in np.asarray(variance_names)[singular]:
        problems.append(
            f"the random intercept and slope behind {name} are perfectly correlated: their 2 x 2 covariance is "
            "singular (lme4's 'boundary (singular) fit'). It is held fixed for the standard errors; consider "
            "removing the random slope."
        )
    for name in np.asarray(variance_names)[optimum.boundary & ~singular]:
        problems.append(
            f"{name} is estimated at its boundary, 0: the data show no variation of these effects "
            "beyond what the rest of the model explains. Its standard error is not reported; "
            "consider removing the term."
        )
    if not optimum.converged:
        problems.append(
            f"the optimizer did not converge ({optimum.message}); the largest gradient of the "
            f"profiled deviance is {np.max(np.abs(optimum.gradient)):.2e}. Try other start_params, "
            "a larger maxiter, or rescaling the outcome and covariates."
        )
    return problems
