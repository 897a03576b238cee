"""Constraints relaxed by a label: heteroskedastic effects, varIdent residuals, slopes by label.

Reference fits: tests/reference/relax_nlme.R (nlme 3.1.162, cross-checked with lme4 1.1.31)
on tests/reference/relax_data.csv (made by make_relax_data.py).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from dense_reference import dense_loglike
from sem_reference import wide_sem_loglike

REFERENCE = Path(__file__).parent / "reference"
NLME_NAMES = {"(Intercept)": "Intercept", "x:typechr": "x[chr]", "x:typeprv": "x[prv]", "x:typepub": "x[pub]"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "relax_data.csv")


@pytest.fixture(scope="module")
def standard(data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)


def relaxed_models(model):
    return {
        "standard": model,
        "var_by_type": model.relax_variance("k:j", by="type"),
        "resid_by_role": model.relax_residuals(by="role"),
        "slope_by_type": model.relax_slope("x", by="type"),
        "intercept_by_type": model.relax_intercept(by="type"),
        "all_three": model.relax_slope("x", by="type").relax_variance("k:j", by="type").relax_residuals(by="role"),
    }


@pytest.mark.parametrize("name", ["standard", "var_by_type", "resid_by_role", "slope_by_type", "all_three"])
def test_matches_nlme(standard, name):
    ref = pd.read_csv(REFERENCE / "relax_nlme.csv")
    ref = ref[ref["model"] == name].set_index("term")["estimate"].rename(index=NLME_NAMES)
    res = relaxed_models(standard)[name].fit()
    assert res.nobs_long == ref["n_obs"]
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-7)
    expected = ref.drop(["logLik", "n_obs"])
    assert sorted(res.params.index) == sorted(expected.index)
    np.testing.assert_allclose(res.params[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-5)


@pytest.mark.parametrize("reml", [False, True])
def test_relaxed_likelihood_and_score(standard, reml):
    model = relaxed_models(standard)["all_three"]
    rng = np.random.default_rng(5)
    k = len(model.param_names)
    n_beta = len(model.plan.beta_index)
    for _ in range(3):
        params = np.r_[rng.normal(size=n_beta), rng.uniform(0.2, 2.0, size=k - n_beta)]
        if not reml:
            assert model.loglike(params) == pytest.approx(dense_loglike(model, params), rel=1e-11)
        numeric = np.array([(model.loglike(params + 1e-6 * e, reml=reml) - model.loglike(params - 1e-6 * e, reml=reml))
                            / 2e-6 for e in np.eye(k)])
        np.testing.assert_allclose(model.score(params, reml=reml), numeric, rtol=1e-6,
                                   atol=1e-6 * np.abs(numeric).max())


def test_intercept_by_label_is_the_label_as_fixed_effect(standard, data):
    """relax_intercept(by="type") is y ~ 0 + C(type) + x, fitted independently from the formula."""
    res = standard.relax_intercept(by="type").fit()
    formula = sms.MultilevelSEM.from_formula("y ~ 0 + C(type) + x + (1|k/j)", data).fit()
    assert res.llf == pytest.approx(formula.llf, rel=1e-10)
    renamed = formula.params.rename(index=lambda n: n.replace("C(type)[", "Intercept["))
    np.testing.assert_allclose(res.params[renamed.index], renamed, rtol=1e-6)
    assert set(standard.relax_intercept(by="type").parameter_table["label"]) >= {"c_chr", "c_prv", "c_pub"}


def test_relaxation_at_the_constrained_values_is_the_constrained_model(standard):
    """Setting every label's parameter to the shared estimate reproduces the constrained llf."""
    res = standard.fit()
    relaxed = relaxed_models(standard)["all_three"]
    shared = {"Intercept": "Intercept", "x": "x", "var(k)": "var(k)", "var(k:j)": "var(k:j)",
              "var(Residual)": "var(Residual)"}
    params = [res.params[shared[name.split("[")[0]]] for name in relaxed.param_names]
    assert relaxed.loglike(np.array(params)) == pytest.approx(res.llf, abs=1e-9)


def test_relaxed_fit_is_at_least_as_good(standard):
    llf = standard.fit().llf
    for name, model in relaxed_models(standard).items():
        assert model.fit().llf >= llf - 1e-9, name


