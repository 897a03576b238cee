"""Extreme but valid data: each fit converges to the answer of an independent reference.

Variances at 0 and a variance 10^6 times another are in ``test_boundary.py``; here are an
outcome scaled by 10^6 and 10^-6, one cluster of 100,000 rows among small ones, and 100,000
clusters of one or two rows.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import sm_multisem as sms
from mixedlm_reference import mixedlm_profiled_loglike
from sm_multisem.output.compare import mixedlm_equivalent


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_outcome_scaled_by_a_million_either_way(unbalanced_data, scale, reml):
    base = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data).fit(reml=reml)
    scaled_data = unbalanced_data.assign(y=unbalanced_data["y"] * scale)
    scaled = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", scaled_data).fit(reml=reml)
    assert scaled.converged and not scaled.boundary
    factor = np.array([scale, scale, scale**2, scale**2, scale**2])
    np.testing.assert_allclose(scaled.params.to_numpy() / factor, base.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(scaled.bse.to_numpy() / factor, base.bse.to_numpy(), rtol=1e-5)
    n = base.nobs_long - (2 if reml else 0)
    assert scaled.llf == pytest.approx(base.llf - n * np.log(scale), rel=1e-12, abs=1e-7)


def test_one_cluster_of_100000_rows_among_small_ones():
    """MixedLM's own log-likelihood is maximal at the estimates and equals the reported llf."""
    huge = sms.simulate_nested((1, 50, 2000), sd=(1.0, 0.7, 1.0), seed=1)
    small = sms.simulate_nested((300, 3, 4), sd=(1.0, 0.7, 1.0), seed=2).assign(k=lambda d: d["k"] + 1)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", pd.concat([huge, small], ignore_index=True))
    res = model.fit()
    assert res.converged
    assert res.groups.loc["k", "max"] == 100_000
    variances = res.params.to_numpy()[2:]
    theta = np.sqrt(variances[:2] / variances[2])
    mixed = mixedlm_equivalent(model)
    at_estimate = mixedlm_profiled_loglike(model, theta, reml=False, mixed=mixed)
    assert at_estimate == pytest.approx(res.llf, abs=1e-6)
    for step in (np.array([1e-3, 0]), np.array([0, 1e-3])):
        for sign in (1, -1):
            assert mixedlm_profiled_loglike(model, theta * (1 + sign * step), reml=False, mixed=mixed) < at_estimate


SUM, DIFFERENCE, SINGLE = 0, 1, 2


def pairs_loglike(log_variances: np.ndarray, y: np.ndarray, X: np.ndarray, kind: np.ndarray):
    """Closed-form ML log-likelihood of ``y ~ X + (1|k)`` with clusters of one or two rows.

    A pair (y1, y2) with variances (a + e, a + e) and covariance a is the independent sum
    (y1 + y2)/sqrt(2) with variance 2a + e and difference (y1 - y2)/sqrt(2) with variance e;
    a single row has variance a + e. ``kind`` says which each row is (``SUM``, ``DIFFERENCE``,
    ``SINGLE``). The fixed effects are the weighted least squares fit. Returns the
    log-likelihood and the fixed effects.
    """
    a, e = np.exp(log_variances)
    variance = np.choose(kind, [2 * a + e, e, a + e])
    w = 1.0 / variance
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (y * w))
    r = y - X @ beta
    return -0.5 * np.sum(np.log(2 * np.pi * variance) + r * r * w), beta


