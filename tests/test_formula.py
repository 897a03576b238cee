"""Splitting a mixed-model formula into its fixed part and nested random intercepts."""

import numpy as np
import pytest
import statsmodels.formula.api as smf

import sm_multisem as sms
from sm_multisem import FormulaError, MultilevelSEM, parse_formula


@pytest.mark.parametrize(
    "formula, fixed, groupings",
    [
        ("y ~ x + (1|k/j)", "y ~ x", (("k",), ("k", "j"))),
        ("y ~ x + (1|k) + (1|k:j)", "y ~ x", (("k",), ("k", "j"))),
        ("y ~ x + (1|a/b/c)", "y ~ x", (("a",), ("a", "b"), ("a", "b", "c"))),
        ("y ~ x + (1|a) + (1|a:b) + (1|a:b:c)", "y ~ x", (("a",), ("a", "b"), ("a", "b", "c"))),
        ("y ~ (1|k) + x", "y ~ x", (("k",),)),
        ("y ~ (1|k)", "y ~ 1", (("k",),)),
        ("y ~ 1 + (1|k/j)", "y ~ 1", (("k",), ("k", "j"))),
        ("y ~ x - 1 + (1|k)", "y ~ x - 1", (("k",),)),
        ("y ~ x + (1|k) - 1", "y ~ x - 1", (("k",),)),
        ("y ~ (1|k) + (1|j) + x", "y ~ x", (("k",), ("j",))),
        ("y ~ a + (1|k) + b + (1|k:j) + c", "y ~ a + b + c", (("k",), ("k", "j"))),
        ("y~x+(1|k/j)", "y ~ x", (("k",), ("k", "j"))),
        ("y ~ x + ( 1 | k / j )", "y ~ x", (("k",), ("k", "j"))),
        ("log_y ~ np.log(x) + (1|k)", "log_y ~ np.log(x)", (("k",),)),
    ],
)
def test_split(formula, fixed, groupings):
    parsed = parse_formula(formula)
    assert parsed.fixed == fixed
    assert parsed.groupings == groupings
    assert parsed.outcome == fixed.split("~")[0].strip()
    assert parsed.formula == formula


def test_terms_as_written():
    parsed = parse_formula("y ~ x + (1|k) + (1 | k:j)")
    assert [t.text for t in parsed.terms] == ["(1|k)", "(1 | k:j)"]
    assert [t.effects for t in parsed.terms] == ["1", "1"]
    assert parsed.columns == ("k", "j")


def test_deep_chain_columns_in_order():
    parsed = parse_formula("y ~ x + (1|region/school/class/pupil)")
    assert parsed.columns == ("region", "school", "class", "pupil")
    assert parsed.groupings[-1] == ("region", "school", "class", "pupil")
    assert len(parsed.groupings) == 4


@pytest.mark.parametrize(
    "formula, fixed",
    [
        ("y ~ I(a | b) + (1|k)", "y ~ I(a | b)"),
        ("y ~ (1|k) + I(a|b)", "y ~ I(a|b)"),
        ("y ~ I((a|b)) + (1|k)", "y ~ I((a|b))"),
        ("y ~ C(t, Treatment(reference='a|b')) + (1|k)", "y ~ C(t, Treatment(reference='a|b'))"),
        ("y ~ C(t, Treatment(reference='(')) + (1|k)", "y ~ C(t, Treatment(reference='('))"),
    ],
)
def test_bar_inside_a_call_is_fixed(formula, fixed):
    parsed = parse_formula(formula)
    assert parsed.fixed == fixed
    assert parsed.groupings == (("k",),)


def test_bar_inside_a_call_is_not_a_random_term():
    with pytest.raises(FormulaError, match=r"no random-effects term"):
        parse_formula("y ~ I(a | b)")


def test_bar_inside_a_call_fits_as_a_fixed_effect():
    data = sms.simulate_nested((10, 3, 2), sd=(1, 1, 1), seed=11)
    data["a"] = np.arange(len(data)) % 4
    data["b"] = np.arange(len(data)) % 3
    res = MultilevelSEM.from_formula("y ~ x + I(a | b) + (1|k/j)", data).fit()
    ols = smf.ols("y ~ x + I(a | b)", data).fit()
    assert list(res.params.index[:3]) == list(ols.params.index) == ["Intercept", "x", "I(a | b)"]
    assert np.all(np.isfinite(res.params))


def _mixed_fixed_data(seed=5):
    rng = np.random.default_rng(seed)
    data = sms.simulate_nested((15, 3, 3), sd=(1, 1, 1), seed=seed)
    n = len(data)
    data["t"] = np.array(["lo", "mid", "hi"])[rng.integers(0, 3, n)]
    data["z"] = rng.normal(size=n)
    data["w"] = rng.uniform(0.5, 3.0, n)
    data["y"] += 0.5 * (data["t"] == "hi") + 0.8 * data["x"] * data["z"] - 1.2 * np.log(data["w"])
    return data


