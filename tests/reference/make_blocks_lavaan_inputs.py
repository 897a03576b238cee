"""Write the wide data and lavaan syntax of the residual blocks that tests/reference/blocks_lavaan.R fits.

The data are the first two subjects and the first four occasions of every clinic of
tests/reference/longitudinal_data.csv (15% of occasions missing): 8 positions, few enough for lavaan.
Models, each with ``y ~ x + arm + (1|clinic)`` and the subjects as the residual grouping:

* ``banded``: ``relax_residuals(structure="banded", t="occ", within="subject", order=1)``, a variance per
  occasion and covariances of neighbouring occasions only (Stata ``residuals(banded 1, t(occ))``);
* ``toeplitz``: ``relax_residuals(structure="toeplitz", t="occ", within="subject", order=2)``, one variance
  and covariances at lags 1 and 2 (Stata ``residuals(toeplitz 2, t(occ))``).

Run from the repository root:  python tests/reference/make_blocks_lavaan_inputs.py
"""

from pathlib import Path

import pandas as pd

import sm_multisem as sms

HERE = Path(__file__).parent
STRUCTURES = {"banded": {"structure": "banded", "order": 1}, "toeplitz": {"structure": "toeplitz", "order": 2}}


def block_models() -> dict:
    data = pd.read_csv(HERE / "longitudinal_data.csv").query("subject <= 2 and occ <= 4").reset_index(drop=True)
    base = sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data)
    return {name: base.relax_residuals(t="occ", within="subject", **options) for name, options in STRUCTURES.items()}


def main():
    for name, model in block_models().items():
        model.wide_data(fill_absent_covariates=True).to_csv(HERE / f"blocks_{name}_wide.csv", index=False)
        (HERE / f"blocks_{name}.lav").write_text(model.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
