"""Write the misfitting design that tests/reference/lavaan_gof.R fits besides the existing inputs.

The other designs of lavaan_gof.R reuse the inputs of make_lavaan_inputs.py (the article's
model; an unbalanced design) and make_lavaan_score_inputs.py (relaxed models). Their models
fit, so their RMSEA is about 0; this one does not: a balanced three-level design (150
clusters k, 3 units j, 2 observations each) whose third unit of every cluster (``type``
"b") has j effects of standard deviation 1.6 against 0.6, and whose second observation
(``role`` "late") has residual standard deviation 1.5 against 0.8. Its wide data have no
missing cells.

Written here: ``lavaan_gof_long.csv``, the long data, and for the standard model
(``misfit``) and its relaxation ``relax_variance("k:j", by="type")`` (``misfit_variance``)
the wide data ``lavaan_gof_<name>_wide.csv`` and lavaan syntax ``lavaan_gof_<name>.lav``;
the same for lme4's ``Pastes`` (``pastes.csv``) with ``strength ~ 1 + (1|batch/cask)``
(``pastes``): a model without covariates, and 10 clusters.

Run from the repository root:  python tests/reference/make_lavaan_gof_inputs.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent

SIZES = (150, 3, 2)
SD_V = {"a": 0.6, "b": 1.6}
SD_E = {"early": 0.8, "late": 1.5}
FORMULA = "y ~ x + (1|k/j)"
PASTES = "strength ~ 1 + (1|batch/cask)"


def misfit_data():
    """The design and ``x`` of ``simulate_nested``, with ``type``, ``role`` and a rebuilt ``y``."""
    data = sms.simulate_nested(SIZES, sd=(1.0, 0.8, 1.0), beta=(0.5, 2.0), seed=51)
    rng = np.random.default_rng(52)
    n_k, n_j, _ = SIZES
    k_index = data["k"].to_numpy() - 1
    unit_index = k_index * n_j + data["j"].to_numpy() - 1
    data["type"] = np.where(data["j"].to_numpy() == 3, "b", "a")
    data["role"] = np.where(data["i"].to_numpy() == 2, "late", "early")
    u = rng.normal(size=n_k)
    v = rng.normal(size=n_k * n_j)
    e = rng.normal(size=len(data))
    sd_v = data["type"].map(SD_V).to_numpy()
    sd_e = data["role"].map(SD_E).to_numpy()
    data["y"] = 0.5 + 2.0 * data["x"].to_numpy() + u[k_index] + sd_v * v[unit_index] + sd_e * e
    return data[["k", "j", "i", "type", "role", "x", "y"]]


def models(data):
    model = sms.MultilevelSEM.from_formula(FORMULA, data)
    return {"misfit": model, "misfit_variance": model.relax_variance("k:j", by="type")}


def pastes_model():
    return sms.MultilevelSEM.from_formula(PASTES, pd.read_csv(HERE / "pastes.csv"))


def main():
    data = misfit_data()
    data.to_csv(HERE / "lavaan_gof_long.csv", index=False)
    for name, model in {**models(data), "pastes": pastes_model()}.items():
        model.wide_data(fill_absent_covariates=True).to_csv(HERE / f"lavaan_gof_{name}_wide.csv", index=False)
        (HERE / f"lavaan_gof_{name}.lav").write_text(model.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
