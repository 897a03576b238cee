"""Score tests of a fixed effect or a variance freed by groups, from the fit alone (no relaxed model).

Checked against a dense ``Sigma_k`` per cluster and against the score test of the relaxed model,
which builds the split columns or the variances by label and differentiates its likelihood.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from dense_reference import dense_covariances

import sm_multisem as sms
from sm_multisem.inference.family_scores import correlation_score_test, fixed_effect_score_test, variance_score_test
from sm_multisem.inference.hypothesis import InformationNotPositiveDefinite, score_test


def labelled(seed: int) -> pd.DataFrame:
    """Ragged districts with a label of the rows (four groups, two roles) and of the schools (two types)."""
    data = sms.simulate_districts(1500, seed)
    rng = np.random.default_rng(seed)
    data["group"] = rng.choice(["a", "b", "c", "d"], size=len(data))
    data["role"] = rng.choice(["r", "s"], size=len(data))
    school = data.groupby(["k", "j"]).ngroup().to_numpy()
    data["type"] = rng.choice(["pub", "prv"], size=school.max() + 1)[school]
    return data


MODELS = {
    "standard": lambda m: m,
    "var(Residual) by role": lambda m: m.relax_residuals(by="role"),
    "var(k:j) by type": lambda m: m.relax_variance("k:j", by="type"),
    "exchangeable within j": lambda m: sms.MultilevelSEM.from_formula(
        "y ~ x + (1|k)", m._recipe["frame"]).relax_residuals(structure="exchangeable", within="j"),
}


@pytest.mark.parametrize("name", ["standard", "var(Residual) by role", "var(k:j) by type"])
def test_cross_products_equal_dense_sigma(name):
    model = MODELS[name](sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", labelled(1)))
    params = np.asarray(model.fit().params)
    _, variances = model.plan.split(params)
    layout = model.layout
    exog = layout.sort_rows(model.model_data.exog)
    codes = np.random.default_rng(2).integers(0, 5, layout.n_rows)
    split = sp.csr_matrix((exog[:, 1], (np.arange(layout.n_rows), codes)), shape=(layout.n_rows, 5))
    dense_split = split.toarray()
    expected_split, expected_cross = 0.0, 0.0
    for rows, sigma in dense_covariances(model, params):
        expected_split = expected_split + dense_split[rows].T @ np.linalg.solve(sigma, dense_split[rows])
        expected_cross = expected_cross + dense_split[rows].T @ np.linalg.solve(sigma, exog[rows])
    np.testing.assert_allclose(model.likelihood.precision(variances).cross(split, split), expected_split,
                               rtol=1e-10, atol=1e-10 * np.abs(expected_split).max())
    np.testing.assert_allclose(model.likelihood.precision(variances).cross(split, exog), expected_cross,
                               rtol=1e-10, atol=1e-10 * np.abs(expected_cross).max())


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("column", ["x", "Intercept"])
def test_equals_the_score_test_of_the_relaxed_model(name, column):
    data = labelled(3)
    model = MODELS[name](sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data))
    res = model.fit()
    used = np.flatnonzero(model.model_data.rows_used)
    group = data["group"].to_numpy()[used][model.layout.order]
    names, codes = np.unique(group, return_inverse=True)
    shortcut = fixed_effect_score_test(res, column, codes, list(names))
    relaxed = (model.relax_slope("x", by="group") if column == "x" else model.relax_intercept(by="group"))
    direct = score_test(res, relaxed)
    assert shortcut.df == direct.df == 3
    assert shortcut.statistic == pytest.approx(direct.statistic, rel=1e-8)
    np.testing.assert_allclose(shortcut.table.loc[direct.table.index, ["chi2", "epc"]],
                               direct.table[["chi2", "epc"]], rtol=1e-8)


def test_weighted_clusters_equal_the_relaxed_model():
    data = labelled(4)
    weights = 1.0 + data.groupby("k").ngroup() % 3
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data, weights=weights.to_numpy())
    res = model.fit()
    used = np.flatnonzero(model.model_data.rows_used)
    names, codes = np.unique(data["group"].to_numpy()[used][model.layout.order], return_inverse=True)
    shortcut = fixed_effect_score_test(res, "x", codes, list(names))
    direct = score_test(res, model.relax_slope("x", by="group"))
    assert shortcut.statistic == pytest.approx(direct.statistic, rel=1e-8)


def test_groups_collinear_with_a_fixed_effect_are_refused():
    data = labelled(5)
    model = sms.MultilevelSEM.from_formula("y ~ x + C(type) + (1|k/j)", data)
    res = model.fit()
    names, codes = np.unique(model.layout.sort_rows(data["type"].to_numpy()), return_inverse=True)
    with pytest.raises(InformationNotPositiveDefinite, match="not identified apart from the others"):
        fixed_effect_score_test(res, "Intercept", codes, list(names))


# ------------------------------------------------------------------ variances
def _sorted_codes(model, values):
    """Codes of the values of the input rows, in the layout's sorted order, and their names."""
    used = np.flatnonzero(model.model_data.rows_used)
    names, codes = np.unique(np.asarray(values)[used][model.layout.order], return_inverse=True)
    return codes, [str(name) for name in names]


