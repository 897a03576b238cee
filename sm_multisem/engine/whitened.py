"""The residuals' share of the recursion: every lowest unit's prewhitened sums, and their adjoints.

The recursion of :mod:`sm_multisem.engine.effects` starts from the lowest units with the residual
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

from .segments import Segments, segment_outer_sums

__all__ = ["AR1Residuals", "BlockResiduals", "IndependentResiduals", "WhitenedSums"]


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
    clusters, unit_clusters : Segments
        The rows, and the lowest units, of every top-level cluster.
    """

    def __init__(self, effect_values, columns, row_starts, row_variance, residual_variances, clusters: Segments,
                 unit_clusters: Segments):
        self.unit_clusters = unit_clusters
        n_rows = len(columns)
        counts = np.diff(np.append(row_starts, n_rows))
        units = Segments(row_starts, np.repeat(np.arange(len(row_starts)), counts))
        slot = np.searchsorted(residual_variances, row_variance)
        zz, zw, ww, resid_counts = [], [], [], []
        for r in range(len(residual_variances)):
            share = (slot == r).astype(float) if len(residual_variances) > 1 else None
            z = effect_values if share is None else effect_values * share[:, None]
            zz.append(np.moveaxis(segment_outer_sums(z, effect_values, units, symmetric=True), 0, -1))
            zw.append(np.moveaxis(segment_outer_sums(z, columns, units), 0, -1))
            w = columns if share is None else columns * share[:, None]
            ww.append(np.moveaxis(segment_outer_sums(w, columns, clusters, symmetric=True), 0, -1))
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


class _DenseBlocks:
    """What every dense residual structure shares: the rows of every lowest unit at its slots (zero at the
    absent ones), the whitening by a padded ``R^{-1}`` per unit, and the adjoint ``Rbar`` per unit.

    A subclass gives ``_inverses(variances)`` (the padded inverse and ``log|R|`` of every unit, or None
    where some ``R`` is not positive definite) and ``_add_gradient(state, r_bar, out)``.
    """

    def __init__(self, effect_values, columns, row_starts, slot, n_slots: int, unit_clusters: Segments):
        n_rows, u = effect_values.shape
        counts = np.diff(np.append(row_starts, n_rows))
        unit = np.repeat(np.arange(len(row_starts)), counts)
        present = np.zeros((len(row_starts), n_slots), dtype=bool)
        present[unit, slot] = True
        if present.sum() < n_rows:
            raise ValueError("two observations of one unit share an occasion; a residual block has one row per "
                             "occasion")
        stacked = np.zeros((len(row_starts), n_slots, u + columns.shape[1]))
        stacked[unit, slot] = np.column_stack([effect_values, columns])
        self.u = u
        self.unit_clusters = unit_clusters
        # [U, W] of every unit at its slots, zero where absent, the units last as the recursion keeps them
        # (einsum then runs one contiguous loop over the units per entry of these small matrices)
        self._rows = np.ascontiguousarray(stacked.transpose(1, 2, 0))
        self._present = present

    def forward(self, variances: np.ndarray) -> WhitenedSums | None:
        """The sums, or None where some unit's ``R`` is not positive definite.

        A unit's rows at its absent slots are zero, so its inverse padded with the identity there
        whitens all units at once.
        """
        inverted = self._inverses(variances)
        if inverted is None:
            return None
        inverse, logdet, state = inverted  # inverse: (T, T, units)
        whitened = np.einsum("tsn,skn->tkn", inverse, self._rows)  # V = R^-1 [U, W]
        gram = np.einsum("tin,tjn->ijn", self._rows, whitened)
        u = self.u
        return WhitenedSums(np.ascontiguousarray(gram[:u, :u]), np.ascontiguousarray(gram[:u, u:]),
                            self.unit_clusters.sum_last(gram[u:, u:]), self.unit_clusters.sum_last(logdet),
                            (inverse, whitened, state))

    def backward(self, sums: WhitenedSums, seed_logdet: float, a_bar, b_bar, weight, out: np.ndarray) -> None:
        """Add the derivative in every parameter of ``R`` to ``out``, from ``Rbar = -V Gbar V' + s R^{-1}``
        per unit on the entries it holds, (T, T, units)."""
        inverse, whitened, state = sums.state
        u, size, n_units = self.u, whitened.shape[1], whitened.shape[2]
        g_bar = np.zeros((size, size, n_units))
        g_bar[:u, :u] = a_bar
        if b_bar is not None:
            g_bar[:u, u:], g_bar[u:, :u] = 0.5 * b_bar, 0.5 * b_bar.transpose(1, 0, 2)
        if weight is not None:
            g_bar[u:, u:] = weight[:, :, None]
        r_bar = seed_logdet * inverse - np.einsum("tjn,sjn->tsn", np.einsum("tin,ijn->tjn", whitened, g_bar),
                                                  whitened)
        if seed_logdet:  # the identity at the absent slots is no entry of R
            n_slots = r_bar.shape[0]
            r_bar[np.arange(n_slots), np.arange(n_slots)] -= seed_logdet * ~self._present.T
        self._add_gradient(state, r_bar, out)


