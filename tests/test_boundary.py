"""A variance whose estimate is 0: held on the boundary with a warning, never an exception."""

import numpy as np
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import sm_multisem as sms


@pytest.fixture(scope="module")
def no_school_variance():
    """True var(k:j) = 0; with this seed the ML estimate is exactly on the boundary."""
    return sms.simulate_nested((40, 3, 3), sd=(1.0, 0.0, 1.0), seed=0)


def test_boundary_estimate_warns_and_equals_model_without_the_term(no_school_variance):
    with pytest.warns(ConvergenceWarning, match=r"var\(k:j\) is estimated at its boundary"):
        res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", no_school_variance).fit()
    assert res.params["var(k:j)"] == 0.0
    assert res.boundary == ["var(k:j)"]
    assert res.converged
    assert np.isnan(res.bse["var(k:j)"])
    # on the boundary the model is the two-level model: same estimates, same llf
    two_level = sms.MultilevelSEM.from_formula("y ~ x + (1|k)", no_school_variance).fit()
    np.testing.assert_allclose(res.params.drop("var(k:j)").to_numpy(), two_level.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.bse.drop("var(k:j)").to_numpy(), two_level.bse.to_numpy(), rtol=1e-5)
    assert res.llf == pytest.approx(two_level.llf, abs=1e-9)
    # Kuhn-Tucker: the deviance rises as the variance leaves 0
    theta = res.optimum.theta.copy()
    theta[1] = 1e-3
    assert res.model.profiled_deviance(theta) > res.optimum.deviance
    text = str(res.summary())
    assert "(boundary)" in text and "var(k:j) is estimated on the boundary" in text


def test_boundary_in_a_four_level_model():
    data = sms.simulate_nested((30, 3, 2, 3), sd=(1.0, 0.8, 0.0, 1.0), beta=(1.0, 2.0), seed=0)
    data = data.sample(frac=0.85, random_state=3)
    with pytest.warns(ConvergenceWarning, match="l1:l2:l3"):
        res = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data).fit()
    three_level = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2)", data).fit()
    assert res.llf == pytest.approx(three_level.llf, abs=1e-9)
    np.testing.assert_allclose(res.params.drop("var(l1:l2:l3)").to_numpy(), three_level.params.to_numpy(), rtol=1e-7)
    # Kuhn-Tucker: at 0 the deviance rises in the variance ratio
    theta = res.optimum.theta.copy()
    rho = np.r_[theta**2, 1.0]
    assert res.model.likelihood.profiled_deviance(rho, False)[1][2] >= 0


def test_small_variance_is_not_mistaken_for_a_boundary():
    """A level variance the optimizer passes near 0 stays interior when the deviance keeps falling;
    MixedLM (converged tightly) finds the same optimum."""
    import warnings

    from sm_multisem.output.compare import TIGHT_FIT, mixedlm_equivalent

    data = sms.simulate_nested((30, 3, 2, 3), sd=(1.0, 0.8, 0.6, 1.0), beta=(1.0, 2.0), seed=21)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data.sample(frac=0.85, random_state=3))
    res = model.fit()
    assert res.boundary == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = mixedlm_equivalent(model).fit(reml=False, **TIGHT_FIT)
    assert res.llf == pytest.approx(mixed.llf, abs=1e-6)
    np.testing.assert_allclose(res.params[["var(l1:l2)", "var(l1:l2:l3)"]].to_numpy(), mixed.vcomp, rtol=1e-5)


def test_all_variances_zero_is_the_linear_regression():
    data = sms.simulate_nested((30, 3, 3), sd=(0.0, 0.0, 1.0), seed=4)
    data["y"] = data["y"] - data.groupby("k")["y"].transform("mean") + data["y"].mean()  # no cluster variation
    with pytest.warns(ConvergenceWarning):
        res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    assert res.params["var(k)"] == 0.0
    assert res.lr_test_linear().statistic == pytest.approx(0.0, abs=1e-8)


def test_variance_a_million_times_another_is_not_stranded_at_zero():
    """sd(k) = 1000, sd(k:j) = sd(e) = 1: on its way to var(k), the optimizer passes var(k:j) near 0,
    where the derivative in its standard deviation vanishes; it must not stop there."""
    data = sms.simulate_nested((60, 4, 5), sd=(1000.0, 1.0, 1.0), seed=4)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = model.fit()
    assert res.boundary == [] and res.converged
    assert res.params["var(k:j)"] == pytest.approx(1.0, rel=0.3)
    assert res.params["var(Residual)"] == pytest.approx(1.0, rel=0.2)
    # no better point nearby: the profiled llf at the true relative sds is lower
    assert res.llf >= -0.5 * model.profiled_deviance([1000.0, 1.0])
    theta = res.optimum.theta
    for step in ([0.01, 0.0], [0.0, 0.01], [-0.01, 0.0], [0.0, -0.01]):
        assert res.llf >= -0.5 * model.profiled_deviance(theta * (1 + np.array(step)))
