"""Gaussian log-likelihood of nested random intercepts and slopes, evaluated from per-unit sums.

Like :mod:`sm_multisem.likelihood`, this module knows normal vectors with a nested block
covariance and nothing about structural equation models. Every unit ``u`` of level ``l``
carries the effects ``b_u ~ N(0, G_l)`` on the columns ``Z = [1, x]`` of its rows (a 2 x 2
unstructured ``G_l``; a level with a random intercept only has ``G_l = diag(s, 0)``), so a
top-level cluster has

.. math:: \\Sigma = \\sigma^2 I + \\sum_l \\sum_{u \\in l} Z_u G_l Z_u'.

As in the random-intercept recursion, everything the likelihood needs is ``log|Sigma|``
and ``C = W' Sigma^{-1} W`` (``W = [X, y]``), and both follow from a recursion up the
levels that never forms ``Sigma``. A unit with covariance block ``B`` is summarised in
information form,

* ``A = Z' B^{-1} Z`` (2 x 2; the inverse of the covariance of the unit's GLS intercept
  and slope, and kept as the information because it is singular for a unit with one row
  or a constant ``x``),
* ``b = Z' B^{-1} W`` (2 x m),
* its share of ``log|B|`` and of ``C``.

Adding the unit's effects (``B -> B + Z G Z'``) with ``N = I + A G`` gives, by Woodbury,

.. math::

    \\log|B| \\mathrel{+}= \\log|N|, \\qquad A \\to N^{-1} A, \\qquad b \\to N^{-1} b, \\qquad
    C \\mathrel{-}= b' G N^{-1} b,

which is the scalar ``h -> h + s`` of the intercept recursion in matrix form
(``A^{-1} -> A^{-1} + G``); pooling sibling units into their parent sums ``A`` and ``b``.
``N`` is invertible whenever ``G`` is positive semi-definite, singular ``G`` included.
The lowest units start from their rows, ``A = Z'Z / sigma^2``, ``b = Z'W / sigma^2``, and
``C`` from ``W'W / sigma^2``: sums computed once, so an evaluation costs O(units).

The derivatives are exact, by reverse-mode differentiation of the same recursion: the
likelihood only ever needs ``d log|Sigma_k| + tr(A dC_k)`` for one symmetric ``A`` (see
:class:`~sm_multisem.likelihood.ClusterMoments`), so one pass back down the levels, with
the adjoints of every unit's ``N``, ``A`` and ``b``, gives it for every variance and
covariance at once.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .likelihood import NestedNormal, _segment_outer_sums, _Segments

__all__ = ["NestedSlopesNormal"]


def _units_last(stack: np.ndarray) -> np.ndarray:
    """A stack of per-unit matrices (units, n, k) rearranged as (n, k, units), every entry a contiguous row."""
    return np.ascontiguousarray(np.moveaxis(stack, 0, -1))


def _transpose(matrix: np.ndarray) -> np.ndarray:
    """Every unit's matrix transposed, as a view: (n, k, units) -> (k, n, units)."""
    return matrix.transpose(1, 0, 2)


def _matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left_u @ right_u`` for every unit ``u``: (n, 2, units) and (2, k, units) -> (n, k, units).

    ``einsum`` with the units last runs one contiguous loop over the units per entry: several
    times faster than a stacked ``matmul`` of tiny matrices, and free of temporaries.
    """
    return np.einsum("iju,jku->iku", left, right)


def _times_transpose(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left_u @ right_u'`` for every unit ``u``: (2, k, units) twice -> (2, 2, units)."""
    return np.einsum("iku,jku->iju", left, right)


