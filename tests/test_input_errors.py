"""Bad input is refused with a message naming what is wrong; missing rows are counted."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from sm_multisem import FormulaError, MultilevelSEM, parse_formula


@pytest.fixture
def data():
    return sms.simulate_nested((8, 3, 2), sd=(1, 1, 1), seed=1)


def _fit_params(formula, frame):
    return MultilevelSEM.from_formula(formula, frame).fit().params


# --------------------------------------------------------------------------- formula text


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (1|)", r"random term '\(1\|\)' has no grouping factor after '\|'"),
        ("y ~ x + (|k)", r"random term '\(\|k\)' has nothing before '\|' \(write \(1\|k\)"),
        ("y ~ x + ( |k)", r"random term '\( \|k\)' has nothing before '\|'"),
        ("y ~ x + (1|k/)", r"random term '\(1\|k/\)' has an empty grouping factor in 'k/'"),
        ("y ~ x + (1|/k)", r"random term '\(1\|/k\)' has an empty grouping factor in '/k'"),
        ("y ~ x + (1|k//j)", r"random term '\(1\|k//j\)' has an empty grouping factor in 'k//j'"),
        ("y ~ x + (1|k:)", r"random term '\(1\|k:\)' has an empty grouping factor in 'k:'"),
        ("y ~ x + (1||k|j)", r"random term '\(1\|\|k\|j\)' has more than one '\|'"),
        ("y ~ x + (1|k|j)", r"random term '\(1\|k\|j\)' has more than one '\|'"),
        ("y ~ x + (1|k j)", r"grouping factor 'k j' in random term '\(1\|k j\)' is not a column name"),
        ("y ~ x + (1|k-j)", r"grouping factor 'k-j' in random term '\(1\|k-j\)' is not a column name"),
        ("y ~ x + (1|2k)", r"grouping factor '2k' in random term '\(1\|2k\)' is not a column name"),
        ("y ~ x + (1|(k))", r"grouping factor '\(k\)' in random term '\(1\|\(k\)\)' is not a column name"),
    ],
)
def test_malformed_random_term(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (0|k)", r"random term '\(0\|k\)' asks for no random effect \('0'\); write \(1\|k\)"),
        ("y ~ x + (1 + 1|k)", r"random term '\(1 \+ 1\|k\)' repeats the intercept"),
        ("y ~ x + (1 + x - z|k)", r"random term '\(1 \+ x - z\|k\)' subtracts 'z'; only the intercept can be removed"),
        ("y ~ x + (1 + x + x|k)", r"random term '\(1 \+ x \+ x\|k\)' names 'x' twice"),
        ("y ~ x + (1 + |k)", r"random term '\(1 \+ \|k\)' has an empty term in '1 \+'"),
    ],
)
def test_unsupported_random_effects_refused(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


def _pointer_of(message):
    """The formula line and the caret line that end a FormulaError message."""
    text_line, caret_line = message.splitlines()[-2:]
    return text_line.removeprefix("    "), caret_line.removeprefix("    ")


@pytest.mark.parametrize(
    "formula, message, start, width",
    [
        ("y ~ x + (1|k", r"unmatched '\(' in formula", 8, 1),
        ("y ~ (x + (1|k)", r"unmatched '\(' in formula", 4, 1),
        ("y ~ x) + (1|k)", r"unmatched '\)' in formula", 5, 1),
        ("y ~ x - (1|k)", r"random term '\(1\|k\)' cannot be subtracted", 8, 5),
        ("y ~ x + (1 + x - z|k)", r"subtracts 'z'", 8, 13),
        ("y ~ x + (1|k/)", r"empty grouping factor", 11, 2),
        ("y ~ x + (1| k//j)", r"empty grouping factor", 12, 4),
        ("y ~ x * (1|k)", r"expected '\+' before the random term '\(1\|k\)'", 8, 5),
        ("y ~ x + (1|k)(1|j)", r"expected '\+' before the random term '\(1\|j\)'", 13, 5),
        ("y ~ x + (1|k) z", r"expected '\+' after the random term '\(1\|k\)'", 8, 5),
        ("y ~ x + (1|k) +", r"formula ends with '\+'", 14, 1),
        ("y ~ x + 1|k", r"'\|' outside parentheses; write a random term in parentheses, e.g. \(1\|k\)", 9, 1),
        ("y ~ x + ((1|k))", r"random term '\(1\|k\)' must not be inside parentheses", 9, 5),
        ("y ~ (x + (1|k))", r"random term '\(1\|k\)' must not be inside parentheses", 9, 5),
        ('y ~ x + "(1|k)', r"unterminated string in formula", 8, 1),
        ("~ x + (1|k)", r"formula has no outcome before '~'", 0, 1),
    ],
)
def test_caret_points_at_the_problem(formula, message, start, width):
    with pytest.raises(FormulaError, match=message) as info:
        parse_formula(formula)
    text_line, caret_line = _pointer_of(str(info.value))
    assert text_line == formula
    assert caret_line == " " * start + "^" * width


def test_unbalanced_parenthesis_message_in_full():
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ x + (1|k")
    assert str(info.value) == "unmatched '(' in formula:\n    y ~ x + (1|k\n            ^"


@pytest.mark.parametrize("formula", ["y x + (1|k)", "y ~ x ~ z + (1|k)", ""])
def test_formula_needs_one_tilde(formula):
    with pytest.raises(FormulaError, match=r"formula must contain exactly one '~': " + re.escape(repr(formula))):
        parse_formula(formula)


@pytest.mark.parametrize("formula", ["y ~ x", "y ~ x + z", "y ~ I(a | b)"])
def test_formula_without_random_term(formula):
    with pytest.raises(FormulaError, match=re.escape(f"formula {formula!r} has no random-effects term such as (1|k)")):
        parse_formula(formula)


@pytest.mark.parametrize(
    "formula, factor, term",
    [("y ~ x + (1|k/k)", "k", "(1|k/k)"), ("y ~ x + (1|k:k)", "k", "(1|k:k)"), ("y ~ x + (1|k/j/k)", "k", "(1|k/j/k)")],
)
def test_repeated_column_in_one_term(formula, factor, term):
    message = re.escape(f"grouping factor {factor!r} appears twice in random term {term!r}")
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


def test_formula_errors_surface_through_from_formula(data):
    with pytest.raises(FormulaError, match=r"random term '\(0 - x\|k\)'"):
        MultilevelSEM.from_formula("y ~ x + (0 - x|k)", data)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (1 + X|k)", r"'X' in '1 \+ X' is neither a column of the data nor a defined name; did you mean "
                              r"'x'\?"),
        ("y ~ x + (1 + x|k) + (1|k)", r"the random intercept of k is written twice, in \(1 \+ x\|k\) and \(1\|k\)"),
        ("y ~ x + (1 + x|k) + (0 + x|k)", r"the random slope of 'x' of k is written twice"),
        ("y ~ x + (0 + Intercept|k)", r"hold a column named 'Intercept', the name of the random intercept's column"),
    ],
)
def test_random_effects_that_the_data_cannot_give(data, formula, message):
    with pytest.raises(ValueError, match=message):
        MultilevelSEM.from_formula(formula, data.assign(Intercept=data["x"]))


# ---------------------------------------------------------------------- formula vs data


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (1|K/j)", r"grouping factor 'K' is not a column of the data; did you mean 'k'\?"),
        ("y ~ x + (1|k/J)", r"grouping factor 'J' is not a column of the data; did you mean 'j'\?"),
        ("y ~ x + (1|school)", r"grouping factor 'school' is not a column of the data\Z"),
        ("Y ~ x + (1|k/j)", r"outcome 'Y' is not a column of the data; did you mean 'y'\?"),
        ("y ~ X + (1|k/j)", r"'X' in 'y ~ X' is neither a column of the data nor a defined name; did you mean 'x'\?"),
        ("y ~ np.log(X) + (1|k/j)", r"'X' in 'y ~ np.log\(X\)' is neither a column of the data .*did you mean 'x'\?"),
        ("y ~ x + z + (1|k/j)", r"'z' in 'y ~ x \+ z' is neither a column of the data nor a defined name\Z"),
    ],
)
def test_unknown_column(data, formula, message):
    with pytest.raises(ValueError, match=message):
        MultilevelSEM.from_formula(formula, data)


def test_crossed_terms_refused_with_nested_suggestion(data):
    # j = 1, 2, 3 inside every k: as separate terms the factors are crossed
    message = (
        r"random terms \(1\|k\) \+ \(1\|j\) are crossed, not nested: some units of 'j' belong to more "
        r"than one unit of 'k'; if 'j' ids are reused inside each 'k', write \(1\|k/j\)"
    )
    with pytest.raises(ValueError, match=message):
        MultilevelSEM.from_formula("y ~ x + (1|k) + (1|j)", data)


def test_crossed_design_refused_without_suggesting_a_nesting():
    """lme4's Penicillin layout: every sample on every plate, one row each; nesting would confound
    var(plate:sample) with the residual variance, so the message does not propose it."""
    rng = np.random.default_rng(3)
    plates, samples = np.meshgrid(np.arange(24), np.arange(6), indexing="ij")
    frame = pd.DataFrame({"plate": plates.ravel(), "sample": samples.ravel()})
    frame["diameter"] = 22 + rng.normal(size=24)[frame["plate"]] + rng.normal(size=6)[frame["sample"]] + rng.normal(
        size=len(frame))
    with pytest.raises(ValueError, match=r"every combination of them holds a single row, a crossed design \(lme4 fits "
                                         r"it as \(1\|plate\) \+ \(1\|sample\)\)") as info:
        MultilevelSEM.from_formula("diameter ~ 1 + (1|plate) + (1|sample)", frame)
    assert "/" not in str(info.value)


def test_crossed_multi_column_factors_refused(data):
    frame = data.assign(m=np.arange(len(data)) % 5)
    with pytest.raises(ValueError, match=r"are crossed, not nested: some units of 'k:m' belong to more than one unit"):
        MultilevelSEM.from_formula("y ~ x + (1|k:j) + (1|k:m)", frame)


def test_separate_terms_with_unique_nested_ids_equal_slash(data):
    unique = data.assign(j=data["k"] * 100 + data["j"])
    separate = MultilevelSEM.from_formula("y ~ x + (1|k) + (1|j)", unique)
    assert separate.layout.levels == (("k",), ("j",))
    np.testing.assert_allclose(separate.fit().params, _fit_params("y ~ x + (1|k/j)", data), rtol=0, atol=1e-10)
    # written in either order, the data decide which factor is the top level
    reversed_order = MultilevelSEM.from_formula("y ~ x + (1|j) + (1|k)", unique)
    assert reversed_order.layout.levels == (("k",), ("j",))


def test_reused_level2_ids_are_nested(data):
    # j runs 1..3 in every k, as lme4 reads k/j: 24 units, not 3
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    assert model.layout.n_units == (8, 24)
    unique = data.assign(j=data["k"] * 10 + data["j"])
    base = _fit_params("y ~ x + (1|k/j)", data)
    np.testing.assert_allclose(_fit_params("y ~ x + (1|k/j)", unique), base, rtol=0, atol=1e-10)
    np.testing.assert_allclose(_fit_params("y ~ x + (1|k) + (1|k:j)", data), base, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (1|k) + (1|k)", r"grouping factor 'k' appears twice in \(1\|k\) \+ \(1\|k\)"),
        ("y ~ x + (1|k/j) + (1|k)", r"grouping factor 'k' appears twice in \(1\|k/j\) \+ \(1\|k\)"),
        ("y ~ x + (1|k) + (1|k:j) + (1|j:k)", r"grouping factor 'j:k' appears twice \(as 'k:j'\) in"),
    ],
)
def test_repeated_grouping_factor(data, formula, message):
    with pytest.raises(ValueError, match=message):
        MultilevelSEM.from_formula(formula, data)


def test_non_numeric_outcome(data):
    frame = data.assign(y=data["y"].round(2).astype(str))
    with pytest.raises(ValueError, match=r"outcome 'y' is not numeric \(dtype"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", frame)


def test_outcome_giving_several_columns(data):
    frame = data.assign(g=np.where(data["x"] > 0.5, "a", "b"))
    with pytest.raises(ValueError, match=r"outcome 'C\(g\)' gives 2 columns .*the outcome must be one numeric column"):
        MultilevelSEM.from_formula("C(g) ~ x + (1|k/j)", frame)
    with pytest.raises(ValueError, match=r"outcome 'y' gives 2 columns \(y\[False\], y\[True\]\)"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(y=data["y"] > 0))


@pytest.mark.parametrize("column, value", [("y", np.inf), ("y", -np.inf), ("x", np.inf), ("x", -np.inf),
                                           ("k", np.inf), ("j", -np.inf)])
def test_infinite_values(data, column, value):
    frame = data.astype({"k": float, "j": float})
    frame.index = frame.index + 100
    frame.loc[105, column] = value
    with pytest.raises(ValueError, match=rf"column '{column}' has 1 infinite value\(s\) \(first in row 105\)"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", frame)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_infinite_value_from_a_transform(data):
    frame = data.copy()
    frame.loc[4, "x"] = 0.0
    with pytest.raises(ValueError, match=r"column 'np.log\(x\)' has 1 infinite value\(s\) \(first in row 4\)"):
        MultilevelSEM.from_formula("y ~ np.log(x) + (1|k/j)", frame)


def test_empty_data(data):
    with pytest.raises(ValueError, match=r"data has no rows"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.iloc[:0])
    with pytest.raises(ValueError, match=r"data has no rows"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", pd.DataFrame())


def test_no_complete_row(data):
    with pytest.raises(ValueError, match=r"no row of the data has the outcome, covariates and ids all present "
                                         r"\(\{'missing outcome y': 48\}\)"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.assign(y=np.nan))


def test_data_must_be_a_dataframe(data):
    with pytest.raises(TypeError, match=r"data must be a pandas DataFrame, got dict"):
        MultilevelSEM.from_formula("y ~ x + (1|k/j)", data.to_dict("list"))


@pytest.mark.parametrize(
    "make, formula, named",
    [
        (lambda d: d.assign(x2=2 * d["x"] - 1), "y ~ x + x2 + (1|k/j)", "x2"),
        (lambda d: d.assign(c=3.0), "y ~ x + c + (1|k/j)", "c"),
        (lambda d: d.assign(z=0.0), "y ~ z + x + (1|k/j)", "z"),
        (lambda d: d.assign(t=np.where(d["x"] > 0.5, "a", "b"), s=(d["x"] > 0.5) * 1.0), "y ~ C(t) + s + (1|k/j)", "s"),
    ],
)
def test_collinear_covariates(data, make, formula, named):
    with pytest.raises(ValueError, match=rf"the fixed-effect columns are collinear: \['{named}'\] is a linear"):
        MultilevelSEM.from_formula(formula, make(data))


# ------------------------------------------------------------------- array constructor


def _arrays(data):
    exog = np.column_stack([np.ones(len(data)), data["x"]])
    return data["y"].to_numpy(), exog, data["k"].to_numpy(), data["j"].to_numpy()


def test_arrays_fit_as_formula(data):
    y, X, k, j = _arrays(data)
    res = MultilevelSEM(y, X, [k, j], group_names=["k", "j"]).fit()
    assert list(res.params.index) == ["x1", "x2", "var(k)", "var(k:j)", "var(Residual)"]
    np.testing.assert_allclose(res.params.to_numpy(), _fit_params("y ~ x + (1|k/j)", data).to_numpy(), atol=1e-10)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda y, X, k, j: (y, X[:-1], [k, j]), r"exog has 47 rows but endog has 48"),
        (lambda y, X, k, j: (y[:-1], X, [k, j]), r"exog has 48 rows but endog has 47"),
        (lambda y, X, k, j: (y, X, [k, j[:-1]]), r"id array 'group1' in groups has 47 rows but endog has 48"),
        (lambda y, X, k, j: (y, X, [k[:-2], j]), r"id array 'group0' in groups has 46 rows but endog has 48"),
        (lambda y, X, k, j: (y, X, [pd.Series(k, name="k"), pd.Series(j[:-1], name="j")]),
         r"id array 'j' in groups has 47 rows but endog has 48"),
        (lambda y, X, k, j: (y, X, pd.DataFrame({"k": k[:-1], "j": j[:-1]})), r"groups has 47 rows but endog has 48"),
        (lambda y, X, k, j: (np.column_stack([y, y]), X, [k, j]),
         r"endog must be one-dimensional, got shape \(48, 2\)"),
        (lambda y, X, k, j: (y, X, [k, np.column_stack([j, j])]),
         r"id array 'group1' in groups must be one-dimensional, got shape \(48, 2\)"),
        (lambda y, X, k, j: (y, X, []), r"groups is empty; give one id array per grouping level"),
        (lambda y, X, k, j: (y.astype(str), X, [k, j]), r"endog is not numeric"),
        (lambda y, X, k, j: (y, pd.DataFrame({"const": 1.0, "t": np.where(X[:, 1] > 0.5, "a", "b")}), [k, j]),
         r"exog column 't' is not numeric"),
        (lambda y, X, k, j: (y, np.column_stack([X, 2 * X[:, 1]]), [k, j]),
         r"the fixed-effect columns are collinear: \['x3'\]"),
        (lambda y, X, k, j: (np.where(np.arange(48) == 7, np.inf, y), X, [k, j]),
         r"column 'y' has 1 infinite value\(s\) \(first in row 7\)"),
        (lambda y, X, k, j: (np.full(48, np.nan), X, [k, j]),
         r"no row has the outcome, covariates and ids all present"),
    ],
)
def test_array_constructor_errors(data, build, message):
    with pytest.raises(ValueError, match=message):
        MultilevelSEM(*build(*_arrays(data)))


@pytest.mark.parametrize(
    "groups, names, message",
    [
        ("list", ["k"], r"group_names has 1 name\(s\) for 2 id array\(s\) in groups"),
        ("list", ["k", "j", "i"], r"group_names has 3 name\(s\) for 2 id array\(s\) in groups"),
        ("frame", ["k"], r"group_names has 1 name\(s\) for 2 id column\(s\) in groups"),
        ("list", ["k", "k"], r"grouping level name\(s\) \['k'\] appear more than once"),
    ],
)
def test_array_group_names_errors(data, groups, names, message):
    y, X, k, j = _arrays(data)
    ids = [k, j] if groups == "list" else data[["k", "j"]]
    with pytest.raises(ValueError, match=message):
        MultilevelSEM(y, X, ids, group_names=names)


def test_array_groups_with_the_same_name(data):
    y, X, *_ = _arrays(data)
    with pytest.raises(ValueError, match=r"grouping level name\(s\) \['k'\] appear more than once"):
        MultilevelSEM(y, X, [data["k"], data["k"]])


def test_array_single_series_keeps_its_name(data):
    y, X, *_ = _arrays(data)
    assert MultilevelSEM(y, X, data["k"]).param_names == ["x1", "x2", "var(k)", "var(Residual)"]


def test_array_rows_with_missing_values_counted(data):
    y, X, k, j = _arrays(data)
    y, X, k = y.copy(), X.copy(), k.astype(float)
    y[[0, 1]] = np.nan
    X[2, 1] = np.nan
    k[[1, 3]] = np.nan
    model = MultilevelSEM(y, X, [k, j], group_names=["k", "j"])
    accounting = model.row_accounting
    assert accounting.n_input == 48 and accounting.n_used == 44
    assert accounting.dropped == {"missing outcome y": 2, "missing covariate x2": 1, "missing id k": 1}


# ------------------------------------------------------------------ missing rows counted


def test_missing_rows_dropped_and_counted(data):
    frame = data.astype({"k": float, "j": float})
    frame.loc[[0, 7], "y"] = np.nan
    frame.loc[[1, 2, 3], "x"] = np.nan
    frame.loc[4, "k"] = np.nan
    frame.loc[5, "j"] = np.nan
    frame.loc[6, ["y", "x", "k", "j"]] = np.nan  # counted once, under the outcome
    frame.loc[8, ["x", "j"]] = np.nan  # counted once, under the covariate
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", frame)
    accounting = model.row_accounting
    assert accounting.n_input == 48
    assert accounting.n_used == 39
    assert accounting.n_dropped == 9
    assert accounting.dropped == {
        "missing outcome y": 3, "missing covariate x": 4, "missing id k": 1, "missing id j": 1
    }
    line = (
        "39 of 48 rows used; dropped 9 "
        "(missing outcome y: 3, missing covariate x: 4, missing id k: 1, missing id j: 1)"
    )
    assert accounting.describe() == line
    assert model.nobs_long == 39
    dropped_labels = {0, 1, 2, 3, 4, 5, 6, 7, 8}
    assert list(model.model_data.row_labels) == [r for r in frame.index if r not in dropped_labels]
    summary = " ".join(str(model.fit().summary()).split())  # the summary wraps long lines
    assert f"Rows: {line}." in summary


def test_no_rows_dropped(data):
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    assert model.row_accounting.dropped == {}
    assert model.row_accounting.describe() == "48 of 48 rows used"
    assert "Rows: 48 of 48 rows used." in str(model.fit().summary())


def test_missing_ids_of_every_kind_counted(data):
    strings = data.assign(k="c" + data["k"].astype(str))
    strings.loc[3, "k"] = None
    categories = data.assign(j=pd.Categorical(data["j"]))
    categories.loc[[3, 9], "j"] = np.nan
    assert MultilevelSEM.from_formula("y ~ x + (1|k/j)", strings).row_accounting.dropped == {"missing id k": 1}
    assert MultilevelSEM.from_formula("y ~ x + (1|k/j)", categories).row_accounting.dropped == {"missing id j": 2}


def test_dropped_rows_fit_as_the_rows_left(data):
    frame = data.copy()
    frame.loc[[2, 11, 30], "x"] = np.nan
    np.testing.assert_allclose(
        _fit_params("y ~ x + (1|k/j)", frame), _fit_params("y ~ x + (1|k/j)", frame.dropna()), rtol=0, atol=1e-12
    )


# ------------------------------------------------------------------ ids of any kind


def test_id_types_give_identical_fits():
    data = sms.simulate_nested((12, 3, 2), sd=(1, 1, 1), seed=3, drop_fraction=0.15)
    base = _fit_params("y ~ x + (1|k/j)", data)
    as_strings = data.assign(k="k" + data["k"].astype(str), j="j" + data["j"].astype(str))  # "k10" sorts before "k2"
    as_categories = data.assign(
        k=pd.Categorical(data["k"], categories=sorted(data["k"].unique(), reverse=True)), j=pd.Categorical(data["j"])
    )
    as_objects = data.assign(k=data["k"].map(lambda v: f"cluster {v}").astype(object))
    for frame in (as_strings, as_categories, as_objects):
        params = _fit_params("y ~ x + (1|k/j)", frame)
        assert list(params.index) == list(base.index)
        np.testing.assert_allclose(params.to_numpy(), base.to_numpy(), rtol=0, atol=1e-10)


def test_row_order_and_index_do_not_matter(data):
    base = _fit_params("y ~ x + (1|k/j)", data)
    shuffled = data.sample(frac=1, random_state=0)
    relabelled = data.set_axis([f"r{i}" for i in range(len(data))])
    repeated = data.set_axis(list(range(24)) * 2)  # index labels that repeat
    for frame in (shuffled, relabelled, repeated):
        np.testing.assert_allclose(_fit_params("y ~ x + (1|k/j)", frame), base, rtol=0, atol=1e-10)
    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", repeated)
    assert model.row_accounting.n_used == 48


def test_article_data_string_ids():
    data = sms.simulate_article_data(n_clusters=20, seed=7)
    named = data.assign(k=data["k"].map({v: f"school-{v}" for v in data["k"].unique()}))
    np.testing.assert_allclose(
        _fit_params("y ~ x + (1|k/j)", named), _fit_params("y ~ x + (1|k/j)", data), rtol=0, atol=1e-10
    )


# ----------------------------------------------------------------------- no mutation


def test_data_not_mutated():
    data = sms.simulate_nested((10, 3, 2), sd=(1, 1, 1), seed=9)
    data = data.assign(
        k="c" + data["k"].astype(str), j=pd.Categorical(data["j"]), t=np.where(data["x"] > 0.5, "a", "b")
    )
    data.loc[[1, 5], "y"] = np.nan
    data.loc[8, "x"] = np.nan
    data.index = data.index * 3 + 1
    before = data.copy(deep=True)
    model = MultilevelSEM.from_formula("y ~ x + C(t) + (1|k/j)", data)
    res = model.fit()
    model.fit(reml=True)
    model.wide_data()
    res.predict(level="k:j"), res.random_effects, res.summary(), res.compare_mixedlm()
    model.relax_residuals(by="t").relax_slope("x", by="t").fit(cov_type="robust")
    MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, subset=data["x"] > 0.2).fit()
    pd.testing.assert_frame_equal(data, before)
    assert list(data.columns) == list(before.columns)
    assert data.index.equals(before.index)


def test_outcome_fitted_exactly_by_the_units_is_refused():
    data = pd.DataFrame({"k": [1, 1, 1], "j": [2, 1, 1], "x": [-0.418837, -0.093111, -1.362111],
                         "y": [-0.711929, 1.925224, 1.192250]})
    with pytest.raises(ValueError, match=r"residual variance is not identified: inside the units of k:j .* "
                                         r"no maximum; remove the \(1\|k:j\) term"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)


def test_single_child_levels_warn_which_variances_are_confounded():
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    one_row = sms.simulate_nested((10, 3, 1), sd=(1, 1, 1), seed=1)
    with pytest.warns(ConvergenceWarning, match=r"every unit of k:j holds a single observation: var\(k:j\) and "
                                                 r"var\(Residual\)"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", one_row)
    one_school = sms.simulate_nested((10, 1, 4), sd=(1, 1, 1), seed=1)
    with pytest.warns(ConvergenceWarning, match=r"every unit of k holds a single k:j unit: var\(k\) and var\(k:j\)"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", one_school)


def test_single_top_level_cluster_warns():
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    one = sms.simulate_article_data(n_clusters=1, seed=3)
    with pytest.warns(ConvergenceWarning, match=r"var\(k\) is not identified: the data hold a single k cluster, so "
                                                 r"var\(k\) cannot be told apart from the intercept .* Remove the "
                                                 r"\(1\|k\) term\.$"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", one)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sms.MultilevelSEM.from_formula("y ~ x + (1|k:j)", one).nobs == 2  # the levels below it fit


def test_level_absorbed_by_fixed_effects_warns():
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    data = sms.simulate_article_data(n_clusters=4, seed=3)
    with pytest.warns(ConvergenceWarning, match=r"var\(k\) is not identified: the fixed effects give each of the 4 "
                                                 r"units of k its own mean.* or those fixed effects\.$"):
        sms.MultilevelSEM.from_formula("y ~ x + C(k) + (1|k/j)", data)
    # the same indicators without the intercept: still a mean per unit
    with pytest.warns(ConvergenceWarning, match=r"var\(k\) is not identified"):
        sms.MultilevelSEM.from_formula("y ~ 0 + C(k) + x + (1|k/j)", data)
    # fixed effects for the top level leave the level below identified
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sms.MultilevelSEM.from_formula("y ~ x + C(k) + (1|k:j)", data)
