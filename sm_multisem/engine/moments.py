"""What the recursion keeps of every unit and cluster: the moments of the likelihood and their derivatives.

:class:`Units` summarises the units of one level (log-determinant, ``h``, GLS mean, and their
derivatives), :meth:`Units.pool` pools children into parents, and :class:`ClusterMoments`
holds the result per top-level cluster with the records (:class:`Pooling`) its derivative pass
reads. :class:`~sm_multisem.engine.likelihood.NestedNormal` drives the recursion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .ar1_sums import AR1Derivative
from .segments import Segments, segment_outer_sums

__all__ = ["CellGrid", "ClusterMoments", "Pooling", "Units"]


@dataclass(frozen=True)
class Pooling:
    """What one pooling step leaves for the derivative pass: one row per child unit."""

    a: np.ndarray  # 1 / h of each child
    dev: np.ndarray  # child GLS mean minus its parent's, (units, m)
    d_mean: np.ndarray | None  # (units, len(active), m); None where the means do not depend on the variances
    d_h: np.ndarray  # (units, len(active)); with a grid, (units, cells): each cell's in its own column only
    clusters: Segments  # the children of every top-level cluster (with a grid, the units holding the cells)
    active: np.ndarray  # the parameters the derivatives are taken in (see Units)
    grid: bool = False  # the children are the cells of a CellGrid, ``len(active)`` per unit


@dataclass(frozen=True)
class ClusterMoments:
    """``log|Sigma_k|`` and ``C_k = W_k' Sigma_k^{-1} W_k`` per cluster, with derivatives.

    Attributes
    ----------
    logdet : ndarray, shape (n_clusters,)
    cross : ndarray, shape (n_clusters, m, m)
        ``W_k' Sigma_k^{-1} W_k``; the last column of ``W`` is the outcome.
    d_logdet : ndarray, shape (n_clusters, n_var)
        Derivative of ``logdet`` with respect to each variance (levels top to
        bottom, then the residual variance).

    Notes
    -----
    The derivatives of ``cross`` are only ever needed contracted with a symmetric matrix
    ``A`` (``v' dC v`` for a quadratic form, ``tr(M dC)`` for a log-determinant), so they
    are never stored as ``(n_clusters, n_var, m, m)`` arrays: :meth:`contract` computes
    ``tr(A dC_k)`` from the per-level pieces kept by the recursion.
    """

    logdet: np.ndarray
    cross: np.ndarray
    d_logdet: np.ndarray
    _poolings: tuple[Pooling, ...]
    _within: np.ndarray  # (n_residual_variances, n_clusters, m, m): within-cell scatter, one sum per variance
    _within_variance: np.ndarray  # the residual variance parameter of each sum
    _variances: np.ndarray
    _ar1: tuple[AR1Derivative, ...] = ()  # one per AR(1) group of units
    level_units: tuple = ()  # (h without and with the own intercept, GLS mean) of every unit of each level, top first
    _to_arguments: np.ndarray | None = None  # d(internal variances)/d(arguments), with exchangeable residuals

    def gradient(self, weight: np.ndarray) -> np.ndarray:
        """``d log|Sigma_k| + tr(A dC_k)``: the derivative every log-likelihood needs, (n_clusters, n_var)."""
        return self.d_logdet + self.contract(weight)

    def contract(self, weight: np.ndarray) -> np.ndarray:
        """``tr(A dC_k / d theta_v)`` for every cluster ``k`` and variance ``v``.

        With ``d_c`` a unit's GLS mean minus its parent's (the cluster's own mean for
        the top level) and ``a_c = 1/h_c``, the derivative of ``C_k`` is

        .. math::

            \\sum_c a_c (\\dot m_c d_c' + d_c \\dot m_c') - a_c^2 \\dot h_c d_c d_c'
            \\;-\\; \\sum_u S_u \\dot\\sigma^2_e / \\sigma_e^4,

        summed over the units ``c`` of every level inside cluster ``k`` and the within-unit
        scatter ``S_u`` of its cells (rows of a lowest unit sharing a residual variance).

        Parameters
        ----------
        weight : ndarray, shape (m, m)
            The symmetric matrix ``A``.

        Returns
        -------
        ndarray, shape (n_clusters, n_var)
        """
        n_clusters, n_var = self.d_logdet.shape
        out = np.zeros((n_clusters, n_var))
        for pooling in self._poolings:
            weighted = pooling.dev @ weight
            quadratic = pooling.a**2 * np.einsum("um,um->u", weighted, pooling.dev)
            if pooling.grid:  # a cell's h depends on its own variance only: a unit's cells are its columns
                out[:, pooling.active] -= pooling.clusters.sum(quadratic.reshape(pooling.d_h.shape) * pooling.d_h)
                continue
            per_unit = -quadratic[:, None] * pooling.d_h
            if pooling.d_mean is not None:
                per_unit += 2.0 * pooling.a[:, None] * np.einsum("uvm,um->uv", pooling.d_mean, weighted)
            out[:, pooling.active] += pooling.clusters.sum(per_unit)
        which = self._within_variance
        out[:, which] -= np.einsum("rkij,ij->kr", self._within, weight) / self._variances[which] ** 2
        for group in self._ar1:
            group.contract(weight, out)
        return out if self._to_arguments is None else out @ self._to_arguments


@dataclass(frozen=True)
class Units:
    """Summary of every unit of one level (see the module docstring), with derivatives.

    The derivatives are taken only in the parameters ``active`` (sorted), the ones the units'
    covariance blocks depend on: the residual variances and the variances of the levels
    added so far. The others (the levels above) would be columns of zeros carried through
    every sum of the recursion.
    """

    logdet: np.ndarray
    h: np.ndarray
    mean: np.ndarray
    d_logdet: np.ndarray  # (units, len(active))
    d_h: np.ndarray
    d_mean: np.ndarray | None  # None: the means do not depend on the variances (cells, lowest units)
    active: np.ndarray

    def add_intercept(self, variance: np.ndarray, which: np.ndarray, which_params: np.ndarray) -> Units:
        """``B -> B + s 1 1'`` for every unit; ``which`` is the variance parameter of each unit,
        ``which_params`` the distinct ones among them."""
        present = set(self.active.tolist())  # a handful of parameters: sets, not numpy's set routines
        units = self._with_active(np.array(sorted(present.union(which_params.tolist())), dtype=np.intp))
        h = units.h + variance
        d_h = units.d_h.copy()
        if len(which_params) == 1:  # one variance for every unit: a column, not a scatter
            d_h[:, int(np.searchsorted(units.active, which_params[0]))] += 1.0
        else:
            d_h[np.arange(len(h)), np.searchsorted(units.active, which)] += 1.0
        return Units(
            logdet=units.logdet + np.log(h) - np.log(units.h),
            h=h,
            mean=units.mean,
            d_logdet=units.d_logdet + d_h / h[:, None] - units.d_h / units.h[:, None],
            d_h=d_h,
            d_mean=units.d_mean,
            active=units.active,
        )

    def _with_active(self, active: np.ndarray) -> Units:
        """The same units with derivatives in ``active`` (a superset of the present ones)."""
        if len(active) == len(self.active):
            return self
        columns = np.searchsorted(active, self.active)

        def widen(d: np.ndarray) -> np.ndarray:
            wide = np.zeros(d.shape[:1] + (len(active),) + d.shape[2:])
            wide[:, columns] = d
            return wide

        return dataclasses.replace(self, d_logdet=widen(self.d_logdet), d_h=widen(self.d_h),
                                   d_mean=None if self.d_mean is None else widen(self.d_mean), active=active)

    def pool(self, children: Segments, clusters: Segments):
        """Pool sibling units into their parent: a weighted one-way ANOVA.

        Returns the parents, the between-children scatter of every cluster, and what
        the derivative pass needs (:class:`Pooling`).
        """
        a = 1.0 / self.h
        a_parent = children.sum(a)
        mean_parent = children.sum(a[:, None] * self.mean) / a_parent[:, None]
        dev = self.mean - mean_parent[children.ids]
        between = segment_outer_sums(a[:, None] * dev, dev, clusters, symmetric=True)
        record = Pooling(a, dev, self.d_mean, self.d_h, clusters, self.active)
        a2_dh = (a * a)[:, None] * self.d_h  # = -d(a)
        d_mean = -segment_outer_sums(a2_dh, dev, children)
        if self.d_mean is not None:
            d_mean += children.sum(a[:, None, None] * self.d_mean)
        d_mean /= a_parent[:, None, None]
        h = 1.0 / a_parent
        parents = Units(
            logdet=children.sum(self.logdet),
            h=h,
            mean=mean_parent,
            d_logdet=children.sum(self.d_logdet),
            d_h=children.sum(a2_dh) * (h * h)[:, None],
            d_mean=d_mean,
            active=self.active,
        )
        return parents, between, record


@dataclass(frozen=True)
class CellGrid:
    """The cells of every lowest unit on a (units, residual variances) grid, where variances differ inside units.

    A cell is the rows of a unit that share a residual variance; an absent cell has count 0
    and enters nothing. Pooling a unit's cells (a weighted one-way ANOVA, as
    :meth:`Units.pool`) is then a handful of array operations along the short second axis,
    with the derivatives in closed form: with ``a_r = n_r / s_r`` and ``a = sum_r a_r``,

    .. math::

        \\frac{\\partial h}{\\partial s_r} = \\frac{a_r}{s_r a^2}, \\qquad
        \\frac{\\partial \\bar w}{\\partial s_r} = -\\frac{a_r}{s_r a} (\\bar w_r - \\bar w).
    """

    count: np.ndarray  # (units, R)
    mean: np.ndarray  # (units, R, m)
    d_h: np.ndarray  # (units, R): the derivative of every cell's h = s_r / n_r in its own variance, 1 / n_r
    clusters: Segments  # the cells of every top-level cluster, in the flattened grid
    unit_clusters: Segments  # the units of every top-level cluster

    def pool(self, resid: np.ndarray, active: np.ndarray) -> tuple[Units, np.ndarray, Pooling]:
        """The units, the between-cell scatter of every cluster, and the record of :meth:`Units.pool`."""
        a_cell = self.count / resid
        h = 1.0 / a_cell.sum(1)
        mean = np.einsum("ur,urm->um", a_cell, self.mean) * h[:, None]
        dev = self.mean - mean[:, None, :]
        flat_a, flat_dev = a_cell.ravel(), dev.reshape(len(a_cell) * len(resid), -1)
        between = segment_outer_sums(flat_a[:, None] * flat_dev, flat_dev, self.clusters, symmetric=True)
        units = Units(
            logdet=self.count @ np.log(resid),
            h=h,
            mean=mean,
            d_logdet=self.count / resid,
            d_h=a_cell / resid * (h * h)[:, None],
            d_mean=-(a_cell / resid * h[:, None])[:, :, None] * dev,
            active=active,
        )
        return units, between, Pooling(flat_a, flat_dev, None, self.d_h, self.unit_clusters, active, grid=True)
