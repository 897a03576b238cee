"""The wide SEM of a model with AR(1) residuals: positions numbered by time, residual
covariances ``S_e_lag<d>`` tied to ``S_e * rho^d`` by nonlinear equality constraints.

tests/reference/lavaan_ar1.R fits the lavaan syntax written by ``to_lavaan`` to the wide
data written by ``wide_data`` (lavaan 0.6.14, FIML, ``fixed.x = TRUE``); see
tests/reference/make_lavaan_ar1_inputs.py for the data.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sem_reference import wide_sem_loglike

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from make_lavaan_ar1_inputs import ar1_model  # noqa: E402

LABELS = ["c", "bx", "S_k", "S_j", "S_e", "rho"]


@pytest.fixture(scope="module")
def model():
    return ar1_model()


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "ar1_data.csv")


def test_positions_are_numbered_by_time(model):
    """Slot t of a unit holds its observation at time t in every cluster; absent times are missing."""
    long = pd.read_csv(REFERENCE / "ar1_data.csv").query("j <= 2 and time <= 4")
    wide = model.wide_data().set_index("k")
    expected = long.pivot(index="k", columns=["j", "time"], values="y")
    for (j, t), column in expected.items():
        np.testing.assert_array_equal(wide[f"y{j}_{t}"].to_numpy(), column.reindex(wide.index).to_numpy())
    assert expected.isna().to_numpy().any()  # the data have gaps in time


def test_parameter_table_holds_the_residual_covariances(model):
    table = model.parameter_table
    covariances = table[(table["op"] == "~~") & table["lhs"].str.startswith("y") & (table["lhs"] != table["rhs"])]
    # every pair of times inside each of the two units j, none across units
    assert len(covariances) == 2 * 6 and covariances["free"].all()
    pairs = dict(zip(zip(covariances["lhs"], covariances["rhs"]), covariances["label"]))
    assert pairs[("y1_1", "y1_2")] == pairs[("y2_3", "y2_4")] == "S_e_lag1"
    assert pairs[("y2_1", "y2_4")] == "S_e_lag3" and ("y1_1", "y2_1") not in pairs
    constraints = table[table["op"] == "=="]
    assert list(zip(constraints["lhs"], constraints["rhs"])) == [
        ("S_e_lag1", "S_e*rho^1"), ("S_e_lag2", "S_e*rho^2"), ("S_e_lag3", "S_e*rho^3")]
    assert list(table["op"].drop_duplicates())[-2:] == ["~~", "=="]  # constraints last, as in lavaan


@pytest.mark.parametrize("relax", ["ar1", "ar1 and a slope by a label of the rows"])
def test_wide_model_read_as_an_sem_reproduces_the_likelihood(data, relax):
    """tests/sem_reference.py evaluates the exported table on the wide data independently.

    A slope relaxed by a label that varies within units keys the rows by that label first:
    the positions become ``late5`` (time 5, labelled late), still one time each."""
    data = data.assign(phase=np.where(data["time"] > 3, "late", "early"))
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residuals(structure="ar1", t="time")
    if relax != "ar1":
        model = model.relax_slope("x", by="phase")
        assert "y1_late5" in model.wide_data().columns
    rng = np.random.default_rng(5)
    n_beta = len(model.plan.beta_index)
    params = np.r_[rng.normal(size=n_beta), rng.uniform(0.3, 2.0, size=len(model.param_names) - n_beta - 1), -0.4]
    values = dict(zip(model.plan.labels, params))
    assert wide_sem_loglike(model.parameter_table, model.wide_data(), values) == pytest.approx(
        model.loglike(params), rel=1e-12
    )


def test_lavaan_fits_the_exported_model_to_the_same_answer(model):
    assert model.to_lavaan() + "\n" == (REFERENCE / "lavaan_ar1.lav").read_text()
    ref = pd.read_csv(REFERENCE / "lavaan_ar1.csv").set_index("label")
    res = model.fit()
    assert res.llf == pytest.approx(ref.loc["logLik", "est"], abs=1e-6)
    assert list(model.plan.labels) == LABELS
    np.testing.assert_allclose(res.params.to_numpy(), ref.loc[LABELS, "est"].to_numpy(), rtol=1e-5)
    # lavaan's chi-square against its saturated model is our LR test against ours
    test = res.lr_test_saturated()
    assert test.df == ref.loc["chisq_df", "est"]
    assert test.statistic == pytest.approx(ref.loc["chisq", "est"], rel=1e-6)
    # Standard errors are not compared: lavaan inverts the Hessian of the log-likelihood
    # bordered by the constraints' Jacobian, which leaves out the curvature of the nonlinear
    # constraints (the Lagrange multiplier term); measured, that reproduces lavaan's SEs to
    # 1e-5 and makes those of S_j, S_e and rho 6 to 13% larger than the observed information
    # of the likelihood in (S_e, rho), which is ours.


def test_stata_sem_cannot_express_it(model):
    with pytest.raises(NotImplementedError, match="nonlinear constraint that Stata sem cannot express"):
        model.to_stata()


def test_lavaan_needs_two_times_one_step_apart(data):
    """Times 2, 4, ...: rho^2 alone is seen, and the syntax defines rho from the lag-1 covariance."""
    even = data.assign(time=2 * data["time"])
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", even).relax_residuals(structure="ar1", t="time")
    assert "S_e_lag2" in set(model.parameter_table["label"])
    with pytest.raises(NotImplementedError, match="one time step apart \\(the closest are 2\\)"):
        model.to_lavaan()