def test_100000_clusters_of_one_or_two_rows_match_the_closed_form():
    rng = np.random.default_rng(11)
    n_clusters = 100_000
    sizes = rng.integers(1, 3, size=n_clusters)
    k = np.repeat(np.arange(n_clusters), sizes)
    x = rng.normal(size=len(k))
    y = 1.0 + 0.5 * x + rng.normal(scale=0.8, size=n_clusters)[k] + rng.normal(size=len(k))
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k)", pd.DataFrame({"k": k, "x": x, "y": y})).fit()

    # rows of each pair become (sum, difference)/sqrt(2), rows of a single stay as they are
    first = np.flatnonzero(sizes[k] == 2)[::2]
    kind = np.full(len(y), SINGLE)
    kind[first], kind[first + 1] = SUM, DIFFERENCE
    transformed_y, transformed_X = y.copy(), np.column_stack([np.ones_like(x), x])
    for values in (transformed_y, transformed_X):
        top, bottom = values[first].copy(), values[first + 1].copy()
        values[first], values[first + 1] = (top + bottom) / np.sqrt(2), (top - bottom) / np.sqrt(2)
    reference = optimize.minimize(
        lambda v: -pairs_loglike(v, transformed_y, transformed_X, kind)[0],
        x0=np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 2000},
    )
    llf, beta = pairs_loglike(reference.x, transformed_y, transformed_X, kind)
    assert res.llf == pytest.approx(llf, abs=1e-6)
    np.testing.assert_allclose(res.params.to_numpy()[:2], beta, rtol=1e-6)
    np.testing.assert_allclose(res.params.to_numpy()[2:], np.exp(reference.x), rtol=1e-5)


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("clusters, dropped", [(2500, 0), (300, 7)])  # the pattern path, then the recursion
def test_large_offsets_in_the_outcome_and_a_covariate_cost_no_digits(clusters, dropped, reml):
    """y near 1e6 and x near 1e5 (a year, a price): only the intercept moves, by the offsets exactly.

    Without centring the cross-products hold the offsets squared and the log-likelihood lost six
    digits (0.9 at y + 1e6)."""
    data = sms.simulate_article_data(n_clusters=clusters, seed=1)
    data = data.iloc[: len(data) - dropped]
    base = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit(reml=reml)
    shifted = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(y=data["y"] + 1e6, x=data["x"] + 1e5))
    res = shifted.fit(reml=reml)
    assert res.llf == pytest.approx(base.llf, abs=1e-6)
    np.testing.assert_allclose(res.params.iloc[1:], base.params.iloc[1:], rtol=1e-8)
    assert res.params["Intercept"] == pytest.approx(base.params["Intercept"] + 1e6 - 1e5 * base.params["x"],
                                                    rel=1e-10)
    np.testing.assert_allclose(res.bse.iloc[1:], base.bse.iloc[1:], rtol=1e-5)


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("clusters, dropped", [(2500, 0), (300, 7)])
@pytest.mark.parametrize("form", ["relax_intercept", "indicators"])
def test_large_offsets_without_a_column_of_ones_cost_no_digits(clusters, dropped, reml, form):
    """An intercept per label (relax_intercept, or ``0 + C(type)``) has no column of ones, but its
    indicators add up to one: the columns are centred on that sum, and only the intercepts move.

    Before, y near 1e6 and x near 1e5 lost the log-likelihood's second decimal (0.04), the slope's
    fourth digit and a fifth of the standard errors, and the optimizer failed."""
    data = sms.simulate_article_data(n_clusters=clusters, seed=1)
    data = data.iloc[: len(data) - dropped]
    data = data.assign(type=np.random.default_rng(2).choice(["a", "b"], size=data["k"].max() + 1)[data["k"]])
    shifted_data = data.assign(y=data["y"] + 1e6, x=data["x"] + 1e5)

    def model(frame):
        if form == "indicators":
            return sms.MultilevelSEM.from_formula("y ~ 0 + C(type) + x + (1|k/j)", frame)
        return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", frame).relax_intercept("type")

    base, res = model(data).fit(reml=reml), model(shifted_data).fit(reml=reml)
    assert res.converged
    assert res.llf == pytest.approx(base.llf, abs=1e-6)
    np.testing.assert_allclose(res.params.iloc[2:], base.params.iloc[2:], rtol=1e-8)
    np.testing.assert_allclose(res.params.iloc[:2], base.params.iloc[:2] + 1e6 - 1e5 * base.params["x"], rtol=1e-10)
    np.testing.assert_allclose(res.bse.iloc[2:], base.bse.iloc[2:], rtol=1e-5)
