"""The likelihood evaluated the slow way: a dense covariance matrix per cluster."""

import numpy as np
from scipy import stats


def dense_covariances(model, params):
    """Dense Sigma_k of every cluster, built from the plan's per-unit and per-row variances."""
    _, variances = model.plan.split(params)
    layout = model.layout
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    resid = variances[model.plan.row_variance]
    for k in range(layout.n_clusters):
        rows = np.flatnonzero(units[0] == k)
        sigma = np.diag(resid[rows])
        for level, which in enumerate(model.plan.unit_variance):
            u = units[level][rows]
            sigma += variances[which][u][:, None] * (u[:, None] == u[None, :])
        yield rows, sigma


def dense_loglike(model, params):
    """Sum over clusters of the multivariate normal log-density with a dense Sigma_k."""
    beta, _ = model.plan.split(params)
    y = model.model_data.endog[model.layout.order]
    X = model.model_data.exog[model.layout.order]
    return sum(stats.multivariate_normal(X[rows] @ beta, sigma).logpdf(y[rows])
               for rows, sigma in dense_covariances(model, params))


def finite_difference_hessian(score, params: np.ndarray) -> np.ndarray:
    """Central differences of an analytic score: the Hessian the covariance estimators invert."""
    k = len(params)
    hess = np.empty((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = 1e-5 * max(abs(params[i]), 1e-3)
        hess[:, i] = (score(params + step) - score(params - step)) / (2 * step[i])
    return hess