@pytest.mark.parametrize("formula, level, other", [
    ("y ~ x + (1|k/j)", "k:j", None),
    ("y ~ x + (1|k/j)", "k:j", "residuals by role"),
    ("y ~ x + (1|k/j)", "Residual", None),
    ("y ~ x + (1|k/j)", "Residual", "var(k:j) by type"),
    ("y ~ x + (1|k)", "Residual", None),
])
def test_variance_by_groups_equals_the_relaxed_model(formula, level, other):
    data = labelled(6)
    model = sms.MultilevelSEM.from_formula(formula, data)
    if other == "residuals by role":
        model = model.relax_residuals(by="role")
    elif other == "var(k:j) by type":
        model = model.relax_variance("k:j", by="type")
    res = model.fit()
    if level == "Residual":
        codes, names = _sorted_codes(model, data["group"])
        shortcut = variance_score_test(res, len(model.layout.levels), codes, names)
        direct = score_test(res, model.relax_residuals(by="group"))
    else:  # the schools grouped by district parity and type: a label of the units
        label = data["type"] + (data["k"] % 2).astype(str)
        codes, names = _sorted_codes(model, label)
        shortcut = variance_score_test(res, model.layout.level_names.index(level), codes, names)
        direct = score_test(res, model.relax_variance(level, by=label.rename("school label")))
    assert shortcut.df == direct.df
    # the relaxed model's information of its variances is a numerical Jacobian of their gradient
    assert shortcut.statistic == pytest.approx(direct.statistic, rel=1e-7)
    np.testing.assert_allclose(shortcut.table.loc[direct.table.index, ["chi2", "epc"]],
                               direct.table[["chi2", "epc"]], rtol=1e-7)


def test_variance_of_a_middle_level_and_weights_equal_the_relaxed_model():
    data = sms.simulate_nested((40, 3, 3, 3), sd=(1.0, 0.7, 0.5, 1.0), seed=8)
    weights = (1.0 + data.groupby("l1").ngroup() % 2).to_numpy()
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data, weights=weights)
    res = model.fit()
    label = (data["l2"] % 2).astype(str)
    codes, names = _sorted_codes(model, label)
    shortcut = variance_score_test(res, 1, codes, names)
    direct = score_test(res, model.relax_variance("l1:l2", by=label.rename("parity")))
    assert shortcut.statistic == pytest.approx(direct.statistic, rel=1e-7)


