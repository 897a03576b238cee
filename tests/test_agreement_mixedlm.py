"""Estimates, standard errors and log-likelihoods agree with statsmodels MixedLM.

MixedLM is converged tightly (BFGS, gtol 1e-8, see ``compare.TIGHT_FIT``); its default
tolerances stop early. MixedLM's standard errors are observed-information SEs, so the
comparison uses ``cov_type="oim"``.
"""

import warnings

import numpy as np
import pytest
from statsmodels.regression.mixed_linear_model import MixedLMParams

import sm_multisem as sms
from sm_multisem.output.compare import TIGHT_FIT, mixedlm_equivalent, mixedlm_params


def fit_both(model, reml):
    res = model.fit(reml=reml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = mixedlm_equivalent(model).fit(reml=reml, **TIGHT_FIT)
    assert mixed.converged
    return res, mixed


def assert_agree(res, mixed):
    theirs = mixedlm_params(mixed, res.model.layout.level_names)[res.model.param_names]
    np.testing.assert_allclose(np.asarray(res.params), theirs.to_numpy(), rtol=1e-5)
    assert res.llf == pytest.approx(mixed.llf, abs=1e-6)
    k_fe = len(res.model.model_data.exog_names)
    np.testing.assert_allclose(np.asarray(res.bse)[:k_fe], mixed.bse_fe.to_numpy(), rtol=1e-3)


@pytest.mark.parametrize("reml", [False, True])
def test_balanced_article_design(article_data, reml):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data)
    assert_agree(*fit_both(model, reml))


@pytest.mark.parametrize("reml", [False, True])
def test_unbalanced_design(unbalanced_data, reml):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data)
    sizes = model.layout.unit_sizes(1)
    assert sizes.min() == 1  # some units hold a single observation
    assert np.bincount(model.layout.unit_of_rows(1)[model.layout.row_starts]).size > 0
    units_per_cluster = np.diff(np.append(model.layout.child_starts[0], model.layout.n_units[1]))
    assert units_per_cluster.min() == 1  # some clusters have a single unit
    assert_agree(*fit_both(model, reml))


def test_two_level_model(unbalanced_data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k)", unbalanced_data)
    assert_agree(*fit_both(model, reml=False))


def test_four_level_model():
    data = sms.simulate_nested((30, 3, 2, 3), sd=(1.0, 0.8, 0.6, 1.0), beta=(1.0, 2.0), seed=22)
    data = data.sample(frac=0.85, random_state=3)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data)
    assert model.layout.level_names == ("l1", "l1:l2", "l1:l2:l3")
    assert_agree(*fit_both(model, reml=False))


@pytest.mark.parametrize("reml", [False, True])
def test_same_loglike_function_at_same_parameters(unbalanced_data, reml):
    """Away from any optimum, the two profiled log-likelihood functions are equal."""
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data)
    mixed = mixedlm_equivalent(model)
    mixed.reml, mixed.fe_pen, mixed.cov_pen = reml, None, None  # what MixedLM.fit sets before loglike
    for theta in ([0.5, 1.5], [1.2, 0.1], [2.0, 0.7]):
        rho = np.square(theta)
        beta, _, _ = model.likelihood.gls(np.r_[rho, 1.0])
        packed = MixedLMParams.from_components(beta, cov_re=np.array([[rho[0]]]), vcomp=rho[1:])
        theirs = mixed.loglike(packed, profile_fe=False)
        assert -0.5 * model.profiled_deviance(theta, reml=reml) == pytest.approx(theirs, abs=1e-8)


def test_compare_mixedlm_table(article_data):
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = res.compare_mixedlm()
    assert list(table.index) == res.model.param_names + ["llf"]
    assert list(table.columns) == ["MultilevelSEM", "MixedLM", "difference", "bse MultilevelSEM", "bse MixedLM"]
    assert table.attrs["mixedlm_converged"]
    assert np.all(np.abs(table["difference"]) < 1e-5 * np.maximum(1, np.abs(table["MixedLM"])))
