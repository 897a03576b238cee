"""Reference log-likelihood in 40-digit arithmetic for tests/test_likelihood.py.

A level variance 1e8 times the residual variance makes a dense float64 evaluation lose
about six digits; this script evaluates the same dense multivariate normal in mpmath.
Run from the repository root (needs ``pip install mpmath``):

    python tests/reference/high_precision_loglike.py
"""

import mpmath as mp
import numpy as np

import sm_multisem as sms

mp.mp.dps = 40


def extreme_variance_model():
    data = sms.simulate_nested((5, 3, 4), sd=(1.0, 1.0, 1.0), seed=3)
    data["y"] = data["y"] + 1e4 * data["j"].map({1: 0.3, 2: -1.1, 3: 0.8})
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data), np.array([0.0, 2.0, 1.0, 1e8, 1.0])


def main():
    model, params = extreme_variance_model()
    beta, variances = model.plan.split(params)
    level_var, resid_var = variances[:-1], variances[-1]
    layout = model.layout
    y = model.model_data.endog[layout.order]
    X = model.model_data.exog[layout.order]
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    total = mp.mpf(0)
    for k in range(layout.n_clusters):
        rows = np.flatnonzero(units[0] == k)
        n = len(rows)
        sigma = mp.matrix(n, n)
        for a in range(n):
            for b in range(n):
                value = mp.mpf(resid_var) if a == b else mp.mpf(0)
                for level, var in enumerate(level_var):
                    if units[level][rows[a]] == units[level][rows[b]]:
                        value += mp.mpf(var)
                sigma[a, b] = value
        resid = mp.matrix([mp.mpf(float(y[i])) - sum(mp.mpf(float(X[i, c])) * mp.mpf(float(beta[c]))
                                                      for c in range(X.shape[1])) for i in rows])
        quad = (resid.T * mp.lu_solve(sigma, resid))[0]
        total += -(n * mp.log(2 * mp.pi) + mp.log(mp.det(sigma)) + quad) / 2
    print(mp.nstr(total, 20))


if __name__ == "__main__":
    main()
