"""The dense wide engine (RAM matrices, FIML by pattern) against the nested likelihood and closed forms."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sm_multisem import MultilevelSEM, simulate_article_data
from sm_multisem.fit.gmm import sample_moments
from sm_multisem.wide_model import WideSEM


@pytest.fixture(scope="module")
def unbalanced():
    data = simulate_article_data(n_clusters=150, seed=11)
    return data.drop(index=[0, 5, 6, 17, 40, 41, 42]).reset_index(drop=True)


def iv_data(n_clusters: int = 300, seed: int = 3) -> pd.DataFrame:
    """Two schools of two students per county; x endogenous (its residual correlated 0.5 with y's)."""
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(n_clusters), 4)
    j = np.tile([0, 0, 1, 1], n_clusters)
    unit = 2 * k + j
    a, u = rng.multivariate_normal([0, 0], [[0.5, 0.2], [0.2, 1.0]], n_clusters).T
    b, v = rng.multivariate_normal([0, 0], [[0.3, 0.1], [0.1, 0.5]], 2 * n_clusters).T
    e_x, e_y = rng.multivariate_normal([0, 0], [[1.0, 0.5], [0.5, 1.0]], len(k)).T
    w, z1, z2 = rng.normal(size=(3, len(k)))
    x = 0.5 + 0.8 * z1 + 0.5 * z2 + 0.3 * w + a[k] + b[unit] + e_x
    y = 1.0 + 1.0 * x + 0.5 * w + u[k] + v[unit] + e_y
    return pd.DataFrame({"k": k, "j": j, "y": y, "x": x, "w": w, "z1": z1, "z2": z2})


def test_wide_engine_reproduces_the_nested_fit(unbalanced):
    nested = MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced)
    expected = nested.fit()
    wide = nested.as_wide(start_params=nested.start_params)
    res = wide.fit()
    assert res.llf == pytest.approx(expected.llf, abs=1e-8)
    np.testing.assert_allclose(res.params, expected.params, rtol=1e-6)
    np.testing.assert_allclose(res.bse, expected.bse, rtol=1e-5)
    np.testing.assert_allclose(wide.information(res.params, kind="eim"),
                               nested.information(expected.params, kind="eim"), rtol=1e-5, atol=1e-8)
    robust, expected_robust = wide.fit(cov_type="robust"), nested.fit(cov_type="robust")
    np.testing.assert_allclose(robust.bse, expected_robust.bse, rtol=1e-5)
    assert list(res.params.index) == list(expected.params.index)


def _dense_loglike(model: WideSEM, params) -> np.ndarray:
    """Row by row with scipy's multivariate normal: an independent FIML."""
    mean, sigma = model.ram.implied(np.asarray(params))
    outcomes, z = np.asarray(model.endog), model.normal._exogenous
    out = []
    for y, row in zip(outcomes, z):
        seen = ~np.isnan(y)
        out.append(stats.multivariate_normal(mean[seen] @ row, sigma[np.ix_(seen, seen)]).logpdf(y[seen]))
    return np.array(out)


