"""Write the data and lavaan syntax that tests/reference/correlate_lavaan.R fits: correlated effects of
sibling units and correlated residuals, freed by a label (the source article's second half).

Two designs, each simulated here:

* ``effects``: 240 states ``k``, each with three counties ``j`` labelled by ``region``: north,
  north, south in even states and north, south, south in odd ones, and one more northern
  county in every fifth state; two residents ``i`` per county.
  ``y = 1 + 2 x + U_k + V_jk + E_ijk`` with unit variances, except that the effects ``V`` of
  the northern counties of one state are correlated 0.5 (covariance 0.5).
* ``residuals``: 240 counties ``k`` whose schools are the observations, labelled by ``type``:
  2 to 4 public (``pub``), 1 or 2 private (``prv``) and, in every fourth county, one church
  school (``chr``). ``y = 1 + 2 x + U_k + E`` with unit variances, the errors of the public
  schools of a county correlated 0.4.

Written here, for every model below: ``correlate_<name>.lav`` (``to_lavaan()`` of the relaxed
``WideSEM``) and ``correlate_<name>_wide.csv`` (its wide data, covariates of absent positions
set to 0); and the long data ``correlate_effects_long.csv``, ``correlate_residuals_long.csv``.

* ``effects_free``: ``y ~ x + (1|k/j)``, ``relax_covariance("k:j", by="region", among=["north"])``
  (a covariance per pair of northern slots, ``C_j_north1_north2``, ...);
* ``effects_equal``: the same with ``equal=True`` (one ``C_j_north``);
* ``effects_hetero``: ``relax_variance("k:j", by="region")`` then ``relax_covariance("k:j",
  by="region")``: variances ``S_j_north``, ``S_j_south`` and covariances among the northern
  and among the southern counties (the article's N and S);
* ``residuals_free``: ``y ~ x + (1|k)``, ``relax_residual_covariance(by="type", among=["pub"])``;
* ``residuals_equal``: the same with ``equal=True`` (one ``C_e_pub``).

Run from the repository root:  python tests/reference/make_correlate_inputs.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

import sm_multisem as sms
from sm_multisem.correlate import Covariances, relax_covariances

HERE = Path(__file__).parent

N_CLUSTERS = 240
COV_NORTH = 0.5
COV_PUB = 0.4


def effects_data(n_clusters: int = N_CLUSTERS, seed: int = 71, cov: float = COV_NORTH) -> pd.DataFrame:
    """States of labelled counties of two residents; northern effects of a state covary ``cov``."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_clusters):
        regions = ["north", "north", "south"] if k % 2 == 0 else ["north", "south", "south"]
        regions += ["north"] * (k % 5 == 0)
        north = np.array([r == "north" for r in regions])
        sigma = np.eye(len(regions)) + cov * (np.outer(north, north) & ~np.eye(len(regions), dtype=bool))
        effect = rng.multivariate_normal(np.zeros(len(regions)), sigma)
        top = rng.normal()
        for j, region in enumerate(regions):
            x = rng.uniform(size=2)
            y = 1.0 + 2.0 * x + top + effect[j] + rng.normal(size=2)
            rows += [(k, j, i, region, x[i], y[i]) for i in range(2)]
    return pd.DataFrame(rows, columns=["k", "j", "i", "region", "x", "y"])


def residuals_data(n_clusters: int = N_CLUSTERS, seed: int = 72, cov: float = COV_PUB) -> pd.DataFrame:
    """Counties whose schools are the observations; errors of a county's public schools covary ``cov``."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_clusters):
        types = ["pub"] * (2 + k % 3) + ["prv"] * (1 + k % 2) + ["chr"] * (k % 4 == 0)
        public = np.array([t == "pub" for t in types])
        sigma = np.eye(len(types)) + cov * (np.outer(public, public) & ~np.eye(len(types), dtype=bool))
        error = rng.multivariate_normal(np.zeros(len(types)), sigma)
        x = rng.uniform(size=len(types))
        y = 1.0 + 2.0 * x + rng.normal() + error
        rows += [(k, j, t, x[j], y[j]) for j, t in enumerate(types)]
    return pd.DataFrame(rows, columns=["k", "j", "type", "x", "y"])


def models(effects: pd.DataFrame, residuals: pd.DataFrame) -> dict:
    nested = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", effects)
    schools = sms.MultilevelSEM.from_formula("y ~ x + (1|k)", residuals)
    return {
        "effects_free": relax_covariances(nested, Covariances("k:j", "region", among=["north"])),
        "effects_equal": relax_covariances(nested, Covariances("k:j", "region", among=["north"], equal=True)),
        "effects_hetero": relax_covariances(nested.relax_variance("k:j", by="region"), Covariances("k:j", "region")),
        "residuals_free": schools.relax_residual_covariance(by="type", among=["pub"]),
        "residuals_equal": schools.relax_residual_covariance(by="type", among=["pub"], equal=True),
    }


def main():
    effects, residuals = effects_data(), residuals_data()
    effects.to_csv(HERE / "correlate_effects_long.csv", index=False, float_format="%.17g")
    residuals.to_csv(HERE / "correlate_residuals_long.csv", index=False, float_format="%.17g")
    for name, model in models(effects, residuals).items():
        (HERE / f"correlate_{name}.lav").write_text(model.to_lavaan() + "\n")
        model.wide.to_csv(HERE / f"correlate_{name}_wide.csv", index=False, float_format="%.17g")
        print(name, model.param_names[5:])


if __name__ == "__main__":
    main()
