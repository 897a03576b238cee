"""The nested-intercept likelihood against a dense multivariate normal, and its derivatives."""

import numpy as np
import pytest

import sm_multisem as sms
from dense_reference import dense_loglike


def central_gradient(f, x, step=1e-6):
    return np.array([(f(x + step * e) - f(x - step * e)) / (2 * step) for e in np.eye(len(x))])


@pytest.fixture(scope="module")
def four_level_model():
    data = sms.simulate_nested((6, 3, 2, 3), sd=(1.0, 0.7, 0.5, 1.0), beta=(1.0, 2.0, -1.0), seed=11)
    data = data.sample(frac=0.8, random_state=1)  # unbalanced, rows out of order
    return sms.MultilevelSEM.from_formula("y ~ x1 + x2 + (1|l1/l2/l3)", data)


def random_params(model, rng):
    k_beta = len(model.plan.beta_index)
    return np.r_[rng.normal(size=k_beta), rng.uniform(0.2, 2.0, size=model.k_levels + 1)]


def test_loglike_equals_dense_multivariate_normal(four_level_model):
    rng = np.random.default_rng(0)
    for _ in range(3):
        params = random_params(four_level_model, rng)
        assert four_level_model.loglike(params) == pytest.approx(dense_loglike(four_level_model, params), rel=1e-12)


def test_loglikeobs_is_one_value_per_cluster(four_level_model):
    params = random_params(four_level_model, np.random.default_rng(1))
    obs = four_level_model.loglikeobs(params)
    assert obs.shape == (four_level_model.nobs,)
    assert obs.sum() == pytest.approx(four_level_model.loglike(params), rel=1e-13)


@pytest.mark.parametrize("reml", [False, True])
def test_score_equals_finite_differences(four_level_model, reml):
    rng = np.random.default_rng(2)
    for _ in range(5):
        params = random_params(four_level_model, rng)
        analytic = four_level_model.score(params, reml=reml)
        numeric = central_gradient(lambda p: four_level_model.loglike(p, reml=reml), params)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_score_obs_sums_to_score(four_level_model):
    params = random_params(four_level_model, np.random.default_rng(3))
    obs = four_level_model.score_obs(params)
    assert obs.shape == (four_level_model.nobs, len(params))
    np.testing.assert_allclose(obs.sum(0), four_level_model.score(params), rtol=1e-12)


def test_restricted_loglike_closed_form(four_level_model):
    """REML = ML at the GLS estimate - log|X'V^-1 X| / 2 + (p/2) log 2 pi."""
    params = random_params(four_level_model, np.random.default_rng(4))
    beta, variances = four_level_model.plan.split(params)
    beta_gls, cov_beta, _ = four_level_model.likelihood.gls(variances)
    at_gls = four_level_model.plan.join(beta_gls, variances)
    p = len(beta)
    expected = (four_level_model.loglike(at_gls) + 0.5 * np.linalg.slogdet(cov_beta)[1]
                + 0.5 * p * np.log(2 * np.pi))
    assert four_level_model.loglike(params, reml=True) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("reml", [False, True])
def test_profiled_deviance_matches_full_likelihood(four_level_model, reml):
    """-2 l at (beta_hat, sigma_hat^2) equals the profiled deviance at the same theta."""
    theta = np.array([0.8, 0.5, 0.3])
    rho = theta**2
    beta, _, quad = four_level_model.likelihood.gls(np.r_[rho, 1.0])
    n, p = four_level_model.nobs_long, len(beta)
    sigma2 = quad / (n - p if reml else n)
    params = four_level_model.plan.join(beta, np.r_[rho, 1.0] * sigma2)
    assert four_level_model.profiled_deviance(theta, reml=reml) == pytest.approx(
        -2 * four_level_model.loglike(params, reml=reml), rel=1e-12
    )


def test_stable_when_one_variance_dwarfs_another():
    """A level variance 1e8 times the residual variance: the likelihood stays exact.

    The reference is the dense likelihood in 40-digit arithmetic
    (tests/reference/high_precision_loglike.py); float64 dense evaluation loses six digits here.
    """
    data = sms.simulate_nested((5, 3, 4), sd=(1.0, 1.0, 1.0), seed=3)
    data["y"] = data["y"] + 1e4 * data["j"].map({1: 0.3, 2: -1.1, 3: 0.8})
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    params = np.array([0.0, 2.0, 1.0, 1e8, 1.0])
    assert model.loglike(params) == pytest.approx(-234.53943548716715280, rel=1e-14)
