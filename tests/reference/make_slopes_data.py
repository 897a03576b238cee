"""Write tests/reference/slopes_data.csv, the data that tests/reference/slopes_lme4.R fits.

Three-level nested data (k top, j nested in k, rows i), unbalanced (2-5 units of j per k,
1-6 rows per unit, so some units hold a single row), from
``y = 1 + 2x + u_k + v_jk + (a_k + c_jk) x + e`` with correlated intercepts and slopes at
both levels: ``var(u, a) = [[1, 0.3], [0.3, 0.5]]``, ``var(v, c) = [[0.5, -0.1], [-0.1, 0.3]]``,
``var(e) = 1``, and ``x ~ N(0.5, 1)`` (not centred, so the intercept-slope covariance matters).

Also writes tests/reference/slopes_singular_data.csv: the article's design (30 clusters) with no
random slope at all, where the ML fit of ``y ~ x + (1 + x|k)`` has perfectly correlated
intercepts and slopes (a singular ``G``, lme4's "boundary (singular) fit").

Run from the repository root:  python tests/reference/make_slopes_data.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent
N_CLUSTERS = 60
G_K = [[1.0, 0.3], [0.3, 0.5]]
G_J = [[0.5, -0.1], [-0.1, 0.3]]


def slopes_data(seed: int = 41) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_units = rng.integers(2, 6, size=N_CLUSTERS)
    unit_size = rng.integers(1, 7, size=int(n_units.sum()))
    unit = np.repeat(np.arange(len(unit_size)), unit_size)
    cluster_of_unit = np.repeat(np.arange(N_CLUSTERS), n_units)
    k = cluster_of_unit[unit]
    j = unit - np.r_[0, np.cumsum(n_units)[:-1]][k]
    x = rng.normal(0.5, 1.0, size=len(unit))
    u = rng.multivariate_normal([0, 0], G_K, size=N_CLUSTERS)[k]
    v = rng.multivariate_normal([0, 0], G_J, size=len(unit_size))[unit]
    y = 1.0 + 2.0 * x + u[:, 0] + v[:, 0] + (u[:, 1] + v[:, 1]) * x + rng.normal(size=len(unit))
    return pd.DataFrame({"k": k + 1, "j": j + 1, "x": x.round(6), "y": y.round(6)})


if __name__ == "__main__":
    slopes_data().to_csv(HERE / "slopes_data.csv", index=False)
    singular = sms.simulate_article_data(n_clusters=30, seed=0)[["k", "j", "x", "y"]]
    singular.round(8).to_csv(HERE / "slopes_singular_data.csv", index=False)
