"""The likelihood by missingness pattern against the nested recursion, and the rule that chooses it."""

import numpy as np
import pandas as pd
import pytest

from sm_multisem import MultilevelSEM, simulate_article_data, simulate_districts
from sm_multisem import model as model_module
from sm_multisem.compile.pattern_path import MAX_POSITIONS, MIN_CLUSTERS_PER_PATTERN, pattern_likelihood
from sm_multisem.engine.patterns import PatternNormal


def article(n_clusters: int, drop: float = 0.0, seed: int = 5) -> pd.DataFrame:
    """The article's design; ``drop`` removes that share of the rows at random (unbalanced)."""
    data = simulate_article_data(n_clusters=n_clusters, seed=seed)
    keep = np.random.default_rng(seed).random(len(data)) >= drop
    return data[keep].reset_index(drop=True)


@pytest.fixture
def likelihood_used(monkeypatch):
    """The class of the likelihood every fit maximises."""
    used = []
    fit_profiled = model_module.fit_profiled

    def spy(likelihood, **kwargs):
        used.append(type(likelihood).__name__)
        return fit_profiled(likelihood, **kwargs)

    monkeypatch.setattr(model_module, "fit_profiled", spy)
    return used


def nested_fit(model, monkeypatch, **kwargs):
    """The fit by the recursion, the pattern path switched off."""
    with monkeypatch.context() as patch:
        patch.setattr(model_module, "pattern_likelihood", lambda model, reml: None)
        return model.fit(**kwargs)


def relaxed_residuals(data: pd.DataFrame) -> MultilevelSEM:
    labelled = data.assign(role=np.where(data["i"] == 1, "first", "second"))
    return MultilevelSEM.from_formula("y ~ x + (1|k/j)", labelled).relax_residuals(by="role")


@pytest.mark.parametrize("drop", [0.0, 0.03], ids=["balanced", "unbalanced"])
@pytest.mark.parametrize("cov_type", ["oim", "eim"])
def test_pattern_path_gives_the_nested_fit(drop, cov_type, likelihood_used, monkeypatch):
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", article(400, drop))
    res = model.fit(cov_type=cov_type)
    expected = nested_fit(model, monkeypatch, cov_type=cov_type)
    assert likelihood_used == ["PatternNormal", "NestedNormal"]
    np.testing.assert_allclose(res.params, expected.params, rtol=1e-7, atol=1e-9)
    assert res.llf == pytest.approx(expected.llf, abs=1e-9)
    np.testing.assert_allclose(res.bse, expected.bse, rtol=1e-6)
    assert res.optimum.converged and res.optimum.deviance == pytest.approx(-2 * res.llf, abs=1e-12)
    assert list(res.params.index) == list(expected.params.index)


def test_pattern_path_with_robust_standard_errors(likelihood_used, monkeypatch):
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", article(300, 0.05))
    res, expected = model.fit(cov_type="robust"), nested_fit(model, monkeypatch, cov_type="robust")
    assert likelihood_used[0] == "PatternNormal"
    np.testing.assert_allclose(res.bse, expected.bse, rtol=1e-6)


def test_pattern_path_on_relaxed_residuals_and_three_levels(likelihood_used, monkeypatch):
    model = relaxed_residuals(article(400, 0.02))
    res, expected = model.fit(), nested_fit(model, monkeypatch)
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"a": np.repeat(np.arange(300), 8), "b": np.tile(np.repeat([0, 1], 4), 300),
                         "c": np.tile(np.repeat([0, 1], 2), 600), "x": rng.normal(size=2400)})
    data["y"] = data["x"] + rng.normal(size=300)[data["a"]] + rng.normal(size=2400)
    deep = MultilevelSEM.from_formula("y ~ x + (1|a/b/c)", data.sample(frac=0.97, random_state=1))
    deep_res, deep_expected = deep.fit(), nested_fit(deep, monkeypatch)
    assert likelihood_used == ["PatternNormal", "NestedNormal"] * 2
    for got, want in [(res, expected), (deep_res, deep_expected)]:
        np.testing.assert_allclose(got.params, want.params, rtol=1e-7, atol=1e-9)
        assert got.llf == pytest.approx(want.llf, abs=1e-9)
        np.testing.assert_allclose(got.bse, want.bse, rtol=1e-6)


@pytest.mark.parametrize("reml", [False, True])
def test_pattern_moments_equal_the_recursion(reml):
    model = relaxed_residuals(article(200, 0.1))
    patterns = pattern_likelihood(model, reml=False)
    assert isinstance(patterns, PatternNormal)
    rng = np.random.default_rng(0)
    for _ in range(3):
        rel_var = np.r_[rng.uniform(0.0, 3.0, size=model.likelihood.n_var - 1), 1.0]
        deviance, gradient = model.likelihood.profiled_deviance(rel_var, reml)
        got, got_gradient = patterns.profiled_deviance(rel_var, reml)
        assert got == pytest.approx(deviance, rel=1e-12)
        np.testing.assert_allclose(got_gradient, gradient, rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_the_rule_chooses_the_path(likelihood_used):
    data = article(400)
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    model.fit()
    model.fit(reml=True)  # REML: the recursion
    weighted = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(w=1.0 + data["k"] % 2), weights="w")
    weighted.fit()  # sampling weights: the recursion
    model.relax_residuals(structure="ar1", t="i").fit()  # AR(1) residuals
    MultilevelSEM.from_formula("y ~ x + (1 + x|k) + (1|k:j)", data).fit()  # random slopes
    MultilevelSEM.from_formula("y ~ x + (1|k/j)", simulate_districts(3000, 1)).fit()  # too many positions
    # exchangeable residuals within j
    MultilevelSEM.from_formula("y ~ x + (1|k)", data).relax_residuals(structure="exchangeable", within="j").fit()
    assert likelihood_used == (["PatternNormal"] + ["NestedNormal"] * 3 + ["EffectsNormal"]
                               + ["NestedNormal"] * 2)


def test_the_rule_counts_clusters_per_pattern():
    data = article(3 * MIN_CLUSTERS_PER_PATTERN)
    # a row dropped in every third cluster: 2 patterns over 3 * MIN_CLUSTERS_PER_PATTERN clusters pass;
    # 30% of the rows dropped at random: too many patterns for that many clusters
    few = data[~((data["k"] % 3 == 1) & (data["i"] == 1) & (data["j"] == 1))]
    assert isinstance(pattern_likelihood(MultilevelSEM.from_formula("y ~ x + (1|k/j)", few), reml=False),
                      PatternNormal)
    many = article(3 * MIN_CLUSTERS_PER_PATTERN, drop=0.3)
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", many)
    assert pattern_likelihood(model, reml=False) is None
    wide = simulate_article_data(n_clusters=200, n_units=MAX_POSITIONS // 2 + 1, n_obs=2, seed=1)
    assert pattern_likelihood(MultilevelSEM.from_formula("y ~ x + (1|k/j)", wide), reml=False) is None
    # small clusters, but a residual variance for each of 20 labels: up to 80 positions
    labelled = data.assign(role=np.arange(len(data)) % 20)
    relaxed = MultilevelSEM.from_formula("y ~ x + (1|k/j)", labelled).relax_residuals(by="role")
    assert pattern_likelihood(relaxed, reml=False) is None