class BlockResiduals(_DenseBlocks):
    """Residuals with a dense covariance along occasions within every lowest unit, every entry of ``R`` a
    parameter or a structural zero (unstructured, Toeplitz).

    Parameters
    ----------
    effect_values, columns, row_starts
        As for :class:`IndependentResiduals`.
    occasion : ndarray of int
        The occasion (0 .. T - 1) of every row, distinct within a unit.
    entries : ndarray of int, shape (T, T)
        The entry of the variance vector that is every entry of ``R`` (symmetric; -1 for 0).
    unit_clusters : Segments
        The lowest units of every top-level cluster.

    Raises
    ------
    ValueError
        Two rows of one unit at one occasion.
    """

    def __init__(self, effect_values, columns, row_starts, occasion, entries, unit_clusters: Segments):
        super().__init__(effect_values, columns, row_starts, occasion, len(entries), unit_clusters)
        self.entries = np.asarray(entries, dtype=np.intp)
        off = self.entries[~np.eye(len(entries), dtype=bool)]
        self.covariances = np.unique(off[off >= 0])
        masks, self._pattern = np.unique(self._present, axis=0, return_inverse=True)
        self._pattern = self._pattern.ravel()
        self._held = masks[:, :, None] & masks[:, None, :]  # the entries of R every pattern holds
        # every parameter's entries of R, as a (T * T, parameters) map for the sums by cluster
        parameters = np.unique(self.entries[self.entries >= 0])
        self._parameters = parameters
        self._to_parameters = (self.entries.reshape(-1, 1) == parameters[None, :]).astype(float)

    def covariance(self, variances: np.ndarray) -> np.ndarray:
        """``R`` over every occasion at the variance vector ``variances``."""
        return np.where(self.entries >= 0, variances[np.maximum(self.entries, 0)], 0.0)

    def _inverses(self, variances: np.ndarray):
        """Every pattern of occasions present inverts its ``R_p`` once (padded with the identity at the
        absent occasions, all patterns in one batch)."""
        full = self.covariance(variances)
        padded = np.where(self._held, full[None], np.eye(len(full))[None])
        try:
            factor = np.linalg.cholesky(padded)
        except np.linalg.LinAlgError:
            return None
        logdets = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(1)
        inverses = np.ascontiguousarray(np.linalg.inv(padded).transpose(1, 2, 0))
        return inverses[..., self._pattern], logdets[self._pattern], None

    def _add_gradient(self, state, r_bar: np.ndarray, out: np.ndarray) -> None:
        """``Rbar`` summed by cluster, then over the entries every parameter fills."""
        n_slots = len(r_bar)
        by_cluster = self.unit_clusters.sum_last(r_bar.reshape(n_slots * n_slots, -1))
        out[:, self._parameters] += by_cluster.T @ self._to_parameters


