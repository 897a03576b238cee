"""Score tests of fixed effects freed by groups, from the fit's cross products (no relaxed design).

Checked against a dense ``Sigma_k`` per cluster and against the score test of the relaxed model,
which builds the split columns and differentiates its likelihood.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from dense_reference import dense_covariances

import sm_multisem as sms
from sm_multisem.inference.fixed_scores import fixed_effect_score_test
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
    np.testing.assert_allclose(model.likelihood.cross_products(variances, split, split), expected_split,
                               rtol=1e-10, atol=1e-10 * np.abs(expected_split).max())
    np.testing.assert_allclose(model.likelihood.cross_products(variances, split, exog), expected_cross,
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
    with pytest.raises(InformationNotPositiveDefinite, match="Intercept by group are collinear"):
        fixed_effect_score_test(res, "Intercept", codes, list(names))
