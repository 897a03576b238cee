"""Covariance of the estimates, looked up by name with the options each one accepts.

``"oim"``
    Inverse of the observed information (the negative Hessian of the log-likelihood,
    by central differences of the analytic score). Matches statsmodels ``MixedLM``
    and lavaan ``information="observed"``.
``"eim"``
    Inverse of the expected information: ``X' Sigma^{-1} X`` for the fixed effects,
    ``tr(P Sigma_i P Sigma_j) / 2`` for the variances, zero between them. The fixed-effect
    block is lme4's ``vcov()`` and Stata ``mixed``'s.
``"opg"``
    Inverse of the outer product of the per-cluster scores.
``"robust"``
    Huber-White sandwich ``H^{-1} (sum_k s_k s_k') H^{-1}`` over top-level clusters (the
    rows of the wide model), ``H`` the observed information; multiplied by ``K/(K-1)``
    unless ``use_correction=False``.
``"cluster"``
    The sandwich with the scores summed within ``groups`` coarser than the top level
    (several clusters per group); multiplied by ``G/(G-1)`` unless ``use_correction=False``.
``"survey"``
    Linearized (Taylor) variance of a survey design: weighted scores ``w_k s_k`` summed
    within primary sampling units (``psu``, default: the top-level clusters), centred
    within ``strata`` and scaled by ``n_h/(n_h-1)`` there:
    ``H^{-1} sum_h n_h/(n_h-1) sum_i (z_hi - zbar_h)(z_hi - zbar_h)' H^{-1}``.

With sampling weights (a pseudo-likelihood) only the sandwich estimators are valid, and
every score is the cluster's score times its weight.

Under REML, ``"oim"`` and ``"eim"`` use ``(X' Sigma^{-1} X)^{-1}`` for the fixed effects and
the restricted likelihood for the variances; the score-based estimators need ML scores
and are refused. Parameters estimated on the boundary (a variance of 0) are held fixed:
their rows and columns are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["COV_TYPES", "CovarianceResult", "covariance", "difference_scale", "numerical_jacobian"]

#: cov_type -> the keywords it accepts in ``cov_kwds``
COV_TYPES: dict[str, tuple[str, ...]] = {
    "oim": (),
    "eim": (),
    "opg": (),
    "robust": ("use_correction",),
    "cluster": ("groups", "use_correction"),
    "survey": ("psu", "strata"),
}


@dataclass(frozen=True)
class CovarianceResult:
    """A covariance matrix and the words that describe how it was computed."""

    cov: np.ndarray
    description: str


def numerical_jacobian(func: Callable[[np.ndarray], np.ndarray], x: np.ndarray, typical: np.ndarray,
                       relative_step: float = 1e-5):
    """Central-difference Jacobian of a vector function (one column per element of ``x``).

    The step of element i is ``relative_step * max(|x_i|, typical_i)``: ``typical`` is the
    magnitude below which an element counts as small, so that an element near 0 is
    stepped on the scale of its kind (a variance on that of the other variances).
    """
    x = np.asarray(x, dtype=float)
    columns = []
    for i in range(len(x)):
        step = relative_step * max(abs(x[i]), typical[i])
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        columns.append((np.asarray(func(up)) - np.asarray(func(down))) / (2 * step))
    return np.column_stack(columns)


#: Below this a fixed effect or a correlation counts as small for a finite-difference step; the
#: score is linear in the fixed effects, so their step only needs to be well above rounding.
SMALL_FIXED_EFFECT = 1e-3


def difference_scale(values: np.ndarray, is_variance: np.ndarray) -> np.ndarray:
    """Typical magnitude of each value for a finite-difference step.

    Variances are measured against the largest of them (a variance near 0 is stepped by a
    fraction of the others, which keeps it positive whatever the scale of the outcome);
    fixed effects and correlations against :data:`SMALL_FIXED_EFFECT`.
    """
    largest = np.max(np.abs(values[is_variance]), initial=0.0)
    return np.where(is_variance, 1e-3 * largest, SMALL_FIXED_EFFECT)


def _inverse(matrix: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrix)


def check_cov_options(cov_type: str, cov_kwds: dict | None, reml: bool, weighted: bool = False) -> dict:
    """Validate ``cov_type`` and its options before any work is done."""
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {list(COV_TYPES)}, got {cov_type!r}")
    cov_kwds = dict(cov_kwds or {})
    unknown = sorted(set(cov_kwds) - set(COV_TYPES[cov_type]))
    if unknown:
        allowed = list(COV_TYPES[cov_type]) or "none"
        raise ValueError(f"cov_kwds {unknown} are not options of cov_type={cov_type!r} (allowed: {allowed})")
    if weighted and reml:
        raise ValueError("sampling weights give a pseudo-likelihood, fitted by ML (reml=False)")
    if reml and cov_type in ("opg", "robust", "cluster", "survey"):
        raise ValueError(f"cov_type={cov_type!r} is built from ML scores; fit by ML (reml=False) to use it")
    if weighted and cov_type in ("oim", "eim", "opg"):
        raise ValueError(f"with sampling weights the information ({cov_type!r}) does not give the variance of "
                         "the estimates; use cov_type='robust', 'cluster' or 'survey'")
    if cov_type == "cluster" and "groups" not in cov_kwds:
        raise ValueError('cov_type="cluster" needs cov_kwds={"groups": ...}, one group label per input row')
    return cov_kwds


def covariance(model, params: np.ndarray, *, reml: bool, cov_type: str, fixed: np.ndarray,
               cov_kwds: dict | None = None) -> CovarianceResult:
    """Covariance matrix of the estimates.

    Parameters
    ----------
    model : MultilevelSEM
    params : ndarray
        Estimates, in the order of ``model.param_names``.
    reml : bool
    cov_type : str
        One of :data:`COV_TYPES`.
    fixed : ndarray of bool
        Parameters held fixed (on the boundary); their rows and columns are NaN.
    cov_kwds : dict, optional
        ``groups`` (cluster: one label per input row, constant within top-level clusters)
        and ``use_correction`` (robust, cluster; default True).
    """
    cov_kwds = check_cov_options(cov_type, cov_kwds, reml)
    free = ~np.asarray(fixed, dtype=bool)
    description = cov_type.upper()
    if cov_type in ("oim", "eim"):
        inner = _inverse(model.information(params, reml=reml, kind=cov_type)[np.ix_(free, free)])
    else:
        scores = model.score_obs(params)[:, free]
        if model.cluster_weights is not None:
            scores = scores * model.cluster_weights[:, None]
        if cov_type == "opg":
            inner = _inverse(scores.T @ scores)
        elif cov_type == "survey":
            bread = _inverse(model.information(params, kind="oim")[np.ix_(free, free)])
            psu = cluster_groups(model, cov_kwds["psu"], name="psu") if "psu" in cov_kwds else np.arange(len(scores))
            strata = (cluster_groups(model, cov_kwds["strata"], minimum=1, name="strata") if "strata" in cov_kwds
                      else np.zeros(len(scores), dtype=int))
            meat, n_psu, n_strata = _stratified_meat(scores, psu, strata)
            inner = bread @ meat @ bread
            description = f"SURVEY (linearized; {n_strata} strata, {n_psu} PSUs)"
        else:
            if cov_type == "cluster":
                groups = cluster_groups(model, cov_kwds["groups"])
                scores = np.add.reduceat(scores[np.argsort(groups, kind="stable")],
                                         np.flatnonzero(np.r_[True, np.diff(np.sort(groups)) != 0]), axis=0)
            n_groups = len(scores)
            factor = n_groups / (n_groups - 1) if cov_kwds.get("use_correction", True) else 1.0
            bread = _inverse(model.information(params, kind="oim")[np.ix_(free, free)])
            inner = factor * bread @ (scores.T @ scores) @ bread
            unit = "top-level clusters" if cov_type == "robust" else "groups"
            description = (f"{cov_type.upper()} ({n_groups:,} {unit}"
                           + (f", factor {n_groups}/{n_groups - 1})" if factor != 1.0 else ", no small-sample factor)"))
    cov = np.full((len(free), len(free)), np.nan)
    cov[np.ix_(free, free)] = 0.5 * (inner + inner.T)
    return CovarianceResult(cov, description)


def _stratified_meat(scores: np.ndarray, psu: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``sum_h n_h/(n_h-1) sum_i (z_hi - zbar_h)(z_hi - zbar_h)'`` over PSU totals ``z_hi``."""
    meat = np.zeros((scores.shape[1], scores.shape[1]))
    n_psu = 0
    for stratum in np.unique(strata):
        inside = strata == stratum
        units, codes = np.unique(psu[inside], return_inverse=True)
        if len(units) < 2:
            raise ValueError(f"stratum {stratum} has a single primary sampling unit; its variance cannot be "
                             "estimated (merge it with a neighbouring stratum)")
        totals = np.zeros((len(units), scores.shape[1]))
        np.add.at(totals, codes, scores[inside])
        centred = totals - totals.mean(0)
        meat += len(units) / (len(units) - 1) * centred.T @ centred
        n_psu += len(units)
    return meat, n_psu, len(np.unique(strata))