@pytest.mark.parametrize("which", ["instrumental", "joint"])
def test_loglike_and_score_at_arbitrary_parameters(which):
    data = iv_data(60)
    if which == "instrumental":
        model = MultilevelSEM.from_formula("y ~ w + [x ~ z1 + z2] + (1|k/j)", data)
    else:
        data.loc[np.random.default_rng(1).random(len(data)) < 0.25, "x"] = np.nan
        model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="joint")
    rng = np.random.default_rng(5)
    params = model.start_params * (1.0 + 0.2 * rng.random(len(model.start_params))) + 0.05
    np.testing.assert_allclose(model.loglikeobs(params), _dense_loglike(model, params), rtol=1e-10)
    assert model.loglike(params) == pytest.approx(model.loglikeobs(params).sum(), rel=1e-12)
    steps = 1e-6 * np.maximum(np.abs(params), 1.0)
    numeric = np.array([(model.loglike(params + h * e) - model.loglike(params - h * e)) / (2 * h)
                        for h, e in zip(steps, np.eye(len(params)))])
    np.testing.assert_allclose(model.score(params), numeric, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(model.score_obs(params).sum(0), model.score(params), rtol=1e-10, atol=1e-9)


def _liml(y, exog, endog, instruments):
    """LIML by its closed form (k-class with kappa the smallest root), and kappa."""
    def annihilator(z):
        return np.eye(len(z)) - z @ np.linalg.pinv(z)

    both = np.column_stack([y, endog])
    m_exog, m_all = annihilator(exog), annihilator(np.column_stack([exog, instruments]))
    kappa = np.min(np.linalg.eigvals(np.linalg.solve(both.T @ m_all @ both, both.T @ m_exog @ both)).real)
    regressors = np.column_stack([exog, endog])
    weight = np.eye(len(y)) - kappa * m_all
    return np.linalg.solve(regressors.T @ weight @ regressors, regressors.T @ weight @ y), kappa


@pytest.mark.parametrize("instruments", ["z1", "z1 + z2"])
def test_iv_with_zero_effect_variances_is_liml(instruments):
    """With every random-effect variance fixed at 0 the system's ML estimate is LIML (2SLS if just identified)."""
    data = iv_data(100)
    model = MultilevelSEM.from_formula(f"y ~ w + [x ~ {instruments}] + (1|k/j)", data)
    table = model.parameter_table
    effects = table["label"].isin(["S_k", "S_j", "S_k_x", "S_j_x", "C_k", "C_k_j"])
    table.loc[effects, "free"], table.loc[effects, "value"] = False, 0.0
    res = model.with_table(table).fit()
    exog = np.column_stack([np.ones(len(data)), data["w"]])
    expected, _ = _liml(data["y"].to_numpy(), exog, data["x"].to_numpy(), data[instruments.split(" + ")].to_numpy())
    got = res.params[["Intercept", "w", "x"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_iv_recovers_the_effect_that_the_conditional_model_misses():
    data = iv_data(400)
    iv = MultilevelSEM.from_formula("y ~ w + [x ~ z1 + z2] + (1|k/j)", data).fit()
    naive = MultilevelSEM.from_formula("y ~ w + x + (1|k/j)", data).fit()
    assert abs(iv.params["x"] - 1.0) < 3 * iv.bse["x"]
    assert (naive.params["x"] - 1.0) > 5 * naive.bse["x"]
    exogeneity = iv.tests[0]
    assert exogeneity.df == 1 and exogeneity.pvalue < 1e-6
    text = str(iv.summary())
    assert "cov(Residual)[y,x]" in text and "Exogeneity of x" in text


def test_joint_model_on_complete_data_adds_the_covariates_saturated_likelihood(unbalanced):
    """With complete covariates the outcome's estimates are the conditional ones and the log-likelihood
    adds the covariates' own (a saturated normal: sample means and covariances)."""
    data = simulate_article_data(n_clusters=120, seed=4)
    conditional = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    joint = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="joint").fit()
    np.testing.assert_allclose(joint.params[conditional.params.index], conditional.params, rtol=1e-5)
    x_wide = joint.model.endog[:, [i for i, name in enumerate(joint.model.ram.observed) if name.startswith("x")]]
    centred = x_wide - x_wide.mean(0)
    saturated = stats.multivariate_normal(np.zeros(4), centred.T @ centred / len(x_wide)).logpdf(centred).sum()
    assert joint.llf == pytest.approx(conditional.llf + saturated, abs=1e-6)


def test_joint_model_keeps_rows_missing_a_covariate_and_removes_the_bias_of_listwise_deletion():
    data = simulate_article_data(n_clusters=1500, seed=8)
    rng = np.random.default_rng(2)
    # missing at random given the observed outcome: x is more often missing where y is large
    missing = rng.random(len(data)) < stats.norm.cdf(data["y"] - data["y"].mean())
    data.loc[missing, "x"] = np.nan
    truth = MultilevelSEM.from_formula("y ~ x + (1|k/j)", simulate_article_data(n_clusters=1500, seed=8)).fit()
    listwise = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    joint = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="joint").fit()
    assert joint.model.nobs == 1500 and listwise.row_accounting.dropped
    assert abs(joint.params["x"] - truth.params["x"]) < 2 * joint.bse["x"]
    assert abs(listwise.params["x"] - truth.params["x"]) > 4 * listwise.bse["x"]


def test_sample_moments_by_their_definition():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(50, 3))
    s, gamma = sample_moments(data)
    centred = data - data.mean(0)
    d = [np.r_[row, [c[a] * c[b] for a in range(3) for b in range(3) if a >= b]] for row, c in zip(data, centred)]
    order = [(a, b) for a in range(3) for b in range(3) if a >= b]
    lower = np.tril_indices(3)
    positions = [order.index((a, b)) for a, b in zip(*lower)]
    d = np.array(d)[:, list(range(3)) + [3 + p for p in positions]]
    np.testing.assert_allclose(s[:3], data.mean(0))
    np.testing.assert_allclose(s[3:], np.cov(data.T)[np.tril_indices(3)])
    np.testing.assert_allclose(gamma, np.cov(d.T, bias=True))


