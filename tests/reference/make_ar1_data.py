"""Write tests/reference/ar1_data.csv, the data that tests/reference/ar1_nlme.R fits.

Three-level nested data: 80 clusters k, 3 units j per cluster (j restarts at 1 in each k)
and 6 measurement occasions per unit, numbered by an integer ``time`` 1..6. The truth is

    y = 0.5 + 2 x + u_k + v_jk + e,   u ~ N(0, 1),  v ~ N(0, 0.6^2),  x ~ N(0, 1),

with e a stationary AR(1) series along ``time`` within each (k, j) unit: marginal variance
1 and correlation 0.6 between consecutive occasions (e_1 ~ N(0, 1),
e_t = 0.6 e_{t-1} + sqrt(1 - 0.6^2) eta_t). About 20% of the rows are then dropped at
random, so the remaining occasions of a unit have gaps and the correlation between
occasions t and s is 0.6^|t - s|. The rows are written in a shuffled order, not sorted by
k, j or time.

Run from the repository root:  python tests/reference/make_ar1_data.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent

N_K, N_J, N_T = 80, 3, 6
INTERCEPT, SLOPE = 0.5, 2.0
SD_K, SD_J = 1.0, 0.6
RHO = 0.6
DROP_FRACTION = 0.2
SEED = 51


def ar1_data():
    rng = np.random.default_rng(SEED)
    n_units = N_K * N_J
    k = np.repeat(np.arange(1, N_K + 1), N_J * N_T)
    j = np.tile(np.repeat(np.arange(1, N_J + 1), N_T), N_K)
    time = np.tile(np.arange(1, N_T + 1), n_units)
    n = len(k)

    x = rng.normal(size=n)
    u = rng.normal(scale=SD_K, size=N_K)
    v = rng.normal(scale=SD_J, size=n_units)
    eta = rng.normal(size=(n_units, N_T))
    e = np.empty((n_units, N_T))
    e[:, 0] = eta[:, 0]
    for t in range(1, N_T):
        e[:, t] = RHO * e[:, t - 1] + np.sqrt(1.0 - RHO**2) * eta[:, t]

    unit_index = (k - 1) * N_J + (j - 1)
    y = INTERCEPT + SLOPE * x + u[k - 1] + v[unit_index] + e.ravel()
    data = pd.DataFrame({"k": k, "j": j, "time": time, "x": x, "y": y})

    keep = rng.uniform(size=n) >= DROP_FRACTION
    data = data[keep]
    order = rng.permutation(len(data))
    return data.iloc[order].reset_index(drop=True)


def main():
    ar1_data().to_csv(HERE / "ar1_data.csv", index=False)


if __name__ == "__main__":
    main()
