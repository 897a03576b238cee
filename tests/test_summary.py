"""The Stata sem-style summary: the wide model's equations and variances, read from its parameter table."""

import warnings
from pathlib import Path

import pandas as pd
import pytest
from statsmodels.iolib.summary2 import Summary

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
LABEL_OF = {"bx": "x", "c": "Intercept", "S_k": "var(k)", "S_j": "var(k:j)", "S_e": "var(Residual)"}


@pytest.fixture(scope="module")
def res(article_data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", article_data).fit()


def table_of(summary: Summary) -> pd.DataFrame:
    (table,) = [t for t in summary.tables if "Label" in t.columns]
    return table


def test_every_equation_and_variance_of_the_article_model(res):
    summary = res.summary(style="sem")
    assert isinstance(summary, Summary)
    table = table_of(summary)
    rows = [name.strip() for name in table.index]
    equations = ["y1_1", "y1_2", "y2_1", "y2_2"]
    expected = ["Structural"]
    for y, j in zip(equations, ["J1", "J1", "J2", "J2"]):
        expected += [f"{y} <-", f"x{y[1:]}", "K", j, "_cons"]
    expected += ["Variance", *[f"e.{y}" for y in equations], "K", "J1", "J2"]
    assert rows == expected
    for position, (name, row) in enumerate(table.iterrows()):
        if row["Label"]:
            parameter = LABEL_OF[row["Label"]]
            assert float(row["Coef."]) == pytest.approx(res.params[parameter], rel=1e-5)
            assert float(row["Std.Err."]) == pytest.approx(res.bse[parameter], rel=1e-5)
            assert float(row["[0.025"]) == pytest.approx(res.conf_int().loc[parameter, 0], rel=1e-5)
            assert (row["z"] == "") == parameter.startswith("var(")
        elif name.strip() in ("K", "J1", "J2") and position < rows.index("Variance"):
            assert (row["Coef."], row["Std.Err."]) == ("1", "(constrained)")
    text = summary.as_text()
    for piece in ["Structural equation model", "Estimation method:", "ml", "Number of obs (clusters):", "100",
                  f"{res.llf:.5f}", "LR test of model vs. saturated: chi2(25)", "400 of 400 rows used"]:
        assert piece in text, piece
    assert text.count("(constrained)") == 8
    assert "<table" in summary.as_html() and "tabular" in summary.as_latex()


def test_reml_and_unbalanced_fits_say_what_they_cannot_test(unbalanced_data):
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data).fit(reml=True)
    text = res.summary(style="sem").as_text()
    assert "reml" in text and "Log restricted-likelihood" in text
    assert "LR test of model vs. saturated: not available" in text


def test_relaxed_model_shows_its_labels_and_collapses_equal_equations():
    data = pd.read_csv(REFERENCE / "relax_data.csv")
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_variance("k:j", by="type")
    model = model.relax_slope("x", by="type")
    res = model.fit()
    table = table_of(res.summary(style="sem"))
    expanded = model.parameter_table
    positions = expanded.loc[expanded["op"] == "~1", "lhs"]
    headers = [name.strip() for name in table.index if name.strip().startswith("y{p} <-")]
    by_type = positions.str.extract(r"y_(\w+?)\d")[0].value_counts()
    assert headers == [f"y{{p}} <-  ({by_type[t]} equations: {positions[positions.str.startswith(f'y_{t}')].iloc[0]} "
                       f"... {positions[positions.str.startswith(f'y_{t}')].iloc[-1]})" for t in ["chr", "prv", "pub"]]
    slopes = table[table.index.str.strip() == "x{p}"]
    assert list(slopes["Label"]) == ["bx_chr", "bx_prv", "bx_pub"]
    for label, value in zip(slopes["Label"], slopes["Coef."]):
        assert float(value) == pytest.approx(res.params[f"x[{label[3:]}]"], rel=1e-5)
    effects = table[table.index.str.strip().str.startswith("J{u}") & (table["Label"] != "")]
    assert list(effects["Label"]) == ["S_j_chr", "S_j_prv", "S_j_pub"]
    assert f"e.y{{p}}  ({len(positions)} positions)" in [name.strip() for name in table.index]
    # with room for every equation, none is collapsed
    full = table_of(res.summary(style="sem", max_equations=len(positions)))
    assert sum(name.strip().endswith("<-") for name in full.index) == len(positions)
    assert not any("{p}" in name for name in full.index)


def test_boundary_and_refusals():
    data = sms.simulate_nested((40, 3, 3), sd=(1.0, 0.0, 1.0), seed=0)  # var(k:j) estimated at 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    table = table_of(res.summary(style="sem"))
    assert set(table.loc[table["Label"] == "S_j", "Std.Err."]) == {"(boundary)"}
    with pytest.raises(ValueError, match="style must be one of"):
        res.summary(style="stata")
    ar1 = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", pd.read_csv(REFERENCE / "ar1_data.csv"))
    ar1 = ar1.relax_residuals(structure="ar1", t="time")
    res = ar1.fit()
    table = table_of(res.summary(style="sem"))
    assert table.loc[table["Label"] == "rho", "Coef."].astype(float).iloc[0] == pytest.approx(
        res.params["rho(Residual)"], rel=1e-5)
    assert "rho(Residual)" in str(res.summary())
