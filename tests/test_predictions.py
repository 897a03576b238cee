"""Empirical Bayes predictions of the random effects, predictions and residuals."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from dense_reference import dense_random_effects
from sm_multisem.compare import TIGHT_FIT, mixedlm_equivalent


REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def res(unbalanced_data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data).fit()


@pytest.fixture(scope="module")
def mixed(res):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mixedlm_equivalent(res.model).fit(reml=False, **TIGHT_FIT)


def test_blups_equal_the_dense_formula(res):
    """E[u | y] = G Z' Sigma^-1 r cluster by cluster."""
    model = res.model
    beta, variances = model.plan.split(res.params.to_numpy())
    expected, _ = dense_random_effects(model, res.params.to_numpy())
    for ours, theirs in zip(model.likelihood.random_effects(beta, variances), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


RELAXED = {
    "standard": lambda m: m,
    "variance and residuals by label": lambda m: m.relax_variance("k:j", by="type").relax_residuals(by="role"),
    "AR(1) residuals": lambda m: m.relax_residuals(structure="ar1", t="i"),
}


@pytest.mark.parametrize("relax", RELAXED.values(), ids=RELAXED.keys())
def test_conditional_variances_equal_the_dense_posterior(relax):
    """Var(b | y) = G - G Z' Sigma^-1 Z G, with unit-specific variances and correlated residuals too."""
    data = pd.read_csv(REFERENCE / "relax_data.csv")
    model = relax(sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data))
    # away from the estimates, with variances of very different sizes, so no term is negligible
    params = model.start_params
    params[model.plan.variance_index] *= np.linspace(0.05, 3.0, len(model.plan.variance_index))
    if model.plan.ar1_entry is not None:
        params[model.plan.variance_index[model.plan.ar1_entry]] = 0.6
    _, variances = model.plan.split(params)
    _, expected = dense_random_effects(model, params)
    for ours, theirs in zip(model.likelihood.random_effects_variance(variances), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@pytest.mark.parametrize("var_k", [1.3, 1e8])
def test_conditional_variances_in_closed_form(article_data, var_k):
    """Balanced J units of n rows: invert the posterior precision G^-1 + Z'Z / s_e by Sherman-Morrison.

    A county variance 1e8 times the others makes the covariance form G - G Z' Sigma^-1 Z G lose
    eight digits in float64; the precision form and the recursion keep them.
    """
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data)
    s_k, s_j, s_e, n_units, n = var_k, 0.7, 1.1, 2, 2
    _, variances = model.plan.split(np.array([0.0, 2.0, s_k, s_j, s_e]))
    a, b, c = 1 / s_k + n_units * n / s_e, n / s_e, 1 / s_j + n / s_e  # u-u, u-v, v-v precisions
    d = b * b / a
    expected_k = 1 / (a - n_units * b * b / c)
    expected_j = 1 / c + d / (c * (c - n_units * d))
    ours = model.likelihood.random_effects_variance(variances)
    np.testing.assert_allclose(ours[0], expected_k, rtol=1e-13)
    np.testing.assert_allclose(ours[1], expected_j, rtol=1e-13)


def test_blups_equal_mixedlm(res, mixed):
    ours = res.random_effects
    top, units = ours["k"].to_numpy(), ours["k:j"]
    for cluster, (k, theirs) in enumerate(mixed.random_effects.items()):
        assert theirs.iloc[0] == pytest.approx(top[cluster], abs=1e-5)
        own = units.loc[res.model.layout.unit_ids[0].iloc[cluster]["k"]].to_numpy()
        np.testing.assert_allclose(theirs.iloc[1:].to_numpy(), own, atol=1e-5)


