"""The residuals' share of the recursion: every lowest unit's prewhitened sums, and their adjoints.

The recursion of :mod:`sm_multisem.effects` starts from the lowest units with the residual
covariance ``R_u`` of each unit's rows alone, and needs of the rows only

.. math:: A_u = U_u' R_u^{-1} U_u, \\qquad b_u = U_u' R_u^{-1} W_u, \\qquad
          \\sum_{u \\in k} W_u' R_u^{-1} W_u, \\qquad \\sum_{u \\in k} \\log|R_u|

(``U`` the effect columns, ``W = [X, y]``). Two structures of ``R_u``:

* :class:`IndependentResiduals`: diagonal, a variance per row by label (nlme ``varIdent``):
  the sums are fixed combinations of sums per residual variance, computed once;
* :class:`BlockResiduals`: dense along occasions within the unit (unstructured, Toeplitz,
  banded: every entry of ``R`` a parameter, or a structural zero). Units with the same occasions
  present share one ``R_p``, inverted once per evaluation; an evaluation costs
  O(units x occasions^2 x columns), batched over all units.

Each gives the adjoint of its parameters from those of ``A_u``, ``b_u`` and the cluster sums, the
last step of the recursion's backward pass: with ``V = R^{-1}[U, W]`` and ``Gbar`` the symmetric
adjoint of ``[U, W]' R^{-1} [U, W]``, ``d/dR = -V Gbar V' + s R^{-1}`` (``s`` the seed of
``log|R|``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .likelihood import _segment_outer_sums, _Segments

__all__ = ["BlockResiduals", "IndependentResiduals", "WhitenedSums"]


@dataclass(frozen=True)
class WhitenedSums:
    """``A`` (u, u, units), ``b`` (u, m, units), the cluster sums of ``W'R^{-1}W`` (m, m, clusters) and
    of ``log|R|`` (clusters,), with what the adjoints need (``state``)."""

    a: np.ndarray
    b: np.ndarray
    cross: np.ndarray
    logdet: np.ndarray
    state: object


class IndependentResiduals:
    """Independent residuals, a variance per row (shared by label): sums per residual variance.

    Parameters
    ----------
    effect_values : ndarray, shape (n_rows, u)
    columns : ndarray, shape (n_rows, m)
        ``[X, y]``, rows sorted by unit.
    row_starts : ndarray
        The first row of every lowest unit.
    row_variance : ndarray of int
        The residual variance entry of every row.
    residual_variances : ndarray of int
        The distinct entries, sorted.
    clusters, unit_clusters : _Segments
        The rows, and the lowest units, of every top-level cluster.
    """

    def __init__(self, effect_values, columns, row_starts, row_variance, residual_variances, clusters: _Segments,
                 unit_clusters: _Segments):
        self.unit_clusters = unit_clusters
        n_rows = len(columns)
        counts = np.diff(np.append(row_starts, n_rows))
        units = _Segments(row_starts, np.repeat(np.arange(len(row_starts)), counts))
        slot = np.searchsorted(residual_variances, row_variance)
        zz, zw, ww, resid_counts = [], [], [], []
        for r in range(len(residual_variances)):
            share = (slot == r).astype(float) if len(residual_variances) > 1 else None
            z = effect_values if share is None else effect_values * share[:, None]
            zz.append(np.moveaxis(_segment_outer_sums(z, effect_values, units, symmetric=True), 0, -1))
            zw.append(np.moveaxis(_segment_outer_sums(z, columns, units), 0, -1))
            w = columns if share is None else columns * share[:, None]
            ww.append(np.moveaxis(_segment_outer_sums(w, columns, clusters, symmetric=True), 0, -1))
            resid_counts.append(np.diff(np.append(clusters.starts, n_rows)).astype(float) if share is None
                                else clusters.sum(share))
        self._zz, self._zw = np.ascontiguousarray(np.stack(zz)), np.ascontiguousarray(np.stack(zw))
        self._ww = np.ascontiguousarray(np.stack(ww))
        self._counts = np.column_stack(resid_counts)  # (clusters, residual variances)
        self.entries = np.asarray(residual_variances, dtype=np.intp)
        self.covariances = np.zeros(0, dtype=np.intp)

    def forward(self, variances: np.ndarray) -> WhitenedSums:
        resid = variances[self.entries]
        inverse = 1.0 / resid
        return WhitenedSums(np.einsum("r,rijn->ijn", inverse, self._zz), np.einsum("r,rijn->ijn", inverse, self._zw),
                            np.einsum("r,rijk->ijk", inverse, self._ww), self._counts @ np.log(resid), resid)

    def backward(self, sums: WhitenedSums, seed_logdet: float, a_bar, b_bar, weight, out: np.ndarray) -> None:
        """Add the derivative in every residual variance ``s_r`` to ``out`` (clusters, parameters):
        ``A = sum_r ZZ_r / s_r`` (and ``b``, ``C`` likewise), so ``d/ds_r = -(.)_r / s_r^2``."""
        resid = sums.state
        per_unit = np.einsum("iju,riju->ru", a_bar, self._zz)
        if b_bar is not None:
            per_unit += np.einsum("iju,riju->ru", b_bar, self._zw)
        d_resid = -self.unit_clusters.sum_last(per_unit).T / resid**2 + seed_logdet * self._counts / resid
        if weight is not None:
            d_resid -= np.einsum("ij,rijk->kr", weight, self._ww) / resid**2
        out[:, self.entries] += d_resid


class BlockResiduals:
    """Residuals with a dense covariance along occasions within every lowest unit.

    Parameters
    ----------
    effect_values, columns, row_starts
        As for :class:`IndependentResiduals`.
    occasion : ndarray of int
        The occasion (0 .. T - 1) of every row, distinct within a unit.
    entries : ndarray of int, shape (T, T)
        The entry of the variance vector that is every entry of ``R`` (symmetric; -1 for 0).
    unit_clusters : _Segments
        The lowest units of every top-level cluster.

    Raises
    ------
    ValueError
        Two rows of one unit at one occasion.
    """

    def __init__(self, effect_values, columns, row_starts, occasion, entries, unit_clusters: _Segments):
        n_rows, u = effect_values.shape
        counts = np.diff(np.append(row_starts, n_rows))
        unit = np.repeat(np.arange(len(row_starts)), counts)
        n_times = len(entries)
        present = np.zeros((len(row_starts), n_times), dtype=bool)
        present[unit, occasion] = True
        if present.sum() < n_rows:
            raise ValueError("two observations of one unit share an occasion; a residual block has one row per "
                             "occasion")
        stacked = np.zeros((len(row_starts), n_times, u + columns.shape[1]))
        stacked[unit, occasion] = np.column_stack([effect_values, columns])
        self.entries = np.asarray(entries, dtype=np.intp)
        diagonal, off = np.diagonal(self.entries), self.entries[~np.eye(n_times, dtype=bool)]
        self.covariances = np.unique(off[off >= 0])
        self.variances = np.unique(diagonal)
        self.u = u
        self.unit_clusters = unit_clusters
        self._rows = stacked  # [U, W] of every unit at its occasions, zero where absent
        self._absent = ~present
        masks, self._pattern = np.unique(present, axis=0, return_inverse=True)
        self._pattern = self._pattern.ravel()
        self._held = masks[:, :, None] & masks[:, None, :]  # the entries of R every pattern holds
        # every parameter's entries of R, as a (T * T, parameters) map for the sums by cluster
        parameters = np.unique(self.entries[self.entries >= 0])
        self._parameters = parameters
        self._to_parameters = (self.entries.reshape(-1, 1) == parameters[None, :]).astype(float)

    def covariance(self, variances: np.ndarray) -> np.ndarray:
        """``R`` over every occasion at the variance vector ``variances``."""
        return np.where(self.entries >= 0, variances[np.maximum(self.entries, 0)], 0.0)

    def forward(self, variances: np.ndarray) -> WhitenedSums | None:
        """The sums, or None where some pattern's ``R_p`` is not positive definite.

        Every pattern of occasions present inverts its ``R_p`` once (padded with the identity at the
        absent occasions, all patterns in one batch); a unit's rows at its absent occasions are zero,
        so the padded inverse whitens every unit at once.
        """
        full = self.covariance(variances)
        padded = np.where(self._held, full[None], np.eye(len(full))[None])  # identity at the absent occasions
        try:
            factor = np.linalg.cholesky(padded)
        except np.linalg.LinAlgError:
            return None
        inverses = np.linalg.inv(padded)
        logdets = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(1)
        inverse = inverses[self._pattern]
        whitened = np.matmul(inverse, self._rows)  # V = R^-1 [U, W], (units, T, u + m)
        gram = np.matmul(self._rows.transpose(0, 2, 1), whitened).transpose(1, 2, 0)  # units last
        u = self.u
        return WhitenedSums(np.ascontiguousarray(gram[:u, :u]), np.ascontiguousarray(gram[:u, u:]),
                            self.unit_clusters.sum_last(gram[u:, u:]),
                            self.unit_clusters.sum_last(logdets[self._pattern]), (inverse, whitened))

    def backward(self, sums: WhitenedSums, seed_logdet: float, a_bar, b_bar, weight, out: np.ndarray) -> None:
        """Add the derivative in every parameter of ``R`` to ``out``: ``Rbar = -V Gbar V' + s R^{-1}``
        per unit, on the entries it holds, summed by cluster over the entries each parameter fills."""
        inverse, whitened = sums.state
        u, size = self.u, whitened.shape[2]
        g_bar = np.zeros((len(whitened), size, size))
        g_bar[:, :u, :u] = a_bar.transpose(2, 0, 1)
        if b_bar is not None:
            half = 0.5 * b_bar.transpose(2, 0, 1)
            g_bar[:, :u, u:], g_bar[:, u:, :u] = half, half.transpose(0, 2, 1)
        if weight is not None:
            g_bar[:, u:, u:] = weight
        r_bar = seed_logdet * inverse - np.matmul(np.matmul(whitened, g_bar), whitened.transpose(0, 2, 1))
        if seed_logdet:  # the identity at the absent occasions is no entry of R
            n_times = r_bar.shape[1]
            r_bar[:, np.arange(n_times), np.arange(n_times)] -= seed_logdet * self._absent
        by_cluster = self.unit_clusters.sum(r_bar.reshape(len(r_bar), -1))
        out[:, self._parameters] += by_cluster @ self._to_parameters
