"""Sums by unit and gap that carry AR(1) residuals within the lowest units of the recursion.

With the sums made once, every evaluation costs O(units x distinct gaps) whatever the
number of rows; :class:`~sm_multisem.engine.likelihood.NestedNormal` reads them in its pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .segments import GroupSums, Segments, distinct_integers, segment_outer_sums

__all__ = ["AR1Derivative", "AR1Group", "AR1Sums"]


class AR1Sums:
    """Per-unit sums that carry residuals correlated ``rho^|t - s|`` within every lowest unit.

    The correlation is Markov along time, so ``R^{-1}`` is tridiagonal: prewhitening each row
    against its predecessor, ``z_i = (w_i - phi w_{i-1}) / s`` with ``phi = rho^g`` for the
    gap ``g`` between their times and ``s = sqrt(1 - phi^2)`` (the first row of a unit is kept
    as it is), turns ``W' R^{-1} W`` into ``Z'Z / sigma^2`` and ``log|R|`` into
    ``n log sigma^2 + sum log s^2``. Over the rows of one unit with one gap, ``sum z z'``,
    ``sum z`` and the whitened ones are fixed combinations of ``S = sum w w'``,
    ``C = sum w w_prev'``, ``P = sum w_prev w_prev'``, ``A = sum w``, ``B = sum w_prev`` and
    the count: those are summed once here, by unit and gap, and every evaluation costs
    O(units x distinct gaps), whatever the number of rows. The second moments ``S``, ``C``, ``P``
    enter the likelihood only through their sum over a cluster's units, so they are kept per
    cluster and gap (and ``C`` only as ``C + C'``).

    The rows are centred on their unit's mean first. Whitening is linear and maps ``1`` to the
    whitened ones, so the scatter about the GLS mean does not change and the mean moves by
    the unit's mean: the sums carry no large offset whose cancellation would cost digits.
    """

    def __init__(self, columns: np.ndarray, time: np.ndarray, row_starts: np.ndarray, unit_clusters: Segments):
        n_rows, m = columns.shape
        counts = np.diff(np.append(row_starts, n_rows))
        unit = np.repeat(np.arange(len(row_starts)), counts)
        centred = np.array(columns.T, order="C")  # (m, rows), a copy: every sum below runs over contiguous rows
        unit_mean = np.add.reduceat(centred, row_starts, axis=1) / counts
        self.unit_mean = np.ascontiguousarray(unit_mean.T)
        for column, mean in zip(centred, unit_mean):  # in place, a column at a time
            column -= mean[unit]
        first = np.zeros(n_rows, dtype=bool)
        first[row_starts] = True
        later = np.flatnonzero(~first)
        gap = time[later] - time[later - 1]
        if np.any(gap <= 0):
            raise ValueError("two observations of one unit share a time; AR(1) residuals need distinct times")
        self.gaps, gap_code = distinct_integers(gap)
        if not len(self.gaps):  # units of one row each (a label of such units): one gap that no row has
            self.gaps = np.ones(1)
        n_gaps, n_units, n_clusters = len(self.gaps), len(row_starts), len(unit_clusters)
        now, before = centred[:, later], centred[:, later - 1]

        by_unit = GroupSums(unit[later] * n_gaps + gap_code, n_units * n_gaps)
        self.count = by_unit.sum(np.ones(len(later))).reshape(n_units, n_gaps)
        self.now_sum = np.moveaxis(by_unit.sum(now).reshape(m, n_units, n_gaps), 0, -1)
        self.before_sum = np.moveaxis(by_unit.sum(before).reshape(m, n_units, n_gaps), 0, -1)
        upper, lower = np.triu_indices(m)
        by_cluster = GroupSums(unit_clusters.ids[unit[later]] * n_gaps + gap_code, n_clusters * n_gaps)
        per_cluster = np.empty((3, len(upper), n_clusters * n_gaps))
        product, other = np.empty(len(later)), np.empty(len(later))  # one product of two rows at a time
        for entry, (i, j) in enumerate(zip(upper, lower)):  # S, C + C' and P, upper triangles
            per_cluster[0, entry] = by_cluster.sum(np.multiply(now[i], now[j], out=product))
            np.multiply(now[i], before[j], out=product)
            product += np.multiply(before[i], now[j], out=other)
            per_cluster[1, entry] = by_cluster.sum(product)
            per_cluster[2, entry] = by_cluster.sum(np.multiply(before[i], before[j], out=product))
        per_cluster = per_cluster.reshape(3, len(upper), n_clusters, n_gaps)

        def symmetric(entries: np.ndarray) -> np.ndarray:
            """(clusters, gaps, m, m) from the sums of the upper triangle's entries."""
            out = np.empty((n_clusters, n_gaps, m, m))
            out[:, :, upper, lower] = out[:, :, lower, upper] = np.moveaxis(entries, 0, -1)
            return out

        self.now_now, self.cross, self.before_before = (symmetric(entries) for entries in per_cluster)
        self.first = np.ascontiguousarray(centred[:, row_starts].T)
        self.first_first = segment_outer_sums(self.first, self.first, unit_clusters, symmetric=True)
        self.unit_clusters = unit_clusters
        self.n_rows = counts

    def unit_sums(self, rho: float):
        """For every unit: ``a = 1'R^{-1}1``, the GLS mean and the derivatives of both in rho; for
        every cluster: the scatter of its units about their GLS means (``sigma^2 = 1``) and the
        derivative in rho of its whitened ``W'W``; ``sum log s^2`` and its derivative, per unit."""
        phi = rho**self.gaps
        d_phi = self.gaps * rho ** (self.gaps - 1.0)
        one_minus_phi2 = 1.0 - phi * phi
        # whitened ones: ((1 - phi)/s)^2 = (1 - phi)/(1 + phi); ones * z sums to (A - phi B)/(1 + phi)
        a = 1.0 + self.count @ ((1.0 - phi) / (1.0 + phi))
        d_a = self.count @ (-2.0 * d_phi / (1.0 + phi) ** 2)
        b = self.first + np.einsum("g,ugm->um", 1.0 / (1.0 + phi), self.now_sum - phi[:, None] * self.before_sum)
        d_b = -np.einsum("g,ugm->um", d_phi / (1.0 + phi) ** 2, self.now_sum + self.before_sum)
        # sum z z' = S - phi (C + C') + phi^2 P over 1 - phi^2, per cluster
        q = self.first_first + (np.einsum("g,kgij->kij", 1.0 / one_minus_phi2, self.now_now + (phi * phi)[:, None, None]
                                          * self.before_before) - np.einsum("g,kgij->kij", phi / one_minus_phi2,
                                                                            self.cross))
        d_coef = 2.0 * phi * d_phi / one_minus_phi2**2  # d(1 / (1 - phi^2))
        d_q = (np.einsum("g,kgij->kij", d_coef, self.now_now)
               - np.einsum("g,kgij->kij", d_phi / one_minus_phi2 + phi * d_coef, self.cross)
               + np.einsum("g,kgij->kij", 2.0 * phi * d_phi / one_minus_phi2 + phi * phi * d_coef, self.before_before))
        mean = b / a[:, None]
        d_mean = (d_b - mean * d_a[:, None]) / a[:, None]
        scatter = q - segment_outer_sums(a[:, None] * mean, mean, self.unit_clusters, symmetric=True)
        log_s2 = self.count @ np.log(one_minus_phi2)
        d_log_s2 = self.count @ (-2.0 * phi * d_phi / one_minus_phi2)
        return a, d_a, mean + self.unit_mean, d_mean, mean, scatter, d_q, log_s2, d_log_s2


@dataclass(frozen=True)
class AR1Derivative:
    """What the derivative pass needs of the AR(1) units.

    See :meth:`sm_multisem.engine.moments.ClusterMoments.contract`.
    """

    d_q: np.ndarray  # derivative in rho of every cluster's whitened W'W (centred rows)
    a: np.ndarray  # 1' R^{-1} 1 times sigma^2, per unit
    d_a: np.ndarray
    centred_mean: np.ndarray  # GLS mean of the centred rows
    d_mean: np.ndarray
    unit_clusters: Segments
    resid_var: float
    index: int  # of rho among the parameters

    def contract(self, weight: np.ndarray, out: np.ndarray) -> None:
        """Add ``tr(A d(within)/d rho)`` of every cluster to ``out[:, index]``.

        The within-unit scatter is ``(Q - a m m') / sigma^2``, so its derivative contracted
        with ``A`` is ``(tr(A dQ) - da m'Am - 2a dm'Am) / sigma^2``.
        """
        weighted_mean = np.einsum("um,mn->un", self.centred_mean, weight)
        per_unit = (self.d_a * np.einsum("um,um->u", weighted_mean, self.centred_mean)
                    + 2.0 * self.a * np.einsum("um,um->u", self.d_mean, weighted_mean))
        out[:, self.index] += (np.einsum("kij,ij->k", self.d_q, weight) - self.unit_clusters.sum(per_unit)
                               ) / self.resid_var


@dataclass(frozen=True)
class AR1Group:
    """The lowest units that share one residual variance and one rho, with their AR(1) sums."""

    units: np.ndarray | None  # their indices among all lowest units; None: every unit
    variance: int  # the parameter of their residual variance
    rho: int  # the parameter of their rho
    sums: AR1Sums
