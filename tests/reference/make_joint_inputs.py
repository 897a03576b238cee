"""Write the data and lavaan syntax that tests/reference/joint_lavaan.R fits: covariates
missing at random, fitted jointly with the outcomes.

The design is the source article's (``simulate_article_data``: counties ``k``, two schools
``j`` in each, two students ``i`` in each school, ``y = 2 x + U_k + V_jk + E_ijk`` with
standard deviations 1, 1, 1 and ``x ~ U(0, 1)``), 300 counties. About 20% of ``x`` is then
set missing, at random given the observed outcome of the same row: the probability that
``x`` is missing is ``1 / (1 + exp(-(A + B * (y - mean(y)) / sd(y))))`` with ``A = -1.6``,
``B = 1.0`` (so rows with a large ``y`` lose their ``x`` more often; ``y`` is always
observed). The ``x`` were drawn independently of ``y``'s missingness, so the missingness is
MAR, not MCAR: a complete-case analysis is biased, FIML of the joint model is not.

Written here:

* ``joint_long.csv``: columns ``k, j, i, x, y, x_complete`` (``x`` with the missing values
  as empty cells, ``x_complete`` the value before deletion);
* ``joint_wide.csv``: one row per county, columns ``k, y1_1, y1_2, y2_1, y2_2, x1_1, x1_2,
  x2_1, x2_2`` (position ``<j>_<i>``, the package's names), ``x`` with missing cells;
* ``joint_wide_complete.csv``: the same before deleting ``x``;
* ``joint.lav``: ``MultilevelSEM.from_formula("y ~ x + (1|k/j)", complete).to_lavaan()``.

Run from the repository root:  python tests/reference/make_joint_inputs.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent

N_CLUSTERS = 300
SEED_DATA = 20240
SEED_MISSING = 20241
A, B = -1.6, 1.0
FORMULA = "y ~ x + (1|k/j)"


def long_data():
    data = sms.simulate_article_data(n_clusters=N_CLUSTERS, seed=SEED_DATA)
    rng = np.random.default_rng(SEED_MISSING)
    z = (data["y"] - data["y"].mean()) / data["y"].std()
    p_missing = 1.0 / (1.0 + np.exp(-(A + B * z)))
    missing = rng.uniform(size=len(data)) < p_missing
    data["x_complete"] = data["x"]
    data["x"] = data["x"].where(~missing)
    return data


def to_wide(data, column):
    """One row per county; ``y<j>_<i>`` then ``x<j>_<i>``, as the package names positions."""
    positions = data["j"].astype(str) + "_" + data["i"].astype(str)
    frame = data.assign(position=positions)
    ys = frame.pivot(index="k", columns="position", values="y").add_prefix("y")
    xs = frame.pivot(index="k", columns="position", values=column).add_prefix("x")
    return pd.concat([ys, xs], axis=1).reset_index().rename_axis(columns=None)


def main():
    data = long_data()
    complete = data.drop(columns="x").rename(columns={"x_complete": "x"})
    model = sms.MultilevelSEM.from_formula(FORMULA, complete)
    wide_complete = to_wide(data, "x_complete")
    # the package's own wide layout of the complete data is the same table
    pd.testing.assert_frame_equal(
        wide_complete, model.wide_data().reset_index(drop=True), check_dtype=False, check_names=False
    )
    data.to_csv(HERE / "joint_long.csv", index=False, float_format="%.17g")
    to_wide(data, "x").to_csv(HERE / "joint_wide.csv", index=False, float_format="%.17g")
    wide_complete.to_csv(HERE / "joint_wide_complete.csv", index=False, float_format="%.17g")
    (HERE / "joint.lav").write_text(model.to_lavaan() + "\n")
    print(f"x missing: {data['x'].isna().sum()} of {len(data)} ({data['x'].isna().mean():.3f})")


if __name__ == "__main__":
    main()
