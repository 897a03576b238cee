"""AR(1) residuals with a residual variance and a rho per label of the lowest units
(Stata residuals(ar 1, t(time) by(type))).

Reference: tests/reference/lavaan_ar1_by.R fits the lavaan syntax written by ``to_lavaan`` to
the wide data written by ``wide_data`` (tests/reference/make_lavaan_ar1_by_inputs.py).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_covariances, dense_loglike
from scipy import stats
from sem_reference import wide_sem_loglike

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from make_lavaan_ar1_by_inputs import ar1_by_model, with_type


@pytest.fixture(scope="module")
def data():
    return with_type(pd.read_csv(REFERENCE / "ar1_data.csv"))


@pytest.fixture(scope="module")
def standard(data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)


@pytest.fixture(scope="module")
def model(standard):
    return standard.relax_residuals(structure="ar1", t="time", by="type")


# Intercept, x, var(k), var(k:j), var(Residual)[a], [b], rho(Residual)[a], [b]
POINTS = ([0.4, 1.9, 0.9, 0.3, 1.1, 0.6, 0.5, -0.3], [0.0, 2.1, 1.4, 0.05, 0.8, 2.5, 0.85, 0.1])


def test_parameters_are_named_by_label(model):
    assert model.param_names == ["Intercept", "x", "var(k)", "var(k:j)", "var(Residual)[a]", "var(Residual)[b]",
                                 "rho(Residual)[a]", "rho(Residual)[b]"]


@pytest.mark.parametrize("params", POINTS)
def test_loglike_equals_the_dense_normal(model, params):
    """Sigma_k built row by row from the ids, times and labels (every unit with its label's S_e and rho)."""
    params = np.array(params)
    assert model.loglike(params) == pytest.approx(dense_loglike(model, params), rel=1e-10)


@pytest.mark.parametrize("params", POINTS)
@pytest.mark.parametrize("reml", [False, True])
def test_score_equals_finite_differences(model, params, reml):
    params = np.array(params)
    numeric = np.array([
        (model.loglike(params + 1e-6 * e, reml=reml) - model.loglike(params - 1e-6 * e, reml=reml)) / 2e-6
        for e in np.eye(len(params))
    ])
    np.testing.assert_allclose(model.score(params, reml=reml), numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


@pytest.mark.parametrize("reml", [False, True])
def test_equal_parameters_in_every_label_are_the_one_group_model(model, standard, reml):
    one_group = standard.relax_residuals(structure="ar1", t="time")
    for beta_and_levels, resid, rho in (([0.4, 1.9, 0.9, 0.3], 1.1, 0.5), ([0.0, 2.1, 1.4, 0.05], 0.8, -0.3)):
        by_label = np.r_[beta_and_levels, resid, resid, rho, rho]
        assert model.loglike(by_label, reml=reml) == pytest.approx(
            one_group.loglike(np.r_[beta_and_levels, resid, rho], reml=reml), abs=1e-10)


def test_a_label_of_one_row_per_unit_leaves_its_units_uncorrelated(data):
    """Units of one observation (label c) whiten nothing: their rho enters no sum, the rest is unchanged."""
    single = data[(data["j"] == 3) & (data["time"] == data.groupby(["k", "j"])["time"].transform("min"))]
    mixed = pd.concat([data[data["j"] < 3], single.assign(type="c")], ignore_index=True)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", mixed).relax_residuals(structure="ar1", t="time",
                                                                                     by="type")
    params = np.array([0.4, 1.9, 0.9, 0.3, 1.1, 0.6, 0.7, 0.5, -0.3, 0.2])
    assert model.loglike(params) == pytest.approx(dense_loglike(model, params), rel=1e-10)
    assert model.score(params)[-1] == 0.0


def test_wide_table_has_lags_and_constraints_per_label(model):
    table = model.parameter_table
    constraints = table[table["op"] == "=="]
    assert ("S_e_a_lag2", "S_e_a*rho_a^2") in set(zip(constraints["lhs"], constraints["rhs"]))
    assert ("S_e_b_lag5", "S_e_b*rho_b^5") in set(zip(constraints["lhs"], constraints["rhs"]))
    covariances = table[(table["op"] == "~~") & (table["lhs"] != table["rhs"]) & table["free"]]
    pairs = dict(zip(zip(covariances["lhs"], covariances["rhs"]), covariances["label"]))
    assert pairs[("y_a1_1", "y_a1_3")] == "S_e_a_lag2" and pairs[("y_b2_2", "y_b2_3")] == "S_e_b_lag1"
    assert not any(lhs.split("_")[1] != rhs.split("_")[1] for lhs, rhs in pairs)  # no covariance across units
    rng = np.random.default_rng(3)
    params = np.r_[rng.normal(size=2), rng.uniform(0.3, 2.0, size=4), 0.6, -0.4]
    values = dict(zip(model.plan.labels, params))
    assert wide_sem_loglike(table, model.wide_data(), values) == pytest.approx(model.loglike(params), rel=1e-12)


def test_lavaan_fits_the_exported_model_to_the_same_answer():
    model = ar1_by_model()
    assert model.to_lavaan() + "\n" == (REFERENCE / "lavaan_ar1_by.lav").read_text()
    syntax = model.to_lavaan().splitlines()
    assert "rho_a := S_e_a_lag1 / S_e_a" in syntax and "S_e_b_lag3 == S_e_b * rho_b^3" in syntax
    ref = pd.read_csv(REFERENCE / "lavaan_ar1_by.csv").set_index("label")
    res = model.fit()
    # measured: 3e-10 (lavaan's logLik() is 2e-4 off; see lavaan_ar1_by.R), estimates to 8e-6
    assert res.llf == pytest.approx(ref.loc["logLik", "est"], abs=1e-6)
    labels = list(model.plan.labels)
    assert labels == ["c", "bx", "S_k", "S_j", "S_e_a", "S_e_b", "rho_a", "rho_b"]
    np.testing.assert_allclose(res.params.to_numpy(), ref.loc[labels, "est"].to_numpy(), rtol=1e-4)


def test_summary_has_a_residual_block_per_label(model):
    res = model.fit()
    text = res.summary().as_text()
    assert "Residual: AR(1) along time within k:j, by type" in text
    assert text.index("type = a") < text.index("rho(Residual)[a]") < text.index("type = b")
    assert "rho_b  (S_e_b*rho_b^|t_p-t_q|)" in res.summary(style="sem").as_text()
    assert res.llf > standard_llf(model)


def standard_llf(model):
    """The fit with one residual variance and one rho."""
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", model._recipe["frame"]).relax_residuals(
        structure="ar1", t="time").fit().llf


