"""Empirical Bayes predictions of the random effects, predictions and residuals."""

import warnings

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from dense_reference import dense_covariances
from sm_multisem.compare import TIGHT_FIT, mixedlm_equivalent


@pytest.fixture(scope="module")
def res(unbalanced_data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data).fit()


def test_blups_equal_the_dense_formula(res):
    """E[u | y] = G Z' Sigma^-1 r cluster by cluster."""
    model = res.model
    beta, variances = model.plan.split(res.params.to_numpy())
    y = model.model_data.endog[model.layout.order]
    X = model.model_data.exog[model.layout.order]
    units = [model.layout.unit_of_rows(level) for level in range(2)]
    predicted = model.likelihood.random_effects(beta, variances)
    for rows, sigma in dense_covariances(model, res.params.to_numpy()):
        weighted = np.linalg.solve(sigma, y[rows] - X[rows] @ beta)
        for level in range(2):
            for unit in np.unique(units[level][rows]):
                expected = variances[level] * weighted[units[level][rows] == unit].sum()
                assert predicted[level][unit] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_blups_equal_mixedlm(res):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = mixedlm_equivalent(res.model).fit(reml=False, **TIGHT_FIT)
    ours = res.random_effects
    top, units = ours["k"].to_numpy(), ours["k:j"]
    for cluster, (k, theirs) in enumerate(mixed.random_effects.items()):
        assert theirs.iloc[0] == pytest.approx(top[cluster], abs=1e-5)
        own = units.loc[res.model.layout.unit_ids[0].iloc[cluster]["k"]].to_numpy()
        np.testing.assert_allclose(theirs.iloc[1:].to_numpy(), own, atol=1e-5)


def test_random_effects_are_labelled_by_ids(res, unbalanced_data):
    effects = res.random_effects
    assert list(effects) == ["k", "k:j"]
    assert effects["k"].index.name == "k" and len(effects["k"]) == unbalanced_data["k"].nunique()
    assert effects["k:j"].index.names == ["k", "j"]
    assert len(effects["k:j"]) == len(unbalanced_data.groupby(["k", "j"]))


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
