"""lme4's Pastes data, strength ~ 1 + (1|batch/cask): estimates and log-likelihood equal lme4's.

The reference numbers were produced by tests/reference/pastes_lme4.R (lme4 1.1.31, R 4.2.2).
Cask ids a, b, c repeat in every batch: nesting is implied by the formula, as lme4 reads it.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def pastes():
    return pd.read_csv(REFERENCE / "pastes.csv")


@pytest.fixture(scope="module")
def lme4():
    return pd.read_csv(REFERENCE / "pastes_lme4.csv").set_index("reml")


@pytest.mark.parametrize("reml", [False, True])
def test_pastes_matches_lme4(pastes, lme4, reml):
    ref = lme4.loc[reml]
    res = sms.MultilevelSEM.from_formula("strength ~ 1 + (1|batch/cask)", pastes).fit(reml=reml, cov_type="eim")
    assert res.nobs == 10 and res.nobs_long == ref["n_obs"]
    expected = [ref["intercept"], ref["var_batch"], ref["var_cask"], ref["var_residual"]]
    np.testing.assert_allclose(np.asarray(res.params), expected, rtol=1e-6)
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-7)
    # lme4's vcov() is (X'V^-1 X)^-1, the fixed-effect block of the expected information
    assert res.bse["Intercept"] == pytest.approx(ref["se_intercept"], rel=1e-6)


def test_pastes_cask_ids_repeat_across_batches(pastes):
    model = sms.MultilevelSEM.from_formula("strength ~ 1 + (1|batch/cask)", pastes)
    assert model.layout.n_units == (10, 30)
    assert pastes["cask"].nunique() == 3
