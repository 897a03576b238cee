"""Write the data and lavaan syntax that tests/reference/lavaan_score.R uses for score tests.

A balanced three-level design (300 clusters k, 3 units j per cluster, 2 observations per
unit) with a unit-level label ``type``: in every cluster j = 1 is "pub" and j = 2, 3 are
"prv", so every cluster has the same labelled positions (slots J_prv1, J_prv2, J_pub1) and
the wide data have no missing cells. The truth departs a little from y ~ x + (1|k/j): the
j effects of "pub" units have 1.3 times the standard deviation of the others, and the
slope of x is 2.3 for "pub" rows against 2.0 for "prv" rows.

Written here:

* ``lavaan_score_long.csv``: the long data;
* for each relaxation of ``y ~ x + (1|k/j)``, ``variance`` (``relax_variance("k:j",
  by="type")``) and ``slope`` (``relax_slope("x", by="type")``), the wide data of the
  relaxed model, ``lavaan_score_<name>_wide.csv``, and its lavaan syntax,
  ``lavaan_score_<name>.lav``.

Run from the repository root:  python tests/reference/make_lavaan_score_inputs.py
"""

from pathlib import Path

import numpy as np

import sm_multisem as sms

HERE = Path(__file__).parent

SIZES = (300, 3, 2)
SD = (1.0, 0.8, 1.0)
INTERCEPT = 0.5
SLOPE = {"pub": 2.3, "prv": 2.0}
SCALE_J = {"pub": 1.3, "prv": 1.0}
FORMULA = "y ~ x + (1|k/j)"


def score_data():
    """The design and ``x`` of ``simulate_nested``, with ``type`` and a rebuilt ``y``."""
    data = sms.simulate_nested(SIZES, sd=SD, beta=(INTERCEPT, 2.0), seed=41)
    rng = np.random.default_rng(42)
    n_k, n_j, _ = SIZES
    k_index = data["k"].to_numpy() - 1
    unit_index = k_index * n_j + (data["j"].to_numpy() - 1)
    data["type"] = np.where(data["j"].to_numpy() == 1, "pub", "prv")

    u = rng.normal(scale=SD[0], size=n_k)
    v = rng.normal(scale=SD[1], size=n_k * n_j)
    e = rng.normal(scale=SD[2], size=len(data))
    slope = data["type"].map(SLOPE).to_numpy()
    scale = data["type"].map(SCALE_J).to_numpy()
    data["y"] = INTERCEPT + slope * data["x"].to_numpy() + u[k_index] + scale * v[unit_index] + e
    return data[["k", "j", "i", "type", "x", "y"]]


def relaxations(model):
    return {
        "variance": model.relax_variance("k:j", by="type"),
        "slope": model.relax_slope("x", by="type"),
    }


def main():
    data = score_data()
    data.to_csv(HERE / "lavaan_score_long.csv", index=False)
    model = sms.MultilevelSEM.from_formula(FORMULA, data)
    for name, relaxed in relaxations(model).items():
        relaxed.wide_data(fill_absent_covariates=True).to_csv(HERE / f"lavaan_score_{name}_wide.csv", index=False)
        (HERE / f"lavaan_score_{name}.lav").write_text(relaxed.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
