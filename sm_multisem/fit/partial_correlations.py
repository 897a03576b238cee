"""A correlation matrix by its canonical partial correlations: positive definite at every point of a box.

The free covariances of sibling slots (``relax_covariance(..., among=...)``: one parameter per pair
of slots) make a correlation matrix ``R`` over the slots, times their standard deviations. Taken
entry by entry, ``R`` leaves the positive definite matrices long before any entry reaches 1, and
on ragged data the maximum often lies near that edge: a bounded optimizer then stalls against it.
Taken by the canonical partial correlations ``z_ij`` (``i > j``; Lewandowski, Kurowicka and Joe
2009), every ``z`` in ``(-1, 1)`` gives a positive definite ``R``, and every one is reached:

.. math::

    L_{i0} = z_{i0}, \\qquad L_{ij} = z_{ij} \\prod_{k<j} \\sqrt{1 - z_{ik}^2}, \\qquad
    L_{ii} = \\prod_{k<i} \\sqrt{1 - z_{ik}^2}, \\qquad R = L L',

every row of ``L`` of unit length. ``z_ij`` is the partial correlation of slots ``i`` and ``j`` given
the slots before ``j``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["correlation_matrix", "correlation_gradient", "partial_correlations"]


def correlation_matrix(z: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``R`` and ``L`` from the partial correlations ``z`` (the strict lower triangle, row by row)."""
    factor = np.zeros((size, size))
    factor[np.tril_indices(size, -1)] = z
    for i in range(size):
        remaining = 1.0
        for j in range(i):
            factor[i, j] *= np.sqrt(remaining)
            remaining -= factor[i, j] ** 2
        factor[i, i] = np.sqrt(max(remaining, 0.0))
    return factor @ factor.T, factor


def correlation_gradient(z: np.ndarray, factor: np.ndarray, gradient_r: np.ndarray) -> np.ndarray:
    """The gradient in ``z`` of a function of ``R`` whose gradient in every ``R_ij`` (``i > j``, one entry
    per pair, the strict lower triangle row by row) is ``gradient_r``.

    Only row ``i`` of ``L`` moves with ``z_i.``: ``dL_ij/dz_im`` is ``prod_{k<j} c_k`` at ``m = j`` and
    ``-L_ij z_im / c_m^2`` at ``m < j`` (``c_k = sqrt(1 - z_ik^2)``, ``j = i`` included), so
    ``dR_ib/dz_im = dL_i./dz_im . L_b.`` for every ``b != i``.
    """
    size = len(factor)
    lower = np.zeros((size, size))
    lower[np.tril_indices(size, -1)] = z
    g = np.zeros((size, size))
    g[np.tril_indices(size, -1)] = gradient_r
    g = g + g.T  # R_ib for every b != i, each pair's gradient on both sides
    out = np.zeros((size, size))
    for i in range(1, size):
        zi = lower[i, :i]
        # d(row i of L)/d z_im, one row per m
        d_row = np.zeros((i, size))
        prefix = np.concatenate([[1.0], np.cumprod(np.sqrt(1.0 - zi**2))[:-1]])  # prod_{k<j} c_k
        d_row[np.arange(i), np.arange(i)] = prefix
        for m in range(i):
            ratio = -zi[m] / (1.0 - zi[m] ** 2)
            d_row[m, m + 1:i + 1] = factor[i, m + 1:i + 1] * ratio
        out[i, :i] = d_row @ (factor.T @ g[i])  # sum over b of g_ib dL_i./dz . L_b.
    return out[np.tril_indices(size, -1)]


def partial_correlations(matrix: np.ndarray, bound: float) -> np.ndarray:
    """The partial correlations of a correlation matrix (the inverse of :func:`correlation_matrix`), each
    kept inside ``(-bound, bound)``; a matrix that is not positive definite is factored as far as it is."""
    size = len(matrix)
    factor = np.zeros((size, size))
    for j in range(size):
        pivot = matrix[j, j] - factor[j, :j] @ factor[j, :j]
        factor[j, j] = np.sqrt(max(pivot, 0.0))
        if factor[j, j] > 0:
            factor[j + 1:, j] = (matrix[j + 1:, j] - factor[j + 1:, :j] @ factor[j, :j]) / factor[j, j]
    z = np.zeros((size, size))
    for i in range(1, size):
        remaining = 1.0
        for j in range(i):
            z[i, j] = np.clip(factor[i, j] / np.sqrt(remaining), -bound, bound) if remaining > 0 else 0.0
            remaining = max(remaining - factor[i, j] ** 2, 0.0)
    return z[np.tril_indices(size, -1)]
