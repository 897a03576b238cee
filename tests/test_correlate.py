"""Correlated effects of sibling units and correlated residuals by a label, against lavaan 0.6.14.

Fixtures: ``tests/reference/correlate_lavaan.R`` fitted the wide models that
``tests/reference/make_correlate_inputs.py`` wrote (``to_lavaan()`` of each relaxed model and its
wide data), and ran ``lavTestScore`` for freeing their covariances from 0.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sm_multisem import MultilevelSEM
from sm_multisem.correlate import Covariances, relax_covariances
from sm_multisem.fit.covariance import numerical_jacobian

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from make_correlate_inputs import effects_data, models, residuals_data

NAMES = ["effects_free", "effects_equal", "effects_hetero", "residuals_free", "residuals_equal"]


@pytest.fixture(scope="module")
def long():
    return {"effects": pd.read_csv(REFERENCE / "correlate_effects_long.csv"),
            "residuals": pd.read_csv(REFERENCE / "correlate_residuals_long.csv")}


@pytest.fixture(scope="module")
def relaxed(long):
    return models(long["effects"], long["residuals"])


@pytest.fixture(scope="module")
def fits(relaxed):
    return {name: model.fit() for name, model in relaxed.items()}


def lavaan(model: str) -> pd.DataFrame:
    table = pd.read_csv(REFERENCE / "correlate_lavaan.csv", keep_default_na=False)
    return table[table["model"] == model]


def by_label(table: pd.DataFrame, what: str) -> pd.Series:
    """lavaan's value of every labelled parameter (the first row of each label)."""
    rows = table[(table["quantity"] == what) & (table["label"] != "")]
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["label"]).groupby(level=0).first()


def value(table: pd.DataFrame, what: str) -> float:
    return float(table.loc[table["quantity"] == what, "value"].iloc[0])


