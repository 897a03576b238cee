"""Covariance of the estimates, looked up by name.

``"oim"``
    Inverse of the observed information (the negative Hessian of the log-likelihood,
    by central differences of the analytic score). Matches statsmodels ``MixedLM``
    and lavaan ``information="observed"``.
``"eim"``
    Inverse of the expected information: ``X' Sigma^{-1} X`` for the fixed effects,
    ``tr(P Sigma_i P Sigma_j) / 2`` for the variances, zero between them. The fixed-effect
    block is lme4's ``vcov()`` and Stata ``mixed``'s.

Under REML both use ``(X' Sigma^{-1} X)^{-1}`` for the fixed effects and the restricted
likelihood for the variances. Parameters estimated on the boundary (a variance of 0)
are held fixed: their rows and columns are missing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["COV_TYPES", "covariance", "numerical_jacobian"]

COV_TYPES = ("oim", "eim")


def numerical_jacobian(func: Callable[[np.ndarray], np.ndarray], x: np.ndarray, relative_step: float = 1e-5):
    """Central-difference Jacobian of a vector function (one column per element of ``x``)."""
    x = np.asarray(x, dtype=float)
    columns = []
    for i in range(len(x)):
        step = relative_step * max(abs(x[i]), 1e-3)
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        columns.append((np.asarray(func(up)) - np.asarray(func(down))) / (2 * step))
    return np.column_stack(columns)


def covariance(model, params: np.ndarray, *, reml: bool, cov_type: str, fixed: np.ndarray) -> np.ndarray:
    """Covariance matrix of the estimates.

    Parameters
    ----------
    model : MultilevelSEM
    params : ndarray
        Estimates, in the order of ``model.param_names``.
    reml : bool
    cov_type : {"oim", "eim"}
    fixed : ndarray of bool
        Parameters held fixed (on the boundary); their rows and columns are NaN.
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}")
    information = model.information(params, reml=reml, kind=cov_type)
    free = ~np.asarray(fixed, dtype=bool)
    cov = np.full(information.shape, np.nan)
    block = information[np.ix_(free, free)]
    try:
        cov[np.ix_(free, free)] = np.linalg.inv(block)
    except np.linalg.LinAlgError:
        cov[np.ix_(free, free)] = np.linalg.pinv(block)
    return 0.5 * (cov + cov.T)
