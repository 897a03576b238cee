"""Sampling weights of the top-level clusters: pseudo-ML and linearized variance."""

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from dense_reference import finite_difference_hessian


@pytest.fixture(scope="module")
def data():
    data = sms.simulate_nested((60, 3, 3), sd=(1.0, 0.7, 1.0), seed=2, drop_fraction=0.2)
    weights = pd.Series(np.random.default_rng(0).integers(1, 4, 60), index=np.arange(1, 61))
    return data.assign(w=data["k"].map(weights), one=1.0, stratum=(data["k"] - 1) // 20, psu=(data["k"] - 1) // 2)


@pytest.fixture(scope="module")
def weighted(data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, weights="w")


def test_weights_of_one_reproduce_the_unweighted_fit(data):
    plain = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit(cov_type="robust")
    ones = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, weights="one").fit()
    np.testing.assert_allclose(ones.params.to_numpy(), plain.params.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ones.bse.to_numpy(), plain.bse.to_numpy(), rtol=1e-8)
    assert ones.llf == pytest.approx(plain.llf, rel=1e-12)


def test_integer_weights_equal_replicated_clusters(data, weighted):
    copies = data.groupby("k")["w"].first()
    replicated = pd.concat([data[data["k"] == k].assign(k=f"{k}_{c}") for k, n in copies.items() for c in range(n)])
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", replicated).fit()
    fit = weighted.fit()
    np.testing.assert_allclose(fit.params.to_numpy(), res.params.to_numpy(), rtol=1e-9)
    assert fit.llf == pytest.approx(res.llf, rel=1e-12)


def test_linearized_variance_is_the_hand_built_sandwich(data, weighted):
    res = weighted.fit(cov_type="survey", cov_kwds={"psu": data["psu"], "strata": data["stratum"]})
    params = res.params.to_numpy()
    k = len(params)
    bread = np.linalg.inv(-finite_difference_hessian(weighted.score, params))
    per_cluster = data.groupby("k")[["w", "psu", "stratum"]].first().sort_index()
    scores = pd.DataFrame(weighted.score_obs(params) * per_cluster["w"].to_numpy()[:, None])
    scores[["psu", "stratum"]] = per_cluster[["psu", "stratum"]].to_numpy()
    meat = np.zeros((k, k))
    for _, stratum in scores.groupby("stratum"):
        totals = stratum.groupby("psu")[list(range(k))].sum().to_numpy()
        centred = totals - totals.mean(0)
        meat += len(totals) / (len(totals) - 1) * centred.T @ centred
    np.testing.assert_allclose(res.cov_params().to_numpy(), bread @ meat @ bread, rtol=1e-5)
    text = " ".join(res.summary().as_text().split())
    assert "SURVEY (linearized; 3 strata, 30 PSUs)" in text and "Log pseudolikelihood" in text
    assert "LR tests are not valid" in text
    assert np.isnan(res.aic) and np.isnan(res.bic)


def test_survey_without_design_is_robust(weighted):
    robust, survey = weighted.fit(), weighted.fit(cov_type="survey")
    assert robust.cov_type == "robust"
    np.testing.assert_allclose(survey.bse.to_numpy(), robust.bse.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d, weights="j"), "weights vary within units of 'k'"),
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d.assign(w=-d["w"]), weights="w"),
     "positive and finite"),
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d, weights="weight"), "'weight' is not a column"),
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d, weights="w").fit(reml=True), "fitted by ML"),
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d, weights="w").fit(cov_type="oim"),
     "does not give the variance"),
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d, weights="w").fit(
        cov_type="survey", cov_kwds={"psu": d["k"], "strata": d["k"]}), "single primary sampling unit"),
    (lambda d: sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", d, weights="w").fit(
        cov_type="survey", cov_kwds={"psu": d["j"]}), "psu vary within units of 'k'"),
])
def test_refusals(data, build, message):
    with pytest.raises(ValueError, match=message):
        build(data)