def test_slopes_by_label_match_mixedlm(standard):
    res = standard.relax_slope("x", by="type").fit()
    table = res.compare_mixedlm()
    assert np.all(np.abs(table["difference"]) < 1e-5 * np.maximum(1, np.abs(table["MixedLM"])))


def test_summary_and_tests_use_labelled_names(standard):
    res = standard.relax_variance("k:j", by="type").fit()
    text = res.summary().as_text()
    for name in ["var(k:j)[chr]", "var(k:j)[prv]", "var(k:j)[pub]"]:
        assert name in text
    wald = res.wald_test("var(k:j)[pub] = var(k:j)[prv]", scalar=True)
    cov = res.cov_params()
    diff = res.params["var(k:j)[pub]"] - res.params["var(k:j)[prv]"]
    var = (cov.loc["var(k:j)[pub]", "var(k:j)[pub]"] + cov.loc["var(k:j)[prv]", "var(k:j)[prv]"]
           - 2 * cov.loc["var(k:j)[pub]", "var(k:j)[prv]"])
    assert wald.statistic == pytest.approx(diff**2 / var)
    assert res.lr_test_linear().df == 4


def test_relaxed_rules_in_the_parameter_table(standard):
    rules = standard.relax_variance("k:j", by="type").relax_residuals(by="role").table.rules
    variances = rules[rules["kind"] == "variance"].set_index("name")
    assert variances.loc["var(k:j)[pub]", "label"] == "S_j_pub"
    assert variances.loc["var(k:j)[pub]", "by"] == "type" and variances.loc["var(k:j)[pub]", "where"] == "pub"
    assert variances.loc["var(k)", "label"] == "S_k"
    residual = rules[rules["kind"] == "residual variance"]
    assert list(residual["label"]) == ["S_e_a", "S_e_b", "S_e_c"]


def test_relaxing_does_not_change_the_model(standard):
    before = list(standard.param_names)
    standard.relax_variance("k:j", by="type")
    assert standard.param_names == before and standard.relaxations == ()