@pytest.mark.parametrize("formula", ["y ~ x + (1|k/j)", "y ~ x + (1|l1/l2/l3)"])
def test_precision_pieces_equal_dense_sigma(formula):
    """Every entry the variance tests sum: z_v'Kz_w between units of any two levels (rows included),
    z_v'Kz_v and Kr, against a dense inverse per cluster."""
    data = (sms.simulate_districts(600, 1) if "k/j" in formula
            else sms.simulate_nested((6, 3, 2, 3), sd=(1.0, 0.7, 0.5, 1.0), seed=3))
    model = sms.MultilevelSEM.from_formula(formula, data)
    params = np.asarray(model.fit().params)
    beta, variances = model.plan.split(params)
    precision = model.likelihood.precision(variances)
    layout = model.layout
    n_levels = len(layout.levels)
    units = [layout.unit_of_rows(level) for level in range(n_levels)] + [np.arange(layout.n_rows)]
    residual = layout.sort_rows(model.model_data.endog) - layout.sort_rows(model.model_data.exog) @ beta
    rng = np.random.default_rng(0)
    codes = [rng.integers(0, 3, n) for n in precision.sizes]
    kr = np.zeros(layout.n_rows)
    sums = np.zeros((n_levels + 1, n_levels + 1, 3, 3))
    diagonal = [np.zeros(n) for n in precision.sizes]
    for rows, sigma in dense_covariances(model, params):
        inverse = np.linalg.inv(sigma)
        kr[rows] = inverse @ residual[rows]
        indicators = []
        for level in range(n_levels + 1):
            ids = np.unique(units[level][rows])
            indicators.append((ids, (units[level][rows][:, None] == ids[None, :]).astype(float)))
        for a, (ids_a, z_a) in enumerate(indicators):
            diagonal[a][ids_a] = np.einsum("ru,rs,su->u", z_a, inverse, z_a)
            for b, (ids_b, z_b) in enumerate(indicators):
                sums[a, b] += np.eye(3)[codes[a][ids_a]].T @ (z_a.T @ inverse @ z_b) ** 2 @ np.eye(3)[codes[b][ids_b]]
    np.testing.assert_allclose(precision.apply(residual), kr, rtol=1e-9, atol=1e-12)
    for a in range(n_levels + 1):
        np.testing.assert_allclose(precision.diagonal(a), diagonal[a], rtol=1e-9)
        np.testing.assert_allclose(precision.quadratic(a, kr), np.bincount(units[a], kr), rtol=1e-9, atol=1e-12)
        for b in range(n_levels + 1):
            np.testing.assert_allclose(precision.squared_sums(a, codes[a], 3, b, codes[b], 3), sums[a, b], rtol=1e-9)


# ------------------------------------------------------------------ AR(1) at rho = 0
def _dense_correlation_test(model, params, times):
    """The score and expected information of [variances, rho] at rho = 0 from a dense Sigma_k, its derivative
    in rho ``sigma^2`` at the pairs of rows of a lowest unit one time apart."""
    beta, variances = model.plan.split(params)
    layout = model.layout
    lowest = layout.unit_of_rows(len(layout.levels) - 1)
    residual = layout.sort_rows(model.model_data.endog) - layout.sort_rows(model.model_data.exog) @ beta
    units = [layout.unit_of_rows(level) for level in range(len(layout.levels))]
    entries = sorted({int(e) for level in model.plan.unit_variance for e in np.unique(level)}
                     | {int(e) for e in np.unique(model.plan.row_variance)})
    n = len(entries) + 1
    score, info = np.zeros(n), np.zeros((n, n))
    for rows, sigma in dense_covariances(model, params):
        derivatives = []
        for entry in entries:
            d = np.diag((model.plan.row_variance[rows] == entry).astype(float))
            for level, which in enumerate(model.plan.unit_variance):
                u = units[level][rows]
                d = d + (which[u] == entry)[:, None] * (u[:, None] == u[None, :])
            derivatives.append(d)
        adjacent = (lowest[rows][:, None] == lowest[rows][None, :]) & (
            np.abs(times[rows][:, None] - times[rows][None, :]) == 1)
        derivatives.append(variances[model.plan.row_variance[rows]][:, None] * adjacent)
        inverse = np.linalg.inv(sigma)
        kr = inverse @ residual[rows]
        for a, da in enumerate(derivatives):
            score[a] += 0.5 * (kr @ da @ kr - np.trace(inverse @ da))
            for b, db in enumerate(derivatives):
                info[a, b] += 0.5 * np.trace(inverse @ da @ inverse @ db)
    return score, info


@pytest.mark.parametrize("formula, seed", [("y ~ x + (1|k/j)", 4), ("y ~ x + (1|k)", 5), ("y ~ x + (1|k/j)", 6)])
def test_correlation_test_equals_dense_sigma(formula, seed):
    data = labelled(seed)
    model = sms.MultilevelSEM.from_formula(formula, data)
    if seed == 6:
        model = model.relax_variance("k:j", by="type")
    params = np.asarray(model.fit().params)
    layout = model.layout
    rng = np.random.default_rng(seed)
    # times with gaps: a lag-one pair only where two occasions are one apart
    times = np.arange(layout.n_rows) + rng.integers(0, 2, layout.n_rows).cumsum()
    res = model.fit()
    shortcut = correlation_score_test(res, times)
    score, info = _dense_correlation_test(model, params, times)
    expected = score @ np.linalg.solve(info, score)
    assert shortcut.statistic == pytest.approx(expected, rel=1e-8)
    efficient = info[-1, -1] - info[-1, :-1] @ np.linalg.solve(info[:-1, :-1], info[:-1, -1])
    assert shortcut.table.loc["rho(Residual)", "epc"] == pytest.approx(score[-1] / efficient, rel=1e-8)
