"""The parameter table, and the wide model written for Stata sem and lavaan.

tests/reference/lavaan_wide.R fits the lavaan syntax written by ``to_lavaan`` to the wide
data written by ``wide_data`` (lavaan 0.6.14, FIML, ``fixed.x = TRUE``); the wide SEM must
reproduce the mixed model: same estimates, same log-likelihood, and lavaan's observed-
information standard errors equal ours.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from make_lavaan_inputs import designs  # noqa: E402

LABEL_OF = {"Intercept": "c", "x": "bx", "var(k)": "S_k", "var(k:j)": "S_j", "var(Residual)": "S_e"}


@pytest.fixture(scope="module")
def article_model(article_data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data)


def test_parameter_table_of_the_article(article_model):
    table = article_model.parameter_table
    assert list(table.columns) == ["lhs", "op", "rhs", "label", "free", "value"]
    slopes = table[table["op"] == "~"]
    assert list(slopes["lhs"]) == ["y1_1", "y1_2", "y2_1", "y2_2"]
    assert list(slopes["rhs"]) == ["x1_1", "x1_2", "x2_1", "x2_2"]
    assert set(slopes["label"]) == {"bx"}
    assert set(table.loc[table["op"] == "~1", "label"]) == {"c"}
    loadings = table[table["op"] == "=~"]
    assert (loadings["value"] == 1).all() and not loadings["free"].any()
    assert sorted(loadings.loc[loadings["lhs"] == "J2", "rhs"]) == ["y2_1", "y2_2"]
    assert len(loadings[loadings["lhs"] == "K"]) == 4
    variances = table[(table["op"] == "~~") & (table["lhs"] == table["rhs"])].set_index("lhs")["label"]
    assert variances["J1"] == variances["J2"] == "S_j"
    assert variances["K"] == "S_k"
    assert {variances[y] for y in ["y1_1", "y1_2", "y2_1", "y2_2"]} == {"S_e"}
    covariances = table[(table["op"] == "~~") & (table["lhs"] != table["rhs"])]
    assert len(covariances) == 3 and (covariances["value"] == 0).all() and not covariances["free"].any()


def test_compact_rules_name_every_parameter(article_model):
    free = article_model.table.free_parameters
    assert dict(zip(free["name"], free["label"])) == LABEL_OF
    assert list(free["name"]) == article_model.param_names


def test_stata_command_of_the_article(article_model):
    stata = article_model.to_stata()
    assert stata.startswith("sem (y1_1 <- x1_1@bx _cons@c K@1 J1@1) ///")
    assert "(y2_2 <- x2_2@bx _cons@c K@1 J2@1) ///" in stata
    assert "covstruct(_lexog, diagonal) cov(_lexog*_oexog@0) method(ml)" in stata
    assert "J1@S_j J2@S_j e.y1_1@S_e e.y1_2@S_e e.y2_1@S_e e.y2_2@S_e)" in stata


def test_unbalanced_data_ask_for_mlmv(unbalanced_data):
    stata = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data).to_stata()
    assert "method(mlmv)" in stata


def test_wide_data_of_the_article(article_model, article_data):
    wide = article_model.wide_data()
    assert list(wide.columns) == ["k", "y1_1", "y1_2", "y2_1", "y2_2", "x1_1", "x1_2", "x2_1", "x2_2"]
    assert len(wide) == 100
    first = article_data[article_data["k"] == 1].sort_values(["j", "i"])
    np.testing.assert_allclose(wide.loc[0, ["y1_1", "y1_2", "y2_1", "y2_2"]].to_numpy(float), first["y"])


def test_wide_data_fills_absent_covariates_only_on_request(unbalanced_data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data)
    plain, filled = model.wide_data(), model.wide_data(fill_absent_covariates=True)
    assert plain.filter(like="x").isna().to_numpy().sum() == plain.filter(like="y").isna().to_numpy().sum() > 0
    assert filled.filter(like="x").notna().all().all()
    pd.testing.assert_frame_equal(plain.filter(like="y"), filled.filter(like="y"))


@pytest.mark.parametrize("design", ["article", "unbalanced"])
def test_lavaan_fits_the_exported_model_to_the_same_answer(design):
    data = designs()[design]
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    assert model.to_lavaan() + "\n" == (REFERENCE / f"lavaan_{design}.lav").read_text()
    ref = pd.read_csv(REFERENCE / "lavaan_wide.csv")
    ref = ref[ref["design"] == design].set_index("label")
    res = model.fit()
    assert res.llf == pytest.approx(ref.loc["logLik", "est"], abs=1e-6)
    labels = [LABEL_OF[name] for name in model.param_names]
    np.testing.assert_allclose(res.params.to_numpy(), ref.loc[labels, "est"].to_numpy(), rtol=1e-5)
    # lavaan uses the observed information with missing = "ml"
    np.testing.assert_allclose(res.bse.to_numpy(), ref.loc[labels, "se"].to_numpy(), rtol=1e-5)


def test_wide_model_read_as_an_sem_reproduces_the_likelihood(unbalanced_data):
    """tests/sem_reference.py evaluates the exported table on the wide data independently."""
    from sem_reference import wide_sem_loglike

    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data)
    params = np.array([0.3, 1.7, 0.9, 0.6, 1.2])
    values = dict(zip(model.plan.labels, params))
    assert wide_sem_loglike(model.parameter_table, model.wide_data(), values) == pytest.approx(
        model.loglike(params), rel=1e-12
    )


@pytest.mark.parametrize(("design", "df"), [("article", 25), ("unbalanced", 58)])
def test_lr_test_against_the_saturated_model_matches_lavaan(design, df):
    """lavaan's chi-square of the same wide model (fixed.x = TRUE); with missing positions
    both saturated models are FIML fits (lavaan's EM stops at 1e-5 in the moments)."""
    ref = pd.read_csv(REFERENCE / "lavaan_wide.csv")
    ref = ref[ref["design"] == design].set_index("label")["est"]
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", designs()[design]).fit()
    test = res.lr_test_saturated()
    assert test.df == ref["chisq_df"] == df
    assert test.statistic == pytest.approx(ref["chisq"], rel=1e-5)


def test_saturated_model_of_a_reml_fit_is_refused():
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", designs()["unbalanced"]).fit(reml=True)
    with pytest.raises(ValueError, match="unweighted ML fit"):
        res.lr_test_saturated()
