"""Empirical Bayes predictions of the random effects, predictions and residuals."""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from dense_reference import dense_random_effects
from sm_multisem.output.compare import TIGHT_FIT, mixedlm_equivalent
from statsmodels.api import add_constant as sm_add_constant


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
    "AR(1) residuals by label": lambda m: m.relax_residuals(structure="ar1", t="i", by="type"),
}


@pytest.mark.parametrize("relax", RELAXED.values(), ids=RELAXED.keys())
def test_conditional_variances_equal_the_dense_posterior(relax):
    """Var(b | y) = G - G Z' Sigma^-1 Z G, with unit-specific variances and correlated residuals too."""
    data = pd.read_csv(REFERENCE / "relax_data.csv")
    model = relax(sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data))
    # away from the estimates, with variances of very different sizes, so no term is negligible
    params = model.start_params
    params[model.plan.variance_index] *= np.linspace(0.05, 3.0, len(model.plan.variance_index))
    params[model.plan.variance_index[model.plan.ar1_entries]] = 0.6
    _, variances = model.plan.split(params)
    _, expected = dense_random_effects(model, params)
    for ours, theirs in zip(model.likelihood.random_effects_variance(variances), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_conditional_variances_of_a_four_level_model_equal_the_dense_posterior():
    data = sms.simulate_nested((12, 3, 3, 2), sd=(1.0, 0.7, 0.5, 1.0), seed=11, drop_fraction=0.3)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data)
    params = model.plan.join([0.3, 1.9], [0.9, 0.4, 0.25, 1.1])
    beta, variances = model.plan.split(params)
    means, expected = dense_random_effects(model, params)
    for ours, theirs in zip(model.likelihood.random_effects_variance(variances), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    for ours, theirs in zip(model.likelihood.random_effects(beta, variances), means):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


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


def test_predictions_of_the_fitted_rows_given_as_new_data(res, unbalanced_data):
    """Matching ids of new rows gives what the layout gives for the rows used, in any row order."""
    shuffled = unbalanced_data.sample(frac=1.0, random_state=3)
    shuffled.index = np.repeat(np.arange(len(shuffled) // 2 + 1), 2)[: len(shuffled)]  # repeated labels
    position = unbalanced_data.index.get_indexer(unbalanced_data.sample(frac=1.0, random_state=3).index)
    for level in (None, "k", "k:j"):
        predicted = res.predict(shuffled, level=level)
        assert isinstance(predicted, pd.Series) and predicted.index.equals(shuffled.index)
        np.testing.assert_allclose(predicted.to_numpy(), np.asarray(res.predict(level=level))[position], rtol=1e-13)


def test_new_units_are_predicted_at_their_expected_effect_zero(res, unbalanced_data):
    """lme4's allow.new.levels = TRUE: an unseen unit, or a missing id, adds no effect."""
    beta = res.params[["Intercept", "x"]].to_numpy()
    seen_k = unbalanced_data["k"].iloc[0]
    seen_j = unbalanced_data.loc[unbalanced_data["k"] == seen_k, "j"].iloc[0]
    new = pd.DataFrame({
        "x": [0.5, 0.5, 0.5, 0.5, 0.5, np.nan],
        "k": [seen_k, seen_k, 10_000, np.nan, seen_k, seen_k],
        "j": [seen_j, 99, seen_j, seen_j, np.nan, seen_j],
    }, index=list("abcdef"))
    u = res.random_effects["k"].loc[seen_k]
    v = res.random_effects["k:j"].loc[(seen_k, seen_j)]
    marginal = beta[0] + 0.5 * beta[1]
    np.testing.assert_allclose(res.predict(new).to_numpy(), [marginal] * 5 + [np.nan])
    np.testing.assert_allclose(res.predict(new, level="k").to_numpy(),
                               [marginal + u, marginal + u, marginal, marginal, marginal + u, np.nan])
    np.testing.assert_allclose(res.predict(new, level="k:j").to_numpy(),
                               [marginal + u + v, marginal + u, marginal, marginal, marginal + u, np.nan])
    # marginal predictions need no ids
    np.testing.assert_allclose(res.predict(new[["x"]]).to_numpy(), res.predict(new).to_numpy())


def test_new_rows_go_through_the_fitted_design():
    """Categorical levels and the state of center(x) are the fit's, not the new rows'."""
    data = pd.read_csv(REFERENCE / "relax_data.csv")
    res = sms.MultilevelSEM.from_formula("y ~ center(x) + C(type) + (1|k/j)", data).fit()
    new = pd.DataFrame({"x": [0.0, 1.0, 2.0], "type": ["prv", "pub", "chr"]})
    params = res.params
    expected = (params["Intercept"] + params["center(x)"] * (new["x"] - data["x"].mean())
                + new["type"].map({"chr": 0.0, "prv": params["C(type)[T.prv]"], "pub": params["C(type)[T.pub]"]}))
    np.testing.assert_allclose(res.predict(new).to_numpy(), expected.to_numpy(), rtol=1e-13)
    with pytest.raises(ValueError, match=r"'x' in 'y ~ 1 \+ C\(type\) \+ center\(x\)' is neither a column of "
                                         r"exog nor a defined name; did you mean 'X'\?"):
        res.predict(new.rename(columns={"x": "X"}))
    with pytest.raises(ValueError, match="cannot build the fixed part .* from exog: .*'private'"):
        res.predict(new.assign(type="private"))
    np.testing.assert_allclose(res.predict(new.to_dict("list")).to_numpy(), expected.to_numpy(), rtol=1e-13)
    # patsy cannot pickle the design: it is rebuilt from the model's data when unpickled
    again = pickle.loads(pickle.dumps(res))
    np.testing.assert_allclose(again.predict(new).to_numpy(), expected.to_numpy(), rtol=1e-13)


def _pickled_fit_of_a_formula_with_a_local_function(data: pd.DataFrame) -> tuple[bytes, pd.Series]:
    def twice(v):
        return 2.0 * v

    res = sms.MultilevelSEM.from_formula("y ~ twice(x) + (1|k/j)", data).fit()
    return pickle.dumps(res), res.predict(data.head(5))


def test_names_of_the_formula_are_found_where_the_model_was_built(article_data):
    """The design keeps the caller's namespace; unpickled elsewhere, it cannot be rebuilt and says so."""
    blob, predicted = _pickled_fit_of_a_formula_with_a_local_function(article_data)
    beta = pickle.loads(blob).params.to_numpy()[:2]
    np.testing.assert_allclose(predicted.to_numpy(), beta[0] + beta[1] * 2.0 * article_data["x"].head(5), rtol=1e-13)
    with pytest.raises(ValueError, match="could not be rebuilt when the model was unpickled"):
        pickle.loads(blob).predict(article_data.head(5))


def test_new_rows_of_a_model_with_slopes_by_label():
    data = pd.read_csv(REFERENCE / "relax_data.csv")
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_slope("x", by="type").fit()
    new = pd.DataFrame({"x": [1.0, 2.0, 3.0], "type": ["pub", "chr", "pub"]})
    params = res.params
    expected = params["Intercept"] + new["x"] * new["type"].map(lambda t: params[f"x[{t}]"])
    np.testing.assert_allclose(res.predict(new).to_numpy(), expected.to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(res.predict(data).to_numpy(), res.predict(), rtol=1e-13)
    with pytest.raises(ValueError, match="labelling column 'type' is not a column of exog"):
        res.predict(new[["x"]])
    with pytest.raises(ValueError, match="'type' is missing in 1 rows of exog; the slope of x depends on it"):
        res.predict(new.assign(type=["pub", None, "chr"]))
    with pytest.raises(ValueError, match=r"type = 'state' is not a label of the fitted data: the slope of x was "
                                         r"estimated for \['chr', 'prv', 'pub'\] only"):
        res.predict(new.assign(type="state"))


def test_new_rows_of_a_model_built_from_arrays(res, unbalanced_data):
    model = sms.MultilevelSEM(unbalanced_data["y"], sm_add_constant(unbalanced_data["x"]),
                              groups=unbalanced_data[["k", "j"]])
    arrays = model.fit()
    new = unbalanced_data.assign(const=1.0)
    np.testing.assert_allclose(arrays.predict(new, level="k:j").to_numpy(), res.predict(level="k:j"), rtol=1e-6)
    with pytest.raises(ValueError, match="design column 'const' is not a column of exog"):
        arrays.predict(unbalanced_data)


def test_residuals_at_every_level(res, unbalanced_data):
    y = unbalanced_data["y"].to_numpy()
    for level in (None, "k", "k:j"):
        resid = res.resid_at(level)
        assert isinstance(resid, pd.Series) and resid.index.equals(unbalanced_data.index)
        np.testing.assert_allclose(resid.to_numpy(), y - res.predict(level=level))
    np.testing.assert_allclose(res.resid_at().to_numpy(), y - res.predict(unbalanced_data).to_numpy())
    np.testing.assert_allclose(res.resid_at("k:j").to_numpy(), res.resid.to_numpy())
    with pytest.raises(ValueError, match="is not one of"):
        res.resid_at("school")


def test_prediction_errors(res, unbalanced_data):
    with pytest.raises(ValueError, match="is not one of"):
        res.predict(level="school")
    with pytest.raises(ValueError, match="exog needs 2 columns"):
        res.predict(exog=np.ones((3, 3)))
    with pytest.raises(ValueError, match="need their ids: give exog as a DataFrame"):
        res.predict(exog=np.ones((3, 2)), level="k")
    with pytest.raises(ValueError, match="id column 'j' is not a column of exog"):
        res.predict(unbalanced_data[["x", "k"]], level="k:j")
    with pytest.raises(ValueError, match="id column 'k' is not a column of exog; did you mean 'K'"):
        res.predict(unbalanced_data[["x", "k"]].rename(columns={"k": "K"}), level="k")


@pytest.mark.parametrize("reml", [False, True])
def test_new_rows_predicted_as_lme4_with_new_levels_allowed(reml):
    """lme4's predict(fit, newdata, re.form, allow.new.levels = TRUE) on Pastes (tests/reference/pastes_lme4.R)."""
    pastes = pd.read_csv(REFERENCE / "pastes.csv")
    ref = pd.read_csv(REFERENCE / "pastes_lme4_predict.csv")
    ref = ref[ref["reml"] == reml].reset_index(drop=True)
    res = sms.MultilevelSEM.from_formula("strength ~ 1 + (1|batch/cask)", pastes).fit(reml=reml)
    new = ref[["batch", "cask"]]  # a seen cask, an unseen cask of a seen batch, an unseen batch
    for level, column in [(None, "marginal"), ("batch", "batch_level"), ("batch:cask", "cask_level")]:
        np.testing.assert_allclose(res.predict(new, level=level).to_numpy(), ref[column].to_numpy(), rtol=1e-8)