class AR1Residuals(_DenseBlocks):
    """Residuals correlated ``rho^|t_i - t_j|`` within every lowest unit, in any real time, each row with
    the variance of its label: ``R_ij = sqrt(v_i v_j) rho^|t_i - t_j|`` (nlme ``corCAR1``; with a
    variance per occasion, ``corAR1`` with ``varIdent(form = ~ 1 | occasion)``).

    Parameters
    ----------
    effect_values, columns, row_starts
        As for :class:`IndependentResiduals`.
    time : ndarray of float
        The time of every row, distinct within a unit.
    row_variance : ndarray of int
        The variance entry of every row.
    rho : int
        The entry of the correlation.
    unit_clusters : Segments
    """

    def __init__(self, effect_values, columns, row_starts, time, row_variance, rho: int, unit_clusters: Segments):
        n_rows = len(columns)
        counts = np.diff(np.append(row_starts, n_rows))
        unit = np.repeat(np.arange(len(row_starts)), counts)
        order = np.lexsort((time, unit))
        slot = np.empty(n_rows, dtype=np.intp)
        slot[order] = np.arange(n_rows) - np.repeat(np.asarray(row_starts), counts)  # rank of the time in its unit
        super().__init__(effect_values, columns, row_starts, slot, int(counts.max()), unit_clusters)
        at = np.zeros(self._present.shape)
        at[unit, slot] = time
        self._gap = np.abs(at[:, :, None] - at[:, None, :])
        #: whether some gap between two times of a unit is not whole (rho must then be positive)
        self.fractional = bool(np.any(self._gap != np.round(self._gap)))
        if np.any((self._gap == 0) & self._pairs() & ~np.eye(self._gap.shape[1], dtype=bool)[None]):
            raise ValueError("two observations of one unit share a time; AR(1) residuals need distinct times")
        self._linked = self._present[:, 1:]  # a next row exists
        self._step = np.where(self._linked, np.diff(at, axis=1), 1.0)  # from a row to the next in time
        self._variance = np.zeros(self._present.shape, dtype=np.intp)
        self._variance[unit, slot] = row_variance
        self.rho = int(rho)
        self.covariances = np.zeros(0, dtype=np.intp)

    def _pairs(self) -> np.ndarray:
        return self._present[:, :, None] & self._present[:, None, :]

    def _inverses(self, variances: np.ndarray):
        """``R^{-1}`` in closed form: the correlation is Markov along the sorted times, so its inverse is
        tridiagonal, with ``phi_i = rho^(t_{i+1} - t_i)`` between neighbours,

        .. math:: Q_{ii} = \\frac{1}{1 - \\phi_{i-1}^2} + \\frac{\\phi_i^2}{1 - \\phi_i^2}, \\qquad
                  Q_{i,i+1} = -\\frac{\\phi_i}{1 - \\phi_i^2}, \\qquad
                  \\log|C| = \\sum_i \\log(1 - \\phi_i^2),

        (``phi`` 0 before the first row and past the last), and ``R^{-1} = S^{-1} Q S^{-1}`` with ``S``
        the rows' standard deviations: O(units x rows), no factorisation."""
        rho = variances[self.rho]
        if abs(rho) >= 1.0 or (rho < 0 and self.fractional):  # rho^g of a negative rho is real at whole gaps only
            return None
        scale = np.sqrt(np.where(self._present, variances[self._variance], 1.0))
        phi = np.where(self._linked, rho ** self._step, 0.0)  # (units, slots - 1)
        keep = 1.0 - phi * phi
        before, after = np.pad(phi, ((0, 0), (1, 0))), np.pad(phi, ((0, 0), (0, 1)))
        n_units, n_slots = scale.shape
        inverse = np.zeros((n_units, n_slots, n_slots))
        diagonal = np.arange(n_slots)
        inverse[:, diagonal, diagonal] = 1.0 / (1.0 - before * before) + after * after / (1.0 - after * after)
        off = -phi / keep
        inverse[:, diagonal[:-1], diagonal[1:]] = inverse[:, diagonal[1:], diagonal[:-1]] = off
        inverse /= scale[:, :, None] * scale[:, None, :]
        logdet = 2.0 * np.log(scale).sum(1) + np.log(keep).sum(1)
        return np.ascontiguousarray(inverse.transpose(1, 2, 0)), logdet, (scale, rho)

    def _add_gradient(self, state, r_bar: np.ndarray, out: np.ndarray) -> None:
        """``dR_ij/drho = |t_i - t_j| R_ij / rho`` and ``dR_ij/dv_a = R_ij (1{i = a} + 1{j = a}) / (2 v_a)``,
        per unit, then by cluster."""
        scale, rho = state
        r_bar = r_bar.transpose(2, 0, 1)  # units first, as the times are kept
        pairs = self._pairs()
        outer = scale[:, :, None] * scale[:, None, :]  # sqrt(v_i v_j)
        padded = np.where(pairs, outer * rho ** self._gap, 0.0)
        weighted = np.where(pairs, r_bar * padded, 0.0)
        moved = pairs & (self._gap > 0)  # d rho^g / d rho = g rho^(g - 1), also at rho = 0
        d_rho = np.where(moved, self._gap * rho ** np.where(moved, self._gap - 1.0, 1.0), 0.0)
        per_unit_rho = np.einsum("nij,nij,nij->n", r_bar, d_rho, outer)
        clusters = self.unit_clusters
        out[:, self.rho] += clusters.sum(per_unit_rho)
        diagonal = np.diagonal(padded, axis1=1, axis2=2)
        per_slot = np.where(self._present, weighted.sum(2) / np.where(self._present, diagonal, 1.0), 0.0)
        n_clusters, n_var = out.shape
        key = clusters.ids[:, None] * n_var + self._variance
        out += np.bincount(key[self._present], weights=per_slot[self._present],
                           minlength=n_clusters * n_var).reshape(out.shape)
