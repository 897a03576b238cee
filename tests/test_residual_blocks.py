"""Residual blocks on the recursion: Toeplitz residuals within a residual grouping.

Reference fits: tests/reference/longitudinal_nlme.R (nlme 3.1.162) on
tests/reference/longitudinal_data.csv (tests/reference/make_longitudinal_data.py): 60 clinics of
4-8 subjects, six occasions with 15% missing; ``lme(y ~ x + arm, random = ~ 1 | clinic,
correlation = corARMA(p = 5, form = ~ occ | clinic/subject))``, an AR(5) on six occasions, which is
every Toeplitz correlation matrix (model ``toep``).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_loglike
from sem_reference import wide_sem_loglike

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
FIXED = {"(Intercept)": "Intercept", "x": "x", "armt": "arm[T.t]"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "longitudinal_data.csv")


@pytest.fixture(scope="module")
def nlme():
    return pd.read_csv(REFERENCE / "longitudinal_nlme.csv", keep_default_na=False)


def toeplitz(data):
    return sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data).relax_residuals(
        structure="toeplitz", t="occ", within="subject")


@pytest.mark.parametrize("reml", [False, True])
def test_toeplitz_matches_nlme(data, nlme, reml):
    ref = nlme[(nlme["model"] == "toep") & (nlme["reml"] == reml)]
    value = {(row.kind, row.name): float(row.value) for row in ref.itertuples()}
    res = toeplitz(data).fit(reml=reml)
    assert res.converged
    assert "Residual: Toeplitz within clinic:subject along occ" in res.summary().as_text()
    assert res.llf == pytest.approx(value["loglik", ""], abs=1e-5)
    expected = {FIXED[name]: v for (kind, name), v in value.items() if kind == "fixef"}
    expected["var(clinic)"] = value["clinic_var", ""]
    expected["var(Residual)"] = value["rcov", "1,1"]
    expected.update({f"cov(Residual)[lag{lag}]": value["rcov", f"{lag + 1},1"] for lag in range(1, 6)})
    assert sorted(res.params.index) == sorted(expected)
    np.testing.assert_allclose(res.params[list(expected)], list(expected.values()), rtol=1e-4)


def test_toeplitz_loglike_and_score_equal_the_dense_normal(data):
    small = toeplitz(data[data["clinic"] <= 6])
    rng = np.random.default_rng(2)
    lags = 0.6 ** np.arange(6)
    params = pd.Series(np.r_[rng.normal(size=3), 0.4, 1.3, 1.3 * lags[1:] * (1 + 0.1 * rng.uniform(-1, 1, 5))],
                       index=small.param_names)
    for reml in (False, True):
        step = 1e-6
        numeric = np.array([(small.loglike(params + step * e, reml=reml) - small.loglike(params - step * e, reml=reml))
                            / (2 * step) for e in np.eye(len(params))])
        np.testing.assert_allclose(small.score(params.to_numpy(), reml=reml), numeric, rtol=1e-6, atol=1e-6)
    assert small.loglike(params.to_numpy()) == pytest.approx(dense_loglike(small, params.to_numpy()), rel=1e-12)
    np.testing.assert_allclose(small.score_obs(params.to_numpy()).sum(0), small.score(params.to_numpy()), rtol=1e-10)


def test_toeplitz_refusals(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data)
    with pytest.raises(ValueError, match='structure="toeplitz" takes t='):
        model.relax_residuals(structure="toeplitz", within="subject")
    with pytest.raises(ValueError, match="confounded with its variance"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|clinic/subject)", data).relax_residuals(
            structure="toeplitz", t="occ")
    with pytest.raises(ValueError, match="time column 'time' must hold integers"):
        model.relax_residuals(structure="toeplitz", t="time", within="subject")


def test_toeplitz_wide_form(data):
    """One position per occasion, the covariance of two positions of a subject labelled by their lag: the
    table read as an SEM gives the model's log-likelihood."""
    model = toeplitz(data[data["clinic"] <= 4])
    assert "y1_1 ~~ C_e_lag1*y1_2" in model.to_lavaan()
    res = model.fit()
    values = dict(zip(model.plan.labels, np.asarray(res.params)))
    wide = model.wide_data(fill_absent_covariates=True)
    assert wide_sem_loglike(model.parameter_table, wide, values) == pytest.approx(res.llf, abs=1e-9)