def _trace_product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``tr(left_u' right_u)``, the sum of the entrywise products, for every unit ``u``: (n, k, units) -> (units,)."""
    return np.einsum("iju,iju->u", left, right)


def _times_constant(matrix: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """``matrix_u @ constant`` for every unit ``u`` and one k x k' ``constant``: (n, k, units) -> (n, k', units)."""
    return np.matmul(constant.T, matrix)


def _constant_times(constant: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``constant @ matrix_u`` for every unit ``u`` and one n x 2 ``constant``: (2, k, units) -> (n, k, units)."""
    return (constant @ matrix.reshape(2, -1)).reshape((len(constant),) + matrix.shape[1:])


def _inverse_2x2(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and determinants of every unit's 2 x 2 matrix, (2, 2, units), in closed form."""
    det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
    inverse = np.empty_like(matrix)
    inverse[0, 0], inverse[1, 1] = matrix[1, 1], matrix[0, 0]
    np.negative(matrix[0, 1], out=inverse[0, 1])
    np.negative(matrix[1, 0], out=inverse[1, 0])
    inverse /= det
    return inverse, det


class _Step:
    """One level's effects added to its units: the forward quantities the backward pass reuses.

    Every per-unit matrix has the units on its last axis (``a``, ``n_inv``, ``a_new``:
    (2, 2, units); ``b``, ``b_new``: (2, m, units); ``removed``: (m, m, units)), so each
    entry is a contiguous row; ``g`` (2 x 2) is shared by the units.
    """

    __slots__ = ("a", "a_new", "b", "b_new", "g", "log_det", "n_inv", "removed")

    def __init__(self, a: np.ndarray, b: np.ndarray, g: np.ndarray):
        self.a, self.b, self.g = a, b, g
        n = _times_constant(a, g)  # N = I + A G
        n[0, 0] += 1.0
        n[1, 1] += 1.0
        self.n_inv, det = _inverse_2x2(n)
        self.a_new = _matmul(self.n_inv, a)
        self.b_new = _matmul(self.n_inv, b)
        self.log_det = np.log(det)
        # b' G N^{-1} b, what the effects remove from C
        self.removed = _matmul(_transpose(b), _constant_times(g, self.b_new))


class _SlopeMoments:
    """``log|Sigma_k|`` and ``C_k`` per cluster, with their derivatives on demand.

    The same interface as :class:`~sm_multisem.likelihood.ClusterMoments` (``logdet``,
    ``cross``, ``d_logdet``, ``contract``), which is all the log-likelihoods need.
    """

    def __init__(self, lik: NestedSlopesNormal, variances: np.ndarray):
        self._lik = lik
        self._resid = float(variances[lik.residual_variances[0]])
        self._g = lik.effect_covariances(variances)
        resid = self._resid
        a, b = lik._zz / resid, lik._zw / resid
        logdet = lik.cluster_size * np.log(resid)
        cross = lik._ww / resid
        steps: list[_Step] = []
        for level in range(lik.n_levels - 1, -1, -1):
            step = _Step(a, b, self._g[level])
            steps.insert(0, step)
            logdet = logdet + lik._clusters[level].sum_last(step.log_det)
            cross = cross - lik._clusters[level].sum_last(step.removed)
            if level > 0:
                a, b = lik._children[level - 1].sum_last(step.a_new), lik._children[level - 1].sum_last(step.b_new)
        self._steps = steps
        self.logdet = logdet
        # (m, m, clusters) back to the (clusters, m, m) of ClusterMoments
        self.cross = np.ascontiguousarray(np.moveaxis(0.5 * (cross + _transpose(cross)), -1, 0))

    @cached_property
    def d_logdet(self) -> np.ndarray:
        """Derivative of ``log|Sigma_k|`` in every parameter, (n_clusters, n_var)."""
        return self._backward(1.0, None)

    def contract(self, weight: np.ndarray) -> np.ndarray:
        """``tr(A dC_k / d theta_v)`` for every cluster ``k`` and parameter ``v``."""
        return self._backward(0.0, np.asarray(weight, dtype=float))

    def gradient(self, weight: np.ndarray) -> np.ndarray:
        """``d log|Sigma_k| + tr(A dC_k)``, in one pass: the pass is linear in its two seeds."""
        return self._backward(1.0, np.asarray(weight, dtype=float))

    def _backward(self, seed_logdet: float, weight: np.ndarray | None) -> np.ndarray:
        """``seed_logdet * d log|Sigma_k| + tr(weight dC_k)`` by one pass down the levels.

        For a level's step (``N = I + A G``, ``A' = N^{-1} A``, ``b' = N^{-1} b``, removed
        ``R = b' G b'_new``), with adjoints ``Abar'``, ``bbar'`` from the parent and
        ``Rbar = -weight``:

        .. math::

            t = b \\bar R, \\quad
            \\bar b_t = \\bar b' + G t, \\quad
            \\bar N = s N^{-T} - N^{-T}(\\bar A' A'^T + \\bar b_t b'^T), \\quad
            \\bar G = A \\bar N + t b'^T,

            \\bar A = \\bar N G + N^{-T} \\bar A', \\qquad
            \\bar b = N^{-T} \\bar b_t + G b' \\bar R = N^{-T} (\\bar b_t + G t),

        the last because ``G N^{-1} = (I + G A)^{-1} G = N^{-T} G``.
        """
        lik = self._lik
        out = np.zeros((len(self.logdet), lik.n_var))
        removed_bar = None if weight is None else -weight
        a_bar = b_bar = None  # the adjoints of the level above, per unit of that level
        for level, step in enumerate(self._steps):
            n_inv_t = _transpose(step.n_inv)
            if a_bar is None:
                a_new_bar = np.zeros_like(step.a)
                b_new_bar = None if weight is None else np.zeros_like(step.b)
            else:
                parent = lik._parents[level - 1]
                a_new_bar = a_bar.take(parent, axis=-1)
                b_new_bar = None if weight is None else b_bar.take(parent, axis=-1)
            products = _matmul(a_new_bar, step.a_new)  # Abar' A'^T, A' symmetric
            if weight is not None:
                t = _times_constant(step.b, removed_bar)
                g_t = _constant_times(step.g, t)
                b_total = b_new_bar + g_t
                products += _times_transpose(b_total, step.b_new)
                b_bar = _matmul(n_inv_t, b_total + g_t)
            n_bar = seed_logdet * n_inv_t - _matmul(n_inv_t, products)
            g_bar = _matmul(step.a, n_bar)
            if weight is not None:
                g_bar += _times_transpose(t, step.b_new)
            a_bar = _times_constant(n_bar, step.g) + _matmul(n_inv_t, a_new_bar)
            self._add_effect_gradient(out, level, g_bar)
        resid = self._resid
        per_unit = _trace_product(a_bar, step.a)  # d(Z'Z/r)/dr = -(Z'Z/r)/r
        if weight is not None:
            per_unit += _trace_product(b_bar, step.b)
        d_resid = -lik._clusters[-1].sum_last(per_unit) / resid + seed_logdet * lik.cluster_size / resid
        if weight is not None:
            d_resid -= weight.ravel() @ lik._ww.reshape(weight.size, -1) / resid**2
        out[:, lik.residual_variances[0]] += d_resid
        return out

    def _add_effect_gradient(self, out: np.ndarray, level: int, g_bar: np.ndarray) -> None:
        """Sum the units' ``dG`` adjoints by cluster into the level's variance (and covariance) columns."""
        lik = self._lik
        sums = lik._clusters[level].sum_last(g_bar.reshape(4, -1))  # G_00, G_01, G_10, G_11
        out[:, lik.intercept_entries[level]] += sums[0]
        if lik.slope_entries[level] is not None:
            covariance, slope = lik.slope_entries[level]
            out[:, covariance] += sums[1] + sums[2]
            out[:, slope] += sums[3]


class NestedSlopesNormal(NestedNormal):
    """Normal model with nested random intercepts and slopes, and independent residuals.

    Parameters
    ----------
    columns : ndarray, shape (n_rows, m)
        Data columns ``[X, y]``, rows sorted so that every unit at every level is a
        contiguous run.
    row_starts, child_starts
        As for :class:`~sm_multisem.likelihood.NestedNormal`.
    slope_values : ndarray, shape (n_rows,)
        The variable ``x`` whose slope is random, in the order of ``columns``.
    intercept_entries : sequence of int
        For each level (top first), the parameter holding the variance of the random intercept.
    slope_entries : sequence of (int, int) or None
        For each level (top first), the parameters holding the covariance of the intercept
        and the slope and the variance of the slope; None for a level with a random intercept only.
    residual_entry : int
        The parameter holding the residual variance.
    cluster_weights : ndarray, optional
        Sampling weight of every top-level cluster.

    Notes
    -----
    ``cholesky_blocks`` lists ``(intercept variance, covariance, slope variance)`` of every
    level with a slope: :class:`~sm_multisem.estimation.ProfiledObjective` optimises their
    relative Cholesky factor, lme4's ``theta``.
    """

    _sums_within_cells = False  # the moments come from Z'Z, Z'W and W'W (see __init__)

    def __init__(self, columns: np.ndarray, row_starts: np.ndarray, child_starts, slope_values: np.ndarray,
                 intercept_entries, slope_entries, residual_entry: int, cluster_weights=None, centring=None):
        columns = np.asarray(columns, dtype=float)
        n_rows = len(columns)
        n_levels = len(child_starts) + 1
        sizes = [len(s) for s in child_starts] + [len(row_starts)]
        unit_variance = [np.full(n, entry, dtype=np.intp) for n, entry in zip(sizes, intercept_entries)]
        super().__init__(columns, row_starts, child_starts, unit_variance,
                         np.full(n_rows, residual_entry, dtype=np.intp), cluster_weights=cluster_weights,
                         centring=centring)
        if len(slope_entries) != n_levels:
            raise ValueError(f"slope_entries needs one entry per level ({n_levels}), got {len(slope_entries)}")
        self.intercept_entries = tuple(int(e) for e in intercept_entries)
        self.slope_entries = tuple(None if e is None else (int(e[0]), int(e[1])) for e in slope_entries)
        self.cholesky_blocks = np.array([(i, *s) for i, s in zip(self.intercept_entries, self.slope_entries)
                                         if s is not None], dtype=np.intp).reshape(-1, 3)
        self.level_variances = np.unique(np.r_[self.intercept_entries, self.cholesky_blocks[:, 2]]).astype(np.intp)
        self.n_var = int(max(residual_entry, *self.intercept_entries, *self.cholesky_blocks.ravel())) + 1

        # Z = [1, x] of every lowest unit: Z'Z, Z'W, and W'W summed per cluster, in one pass over the rows,
        # units last as the recursion keeps them
        x = np.asarray(slope_values, dtype=float)
        units = _Segments(row_starts, np.repeat(np.arange(len(row_starts)), np.diff(np.append(row_starts, n_rows))))
        counts = np.diff(np.append(row_starts, n_rows)).astype(float)
        sum_x = units.sum(x)
        self._zz = np.array([[counts, sum_x], [sum_x, units.sum(x * x)]])
        self._zw = _units_last(_segment_outer_sums(np.column_stack([np.ones(n_rows), x]), columns, units))
        cluster_rows = np.asarray(row_starts)[self._cluster_starts[-1]]
        row_cluster = np.repeat(np.arange(len(cluster_rows)), np.diff(np.append(cluster_rows, n_rows)))
        self._ww = _units_last(_segment_outer_sums(columns, columns, _Segments(cluster_rows, row_cluster),
                                                   symmetric=True))

    def effect_covariances(self, variances: np.ndarray) -> list[np.ndarray]:
        """``G_l`` of every level (top first), 2 x 2 over (intercept, slope)."""
        out = []
        for intercept, slope in zip(self.intercept_entries, self.slope_entries):
            g = np.zeros((2, 2))
            g[0, 0] = variances[intercept]
            if slope is not None:
                g[0, 1] = g[1, 0] = variances[slope[0]]
                g[1, 1] = variances[slope[1]]
            out.append(g)
        return out

    def moments(self, variances: np.ndarray) -> _SlopeMoments:
        """Cluster moments for the variance parameters (see the class docstring)."""
        return _SlopeMoments(self, np.asarray(variances, dtype=float))

    def random_effects(self, beta: np.ndarray, variances: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError("predictions of the random effects are not implemented for random slopes")

    def random_effects_variance(self, variances: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError("conditional variances of the random effects are not implemented for random "
                                  "slopes")
