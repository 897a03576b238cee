"""GMM estimation of a wide SEM on its first and second moments (asymptotically distribution free).

The moments of complete wide rows ``y_i`` (``n`` rows, ``p`` outcomes) are

.. math:: s = [\\bar y;\\ \\operatorname{vech} S], \\qquad S = \\tfrac{1}{n-1} \\sum_i (y_i - \\bar y)(y_i - \\bar y)',

and the model implies ``sigma(theta) = [mu(theta); vech Sigma(theta)]``. GMM minimises
``F = (s - sigma)' W (s - sigma)`` with the optimal weight ``W = Gamma^{-1}``, ``Gamma`` the
covariance of ``d_i = [y_i; vech((y_i - ybar)(y_i - ybar)')]`` (divisor ``n``): Browne's
(1984) ADF estimator, Stata ``sem, method(adf)`` and lavaan ``estimator = "WLS"``. The two
steps are the weight, estimated from the data alone, and the minimisation (Gauss-Newton
from the ML estimates). Its covariance is ``(Delta' W Delta)^{-1} / (n - 1)`` with ``Delta``
the Jacobian of ``sigma``, valid whatever the distribution of the data, and
``J = (n - 1) F_min`` is the over-identification test, chi2 with (moments - parameters) df.
The divisors (``n - 1`` in ``S``, the covariance and ``J``; ``n`` in ``Gamma``) are lavaan's,
so that the estimates, standard errors and ``J`` agree with lavaan's to many digits; they
differ from the all-``n`` convention by a factor ``n/(n - 1)`` only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

__all__ = ["GMMEstimate", "fit_gmm", "sample_moments"]


@dataclass(frozen=True)
class GMMEstimate:
    """The outcome of :func:`fit_gmm`: estimates, their covariance and the over-identification test."""

    params: np.ndarray
    cov: np.ndarray
    converged: bool
    iterations: int
    gradient: np.ndarray  # of the discrepancy's half, ``Delta' W (s - sigma)``, at the estimates
    j_statistic: float  # ``(n - 1) F_min``
    j_df: int  # moments less parameters

    @property
    def j_pvalue(self) -> float:
        return float(stats.chi2.sf(self.j_statistic, self.j_df))


def sample_moments(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s`` (covariances with divisor ``n - 1``) and ``Gamma`` (divisor ``n``, centred on the divisor-``n``
    covariances) of complete rows."""
    n, p = data.shape
    mean = data.mean(0)
    centred = data - mean
    rows, cols = np.tril_indices(p)
    products = centred[:, rows] * centred[:, cols]
    d = np.hstack([data, products])
    deviation = d - d.mean(0)
    s = np.r_[mean, products.sum(0) / (n - 1)]
    return s, deviation.T @ deviation / n


def _implied_moments(model, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sigma(theta)`` and its Jacobian (moments x parameters)."""
    mean, sigma = model.ram.implied(params)
    d_mean, d_sigma = model.ram.jacobian(params)
    rows, cols = np.tril_indices(sigma.shape[0])
    moments = np.r_[mean[:, 0], sigma[rows, cols]]
    jacobian = np.hstack([d_mean[:, :, 0], d_sigma[:, rows, cols]]).T
    return moments, jacobian


def fit_gmm(model, ml_estimates: Callable[[], np.ndarray], maxiter: int = 200) -> GMMEstimate:
    """Two-step GMM (ADF) fit of a :class:`~sm_multisem.wide_model.WideSEM`.

    Parameters
    ----------
    model : WideSEM
        Read for its data (``endog``) and its implied moments (``ram``).
    ml_estimates : callable
        Returns the ML estimates, where the Gauss-Newton steps start (consistent, so in the basin
        of the GMM minimum); called once the data are known to suit GMM, as the ML fit is the
        costly part.
    maxiter : int

    Raises
    ------
    ValueError
        Wide rows with missing outcomes (the sample moments need complete data; FIML
        handles unbalanced data), or covariates conditioned on (the moments are those of
        all observed variables: model the covariates with ``covariates="joint"``).
    """
    data = np.asarray(model.endog, dtype=float)
    incomplete = int(np.isnan(data).any(axis=1).sum())
    if incomplete:
        raise ValueError(f"GMM (ADF) works on the sample means and covariances of complete wide data, but "
                         f"{incomplete:,} of {len(data):,} wide rows have missing positions; fit by ML "
                         "(method='ml', FIML), which uses every observed value")
    if len(model.ram.exogenous) > 1:
        raise ValueError("GMM (ADF) fits the moments of all observed variables; the covariates are conditioned "
                         "on here: build the model with covariates='joint' so that their moments are modelled too")
    n = len(data)
    s, gamma = sample_moments(data)
    n_moments, k = len(s), model.ram.k_params
    if n_moments <= k:
        raise ValueError(f"{k} parameters and only {n_moments} moments: the model is not over-identified")
    if n <= n_moments:
        raise ValueError(f"GMM (ADF) needs more wide rows ({n:,}) than moments ({n_moments:,}) to estimate "
                         "the fourth-moment weight matrix; use ML")
    weight = np.linalg.inv(gamma)
    params = np.asarray(ml_estimates(), dtype=float)

    def discrepancy(theta):
        moments, jacobian = _implied_moments(model, theta)
        r = s - moments
        return float(r @ weight @ r), r, jacobian

    value, residual, jacobian = discrepancy(params)
    converged, iterations = False, 0
    for iterations in range(1, maxiter + 1):
        normal = jacobian.T @ weight @ jacobian
        gradient = jacobian.T @ weight @ residual
        step = np.linalg.solve(normal, gradient)
        for _ in range(30):
            trial = discrepancy(params + step)
            if trial[0] <= value:
                break
            step /= 2.0
        params = params + step
        value, residual, jacobian = trial
        if np.max(np.abs(step) / np.maximum(np.abs(params), 1.0)) < 1e-10:
            converged = True
            break
    if not converged:
        warnings.warn("the GMM iterations did not converge", ConvergenceWarning, stacklevel=4)
    cov = np.linalg.inv(jacobian.T @ weight @ jacobian) / (n - 1)
    return GMMEstimate(params, cov, converged, iterations, jacobian.T @ weight @ residual, (n - 1) * value,
                       n_moments - k)