def cluster_groups(model, groups, minimum: int = 2, name: str = "groups") -> np.ndarray:
    """Group code of every top-level cluster; groups must not split a cluster.

    A row of the wide model is a top-level cluster, so its score cannot be divided among
    groups: a grouping finer than the top level is refused. ``name`` is the option's, for the messages
    (``groups``, ``psu``, ``strata``).
    """
    source = model.model_data
    groups = np.asarray(groups, dtype=object)
    if groups.shape != source.rows_used.shape:
        raise ValueError(f"{name} has shape {groups.shape}; give one value per input row ({len(source.rows_used):,})")
    used = groups[source.rows_used][model.layout.order]
    if any(g is None or (isinstance(g, float) and np.isnan(g)) for g in used):
        raise ValueError(f"{name} is missing for some rows used")
    codes = np.unique(used.astype(str), return_inverse=True)[1]
    per_cluster, varies = model.layout.per_unit(codes, 0)
    if varies is not None:
        top = model.layout.level_names[0]
        raise ValueError(
            f"{name} vary within units of {top!r}, the top level: a row of the wide model is one {top} "
            f"unit, so clustering below it is impossible; use {name} coarser than {top} (or cov_type='robust')"
        )
    if len(np.unique(per_cluster)) < minimum:
        raise ValueError(f"{name} has a single group; a cluster-robust covariance needs at least two")
    return per_cluster
