"""The wide model's likelihood by missingness pattern: narrow designs with many clusters.

In wide form a nested random-intercept model has one outcome per *position* (a slot at every
level below the top, and the observation's slot inside its lowest unit), and a cluster is a
row whose absent positions are missing. Clusters with the same set of present positions (a
*missingness pattern*) share one covariance matrix ``Sigma_o``, so, as in full-information
ML by pattern (:mod:`sm_multisem.engine.wide_normal`), the data enter only through

.. math:: T_g[p, q] = \\sum_{k \\in g} w_{kp} w_{kq}', \\qquad
          C_g = \\sum_{p, q} (\\Sigma_o^{-1})_{pq} T_g[p, q] = \\sum_{k \\in g} W_k' \\Sigma_o^{-1} W_k,

summed once over the clusters ``k`` of pattern ``g`` (``w_{kp}`` is the row ``[x, y]`` at
position ``p`` of cluster ``k``). An evaluation then costs O(patterns x positions^3), whatever
the number of clusters, where the recursion of :class:`~sm_multisem.engine.likelihood.NestedNormal`
costs O(units). For the article's design (two units of two observations: four positions,
one pattern) that is microseconds against tens of milliseconds at 100,000 clusters.

:class:`PatternNormal` provides the moments of every pattern, ``log|Sigma_g|`` and ``C_g``
summed over its clusters, so every log-likelihood of
:class:`~sm_multisem.engine.moment_normal.MomentNormal` (profiled, restricted, score, information) and
:func:`~sm_multisem.fit.estimation.fit_profiled` work on it unchanged: the optimum is the same
as by the recursion, to rounding. :func:`~sm_multisem.compile.pattern_path.pattern_likelihood` says when
to use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .likelihood import NestedNormal
from .moment_normal import MomentNormal

__all__ = ["PatternMoments", "PatternNormal", "Patterns", "Positions", "missingness_patterns"]


@dataclass(frozen=True)
class Positions:
    """The position of every sorted row and what every position shares with the others.

    Attributes
    ----------
    of_row : ndarray
        Position (0 .. n - 1) of every sorted row; increasing inside every cluster.
    unit : tuple of ndarray
        For each level (top first), a code of every position's unit: two positions of one
        cluster with equal codes are in one unit of that level.
    unit_variance : tuple of ndarray
        For each level, the variance parameter of every position's unit.
    residual : ndarray
        The residual variance parameter of every position.
    """

    of_row: np.ndarray
    unit: tuple[np.ndarray, ...]
    unit_variance: tuple[np.ndarray, ...]
    residual: np.ndarray

    @property
    def n_positions(self) -> int:
        return len(self.residual)

    def basis(self, n_var: int) -> np.ndarray:
        """``(n_var, n, n)``: ``Sigma = sum_v variances[v] basis[v]`` is the covariance of all ``n`` positions."""
        n = self.n_positions
        basis = np.zeros((n_var, n, n))
        for unit, variance in zip(self.unit, self.unit_variance):
            shared = unit[:, None] == unit[None, :]  # positions in one unit share its variance parameter
            for v in np.unique(variance):
                basis[v] += shared & (variance[:, None] == v)
        basis[self.residual, np.arange(n), np.arange(n)] += 1.0
        return basis


@dataclass(frozen=True)
class Patterns:
    """The missingness pattern of every cluster: which positions it holds.

    Attributes
    ----------
    masks : ndarray of int64
        The present positions of every pattern, bit ``p`` for position ``p``.
    of_cluster : ndarray
        The pattern of every top-level cluster.
    cluster_sizes : ndarray
        Rows of every cluster.
    """

    masks: np.ndarray
    of_cluster: np.ndarray
    cluster_sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.masks)

    def present(self, n_positions: int) -> np.ndarray:
        """``(patterns, positions)``: True where a pattern holds a position."""
        return (self.masks[:, None] >> np.arange(n_positions)) & 1 == 1


def missingness_patterns(of_row: np.ndarray, cluster_sizes: np.ndarray) -> Patterns:
    """The patterns of present positions (at most 63 positions: a bit mask each)."""
    if len(of_row) and of_row.max() > 62:
        raise ValueError(f"{of_row.max() + 1} positions; missingness patterns are bit masks of at most 63")
    bits = np.left_shift(np.int64(1), of_row.astype(np.int64))
    starts = np.r_[0, np.cumsum(cluster_sizes)[:-1]]
    masks, of_cluster = np.unique(np.bitwise_or.reduceat(bits, starts), return_inverse=True)
    return Patterns(masks, of_cluster.ravel(), np.asarray(cluster_sizes))


@dataclass(frozen=True)
class _SizeGroup:
    """The patterns with one number of present positions, evaluated as one batch."""

    index: np.ndarray  # (patterns, n): the present positions of every pattern
    count: np.ndarray  # (patterns,): its clusters
    cross: np.ndarray  # (patterns, n, n, m, m): T_g
    basis: np.ndarray  # (patterns, n_var, n, n): the covariance basis on the present positions


@dataclass(frozen=True)
class PatternMoments:
    """``log|Sigma|`` and ``C`` summed over the clusters of every pattern, with derivatives.

    The interface of :class:`~sm_multisem.engine.moments.ClusterMoments`, one row per pattern.
    """

    logdet: np.ndarray
    cross: np.ndarray
    d_logdet: np.ndarray
    _inverse: tuple[np.ndarray, ...]  # Sigma_o^{-1} of every size group
    _groups: tuple[_SizeGroup, ...]

    def gradient(self, weight: np.ndarray) -> np.ndarray:
        """``d log|Sigma| + tr(A dC)`` of every pattern, (n_patterns, n_var)."""
        return self.d_logdet + self.contract(weight)

    def contract(self, weight: np.ndarray) -> np.ndarray:
        """``tr(A dC_g / d theta_v)`` for every pattern ``g`` and variance ``v``.

        .. math::

            \\operatorname{tr}(A\\, dC_g) = -\\operatorname{tr}(D_v \\Sigma_o^{-1} B_g \\Sigma_o^{-1}),
            \\qquad B_g[p, q] = \\operatorname{tr}(A\\, T_g[p, q]),

        with ``D_v`` the derivative of ``Sigma_o`` in variance ``v`` (its basis matrix).
        """
        parts = []
        for group, inverse in zip(self._groups, self._inverse):
            between = np.einsum("gpqab,ab->gpq", group.cross, weight)
            sandwich = inverse @ between @ inverse
            parts.append(-np.einsum("gvpq,gpq->gv", group.basis, sandwich))
        return np.concatenate(parts)


class PatternNormal(MomentNormal):
    """Nested random intercepts evaluated on the wide model by missingness pattern.

    Parameters
    ----------
    columns : ndarray, shape (n_rows, m)
        Data columns ``[X, y]`` of the sorted rows (the layout's order).
    cluster_starts : ndarray
        First sorted row of every top-level cluster.
    positions : Positions
        The position of every sorted row and what positions share
        (:func:`~sm_multisem.compile.pattern_path.position_codes`).
    patterns : Patterns
        The missingness pattern of every cluster (:func:`missingness_patterns`).
    nested : NestedNormal
        The recursion on the same data: the parameters (residual, level, correlation
        entries of the variance vector) are its.

    Notes
    -----
    A row of :meth:`moments` (and of ``loglikeobs``, ``score_obs``) is a pattern, its
    clusters summed; ``total`` adds them up. Per-cluster quantities (robust covariances,
    random effects) are the recursion's.
    """

    cholesky_blocks = NestedNormal.cholesky_blocks
    scaled_covariances, covariance_lower = NestedNormal.scaled_covariances, NestedNormal.covariance_lower
    positive_correlations = NestedNormal.positive_correlations
    correlation_blocks = NestedNormal.correlation_blocks

    def __init__(self, columns: np.ndarray, positions: Positions, patterns: Patterns, nested: NestedNormal):
        columns = np.asarray(columns, dtype=float)
        n_rows, m = columns.shape
        self.n_columns = m
        self.centring = nested.centring  # the columns are centred as the recursion's are
        self.n_var = nested.n_var
        self.residual_variances = nested.residual_variances
        self.level_variances = nested.level_variances
        self.correlations = nested.correlations
        self.covariances = nested.covariances  # none: exchangeable residuals take the recursion
        self.weighted_obs = float(n_rows)
        self.basis = positions.basis(self.n_var)
        present = patterns.present(positions.n_positions)
        n_present = present.sum(1)
        counts = np.bincount(patterns.of_cluster, minlength=len(present))
        # rows of one pattern together, cluster after cluster, positions increasing inside each
        # cluster: the pattern's rows are a (clusters, positions * m) block
        if len(present) > 1:
            columns = columns[np.argsort(np.repeat(patterns.of_cluster, patterns.cluster_sizes), kind="stable")]
        ends = np.cumsum(counts * n_present)
        groups = []
        for n in np.unique(n_present):
            members = np.flatnonzero(n_present == n)
            cross = np.empty((len(members), n, n, m, m))
            for at, g in enumerate(members):  # one product per pattern, every cluster of it at once
                block = columns[ends[g] - counts[g] * n:ends[g]].reshape(counts[g], n * m)
                cross[at] = (block.T @ block).reshape(n, m, n, m).transpose(0, 2, 1, 3)
            index = np.nonzero(present[members])[1].reshape(len(members), n)
            basis = self.basis[:, index[:, :, None], index[:, None, :]].transpose(1, 0, 2, 3)
            groups.append(_SizeGroup(index, counts[members].astype(float), cross, basis))
        self._groups = tuple(groups)
        self.n_patterns = len(present)
        self.cluster_size = np.concatenate([g.count * g.index.shape[1] for g in groups])
        self.cluster_weights = np.ones(self.n_patterns)

    def block_problem(self, variances: np.ndarray) -> str:
        """Always empty: exchangeable residual blocks take the recursion (see :func:`pattern_likelihood`)."""
        return ""

    def moments(self, variances: np.ndarray) -> PatternMoments:
        """Pattern moments for the vector of variances."""
        sigma = np.einsum("v,vpq->pq", np.asarray(variances, dtype=float), self.basis)
        logdet, cross, d_logdet, inverses = [], [], [], []
        for group in self._groups:
            chol = np.linalg.cholesky(sigma[group.index[:, :, None], group.index[:, None, :]])
            inv_chol = np.linalg.inv(chol)
            inverse = np.swapaxes(inv_chol, 1, 2) @ inv_chol
            inverses.append(inverse)
            logdet.append(group.count * 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1))
            cross.append(np.einsum("gpq,gpqab->gab", inverse, group.cross))
            d_logdet.append(group.count[:, None] * np.einsum("gpq,gvqp->gv", inverse, group.basis))
        return PatternMoments(np.concatenate(logdet), np.concatenate(cross), np.concatenate(d_logdet),
                              tuple(inverses), self._groups)
