"""Write the wide data and lavaan syntax of the AR(1) model by label that tests/reference/lavaan_ar1_by.R fits.

The data are tests/reference/ar1_data.csv (times with gaps, rows shuffled) with a label
``type`` of every unit j, constant within it and mixed within the clusters k; the fixture
keeps the first two units j and the first four times of every cluster, as
make_lavaan_ar1_inputs.py does: few positions for lavaan's FIML on 80 clusters.
Run from the repository root:  python tests/reference/make_lavaan_ar1_by_inputs.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent


def with_type(data: pd.DataFrame) -> pd.DataFrame:
    """The data with a label ``type`` ("a" or "b") of every unit (k, j), mixed within clusters."""
    return data.assign(type=np.where((7 * data["k"] + 3 * data["j"]) % 5 < 2, "a", "b"))


def ar1_by_model() -> sms.MultilevelSEM:
    """The model the fixture fits: AR(1) residuals along time with a variance and a rho per type."""
    data = with_type(pd.read_csv(HERE / "ar1_data.csv")).query("j <= 2 and time <= 4").reset_index(drop=True)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    return model.relax_residuals(structure="ar1", t="time", by="type")


def main():
    model = ar1_by_model()
    model.wide_data(fill_absent_covariates=True).to_csv(HERE / "lavaan_ar1_by_wide.csv", index=False)
    (HERE / "lavaan_ar1_by.lav").write_text(model.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
