"""Write tests/reference/structures_data.csv, the data that tests/reference/structures_lme4.R fits.

Three-level nested data: 50 top-level clusters ``k`` (ids 1..50), each with 3-7 units ``j``
(``j`` restarts at 1 in each ``k``), each unit with 1-8 rows (some units hold a single row).
A unit-level label ``type`` ("pub", "prv", "chr", drawn per unit with probabilities
0.5 / 0.3 / 0.2, constant within the unit k:j) and a row-level label ``role`` ("a", "b",
drawn per row with equal probabilities; it plays no part in the outcome). Per row,
``x ~ N(0.5, 1)`` and ``w ~ N(-0.3, 0.8^2)`` (mean, standard deviation 0.8). The outcome is

    y = 1 + 2 x - 0.5 w + shift[type] + b0_k + b1_k x + b2_k w + c_{k,type} + v_{kj} + e

with ``shift = {pub: 0, prv: 0.4, chr: -0.3}``;
``(b0, b1, b2)_k ~ N(0, G)``, ``G = [[1, 0.3, -0.2], [0.3, 0.5, 0.1], [-0.2, 0.1, 0.4]]``;
``(c_{k,pub}, c_{k,prv}, c_{k,chr}) ~ N(0, C)`` independently over ``k``, with variances
0.6, 0.9, 0.3 and correlation 0.4 between every two types; the unit intercept
``v_{kj} ~ N(0, 0.5)`` (variance 0.5); and ``e ~ N(0, 1)``.
Values are rounded to 6 decimals; rows are sorted by k, j.

Run from the repository root:  python tests/reference/make_structures_data.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent

N_K = 50
SEED = 20250311
TYPES = np.array(["pub", "prv", "chr"])
TYPE_PROBS = [0.5, 0.3, 0.2]
SHIFT = np.array([0.0, 0.4, -0.3])
G = np.array([[1.0, 0.3, -0.2], [0.3, 0.5, 0.1], [-0.2, 0.1, 0.4]])
TYPE_VAR = np.array([0.6, 0.9, 0.3])
TYPE_CORR = 0.4
VAR_UNIT = 0.5


def structures_data(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_units = rng.integers(3, 8, size=N_K)  # 3..7 units per k
    unit_size = rng.integers(1, 9, size=int(n_units.sum()))  # 1..8 rows per unit
    n = int(unit_size.sum())
    cluster_of_unit = np.repeat(np.arange(N_K), n_units)
    unit = np.repeat(np.arange(len(unit_size)), unit_size)
    k = cluster_of_unit[unit]
    j = unit - np.r_[0, np.cumsum(n_units)[:-1]][k]
    unit_type = rng.choice(3, size=len(unit_size), p=TYPE_PROBS)
    t = unit_type[unit]
    role = rng.choice(np.array(["a", "b"]), size=n)
    x = rng.normal(0.5, 1.0, size=n)
    w = rng.normal(-0.3, 0.8, size=n)
    b = rng.multivariate_normal(np.zeros(3), G, size=N_K)[k]
    sd = np.sqrt(TYPE_VAR)
    corr = TYPE_CORR + (1.0 - TYPE_CORR) * np.eye(3)
    c = rng.multivariate_normal(np.zeros(3), corr * np.outer(sd, sd), size=N_K)[k, t]
    v = rng.normal(0.0, np.sqrt(VAR_UNIT), size=len(unit_size))[unit]
    e = rng.normal(size=n)
    y = 1.0 + 2.0 * x - 0.5 * w + SHIFT[t] + b[:, 0] + b[:, 1] * x + b[:, 2] * w + c + v + e
    return pd.DataFrame({
        "k": k + 1, "j": j + 1, "type": TYPES[t], "role": role,
        "x": x.round(6), "w": w.round(6), "y": y.round(6),
    })


if __name__ == "__main__":
    structures_data().to_csv(HERE / "structures_data.csv", index=False)