def test_inputs_are_the_committed_ones(relaxed):
    for name, model in relaxed.items():
        assert model.to_lavaan() + "\n" == (REFERENCE / f"correlate_{name}.lav").read_text()
        wide = pd.read_csv(REFERENCE / f"correlate_{name}_wide.csv")
        np.testing.assert_allclose(wide.to_numpy(float), model.wide.to_numpy(float), rtol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_estimates_llf_and_observed_information_ses_match_lavaan(fits, name):
    res, reference = fits[name], lavaan(name)
    assert res.converged
    assert res.llf == pytest.approx(value(reference, "logl"), abs=1e-5)
    assert len(res.params) == value(reference, "npar")
    labels = res.model.labels
    np.testing.assert_allclose(np.asarray(res.params), by_label(reference, "est")[labels], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.bse), by_label(reference, "se_observed")[labels], rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_score_test_of_the_covariances_matches_lavaan(relaxed, name):
    reference = lavaan(f"{name}_null")
    constrained = relaxed[name].source  # the nested model, with its slots keyed by the label
    res = constrained.fit()
    assert res.llf == pytest.approx(value(reference, "logl"), abs=1e-5)
    test = res.score_test(relaxed[name])
    assert test.df == value(reference, "score_df")
    assert test.statistic == pytest.approx(value(reference, "score_X2"), rel=1e-5)
    rows = reference.set_index("name")
    names = dict(zip(relaxed[name].labels, relaxed[name].param_names))
    for label, chi2 in rows.loc[rows["quantity"] == "score_X2_uni", "value"].astype(float).items():
        assert test.table.loc[names[label], "chi2"] == pytest.approx(chi2, rel=1e-5)
    for label, epc in rows.loc[rows["quantity"] == "score_epc", "value"].astype(float).items():
        assert test.table.loc[names[label], "epc"] == pytest.approx(epc, rel=1e-4)


ON_THE_RECURSION = {
    "effects_free": lambda m: m.relax_covariance("k:j", by="region", among=["north"]),
    "effects_equal": lambda m: m.relax_covariance("k:j", by="region", among=["north"], equal=True),
    "effects_hetero": lambda m: m.relax_variance("k:j", by="region").relax_covariance("k:j", by="region"),
}


@pytest.fixture(scope="module")
def recursion(long):
    nested = MultilevelSEM.from_formula("y ~ x + (1|k/j)", long["effects"])
    return {name: relax(nested) for name, relax in ON_THE_RECURSION.items()}


@pytest.mark.parametrize("name", list(ON_THE_RECURSION))
def test_the_recursion_fits_what_lavaan_fits(recursion, fits, name):
    """relax_covariance evaluates the siblings' block in the recursion: lavaan's estimates, log-likelihood
    and observed-information standard errors, and the dense wide engine's to its optimizer's precision."""
    model, reference, wide = recursion[name], lavaan(name), fits[name]
    res = model.fit()
    assert res.converged and type(model) is MultilevelSEM
    assert res.llf == pytest.approx(value(reference, "logl"), abs=1e-6)
    assert sorted(res.params.index) == sorted(wide.params.index)
    np.testing.assert_allclose(res.params, wide.params[res.params.index], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.bse, wide.bse[res.params.index], rtol=1e-4)
    assert model.to_lavaan() + "\n" == (REFERENCE / f"correlate_{name}.lav").read_text()


@pytest.mark.parametrize("name", list(ON_THE_RECURSION))
def test_the_recursion_loglike_and_score_equal_the_wide_engine(recursion, relaxed, fits, name):
    model, wide = recursion[name], relaxed[name]
    rng = np.random.default_rng(11)
    at = fits[name].params * (1 + 0.05 * rng.uniform(-1, 1, len(fits[name].params)))
    params = at[model.param_names].to_numpy()
    assert model.loglike(params) == pytest.approx(wide.loglike(at.to_numpy()), rel=1e-12)
    np.testing.assert_allclose(model.loglikeobs(params), wide.loglikeobs(at.to_numpy()), rtol=1e-10)
    by_name = pd.Series(wide.score(at.to_numpy()), index=wide.param_names)
    np.testing.assert_allclose(model.score(params), by_name[model.param_names], rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", list(ON_THE_RECURSION))
def test_score_test_of_the_recursion_model_matches_lavaan(long, recursion, name):
    reference = lavaan(f"{name}_null")
    nested = MultilevelSEM.from_formula("y ~ x + (1|k/j)", long["effects"])
    constrained = (nested.relax_variance("k:j", by="region") if name == "effects_hetero" else nested).fit()
    test = constrained.score_test(recursion[name])
    assert test.df == value(reference, "score_df")
    assert test.statistic == pytest.approx(value(reference, "score_X2"), rel=1e-5)


@pytest.mark.parametrize("level", ["k:j", "Residual"])
def test_without_the_covariance_in_the_data(level):
    """On data simulated without it the relaxed fit is at least the constrained one, and with the
    covariances fixed at 0 the relaxed model is the mixed model again."""
    if level == "Residual":
        model = MultilevelSEM.from_formula("y ~ x + (1|k)", residuals_data(60, seed=5, cov=0.0))
        relaxed = model.relax_residual_covariance(by="type", among=["pub"])
    else:
        model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", effects_data(100, seed=7, cov=0.0))
        relaxed = model.relax_covariance("k:j", by="region").as_wide()
    constrained, free = model.fit(), relaxed.fit()
    assert free.converged and free.llf >= constrained.llf - 1e-9
    table = relaxed.parameter_table
    covariances = table["label"].str.startswith("C_")
    table.loc[covariances, "free"], table.loc[covariances, "value"] = False, 0.0
    assert table[covariances]["lhs"].ne(table[covariances]["rhs"]).all()
    fixed = relaxed.with_table(table).fit()
    assert fixed.llf == pytest.approx(constrained.llf, abs=1e-8)


@pytest.mark.parametrize("name", ["effects_hetero", "residuals_free", "residuals_equal"])
def test_scores_are_the_gradient(relaxed, fits, name):
    model = relaxed[name]
    rng = np.random.default_rng(3)
    params = np.asarray(fits[name].params) * (1 + 0.1 * rng.uniform(-1, 1, len(fits[name].params)))
    numeric = numerical_jacobian(lambda p: np.atleast_1d(model.loglike(p)), params, np.ones_like(params))[0]
    np.testing.assert_allclose(model.score(params), numeric, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(model.score_obs(params).sum(0), model.score(params), rtol=1e-10, atol=1e-8)


def test_pairs_are_siblings_of_one_parent_keyed_by_the_label(long):
    """Residuals of a three-level model covary within a lowest unit only, one parameter per pair of
    keyed slots shared by every unit; effects of a four-level model within their parent only."""
    data = long["residuals"].assign(j=lambda d: d["j"] % 2)  # two lowest units per county
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residual_covariance(by="type", among=["pub"])
    table = model.parameter_table
    freed = table[table["label"].str.startswith("C_e_")]
    units = freed["lhs"].str.extract(r"y(\d)_")[0], freed["rhs"].str.extract(r"y(\d)_")[0]
    assert (units[0] == units[1]).all() and set(units[0]) == {"1", "2"}
    assert freed.groupby("label").size().min() == 2  # the same pair of slots in both units
    deep = long["effects"].assign(s=lambda d: d["j"] % 2)
    four = MultilevelSEM.from_formula("y ~ x + (1|k/s/j)", deep)
    table = relax_covariances(four, Covariances("k:s:j", "region")).parameter_table
    assert four.relax_covariance("k:s:j", by="region").parameter_table.equals(table)
    freed = table[table["label"].str.startswith("C_j_")]
    assert (freed["lhs"].str[:3] == freed["rhs"].str[:3]).all()  # J1_... with J1_..., J2_ with J2_


def test_positions_keyed_by_a_label_leave_the_model_as_it_was(long):
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", long["effects"])
    names = model.layout.position_names()
    by_region = model.relax_variance("k:j", by="region").layout  # the same units, slots keyed by region
    keyed = model.with_positions(by_region)
    assert keyed.layout is by_region and np.array_equal(model.layout.position_names(), names)
    assert not np.array_equal(keyed.layout.position_names(), names)
    assert keyed.loglike(model.start_params) == model.loglike(model.start_params)
    other = MultilevelSEM.from_formula("y ~ x + (1|k/j)", long["effects"].iloc[:-5])
    with pytest.raises(ValueError, match="other rows or other units"):
        model.with_positions(other.layout)


def test_refusals(long):
    effects = MultilevelSEM.from_formula("y ~ x + (1|k/j)", long["effects"])
    schools = MultilevelSEM.from_formula("y ~ x + (1|k)", long["residuals"])
    with pytest.raises(ValueError, match="k is the top level: each of its units is one row"):
        effects.relax_covariance("k", by="region")
    with pytest.raises(ValueError, match=r"level must be one of \['k:j'\] \(the levels below the top\) or 'Residual'"):
        effects.relax_covariance("j", by="region")
    other = effects.relax_variance("k:j", by="region")
    keyed = r"the variance of k:j is relaxed by 'region': its slots are keyed by that label, so its covariances"
    for relax in (other.relax_covariance, lambda level, by: relax_covariances(other, Covariances(level, by))):
        with pytest.raises(ValueError, match=keyed):
            relax(level="k:j", by=pd.Series(long["effects"]["region"].to_numpy(), name="area"))
    confounded = r"Cov\(y_a, y_b\) = var\(k\) \+ cov\(k:j\)\[a,b\], so var\(k\) cannot be told apart"
    for equal in (False, True):
        with pytest.raises(ValueError, match=confounded):
            effects.relax_covariance("k:j", by="region", among=[["north", "south"]], equal=equal)
    with pytest.raises(ValueError, match=r"var\(k\) \+ cov\(Residual\)\[a,b\], so var\(k\) cannot be told apart"):
        schools.relax_residual_covariance(by="type", among=[["pub", "prv", "chr"]], equal=True)
    with pytest.raises(ValueError, match=r"among: \['east'\] is not a label of k:j in 'region'; its labels are"):
        effects.relax_covariance("k:j", by="region", among=["east"])
    with pytest.raises(ValueError, match="label 'pub' is in two groups"):
        schools.relax_residual_covariance(by="type", among=["pub", ["pub", "prv"]])
    with pytest.raises(ValueError, match="no unit of k holds two observations labelled 'chr'"):
        schools.relax_residual_covariance(by="type", among=["chr"])
    with pytest.raises(ValueError, match="is not constant within the units of k:j"):
        effects.relax_covariance("k:j", by="x")
    with pytest.raises(ValueError, match="the variance of k:j is relaxed by 'region'.*not by 'i'"):
        effects.relax_variance("k:j", by="region").relax_covariance("k:j", by=long["effects"]["i"].rename("i"))


def test_the_rank_check_names_the_parameters_it_cannot_tell_apart(relaxed):
    """Every pair of effects of a level correlated by one label, written into the table by hand:
    the rank of the moments' Jacobian finds what the specific check refuses."""
    table = relaxed["effects_equal"].parameter_table
    effects = (table["op"] == "~~") & table["lhs"].str.startswith("J_") & table["rhs"].str.startswith("J_")
    pairs = effects & (table["lhs"] != table["rhs"])
    table.loc[pairs, "label"], table.loc[pairs, "free"] = "C_j_north", True
    model = relaxed["effects_equal"].with_table(table)
    with pytest.raises(ValueError, match=r"\['var\(k\)', 'var\(k:j\)', 'cov\(k:j\)\[north\]'\] can move together"):
        model.check_identification()
    relaxed["effects_equal"].check_identification()


def test_effects_and_residuals_correlated_in_one_model(long):
    """The article's last diagram: correlated effects of the northern counties and correlated errors of the
    public schools in one wide model, tested together and one by one."""
    schools = long["residuals"].assign(state=lambda d: d["k"] // 3,
                                       region=lambda d: d["k"].mod(3).map({0: "south", 1: "north", 2: "north"}))
    rng = np.random.default_rng(4)
    schools["y"] += rng.normal(size=schools["state"].max() + 1)[schools["state"]]
    model = MultilevelSEM.from_formula("y ~ x + (1|state/k)", schools)
    both = relax_covariances(model, Covariances("state:k", "region", among=["north"]),
                             Covariances("Residual", "type", among=["pub"], equal=True))
    assert both.param_names[5:] == ["cov(state:k)[north1,north2]", "cov(Residual)[pub]"]
    res = model.fit()
    test = res.score_test(both)
    assert test.df == 2 and list(test.table.index) == both.param_names[5:]
    assert both.fit().llf >= res.llf
    with pytest.raises(ValueError, match="freed by a single request"):
        relax_covariances(model, Covariances("Residual", "type", among=["pub"]), Covariances("Residual", "type"))


def test_siblings_with_random_slopes(long):
    """Random slopes of the parents and independent slopes of the siblings combine with correlated sibling
    intercepts; slopes correlated with the siblings' intercepts are refused, saying what to write."""
    data = long["effects"]
    slopes = MultilevelSEM.from_formula("y ~ x + (1 + x|k) + (1|k:j) + (0 + x|k:j)", data)
    res = slopes.relax_covariance("k:j", by="region", among=["north"]).fit()
    assert res.converged and "cov(k:j)[north1,north2]" in res.params.index
    assert res.llf >= slopes.fit().llf - 1e-6
    with pytest.raises(NotImplementedError, match=r"random slopes are correlated with them \(Intercept\+x\)"):
        MultilevelSEM.from_formula("y ~ x + (1 + x|k/j)", data).relax_covariance("k:j", by="region")


def test_one_covariance_per_group_takes_the_grouped_steps_with_the_dense_block_likelihood(long):
    """equal=True: a scalar step per sibling and one per (parent, group), the same log-determinant, cross
    products and derivatives as one dense block per parent."""
    from sm_multisem.engine.effects import _EffectMoments
    from sm_multisem.engine.siblings import GroupedSiblings

    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", long["effects"]).relax_variance(
        "k:j", by="region").relax_covariance("k:j", by="region", equal=True)
    lik = model.likelihood
    assert isinstance(lik._sibling_steps, GroupedSiblings)
    _, variances = model.plan.split(np.asarray(model.start_params))
    variances = np.abs(variances) + 0.3  # covariances of the groups away from 0
    fast, dense = lik.moments(variances), _EffectMoments(lik, variances, dense_siblings=True)
    np.testing.assert_allclose(fast.logdet, dense.logdet, rtol=1e-12)
    np.testing.assert_allclose(fast.cross, dense.cross, rtol=1e-12, atol=1e-12)
    weight = np.random.default_rng(1).normal(size=(lik.n_columns, lik.n_columns))
    weight = weight + weight.T
    np.testing.assert_allclose(fast.gradient(weight), dense.gradient(weight), rtol=1e-10, atol=1e-10)
