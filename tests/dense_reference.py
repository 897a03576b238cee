"""The likelihood evaluated the slow way: a dense covariance matrix per cluster."""

import numpy as np
from scipy import stats


def dense_covariances(model, params):
    """Dense Sigma_k of every cluster, built from the plan's per-unit and per-row variances.

    With AR(1) residuals, two rows of one lowest unit covary ``S_e rho^|t - s|`` (the variance
    and rho of the unit's label, with AR(1) residuals by a label); with a random
    slope of ``x`` at a level, two rows of one unit covary ``z_s' G z_t``, ``z = (1, x)``.
    """
    _, variances = model.plan.split(params)
    layout = model.layout
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    resid = variances[model.plan.row_variance]
    slope_x = None
    if model.plan.slope_entries:
        column = model.model_data.exog_names.index(next(iter(model._recipe["slopes"].values())))
        slope_x = model.model_data.exog[model.layout.order, column]
    time = None
    if model.plan.row_correlation is not None:
        time = model.labels.values[("residual correlation", "Residual")][0]
        rho = variances[model.plan.row_correlation]  # of every row: its unit's label's rho
    for k in range(layout.n_clusters):
        rows = np.flatnonzero(units[0] == k)
        if time is None:
            sigma = np.diag(resid[rows])
        else:
            same = units[-1][rows][:, None] == units[-1][rows][None, :]
            sigma = resid[rows][:, None] * same * rho[rows][:, None] ** np.abs(time[rows][:, None] - time[rows][None, :])
        for level, which in enumerate(model.plan.unit_variance):
            u = units[level][rows]
            same = u[:, None] == u[None, :]
            slope = model.plan.slope_entries[level] if model.plan.slope_entries else None
            if slope is None:
                sigma += variances[which][u][:, None] * same
            else:
                g = variances[[[which[0], slope[0]], [slope[0], slope[1]]]]
                z = np.column_stack([np.ones(len(rows)), slope_x[rows]])
                sigma += z @ g @ z.T * same
        yield rows, sigma


def dense_loglike(model, params):
    """Sum over clusters of the multivariate normal log-density with a dense Sigma_k."""
    beta, _ = model.plan.split(params)
    y = model.model_data.endog[model.layout.order]
    X = model.model_data.exog[model.layout.order]
    return sum(stats.multivariate_normal(X[rows] @ beta, sigma).logpdf(y[rows])
               for rows, sigma in dense_covariances(model, params))


def dense_random_effects(model, params):
    """``E[b | y] = G Z' Sigma^-1 r`` and ``diag Var(b | y) = diag(G - G Z' Sigma^-1 Z G)``, cluster by cluster.

    Returns two lists with one array per level (top first), every unit in the layout's order.
    """
    beta, variances = model.plan.split(params)
    layout = model.layout
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    y = model.model_data.endog[layout.order]
    X = model.model_data.exog[layout.order]
    means = [np.full(n, np.nan) for n in layout.n_units]
    conditional = [np.full(n, np.nan) for n in layout.n_units]
    for rows, sigma in dense_covariances(model, params):
        present = [np.unique(u[rows]) for u in units]
        Z = np.hstack([u[rows][:, None] == p[None, :] for u, p in zip(units, present)]).astype(float)
        g = np.concatenate([variances[which][p] for which, p in zip(model.plan.unit_variance, present)])
        gz = g[:, None] * Z.T
        mean = gz @ np.linalg.solve(sigma, y[rows] - X[rows] @ beta)
        var = g - np.einsum("ij,ji->i", gz, np.linalg.solve(sigma, gz.T))
        ends = np.cumsum([len(p) for p in present])[:-1]
        for level, (p, m, v) in enumerate(zip(present, np.split(mean, ends), np.split(var, ends))):
            means[level][p], conditional[level][p] = m, v
    return means, conditional


def finite_difference_hessian(score, params: np.ndarray) -> np.ndarray:
    """Central differences of an analytic score: the Hessian the covariance estimators invert."""
    k = len(params)
    hess = np.empty((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = 1e-5 * max(abs(params[i]), 1e-3)
        hess[:, i] = (score(params + step) - score(params - step)) / (2 * step[i])
    return hess
