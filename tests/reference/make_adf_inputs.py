"""Write the non-normal data and lavaan syntax that tests/reference/adf_lavaan.R fits by
asymptotically distribution-free weighted least squares (lavaan's estimator = "WLS").

The source article's balanced design (counties ``k``, two schools ``j`` in each, two
students ``i`` in each school), 500 counties, with non-normal effects and residuals:

* county effect ``U_k = (chi2(2) - 2) / 2`` (mean 0, variance 1, skewness 2);
* school effect ``V_jk = t(5) * sqrt(0.5 * 3 / 5)`` (mean 0, variance 0.5, heavy tails);
* residual ``E_ijk = Exp(1) - 1`` (mean 0, variance 1, skewness 2);
* ``x ~ N(0, 1)`` per row; ``y = 0.5 + 1.0 x + U_k + V_jk + E_ijk``.

So the true values are ``c = 0.5``, ``bx = 1``, ``S_k = 1``, ``S_j = 0.5``, ``S_e = 1``.

Written here: ``adf_long.csv`` (``k, j, i, x, y``), ``adf_wide.csv`` (one row per county:
``k, y1_1, y1_2, y2_1, y2_2, x1_1, x1_2, x2_1, x2_2``, the package's names) and ``adf.lav``
(``MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).to_lavaan()``).

Run from the repository root:  python tests/reference/make_adf_inputs.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent

N_COUNTIES, N_SCHOOLS, N_STUDENTS = 500, 2, 2
SEED = 20242
INTERCEPT, SLOPE = 0.5, 1.0
FORMULA = "y ~ x + (1|k/j)"


def long_data():
    rng = np.random.default_rng(SEED)
    k, j, i = (a.ravel() + 1 for a in np.indices((N_COUNTIES, N_SCHOOLS, N_STUDENTS)))
    n = len(k)
    county = (rng.chisquare(2, size=N_COUNTIES) - 2.0) / 2.0
    school = rng.standard_t(5, size=(N_COUNTIES, N_SCHOOLS)) * np.sqrt(0.5 * 3.0 / 5.0)
    residual = rng.exponential(1.0, size=n) - 1.0
    x = rng.normal(size=n)
    y = INTERCEPT + SLOPE * x + county[k - 1] + school[k - 1, j - 1] + residual
    return pd.DataFrame({"k": k, "j": j, "i": i, "x": x, "y": y})


def main():
    data = long_data()
    model = sms.MultilevelSEM.from_formula(FORMULA, data)
    wide = model.wide_data().reset_index(drop=True)
    assert list(wide.columns) == ["k", "y1_1", "y1_2", "y2_1", "y2_2", "x1_1", "x1_2", "x2_1", "x2_2"]
    data.to_csv(HERE / "adf_long.csv", index=False, float_format="%.17g")
    wide.to_csv(HERE / "adf_wide.csv", index=False, float_format="%.17g")
    (HERE / "adf.lav").write_text(model.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
