"""Joint covariates, GMM (ADF) and an endogenous covariate against lavaan 0.6.14 and linearmodels 7.1.

The fixtures were made by ``tests/reference/joint_lavaan.R``, ``adf_lavaan.R``, ``iv_lavaan.R`` and
``iv_linearmodels.py`` on data simulated by the ``make_*_inputs.py`` scripts beside them.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sm_multisem import MultilevelSEM

REFERENCE = Path(__file__).parent / "reference"


def lavaan(name: str, model: str) -> pd.DataFrame:
    table = pd.read_csv(REFERENCE / f"{name}_lavaan.csv", keep_default_na=False)
    return table[table["model"] == model]


def quantity(table: pd.DataFrame, what: str) -> float:
    return float(table.loc[table["quantity"] == what, "value"].iloc[0])


def by_name(table: pd.DataFrame, what: str) -> pd.Series:
    rows = table[table["quantity"] == what]
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["name"]).groupby(level=0).first()


def ours_by_lavaan_name(results, table: pd.DataFrame, values) -> pd.Series:
    """Our value of every parameter, indexed by the lavaan name (lhs op rhs) of each row it sets."""
    labels = dict(zip(results.model.labels, np.asarray(values)))
    out = {}
    for row in table.itertuples():
        if not row.free:
            continue
        key = row.label if row.label else f"{row.lhs}{row.op}{row.rhs}"
        name = f"{row.lhs}~1" if row.op == "~1" else f"{row.lhs}{row.op}{row.rhs}"
        out[name] = labels[key]
    return pd.Series(out)


def compare(results, reference: pd.DataFrame, what: str, values, rtol: float) -> None:
    expected = by_name(reference, what)
    ours = ours_by_lavaan_name(results, results.model.parameter_table, values)
    common = expected.index.intersection(ours.index)
    assert len(common) == len(ours), sorted(set(ours.index) - set(expected.index))
    np.testing.assert_allclose(ours[common], expected[common], rtol=rtol, atol=rtol * 1e-2)


@pytest.fixture(scope="module")
def joint():
    data = pd.read_csv(REFERENCE / "joint_long.csv")
    return MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="joint").fit()


def test_joint_covariates_match_lavaan_fiml_with_free_covariates(joint):
    reference = lavaan("joint", "missing")
    assert joint.llf == pytest.approx(quantity(reference, "logl"), abs=1e-5)
    assert len(joint.params) == quantity(reference, "npar")
    compare(joint, reference, "est", joint.params, rtol=1e-5)
    compare(joint, reference, "se_observed", joint.bse, rtol=1e-3)
    assert joint.model.nobs == 300 and "1,200 of 1,200 rows used" in str(joint.summary())


def test_joint_covariates_on_complete_data_match_lavaan():
    data = pd.read_csv(REFERENCE / "joint_long.csv").assign(x=lambda d: d["x_complete"])
    res = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, covariates="joint").fit()
    assert res.llf == pytest.approx(quantity(lavaan("joint", "complete"), "logl"), abs=1e-5)


def test_gmm_matches_lavaan_wls():
    data = pd.read_csv(REFERENCE / "adf_long.csv")
    res = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit(method="gmm")
    reference = lavaan("adf", "wls")
    compare(res, reference, "est", res.params, rtol=1e-6)
    compare(res, reference, "se", res.bse, rtol=1e-6)
    j_test = res.tests[0]
    assert j_test.statistic == pytest.approx(quantity(reference, "chisq"), rel=1e-7)
    assert j_test.df == quantity(reference, "df")


LAVAAN_IV_LABELS = {
    "Intercept": "cy", "w": "gw", "x": "b", "var(k)": "S_ky", "var(k:j)": "S_jy", "var(Residual)": "S_ey",
    "x: Intercept": "cx", "x: w": "pw", "x: z1": "p1", "x: z2": "p2", "x: var(k)": "S_kx", "x: var(k:j)": "S_jx",
    "x: var(Residual)": "S_ex", "cov(k)[y,x]": "C_k", "cov(k:j)[y,x]": "C_j", "cov(Residual)[y,x]": "C_e",
}


def iv_by_label(reference: pd.DataFrame, what: str) -> pd.Series:
    rows = reference[(reference["quantity"] == what) & (reference["label"] != "")]
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["label"]).groupby(level=0).first()


@pytest.mark.parametrize("variant, instruments", [("over", "z1 + z2"), ("just", "z1")])
def test_endogenous_covariate_matches_lavaan_bivariate_system(variant, instruments):
    data = pd.read_csv(REFERENCE / "iv_long.csv")
    model = MultilevelSEM.from_formula(f"y ~ w + [x ~ {instruments}] + (1|k/j)", data)
    res = model.fit()
    reference = lavaan("iv", variant)
    assert res.llf == pytest.approx(quantity(reference, "logl_conditional"), abs=1e-5)
    names = [n for n in res.params.index]
    expected = iv_by_label(reference, "est")[[LAVAAN_IV_LABELS[n] for n in names]]
    np.testing.assert_allclose(res.params, expected, rtol=1e-5, atol=1e-7)
    se = iv_by_label(reference, "se_observed")[[LAVAAN_IV_LABELS[n] for n in names]]
    np.testing.assert_allclose(res.bse, se, rtol=1e-3)
    # the exogenous model: every covariance between the two equations fixed at 0
    table = model.parameter_table
    cross = table["label"].isin(["C_k", "C_k_j", "C_e"])
    table.loc[cross, "free"], table.loc[cross, "value"] = False, 0.0
    exogenous = model.with_table(table).fit()
    assert exogenous.llf == pytest.approx(quantity(lavaan("iv", f"{variant}_exog"), "logl_conditional"), abs=1e-5)


@pytest.mark.parametrize("fixture, instruments", [("2sls_just", "z1"), ("liml_over", "z1 + z2")])
def test_zero_effect_variances_give_linearmodels_estimates(fixture, instruments):
    data = pd.read_csv(REFERENCE / "iv_long.csv")
    model = MultilevelSEM.from_formula(f"y ~ w + [x ~ {instruments}] + (1|k/j)", data)
    table = model.parameter_table
    effects = table["label"].isin(["S_k", "S_j", "S_k_x", "S_j_x", "C_k", "C_k_j"])
    table.loc[effects, "free"], table.loc[effects, "value"] = False, 0.0
    res = model.with_table(table).fit()
    reference = pd.read_csv(REFERENCE / "iv_linearmodels.csv")
    expected = reference[(reference["model"] == fixture) & (reference["quantity"] == "params")]
    np.testing.assert_allclose(res.params[expected["name"]], expected["value"], rtol=1e-6)


def test_exported_lavaan_syntax_of_the_system_is_what_lavaan_fitted():
    """``to_lavaan()`` prints the syntax lavaan fitted in ``iv_exported_lavaan.R`` (same llf as ours)."""
    data = pd.read_csv(REFERENCE / "iv_long.csv")
    model = MultilevelSEM.from_formula("y ~ w + [x ~ z1 + z2] + (1|k/j)", data)
    assert model.to_lavaan() + "\n" == (REFERENCE / "iv_exported.lav").read_text()
    session = (REFERENCE / "iv_exported_lavaan_session.txt").read_text()
    lavaan_llf = float(session.split("logl ")[1].split()[0])
    assert model.fit().llf == pytest.approx(lavaan_llf, abs=1e-5)
    pd.testing.assert_frame_equal(model.wide.reset_index(drop=True),
                                  pd.read_csv(REFERENCE / "iv_exported_wide.csv"), check_dtype=False, atol=1e-12)


def test_stata_syntax_of_the_wide_models():
    data = pd.read_csv(REFERENCE / "iv_long.csv")
    iv = MultilevelSEM.from_formula("y ~ w + [x ~ z1 + z2] + (1|k/j)", data).to_stata()
    assert "(x1_1 <- w1_1@bw_x z1_1_1@bz1_x z2_1_1@bz2_x _cons@c_x K_x@1 J1_x@1)" in iv
    assert "(y1_1 <- w1_1@bw x1_1@bx _cons@c K_y@1 J1_y@1)" in iv
    # the two equations' effects correlate, so the zero covariances replace covstruct(_lexog, diagonal)
    assert "covstruct" not in iv and "K_y*K_x@C_k" in iv and "e.y1_1*e.x1_1@C_e" in iv and "K_y*J1_x@0" in iv
    joint = pd.read_csv(REFERENCE / "joint_long.csv")
    text = MultilevelSEM.from_formula("y ~ x + (1|k/j)", joint, covariates="joint").to_stata()
    # covariates modelled jointly are Stata's observed exogenous variables: sem estimates their moments itself
    assert "x1_1 <-" not in text and "m_x1_1" not in text and "method(mlmv)" in text
    assert "covstruct(_lexog, diagonal) cov(_lexog*_oexog@0)" in text
