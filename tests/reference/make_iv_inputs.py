"""Write the data that tests/reference/iv_lavaan.R and iv_linearmodels.py fit: an
endogenous covariate with instruments in the article's nested design.

Counties ``k`` (400), two schools ``j`` in each, two students ``i`` in each school
(balanced, 1600 rows). Per row: exogenous ``w``, instruments ``z1``, ``z2``, all N(0, 1)
and independent; then

    x = 0.5 + 0.8 z1 + 0.5 z2 + 0.3 w + a_k  + b_kj + e_x
    y = 1.0 + 1.0 x  + 0.5 w           + u_k  + v_kj + e_y

with (a_k, u_k) bivariate normal, variances 0.5 and 1, correlation 0.3; (b_kj, v_kj)
variances 0.3 and 0.5, correlation 0.3; (e_x, e_y) variances 1 and 1, correlation 0.5.
So in iv_lavaan.R's labels the truth is b = 1, gw = 0.5, cy = 1, p1 = 0.8, p2 = 0.5,
pw = 0.3, cx = 0.5, S_kx = 0.5, S_ky = 1, C_k = 0.3 sqrt(0.5), S_jx = 0.3, S_jy = 0.5,
C_j = 0.3 sqrt(0.15), S_ex = 1, S_ey = 1, C_e = 0.5.

Written here:

* ``iv_long.csv``: ``k, j, i, y, x, w, z1, z2``;
* ``iv_wide.csv``: one row per county; the position of row (j, i) is ``<j>_<i>`` as the
  package names positions, and every variable gets its position appended to its name:
  ``y1_1, y1_2, y2_1, y2_2, x1_1, ..., w1_1, ..., z1_1_1, z1_1_2, z1_2_1, z1_2_2,
  z2_1_1, ..., z2_2_2`` (so ``z1_1_2`` is ``z1`` at position ``1_2``: school 1, student 2).

Run from the repository root:  python tests/reference/make_iv_inputs.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent

N_COUNTIES, N_SCHOOLS, N_STUDENTS = 400, 2, 2
SEED = 20243
VARIABLES = ["y", "x", "w", "z1", "z2"]


def correlated_pairs(rng, size, var_x, var_y, rho):
    """``size`` draws of a bivariate normal (first column the x part, second the y part)."""
    cov = np.array([[var_x, rho * np.sqrt(var_x * var_y)], [rho * np.sqrt(var_x * var_y), var_y]])
    return rng.multivariate_normal(np.zeros(2), cov, size=size, method="cholesky")


def long_data():
    rng = np.random.default_rng(SEED)
    k, j, i = (a.ravel() + 1 for a in np.indices((N_COUNTIES, N_SCHOOLS, N_STUDENTS)))
    n = len(k)
    school = (k - 1) * N_SCHOOLS + (j - 1)
    w, z1, z2 = rng.normal(size=(3, n))
    county = correlated_pairs(rng, N_COUNTIES, 0.5, 1.0, 0.3)
    schools = correlated_pairs(rng, N_COUNTIES * N_SCHOOLS, 0.3, 0.5, 0.3)
    residual = correlated_pairs(rng, n, 1.0, 1.0, 0.5)
    x = 0.5 + 0.8 * z1 + 0.5 * z2 + 0.3 * w + county[k - 1, 0] + schools[school, 0] + residual[:, 0]
    y = 1.0 + 1.0 * x + 0.5 * w + county[k - 1, 1] + schools[school, 1] + residual[:, 1]
    return pd.DataFrame({"k": k, "j": j, "i": i, "y": y, "x": x, "w": w, "z1": z1, "z2": z2})


def to_wide(data):
    position = data["j"].astype(str) + "_" + data["i"].astype(str)
    frame = data.assign(position=position)
    parts = [
        frame.pivot(index="k", columns="position", values=v).add_prefix(v if v in "yxw" else v + "_")
        for v in VARIABLES
    ]
    return pd.concat(parts, axis=1).reset_index().rename_axis(columns=None)


def main():
    data = long_data()
    wide = to_wide(data)
    data.to_csv(HERE / "iv_long.csv", index=False, float_format="%.17g")
    wide.to_csv(HERE / "iv_wide.csv", index=False, float_format="%.17g")
    print(list(wide.columns))


if __name__ == "__main__":
    main()