@pytest.mark.parametrize(
    "fixed_rhs",
    ["C(t) + x:z + np.log(w)", "x * z", "C(t, Treatment('mid')) + x", "t + np.log(w) - 1", "x + I(x ** 2)"],
)
def test_fixed_part_names_match_ols(fixed_rhs):
    data = _mixed_fixed_data()
    res = MultilevelSEM.from_formula(f"y ~ {fixed_rhs} + (1|k/j)", data).fit()
    ols = smf.ols(f"y ~ {fixed_rhs}", data).fit()
    k_fe = len(ols.params)
    assert list(res.params.index[:k_fe]) == list(ols.params.index)
    assert list(res.params.index[k_fe:]) == ["var(k)", "var(k:j)", "var(Residual)"]
    assert res.converged
    assert np.all(np.isfinite(res.params)) and np.all(np.isfinite(res.bse))


def test_fixed_part_estimates_close_to_truth():
    data = _mixed_fixed_data(seed=8)
    res = MultilevelSEM.from_formula("y ~ C(t) + x:z + np.log(w) + (1|k/j)", data).fit()
    assert res.params["x:z"] == pytest.approx(0.8, abs=4 * res.bse["x:z"])
    assert res.params["np.log(w)"] == pytest.approx(-1.2, abs=4 * res.bse["np.log(w)"])


def test_random_term_first_fits_same_as_last():
    data = sms.simulate_article_data(n_clusters=30, seed=2)
    first = MultilevelSEM.from_formula("y ~ (1|k/j) + x", data).fit()
    last = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    np.testing.assert_allclose(first.params, last.params, rtol=0, atol=1e-12)
    assert list(first.params.index) == list(last.params.index)


def test_intercept_only_fixed_part():
    data = sms.simulate_article_data(n_clusters=30, seed=2)
    res = MultilevelSEM.from_formula("y ~ (1|k/j)", data).fit()
    assert list(res.params.index) == ["Intercept", "var(k)", "var(k:j)", "var(Residual)"]


def test_minus_one_after_random_term_removes_intercept():
    data = sms.simulate_article_data(n_clusters=30, seed=2)
    after = MultilevelSEM.from_formula("y ~ x + (1|k/j) - 1", data)
    before = MultilevelSEM.from_formula("y ~ x - 1 + (1|k/j)", data)
    assert after.param_names == before.param_names == ["x", "var(k)", "var(k:j)", "var(Residual)"]


def test_outcome_transform():
    data = sms.simulate_article_data(n_clusters=30, seed=2)
    data["y"] = np.exp(data["y"] / 4)
    res = MultilevelSEM.from_formula("np.log(y) ~ x + (1|k/j)", data).fit()
    assert res.model.model_data.endog_name == "np.log(y)"
    np.testing.assert_allclose(res.model.model_data.endog, np.log(data["y"]))


def test_parse_formula_rejects_non_string():
    with pytest.raises(TypeError, match=r"formula must be a string, got int"):
        parse_formula(3)


def test_formula_error_is_value_error():
    assert issubclass(FormulaError, ValueError)


def test_three_level_nesting_end_to_end():
    data = sms.simulate_nested((6, 3, 2, 2), sd=(1, 1, 1, 1), seed=4)
    res = MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data).fit()
    same = MultilevelSEM.from_formula("y ~ x + (1|l1) + (1|l1:l2) + (1|l1:l2:l3)", data).fit()
    assert list(res.params.index[2:]) == ["var(l1)", "var(l1:l2)", "var(l1:l2:l3)", "var(Residual)"]
    np.testing.assert_allclose(res.params, same.params, rtol=0, atol=1e-10)


def test_random_term_after_a_number_needs_a_plus():
    with pytest.raises(FormulaError, match=r"expected '\+' before the random term '\(1\|k\)'"):
        parse_formula("y ~ x + 1 (1|k)")


@pytest.mark.parametrize(
    "formula, effects",
    [
        ("y ~ x + (1 + x|k/j)", [(True, ("x",), True, (("k",), ("k", "j")))]),
        ("y ~ x + (x|k)", [(True, ("x",), True, (("k",),))]),  # lme4 reads (x|k) as (1 + x|k)
        ("y ~ x + (x + 1|k) + (1|k:j)", [(True, ("x",), True, (("k",),)), (True, (), True, (("k", "j"),))]),
        ("y ~ x + (1|k/j)", [(True, (), True, (("k",), ("k", "j")))]),
        ("y ~ x + (1 + x + w||k)", [(True, ("x", "w"), False, (("k",),))]),
        ("y ~ x + (0 + C(type)|k)", [(False, ("C(type)",), True, (("k",),))]),
        ("y ~ x + (x - 1|k)", [(False, ("x",), True, (("k",),))]),
        ("y ~ x + (-1 + np.log(w)|k)", [(False, ("np.log(w)",), True, (("k",),))]),
    ],
)
def test_random_effects_of_every_term(formula, effects):
    parsed = parse_formula(formula)
    assert [(t.intercept, t.columns, t.correlated, t.grouping) for t in parsed.terms] == effects
    assert parsed.fixed == "y ~ x"
    assert parsed.has_slopes == any(columns or not intercept for intercept, columns, _, _ in effects)
