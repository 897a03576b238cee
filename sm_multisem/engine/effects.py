"""Gaussian log-likelihood of nested random effects on any columns, evaluated from per-unit sums.

Like :mod:`sm_multisem.engine.likelihood`, this module knows normal vectors with a nested block
covariance and nothing about structural equation models. The rows carry effect columns
``U`` (the column of ones, covariates, indicators of a factor's levels); every unit ``u`` of
level ``l`` has effects ``b_u ~ N(0, G_l)`` on the ``q_l`` columns ``Z_l = U S_l`` of its
rows (``S_l`` selects them: ``(1 + x + w|k)`` takes three, ``(0 + type|k)`` the indicators of
the types, ``(1|k:j)`` the ones), so a top-level cluster has

.. math:: \\Sigma = R + \\sum_l \\sum_{u \\in l} Z_u G_l Z_u',

with ``R`` diagonal (a residual variance per row, shared by label). ``G_l`` is any
symmetric ``q_l x q_l`` matrix whose entries are parameters or structural zeros
(unstructured for lme4's ``|``, diagonal for ``||``, block-diagonal for several terms of one
grouping factor, ``(1|k) + (0 + x|k)``).

Everything the likelihood needs is ``log|Sigma|`` and ``C = W' Sigma^{-1} W`` (``W = [X, y]``),
and both follow from a recursion up the levels that never forms ``Sigma``. A unit with
covariance block ``B`` (its rows' covariance from the levels below and the residuals) is
summarised in information form,

* ``A = U' B^{-1} U`` (u x u, kept as the information: it is singular for a unit with one row),
* ``b = U' B^{-1} W`` (u x m),
* its share of ``log|B|`` and of ``C``.

Adding the unit's effects (``B -> B + U S G S' U'``) with ``P = S'AS``, ``Q = S'A``,
``T = S'b``, ``M = I + G P`` and ``K = M^{-1} G`` (symmetric) gives, by Woodbury,

.. math::

    \\log|B| \\mathrel{+}= \\log|M|, \\qquad A \\to A - Q'KQ, \\qquad b \\to b - Q'KT, \\qquad
    C \\mathrel{-}= T'KT,

``M`` being invertible whenever ``G`` is positive semi-definite, singular ``G`` included (lme4's
relative-factor form is stable at the boundary for the same reason). Pooling sibling units into
their parent sums ``A`` and ``b``. The lowest units start from their rows,
``A = sum_r U_r'U_r / sigma_r^2`` over the residual variances ``sigma_r^2``, and ``C`` from
``W'W / sigma^2``: sums computed once, so an evaluation costs O(units x u^3).

The derivatives are exact, by reverse-mode differentiation of the same recursion: the
likelihood only ever needs ``d log|Sigma_k| + tr(A dC_k)`` for one symmetric ``A`` (see
:class:`~sm_multisem.engine.moments.ClusterMoments`), so one pass back down the levels, with the
adjoints of every unit's ``A`` and ``b``, gives it for every parameter at once. A pass down the
levels also gives the predictions of every unit's effects and their conditional covariance.

Every per-unit matrix keeps the units on its last axis: ``einsum`` then runs one contiguous
loop over the units per entry, several times faster than a stacked ``matmul`` of tiny matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .likelihood import NestedNormal
from .moment_normal import NotPositiveDefinite
from .segments import Segments
from .siblings import GroupedSiblings, SiblingCovariances, SiblingSteps, covariance_scales
from .whitened import AR1Residuals, BlockResiduals, IndependentResiduals

__all__ = ["EffectsNormal", "LevelEffects"]


@dataclass(frozen=True)
class LevelEffects:
    """The random effects of one level.

    Attributes
    ----------
    columns : ndarray of int, shape (q,)
        The effect columns (of ``U``) the level's effects load on.
    entries : ndarray of int, shape (q, q)
        The entry of the variance vector that is every entry of ``G_l`` (symmetric), -1 for a
        structural zero.
    """

    columns: np.ndarray
    entries: np.ndarray

    def covariance(self, variances: np.ndarray) -> np.ndarray:
        """``G_l`` at the variance vector ``variances``."""
        return np.where(self.entries >= 0, variances[np.maximum(self.entries, 0)], 0.0)

    def padded_covariance(self, variances: np.ndarray, n_columns: int) -> np.ndarray:
        """``S G_l S'``: ``G_l`` on all ``n_columns`` effect columns, zero outside the level's."""
        padded = np.zeros((n_columns, n_columns))
        padded[self.columns[:, None], self.columns[None, :]] = self.covariance(variances)
        return padded

    @property
    def unstructured_blocks(self) -> list[np.ndarray]:
        """The entries of every unstructured diagonal block of ``G_l`` with more than one effect
        (lme4's ``(1 + x|k)``), each a q' x q' matrix of entries: optimised by its Cholesky factor."""
        q = len(self.columns)
        linked = self.entries >= 0
        seen, blocks = np.zeros(q, dtype=bool), []
        for first in range(q):
            if seen[first]:
                continue
            members = np.flatnonzero(linked[first])
            seen[members] = True
            if len(members) > 1:
                block = self.entries[np.ix_(members, members)]
                if np.any(block < 0):
                    raise ValueError("a block of correlated effects must have every covariance free")
                blocks.append(block)
        return blocks


def _transpose(matrix: np.ndarray) -> np.ndarray:
    """Every unit's matrix transposed, as a view: (n, k, units) -> (k, n, units)."""
    return matrix.transpose(1, 0, 2)


#: Matrices this large are multiplied unit by unit with the units first (a dense block of siblings):
#: ``einsum`` with the units last is faster for the few rows of random intercepts and slopes.
_STACKED = 6


def _matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left_u @ right_u`` for every unit ``u``: (n, j, units) and (j, k, units) -> (n, k, units)."""
    if min(left.shape[0], right.shape[1]) >= _STACKED:
        return np.matmul(left.transpose(2, 0, 1), right.transpose(2, 0, 1)).transpose(1, 2, 0)
    return np.einsum("iju,jku->iku", left, right)


def _times_transpose(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left_u @ right_u'`` for every unit ``u``: (n, k, units) and (j, k, units) -> (n, j, units)."""
    return np.einsum("iku,jku->iju", left, right)


def _trace_product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``tr(left_u' right_u)``, the sum of the entrywise products, for every unit ``u``: -> (units,)."""
    return np.einsum("iju,iju->u", left, right)


def _times_constant(matrix: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """``matrix_u @ constant`` for every unit ``u`` and one k x k' ``constant``: (n, k, units) -> (n, k', units)."""
    return np.einsum("iju,jk->iku", matrix, constant)


def _constant_times(constant: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``constant @ matrix_u`` for every unit ``u`` and one n x j ``constant``: (j, k, units) -> (n, k, units)."""
    return (constant @ matrix.reshape(len(matrix), -1)).reshape((len(constant),) + matrix.shape[1:])


def _times_covariance(matrix: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``matrix_u @ G`` for one ``G`` shared by the units (k x k) or one per unit (k, k, units)."""
    return _matmul(matrix, g) if g.ndim == 3 else _times_constant(matrix, g)


def _covariance_times(g: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``G @ matrix_u`` for one ``G`` shared by the units or one per unit, as :func:`_times_covariance`."""
    return _matmul(g, matrix) if g.ndim == 3 else _constant_times(g, matrix)


def _inverse_and_logdet(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of every unit's q x q matrix, (q, q, units), of positive determinant.

    In closed form for q = 1 and 2 (the common random intercept and slope), by LAPACK otherwise.
    """
    q = len(matrix)
    if q == 1:
        return 1.0 / matrix, np.log(matrix[0, 0])
    if q == 2:
        det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
        inverse = np.empty_like(matrix)
        inverse[0, 0], inverse[1, 1] = matrix[1, 1], matrix[0, 0]
        np.negative(matrix[0, 1], out=inverse[0, 1])
        np.negative(matrix[1, 0], out=inverse[1, 0])
        inverse /= det
        return inverse, np.log(det)
    stacked = np.moveaxis(matrix, -1, 0)
    _, logdet = np.linalg.slogdet(stacked)
    try:  # singular at the edge of the definite ones (free covariances of siblings)
        return np.ascontiguousarray(np.moveaxis(np.linalg.inv(stacked), 0, -1)), logdet
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite("the covariance of some cluster is singular at these parameters") from None


class _Step:
    """One level's effects added to its units: the forward quantities the backward pass reuses.

    ``a`` (u, u, units) and ``b`` (u, m, units) are the units' information before the step, ``g``
    the level's ``G`` on all u effect columns (zero outside its own; one for every unit, (u, u, units),
    for the blocks of sibling effects of :mod:`sm_multisem.engine.siblings`), ``n_inv = N^{-1}`` with
    ``N = I + A G``; ``a_new = N^{-1} A`` and ``b_new = N^{-1} b`` after the step, and
    ``removed = b' G N^{-1} b`` (m, m, units), what the effects remove from ``C``. With ``G``
    zero outside the level's columns these are the Woodbury step of the module docstring
    (``N^{-1} = I - A S K S'``); carrying all u columns costs u^3 per unit, which for the
    handful of effect columns a model has is fewer operations than selecting them.
    """

    __slots__ = ("a", "a_new", "b", "b_new", "g", "log_det", "n_inv", "removed")

    def __init__(self, a: np.ndarray, b: np.ndarray, g: np.ndarray):
        self.a, self.b, self.g = a, b, g
        n = _times_covariance(a, g)
        n[np.arange(len(g)), np.arange(len(g))] += 1.0
        self.n_inv, self.log_det = _inverse_and_logdet(n)
        self.a_new = _matmul(self.n_inv, a)
        self.b_new = _matmul(self.n_inv, b)
        self.removed = _matmul(_transpose(b), _covariance_times(g, self.b_new))

    def backward(self, seed_logdet: float, a_new_bar: np.ndarray, b_new_bar: np.ndarray | None,
                 removed_bar: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """The adjoints of ``a``, ``b`` and ``G`` (per unit) from those of ``a_new``, ``b_new``,
        ``removed`` (one m x m matrix for every unit) and ``log_det`` (``seed_logdet``):

        .. math::

            t = b \\bar R, \\quad
            \\bar b_t = \\bar b' + G t, \\quad
            \\bar N = s N^{-T} - N^{-T}(\\bar A' A'^T + \\bar b_t b'^T), \\quad
            \\bar G = A \\bar N + t b'^T,

            \\bar A = \\bar N G + N^{-T} \\bar A', \\qquad
            \\bar b = N^{-T} \\bar b_t + G b' \\bar R = N^{-T} (\\bar b_t + G t),

        the last because ``G N^{-1} = (I + G A)^{-1} G = N^{-T} G``.
        """
        n_inv_t = _transpose(self.n_inv)
        products = _matmul(a_new_bar, self.a_new)  # Abar' A'^T, A' symmetric
        b_bar = None
        if removed_bar is not None:
            t = _times_constant(self.b, removed_bar)
            g_t = _covariance_times(self.g, t)
            b_total = b_new_bar + g_t
            products += _times_transpose(b_total, self.b_new)
            b_bar = _matmul(n_inv_t, b_total + g_t)
        n_bar = seed_logdet * n_inv_t - _matmul(n_inv_t, products)
        g_bar = _matmul(self.a, n_bar)
        if removed_bar is not None:
            g_bar += _times_transpose(t, self.b_new)
        a_bar = _times_covariance(n_bar, self.g) + _matmul(n_inv_t, a_new_bar)
        return a_bar, b_bar, g_bar

    def conditional(self, v: np.ndarray, mean: np.ndarray, variance: np.ndarray, columns: np.ndarray):
        """``E[b | y]``, ``Var(b | y)`` of the units' effects on ``columns``, and ``KA`` and ``KA Var(a | y)``
        on those rows (see :meth:`_EffectMoments.effect_predictions`), with ``K = G N^{-1}`` zero outside them."""
        k = _covariance_times(self.g, self.n_inv)
        ka = _matmul(k, self.a)
        own_mean = np.einsum("qmn,m->qn", _matmul(k, self.b), v) - np.einsum("qun,un->qn", ka, mean)
        kav = _matmul(ka, variance)
        own_variance = k + _times_transpose(kav, ka)
        return own_mean[columns], own_variance[columns[:, None], columns[None, :]], ka[columns], kav[columns]


class _SelectedStep:
    """The effects of a level on fewer columns than the units carry, added by selecting their columns
    ``S``: with ``P = S'AS``, ``Q = S'A``, ``T = S'b``, ``M = I + G P`` and ``K = M^{-1} G`` (q x q),

    .. math:: A \\to A - Q'KQ, \\qquad b \\to b - Q'KT, \\qquad C \\mathrel{-}= T'KT, \\qquad
              \\log|B| \\mathrel{+}= \\log|M|,

    at O(q^3 + u^2 q) per unit instead of the O(u^3) of :class:`_Step` (a random intercept of schools
    under district effects on four columns costs a scalar per school).
    """

    __slots__ = ("a", "a_new", "b", "b_new", "columns", "g", "k", "log_det", "m_inv", "p", "q_rows", "removed", "t")

    def __init__(self, a: np.ndarray, b: np.ndarray, g: np.ndarray, columns: np.ndarray):
        self.a, self.b, self.g, self.columns = a, b, g, columns
        self.q_rows = a[columns]
        self.p = self.q_rows[:, columns]
        self.t = b[columns]
        m = _covariance_times(g, self.p)
        m[np.arange(len(g)), np.arange(len(g))] += 1.0
        self.m_inv, self.log_det = _inverse_and_logdet(m)
        self.k = _times_covariance(self.m_inv, g)
        kt = _matmul(self.k, self.t)
        self.a_new = a - _matmul(_transpose(self.q_rows), _matmul(self.k, self.q_rows))
        self.b_new = b - _matmul(_transpose(self.q_rows), kt)
        self.removed = _matmul(_transpose(self.t), kt)

    def backward(self, seed_logdet: float, a_new_bar: np.ndarray, b_new_bar: np.ndarray | None,
                 removed_bar: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """The adjoints of ``a``, ``b`` and the level's own ``G`` (q x q, per unit), as :meth:`_Step.backward`.

        With ``a_new_bar`` symmetric:

        .. math::

            \\bar K = -Q \\bar A' Q' - Q \\bar b' T' + T \\bar R T', \\qquad
            \\bar G = M^{-T}(\\bar K M^{-1} + s P), \\qquad
            \\bar P = s K - K \\bar K K,

            \\bar Q = -K(2 Q \\bar A' + T \\bar b'^T), \\qquad \\bar T = K(2 T \\bar R - Q \\bar b'),

        and ``Abar = Abar' + S Pbar S' + S Qbar`` (symmetrised), ``bbar = bbar' + S Tbar``.
        """
        qa = _matmul(self.q_rows, a_new_bar)
        k_bar = -_times_transpose(qa, self.q_rows)
        q_inner = 2.0 * qa
        if removed_bar is not None:
            qb = _matmul(self.q_rows, b_new_bar)
            tr = _times_constant(self.t, removed_bar)
            k_bar += _times_transpose(tr, self.t) - _times_transpose(qb, self.t)
            q_inner += _times_transpose(self.t, b_new_bar)
        g_bar = _matmul(_transpose(self.m_inv), _matmul(k_bar, self.m_inv) + seed_logdet * self.p)
        p_bar = seed_logdet * self.k - _matmul(self.k, _matmul(k_bar, self.k))
        a_bar = a_new_bar.copy()
        a_bar[self.columns] -= _matmul(self.k, q_inner)
        a_bar[self.columns[:, None], self.columns[None, :]] += p_bar
        b_bar = None
        if removed_bar is not None:
            b_bar = b_new_bar.copy()
            b_bar[self.columns] += _matmul(self.k, 2.0 * tr - qb)
        return 0.5 * (a_bar + _transpose(a_bar)), b_bar, g_bar

    def conditional(self, v: np.ndarray, mean: np.ndarray, variance: np.ndarray, columns: np.ndarray):
        """As :meth:`_Step.conditional`, from ``K`` and ``Q`` on the level's own columns."""
        kq = _matmul(self.k, self.q_rows)
        own_mean = np.einsum("qmn,m->qn", _matmul(self.k, self.t), v) - np.einsum("qun,un->qn", kq, mean)
        kqv = _matmul(kq, variance)
        return own_mean, self.k + _times_transpose(kqv, kq), kq, kqv


class _EffectMoments:
    """``log|Sigma_k|`` and ``C_k`` per cluster, with their derivatives on demand.

    The same interface as :class:`~sm_multisem.engine.moments.ClusterMoments` (``logdet``,
    ``cross``, ``d_logdet``, ``contract``, ``gradient``), which is all the log-likelihoods need.
    """

    def __init__(self, lik: EffectsNormal, variances: np.ndarray, dense_siblings: bool = False):
        self._lik = lik
        self._whitened = lik._residuals.forward(variances)
        #: Whether every cluster's covariance is positive definite: every structure but a residual block and
        #: the covariances of siblings keeps it so (see :meth:`~sm_multisem.engine.siblings.SiblingSteps.definite`)
        self.positive = self._whitened is not None
        self._steps: list[_Step | _SelectedStep | None] = [None] * lik.n_levels
        self._sibling_steps = None
        if not self.positive:  # nothing more is defined
            self.logdet = np.full(len(lik._clusters[0]), np.nan)
            return
        a, b = self._whitened.a, self._whitened.b
        logdet, cross = self._whitened.logdet, self._whitened.cross
        steps: list[_Step | _SelectedStep | None] = []
        for level in range(lik.n_levels - 1, -1, -1):
            step = None  # a level whose only effects are the correlated intercepts of siblings
            effects = lik.levels[level]
            if len(effects.columns) == len(a):  # effects on every column: the fewest operations
                step = _Step(a, b, effects.padded_covariance(variances, len(a)))
            elif len(effects.columns):
                step = _SelectedStep(a, b, effects.covariance(variances), effects.columns)
            if step is not None:
                logdet = logdet + lik._clusters[level].sum_last(step.log_det)
                cross = cross - lik._clusters[level].sum_last(step.removed)
                a, b = step.a_new, step.b_new
            steps.insert(0, step)
            if level > 0:
                children = lik._children[level - 1]
                pooled_a, pooled_b = children.sum_last(a), children.sum_last(b)
                if lik.siblings is not None and lik.siblings.level == level:
                    self._siblings = lik._dense_siblings if dense_siblings else lik._sibling_steps
                    self.positive = self._siblings.definite(a, variances)
                    if not self.positive:  # nothing more is defined
                        break
                    pooled_a, pooled_b, log_det, removed, self._sibling_steps = self._siblings.forward(
                        (_Step, _SelectedStep), pooled_a, pooled_b, a, b, variances, children)
                    logdet = logdet + lik._clusters[level - 1].sum_last(log_det)
                    cross = cross - lik._clusters[level - 1].sum_last(removed)
                a, b = pooled_a, pooled_b
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
        """``seed_logdet * d log|Sigma_k| + tr(weight dC_k)`` by one pass down the levels
        (:meth:`_Step.backward` at every level; ``C`` loses ``removed``, so its adjoint is ``-weight``)."""
        lik = self._lik
        out = np.zeros((len(self.logdet), lik.n_var))
        removed_bar = None if weight is None else -weight
        u, m = self._whitened.b.shape[:2]
        a_bar = np.zeros((u, u, len(self.logdet)))  # the adjoints of the level above, per unit of that level
        b_bar = None if weight is None else np.zeros((u, m, len(self.logdet)))
        for level, step in enumerate(self._steps):
            if level:
                parent = lik._parents[level - 1]
                if lik.siblings is not None and lik.siblings.level == level:
                    a_bar, b_bar = self._siblings.backward(
                        self._sibling_steps, seed_logdet, a_bar, b_bar, removed_bar, parent, out,
                        lik._clusters[level - 1].ids, lik._clusters[level].ids)
                else:
                    a_bar = a_bar.take(parent, axis=-1)
                    b_bar = None if weight is None else b_bar.take(parent, axis=-1)
            if step is not None:
                a_bar, b_bar, g_bar = step.backward(seed_logdet, a_bar, b_bar, removed_bar)
                self._add_effect_gradient(out, level, g_bar)
        lik._residuals.backward(self._whitened, seed_logdet, a_bar, b_bar, weight, out)
        return out

    def _add_effect_gradient(self, out: np.ndarray, level: int, g_bar: np.ndarray) -> None:
        """Sum the units' ``dG`` adjoints by cluster into the entries of the level's ``G``."""
        effects = self._lik.levels[level]
        q = len(effects.columns)
        own = g_bar if len(g_bar) == q else g_bar[effects.columns[:, None], effects.columns[None, :]]
        sums = self._lik._clusters[level].sum_last(own.reshape(q * q, -1))
        for flat, entry in enumerate(effects.entries.ravel()):
            if entry >= 0:
                out[:, entry] += sums[flat]

    def effect_predictions(self, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``E[b_u | y]`` and ``Var(b_u | y)`` of every unit, level by level (top first), for the
        residual direction ``v = [-beta, 1]``: ((units, q), (units, q, q)) per level.

        Given the sum ``a`` of its ancestors' effects (on the effect columns), a unit's effects
        depend on its own rows only: with ``K = G N^{-1}`` (zero outside the level's columns),
        ``E[b | y, a] = K (b v - A a)`` and ``Var(b | y, a) = K``. The laws of total expectation and
        variance over ``a | y`` give, one level down at a time,

        .. math::

            E[b \\mid y] = K(bv - A\\,E[a \\mid y]), \\qquad
            \\operatorname{Var}(b \\mid y) = K + KA\\,V_a\\,AK,

        and the child's ``a + b`` has mean ``E[a] + E[b]`` and covariance
        ``V_a - KAV_a - V_a AK + Var(b | y)``.
        """
        lik = self._lik
        out = []
        u, n_clusters = self._whitened.b.shape[0], len(self.logdet)
        # the ancestors' effects on the columns, per unit of the level
        mean, variance = np.zeros((u, n_clusters)), np.zeros((u, u, n_clusters))
        for level, step in enumerate(self._steps):
            sibling = None
            if level:
                if lik.siblings is not None and lik.siblings.level == level:
                    sibling = self._siblings.predictions(self._sibling_steps, v, mean, variance)
                parent = lik._parents[level - 1]
                mean, variance = mean.take(parent, axis=-1), variance.take(parent, axis=-1)
            if sibling is not None:  # the child's own intercept joins its ancestors (column 0)
                v_mean, v_var, v_cov = sibling
                mean, variance = mean.copy(), variance.copy()
                mean[0] += v_mean
                variance[0] += v_cov
                variance[:, 0] += v_cov
                variance[0, 0] += v_var
            effects = ([np.zeros((0, mean.shape[1]))], [np.zeros((0, 0, mean.shape[1]))])
            if step is not None:
                columns = lik.levels[level].columns
                own_mean, own_variance, kq, kqv = step.conditional(v, mean, variance, columns)
                effects = ([own_mean], [own_variance])
                if sibling is not None:  # Cov(b, v) = -KA Cov(a, v), with Cov(a, v) = Cov(a_parent, v) + e_0 Var(v)
                    with_v = v_cov.copy()
                    with_v[0] += v_var
                    cross = -np.einsum("qun,un->qn", kq, with_v)
                    effects = ([v_mean[None], own_mean],
                               [np.concatenate([np.concatenate([v_var[None, None], cross[None]], 1),
                                                np.concatenate([cross[:, None], own_variance], 1)], 0)])
                mean = mean.copy()
                mean[columns] += own_mean
                variance = variance.copy()
                variance[columns] -= kqv
                variance[:, columns] -= _transpose(kqv)
                variance[columns[:, None], columns[None, :]] += own_variance
            elif sibling is not None:
                effects = ([v_mean[None]], [v_var[None, None]])
            level_mean, level_variance = np.concatenate(effects[0], 0), effects[1][-1]
            out.append((level_mean.T, np.moveaxis(level_variance, -1, 0)))
        return out


class EffectsNormal(NestedNormal):
    """Normal model with nested random effects on any columns, and independent residuals.

    Parameters
    ----------
    columns : ndarray, shape (n_rows, m)
        Data columns ``[X, y]``, rows sorted so that every unit at every level is a
        contiguous run.
    row_starts, child_starts
        As for :class:`~sm_multisem.engine.likelihood.NestedNormal`.
    effect_values : ndarray, shape (n_rows, u)
        The effect columns ``U`` (the column of ones among them, where a level has a random
        intercept), in the order of ``columns``.
    levels : sequence of LevelEffects
        For each level (top first), its effects: their columns of ``U`` and the parameters of
        their covariance.
    row_variance : ndarray of int, shape (n_rows,)
        The residual variance parameter of every row.
    residual_block : (ndarray, ndarray), optional
        The occasion of every row and the entries of ``R`` over the occasions: residuals with a
        dense covariance within every lowest unit (:class:`~sm_multisem.engine.whitened.BlockResiduals`);
        ``row_variance`` then holds the variance of every row's occasion.
    residual_ar1 : (ndarray, int), optional
        The time (any real number) of every row and the entry of ``rho``: residuals correlated
        ``rho^|t - s|`` within every lowest unit, each row with its ``row_variance``
        (:class:`~sm_multisem.engine.whitened.AR1Residuals`).
    cluster_weights : ndarray, optional
        Sampling weight of every top-level cluster.
    centring : Centring, optional

    Notes
    -----
    ``cholesky_blocks`` lists the entries of every unstructured block of correlated effects
    (a q x q matrix each): :class:`~sm_multisem.fit.estimation.ProfiledObjective` optimises their
    relative Cholesky factor, lme4's ``theta``.
    """

    _sums_within_cells = False  # the moments come from U'U, U'W and W'W (see __init__)

    def __init__(self, columns: np.ndarray, row_starts: np.ndarray, child_starts, effect_values: np.ndarray,
                 levels, row_variance: np.ndarray, cluster_weights=None, centring=None,
                 siblings: SiblingCovariances | None = None, residual_block=None, residual_ar1=None):
        columns = np.asarray(columns, dtype=float)
        n_rows = len(columns)
        self.levels = tuple(LevelEffects(np.asarray(e.columns, dtype=np.intp), np.asarray(e.entries, dtype=np.intp))
                            for e in levels)
        if len(self.levels) != len(child_starts) + 1:
            raise ValueError(f"levels needs one entry per grouping level ({len(child_starts) + 1}), "
                             f"got {len(self.levels)}")
        sizes = [len(s) for s in child_starts] + [len(row_starts)]
        # of the variances of every unit the base class reads only how many units every level has
        unit_variance = [np.zeros(n, dtype=np.intp) for n in sizes]
        row_variance = np.asarray(row_variance, dtype=np.intp)
        super().__init__(columns, row_starts, child_starts, unit_variance, row_variance,
                         cluster_weights=cluster_weights, centring=centring)
        entries = [e.entries.ravel() for e in self.levels]
        variances = [np.diagonal(e.entries) for e in self.levels]
        self.siblings, self._sibling_steps, self._dense_siblings = siblings, None, None
        if siblings is not None:
            entries += [siblings.variance, siblings.covariance_entries]
            variances.append(siblings.variance)
            self.covariances = siblings.covariance_entries
            self.scaled_covariances = siblings.scales()
            self.covariance_lower = -np.ones(len(self.scaled_covariances))
            self.correlation_blocks = siblings.free_blocks()
            self._dense_siblings = SiblingSteps(siblings, self.child_starts[siblings.level - 1], sizes[siblings.level])
            groups = siblings.equal_groups()
            # one covariance per group of slots: the fast path of GroupedSiblings (predictions stay dense)
            self._sibling_steps = self._dense_siblings if groups is None else GroupedSiblings(
                siblings, groups, self.child_starts[siblings.level - 1], sizes[siblings.level], self._dense_siblings)
        self.level_variances = np.unique(np.concatenate(variances))
        self.cholesky_blocks = tuple(block for e in self.levels for block in e.unstructured_blocks)
        self.n_var = int(max(self.residual_variances.max(), np.concatenate(entries).max())) + 1

        # the residuals' share of every lowest unit, and of every cluster, computed once
        effect_values = np.asarray(effect_values, dtype=float)
        cluster_rows = np.asarray(row_starts)[self._cluster_starts[-1]]
        clusters = Segments(cluster_rows, np.repeat(np.arange(len(cluster_rows)), np.diff(np.append(cluster_rows,
                                                                                                      n_rows))))
        if residual_ar1 is not None:
            time, rho = residual_ar1
            self._residuals = AR1Residuals(effect_values, columns, row_starts, np.asarray(time, dtype=float),
                                           row_variance, rho, self._clusters[-1])
            self.correlations = np.array([rho], dtype=np.intp)
            if self._residuals.fractional:  # rho to fractional powers: inside (0, 1)
                self.positive_correlations = self.correlations
            self.n_var = max(self.n_var, int(rho) + 1)
        elif residual_block is None:
            self._residuals = IndependentResiduals(effect_values, columns, row_starts, row_variance,
                                                   self.residual_variances, clusters, self._clusters[-1])
        else:
            occasion, entries = residual_block
            self._residuals = BlockResiduals(effect_values, columns, row_starts, np.asarray(occasion, dtype=np.intp),
                                             entries, self._clusters[-1])
            self.covariances = np.union1d(self.covariances, self._residuals.covariances)
            entries = np.asarray(entries)
            self.scaled_covariances = np.vstack([self.scaled_covariances,
                                                 covariance_scales(entries, np.diagonal(entries))])
            self.covariance_lower = np.r_[self.covariance_lower, -np.ones(len(self._residuals.covariances))]
            self.n_var = max(self.n_var, int(np.asarray(entries).max()) + 1)

    def moments(self, variances: np.ndarray) -> _EffectMoments:
        """Cluster moments for the variance parameters (see the class docstring)."""
        return _EffectMoments(self, np.asarray(variances, dtype=float))

    def random_effects(self, beta: np.ndarray, variances: np.ndarray) -> list[np.ndarray]:
        """Best linear unbiased predictions of every unit's effects, level by level (top first):
        an array (units, q) per level (see :meth:`_EffectMoments.effect_predictions`)."""
        v = np.append(-self.centring.internal_beta(beta), 1.0)
        return [mean for mean, _ in _EffectMoments(self, variances, dense_siblings=True).effect_predictions(v)]

    def random_effects_covariance(self, variances: np.ndarray) -> list[np.ndarray]:
        """Conditional covariance ``Var(b_u | y)`` of every unit's effects, level by level (top
        first), the fixed effects held at their value (lme4's ``condVar``): (units, q, q) per level."""
        v = np.zeros(self.n_columns)  # the covariances do not depend on the residuals
        return [cov for _, cov in _EffectMoments(self, variances, dense_siblings=True).effect_predictions(v)]

    def random_effects_variance(self, variances: np.ndarray) -> list[np.ndarray]:
        """The diagonals of :meth:`random_effects_covariance`: (units, q) per level."""
        return [np.diagonal(cov, axis1=1, axis2=2) for cov in self.random_effects_covariance(variances)]
