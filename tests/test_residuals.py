"""Exchangeable residuals within a residual grouping (Stata residuals(exchangeable), nlme corCompSymm).

Reference: tests/reference/residual_nlme.R, nlme 3.1.162 by ML on tests/reference/residual_data.csv
(made by make_residual_data.py), all rows and with some occasions missing:
corCompSymm(form = ~ 1 | k/j) with a negative within-unit correlation, and exchangeable by a label
of the units as its equivalent random intercept pdDiag(~ 0 + type) with varIdent(~ 1 | type).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sem_reference import wide_sem_loglike

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
MODELS = {"exch": ("y_exch", None), "by": ("y_by", "type")}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "residual_data.csv")


def exchangeable(data, name, rows="balanced"):
    outcome, by = MODELS[name]
    used = data if rows == "balanced" else data[data["keep"]]
    model = sms.MultilevelSEM.from_formula(f"{outcome} ~ x + (1|k)", used)
    return model.relax_residuals(structure="exchangeable", within="j", by=by)


def dense_loglike(model, params, data):
    """Sum of multivariate normal log-densities with Sigma built from the ids alone:
    var(k) 1 1' + per unit (var - cov) I + cov 1 1' (per label of the unit with by=)."""
    p = dict(zip(model.param_names, params))
    labels = data["type"].to_numpy() if "var(Residual)[a]" in p else np.full(len(data), "")
    total = 0.0
    y = data[model.endog_names].to_numpy()
    for rows in data.groupby("k").indices.values():
        unit, label = data["j"].to_numpy()[rows], labels[rows]
        suffix = np.array([f"[{g}]" if g else "" for g in label])
        var = np.array([p[f"var(Residual){s}"] for s in suffix])
        cov = np.array([p[f"cov(Residual){s}"] for s in suffix])
        same = unit[:, None] == unit[None, :]
        sigma = p["var(k)"] + same * cov[:, None] + np.diag(var - cov)
        mean = p["Intercept"] + p["x"] * data["x"].to_numpy()[rows]
        total += stats.multivariate_normal(mean, sigma).logpdf(y[rows])
    return total


@pytest.mark.parametrize("rows", ["balanced", "unbalanced"])
@pytest.mark.parametrize("name", list(MODELS))
def test_matches_nlme(data, name, rows):
    ref = pd.read_csv(REFERENCE / "residual_nlme.csv")
    ref = ref[(ref["model"] == name) & (ref["rows"] == rows)].set_index("term")["estimate"]
    ref = ref.rename(index={"(Intercept)": "Intercept"})
    res = exchangeable(data, name, rows).fit()
    assert res.converged and res.nobs_long == ref["n_obs"]
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-8)
    expected = ref.drop(["logLik", "n_obs"])
    assert sorted(res.params.index) == sorted(expected.index)
    np.testing.assert_allclose(res.params[expected.index].to_numpy(), expected.to_numpy(), rtol=2e-6)


POINTS = {  # Intercept, x, var(k), then var(Residual) and cov(Residual) (by label: [a], [b], then covariances)
    "exch": ([0.8, 0.5, 0.5, 1.1, -0.3], [1.0, 0.4, 0.0, 0.9, 0.25]),
    "by": ([0.8, 0.5, 0.5, 1.2, 2.0, -0.3, 0.6], [1.0, 0.4, 0.1, 0.9, 1.5, 0.2, -0.4]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_likelihood_score_and_wide_table(data, name):
    model = exchangeable(data, name, "unbalanced")
    used = data[data["keep"]].reset_index(drop=True)
    wide, table = model.wide_data(), model.parameter_table
    for params in map(np.array, POINTS[name]):
        llf = model.loglike(params)
        assert llf == pytest.approx(dense_loglike(model, params, used), abs=1e-9)
        assert wide_sem_loglike(table, wide, dict(zip(model.plan.labels, params))) == pytest.approx(llf, abs=1e-10)
        for reml in (False, True):
            numeric = np.array([(model.loglike(params + 1e-6 * e, reml=reml) - model.loglike(params - 1e-6 * e, reml=reml))
                                / 2e-6 for e in np.eye(len(params))])
            np.testing.assert_allclose(model.score(params, reml=reml), numeric, rtol=1e-6,
                                       atol=1e-6 * np.abs(numeric).max())


def test_covariance_zero_is_the_model_with_independent_residuals(data):
    model = exchangeable(data, "exch")
    independent = sms.MultilevelSEM.from_formula("y_exch ~ x + (1|k)", data).fit()
    assert model.loglike(np.r_[independent.params.to_numpy(), 0.0]) == pytest.approx(independent.llf, abs=1e-9)
    assert model.fit().llf > independent.llf


def test_a_positive_covariance_is_the_random_intercept_of_the_unit():
    """Where the covariance comes out positive the fit is that of (1|k/j): cov(Residual) = var(k:j)."""
    data = sms.simulate_article_data(n_clusters=100, seed=1)
    nested = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k)", data).relax_residuals(structure="exchangeable",
                                                                                  within="j").fit()
    assert res.llf == pytest.approx(nested.llf, abs=1e-9)
    assert res.params["cov(Residual)"] == pytest.approx(nested.params["var(k:j)"], rel=1e-6)
    assert res.params["var(Residual)"] == pytest.approx(nested.params["var(k:j)"] + nested.params["var(Residual)"],
                                                        rel=1e-6)
    assert list(res.random_effects) == ["k"]
    np.testing.assert_allclose(res.random_effects["k"], nested.random_effects["k"], rtol=1e-5, atol=1e-8)


def test_the_wide_engine_and_the_exports(data):
    model = exchangeable(data, "by")
    res = model.fit()
    wide = model.as_wide(start_params=res.params)
    assert wide.loglike(wide.start_params) == pytest.approx(res.llf, abs=1e-9)
    table = model.parameter_table
    covariances = table[(table["op"] == "~~") & (table["lhs"] != table["rhs"]) & table["free"]]
    assert set(covariances["label"]) == {"C_e_a", "C_e_b"}
    assert len(covariances) == 4 * 6  # the pairs of 4 occasions of each of 4 units
    assert "y_by_a1_1 ~~ C_e_a*y_by_a1_2" in model.to_lavaan()
    assert "e.y_by_a1_1*e.y_by_a1_2@C_e_a" in model.to_stata()
    text = res.summary().as_text()
    assert "Residual: Exchangeable within k:j, by type" in text and "cov(Residual)[b]" in text
    assert "C_e_b" in res.summary(style="sem").as_text()


@pytest.mark.parametrize("formula, kwargs, message", [
    ("y_exch ~ x + (1|k/j)", {}, "confounded with its variance.*within='j'"),
    ("y_exch ~ x + (1|k/j)", {"within": "j"}, "confounded with its variance"),
    ("y_exch ~ x + (1|k)", {"within": "k"}, "marginal GLS model"),
    ("y_exch ~ x + (1|k)", {"within": "unit_id"}, "holds a single unit of k:unit_id"),
    ("y_exch ~ x + (1|k)", {"within": "row"}, "holds a single observation"),
    ("y_exch ~ x + (1|k)", {"within": "j", "by": "time"}, "not constant within the units of k:j"),
    ("y_exch ~ x + (1|k)", {"within": "nope"}, "must name a column"),
    ("y_exch ~ x + (1|k)", {"within": "j", "t": "time"}, "takes no t="),
])
def test_refusals(data, formula, kwargs, message):
    data = data.assign(unit_id=data["k"], row=np.arange(len(data)))
    model = sms.MultilevelSEM.from_formula(formula, data)
    with pytest.raises(ValueError, match=message):
        model.relax_residuals(structure="exchangeable", **kwargs)


def test_one_residual_structure_at_a_time(data):
    model = sms.MultilevelSEM.from_formula("y_exch ~ x + (1|k)", data)
    with pytest.raises(ValueError, match="already has a residual structure"):
        model.relax_residuals(by="type").relax_residuals(structure="exchangeable", within="j")
    with pytest.raises(ValueError, match="exchangeable already"):
        model.relax_residuals(structure="exchangeable", within="j").relax_residuals(by="type")
    with pytest.raises(ValueError, match="within= names the residual grouping"):
        model.relax_residuals(by="type", within="j")
    with pytest.raises(ValueError, match="var - cov > 0"):
        exchangeable(data, "exch").loglike(np.array([1.0, 0.5, 0.5, 1.0, -0.5]))


def unstructured(data, rows="balanced"):
    used = data if rows == "balanced" else data[data["keep"]]
    model = sms.MultilevelSEM.from_formula("y_un ~ x + (1|k)", used)
    return model.relax_residuals(structure="unstructured", t="time", within="j")


@pytest.mark.parametrize("rows", ["balanced", "unbalanced"])
def test_unstructured_matches_nlme(data, rows):
    """nlme corSymm(form = ~ time | k/j) + varIdent(form = ~ 1 | time), pinned down by nlme to about 2e-5."""
    ref = pd.read_csv(REFERENCE / "residual_nlme.csv")
    ref = ref[(ref["model"] == "un") & (ref["rows"] == rows)].set_index("term")["estimate"]
    ref = ref.rename(index={"(Intercept)": "Intercept"})
    res = unstructured(data, rows).fit()
    assert res.converged
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-5)
    expected = ref.drop(["logLik", "n_obs"])
    assert sorted(res.params.index) == sorted(expected.index)
    np.testing.assert_allclose(res.params[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-4)


def test_unstructured_table_score_and_the_exchangeable_point(data):
    model = unstructured(data, "unbalanced")
    table = model.parameter_table
    assert "y_un1_1 ~~ C_e_t1_t2*y_un1_2" in model.to_lavaan()
    assert "Residual: Unstructured within k:j along time" in model.fit().summary().as_text()
    rng = np.random.default_rng(3)
    params = model.start_params * (1 + 0.05 * rng.standard_normal(len(model.start_params)))
    values = dict(zip(model.plan.labels, params))
    wide = model.wide_data(fill_absent_covariates=True)
    assert wide_sem_loglike(table, wide, values) == pytest.approx(model.loglike(params), abs=1e-10)
    numeric = np.array([(model.loglike(params + 1e-6 * e) - model.loglike(params - 1e-6 * e)) / 2e-6
                        for e in np.eye(len(params))])
    np.testing.assert_allclose(model.score(params), numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
    # equal variances and equal covariances: the exchangeable model's likelihood
    blocks = exchangeable(data.assign(y_exch=data["y_un"]), "exch", "unbalanced")
    point = blocks.fit().params
    at = [point[name.split("[")[0]] if "Residual" in name else point[name] for name in model.param_names]
    assert model.loglike(np.array(at)) == pytest.approx(blocks.loglike(point.to_numpy()), abs=1e-9)


@pytest.mark.filterwarnings("ignore:var\\(k\\) is not identified")  # one cluster, in the second case
@pytest.mark.parametrize("change, message", [
    (lambda d: d, "confounded with its variance"),
    (lambda d: d[d["k"] <= 1], "cannot estimate a 4 x 4"),
    (lambda d: d[(d["time"] != 4) | ((d["k"] == 1) & (d["j"] == 1))], "time = 4 is observed in fewer than two"),
    (lambda d: d[~((d["time"] == 1) & (d["j"] <= 2)) & ~((d["time"] == 2) & (d["j"] > 2))],
     "time = 1 and 2 are never observed together"),
])
def test_unstructured_refusals(data, change, message):
    data = change(data)
    formula, within = ("y_un ~ x + (1|k/j)", None) if message.startswith("confounded") else ("y_un ~ x + (1|k)", "j")
    model = sms.MultilevelSEM.from_formula(formula, data)
    with pytest.raises(ValueError, match=message):
        model.relax_residuals(structure="unstructured", t="time", within=within)


def test_unstructured_by_a_label_refuses_what_one_label_cannot_identify(data):
    # occasion 4 only in one unit labelled b: identified overall, not for label b
    rows = (data["time"] != 4) | (data["type"] == "a") | ((data["k"] == 1) & (data["j"] == data.loc[
        data["type"] == "b", "j"].iloc[0]))
    model = sms.MultilevelSEM.from_formula("y_un ~ x + (1|k)", data[rows])
    with pytest.raises(ValueError, match="fewer than two units labelled b"):
        model.relax_residuals(structure="unstructured", t="time", within="j", by="type")


def test_unstructured_by_a_label_matches_lavaan(data):
    """Each label its own variances and covariances: lavaan on the exported syntax
    (tests/reference/unstructured_by_lavaan.R); equal parameters across labels give the model without by=."""
    model = sms.MultilevelSEM.from_formula("y_un ~ x + (1|k)", data)
    by_type = model.relax_residuals(structure="unstructured", t="time", within="j", by="type")
    assert by_type.to_lavaan() + "\n" == (REFERENCE / "unstructured_by.lav").read_text()
    session = (REFERENCE / "unstructured_by_lavaan_session.txt").read_text().splitlines()
    res = by_type.fit()
    assert res.llf == pytest.approx(float(session[2].split()[1]), abs=1e-6)
    expected = {line.split()[1]: float(line.split()[2]) for line in session if line.startswith("est ")}
    ours = dict(zip(by_type.labels, np.asarray(res.params)))
    for label, value in expected.items():
        assert ours[label] == pytest.approx(value, rel=1e-4, abs=1e-6), label
    assert "var(Residual)[a,1]" in res.params.index and "cov(Residual)[b,2,4]" in res.params.index
    pooled = model.relax_residuals(structure="unstructured", t="time", within="j")
    pooled_fit = pooled.fit()
    shared = dict(zip(pooled.plan.labels, np.asarray(pooled_fit.params)))
    at_pooled = [shared[label.replace("_a_", "_").replace("_b_", "_")] for label in by_type.labels]
    assert by_type.loglike(np.array(at_pooled)) == pytest.approx(pooled_fit.llf, abs=1e-9)
