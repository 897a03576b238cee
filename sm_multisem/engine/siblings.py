"""Correlated random intercepts of sibling units: one dense block of ``G`` per parent, in the recursion.

The effects ``v_c`` of the children ``c`` of one parent unit (the schools of a district) are
correlated by the keyed slots of the children (``pub1``, ``pub2``, ``prv1``: a label and the
rank of the child among its parent's children of that label):

.. math:: \\operatorname{Cov}(v_c, v_{c'}) = \\Gamma[s(c), s(c')],

with a variance per child (its label's, or the level's) on the diagonal and a parameter (or a
structural zero) for every pair of slots. The parent then carries the children's effects as a
vector with a dense covariance ``Gamma_p`` over its own children, and the recursion of
:mod:`sm_multisem.engine.effects` adds them in one Woodbury step at the parent, on the information
extended by one column per child: the child's indicator ``z_c`` (1 on its rows),

.. math::

    A_{ext} = \\begin{pmatrix} \\sum_c A_c & [A_c e_0]_c \\\\ [e_0' A_c]_c & \\operatorname{diag}(e_0'A_c e_0)
    \\end{pmatrix}, \\qquad b_{ext} = \\begin{pmatrix} \\sum_c b_c \\\\ [e_0' b_c]_c \\end{pmatrix},
    \\qquad G_{ext} = \\begin{pmatrix} 0 & 0 \\\\ 0 & \\Gamma_p \\end{pmatrix},

where ``A_c``, ``b_c`` are the child's information on the effect columns (``e_0`` the intercept's)
after its own independent effects; what the step leaves on the effect columns goes on up to the
parent's own effects. Parents are batched by their number of children rounded up to a power of
two (a padded child has no information and no covariance, so it changes nothing): a handful of
batched dense steps per evaluation, each O(parents x (u + children)^3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

__all__ = ["GroupedSiblings", "SiblingCovariances", "SiblingSteps", "covariance_scales"]


@dataclass(frozen=True)
class SiblingCovariances:
    """The covariance of the random intercepts of the children of every parent.

    Attributes
    ----------
    level : int
        The children's level (1 is the first level below the top).
    slot : ndarray of int
        The keyed slot of every unit of the level.
    variance : ndarray of int
        The entry of the variance vector that is every unit's variance.
    pair_entry : ndarray of int, shape (slots, slots)
        The entry that is the covariance of two slots' effects (symmetric), -1 for none.
    """

    level: int
    slot: np.ndarray
    variance: np.ndarray
    pair_entry: np.ndarray

    @property
    def covariance_entries(self) -> np.ndarray:
        """The entries of the variance vector that are covariances of siblings."""
        entries = self.pair_entry[self.pair_entry >= 0]
        return np.unique(entries)

    def equal_groups(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The group of every slot (-1 for none) and the covariance entry of every group, when every pair
        of slots of a group shares one covariance and slots of different groups none (``equal=True``);
        None otherwise."""
        joined = self.pair_entry >= 0
        _, component = connected_components(joined, directed=False)
        group = np.full(len(joined), -1, dtype=np.intp)
        entries = []
        for members in (np.flatnonzero(component == c) for c in np.unique(component[joined.any(1)])):
            off = self.pair_entry[np.ix_(members, members)][~np.eye(len(members), dtype=bool)]
            if np.any(off < 0) or len(np.unique(off)) > 1:
                return None
            group[members] = len(entries)
            entries.append(off[0])
        return group, np.array(entries, dtype=np.intp)

    def free_blocks(self) -> tuple[np.ndarray, ...]:
        """The slots whose every pair has a covariance of its own (``among=``, not ``equal=``): for each such
        set, the symmetric matrix of its pairs' entries (-1 on the diagonal). Their correlations make one
        correlation matrix, which the optimizer takes by its partial correlations."""
        joined = self.pair_entry >= 0
        _, component = connected_components(joined, directed=False)
        blocks = []
        for members in (np.flatnonzero(component == c) for c in np.unique(component[joined.any(1)])):
            entries = self.pair_entry[np.ix_(members, members)]
            off = entries[~np.eye(len(members), dtype=bool)]
            if len(members) > 2 and np.all(off >= 0) and len(np.unique(off)) == len(off) // 2:
                blocks.append(np.where(np.eye(len(members), dtype=bool), -1, entries))
        return tuple(blocks)

    def scales(self) -> np.ndarray:
        """:func:`covariance_scales` of the siblings' covariances, by the variance of every slot."""
        variance_of_slot = np.zeros(len(self.pair_entry), dtype=np.intp)
        variance_of_slot[self.slot] = self.variance
        return covariance_scales(self.pair_entry, variance_of_slot)