def test_gmm_solves_its_first_order_condition_and_counts_its_moments():
    data = simulate_article_data(n_clusters=300, seed=2)
    res = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit(method="gmm")
    assert res.method == "gmm" and np.isnan(res.llf)
    j_test = res.tests[0]
    assert j_test is res.j_statistic and j_test.df == 8 + 36 - 19
    assert np.max(np.abs(res.fit_outcome.gradient)) < 1e-7
    ml = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    assert np.all(np.abs(res.params[ml.params.index] - ml.params) < 4 * res.bse[ml.params.index])


def test_refusals():
    data = simulate_article_data(n_clusters=30, seed=1)
    with pytest.raises(ValueError, match="complete wide data"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.iloc[1:]).fit(method="gmm")
    joint_terms = "are not numeric columns"
    with pytest.raises(ValueError, match=joint_terms):
        MultilevelSEM.from_formula("y ~ np.log(x + 10) + (1|k/j)", data, covariates="joint")
    with pytest.raises(ValueError, match="covariates must be one of"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="marginal")
    data["z"] = data["x"] ** 2
    with pytest.raises(ValueError, match="one endogenous covariate"):
        MultilevelSEM.from_formula("y ~ [x ~ z] + [z ~ x] + (1|k/j)", data)
    with pytest.raises(ValueError, match="must be one column name"):
        MultilevelSEM.from_formula("y ~ [log(x) ~ z] + (1|k/j)", data)
    with pytest.raises(ValueError, match="not a column"):
        MultilevelSEM.from_formula("y ~ [q ~ z] + (1|k/j)", data)
    with pytest.raises(ValueError, match="REML applies to the nested"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="joint").loglike(np.zeros(19), reml=True)


def test_relaxed_models_fit_the_same_by_the_wide_engine():
    data = pd.read_csv(Path(__file__).parent / "reference" / "relax_data.csv")
    model = (MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
             .relax_slope("x", by="type").relax_variance("k:j", by="type").relax_residuals(by="role"))
    expected = model.fit()
    res = model.as_wide().fit()
    assert res.llf == pytest.approx(expected.llf, abs=1e-7)
    np.testing.assert_allclose(res.params, expected.params, rtol=1e-5)


def test_wide_results_pickle_and_take_the_sandwich_estimators():
    data = iv_data(120)
    model = MultilevelSEM.from_formula("y ~ w + [x ~ z1 + z2] + (1|k/j)", data)
    res = model.fit(cov_type="robust")
    assert res.cov_description.startswith("ROBUST (120 top-level clusters")
    scores = model.score_obs(res.params)
    bread = np.linalg.inv(model.information(res.params, kind="oim"))
    by_hand = 120 / 119 * bread @ scores.T @ scores @ bread
    np.testing.assert_allclose(res.cov_params(), by_hand, rtol=1e-8)
    restored = pickle.loads(pickle.dumps(res))
    assert str(restored.tests[0]) == str(res.tests[0])
    np.testing.assert_allclose(restored.params, res.params)
