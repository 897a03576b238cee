"""Gaussian log-likelihood of nested random intercepts, evaluated from per-unit sums.

This module knows about normal vectors whose covariance is built from nested blocks
of constant covariance; it knows nothing about structural equation models.

For one top-level cluster with data columns ``W = [X, y]`` the covariance is

.. math::

    \\Sigma = R + \\sum_l Z_l S_l Z_l'

where ``Z_l`` holds the indicators of the units of level ``l``, ``S_l`` is diagonal (one
variance per unit, shared by label) and ``R`` is diagonal (a residual variance per row) or,
with AR(1) residuals, correlated ``rho^|t - s|`` within each lowest unit. Everything the
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
when one variance dwarfs another. Derivatives with respect to every parameter are
carried forward through the same recursion (only contracted, never as 4-D arrays), so
the score is exact; one pass back down gives the predictions of the effects and their
conditional variances.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np

from .ar1_sums import AR1Derivative, AR1Group, AR1Sums
from .centring import NO_CENTRING, Centring
from .moment_normal import MomentNormal
from .moments import CellGrid, ClusterMoments, Pooling, Units
from .precision import NestedPrecision
from .segments import Segments, time_order

__all__ = ["NestedNormal"]


class NestedNormal(MomentNormal):
    """Normal model with nested random intercepts and independent residuals.

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
    unit_variance : sequence of ndarray, optional
        For each level (top first), the variance parameter of every unit's random
        intercept. By default one parameter per level, ``0 .. n_levels - 1``.
    row_variance : ndarray, optional
        The residual variance parameter of every row; by default all rows share
        parameter ``n_levels``.
    ar1_time, ar1_index : ndarray, and int or ndarray, optional
        Integer time of every row and the parameter holding ``rho`` (or the ``rho`` parameter
        of every row): residuals of a lowest unit are then correlated ``rho^|t - s|``. Every
        lowest unit has one residual variance and one ``rho``, and the units sharing one share
        the other (one pair per label, Stata ``residuals(ar 1, t(time) by(type))``).
    residual_covariance : bool
        The lowest level's intercepts are the covariances ``c`` of exchangeable residuals:
        a unit's block is ``(v - c) I + c 1 1'`` with ``v`` its rows' residual variance, which
        must be the same parameter in every unit with that ``c``. Internally each ``v`` is
        replaced by ``v - c``, a linear map the derivatives are taken back through.
    centring : Centring, optional
        How ``columns`` were centred (:meth:`Centring.columns`); the fixed effects taken and
        returned are those of the columns before centring.
    cluster_weights : ndarray, optional
        Sampling weight of every top-level cluster: totals over clusters, and so the
        profiled, restricted and GLS quantities, are weighted (pseudo-likelihood).

    Notes
    -----
    The data enter only through per-cell counts, means and within-cell scatter
    matrices, computed once here (a cell is the rows of one lowest unit that share a
    residual variance). Each evaluation then costs O(number of units), independent of
    the number of rows.
    """

    #: Whether the moments are evaluated from the within-cell scatter per cluster (see
    #: :attr:`_cluster_within`); a subclass with sums of its own says no.
    _sums_within_cells = True

    #: The entries (a q x q matrix each) of every block of correlated effects optimised by its
    #: Cholesky factor; none here (random slopes: :class:`~sm_multisem.engine.effects.EffectsNormal`)
    cholesky_blocks: tuple[np.ndarray, ...] = ()
    #: ``(covariance, variance a, variance b)`` entries of every covariance that is optimised as its share
    #: ``c / sqrt(v_a v_b)``, and the lower bound of that share (:attr:`covariance_lower`): the covariances
    #: of exchangeable residuals (``a = b``, their units' residual variance) and of correlated siblings
    scaled_covariances = np.zeros((0, 3), dtype=np.intp)
    covariance_lower = np.zeros(0)
    #: Sets of scaled covariances (entries of a symmetric matrix, -1 on the diagonal) that make one correlation
    #: matrix, one parameter per pair: the free covariances of sibling slots
    correlation_blocks: tuple[np.ndarray, ...] = ()
    #: Correlations raised to fractional powers (AR(1) residuals in real time), which must be positive
    positive_correlations = np.zeros(0, dtype=np.intp)

    def __init__(self, columns: np.ndarray, row_starts: np.ndarray, child_starts, unit_variance=None,
                 row_variance=None, ar1_time=None, ar1_index=None, cluster_weights=None,
                 residual_covariance: bool = False, centring: Centring | None = None):
        self.centring = centring or NO_CENTRING
        columns = np.asarray(columns, dtype=float)
        n_rows, m = columns.shape
        self.n_columns = m
        self.n_levels = len(child_starts) + 1
        self.child_starts = tuple(np.asarray(s, dtype=np.intp) for s in child_starts)
        counts = np.diff(np.append(row_starts, n_rows))
        sizes = [len(s) for s in self.child_starts] + [len(counts)]
        if unit_variance is None:
            unit_variance = [np.full(n, level, dtype=np.intp) for level, n in enumerate(sizes)]
        if row_variance is None:
            row_variance = np.full(n_rows, self.n_levels, dtype=np.intp)
        self.unit_variance = tuple(np.asarray(u, dtype=np.intp) for u in unit_variance)
        row_variance = np.asarray(row_variance, dtype=np.intp)
        self._row_starts, self._row_variance = np.asarray(row_starts, dtype=np.intp), row_variance
        self.residual_variances = np.flatnonzero(np.bincount(row_variance))  # O(rows), no sort
        self._level_params = tuple(np.flatnonzero(np.bincount(u)) for u in self.unit_variance)  # distinct, each level
        self.level_variances = np.unique(np.concatenate(self._level_params))
        row_rho = None if ar1_time is None else np.broadcast_to(np.asarray(ar1_index, dtype=np.intp), (n_rows,))
        self.correlations = np.zeros(0, dtype=np.intp) if row_rho is None else np.flatnonzero(np.bincount(row_rho))
        self.n_var = int(max(self.residual_variances.max(), self.level_variances.max(), *self.correlations)) + 1

        # parent of every unit (levels below the top), and the first unit of every cluster
        self._parents = tuple(
            np.repeat(np.arange(len(s)), np.diff(np.append(s, n_children)))
            for s, n_children in zip(self.child_starts, sizes[1:])
        )
        cluster = [np.arange(sizes[0])]
        for parent in self._parents:
            cluster.append(cluster[-1][parent])
        # the first unit of a cluster at a level is the first child of its first unit at the level above
        cluster_starts = [np.arange(sizes[0])]
        for starts in self.child_starts:
            cluster_starts.append(starts[cluster_starts[-1]])
        self._cluster_starts = tuple(cluster_starts)
        # runs to sum over: the children of every unit (levels below the top), the units of every cluster
        self._children = tuple(Segments(s, parent) for s, parent in zip(self.child_starts, self._parents))
        self._clusters = tuple(Segments(s, c) for s, c in zip(self._cluster_starts, cluster))
        self.cluster_size = np.add.reduceat(counts, self._cluster_starts[-1])
        self.n_obs = n_rows
        self.cluster_weights = (np.ones(sizes[0]) if cluster_weights is None
                                else np.asarray(cluster_weights, dtype=float))
        self.weighted_obs = float(np.einsum("k,k->", self.cluster_weights, self.cluster_size))

        # cells: the rows of one lowest unit with one residual variance
        unit_of_row = np.repeat(np.arange(len(counts)), counts)
        if len(self.residual_variances) == 1:  # one residual variance: the cells are the units (no copies)
            cell_starts, cell_unit, cell_cluster = np.asarray(row_starts), np.arange(len(counts)), cluster[-1]
            cell_variance, cell_counts = row_variance[cell_starts], counts
            self._cell_clusters = self._clusters[-1]
            by_column = np.ascontiguousarray(columns.T)
            cells = Segments(cell_starts, unit_of_row)
        else:
            order = np.lexsort((row_variance, unit_of_row))
            key = unit_of_row[order] * self.n_var + row_variance[order]
            cell_starts = np.flatnonzero(np.r_[True, np.diff(key) != 0])
            cell_counts = np.diff(np.append(cell_starts, n_rows))
            cell_variance = row_variance[order[cell_starts]]
            cell_unit = unit_of_row[order[cell_starts]]
            cell_cluster = cluster[-1][cell_unit]
            self._cell_clusters = Segments(np.searchsorted(cell_cluster, np.arange(sizes[0])), cell_cluster)
            by_column = np.ascontiguousarray(columns[order].T)
            cells = Segments(cell_starts, np.repeat(np.arange(len(cell_starts)), cell_counts))
        self._cell_size = cell_counts.astype(float)
        cell_mean = np.stack([cells.sum(column) for column in by_column]) / self._cell_size
        centred = np.empty_like(by_column)
        # one row-length buffer for every temporary below: a million-row array is fresh memory from the
        # system the first time (page faults cost more than the arithmetic), a reused one is not
        row_buffer = np.empty(n_rows)
        cell_of_row = cells.ids
        for column in range(m):
            np.subtract(by_column[column], np.take(cell_mean[column], cell_of_row, out=row_buffer),
                        out=centred[column])
        self._cell_mean = np.ascontiguousarray(cell_mean.T)
        self._pooled_within = centred @ centred.T  # the within-cell scatter of all rows: one product
        n_residual = len(self.residual_variances)
        cell_slot = np.searchsorted(self.residual_variances, cell_variance)
        if ar1_time is None and self._sums_within_cells:  # AR(1) units have sums of their own
            # the group of every row (its cluster and, with several residual variances, its variance's
            # slot), kept with the centred rows for _cluster_within, at the first evaluation
            group = np.repeat(cell_cluster * n_residual + cell_slot, cell_counts)
            if n_residual == 1:  # a group is a cluster, a run of rows: summed by reduceat where runs are long
                group = Segments(np.asarray(row_starts)[self._cluster_starts[-1]], group)
            self._within_rows = (centred, group, n_residual)
        self.covariances = np.zeros(0, dtype=np.intp)
        self._to_internal = None
        if residual_covariance:
            self._exchangeable_blocks(counts, cell_unit, cell_variance)
        self._grid = None
        if n_residual > 1 and ar1_time is None:  # AR(1) units have one residual variance each: no grid
            grid = (len(counts), n_residual)
            count, mean = np.zeros(grid), np.zeros(grid + (m,))
            count[cell_unit, cell_slot], mean[cell_unit, cell_slot] = cell_counts, self._cell_mean
            own_d_h = np.divide(1.0, count, out=np.zeros(grid), where=count > 0)
            self._grid = CellGrid(count, mean, own_d_h, Segments(self._cluster_starts[-1] * n_residual,
                                                                   np.repeat(cluster[-1], n_residual)),
                                  self._clusters[-1])
        self._ar1: tuple[AR1Group, ...] = ()
        del by_column, centred, row_buffer  # row-length copies: not held while the AR(1) sums make their own
        if ar1_time is not None:
            self._ar1 = self._ar1_groups(columns, np.asarray(ar1_time), np.asarray(row_starts), counts, row_variance,
                                         row_rho)

    @cached_property
    def _cluster_within(self) -> np.ndarray:
        """The within-cell scatter summed per residual variance and cluster, (variances, clusters, m, m).

        It enters every evaluation only as these sums: summed row by row into the groups, never cell
        by cell. Computed at the first evaluation from the centred rows kept until then: fits on the
        pattern path and AR(1) residuals never need it.
        """
        centred, group, n_residual = self._within_rows
        del self._within_rows
        m, n_clusters = len(centred), len(self._clusters[0])
        if isinstance(group, Segments):
            group_sum = group.sum
        else:
            def group_sum(values: np.ndarray) -> np.ndarray:
                return np.bincount(group, weights=values, minlength=n_clusters * n_residual)
        within = np.empty((m, m, n_residual, n_clusters))  # filled in contiguous blocks, transposed once
        product = np.empty(centred.shape[1])  # one row-length buffer (see __init__)
        for a in range(m):
            for b in range(a, m):
                np.multiply(centred[a], centred[b], out=product)
                within[a, b] = within[b, a] = group_sum(product).reshape(-1, n_residual).T
        return np.ascontiguousarray(within.transpose(2, 3, 0, 1))

    def _ar1_groups(self, columns, time, row_starts, counts, row_variance, row_rho) -> tuple[AR1Group, ...]:
        """The lowest units grouped by their (residual variance, rho), with each group's sums."""
        unit_variance, unit_rho = row_variance[row_starts], row_rho[row_starts]
        if np.any(row_variance != np.repeat(unit_variance, counts)) or np.any(row_rho != np.repeat(unit_rho, counts)):
            raise ValueError("AR(1) residuals of a lowest unit have one residual variance and one rho")
        # the distinct (variance, rho) pairs, from one integer per pair (faster than unique rows)
        pair_keys, unit_group = np.unique(unit_variance * self.n_var + unit_rho, return_inverse=True)
        pairs, unit_group = np.column_stack(np.divmod(pair_keys, self.n_var)), unit_group.ravel()
        if len(np.unique(pairs[:, 0])) < len(pairs) or len(np.unique(pairs[:, 1])) < len(pairs):
            raise ValueError("AR(1) residuals need one rho per residual variance and one residual variance per "
                             "rho; give them the same labels")
        order = time_order(time, np.repeat(np.arange(len(counts)), counts))
        if np.any(order != np.arange(len(order))):  # a unit's rows stay at its place, sorted by time
            columns, time = columns[order], time[order]
        self._unit_clusters = self._cell_clusters  # one cell per unit
        if len(pairs) == 1:
            return (AR1Group(None, int(pairs[0, 0]), int(pairs[0, 1]),
                              AR1Sums(columns, time, row_starts, self._unit_clusters)),)
        groups = []
        for group, (variance, rho) in enumerate(pairs):
            units = np.flatnonzero(unit_group == group)
            rows = np.repeat(unit_group == group, counts)
            unit_cluster = self._unit_clusters.ids[units]
            clusters = Segments(np.searchsorted(unit_cluster, np.arange(len(self._unit_clusters))), unit_cluster)
            starts = np.cumsum(counts[units]) - counts[units]
            groups.append(AR1Group(units, int(variance), int(rho), AR1Sums(columns[rows], time[rows], starts,
                                                                             clusters)))
        return tuple(groups)

    def _exchangeable_blocks(self, counts: np.ndarray, cell_unit: np.ndarray, cell_variance: np.ndarray) -> None:
        """Pair every residual variance with the covariance of its units (see ``residual_covariance``)."""
        covariance_of_cell = self.unit_variance[-1][cell_unit]
        pairs = np.unique(np.column_stack([cell_variance, covariance_of_cell]), axis=0)
        if len(np.unique(pairs[:, 0])) < len(pairs) or len(np.unique(pairs[:, 1])) < len(pairs):
            raise ValueError("exchangeable units need one residual variance and one covariance per label; "
                             "give the variances and covariances the same labels")
        self.covariances = self._level_params[-1]
        self.level_variances = np.unique(np.concatenate(self._level_params[:-1]))
        self._to_internal = np.eye(self.n_var)
        self._to_internal[pairs[:, 0], pairs[:, 1]] -= 1.0
        self._block_pairs = pairs
        # the largest block of every covariance bounds it below: v + (n - 1) c > 0
        largest = np.zeros(self.n_var)
        np.maximum.at(largest, self.unit_variance[-1], counts)
        self.block_size = largest
        self.scaled_covariances = np.column_stack([pairs[:, 1], pairs[:, 0], pairs[:, 0]])
        self.covariance_lower = -1.0 / np.maximum(largest[pairs[:, 1]] - 1.0, 1.0)

    def internal(self, variances: np.ndarray) -> np.ndarray:
        """The variances the recursion uses: with exchangeable residuals ``v - c`` in place of ``v``."""
        variances = np.asarray(variances, dtype=float)
        return variances if self._to_internal is None else self._to_internal @ variances

    def block_problem(self, variances: np.ndarray) -> str:
        """Why exchangeable blocks are not positive definite at ``variances`` (empty when they are)."""
        if self._to_internal is None:
            return ""
        for var, cov in self._block_pairs:
            v, c, n = variances[var], variances[cov], self.block_size[cov]
            if not (v - c > 0 and v + (n - 1) * c > 0):
                return (f"exchangeable residuals need var - cov > 0 and var + (n - 1) cov > 0 for the largest unit "
                        f"(n = {n:g}); got var {v:g}, cov {c:g}")
        return ""

    def within_unit_residual(self) -> tuple[int, float, float]:
        """Degrees of freedom and sum of squares left for the residual variance inside units.

        Returns ``(dof, rss, tss)``: ``dof = rows - lowest units - rank of the covariates'
        within-unit variation``, ``rss`` the outcome's within-unit sum of squares after the
        covariates, ``tss`` its within-unit sum of squares. When ``dof`` or ``rss`` is 0 the
        outcome lies in the span of the covariates and the unit intercepts: the residual
        variance can shrink to 0 and the likelihood has no maximum.
        """
        scatter = self._pooled_within
        if self._grid is not None:  # cells split units: add the between-cell scatter
            ones = np.ones(len(self.residual_variances))
            scatter = scatter + self._grid.pool(ones, self.residual_variances)[1].sum(0)
        x, y = scatter[:-1, :-1], scatter[:-1, -1]
        rank = np.linalg.matrix_rank(x, tol=1e-10 * max(np.abs(np.diag(x)).max(initial=0.0), 1e-300))
        rss = float(scatter[-1, -1] - y @ np.linalg.pinv(x, rcond=1e-10) @ y)
        dof = self.n_obs - len(self.unit_variance[-1]) - int(rank)
        return dof, max(rss, 0.0), float(scatter[-1, -1])

    # ------------------------------------------------------------------ recursion
    def moments(self, variances: np.ndarray) -> ClusterMoments:
        """Cluster moments for the variance parameters (see ``unit_variance``, ``row_variance``)."""
        variances = np.asarray(variances, dtype=float)
        if self._to_internal is not None:
            mom = self._nested_moments(self._to_internal @ variances)
            return dataclasses.replace(mom, d_logdet=mom.d_logdet @ self._to_internal,
                                       _to_arguments=self._to_internal)
        return self._nested_moments(variances)

    def _nested_moments(self, variances: np.ndarray) -> ClusterMoments:
        if self._ar1:
            return self._finish(variances, *self._ar1_units(variances))
        within = np.einsum("r,r...->...", 1.0 / variances[self.residual_variances], self._cluster_within)
        active = self.residual_variances
        if self._grid is not None:  # several residual variances inside a unit: pool its cells
            units, between, record = self._grid.pool(variances[active], active)
            within += between
            poolings = [record]
        else:  # one residual variance: a cell is a unit
            n, resid = self._cell_size, variances[active[0]]
            units = Units(n * np.log(resid), resid / n, self._cell_mean, (n / resid)[:, None], (1.0 / n)[:, None],
                           None, active)
            poolings = []
        return self._finish(variances, units, within, poolings, (self._cluster_within, active), ())

    def _ar1_units(self, variances: np.ndarray):
        """The lowest units with AR(1) residuals, from every group's sums by unit and gap.

        A group's units take its residual variance and rho, and their derivatives go to those
        two parameters' columns; the groups' within-unit scatters add up per cluster.
        """
        active = np.unique([[group.variance, group.rho] for group in self._ar1])
        n_units, m = len(self._unit_clusters.ids), self.n_columns
        logdet, h, mean = np.empty(n_units), np.empty(n_units), np.empty((n_units, m))
        d_logdet, d_h = np.zeros((n_units, len(active))), np.zeros((n_units, len(active)))
        d_mean = np.zeros((n_units, len(active), m))
        within, scatters, derivatives = 0.0, [], []
        for group in self._ar1:
            resid, rho = variances[group.variance], variances[group.rho]
            a, d_a, unit_mean, d_mean_rho, centred_mean, scatter, d_q, log_s2, d_log_s2 = group.sums.unit_sums(rho)
            counts = group.sums.n_rows
            at = slice(None) if group.units is None else group.units
            res_col, rho_col = np.searchsorted(active, [group.variance, group.rho])
            logdet[at], h[at], mean[at] = counts * np.log(resid) + log_s2, resid / a, unit_mean
            d_logdet[at, res_col], d_logdet[at, rho_col] = counts / resid, d_log_s2
            d_h[at, res_col], d_h[at, rho_col] = 1.0 / a, -resid * d_a / (a * a)
            d_mean[at, rho_col] = d_mean_rho
            within = within + scatter / resid
            scatters.append(scatter)
            derivatives.append(AR1Derivative(d_q, a, d_a, centred_mean, d_mean_rho, group.sums.unit_clusters, resid,
                                              group.rho))
        units = Units(logdet, h, mean, d_logdet, d_h, d_mean, active)
        residual = np.array([group.variance for group in self._ar1], dtype=np.intp)
        return units, within, [], (np.stack(scatters), residual), tuple(derivatives)

    def _finish(self, variances, units: Units, within, poolings, within_sums, ar1) -> ClusterMoments:
        """Add every level's random intercept and pool up to the clusters.

        ``within_sums`` is the within-cell scatter summed per cluster, one sum for each
        residual variance, and those variances' parameters (for the derivative pass).
        """
        level_units = []
        for level in range(self.n_levels - 1, -1, -1):
            which = self.unit_variance[level]
            below = units.h  # kept: h - s would cancel when the unit's own variance dwarfs the rest
            units = units.add_intercept(variances[which], which, self._level_params[level])
            level_units.insert(0, (below, units.h, units.mean))
            if level > 0:
                units, between, record = units.pool(self._children[level - 1], self._clusters[level])
                within += between
                poolings.append(record)
        # the cluster's own GLS mean enters C_k as a_k m_k m_k'
        a = 1.0 / units.h
        cross = within + a[:, None, None] * units.mean[:, :, None] * units.mean[:, None, :]
        poolings.append(Pooling(a, units.mean, units.d_mean, units.d_h, self._clusters[0], units.active))
        d_logdet = np.zeros((len(a), self.n_var))
        d_logdet[:, units.active] = units.d_logdet
        return ClusterMoments(
            logdet=units.logdet,
            cross=cross,
            d_logdet=d_logdet,
            _poolings=tuple(poolings),
            _within=within_sums[0],
            _within_variance=within_sums[1],
            _variances=variances,
            _ar1=ar1,
            level_units=tuple(level_units),
        )

    def precision(self, variances: np.ndarray) -> NestedPrecision:
        """``Sigma^{-1}`` at ``variances`` by its pieces (:class:`~sm_multisem.engine.precision.NestedPrecision`):
        cross products of columns split by a label, and the sums a score test of a variance by groups needs."""
        if self._ar1:
            raise NotImplementedError("the precision of AR(1) residuals by its pieces is not implemented")
        mom = self.moments(variances)
        internal = self.internal(variances)
        row_unit = np.repeat(np.arange(len(self._row_starts)), np.diff(np.append(self._row_starts, self.n_obs)))
        weights = None
        if np.any(self.cluster_weights != 1.0):
            weights = (*(self.cluster_weights[clusters.ids] for clusters in self._clusters),
                       self.cluster_weights[self._clusters[-1].ids[row_unit]])
        below, total, _ = zip(*mom.level_units)
        return NestedPrecision(1.0 / internal[self._row_variance], row_unit, self._parents, below, total,
                               [internal[which] for which in self.unit_variance], weights)

    def random_effects(self, beta: np.ndarray, variances: np.ndarray) -> list[np.ndarray]:
        """Best linear unbiased predictions of every unit's random intercept, level by level (top first).

        .. math:: \\hat v_c = s_c\\, 1'B_c^{-1}(r_c - \\hat a_c 1) = s_c (\\bar r_c - \\hat a_c) / h_c

        where ``B_c`` is the covariance of unit ``c``'s rows (its own intercept included),
        ``\\bar r_c`` the GLS mean of its residuals and ``\\hat a_c`` the sum of the predictions
        of its ancestors: conditional on the ancestors a unit depends on its own rows only,
        so one pass down the levels gives ``E[v | y]``.
        """
        mom = self.moments(variances)
        variances = self.internal(variances)
        v = np.append(-self.centring.internal_beta(beta), 1.0)
        predictions = []
        ancestors = np.zeros(len(mom.logdet))
        for level, (_, h, mean) in enumerate(mom.level_units):
            prediction = variances[self.unit_variance[level]] * (mean @ v - ancestors) / h
            predictions.append(prediction)
            if level + 1 < self.n_levels:
                ancestors = (ancestors + prediction)[self._parents[level]]
        return predictions

    def random_effects_variance(self, variances: np.ndarray) -> list[np.ndarray]:
        """Conditional variance ``Var(v_c | y)`` of every unit's random intercept, level by level (top first).

        The diagonal of ``G - G Z' Sigma^{-1} Z G`` (the fixed effects held at their value, as
        lme4's ``condVar`` and MixedLM's ``random_effects_cov``), from one pass down the levels.
        Given the sum ``a_c`` of its ancestors' effects, a unit's rows enter only through their
        GLS mean, ``N(a_c + v_c, h_c - s_c)``, so with the shrinkage ``w_c = s_c / h_c``

        .. math::

            v_c \\mid a_c, y \\sim N\\big(w_c(\\bar r_c - a_c),\\; s_c (1 - w_c)\\big),

        and the law of total variance over ``a_c | y`` (``A_c = Var(a_c | y)``, 0 at the top) gives

        .. math::

            \\operatorname{Var}(v_c \\mid y) = s_c (1 - w_c) + w_c^2 A_c, \\qquad
            A_{\\text{child}} = \\operatorname{Var}(a_c + v_c \\mid y) = s_c (1 - w_c) + (1 - w_c)^2 A_c.
        """
        mom = self.moments(variances)
        variances = self.internal(variances)
        out = []
        ancestors = np.zeros(len(mom.logdet))
        for level, (below, h, _) in enumerate(mom.level_units):
            s = variances[self.unit_variance[level]]
            shrink, keep = s / h, below / h  # w and 1 - w, each without a cancellation
            own = s * keep
            out.append(own + shrink**2 * ancestors)
            if level + 1 < self.n_levels:
                ancestors = (own + keep**2 * ancestors)[self._parents[level]]
        return out