def test_conditional_variances_equal_mixedlm(res, mixed):
    """The diagonal of MixedLM's random_effects_cov (its own estimates: agreement to their precision)."""
    se = res.random_effects_se
    for cluster, (k, cov) in enumerate(mixed.random_effects_cov.items()):
        theirs = np.sqrt(np.diag(cov))
        assert theirs[0] == pytest.approx(se["k"].iloc[cluster], rel=1e-5)
        own = se["k:j"].loc[res.model.layout.unit_ids[0].iloc[cluster]["k"]].to_numpy()
        np.testing.assert_allclose(theirs[1:], own, rtol=1e-5)


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("rows", ["all", "unbalanced"])
def test_pastes_effects_and_conditional_sds_equal_lme4(reml, rows):
    """lme4's ranef(condVar = TRUE) (tests/reference/pastes_lme4.R), balanced and unbalanced."""
    pastes = pd.read_csv(REFERENCE / "pastes.csv")
    if rows == "unbalanced":
        pastes = pastes.drop(index=[0, 2, 6, 7])  # rows 1, 3, 7, 8 in R
    ref = pd.read_csv(REFERENCE / "pastes_lme4_ranef.csv")
    ref = ref[(ref["reml"] == reml) & (ref["rows"] == rows)]
    res = sms.MultilevelSEM.from_formula("strength ~ 1 + (1|batch/cask)", pastes).fit(reml=reml)
    batch = ref[ref["grpvar"] == "batch"].set_index("grp")
    cask = ref[ref["grpvar"] == "cask:batch"]
    cask = cask.set_index(pd.MultiIndex.from_tuples([tuple(g.split(":")[::-1]) for g in cask["grp"]]))
    for level, theirs in [("batch", batch), ("batch:cask", cask)]:
        assert len(theirs) == len(res.random_effects[level])
        np.testing.assert_allclose(res.random_effects[level].loc[theirs.index], theirs["condval"], rtol=1e-6,
                                   atol=1e-6)
        np.testing.assert_allclose(res.random_effects_se[level].loc[theirs.index], theirs["condsd"], rtol=1e-6)
    if rows == "unbalanced":  # a cask with one sample is predicted less precisely than one with two
        assert res.random_effects_se["batch:cask"].loc[("A", "a")] > res.random_effects_se["batch:cask"].loc[("C", "a")]


def test_random_effects_are_labelled_by_ids(res, unbalanced_data):
    for effects in (res.random_effects, res.random_effects_se):
        assert list(effects) == ["k", "k:j"]
        assert effects["k"].index.name == "k" and len(effects["k"]) == unbalanced_data["k"].nunique()
        assert effects["k:j"].index.names == ["k", "j"]
        assert len(effects["k:j"]) == len(unbalanced_data.groupby(["k", "j"]))
    assert res.random_effects["k:j"].index.equals(res.random_effects_se["k:j"].index)


def test_predictions_and_residuals(res, unbalanced_data):
    beta = res.params[["Intercept", "x"]].to_numpy()
    marginal = res.predict()
    np.testing.assert_allclose(marginal, beta[0] + beta[1] * unbalanced_data["x"].to_numpy())
    k_effect = res.random_effects["k"].loc[unbalanced_data["k"]].to_numpy()
    j_effect = res.random_effects["k:j"].loc[pd.MultiIndex.from_frame(unbalanced_data[["k", "j"]])].to_numpy()
    np.testing.assert_allclose(res.predict(level="k"), marginal + k_effect)
    np.testing.assert_allclose(res.fittedvalues, marginal + k_effect + j_effect)
    np.testing.assert_allclose(res.resid, unbalanced_data["y"].to_numpy() - res.fittedvalues)
    assert isinstance(res.fittedvalues, pd.Series) and res.fittedvalues.index.equals(unbalanced_data.index)
    new = np.array([[1.0, 0.5], [1.0, 2.0]])
    np.testing.assert_allclose(res.predict(exog=new), new @ beta)


def test_prediction_errors(res):
    with pytest.raises(ValueError, match="is not one of"):
        res.predict(level="school")
    with pytest.raises(ValueError, match="exog needs 2 columns"):
        res.predict(exog=np.ones((3, 3)))
    with pytest.raises(NotImplementedError, match="need their ids"):
        res.predict(exog=np.ones((3, 2)), level="k")