def covariance_scales(entries: np.ndarray, variance_of: np.ndarray) -> np.ndarray:
    """``(covariance, variance a, variance b)`` of every covariance off the diagonal of ``entries`` (a
    symmetric matrix of entries, -1 for none), ``a, b`` the variances (``variance_of`` every row) of the
    first pair it joins: the optimizer takes a covariance as its share ``c / sqrt(v_a v_b)`` of them."""
    off = entries[~np.eye(len(entries), dtype=bool)]
    rows = []
    for entry in np.unique(off[off >= 0]):
        a, b = np.argwhere(entries == entry)[0]
        rows.append((entry, variance_of[a], variance_of[b]))
    return np.array(rows, dtype=np.intp).reshape(-1, 3)


@dataclass(frozen=True)
class _Bucket:
    """Parents with up to ``size`` children: their children (-1 past the last) and the entries of
    every parent's ``Gamma_p`` (-1 for none), (size, size, parents)."""

    parents: np.ndarray
    child: np.ndarray  # (size, parents)
    entries: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.child >= 0


class SiblingSteps:
    """The sibling blocks of every parent, batched by size; see the module docstring."""

    def __init__(self, block: SiblingCovariances, child_starts: np.ndarray, n_children: int):
        counts = np.diff(np.append(child_starts, n_children))
        sizes = 2 ** np.ceil(np.log2(np.maximum(counts, 1))).astype(np.intp)
        self.buckets = []
        for size in np.unique(sizes):
            parents = np.flatnonzero(sizes == size)
            rank = np.arange(size)[:, None]
            child = np.where(rank < counts[parents], child_starts[parents] + rank, -1)
            slot = block.slot[np.maximum(child, 0)]
            entries = block.pair_entry[slot[:, None, :], slot[None, :, :]]
            diagonal = np.arange(size)
            entries[diagonal, diagonal] = block.variance[np.maximum(child, 0)]
            entries[~(child[:, None, :] >= 0) | ~(child[None, :, :] >= 0)] = -1
            self.buckets.append(_Bucket(parents, child, entries))
        self.n_parents = len(child_starts)

    def definite(self, a_child: np.ndarray, variances: np.ndarray) -> bool:
        """Whether every parent's covariance stays positive definite once its children's effects are added.

        Before, it is ``B`` (the children's rows with their own effects and residuals: positive definite);
        after, ``B + Z Gamma_p Z'``, whose negative eigenvalues are those of ``I + D^{1/2} Gamma_p D^{1/2}``
        with ``D = Z'B^{-1}Z`` diagonal (the children's ``1'B_c^{-1}1``). Effects added further up have
        positive semi-definite covariances and cannot remove a negative eigenvalue (Haynsworth's inertia
        additivity), so this is whether every top-level cluster's covariance is positive definite.
        ``Gamma_p`` is free of a bound of its own: a covariance of siblings past the correlation of their
        variances is admissible while the data's covariance is (lavaan's wide model takes it so too).
        """
        for bucket in self.buckets:
            root = np.sqrt(np.where(bucket.valid, a_child[0, 0][np.maximum(bucket.child, 0)], 0.0))  # (size, parents)
            gamma = np.where(bucket.entries >= 0, variances[np.maximum(bucket.entries, 0)], 0.0)
            scaled = root[:, None, :] * gamma * root[None, :, :]
            scaled[np.arange(len(root)), np.arange(len(root))] += 1.0
            try:  # a Cholesky factor exists exactly for the positive definite ones
                np.linalg.cholesky(np.moveaxis(scaled, -1, 0))
            except np.linalg.LinAlgError:
                return False
        return True

    def forward(self, step_types, a_parent, b_parent, a_child, b_child, variances, children):
        """The parents' information after their children's correlated effects, with the steps.

        ``step_types`` are the recursion's full and selecting steps, ``children`` the segments of every
        parent's children. Returns ``(a, b, log_det, removed, steps)``: the parents' ``A`` and ``b`` on
        the effect columns, their share of ``log|Sigma|`` and of ``C`` (per parent), and the steps.
        """
        step_type = step_types[0]
        u, m = b_parent.shape[:2]
        a_out, b_out = a_parent.copy(), b_parent.copy()
        log_det, removed = np.zeros(self.n_parents), np.zeros((m, m, self.n_parents))
        steps = []
        for bucket in self.buckets:
            size, n = bucket.child.shape
            child, valid = np.maximum(bucket.child, 0), bucket.valid
            ext_a = np.zeros((u + size, u + size, n))
            ext_a[:u, :u] = a_parent[..., bucket.parents]
            cross = a_child[:, 0][:, child] * valid  # (u, size, parents)
            ext_a[:u, u:] = cross
            ext_a[u:, :u] = cross.transpose(1, 0, 2)
            ext_a[u + np.arange(size), u + np.arange(size)] = a_child[0, 0][child] * valid
            ext_b = np.zeros((u + size, m, n))
            ext_b[:u] = b_parent[..., bucket.parents]
            ext_b[u:] = (b_child[0][:, child] * valid).transpose(1, 0, 2)
            g = np.zeros((u + size, u + size, n))
            g[u:, u:] = np.where(bucket.entries >= 0, variances[np.maximum(bucket.entries, 0)], 0.0)
            step = step_type(ext_a, ext_b, g)
            a_out[..., bucket.parents] = step.a_new[:u, :u]
            b_out[..., bucket.parents] = step.b_new[:u]
            log_det[bucket.parents] = step.log_det
            removed[..., bucket.parents] = step.removed
            steps.append(step)
        return a_out, b_out, log_det, removed, steps

    def backward(self, steps, seed_logdet: float, a_bar: np.ndarray, b_bar: np.ndarray | None,
                 removed_bar: np.ndarray | None, parent: np.ndarray, out: np.ndarray, cluster_of_parent: np.ndarray,
                 cluster_of_child: np.ndarray):
        """The adjoints of every child's ``A``, ``b`` (after its own effects), from those of the parents'
        ``A``, ``b`` after the sibling step; the adjoints of every ``Gamma_p`` go into ``out``."""
        a_pool, b_pool, a_child, b_child, g_bars = self._backward(steps, seed_logdet, a_bar, b_bar, removed_bar,
                                                                  len(parent))
        self.add_gradient(out, g_bars, cluster_of_parent)
        a_child = a_pool.take(parent, axis=-1) + 0.5 * (a_child + a_child.transpose(1, 0, 2))
        return a_child, None if b_bar is None else b_pool.take(parent, axis=-1) + b_child

    def _backward(self, steps, seed_logdet: float, a_bar: np.ndarray, b_bar: np.ndarray | None,
                  removed_bar: np.ndarray | None, n_children: int):
        """The adjoints of the parents' pooled ``A``, ``b`` before the sibling step and the extra
        adjoints of every child's ``A``, ``b``, with the adjoint of every parent's ``Gamma_p``."""
        u = len(a_bar)
        a_pool = a_bar.copy()
        b_pool = None if b_bar is None else b_bar.copy()
        a_child = np.zeros((u, u, n_children))
        b_child = None if b_bar is None else np.zeros((u, b_bar.shape[1], n_children))
        g_bars = []
        for bucket, step in zip(self.buckets, steps):
            size, n = bucket.child.shape
            new_a = np.zeros((u + size, u + size, n))
            new_a[:u, :u] = a_bar[..., bucket.parents]
            new_b = None
            if b_bar is not None:
                new_b = np.zeros((u + size, b_bar.shape[1], n))
                new_b[:u] = b_bar[..., bucket.parents]
            ext_a, ext_b, g_bar = step.backward(seed_logdet, new_a, new_b, removed_bar)
            a_pool[..., bucket.parents] = ext_a[:u, :u]
            rank, parent = np.nonzero(bucket.valid)
            child = bucket.child[rank, parent]
            a_child[:, 0, child] += ext_a[:u, u + rank, parent]
            a_child[0, :, child] += ext_a[u + rank, :u, parent]
            a_child[0, 0, child] += ext_a[u + rank, u + rank, parent]
            if b_bar is not None:
                b_pool[..., bucket.parents] = ext_b[:u]
                b_child[0, :, child] += ext_b[u + rank, :, parent]
            g_bars.append(g_bar[u:, u:])
        return a_pool, b_pool, a_child, b_child, g_bars

    def predictions(self, steps, v: np.ndarray, mean: np.ndarray, variance: np.ndarray):
        """The children's correlated intercepts given the data, as :meth:`EffectMoments.effect_predictions`
        gives a level's effects: their means and variances, and their covariance with the effects of
        the parent and its ancestors (on the effect columns), per child.

        ``mean`` and ``variance`` are those of the parent's and its ancestors' effects, per parent;
        in the extended space the ancestors carry 0 on the children's columns.
        """
        u, n_children = len(mean), int(sum(bucket.valid.sum() for bucket in self.buckets))
        v_mean, v_var, v_cov = np.zeros(n_children), np.zeros(n_children), np.zeros((u, n_children))
        for bucket, step in zip(self.buckets, steps):
            size, n = bucket.child.shape
            ext_mean = np.zeros((u + size, n))
            ext_mean[:u] = mean[:, bucket.parents]
            ext_variance = np.zeros((u + size, u + size, n))
            ext_variance[:u, :u] = variance[..., bucket.parents]
            k = np.einsum("iju,jku->iku", step.g, step.n_inv)
            ka = np.einsum("iju,jku->iku", k, step.a)
            own_mean = (np.einsum("qmn,m->qn", np.einsum("iju,jku->iku", k, step.b), v)
                        - np.einsum("qun,un->qn", ka, ext_mean))
            kav = np.einsum("iju,jku->iku", ka, ext_variance)
            own_variance = k + np.einsum("iku,jku->iju", kav, ka)
            rank, parent = np.nonzero(bucket.valid)
            child = bucket.child[rank, parent]
            v_mean[child] = own_mean[u + rank, parent]
            v_var[child] = own_variance[u + rank, u + rank, parent]
            v_cov[:, child] = -kav[u + rank, :u, parent].T  # Cov(v, a) = -KA Var(a)
        return v_mean, v_var, v_cov

    def add_gradient(self, out: np.ndarray, g_bars, cluster_of_parent: np.ndarray) -> None:
        """Sum the adjoints of every parent's ``Gamma_p`` by cluster into their entries of ``out``."""
        n_clusters, n_var = out.shape
        for bucket, g_bar in zip(self.buckets, g_bars):
            valid = bucket.entries >= 0
            key = cluster_of_parent[bucket.parents][None, None, :] * n_var + bucket.entries
            out += np.bincount(key[valid], weights=g_bar[valid], minlength=n_clusters * n_var).reshape(out.shape)


