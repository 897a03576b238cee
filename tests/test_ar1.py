"""AR(1) residuals along time within the lowest grouping (Stata residuals(ar 1, t(time))).

Reference: tests/reference/ar1_nlme.R, nlme corCAR1(form = ~ time | k/j) by ML on
tests/reference/ar1_data.csv (rows shuffled, times with gaps).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_loglike
from scipy import stats

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
NAMES = {"(Intercept)": "Intercept", "rho": "rho(Residual)"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "ar1_data.csv")


@pytest.fixture(scope="module")
def model(data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residuals(structure="ar1", t="time")


@pytest.mark.parametrize("reference", ["car1", "ar1"])
def test_matches_nlme(model, reference):
    ref = pd.read_csv(REFERENCE / "ar1_nlme.csv")
    ref = ref[ref["model"] == reference].set_index("term")["estimate"].rename(index=NAMES)
    res = model.fit()
    assert res.nobs_long == ref["n_obs"]
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-7)
    expected = ref.drop(["logLik", "n_obs"])
    np.testing.assert_allclose(res.params[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-5)


def test_likelihood_and_score(model):
    for params in ([0.4, 1.9, 0.9, 0.3, 1.1, 0.5], [0.0, 2.1, 1.4, 0.05, 0.8, -0.3]):
        params = np.array(params)
        assert model.loglike(params) == pytest.approx(dense_loglike(model, params), rel=1e-11)
        for reml in (False, True):
            numeric = np.array([
                (model.loglike(params + 1e-6 * e, reml=reml) - model.loglike(params - 1e-6 * e, reml=reml)) / 2e-6
                for e in np.eye(len(params))
            ])
            np.testing.assert_allclose(model.score(params, reml=reml), numeric, rtol=1e-6,
                                       atol=1e-6 * np.abs(numeric).max())


def test_rho_zero_is_the_standard_model(model, data):
    standard = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = standard.fit()
    params = np.r_[res.params.to_numpy(), 0.0]
    assert model.loglike(params) == pytest.approx(res.llf, abs=1e-9)
    assert model.fit().llf > res.llf


def test_summary_reports_rho_with_an_atanh_interval(model):
    res = model.fit()
    rho, se = res.params["rho(Residual)"], res.bse["rho(Residual)"]
    lower, upper = res.conf_int().loc["rho(Residual)"]
    z = stats.norm.ppf(0.975)
    assert lower == pytest.approx(np.tanh(np.arctanh(rho) - z * se / (1 - rho**2)))
    assert upper == pytest.approx(np.tanh(np.arctanh(rho) + z * se / (1 - rho**2)))
    assert "rho(Residual)" in res.summary().as_text()


def test_bad_times_are_refused(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(time=1))
    with pytest.raises(ValueError, match="has two observations at time = 1"):
        model.relax_residuals(structure="ar1", t="time")


def test_real_times_fit_as_dense_blocks_what_whole_times_fit_by_gap_sums(data):
    """Times shifted by one half take the dense blocks of real-time AR(1) (nlme corCAR1); with the same gaps
    they are the model of the sums by gap."""
    by_gaps = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residuals(structure="ar1", t="time")
    blocks = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(time=data["time"] + 0.5)).relax_residuals(
        structure="ar1", t="time")
    assert type(by_gaps.likelihood).__name__ == "NestedNormal" and type(blocks.likelihood).__name__ == "EffectsNormal"
    assert blocks.param_names == by_gaps.param_names
    for reml in (False, True):
        fit_gaps, fit_blocks = by_gaps.fit(reml=reml), blocks.fit(reml=reml)
        assert fit_blocks.llf == pytest.approx(fit_gaps.llf, abs=1e-8)
        np.testing.assert_allclose(fit_blocks.params, fit_gaps.params, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(fit_blocks.bse, fit_gaps.bse, rtol=1e-4)


def test_options_that_are_not_available_are_refused(model, data):
    standard = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    with pytest.raises(ValueError, match='structure="ar1" takes t='):
        standard.relax_residuals(by="j", structure="ar1")
    with pytest.raises(ValueError, match="structure must be one of"):
        standard.relax_residuals(structure="spherical", t="time")
    with pytest.raises(ValueError, match="expected information is not implemented for AR\\(1\\)"):
        model.fit(cov_type="eim")
    with pytest.raises(NotImplementedError, match="nonlinear constraint that Stata sem cannot express"):
        model.to_stata()


def test_score_test_of_rho_at_zero(model, data):
    """rho(Residual) held at 0 by the standard model: the observed-information score test."""
    standard = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    test = standard.fit().score_test(model, information="observed")
    assert test.df == 1 and list(test.table.index) == ["rho(Residual)"]
    assert test.table.loc["rho(Residual)", "epc"] > 0
    assert test.pvalue < 1e-6 and standard.fit().lr_test(model.fit()).pvalue < 1e-6


def test_score_and_lr_agree_under_the_null_in_a_large_sample():
    data = sms.simulate_nested((400, 3, 6), sd=(1.0, 0.6, 1.0), seed=5).assign(time=lambda d: d["i"])
    standard = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    relaxed = standard.relax_residuals(structure="ar1", t="time")
    fit = standard.fit()
    score = fit.score_test(relaxed, information="observed").statistic
    assert score == pytest.approx(fit.lr_test(relaxed.fit()).statistic, rel=0.05)


def test_converges_with_rho_near_zero_in_a_large_sample():
    """rho near 0 and 100,000 rows: the Newton polish must not stop while the gradient is above tolerance.

    The benchmark's relaxed model (``benchmarks/bench_relaxed.py``), where it once did: its
    Hessian predicted a negligible next step with the gradient still at 1.4e-6.
    """
    data = sms.simulate_districts(100_000, 20261126)
    rng = np.random.default_rng(20261126)
    school = data.groupby(["k", "j"]).ngroup().to_numpy()
    data["type"] = rng.choice(["pub", "prv", "chr"], size=school.max() + 1)[school]
    data["time"] = data.groupby(["k", "j"]).cumcount() + 1
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = model.relax_variance("k:j", by="type").relax_residuals(structure="ar1", t="time").fit()
    assert res.converged
    assert np.max(np.abs(res.optimum.gradient)) < 1e-6