def test_labels_given_as_an_array(standard, data):
    by_column = standard.relax_residuals(by="role").fit()
    by_array = standard.relax_residuals(by=data["role"].to_numpy()).fit()
    np.testing.assert_allclose(by_array.params.to_numpy(), by_column.params.to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("relax, message", [
    (lambda m: m.relax_variance("k:j", by="role"), r"'role' is not constant within the units of k:j"),
    (lambda m: m.relax_variance("k:i", by="type"), r"level 'k:i' is not in the model"),
    (lambda m: m.relax_variance("k:j", by="kind"), r"labelling column 'kind' is not in the data"),
    (lambda m: m.relax_slope("z", by="type"), r"'z' is not a fixed-effect column"),
    (lambda m: m.relax_slope("Intercept", by="type"), r"through relax_intercept\(by=...\)"),
    (lambda m: m.relax_residuals(by="role").relax_residuals(by="type"), r"already relaxed"),
    (lambda m: m.relax_residuals(by=np.ones(3)), r"one label per input row"),
])
def test_refusals(standard, relax, message):
    with pytest.raises(ValueError, match=message):
        relax(standard)


def test_label_on_a_single_unit_is_refused(data):
    data = data.copy()
    data["rare"] = np.where((data["k"] == 1) & (data["j"] == 1), "alone", "common")
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    with pytest.raises(ValueError, match=r"label 'alone' has only 1 of the units of k:j; its parameter would not"):
        model.relax_variance("k:j", by="rare")


def test_missing_labels_are_refused(data):
    data = data.copy()
    data.loc[data.index[:3], "role"] = None
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    with pytest.raises(ValueError, match=r"'role' is missing in 3 of the rows used"):
        model.relax_residuals(by="role")


def test_mixedlm_comparison_refused_for_relaxed_variances(standard):
    with pytest.raises(ValueError, match="MixedLM has no equivalent of the variance of k:j"):
        standard.relax_variance("k:j", by="type").fit().compare_mixedlm()


@pytest.mark.parametrize("name", ["standard", "var_by_type", "resid_by_role", "slope_by_type", "intercept_by_type",
                                  "all_three"])
def test_exported_wide_model_reproduces_the_likelihood(standard, name):
    """The per-position table and the wide data, read as an SEM program would, give our llf."""
    model = relaxed_models(standard)[name]
    rng = np.random.default_rng(3)
    n_beta = len(model.plan.beta_index)
    params = np.r_[rng.normal(size=n_beta), rng.uniform(0.3, 2.0, size=len(model.param_names) - n_beta)]
    values = dict(zip(model.plan.labels, params))
    assert wide_sem_loglike(model.parameter_table, model.wide_data(), values) == pytest.approx(
        model.loglike(params), rel=1e-12
    )


def test_slots_are_keyed_by_the_label(standard):
    model = standard.relax_variance("k:j", by="type")
    table = model.parameter_table
    variances = table[(table["op"] == "~~") & (table["lhs"] == table["rhs"])].set_index("lhs")["label"]
    assert variances["J_pub1"] == variances["J_pub2"] == "S_j_pub" and variances["J_chr1"] == "S_j_chr"
    assert "(y_pub1_1 <- x_pub1_1@bx _cons@c K@1 J_pub1@1)" in model.to_stata()
    assert "J_prv2@S_j_prv" in model.to_stata()
    assert "y_pub1_1" in model.wide_data().columns


def test_top_level_label_gives_a_multigroup_wide_form(data):
    data = data.assign(region=np.where(data["k"] % 2 == 0, "north", "south"))
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_variance("k", by="region")
    res = model.fit()
    assert {"var(k)[north]", "var(k)[south]"} <= set(res.params.index)
    table = model.parameter_table
    assert list(table.columns[:2]) == ["group", "lhs"] and set(table["group"]) == {"north", "south"}
    variances = table[(table["lhs"] == "K") & (table["op"] == "~~") & (table["rhs"] == "K")]
    assert dict(zip(variances["group"], variances["label"])) == {"north": "S_k_north", "south": "S_k_south"}
    assert model.wide_data()["region"].tolist() == [("north" if k % 2 == 0 else "south")
                                                    for k in sorted(data["k"].unique())]
    for refused in (model.to_stata, model.as_wide, model.path_diagram, lambda: res.summary(style="sem")):
        with pytest.raises(NotImplementedError, match="multi-group SEM .* to_lavaan"):
            refused()


def test_multigroup_lavaan_syntax_is_what_lavaan_fitted():
    """``to_lavaan()`` of a multi-group wide form, fitted by lavaan (tests/reference/multigroup_lavaan.R)."""
    reference = Path(__file__).parent / "reference"
    data = pd.read_csv(reference / "multigroup_long.csv")
    model = (sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
             .relax_variance("k", by="region").relax_slope("x", by="region"))
    assert model.to_lavaan() + "\n" == (reference / "multigroup.lav").read_text()
    assert "K ~~ c(S_k_north, S_k_south)*K" in model.to_lavaan()
    session = (reference / "multigroup_lavaan_session.txt").read_text().splitlines()
    values = {line.split()[1]: float(line.split()[2]) for line in session if line.startswith("est ")}
    res = model.fit()
    assert res.llf == pytest.approx(float(session[2].split()[1]), abs=1e-7)
    labels = dict(zip(model.plan.labels, res.params))
    for label, value in values.items():
        assert labels[label] == pytest.approx(value, rel=1e-5), label


def test_balanced_data_keyed_by_a_label_need_no_mlmv():
    """Every county has one school of each type and two students in each: no position is missing."""
    data = sms.simulate_article_data(n_clusters=20, seed=3)
    data["type"] = data["j"].map({1: "public", 2: "private"})
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_variance("k:j", by="type")
    assert "method(ml) " in model.to_stata()
    missing_one = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.drop(index=[0]))
    assert "method(mlmv)" in missing_one.relax_variance("k:j", by="type").to_stata()


def test_slots_are_keyed_after_a_relaxation_without_a_wide_form(data):
    """A relaxation that has no single wide form does not stop the others from keying their slots."""
    data = data.assign(region=np.where(data["k"] % 2 == 0, "north", "south"))
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    keyed = model.relax_variance("k:j", by="type").layout.slot_keys
    after = model.relax_variance("k", by="region").relax_variance("k:j", by="type").layout.slot_keys
    assert keyed[0] is not None
    np.testing.assert_array_equal(after[0], keyed[0])