class GroupedSiblings:
    """Siblings with one covariance per group of slots (``equal=True``), without a dense block per parent.

    Within a group of a parent the children's effects are exchangeable, ``Gamma = D + c 1 1'`` with ``D`` the
    variances less ``c``: a child's own intercept of variance ``v - c`` (a scalar step per child, which may
    be negative), then one effect per (parent, group) of variance ``c`` on the group's rows. Given the
    parent, the groups' columns of the information are independent, so the parent's step is one dense
    block of the effect columns and the groups (a few), for every parent in one batch. The same
    likelihood as :class:`SiblingSteps`, which still gives the predictions of the effects and the exact
    check of positive definiteness where the closed form below cannot.
    """

    def __init__(self, block: SiblingCovariances, groups: tuple[np.ndarray, np.ndarray], child_starts: np.ndarray,
                 n_children: int, dense: SiblingSteps):
        group_of_slot, self.group_entries = groups
        self.group = group_of_slot[block.slot]  # of every child, -1 for none
        self.variance = block.variance
        self.n_groups = len(self.group_entries)
        counts = np.diff(np.append(child_starts, n_children))
        self.parent = np.repeat(np.arange(len(child_starts)), counts)
        self.n_parents = len(child_starts)
        self.grouped = np.flatnonzero(self.group >= 0)
        self.key = self.parent[self.grouped] * self.n_groups + self.group[self.grouped]  # (parent, group)
        self.dense = dense

    def _own_variance(self, variances: np.ndarray) -> np.ndarray:
        """Every child's own intercept variance, its variance less its group's covariance."""
        covariance = np.zeros(len(self.group))
        covariance[self.grouped] = variances[self.group_entries[self.group[self.grouped]]]
        return variances[self.variance] - covariance

    def _by_group(self, values: np.ndarray) -> np.ndarray:
        """Sums over the grouped children of every (parent, group): (..., children) -> (..., groups, parents)."""
        flat = values.reshape(-1, values.shape[-1])[:, self.grouped]
        size = self.n_parents * self.n_groups
        sums = np.stack([np.bincount(self.key, weights=row, minlength=size) for row in flat])
        return sums.reshape(values.shape[:-1] + (self.n_parents, self.n_groups)).swapaxes(-1, -2)

    def definite(self, a_child: np.ndarray, variances: np.ndarray) -> bool:
        """:meth:`SiblingSteps.definite` in closed form: ``I + D^{1/2} Gamma_p D^{1/2}`` is, within a group,
        ``E + c w w'`` with ``E = I + D (V - c)`` diagonal and ``w = D^{1/2}``, positive definite when ``E`` is
        and ``1 + c w'E^{-1}w > 0`` (the dense check where some ``E`` is not positive)."""
        d = a_child[0, 0]
        diagonal = 1.0 + d * self._own_variance(variances)
        if np.any(diagonal <= 0.0):
            return self.dense.definite(a_child, variances)
        covariance = variances[self.group_entries]
        spread = self._by_group(d / diagonal)  # (groups, parents)
        return bool(np.all(1.0 + covariance[:, None] * spread > 0.0))

    def forward(self, step_types, a_parent, b_parent, a_child, b_child, variances, children):
        """As :meth:`SiblingSteps.forward`: the children's own intercepts, then the groups' effects."""
        step_type, selected_type = step_types
        own = selected_type(a_child, b_child, self._own_variance(variances)[None, None, :], np.zeros(1, dtype=np.intp))
        u, m = b_parent.shape[:2]
        n_ext = u + self.n_groups
        ext_a, ext_b = np.zeros((n_ext, n_ext, self.n_parents)), np.zeros((n_ext, m, self.n_parents))
        ext_a[:u, :u], ext_b[:u] = children.sum_last(own.a_new), children.sum_last(own.b_new)
        cross = self._by_group(own.a_new[:, 0])  # (u, groups, parents)
        ext_a[:u, u:], ext_a[u:, :u] = cross, cross.transpose(1, 0, 2)
        groups = np.arange(self.n_groups)
        ext_a[u + groups, u + groups] = self._by_group(own.a_new[0, 0])
        ext_b[u:] = self._by_group(own.b_new[0]).transpose(1, 0, 2)
        g = np.zeros((n_ext, n_ext))
        g[u + groups, u + groups] = variances[self.group_entries]
        step = step_type(ext_a, ext_b, g)
        log_det = step.log_det + children.sum_last(own.log_det)
        removed = step.removed + children.sum_last(own.removed)
        return step.a_new[:u, :u], step.b_new[:u], log_det, removed, (own, step)

    def backward(self, steps, seed_logdet: float, a_bar: np.ndarray, b_bar: np.ndarray | None,
                 removed_bar: np.ndarray | None, parent: np.ndarray, out: np.ndarray, cluster_of_parent: np.ndarray,
                 cluster_of_child: np.ndarray):
        """As :meth:`SiblingSteps.backward`."""
        own, step = steps
        u, n_ext = len(a_bar), len(step.g)
        new_a = np.zeros((n_ext, n_ext, self.n_parents))
        new_a[:u, :u] = a_bar
        new_b = None
        if b_bar is not None:
            new_b = np.zeros((n_ext, b_bar.shape[1], self.n_parents))
            new_b[:u] = b_bar
        ext_a, ext_b, g_bar = step.backward(seed_logdet, new_a, new_b, removed_bar)
        n_clusters, n_var = out.shape
        for g, entry in enumerate(self.group_entries):  # the groups' covariances
            out[:, entry] += np.bincount(cluster_of_parent, weights=g_bar[u + g, u + g], minlength=n_clusters)
        a_new = ext_a[:u, :u].take(parent, axis=-1)
        at, of = self.group[self.grouped], self.parent[self.grouped]
        extra = np.zeros_like(a_new)
        extra[:, 0, self.grouped] += ext_a[:u, u + at, of]
        extra[0, :, self.grouped] += ext_a[u + at, :u, of]
        extra[0, 0, self.grouped] += ext_a[u + at, u + at, of]
        a_new = a_new + 0.5 * (extra + extra.transpose(1, 0, 2))
        b_new = None
        if b_bar is not None:
            b_new = ext_b[:u].take(parent, axis=-1)
            b_new[0, :, self.grouped] += ext_b[u + at, :, of]
        a_child, b_child, own_bar = own.backward(seed_logdet, a_new, b_new, removed_bar)
        # the own variance is v - c: its adjoint goes to v, and from c
        per_child = own_bar[0, 0]
        out += np.bincount(cluster_of_child * n_var + self.variance, weights=per_child,
                           minlength=n_clusters * n_var).reshape(out.shape)
        covariance = self.group_entries[self.group[self.grouped]]
        out -= np.bincount(cluster_of_child[self.grouped] * n_var + covariance, weights=per_child[self.grouped],
                           minlength=n_clusters * n_var).reshape(out.shape)
        return a_child, b_child