def test_refusals(data, standard, model):
    varying = data.assign(phase=np.where(data["time"] > 3, "late", "early"))
    # a label of the rows gives every row its variance under one rho (nlme corAR1 with varIdent)
    phases = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", varying).relax_residuals(structure="ar1", t="time",
                                                                                         by="phase")
    assert phases.param_names[-3:] == ["var(Residual)[early]", "var(Residual)[late]", "rho(Residual)"]
    lonely = data.assign(type=np.where((data["k"] == 1) & (data["j"] == 1), "c", data["type"]))
    with pytest.raises(ValueError, match="label 'c' has only 1 of the units of k:j"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", lonely).relax_residuals(structure="ar1", t="time",
                                                                                  by="type")
    with pytest.raises(ValueError, match=r"AR\(1\) residuals take a residual variance \(and a rho\) per label"):
        standard.relax_residuals(by="type").relax_residuals(structure="ar1", t="time")
    with pytest.raises(ValueError, match=r"AR\(1\) residuals take a residual variance \(and a rho\) per label"):
        model.relax_residuals(by="type")
    per_time = standard.relax_residuals(structure="ar1", t="time", by="time")  # a variance per time, one rho
    assert [n for n in per_time.param_names if n.startswith("var(Residual)")][:2] == ["var(Residual)[1]",
                                                                                       "var(Residual)[2]"]
    with pytest.raises(ValueError, match="rho\\(Residual\\) must lie in \\(-1, 1\\), got 1.2"):
        model.loglike(np.array([0.4, 1.9, 0.9, 0.3, 1.1, 0.6, 0.5, 1.2]))
    with pytest.raises(ValueError, match="expected information is not implemented for AR\\(1\\)"):
        model.fit(cov_type="eim")
    with pytest.raises(NotImplementedError, match="nonlinear constraint that Stata sem cannot express"):
        model.to_stata()


@pytest.mark.parametrize("params", POINTS)
def test_a_label_in_as_many_units_as_clusters_but_not_one_in_each(data, params):
    """80 districts and 80 schools of type a, two in each even district and none in the odd ones:
    the sums of a label's units by district have empty districts although the counts match, and
    every district keeps its own log-likelihood."""
    uneven = data.assign(type=np.where((data["k"] % 2 == 0) & (data["j"] < 3), "a", "b"))
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", uneven).relax_residuals(structure="ar1", t="time",
                                                                                      by="type")
    params = np.array(params)
    beta, _ = model.plan.split(params)
    y, X = model.model_data.endog[model.layout.order], model.model_data.exog[model.layout.order]
    dense = [stats.multivariate_normal(X[rows] @ beta, sigma).logpdf(y[rows])
             for rows, sigma in dense_covariances(model, params)]
    np.testing.assert_allclose(model.loglikeobs(params), dense, rtol=1e-10)
