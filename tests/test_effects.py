"""Random effects on any columns: several slopes, independent effects, an effect per factor level.

Every structure is checked against the dense multivariate normal (log-likelihood, restricted
log-likelihood, predictions of the effects and their conditional covariances) and its score
against finite differences, on unbalanced data with single-row units (tests/reference/slopes_data.csv
with a second covariate ``w`` and a school type drawn here).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_covariances, dense_loglike, dense_random_effects

import sm_multisem as sms
from sm_multisem.fit.estimation import ProfiledObjective

REFERENCE = Path(__file__).parent / "reference"
FORMULAS = {
    "nested": "y ~ x + (1 + x|k/j)",
    "three": "y ~ x + w + (1 + x + w|k) + (1|k:j)",
    "diagonal": "y ~ x + (1 + x||k) + (1|k:j)",
    "split": "y ~ x + (1|k) + (0 + x|k) + (1|k:j)",
    "by_type": "y ~ x + C(type) + (0 + C(type)|k) + (1|k:j)",
    "both_levels": "y ~ x + w + (1 + x|k) + (1 + w||k:j)",
    "slope_only": "y ~ x + (0 + x|k) + (1|k:j)",
}


@pytest.fixture(scope="module")
def data():
    frame = pd.read_csv(REFERENCE / "slopes_data.csv")
    rng = np.random.default_rng(7)
    n_schools = frame.groupby(["k", "j"]).ngroups
    school = frame.groupby(["k", "j"]).ngroup()
    frame["type"] = np.array(["pub", "prv", "chr"])[rng.integers(0, 3, n_schools)][school]
    frame["w"] = rng.normal(-0.3, 0.8, len(frame)).round(6)
    frame["y"] += 0.5 * frame["w"] + rng.normal(0, 0.6, len(frame)) * frame["w"]
    return frame


@pytest.fixture(scope="module", params=list(FORMULAS))
def small(request, data):
    """A few clusters of every structure, for the dense likelihood."""
    return sms.MultilevelSEM.from_formula(FORMULAS[request.param], data[data["k"] <= 8])


def _params(model, rng):
    """Fixed effects and a positive definite G per level at random, away from any estimate."""
    beta = rng.normal(size=len(model.exog_names))
    variances = np.zeros(len(model.plan.variance_index))
    variances[model.plan.residual_variances] = rng.uniform(0.5, 1.5, len(model.plan.residual_variances))
    for effects in model.plan.level_effects:
        q = len(effects.columns)
        factor = rng.normal(size=(q, q)) * 0.6 + np.eye(q)
        g = factor @ factor.T
        present = effects.entries >= 0
        variances[effects.entries[present]] = g[present]
    return model.plan.join(beta, variances)


def test_parameter_names(data):
    names = {which: sms.MultilevelSEM.from_formula(formula, data).param_names for which, formula in FORMULAS.items()}
    assert names["three"][3:] == ["var(k)", "var(x|k)", "var(w|k)", "cov(k, x|k)", "cov(k, w|k)",
                                  "cov(x|k, w|k)", "var(k:j)", "var(Residual)"]
    assert names["diagonal"][2:] == names["split"][2:] == ["var(k)", "var(x|k)", "var(k:j)", "var(Residual)"]
    assert names["by_type"][4:] == [
        "var(C(type)[chr]|k)", "var(C(type)[prv]|k)", "var(C(type)[pub]|k)", "cov(C(type)[chr]|k, C(type)[prv]|k)",
        "cov(C(type)[chr]|k, C(type)[pub]|k)", "cov(C(type)[prv]|k, C(type)[pub]|k)", "var(k:j)", "var(Residual)"]
    assert names["slope_only"][2:] == ["var(x|k)", "var(k:j)", "var(Residual)"]


@pytest.mark.parametrize("seed", [1, 2])
def test_loglike_equals_dense_multivariate_normal(small, seed):
    params = _params(small, np.random.default_rng(seed))
    assert small.loglike(params) == pytest.approx(dense_loglike(small, params), rel=1e-12, abs=1e-9)


def test_restricted_loglike_equals_dense(small):
    params = _params(small, np.random.default_rng(4))
    y = small.model_data.endog[small.layout.order]
    X = small.model_data.exog[small.layout.order]
    info, xy = 0.0, 0.0
    for rows, sigma in dense_covariances(small, params):
        info = info + X[rows].T @ np.linalg.solve(sigma, X[rows])
        xy = xy + X[rows].T @ np.linalg.solve(sigma, y[rows])
    gls = params.copy()
    gls[small.plan.beta_index] = np.linalg.solve(info, xy)
    p = len(small.plan.beta_index)
    expected = dense_loglike(small, gls) - 0.5 * np.linalg.slogdet(info)[1] + 0.5 * p * np.log(2 * np.pi)
    assert small.loglike(params, reml=True) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("reml", [False, True])
def test_score_equals_finite_differences(small, reml):
    params = _params(small, np.random.default_rng(5))
    step = 1e-6
    numeric = np.array([(small.loglike(params + step * e, reml=reml) - small.loglike(params - step * e, reml=reml))
                        / (2 * step) for e in np.eye(len(params))])
    np.testing.assert_allclose(small.score(params, reml=reml), numeric, rtol=1e-6, atol=1e-6)


def test_score_obs_per_cluster_equals_finite_differences(small):
    params = _params(small, np.random.default_rng(6))
    step = 1e-6
    numeric = np.column_stack([(small.loglikeobs(params + step * e) - small.loglikeobs(params - step * e)) / (2 * step)
                               for e in np.eye(len(params))])
    np.testing.assert_allclose(small.score_obs(params), numeric, rtol=1e-6, atol=1e-7)


def test_profiled_deviance_gradient_in_cholesky_factor(small):
    objective = ProfiledObjective(small.likelihood, reml=True)
    theta = np.random.default_rng(8).uniform(0.2, 0.9, len(objective.free))
    _, gradient = objective(theta)
    step = 1e-6
    numeric = [(objective(theta + step * e)[0] - objective(theta - step * e)[0]) / (2 * step)
               for e in np.eye(len(theta))]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(objective.theta_of(objective.rel_var(theta)), theta, rtol=1e-10)


def test_random_effects_equal_dense_conditional_moments(small):
    params = _params(small, np.random.default_rng(9))
    means, covariances = dense_random_effects(small, params)
    beta, variances = small.plan.split(params)
    for level, (mean, cov) in enumerate(zip(small.likelihood.random_effects(beta, variances),
                                            small.likelihood.random_effects_covariance(variances))):
        np.testing.assert_allclose(mean, means[level], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cov, covariances[level], rtol=1e-9, atol=1e-12)


def test_random_effects_by_level_and_conditional_predictions(data):
    res = sms.MultilevelSEM.from_formula(FORMULAS["three"], data).fit()
    effects = res.random_effects
    assert list(effects["k"].columns) == ["Intercept", "x", "w"]
    assert isinstance(effects["k:j"], pd.Series)
    assert effects["k"].shape == (data["k"].nunique(), 3)
    assert res.random_effects_se["k"].shape == effects["k"].shape
    beta = res.params[res.model.exog_names].to_numpy()
    by_k = effects["k"].loc[data["k"]].to_numpy()
    by_school = effects["k:j"].loc[pd.MultiIndex.from_frame(data[["k", "j"]])].to_numpy()
    marginal = np.column_stack([np.ones(len(data)), data["x"], data["w"]]) @ beta
    at_k = marginal + np.einsum("nq,nq->n", by_k, np.column_stack([np.ones(len(data)), data["x"], data["w"]]))
    np.testing.assert_allclose(res.predict(level="k"), at_k, rtol=1e-12)
    np.testing.assert_allclose(res.predict(level="k:j"), at_k + by_school, rtol=1e-12)
    new = data.iloc[:40]
    np.testing.assert_allclose(res.predict(new, level="k:j"), at_k[:40] + by_school[:40], rtol=1e-12)
    unseen = new.assign(k=new["k"] + 1000)  # units not in the fit add nothing
    np.testing.assert_allclose(res.predict(unseen, level="k:j"), marginal[:40], rtol=1e-12)


def test_independent_terms_of_one_grouping_equal_the_double_bar(data):
    diagonal = sms.MultilevelSEM.from_formula(FORMULAS["diagonal"], data).fit()
    split = sms.MultilevelSEM.from_formula(FORMULAS["split"], data).fit()
    np.testing.assert_allclose(diagonal.params, split.params, rtol=1e-6)
    assert diagonal.llf == pytest.approx(split.llf, abs=1e-9)
    unstructured = sms.MultilevelSEM.from_formula("y ~ x + (1 + x|k) + (1|k:j)", data).fit()
    assert unstructured.llf >= diagonal.llf - 1e-9


def test_zero_covariances_are_the_independent_model(data):
    """The unstructured model at zero covariances is the diagonal one, to rounding."""
    unstructured = sms.MultilevelSEM.from_formula("y ~ x + (1 + x|k) + (1|k:j)", data)
    diagonal = sms.MultilevelSEM.from_formula(FORMULAS["diagonal"], data)
    base = pd.Series([0.8, 1.9, 0.9, 0.4, 0.6, 1.0], index=diagonal.param_names)
    params = pd.Series(0.0, index=unstructured.param_names)
    params[base.index] = base
    for reml in (False, True):
        assert unstructured.loglike(params.to_numpy(), reml=reml) == pytest.approx(
            diagonal.loglike(base.to_numpy(), reml=reml), rel=1e-13)


def test_residual_variance_by_label_with_random_slopes(data):
    """varIdent on a model with random slopes: the dense normal, and the score."""
    model = sms.MultilevelSEM.from_formula("y ~ x + (1 + x|k) + (1|k:j)", data[data["k"] <= 8]).relax_residuals(
        by="type")
    assert model.param_names[-3:] == ["var(Residual)[chr]", "var(Residual)[prv]", "var(Residual)[pub]"]
    params = _params(model, np.random.default_rng(10))
    assert model.loglike(params) == pytest.approx(dense_loglike(model, params), rel=1e-12)
    step = 1e-6
    numeric = np.array([(model.loglike(params + step * e) - model.loglike(params - step * e)) / (2 * step)
                        for e in np.eye(len(params))])
    np.testing.assert_allclose(model.score(params), numeric, rtol=1e-6, atol=1e-6)


def test_rows_missing_an_effect_column_are_counted(data):
    holes = data.assign(w=data["w"].where(np.arange(len(data)) % 10 != 0))
    model = sms.MultilevelSEM.from_formula("y ~ x + (1 + w|k)", holes)
    dropped = int(holes["w"].isna().sum())
    assert model.row_accounting.dropped == {"missing random-effect column w": dropped}
    assert model.nobs_long == len(data) - dropped


def test_pickled_results_predict_new_rows_at_every_level(data):
    import pickle

    res = sms.MultilevelSEM.from_formula(FORMULAS["by_type"], data).fit()
    again = pickle.loads(pickle.dumps(res))
    new = data.iloc[:25]
    np.testing.assert_allclose(again.predict(new, level="k:j"), res.predict(new, level="k:j"), rtol=1e-12)
