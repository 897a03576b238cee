"""Write the wide data and lavaan syntax of the AR(1) model that tests/reference/lavaan_ar1.R fits.

The data are the first two units j and the first four times of every cluster of
tests/reference/ar1_data.csv (times with gaps, rows shuffled): 8 positions, few enough for
lavaan's saturated model of the 80 clusters.
Run from the repository root:  python tests/reference/make_lavaan_ar1_inputs.py
"""

from pathlib import Path

import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent


def ar1_model() -> sms.MultilevelSEM:
    """The model the fixture fits: AR(1) residuals along time inside the units j of clusters k."""
    data = pd.read_csv(HERE / "ar1_data.csv").query("j <= 2 and time <= 4").reset_index(drop=True)
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residuals(structure="ar1", t="time")


def main():
    model = ar1_model()
    model.wide_data(fill_absent_covariates=True).to_csv(HERE / "lavaan_ar1_wide.csv", index=False)
    (HERE / "lavaan_ar1.lav").write_text(model.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
