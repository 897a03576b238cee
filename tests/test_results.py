"""The results object follows statsmodels conventions, and its tests are computed right."""

import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.iolib.summary2 import Summary

import sm_multisem as sms
from dense_reference import dense_covariances, finite_difference_hessian

NAMES = ["Intercept", "x", "var(k)", "var(k:j)", "var(Residual)"]


@pytest.fixture(scope="module")
def model(article_data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data)


@pytest.fixture(scope="module")
def res(model):
    return model.fit()


def test_labelled_pandas_objects(res):
    for attr in ("params", "bse", "tvalues", "pvalues"):
        value = getattr(res, attr)
        assert isinstance(value, pd.Series) and list(value.index) == NAMES, attr
    assert list(res.conf_int().index) == NAMES
    cov = res.cov_params()
    assert list(cov.index) == NAMES and list(cov.columns) == NAMES
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), res.bse.to_numpy())


def test_counts(res, article_data):
    assert res.nobs == 100 and res.nobs_long == len(article_data)
    groups = res.groups
    assert list(groups.index) == ["k", "k:j"]
    assert groups.loc["k", "groups"] == 100 and groups.loc["k:j", "groups"] == 200
    assert groups.loc["k", "min"] == groups.loc["k", "max"] == 4


def test_information_criteria_use_clusters(res):
    k = len(res.params)
    assert res.aic == pytest.approx(-2 * res.llf + 2 * k)
    assert res.bic == pytest.approx(-2 * res.llf + np.log(100) * k)


def test_variances_have_log_scale_intervals_and_no_z_test(res):
    ci = res.conf_int(alpha=0.1)
    z = stats.norm.ppf(0.95)
    for name in NAMES[2:]:
        v, se = res.params[name], res.bse[name]
        assert ci.loc[name, 0] == pytest.approx(v * np.exp(-z * se / v))
        assert ci.loc[name, 1] == pytest.approx(v * np.exp(z * se / v))
        assert np.isnan(res.tvalues[name]) and np.isnan(res.pvalues[name])
    assert ci.loc["x", 0] == pytest.approx(res.params["x"] - z * res.bse["x"])


def test_wald_and_t_tests_with_string_constraints(res):
    t = res.t_test("x = 2")
    assert float(np.squeeze(t.tvalue)) == pytest.approx((res.params["x"] - 2) / res.bse["x"])
    wald = res.wald_test("x = 0", scalar=True)
    assert wald.statistic == pytest.approx((res.params["x"] / res.bse["x"]) ** 2)
    stat, df, _ = res.wald_test_fixed()
    assert df == 1 and stat == pytest.approx(wald.statistic)
    joint = res.wald_test("var(k) = var(k:j)", scalar=True)
    cov = res.cov_params()
    diff = res.params["var(k)"] - res.params["var(k:j)"]
    var = cov.loc["var(k)", "var(k)"] + cov.loc["var(k:j)", "var(k:j)"] - 2 * cov.loc["var(k)", "var(k:j)"]
    assert joint.statistic == pytest.approx(diff**2 / var)


def test_lr_test_against_linear_regression(unbalanced_data):
    """One variance tested: chi-bar-square(01) against the OLS log-likelihood."""
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k)", unbalanced_data).fit()
    ols = sm.OLS(unbalanced_data["y"], sm.add_constant(unbalanced_data["x"])).fit()
    lr = res.lr_test_linear()
    assert lr.statistic == pytest.approx(2 * (res.llf - ols.llf), rel=1e-9)
    assert lr.distribution == "chibar2(01)"
    assert lr.pvalue == pytest.approx(0.5 * stats.chi2.sf(lr.statistic, 1))


def test_lr_test_with_two_variances_is_flagged_conservative(res):
    lr = res.lr_test_linear()
    assert lr.df == 2 and lr.distribution == "chi2(2)" and "conservative" in lr.note


def test_summary_text_html_latex(res):
    summary = res.summary()
    assert isinstance(summary, Summary)
    text = summary.as_text()
    for piece in ["Mixed-effects ML regression", "No. of groups", "k:j", "Intercept", "var(Residual)",
                  "LR test vs. linear model", "400 of 400 rows used", f"{res.llf:.5f}"]:
        assert piece in text, piece
    assert "<table" in summary.as_html()
    assert "\\begin{table}" in summary.as_latex() or "tabular" in summary.as_latex()


def test_reml_summary_says_restricted(model):
    text = model.fit(reml=True).summary().as_text()
    assert "REML" in text and "Log restricted-likelihood" in text


