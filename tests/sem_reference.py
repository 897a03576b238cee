"""The wide SEM evaluated from its parameter table alone, as an SEM program would.

Reads the per-position table (``model.parameter_table``) and the wide data, builds each
cluster's implied mean and covariance of its observed outcomes (loadings, latent
variances, residual variances and covariances, regressions on the covariates of the same
position), and sums the multivariate normal log-densities of what is observed (FIML).
Nothing here uses the package's likelihood, layout or plan.
"""

import numpy as np
from scipy import stats


def wide_sem_loglike(table, wide, values: dict[str, float]) -> float:
    """FIML log-likelihood of the wide data under the table, with labelled parameters ``values``."""
    regressions = table[table["op"].isin(["~", "~1"])]
    outcomes = list(dict.fromkeys(regressions["lhs"]))
    loadings = table[table["op"] == "=~"]
    latents = list(dict.fromkeys(loadings["lhs"]))
    lam = np.zeros((len(outcomes), len(latents)))
    for row in loadings.itertuples():
        lam[outcomes.index(row.rhs), latents.index(row.lhs)] = row.value
    psi = np.zeros((len(latents), len(latents)))
    theta = np.zeros((len(outcomes), len(outcomes)))
    values = dict(values)
    for row in table[table["op"] == "=="].itertuples():  # labels fixed by a constraint, S_e_lag2 == S_e*rho^2
        values[row.lhs] = eval(row.rhs.replace("^", "**"), {}, values)
    for row in table[table["op"] == "~~"].itertuples():
        value = values[row.label] if row.free else row.value
        if row.lhs in latents:
            a, b = latents.index(row.lhs), latents.index(row.rhs)
            psi[a, b] = psi[b, a] = value
        else:
            theta[outcomes.index(row.lhs), outcomes.index(row.rhs)] = value
            theta[outcomes.index(row.rhs), outcomes.index(row.lhs)] = value
    sigma = lam @ psi @ lam.T + theta
    total = 0.0
    for _, cluster in wide.iterrows():
        mean = np.zeros(len(outcomes))
        for row in regressions.itertuples():
            at = outcomes.index(row.lhs)
            mean[at] += values[row.label] * (1.0 if row.op == "~1" else cluster[row.rhs])
        y = cluster[outcomes].to_numpy(dtype=float)
        seen = ~np.isnan(y)
        total += stats.multivariate_normal(mean[seen], sigma[np.ix_(seen, seen)]).logpdf(y[seen])
    return total
