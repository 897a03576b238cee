"""Random intercepts and slopes, ``(1 + x|k/j)``: lme4's fits (the dense likelihood and the score are
checked with the other random-effect structures, tests/test_effects.py).

The lme4 reference numbers were produced by tests/reference/slopes_lme4.R (lme4 1.1.31, R 4.2.2)
on tests/reference/slopes_data.csv (tests/reference/make_slopes_data.py).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
FORMULAS = {
    "nested": "y ~ x + (1 + x|k/j)",
    "top": "y ~ x + (1 + x|k)",
    "mixed": "y ~ x + (1 + x|k) + (1|k:j)",
}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "slopes_data.csv")


@pytest.fixture(scope="module")
def lme4():
    return pd.read_csv(REFERENCE / "slopes_lme4.csv")


@pytest.fixture(scope="module")
def small(data):
    """A few clusters, for the dense likelihood."""
    return sms.MultilevelSEM.from_formula(FORMULAS["nested"], data[data["k"] <= 8])


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("which", list(FORMULAS))
def test_fit_matches_lme4(data, lme4, which, reml):
    ref = lme4[(lme4["model"] == which) & (lme4["reml"] == reml)].set_index("name")["value"]
    res = sms.MultilevelSEM.from_formula(FORMULAS[which], data).fit(reml=reml)
    assert res.converged
    assert sorted(res.params.index) == sorted(ref.index.drop("loglik"))
    np.testing.assert_allclose(res.params, ref[res.params.index], rtol=1e-5)
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)


def test_parameter_names(small):
    assert small.param_names == ["Intercept", "x", "var(k)", "var(x|k)", "cov(k, x|k)",
                                 "var(k:j)", "var(x|k:j)", "cov(k:j, x|k:j)", "var(Residual)"]


def test_profiled_deviance_gradient_in_cholesky_factor(small):
    from sm_multisem.fit.estimation import ProfiledObjective

    objective = ProfiledObjective(small.likelihood, reml=True)
    theta = np.array([0.9, 0.4, -0.3, 0.7, 0.2, 0.5])  # (l11, l21, l22) of each level's relative factor
    _, gradient = objective(theta)
    step = 1e-6
    numeric = [(objective(theta + step * e)[0] - objective(theta - step * e)[0]) / (2 * step) for e in np.eye(6)]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-7)
    variances = objective.rel_var(theta)
    np.testing.assert_allclose(objective.theta_of(variances), np.abs(theta) * [1, np.sign(0.4), 1, 1, 1, 1])


def test_no_slope_variance_is_the_random_intercept_model(data):
    """With var(x|.) = cov(., x|.) = 0 the likelihood is the random-intercept model's, to rounding."""
    slopes = sms.MultilevelSEM.from_formula(FORMULAS["nested"], data)
    intercepts = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    base = np.array([0.8, 1.9, 0.9, 0.6, 1.0])  # Intercept, x, var(k), var(k:j), var(Residual)
    params = pd.Series(0.0, index=slopes.param_names)
    params[intercepts.param_names] = base
    for reml in (False, True):
        assert slopes.loglike(params.to_numpy(), reml=reml) == pytest.approx(
            intercepts.loglike(base, reml=reml), rel=1e-13)
    mixed = sms.MultilevelSEM.from_formula(FORMULAS["mixed"], data)
    partial = pd.Series(0.0, index=mixed.param_names)
    partial[intercepts.param_names] = base
    assert mixed.loglike(partial.to_numpy()) == pytest.approx(intercepts.loglike(base), rel=1e-13)


def test_summary_shows_slope_variance_and_covariance(data):
    text = sms.MultilevelSEM.from_formula(FORMULAS["top"], data).fit().summary().as_text()
    for name in ("var(k)", "var(x|k)", "cov(k, x|k)", "var(Residual)"):
        assert f"\n{name} " in text


def test_start_params_from_a_fit_return_the_fit(data):
    model = sms.MultilevelSEM.from_formula(FORMULAS["top"], data)
    res = model.fit()
    again = model.fit(start_params=res.params)
    np.testing.assert_allclose(again.params, res.params, rtol=1e-6)


def test_export_refused_saying_why(small):
    for export in (small.to_stata, small.to_lavaan):
        with pytest.raises(NotImplementedError, match=r"definition variable.*Stata sem and lavaan"):
            export()


def test_slope_of_a_column_outside_the_fixed_part(data):
    """lme4 takes a random slope whose column is not in the fixed part: slopes of mean 0."""
    res = sms.MultilevelSEM.from_formula("y ~ 1 + (1 + x|k)", data).fit()
    assert res.model.param_names == ["Intercept", "var(k)", "var(x|k)", "cov(k, x|k)", "var(Residual)"]
    assert res.converged


def test_relaxing_a_variance_refused(data):
    model = sms.MultilevelSEM.from_formula(FORMULAS["top"], data.assign(type=data["k"] % 2))
    with pytest.raises(NotImplementedError, match="relaxing the variance of a model with random slopes"):
        model.relax_variance("k", by="type")


def test_singular_fit_matches_lme4_and_says_so(lme4):
    """No slope variation in the data: lme4 and the fit put the correlation at -1 (l22 = 0)."""
    ref = lme4[lme4["model"] == "singular"].set_index("name")["value"]
    data = pd.read_csv(REFERENCE / "slopes_singular_data.csv")
    with pytest.warns(ConvergenceWarning, match=r"random intercept and slope behind var\(x\|k\) are perfectly correlated"):
        res = sms.MultilevelSEM.from_formula(FORMULAS["top"], data).fit()
    np.testing.assert_allclose(res.params, ref[res.params.index], rtol=1e-5)
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)
    assert res.params["cov(k, x|k)"] ** 2 == pytest.approx(res.params["var(k)"] * res.params["var(x|k)"], rel=1e-8)
    assert res.singular == ["var(x|k)"]
    text = str(res.summary())
    assert "intercept and slope behind var(x|k) are perfectly correlated" in text
    assert "var(x|k) is estimated on the boundary (0)" not in text


def test_random_intercept_model_tested_against_random_slopes(data):
    """The random-intercept model holds var(x|.) and cov(., x|.) at 0: LR and score tests with df 4."""
    slopes = sms.MultilevelSEM.from_formula(FORMULAS["nested"], data)
    intercepts = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    fit = slopes.fit()
    lr = intercepts.lr_test(fit)
    assert lr.df == 4 and lr.statistic == pytest.approx(2 * (fit.llf - intercepts.llf))
    assert "var(x|k), var(x|k:j) on the boundary" in lr.note
    score = intercepts.score_test(slopes)
    assert score.df == 4 and score.statistic > 0
    with pytest.raises(NotImplementedError, match="not implemented for random slopes"):
        fit.score_tests()