def test_expected_information_fixed_block_is_gls_covariance(model, res):
    eim = model.fit(cov_type="eim")
    X = model.model_data.exog[model.layout.order]
    xtvx = sum(X[rows].T @ np.linalg.solve(sigma, X[rows]) for rows, sigma in dense_covariances(model, eim.params))
    np.testing.assert_allclose(eim.cov_params().iloc[:2, :2].to_numpy(), np.linalg.inv(xtvx), rtol=1e-8)
    assert eim.cov_type == "eim" and "EIM" in eim.summary().as_text()
    # the two estimators differ only in finite samples
    np.testing.assert_allclose(eim.bse.to_numpy(), res.bse.to_numpy(), rtol=0.1)


def test_oim_is_inverse_of_numerical_hessian_of_loglike(model, res):
    hess = finite_difference_hessian(model.score, res.params.to_numpy())
    np.testing.assert_allclose(res.cov_params().to_numpy(), np.linalg.inv(-hess), rtol=1e-5)


def test_fit_does_not_change_the_model(model):
    params = np.array([0.1, 1.9, 1.0, 0.8, 1.1])
    before = (model.loglike(params), model.loglike(params, reml=True), sorted(vars(model)))
    model.fit(reml=True)
    model.fit(cov_type="eim")
    after = (model.loglike(params), model.loglike(params, reml=True), sorted(vars(model)))
    assert before == after


def test_results_pickle(res):
    again = pickle.loads(pickle.dumps(res))
    pd.testing.assert_series_equal(again.params, res.params)
    assert again.llf == res.llf


def test_array_constructor_equals_formula(article_data, res):
    exog = sm.add_constant(article_data[["x"]]).rename(columns={"const": "Intercept"})
    model = sms.MultilevelSEM(article_data["y"], exog, groups=[article_data["k"], article_data["j"]])
    arrays = model.fit()
    assert list(arrays.params.index) == NAMES
    np.testing.assert_allclose(arrays.params.to_numpy(), res.params.to_numpy(), rtol=1e-10)


def test_fit_options_are_checked(model):
    with pytest.raises(ValueError, match="cov_type must be one of"):
        model.fit(cov_type="sandwich")
    with pytest.raises(ValueError, match=r"cov_kwds \['groups'\] are not options of cov_type='robust'"):
        model.fit(cov_type="robust", cov_kwds={"groups": [1]})
    with pytest.raises(ValueError, match="fit by ML"):
        model.fit(reml=True, cov_type="robust")
    with pytest.raises(TypeError, match="unexpected keyword"):
        model.fit(maxfun=3)
    with pytest.raises(ValueError, match="method must be 'ml'"):
        model.fit(method="nm")
    with pytest.raises(ValueError, match="GMM does not combine with REML"):
        model.fit(method="gmm", reml=True)


def test_iteration_log(model, capsys):
    res = model.fit(disp=True)
    lines = capsys.readouterr().out.splitlines()
    iterations = [line for line in lines if line.startswith("Iteration ")]
    assert iterations[0].startswith("Iteration 1:   log likelihood = ")
    assert iterations[-1].endswith(f"{res.llf:.5f}")
    assert len(iterations) == res.optimum.iterations
    assert lines[-1].startswith("ML fit: ")


def test_start_params_and_a_failed_fit(model, res):
    again = model.fit(start_params=res.params.to_numpy())
    np.testing.assert_allclose(again.params.to_numpy(), res.params.to_numpy(), rtol=1e-6)
    default_start = model.fit(start_params=model.start_params)
    np.testing.assert_allclose(default_start.params.to_numpy(), res.params.to_numpy(), rtol=1e-6)
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="did not converge .* Try other start_params"):
        stopped = model.fit(maxiter=1, gtol=0.0)  # a gradient can never be below 0
    assert not stopped.converged
    assert "Warning: the optimizer did not converge" in stopped.summary().as_text()


def test_remove_data_keeps_the_summary_and_shrinks_the_pickle(article_data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data)  # its own: remove_data empties it
    res = model.fit()
    text, size = res.summary().as_text(), len(pickle.dumps(res))
    params, bse, ci = res.params, res.bse, res.conf_int()
    new_exog = np.array([[1.0, 0.5], [1.0, -2.0]])
    marginal = res.predict(new_exog)
    wald = res.wald_test("x = 2", scalar=True).statistic

    res.remove_data()
    again = pickle.loads(pickle.dumps(res))
    assert len(pickle.dumps(res)) < size / 4
    assert again.summary().as_text() == text
    pd.testing.assert_series_equal(again.params, params)
    pd.testing.assert_series_equal(again.bse, bse)
    pd.testing.assert_frame_equal(again.conf_int(), ci)
    np.testing.assert_array_equal(again.predict(new_exog), marginal)
    with pytest.raises(ValueError,
                       match=r"data were removed .*give exog as an array with the columns \['Intercept', 'x'\]"):
        again.predict(article_data.head())
    assert again.wald_test("x = 2", scalar=True).statistic == wald
    assert model.model_data is None and model.layout is None  # as in statsmodels, the model loses its data too
