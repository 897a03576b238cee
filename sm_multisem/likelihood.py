"""Gaussian log-likelihood of nested random intercepts, evaluated from per-unit sums.

This module knows about normal vectors whose covariance is built from nested blocks
of constant covariance; it knows nothing about structural equation models.

For one top-level cluster with data columns ``W = [X, y]`` the covariance is

.. math::

    \\Sigma = \\sigma^2_e I + \\sum_l s_l Z_l Z_l'

where ``Z_l`` holds the indicators of the units of level ``l``. Everything the
likelihood needs is ``log|Sigma|`` and ``C = W' Sigma^{-1} W``. Both follow from a
recursion up the levels that never forms ``Sigma``: a unit is summarised by

* ``logdet``  log-determinant of its covariance block,
* ``h``       ``1 / (1' B^{-1} 1)``, the variance of the GLS mean of the unit,
* ``mean``    ``W' B^{-1} 1 / (1' B^{-1} 1)``, the GLS mean of every column,
* ``within``  ``W' B^{-1} W - mean mean' / h``, the GLS scatter about that mean.

Adding a random intercept of variance ``s`` to a unit (``B -> B + s 1 1'``) changes
only ``logdet += log(1 + s / h)`` and ``h += s``; pooling sibling units into their
parent is a weighted one-way ANOVA (between-children scatter added to ``within``).
Keeping the scatter *about the mean* avoids the cancellation of ``C - s b b'/(1+sa)``
when one variance dwarfs another. Derivatives with respect to every variance are
carried forward through the same recursion, so the score is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NestedNormal", "ClusterMoments"]

_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class ClusterMoments:
    """``log|Sigma_k|`` and ``C_k = W_k' Sigma_k^{-1} W_k`` per cluster, with derivatives.

    Attributes
    ----------
    logdet : ndarray, shape (n_clusters,)
    cross : ndarray, shape (n_clusters, m, m)
        ``W_k' Sigma_k^{-1} W_k``; the last column of ``W`` is the outcome.
    d_logdet : ndarray, shape (n_clusters, n_var)
        Derivative of ``logdet`` with respect to each variance (levels top to
        bottom, then the residual variance).
    d_cross : ndarray, shape (n_clusters, n_var, m, m)
    """

    logdet: np.ndarray
    cross: np.ndarray
    d_logdet: np.ndarray
    d_cross: np.ndarray


@dataclass
class _UnitState:
    """Summary of every unit of one level (see the module docstring)."""

    logdet: np.ndarray
    h: np.ndarray
    mean: np.ndarray
    within: np.ndarray
    d_logdet: np.ndarray
    d_h: np.ndarray
    d_mean: np.ndarray
    d_within: np.ndarray


class NestedNormal:
    """Normal model with nested random intercepts and iid residuals.

    Parameters
    ----------
    columns : ndarray, shape (n_rows, m)
        Data columns ``[X, y]``, rows sorted so that every unit at every level is a
        contiguous run.
    row_starts : ndarray
        Start row of every unit of the lowest grouping level.
    child_starts : sequence of ndarray
        For each grouping level above the lowest (top first), the start index of
        every unit's children among the units of the next level down.

    Notes
    -----
    The data enter only through per-unit counts, means and within-unit scatter
    matrices, computed once here. Each evaluation then costs O(number of units),
    independent of the number of rows.
    """

    def __init__(self, columns: np.ndarray, row_starts: np.ndarray, child_starts):
        columns = np.asarray(columns, dtype=float)
        n_rows, m = columns.shape
        self.n_columns = m
        self.n_levels = len(child_starts) + 1
        self.child_starts = tuple(np.asarray(s, dtype=np.intp) for s in child_starts)
        counts = np.diff(np.append(row_starts, n_rows))
        self._unit_size = counts.astype(float)
        unit_of_row = np.repeat(np.arange(len(counts)), counts)
        self._unit_mean = np.add.reduceat(columns, row_starts, axis=0) / self._unit_size[:, None]
        centred = columns - self._unit_mean[unit_of_row]
        within = np.empty((len(counts), m, m))
        for a in range(m):
            for b in range(a, m):
                within[:, a, b] = within[:, b, a] = np.add.reduceat(
                    centred[:, a] * centred[:, b], row_starts
                )
        self._unit_within = within
        self._parents = tuple(
            np.repeat(np.arange(len(s)), np.diff(np.append(s, n_children)))
            for s, n_children in zip(self.child_starts, self._level_sizes()[1:])
        )
        top_rows = counts
        for starts in reversed(self.child_starts):
            top_rows = np.add.reduceat(top_rows, starts)
        self.cluster_size = top_rows
        self.n_obs = n_rows

    def _level_sizes(self) -> list[int]:
        sizes = [len(self._unit_size)]
        for starts in reversed(self.child_starts):
            sizes.insert(0, len(starts))
        return sizes

    @property
    def n_var(self) -> int:
        """Number of variance parameters: one per level and the residual."""
        return self.n_levels + 1

    # ------------------------------------------------------------------ recursion
    def moments(self, level_var: np.ndarray, resid_var: float) -> ClusterMoments:
        """Cluster moments for level variances (top first) and the residual variance."""
        level_var = np.asarray(level_var, dtype=float)
        state = self._lowest_units(float(resid_var))
        for level in range(self.n_levels - 1, -1, -1):
            state = self._add_intercept(state, level, level_var[level])
            if level > 0:
                state = self._pool(state, self.child_starts[level - 1], self._parents[level - 1])
        a = 1.0 / state.h
        outer = state.mean[:, :, None] * state.mean[:, None, :]
        cross = state.within + a[:, None, None] * outer
        d_outer = state.d_mean[:, :, :, None] * state.mean[:, None, None, :]
        d_outer = d_outer + np.swapaxes(d_outer, 2, 3)
        d_cross = (
            state.d_within
            + a[:, None, None, None] * d_outer
            - (a * a)[:, None, None, None] * state.d_h[:, :, None, None] * outer[:, None]
        )
        return ClusterMoments(state.logdet, cross, state.d_logdet, d_cross)

    def _lowest_units(self, resid_var: float) -> _UnitState:
        n = self._unit_size
        n_units, m = self._unit_mean.shape
        res = self.n_var - 1
        d_logdet = np.zeros((n_units, self.n_var))
        d_logdet[:, res] = n / resid_var
        d_h = np.zeros((n_units, self.n_var))
        d_h[:, res] = 1.0 / n
        d_within = np.zeros((n_units, self.n_var, m, m))
        d_within[:, res] = -self._unit_within / resid_var**2
        return _UnitState(
            logdet=n * np.log(resid_var),
            h=resid_var / n,
            mean=self._unit_mean,
            within=self._unit_within / resid_var,
            d_logdet=d_logdet,
            d_h=d_h,
            d_mean=np.zeros((n_units, self.n_var, m)),
            d_within=d_within,
        )

    @staticmethod
    def _add_intercept(state: _UnitState, level: int, variance: float) -> _UnitState:
        """Add a random intercept of the given variance to every unit."""
        h_new = state.h + variance
        d_h_new = state.d_h.copy()
        d_h_new[:, level] += 1.0
        return _UnitState(
            logdet=state.logdet + np.log(h_new) - np.log(state.h),
            h=h_new,
            mean=state.mean,
            within=state.within,
            d_logdet=state.d_logdet + d_h_new / h_new[:, None] - state.d_h / state.h[:, None],
            d_h=d_h_new,
            d_mean=state.d_mean,
            d_within=state.d_within,
        )

    @staticmethod
    def _pool(state: _UnitState, starts: np.ndarray, parent: np.ndarray) -> _UnitState:
        """Pool sibling units into their parent (a weighted one-way ANOVA)."""
        a = 1.0 / state.h
        a_parent = np.add.reduceat(a, starts)
        mean_parent = np.add.reduceat(a[:, None] * state.mean, starts, axis=0) / a_parent[:, None]
        dev = state.mean - mean_parent[parent]
        outer = dev[:, :, None] * dev[:, None, :]
        within = np.add.reduceat(state.within + a[:, None, None] * outer, starts, axis=0)

        a2_dh = (a * a)[:, None] * state.d_h  # = -d(a)
        d_a_parent = -np.add.reduceat(a2_dh, starts, axis=0)
        d_mean = np.add.reduceat(
            a[:, None, None] * state.d_mean - a2_dh[:, :, None] * dev[:, None, :], starts, axis=0
        ) / a_parent[:, None, None]
        cross_term = state.d_mean[:, :, :, None] * dev[:, None, None, :]
        d_within = np.add.reduceat(
            state.d_within
            + a[:, None, None, None] * (cross_term + np.swapaxes(cross_term, 2, 3))
            - a2_dh[:, :, None, None] * outer[:, None],
            starts,
            axis=0,
        )
        return _UnitState(
            logdet=np.add.reduceat(state.logdet, starts),
            h=1.0 / a_parent,
            mean=mean_parent,
            within=within,
            d_logdet=np.add.reduceat(state.d_logdet, starts, axis=0),
            d_h=-d_a_parent / (a_parent * a_parent)[:, None],
            d_mean=d_mean,
            d_within=d_within,
        )

    # ---------------------------------------------------------- log-likelihoods
    def loglikeobs(self, beta: np.ndarray, level_var, resid_var: float) -> np.ndarray:
        """Log-likelihood of every cluster.

        .. math:: l_k = -\\tfrac12 [n_k \\log 2\\pi + \\log|\\Sigma_k| + r_k'\\Sigma_k^{-1} r_k]
        """
        mom = self.moments(level_var, resid_var)
        v = np.append(-np.asarray(beta, dtype=float), 1.0)
        quad = np.einsum("i,kij,j->k", v, mom.cross, v)
        return -0.5 * (self.cluster_size * _LOG_2PI + mom.logdet + quad)

    def score_obs(self, beta: np.ndarray, level_var, resid_var: float) -> np.ndarray:
        """Score of every cluster with respect to ``[beta, level variances, residual variance]``.

        .. math::

            \\partial l_k/\\partial\\beta = X_k'\\Sigma_k^{-1} r_k, \\qquad
            \\partial l_k/\\partial\\theta = -\\tfrac12[\\partial\\log|\\Sigma_k|
            + r_k'\\,\\partial(\\Sigma_k^{-1})\\, r_k]
        """
        mom = self.moments(level_var, resid_var)
        v = np.append(-np.asarray(beta, dtype=float), 1.0)
        p = len(v) - 1
        score_beta = mom.cross[:, :p, :] @ v
        d_quad = np.einsum("i,kvij,j->kv", v, mom.d_cross, v)
        return np.hstack([score_beta, -0.5 * (mom.d_logdet + d_quad)])

    def restricted_loglike(self, level_var, resid_var: float) -> tuple[float, np.ndarray]:
        """REML log-likelihood and its gradient with respect to the variances.

        .. math::

            l_R = -\\tfrac12[(N-p)\\log 2\\pi + \\log|\\Sigma| + \\log|X'\\Sigma^{-1}X|
            + \\hat r'\\Sigma^{-1}\\hat r]
        """
        mom = self.moments(level_var, resid_var)
        total, d_total = mom.cross.sum(0), mom.d_cross.sum(0)
        p = self.n_columns - 1
        beta, chol = _gls(total)
        v = np.append(-beta, 1.0)
        quad = v @ total @ v
        logdet_xx = 2.0 * np.log(np.diag(chol)).sum()
        inv_xx = _chol_inverse(chol)
        d_logdet_xx = np.einsum("ij,vji->v", inv_xx, d_total[:, :p, :p])
        d_quad = np.einsum("i,vij,j->v", v, d_total, v)
        llf = -0.5 * ((self.n_obs - p) * _LOG_2PI + mom.logdet.sum() + logdet_xx + quad)
        grad = -0.5 * (mom.d_logdet.sum(0) + d_logdet_xx + d_quad)
        return llf, grad

    def profiled_deviance(self, rel_var: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
        """Deviance with beta and the residual variance profiled out.

        Parameters
        ----------
        rel_var : ndarray
            Level variances relative to the residual variance (top first).
        reml : bool
            Restricted (REML) instead of maximum-likelihood deviance.

        Returns
        -------
        deviance : float
            ``-2 l`` at the profiled beta and residual variance.
        gradient : ndarray
            Derivative of the deviance with respect to ``rel_var``.

        Notes
        -----
        With ``Sigma = sigma^2 V(rho)`` and ``q`` the GLS residual sum of squares in
        the metric ``V^{-1}``, the ML deviance is ``log|V| + N (1 + log(2 pi q / N))``;
        REML adds ``log|X'V^{-1}X|`` and replaces ``N`` by ``N - p``.
        """
        mom = self.moments(rel_var, 1.0)
        total, d_total = mom.cross.sum(0), mom.d_cross.sum(0)[:-1]
        p = self.n_columns - 1
        beta, chol = _gls(total)
        v = np.append(-beta, 1.0)
        quad = v @ total @ v
        d_quad = np.einsum("i,vij,j->v", v, d_total, v)
        dof = self.n_obs - p if reml else self.n_obs
        deviance = mom.logdet.sum() + dof * (1.0 + np.log(2.0 * np.pi * quad / dof))
        gradient = mom.d_logdet.sum(0)[:-1] + dof * d_quad / quad
        if reml:
            deviance += 2.0 * np.log(np.diag(chol)).sum()
            gradient += np.einsum("ij,vji->v", _chol_inverse(chol), d_total[:, :p, :p])
        return deviance, gradient

    def gls(self, level_var, resid_var: float) -> tuple[np.ndarray, np.ndarray, float]:
        """GLS estimate of beta, its covariance ``(X'Sigma^{-1}X)^{-1}``, and the quadratic form."""
        total = self.moments(level_var, resid_var).cross.sum(0)
        beta, chol = _gls(total)
        v = np.append(-beta, 1.0)
        return beta, _chol_inverse(chol), float(v @ total @ v)

    def logdet_gradient(self, level_var, resid_var: float, restricted: bool = False) -> np.ndarray:
        """Derivative of ``log|Sigma|`` (plus ``log|X'Sigma^{-1}X|`` if restricted) in every variance.

        Because ``Sigma`` is linear in the variances, minus one half of the Jacobian of this
        gradient is the expected information of the variances (ML, or REML if restricted):
        :math:`\\tfrac12 \\operatorname{tr}(P \\Sigma_i P \\Sigma_j)`.
        """
        mom = self.moments(level_var, resid_var)
        gradient = mom.d_logdet.sum(0)
        if restricted:
            p = self.n_columns - 1
            total, d_total = mom.cross.sum(0), mom.d_cross.sum(0)
            _, chol = _gls(total)
            gradient = gradient + np.einsum("ij,vji->v", _chol_inverse(chol), d_total[:, :p, :p])
        return gradient


def _gls(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve the GLS normal equations from the pooled cross-product ``[X y]' Sigma^{-1} [X y]``."""
    p = total.shape[0] - 1
    chol = np.linalg.cholesky(total[:p, :p])
    z = np.linalg.solve(chol, total[:p, p])
    return np.linalg.solve(chol.T, z), chol


def _chol_inverse(chol: np.ndarray) -> np.ndarray:
    inv_l = np.linalg.inv(chol)
    return inv_l.T @ inv_l
