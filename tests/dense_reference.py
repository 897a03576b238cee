"""The likelihood evaluated the slow way: a dense covariance matrix per cluster."""

import numpy as np
from scipy import stats


def dense_covariances(model, params):
    """Dense Sigma_k of every cluster, built from the plan's per-unit and per-row variances.

    With a residual block, two rows of one lowest unit covary by the entry of ``R`` of their occasions.
    With AR(1) residuals, two rows of one lowest unit covary ``S_e rho^|t - s|`` (the variance
    and rho of the unit's label, with AR(1) residuals by a label); with random effects on the
    columns ``z`` of a level (random slopes, ``(0 + type|k)``), two rows of one unit covary
    ``z_s' G z_t``.
    """
    _, variances = model.plan.split(params)
    layout = model.layout
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    resid = variances[model.plan.row_variance]
    effect_values = None
    if model.plan.level_effects:  # the effect columns, the ones only for random intercepts
        effects = model.model_data.effects
        effect_values = np.ones((layout.n_rows, 1)) if effects is None else effects.values[layout.order]
    time = None
    if model.plan.row_correlation is not None:
        time = model.labels.values[("residual correlation", "Residual")][0]
        rho = variances[model.plan.row_correlation]  # of every row: its unit's label's rho
    block = model.plan.residual_block
    for k in range(layout.n_clusters):
        rows = np.flatnonzero(units[0] == k)
        if block is not None:  # a dense residual covariance along occasions within every lowest unit
            occasion, entries = block
            full = np.where(entries >= 0, variances[np.maximum(entries, 0)], 0.0)
            same = units[-1][rows][:, None] == units[-1][rows][None, :]
            sigma = full[np.ix_(occasion[rows], occasion[rows])] * same
        elif time is None:
            sigma = np.diag(resid[rows])
        else:
            same = units[-1][rows][:, None] == units[-1][rows][None, :]
            sigma = resid[rows][:, None] * same * rho[rows][:, None] ** np.abs(time[rows][:, None] - time[rows][None, :])
        for level, which in enumerate(model.plan.unit_variance):
            u = units[level][rows]
            same = u[:, None] == u[None, :]
            if effect_values is None:
                sigma += variances[which][u][:, None] * same
            else:
                effects = model.plan.level_effects[level]
                z = effect_values[rows][:, effects.columns]
                sigma += z @ effects.covariance(variances) @ z.T * same
        yield rows, sigma


def dense_loglike(model, params):
    """Sum over clusters of the multivariate normal log-density with a dense Sigma_k."""
    beta, _ = model.plan.split(params)
    y = model.model_data.endog[model.layout.order]
    X = model.model_data.exog[model.layout.order]
    return sum(stats.multivariate_normal(X[rows] @ beta, sigma).logpdf(y[rows])
               for rows, sigma in dense_covariances(model, params))


def dense_random_effects(model, params):
    """``E[b | y] = G Z' Sigma^-1 r`` and ``Var(b | y) = G - G Z' Sigma^-1 Z G``, cluster by cluster.

    Returns two lists with one array per level (top first), every unit in the layout's order: the
    means (units,) and variances (units,) of random intercepts, or with random effects on other
    columns the means (units, q) and covariances (units, q, q).
    """
    beta, variances = model.plan.split(params)
    layout = model.layout
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    y = model.model_data.endog[layout.order]
    X = model.model_data.exog[layout.order]
    if model.plan.level_effects:
        values = model.model_data.effects.values[layout.order]
        blocks = [(effects.columns, effects.covariance(variances)) for effects in model.plan.level_effects]
    else:
        values = np.ones((len(y), 1))
        blocks = [(np.zeros(1, dtype=int), None) for _ in layout.levels]
    q = [len(columns) for columns, _ in blocks]
    means = [np.full((n, size), np.nan) for n, size in zip(layout.n_units, q)]
    conditional = [np.full((n, size, size), np.nan) for n, size in zip(layout.n_units, q)]
    for rows, sigma in dense_covariances(model, params):
        present = [np.unique(u[rows]) for u in units]
        z_parts, g_parts, owners = [], [], []
        for level, ((columns, g), p) in enumerate(zip(blocks, present)):
            for unit in p:
                z_parts.append(values[rows][:, columns] * (units[level][rows] == unit)[:, None])
                g_parts.append(g if g is not None else np.array([[variances[model.plan.unit_variance[level][unit]]]]))
                owners.append((level, unit))
        Z = np.hstack(z_parts)
        G = np.zeros((Z.shape[1],) * 2)
        ends = np.cumsum([0] + [len(g) for g in g_parts])
        for g, start, end in zip(g_parts, ends[:-1], ends[1:]):
            G[start:end, start:end] = g
        gz = G @ Z.T
        mean = gz @ np.linalg.solve(sigma, y[rows] - X[rows] @ beta)
        cov = G - gz @ np.linalg.solve(sigma, gz.T)
        for (level, unit), start, end in zip(owners, ends[:-1], ends[1:]):
            means[level][unit] = mean[start:end]
            conditional[level][unit] = cov[start:end, start:end]
    if not model.plan.level_effects:
        return [m[:, 0] for m in means], [c[:, 0, 0] for c in conditional]
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
