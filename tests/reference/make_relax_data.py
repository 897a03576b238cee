"""Write tests/reference/relax_data.csv, the data that tests/reference/relax_nlme.R fits.

Three-level nested data (k top, j nested in k, rows i) with three departures from
y ~ x + (1|k/j): the slope of x and the j-level variance depend on a unit-level
``type`` ("pub", "prv", "chr"), and the residual variance on a row-level ``role``
("a", "b", "c"). About 20% of rows are dropped at random, so the design is unbalanced.

Run from the repository root:  python tests/reference/make_relax_data.py
"""

from pathlib import Path

import numpy as np

import sm_multisem as sms

HERE = Path(__file__).parent

SIZES = (60, 4, 3)
TYPES = ("pub", "prv", "chr")
ROLES = ("a", "b", "c")
INTERCEPT = 0.5
SLOPE = {"pub": 2.0, "prv": 1.5, "chr": 2.5}
SD_V = {"pub": 0.5, "prv": 1.0, "chr": 1.5}
SD_E = {"a": 0.7, "b": 1.0, "c": 1.4}
DROP_FRACTION = 0.2


def relax_data():
    """The base design of ``simulate_nested`` with ``type``, ``role`` and a rebuilt ``y``."""
    data = sms.simulate_nested(SIZES, sd=(1.0, 0.8, 1.0), beta=(0.5, 2.0), seed=31)
    rng = np.random.default_rng(32)
    n_k, n_j, _ = SIZES
    n = len(data)
    k_index = data["k"].to_numpy() - 1
    unit_index = k_index * n_j + (data["j"].to_numpy() - 1)

    unit_type = rng.choice(TYPES, size=n_k * n_j)
    data["type"] = unit_type[unit_index]
    data["role"] = rng.choice(ROLES, size=n)

    u = rng.normal(size=n_k)
    v = rng.normal(size=n_k * n_j)
    e = rng.normal(size=n)
    slope = data["type"].map(SLOPE).to_numpy()
    sd_v = data["type"].map(SD_V).to_numpy()
    sd_e = data["role"].map(SD_E).to_numpy()
    x = data["x"].to_numpy()
    data["y"] = INTERCEPT + slope * x + u[k_index] + v[unit_index] * sd_v + e * sd_e

    keep = rng.uniform(size=n) >= DROP_FRACTION
    data = data[keep].reset_index(drop=True)
    return data[["k", "j", "i", "type", "role", "x", "y"]]


def main():
    relax_data().to_csv(HERE / "relax_data.csv", index=False)


if __name__ == "__main__":
    main()
