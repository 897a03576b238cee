"""Inputs that gave silently wrong numbers: each now gives the right fit or an error naming the culprit."""

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms


@pytest.fixture(scope="module")
def data():
    return sms.simulate_article_data(n_clusters=75, seed=3)


def test_tests_between_fits_of_different_rows_are_refused(data):
    full = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    fewer = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.iloc[:200]).fit()
    relaxed_on_fewer = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.iloc[:200]).relax_variance(
        "k:j", by=(data["j"].iloc[:200] == 1).map({True: "a", False: "b"}).to_numpy())
    with pytest.raises(ValueError, match=r"different rows \(200 of 200 rows and 300 of 300\)"):
        full.lr_test(fewer)  # the smaller model first
    with pytest.raises(ValueError, match=r"different rows \(300 of 300 rows and 200 of 200\)"):
        full.score_test(relaxed_on_fewer)


def test_tests_between_fits_of_as_many_but_other_rows_are_refused(data):
    first, second = data.copy(), data.copy()
    first["w"] = second["w"] = np.random.default_rng(0).normal(size=len(data))
    first.loc[0, "w"], second.loc[1, "w"] = np.nan, np.nan
    a = sms.MultilevelSEM.from_formula("y ~ x + w + (1|k/j)", first).fit()
    b = sms.MultilevelSEM.from_formula("y ~ x + w + (1|k/j)", second).relax_variance(
        "k:j", by=np.where(second["j"] == 1, "a", "b"))
    with pytest.raises(ValueError, match="299 rows each, but not the same ones"):
        a.score_test(b)


@pytest.mark.parametrize("spread", ["ends", "halves"])
def test_integer_ids_anywhere_in_int64_keep_their_clusters(data, spread):
    """Ids at both ends of int64 (the difference from the smallest overflowed) or spanning -2**62..2**62."""
    k = data["k"].to_numpy(dtype=np.int64)
    if spread == "ends":
        ids = np.where(k % 2 == 0, np.int64(2**63 - 1) - k, np.int64(-(2**63) + 1) + k)
    else:
        ids = np.where(k % 2 == 0, np.int64(-(2**62)), np.int64(2**62)) + k
    reference = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(k=ids)).fit()
    assert res.model.layout.n_clusters == 75
    assert res.llf == pytest.approx(reference.llf, rel=1e-12)


def test_duplicate_column_names_are_refused(data):
    twice = pd.concat([data, data[["x"]]], axis=1)
    with pytest.raises(ValueError, match=r"the data have two or more columns named 'x'"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", twice)
    # a duplicated column the formula does not use is no problem
    other = pd.concat([data, data[["x"]].rename(columns={"x": "z"}), data[["x"]].rename(columns={"x": "z"})], axis=1)
    assert sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", other).nobs == 75


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, -0.1, np.nan])
def test_conf_int_refuses_an_alpha_outside_0_1(data, alpha):
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    with pytest.raises(ValueError, match="alpha must lie strictly between 0 and 1"):
        res.conf_int(alpha=alpha)


def test_a_series_of_labels_or_times_is_aligned_on_the_data_index(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    label = pd.Series(np.where(data["j"] == 1, "first", "second"), index=data.index, name="slot")
    shuffled = label.sample(frac=1.0, random_state=4)
    assert model.relax_variance("k:j", by=shuffled).fit().llf == pytest.approx(
        model.relax_variance("k:j", by=label).fit().llf, rel=1e-12)
    rows = sms.simulate_districts(2000, 2)
    timed = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", rows)
    time = rows.groupby(["k", "j"]).cumcount().rename("t")
    assert timed.relax_residuals(structure="ar1", t=time.sample(frac=1.0, random_state=5)).fit().llf == \
        pytest.approx(timed.relax_residuals(structure="ar1", t=time).fit().llf, rel=1e-12)
    with pytest.raises(ValueError, match="Series 'slot' is aligned on the data's index"):
        model.relax_variance("k:j", by=label.iloc[:-1])
    with pytest.raises(ValueError, match="Series 'slot' is aligned on the data's index"):
        model.relax_variance("k:j", by=label.set_axis(label.index + 1000))


def test_predict_matches_ids_of_another_dtype_as_text(data):
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    new = data.iloc[:20]
    as_text = new.assign(k=new["k"].astype(str), j=new["j"].astype(str))
    np.testing.assert_allclose(res.predict(as_text, level="k:j"), res.predict(new, level="k:j"), rtol=1e-12)
    np.testing.assert_allclose(res.predict(new.assign(k=new["k"].astype(float)), level="k"),
                               res.predict(new, level="k"), rtol=1e-12)
    assert not np.allclose(res.predict(new, level="k"), res.predict(new))  # the effects are there


def test_predict_matches_integer_ids_against_text_ids_of_the_fit(data):
    text = data.assign(k=data["k"].astype(str))
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", text).fit()
    new = data.iloc[:10]
    np.testing.assert_allclose(res.predict(new, level="k"), res.predict(text.iloc[:10], level="k"), rtol=1e-12)
    np.testing.assert_allclose(res.predict(new.assign(k=new["k"].astype(float)), level="k"),
                               res.predict(text.iloc[:10], level="k"), rtol=1e-12)


def test_to_stata_refuses_names_longer_than_stata_takes(data):
    long_name = "household_income_in_thousands_x"  # 31 characters: y..._1_2 of it is longer than 32
    model = sms.MultilevelSEM.from_formula(f"y ~ {long_name} + (1|k/j)", data.rename(columns={"x": long_name}))
    with pytest.raises(ValueError, match=r"has \d+ characters; Stata takes at most 32: rename the column"):
        model.to_stata()
    assert "sem (" in sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).to_stata()
    assert model.to_lavaan()  # lavaan has no such limit


