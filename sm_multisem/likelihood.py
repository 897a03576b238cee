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
class _Pooling:
    """What one pooling step leaves for the derivative pass: one row per child unit."""

    a: np.ndarray  # 1 / h of each child
    dev: np.ndarray  # child GLS mean minus its parent's, (units, m)
    d_mean: np.ndarray  # (units, n_var, m)
    d_h: np.ndarray  # (units, n_var)
    cluster_starts: np.ndarray  # first child of every top-level cluster


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

    Notes
    -----
    The derivatives of ``cross`` are only ever needed contracted with a symmetric matrix
    ``A`` (``v' dC v`` for a quadratic form, ``tr(M dC)`` for a log-determinant), so they
    are never stored as ``(n_clusters, n_var, m, m)`` arrays: :meth:`contract` computes
    ``tr(A dC_k)`` from the per-level pieces kept by the recursion.
    """

    logdet: np.ndarray
    cross: np.ndarray
    d_logdet: np.ndarray
    _poolings: tuple[_Pooling, ...]
    _lowest_within: np.ndarray  # W'W scatter of every lowest unit about its mean
    _lowest_cluster_starts: np.ndarray
    _resid_var: float

    def contract(self, weight: np.ndarray) -> np.ndarray:
        """``tr(A dC_k / d theta_v)`` for every cluster ``k`` and variance ``v``.

        With ``d_c`` a unit's GLS mean minus its parent's (the cluster's own mean for
        the top level) and ``a_c = 1/h_c``, the derivative of ``C_k`` is

        .. math::

            \\sum_c a_c (\\dot m_c d_c' + d_c \\dot m_c') - a_c^2 \\dot h_c d_c d_c'
            \\;-\\; \\sum_u S_u \\dot\\sigma^2_e / \\sigma_e^4,

        summed over the units ``c`` of every level inside cluster ``k`` and the within-unit
        scatter ``S_u`` of its lowest units.

        Parameters
        ----------
        weight : ndarray, shape (m, m)
            The symmetric matrix ``A``.

        Returns
        -------
        ndarray, shape (n_clusters, n_var)
        """
        n_clusters, n_var = self.d_logdet.shape
        out = np.zeros((n_clusters, n_var))
        for pooling in self._poolings:
            weighted = pooling.dev @ weight
            per_unit = 2.0 * pooling.a[:, None] * np.einsum("uvm,um->uv", pooling.d_mean, weighted) - (
                pooling.a**2 * np.einsum("um,um->u", weighted, pooling.dev)
            )[:, None] * pooling.d_h
            out += np.add.reduceat(per_unit, pooling.cluster_starts, axis=0)
        within = np.einsum("uij,ij->u", self._lowest_within, weight)
        out[:, -1] -= np.add.reduceat(within, self._lowest_cluster_starts) / self._resid_var**2
        return out


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
        by_column = np.ascontiguousarray(columns.T)  # one contiguous row per data column
        unit_mean = np.add.reduceat(by_column, row_starts, axis=1) / self._unit_size
        centred = by_column - np.repeat(unit_mean, counts, axis=1)
        self._unit_mean = np.ascontiguousarray(unit_mean.T)
        within = np.empty((len(counts), m, m))
        for a in range(m):
            for b in range(a, m):
                within[:, a, b] = within[:, b, a] = np.add.reduceat(centred[a] * centred[b], row_starts)
        self._unit_within = within
        sizes = [len(s) for s in self.child_starts] + [len(counts)]
        # parent of every unit (levels below the top), and its top-level cluster
        self._parents = tuple(
            np.repeat(np.arange(len(s)), np.diff(np.append(s, n_children)))
            for s, n_children in zip(self.child_starts, sizes[1:])
        )
        cluster = [np.arange(sizes[0])]
        for parent in self._parents:
            cluster.append(cluster[-1][parent])
        self._cluster_starts = tuple(np.searchsorted(c, np.arange(sizes[0])) for c in cluster)
        self.cluster_size = np.add.reduceat(counts, self._cluster_starts[-1])
        self.n_obs = n_rows

    @property
    def n_var(self) -> int:
        """Number of variance parameters: one per level and the residual."""
        return self.n_levels + 1

    # ------------------------------------------------------------------ recursion
    def moments(self, level_var: np.ndarray, resid_var: float) -> ClusterMoments:
        """Cluster moments for level variances (top first) and the residual variance."""
        level_var = np.asarray(level_var, dtype=float)
        resid_var = float(resid_var)
        n, mean = self._unit_size, self._unit_mean
        n_units, m = mean.shape
        res = self.n_var - 1
        # lowest units before their own intercept: B = resid_var * I
        h = resid_var / n
        logdet = n * np.log(resid_var)
        d_h = np.zeros((n_units, self.n_var))
        d_h[:, res] = 1.0 / n
        d_logdet = np.zeros((n_units, self.n_var))
        d_logdet[:, res] = n / resid_var
        d_mean = np.zeros((n_units, self.n_var, m))
        within = np.add.reduceat(self._unit_within, self._cluster_starts[-1], axis=0) / resid_var
        poolings = []
        for level in range(self.n_levels - 1, -1, -1):
            # add the level's random intercept: B -> B + s 1 1'
            h_new = h + level_var[level]
            d_h_new = d_h.copy()
            d_h_new[:, level] += 1.0
            logdet = logdet + np.log(h_new) - np.log(h)
            d_logdet = d_logdet + d_h_new / h_new[:, None] - d_h / h[:, None]
            h, d_h = h_new, d_h_new
            if level == 0:
                break
            # pool sibling units into their parent: a weighted one-way ANOVA
            starts, parent = self.child_starts[level - 1], self._parents[level - 1]
            a = 1.0 / h
            a_parent = np.add.reduceat(a, starts)
            mean_parent = np.add.reduceat(a[:, None] * mean, starts, axis=0) / a_parent[:, None]
            dev = mean - mean_parent[parent]
            cluster_starts = self._cluster_starts[level]
            within = within + np.add.reduceat(a[:, None, None] * dev[:, :, None] * dev[:, None, :],
                                              cluster_starts, axis=0)
            poolings.append(_Pooling(a, dev, d_mean, d_h, cluster_starts))
            a2_dh = (a * a)[:, None] * d_h  # = -d(a)
            d_a_parent = -np.add.reduceat(a2_dh, starts, axis=0)
            d_mean = np.add.reduceat(
                a[:, None, None] * d_mean - a2_dh[:, :, None] * dev[:, None, :], starts, axis=0
            ) / a_parent[:, None, None]
            h = 1.0 / a_parent
            d_h = -d_a_parent * (h * h)[:, None]
            mean = mean_parent
            logdet = np.add.reduceat(logdet, starts)
            d_logdet = np.add.reduceat(d_logdet, starts, axis=0)
        # the cluster's own GLS mean enters C_k as a_k m_k m_k'
        a = 1.0 / h
        cross = within + a[:, None, None] * mean[:, :, None] * mean[:, None, :]
        poolings.append(_Pooling(a, mean, d_mean, d_h, np.arange(len(a))))
        return ClusterMoments(
            logdet=logdet,
            cross=cross,
            d_logdet=d_logdet,
            _poolings=tuple(poolings),
            _lowest_within=self._unit_within,
            _lowest_cluster_starts=self._cluster_starts[-1],
            _resid_var=resid_var,
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
        d_quad = mom.contract(np.outer(v, v))
        return np.hstack([score_beta, -0.5 * (mom.d_logdet + d_quad)])

    def restricted_loglike(self, level_var, resid_var: float) -> tuple[float, np.ndarray]:
        """REML log-likelihood and its gradient with respect to the variances.

        .. math::

            l_R = -\\tfrac12[(N-p)\\log 2\\pi + \\log|\\Sigma| + \\log|X'\\Sigma^{-1}X|
            + \\hat r'\\Sigma^{-1}\\hat r]
        """
        mom = self.moments(level_var, resid_var)
        total = mom.cross.sum(0)
        p = self.n_columns - 1
        beta, chol = _gls(total)
        v = np.append(-beta, 1.0)
        quad = v @ total @ v
        logdet_xx = 2.0 * np.log(np.diag(chol)).sum()
        # d log|X'S^-1 X| + d(r'S^-1 r) in one contraction: A = [[(X'S^-1X)^-1, 0], [0, 0]] + v v'
        weight = _trace_weight(chol) + np.outer(v, v)
        llf = -0.5 * ((self.n_obs - p) * _LOG_2PI + mom.logdet.sum() + logdet_xx + quad)
        grad = -0.5 * (mom.d_logdet.sum(0) + mom.contract(weight).sum(0))
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
        total = mom.cross.sum(0)
        p = self.n_columns - 1
        beta, chol = _gls(total)
        v = np.append(-beta, 1.0)
        quad = v @ total @ v
        dof = self.n_obs - p if reml else self.n_obs
        deviance = mom.logdet.sum() + dof * (1.0 + np.log(2.0 * np.pi * quad / dof))
        weight = dof / quad * np.outer(v, v)
        if reml:
            deviance += 2.0 * np.log(np.diag(chol)).sum()
            weight += _trace_weight(chol)
        gradient = mom.d_logdet.sum(0) + mom.contract(weight).sum(0)
        return deviance, gradient[:-1]

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
            _, chol = _gls(mom.cross.sum(0))
            gradient = gradient + mom.contract(_trace_weight(chol)).sum(0)
        return gradient


def _gls(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve the GLS normal equations from the pooled cross-product ``[X y]' Sigma^{-1} [X y]``."""
    p = total.shape[0] - 1
    chol = np.linalg.cholesky(total[:p, :p])
    z = np.linalg.solve(chol, total[:p, p])
    return np.linalg.solve(chol.T, z), chol


def _trace_weight(chol: np.ndarray) -> np.ndarray:
    """``A`` with ``tr(A dC) = tr((X'S^-1X)^-1 d(X'S^-1X))``: the inverse padded with zeros."""
    p = chol.shape[0]
    weight = np.zeros((p + 1, p + 1))
    weight[:p, :p] = _chol_inverse(chol)
    return weight


def _chol_inverse(chol: np.ndarray) -> np.ndarray:
    inv_l = np.linalg.inv(chol)
    return inv_l.T @ inv_l
