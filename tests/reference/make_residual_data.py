"""Write tests/reference/residual_data.csv, the data that tests/reference/residual_nlme.R fits.

Two-level nested data: 60 clusters k, 4 units j per cluster (j restarts at 1 in each k) and
4 occasions per unit, numbered by an integer ``time`` 1..4. A unit's label ``type`` is ``a``
for j = 1, 2 and ``b`` for j = 3, 4 (constant within the unit). Three outcomes share
``x ~ N(0, 1)`` and a cluster effect ``u_k ~ N(0, 0.8^2)``:

* ``y_exch = 1 + 0.5 x + u_k + e``: the residuals of a unit exchangeable, variance 1 and a
  *negative* correlation -0.25 (a random intercept of the unit cannot produce it);
* ``y_by = 1 + 0.5 x + u_k + e``: exchangeable by type, variance 1 and correlation 0.3 for
  ``a``, variance 2 and correlation 0.6 for ``b``;
* ``y_un = 1 + 0.5 x + u_k + e``: unstructured along time, standard deviations 1, 1.2, 1.5,
  1.8 and correlations 0.5 (lag 1), 0.3 (lag 2), -0.1 (lag 3).

``keep`` marks the rows of the unbalanced version (about 15% of the rows dropped at random,
so units hold 1 to 4 occasions). The rows are written in a shuffled order.

Run from the repository root:  python tests/reference/make_residual_data.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent

N_K, N_J, N_T = 60, 4, 4
SD_K = 0.8
DROP_FRACTION = 0.15
SEED = 20240607


def exchangeable(variance: float, correlation: float) -> np.ndarray:
    return variance * ((1.0 - correlation) * np.eye(N_T) + correlation)


def unstructured() -> np.ndarray:
    sd = np.array([1.0, 1.2, 1.5, 1.8])
    lag = np.abs(np.subtract.outer(np.arange(N_T), np.arange(N_T)))
    corr = np.array([1.0, 0.5, 0.3, -0.1])[lag]
    return corr * np.outer(sd, sd)


def residual_data() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    n_units = N_K * N_J
    k = np.repeat(np.arange(1, N_K + 1), N_J * N_T)
    j = np.tile(np.repeat(np.arange(1, N_J + 1), N_T), N_K)
    time = np.tile(np.arange(1, N_T + 1), n_units)
    unit_type = np.where(j <= 2, "a", "b")
    x = rng.normal(size=len(k))
    u = rng.normal(scale=SD_K, size=N_K)[k - 1]

    def draw(covariance: np.ndarray) -> np.ndarray:
        return rng.multivariate_normal(np.zeros(N_T), covariance, size=n_units).ravel()

    by_type = np.where(unit_type == "a", draw(exchangeable(1.0, 0.3)), draw(exchangeable(2.0, 0.6)))
    mean = 1.0 + 0.5 * x + u
    data = pd.DataFrame({
        "k": k, "j": j, "time": time, "type": unit_type, "x": x,
        "y_exch": mean + draw(exchangeable(1.0, -0.25)),
        "y_by": mean + by_type,
        "y_un": mean + draw(unstructured()),
        "keep": rng.uniform(size=len(k)) >= DROP_FRACTION,
    })
    return data.iloc[rng.permutation(len(data))].reset_index(drop=True)


def main():
    residual_data().to_csv(HERE / "residual_data.csv", index=False)


if __name__ == "__main__":
    main()