def test_bad_options_and_names_are_named(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    for maxiter in (-1, 0, 2.5, True):
        with pytest.raises(ValueError, match="maxiter must be a positive integer"):
            model.fit(maxiter=maxiter)
    with pytest.raises(ValueError, match="gtol must be 0 or more"):
        model.fit(gtol=-1e-6)
    with pytest.raises(ValueError, match=r"subset has 5 values; a boolean subset takes one per row .* \(300\)"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, subset=np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="grouping column named 'Residual'"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|Residual/j)", data.rename(columns={"k": "Residual"}))
    with pytest.raises(ValueError, match=r"column 'yield' .* is a Python keyword.*Q\('yield'\)"):
        sms.MultilevelSEM.from_formula("y ~ yield + (1|k/j)", data.rename(columns={"x": "yield"}))
    res = model.fit()
    with pytest.raises(ValueError, match=r"cannot read the constraint 'nope = 0'.*\['Intercept', 'x'\]"):
        res.wald_test("nope = 0", scalar=True)
    assert res.wald_test("x = 0", scalar=True).statistic > 0


def test_nullable_dtypes_fit_as_their_numpy_equivalents(data):
    reference = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.drop(index=3)).fit()
    outcome = data.assign(y=data["y"].astype("Float64"))
    outcome.loc[3, "y"] = pd.NA
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", outcome)
    assert model.row_accounting.dropped == {"missing outcome y": 1}
    assert model.fit().llf == pytest.approx(reference.llf, rel=1e-12)
    counts = data.assign(z=(data.index % 5).astype("Int64"))
    counts.loc[4, "z"] = pd.NA
    assert sms.MultilevelSEM.from_formula("y ~ x + z + (1|k/j)", counts).row_accounting.dropped == {
        "missing covariate z": 1}
    flags = data.assign(z=data.index % 2 == 0)
    nullable = flags.astype({"z": "boolean"})
    assert sms.MultilevelSEM.from_formula("y ~ x + z + (1|k/j)", nullable).fit().llf == pytest.approx(
        sms.MultilevelSEM.from_formula("y ~ x + z + (1|k/j)", flags).fit().llf, rel=1e-12)
    nullable.loc[5, "z"] = pd.NA
    assert sms.MultilevelSEM.from_formula("y ~ x + z + (1|k/j)", nullable).row_accounting.n_used == 299


def test_multiindex_columns_and_design_options_are_named(data):
    wide = data.copy()
    wide.columns = pd.MultiIndex.from_tuples([(c, "") for c in data.columns])
    with pytest.raises(ValueError, match="data has MultiIndex columns"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", wide)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, weights=np.ones(len(data)))
    with pytest.raises(ValueError, match=r"strata has shape \(5,\)"):
        model.fit(cov_type="survey", cov_kwds={"strata": np.ones(5)})


@pytest.mark.parametrize("scale", [1e11, 1e12, 1e-9])
def test_badly_scaled_covariates_fit_as_the_exact_rescaling(data, scale):
    reference = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(x=data["x"] * scale)).fit()
    assert res.llf == pytest.approx(reference.llf, rel=1e-12)
    assert res.params["x"] * scale == pytest.approx(reference.params["x"], rel=1e-10)
    assert res.bse["x"] * scale == pytest.approx(reference.bse["x"], rel=1e-8)
    with pytest.raises(ValueError, match=r"collinear: \['z'\]"):  # a dependence is still one at any scale
        sms.MultilevelSEM.from_formula("y ~ x + z + (1|k/j)", data.assign(x=data["x"] * scale, z=data["x"] * 3))
