"""The inverse covariance of nested random intercepts with independent residuals, never formed.

:meth:`~sm_multisem.engine.likelihood.NestedNormal.precision` gives, at some variances, what
``K = Sigma^{-1}`` of every cluster is made of, from the recursion's units: with ``h_v`` the
variance of unit ``v``'s GLS mean before its own intercept ``tau_v`` is added and ``m_v(a)``
the GLS mean of a column ``a`` over its rows, the recursion's pooling telescopes to

.. math::

    a'Ka = \\sum_i a_i^2 / \\sigma_i^2 - \\sum_v c_v\\, m_v(a)^2, \\qquad
    c_v = \\frac{\\tau_v}{h_v (h_v + \\tau_v)},

where ``m_v`` weighs the rows of ``v``: ``lambda_i = h_u / sigma_i^2`` in the row's lowest unit
``u``, times the *step* ``h_p / (h_c + tau_c)`` from a child ``c`` up to its parent ``p``. So the
weight of a row (or of a unit) in any ancestor ``u`` is a product of steps, ``omega_{u,v}``, and
every entry of ``K`` between two units or rows is a short sum along their ancestors:

* for ``v`` and ``w`` in different children of their lowest common ancestor ``x``,
  ``z_v'Kz_w = -omega_{x,v} omega_{x,w} gamma_x`` with ``gamma_x = sum_{u >= x} c_u omega_{u,x}^2``;
* for ``w`` inside ``v``, ``z_w'Kz_v = rho_w - C_w - sum_{w < u <= v} c_u omega_{u,w}
  - omega_{v,w} (gamma_v - c_v)``, with ``rho_w`` the sum of ``1/sigma_i^2`` over ``w`` and ``C_w``
  the sum of ``c_u`` over ``w`` and the units inside it.

(``z_v`` is the indicator of the rows of ``v``, ``e_i`` for a row.) Those are what score tests
of a variance freed by groups need, summed over pairs of units by group: O(rows + groups^2),
never a cluster's dense ``K``. Levels are numbered from the top, 0, and the rows are the level
after the lowest grouping level.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["NestedPrecision"]


class NestedPrecision:
    """``Sigma^{-1}`` of nested random intercepts with independent residuals, by its pieces.

    Parameters
    ----------
    row_precision : ndarray
        ``1 / sigma_i^2`` of every sorted row.
    row_unit : ndarray
        The lowest unit of every sorted row.
    parents : sequence of ndarray
        For every level below the top, the parent of each of its units.
    below, total, tau : sequence of ndarray
        For every level (top first): ``h`` of each unit without and with its own intercept, and that
        intercept's variance.
    weights : sequence of ndarray or None
        For every level and then the rows, the weight of each one's cluster (None: all 1).
    """

    def __init__(self, row_precision, row_unit, parents, below, total, tau, weights=None):
        self.n_levels = len(below)
        rows = self.n_levels  # the level number of the rows
        self.parent_of = (None, *parents, row_unit)  # the parent of every entity of each level
        self.coefficient = tuple(t / (b * h) for t, b, h in zip(tau, below, total))
        self.steps = (None, *(below[level - 1][self.parent_of[level]] / total[level] for level in range(1, rows)),
                      below[-1][row_unit] * row_precision)
        self.sizes = (*(len(b) for b in below), len(row_precision))
        self.weights = weights
        gamma = [self.coefficient[0]]
        for level in range(1, rows + 1):
            own = self.coefficient[level] if level < rows else 0.0
            gamma.append(own + self.steps[level] ** 2 * gamma[-1][self.parent_of[level]])
        self.gamma = tuple(gamma)
        # rho (sum of 1/sigma^2) and C (sum of c over a unit and the units inside it), bottom up
        rho, inside = [row_precision], [0.0]  # a row holds no unit
        for level in range(rows - 1, -1, -1):
            rho.insert(0, self._to_parents(rho[0], level + 1))
            children = 0.0 if level + 1 == rows else self._to_parents(inside[0], level + 1)
            inside.insert(0, self.coefficient[level] + children)
        self.rho, self.inside = tuple(rho), tuple(inside)

    def _to_parents(self, values: np.ndarray, level: int) -> np.ndarray:
        """Sums of the values of the entities of ``level`` over their parents."""
        return np.bincount(self.parent_of[level], weights=values, minlength=self.sizes[level - 1])

    def weight(self, level: int) -> np.ndarray | float:
        return 1.0 if self.weights is None else self.weights[level]

    def ancestors(self, level: int, to: int) -> tuple[np.ndarray, np.ndarray]:
        """The ancestor at level ``to`` of every entity of ``level`` and its weight ``omega`` there."""
        ancestor, omega = np.arange(self.sizes[level]), np.ones(self.sizes[level])
        for step in range(level, to, -1):
            omega = omega * self.steps[step][ancestor]
            ancestor = self.parent_of[step][ancestor]
        return ancestor, omega

    # ------------------------------------------------------------------ columns
    def cross(self, left, right) -> np.ndarray:
        """``L' Sigma^{-1} R`` summed over the clusters (weighted), for any columns of the sorted rows.

        ``left`` and ``right`` are arrays or scipy sparse matrices with one row per sorted row: a
        column split by a label of P values is a sparse matrix of P columns with one entry per row,
        and costs O(rows + P^2), never rows x P.
        """
        rows = self.n_levels
        total = _weighted_cross(left, self.rho[rows] * self.weight(rows), right)
        for level, unit, weight in self._row_weights():
            means = _unit_means(unit, weight, self.sizes[level])
            total -= _weighted_cross(means @ left, self.coefficient[level] * self.weight(level), means @ right)
        return total

    def apply(self, vector: np.ndarray) -> np.ndarray:
        """``Sigma^{-1} v`` of a column of the sorted rows."""
        out = self.rho[self.n_levels] * vector
        for level, unit, weight in self._row_weights():
            mean = np.bincount(unit, weights=weight * vector, minlength=self.sizes[level])
            out -= weight * (self.coefficient[level] * mean)[unit]
        return out

    def _row_weights(self):
        """Every level with the unit of every row there and the row's weight in its mean, lowest level first."""
        rows = self.n_levels
        unit, weight = self.parent_of[rows], self.steps[rows]
        for level in range(rows - 1, -1, -1):
            yield level, unit, weight
            if level:
                weight = weight * self.steps[level][unit]
                unit = self.parent_of[level][unit]

    # ------------------------------------------------------------------ units and rows
    def diagonal(self, level: int) -> np.ndarray:
        """``z_v' Sigma^{-1} z_v`` of every entity of ``level`` (the rows: ``n_levels``)."""
        own = self.coefficient[level] if level < self.n_levels else 0.0
        return self.rho[level] - self.inside[level] - self.gamma[level] + own

    def quadratic(self, level: int, kr: np.ndarray) -> np.ndarray:
        """``z_v' Sigma^{-1} r`` of every entity of ``level``, from ``Sigma^{-1} r`` of the rows (:meth:`apply`)."""
        for step in range(self.n_levels, level, -1):
            kr = self._to_parents(kr, step)
        return kr

    def squared_sums(self, a: int, codes_a: np.ndarray, n_a: int, b: int, codes_b: np.ndarray, n_b: int) -> np.ndarray:
        """``sum (z_v' Sigma^{-1} z_w)^2`` over the pairs of an entity ``v`` of level ``a`` in group ``g`` and an
        entity ``w`` of level ``b`` in group ``h`` of one cluster (weighted): an ``(n_a, n_b)`` array.

        With ``Sigma`` linear in variances whose derivatives are ``sum_{v in g} z_v z_v'``, half of this is
        their expected information ``tr(Sigma^{-1} Sigma_g Sigma^{-1} Sigma_h) / 2``.
        """
        if a > b:
            return self.squared_sums(b, codes_b, n_b, a, codes_a, n_a).T
        ancestor, entry = self.nested_entries(a, b)
        pair = np.multiply(codes_a[ancestor], n_b, dtype=np.intp)  # codes may come as small integers: widened
        pair += codes_b
        inside = np.bincount(pair, weights=entry**2 * self.weight(b), minlength=n_a * n_b).reshape(n_a, n_b)
        return self.apart_sums(a, codes_a, n_a, b, codes_b, n_b) + inside

    def apart_sums(self, a: int, codes_a: np.ndarray, n_a: int, b: int, codes_b: np.ndarray, n_b: int,
                   values_a=1.0, values_b=1.0) -> np.ndarray:
        """``sum value_v value_w gamma_x^2 omega_{x,v}^2 omega_{x,w}^2`` over the pairs of an entity ``v`` of
        level ``a`` and ``w`` of level ``b`` in different children of their lowest common ancestor ``x``, by
        their groups: the squares of ``z_v' Sigma^{-1} z_w`` of the pairs neither of which holds the other."""
        out = np.zeros((n_a, n_b))
        for x in range(min(a, b)):
            # the pairs apart at x or below, less the pairs inside one child of x (apart further down)
            below = (self.gamma[x][self.parent_of[x + 1]] * self.steps[x + 1] ** 2) ** 2
            for level, coefficient, sign in ((x, self.gamma[x] ** 2, 1.0), (x + 1, below, -1.0)):
                left = self._group_sums(a, codes_a, n_a, level, values_a)
                same = a == b and codes_b is codes_a and values_b is values_a
                right = left if same else self._group_sums(b, codes_b, n_b, level, values_b)
                out += sign * _weighted_cross(left, coefficient * self.weight(level), right)
        return out

    def nested_entries(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """For every entity ``w`` of level ``b``, its ancestor ``v`` at level ``a <= b`` and ``z_v' Sigma^{-1} z_w``."""
        ancestor, omega = np.arange(self.sizes[b]), np.ones(self.sizes[b])
        inner = np.zeros(self.sizes[b])
        for step in range(b, a, -1):  # in place: a million rows make every temporary count
            omega *= self.steps[step][ancestor]
            ancestor = self.parent_of[step][ancestor]
            inner += self.coefficient[step - 1][ancestor] * omega
        if a == b:
            return ancestor, self.diagonal(a)
        entry = (self.gamma[a] - self.coefficient[a])[ancestor]
        entry *= omega
        entry += inner
        del omega, inner
        np.subtract(self.rho[b], entry, out=entry)
        entry -= self.inside[b]
        return ancestor, entry

    def _group_sums(self, level: int, codes: np.ndarray, n_groups: int, at: int, values=1.0):
        """For every unit of level ``at``, the sums of ``omega^2`` (times ``values``) of the entities of ``level``
        inside it, by group."""
        ancestor, omega = self.ancestors(level, at)
        weight = omega**2 * values
        if self.sizes[at] * n_groups <= len(ancestor):  # a dense array no larger than the sparse one
            return np.bincount(ancestor * n_groups + codes, weights=weight,  # ancestor is intp: no overflow
                               minlength=self.sizes[at] * n_groups).reshape(self.sizes[at], n_groups)
        # the entities of a unit are a run (units and rows are sorted by their parents): CSR as it stands
        starts = np.searchsorted(ancestor, np.arange(self.sizes[at] + 1))
        return sp.csr_matrix((weight, codes, starts), shape=(self.sizes[at], n_groups))


def _unit_means(unit: np.ndarray, weight: np.ndarray, n_units: int) -> sp.csr_matrix:
    """The units' weighted sums of the sorted rows as a sparse (units, rows) matrix: a unit's rows are a run."""
    n_rows = len(unit)
    starts = np.searchsorted(unit, np.arange(n_units + 1))
    return sp.csr_matrix((weight, np.arange(n_rows, dtype=np.int32 if n_rows < 2**31 else np.int64), starts),
                         shape=(n_units, n_rows))


def _weighted_cross(left, weight, right) -> np.ndarray:
    """``left' diag(weight) right`` as a dense array, for dense or sparse operands."""
    weight = np.broadcast_to(np.asarray(weight, dtype=float), (left.shape[0],))
    scaled = right.multiply(weight[:, None]).tocsr() if sp.issparse(right) else right * weight[:, None]
    if sp.issparse(scaled) and not sp.issparse(left):
        return np.asarray((scaled.T @ left).T)
    product = left.T @ scaled
    return product.toarray() if sp.issparse(product) else np.asarray(product)
