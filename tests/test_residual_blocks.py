"""Residual blocks on the recursion: Toeplitz, unstructured and AR(1) residuals as a dense block of every
unit of a residual grouping (AR(1) in real time, and with a variance per occasion).

Reference fits: tests/reference/longitudinal_nlme.R (nlme 3.1.162) on
tests/reference/longitudinal_data.csv (tests/reference/make_longitudinal_data.py): 60 clinics of
4-8 subjects, six occasions with 15% missing; ``lme(y ~ x + arm, random = ~ 1 | clinic,
correlation = corARMA(p = 5, form = ~ occ | clinic/subject))``, an AR(5) on six occasions, which is
every Toeplitz correlation matrix (model ``toep``).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_loglike
from sem_reference import wide_sem_loglike

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
FIXED = {"(Intercept)": "Intercept", "x": "x", "armt": "arm[T.t]"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "longitudinal_data.csv")


@pytest.fixture(scope="module")
def nlme():
    return pd.read_csv(REFERENCE / "longitudinal_nlme.csv", keep_default_na=False)


def toeplitz(data):
    return sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data).relax_residuals(
        structure="toeplitz", t="occ", within="subject")


@pytest.mark.parametrize("reml", [False, True])
def test_toeplitz_matches_nlme(data, nlme, reml):
    ref = nlme[(nlme["model"] == "toep") & (nlme["reml"] == reml)]
    value = {(row.kind, row.name): float(row.value) for row in ref.itertuples()}
    res = toeplitz(data).fit(reml=reml)
    assert res.converged
    assert "Residual: Toeplitz within clinic:subject along occ" in res.summary().as_text()
    assert res.llf == pytest.approx(value["loglik", ""], abs=1e-5)
    expected = {FIXED[name]: v for (kind, name), v in value.items() if kind == "fixef"}
    expected["var(clinic)"] = value["clinic_var", ""]
    expected["var(Residual)"] = value["rcov", "1,1"]
    expected.update({f"cov(Residual)[lag{lag}]": value["rcov", f"{lag + 1},1"] for lag in range(1, 6)})
    assert sorted(res.params.index) == sorted(expected)
    np.testing.assert_allclose(res.params[list(expected)], list(expected.values()), rtol=1e-4)


def test_toeplitz_loglike_and_score_equal_the_dense_normal(data):
    small = toeplitz(data[data["clinic"] <= 6])
    rng = np.random.default_rng(2)
    lags = 0.6 ** np.arange(6)
    params = pd.Series(np.r_[rng.normal(size=3), 0.4, 1.3, 1.3 * lags[1:] * (1 + 0.1 * rng.uniform(-1, 1, 5))],
                       index=small.param_names)
    for reml in (False, True):
        step = 1e-6
        numeric = np.array([(small.loglike(params + step * e, reml=reml) - small.loglike(params - step * e, reml=reml))
                            / (2 * step) for e in np.eye(len(params))])
        np.testing.assert_allclose(small.score(params.to_numpy(), reml=reml), numeric, rtol=1e-6, atol=1e-6)
    assert small.loglike(params.to_numpy()) == pytest.approx(dense_loglike(small, params.to_numpy()), rel=1e-12)
    np.testing.assert_allclose(small.score_obs(params.to_numpy()).sum(0), small.score(params.to_numpy()), rtol=1e-10)


def test_toeplitz_refusals(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data)
    with pytest.raises(ValueError, match='structure="toeplitz" takes t='):
        model.relax_residuals(structure="toeplitz", within="subject")
    with pytest.raises(ValueError, match="confounded with its variance"):
        sms.MultilevelSEM.from_formula("y ~ x + (1|clinic/subject)", data).relax_residuals(
            structure="toeplitz", t="occ")
    with pytest.raises(ValueError, match="time column 'time' must hold integers"):
        model.relax_residuals(structure="toeplitz", t="time", within="subject")


def test_toeplitz_wide_form(data):
    """One position per occasion, the covariance of two positions of a subject labelled by their lag: the
    table read as an SEM gives the model's log-likelihood."""
    model = toeplitz(data[data["clinic"] <= 4])
    assert "y1_1 ~~ C_e_lag1*y1_2" in model.to_lavaan()
    res = model.fit()
    values = dict(zip(model.plan.labels, np.asarray(res.params)))
    wide = model.wide_data(fill_absent_covariates=True)
    assert wide_sem_loglike(model.parameter_table, wide, values) == pytest.approx(res.llf, abs=1e-9)


def car1(data):
    return sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data).relax_residuals(
        structure="ar1", t="time", within="subject")


def ar1_by_occasion(data):
    return sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data).relax_residuals(
        structure="ar1", t="occ", within="subject", by="occ")


@pytest.mark.parametrize("reml", [False, True])
def test_continuous_time_ar1_matches_nlme_corcar1(data, nlme, reml):
    """nlme corCAR1(form = ~ time | clinic/subject): times occ + U(-0.3, 0.3), gaps of any real length."""
    ref = nlme[(nlme["model"] == "car1") & (nlme["reml"] == reml)]
    value = {(row.kind, row.name): float(row.value) for row in ref.itertuples()}
    res = car1(data).fit(reml=reml)
    assert res.converged
    assert res.llf == pytest.approx(value["loglik", ""], abs=1e-5)
    expected = {FIXED[name]: v for (kind, name), v in value.items() if kind == "fixef"}
    expected.update({"var(clinic)": value["clinic_var", ""], "var(Residual)": value["sigma", ""] ** 2,
                     "rho(Residual)": value["corpar", "Phi"]})
    assert sorted(res.params.index) == sorted(expected)
    np.testing.assert_allclose(res.params[list(expected)], list(expected.values()), rtol=1e-4)


@pytest.mark.parametrize("reml", [False, True])
def test_ar1_with_a_variance_per_occasion_matches_nlme(data, nlme, reml):
    """nlme corAR1(form = ~ occ | clinic/subject) with varIdent(form = ~ 1 | occ): the standard deviation of
    occasion 2 (nlme's reference) times every ratio."""
    ref = nlme[(nlme["model"] == "ar1_ident") & (nlme["reml"] == reml)]
    value = {(row.kind, row.name): float(row.value) for row in ref.itertuples()}
    res = ar1_by_occasion(data).fit(reml=reml)
    assert res.converged
    assert res.llf == pytest.approx(value["loglik", ""], abs=1e-5)
    sigma = value["sigma", ""]
    ratios = {"2": 1.0, **{name: v for (kind, name), v in value.items() if kind == "varpar"}}
    expected = {FIXED[name]: v for (kind, name), v in value.items() if kind == "fixef"}
    expected.update({"var(clinic)": value["clinic_var", ""], "rho(Residual)": value["corpar", "Phi1"]})
    expected.update({f"var(Residual)[{occ}]": (sigma * ratio) ** 2 for occ, ratio in ratios.items()})
    assert sorted(res.params.index) == sorted(expected)
    np.testing.assert_allclose(res.params[list(expected)], list(expected.values()), rtol=1e-4)


def _dense_ar1_loglike(model, data, params, t):
    """Sum over clinics of the normal log-density with R_ij = sqrt(v_i v_j) rho^|t_i - t_j| within a subject."""
    from scipy import stats

    beta, variances = model.plan.split(params)
    order = model.layout.order
    y, X = model.model_data.endog[order], model.model_data.exog[order]
    rows = data.iloc[order]
    times, subject, clinic = rows[t].to_numpy(), rows["subject"].to_numpy(), rows["clinic"].to_numpy()
    row_variance = variances[model.plan.row_variance]
    rho, clinic_var = variances[model.plan.ar1_entries[0]], variances[model.plan.unit_variance[0][0]]
    total = 0.0
    for k in np.unique(clinic):
        at = np.flatnonzero(clinic == k)
        sd = np.sqrt(row_variance[at])
        same = subject[at][:, None] == subject[at][None, :]
        sigma = clinic_var + np.outer(sd, sd) * rho ** np.abs(times[at][:, None] - times[at][None, :]) * same
        total += stats.multivariate_normal(X[at] @ beta, sigma).logpdf(y[at])
    return total


@pytest.mark.parametrize("build, t", [(car1, "time"), (ar1_by_occasion, "occ")])
def test_ar1_blocks_equal_the_dense_normal_and_their_scores_the_differences(data, build, t):
    small = data[data["clinic"] <= 6].reset_index(drop=True)
    model = build(small)
    rng = np.random.default_rng(4)
    params = np.asarray(model.start_params) * (1 + 0.1 * rng.uniform(-1, 1, len(model.param_names)))
    params[model.plan.variance_index[model.plan.ar1_entries]] = 0.55
    assert model.loglike(params) == pytest.approx(_dense_ar1_loglike(model, small, params, t), rel=1e-12)
    for reml in (False, True):
        step = 1e-6
        numeric = np.array([(model.loglike(params + step * e, reml=reml) - model.loglike(params - step * e, reml=reml))
                            / (2 * step) for e in np.eye(len(params))])
        np.testing.assert_allclose(model.score(params, reml=reml), numeric, rtol=1e-6, atol=1e-6)


def test_ar1_blocks_refusals(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic/subject)", data)
    with pytest.raises(ValueError, match="runs within the lowest units already: leave within= out"):
        model.relax_residuals(structure="ar1", t="time", within="subject")
    with pytest.raises(NotImplementedError, match="the wide form of AR\\(1\\) residuals evaluated as dense blocks"):
        car1(data).to_lavaan()
    with pytest.raises(ValueError, match=r"of clinic:subject has two observations at time = 1.5; AR\(1\) residuals "
                                         r"need one"):
        car1(data.assign(time=data["occ"] // 2 + 0.5))


@pytest.mark.parametrize("name", ["banded", "toeplitz"])
def test_banded_and_toeplitz_of_an_order_match_lavaan_on_their_wide_form(name):
    """Banded (order 1) and Toeplitz (order 2) residuals: lavaan 0.6.14 on the exported wide syntax
    (tests/reference/blocks_lavaan.R, inputs from make_blocks_lavaan_inputs.py)."""
    import sys

    sys.path.insert(0, str(REFERENCE))
    from make_blocks_lavaan_inputs import block_models

    model = block_models()[name]
    assert model.to_lavaan() + "\n" == (REFERENCE / f"blocks_{name}.lav").read_text()
    reference = pd.read_csv(REFERENCE / "blocks_lavaan.csv")
    reference = reference[reference["model"] == name].set_index("label")["est"]
    res = model.fit()
    assert res.converged
    assert res.llf == pytest.approx(reference["logLik"], abs=1e-6)
    estimates = pd.Series(np.asarray(res.params), index=model.plan.labels)
    np.testing.assert_allclose(estimates, reference[estimates.index], rtol=1e-4, atol=1e-6)
    title = "Banded(1)" if name == "banded" else "Toeplitz(2)"
    assert f"Residual: {title} within clinic:subject along occ" in res.summary().as_text()


def test_order_refusals(data):
    model = sms.MultilevelSEM.from_formula("y ~ x + arm + (1|clinic)", data)
    with pytest.raises(ValueError, match='structure="banded" takes order='):
        model.relax_residuals(structure="banded", t="occ", within="subject")
    with pytest.raises(ValueError, match=r"order= is a positive integer of structure=\"toeplitz\" or \"banded\""):
        model.relax_residuals(structure="unstructured", t="occ", within="subject", order=2)
    with pytest.raises(ValueError, match="order= is a positive integer"):
        model.relax_residuals(structure="toeplitz", t="occ", within="subject", order=0)


def test_residual_blocks_with_random_slopes(data):
    """A random slope of x by clinic with Toeplitz residuals: the dense normal and the score; with AR(1)
    residuals (dense blocks), at rho = 0 the model with independent residuals."""
    small = data[data["clinic"] <= 8].reset_index(drop=True)
    slopes = sms.MultilevelSEM.from_formula("y ~ x + arm + (1 + x|clinic)", small)
    toeplitz_slopes = slopes.relax_residuals(structure="toeplitz", t="occ", within="subject")
    params = pd.Series(np.asarray(toeplitz_slopes.start_params), index=toeplitz_slopes.param_names)
    params[["var(clinic)", "var(x|clinic)", "cov(clinic, x|clinic)", "var(Residual)"]] = [0.5, 0.3, 0.1, 1.4]
    params[[n for n in params.index if "lag" in n]] = 0.8 * 0.6 ** np.arange(1, 6)
    expected = dense_loglike(toeplitz_slopes, params.to_numpy())
    assert toeplitz_slopes.loglike(params.to_numpy()) == pytest.approx(expected, rel=1e-12)
    ar1_slopes = sms.MultilevelSEM.from_formula("y ~ x + arm + (1 + x|clinic/subject)", small).relax_residuals(
        structure="ar1", t="occ")
    independent = sms.MultilevelSEM.from_formula("y ~ x + arm + (1 + x|clinic/subject)", small)
    at = pd.Series(np.asarray(independent.start_params), index=independent.param_names) * 1.1
    with_rho = at.reindex(ar1_slopes.param_names).fillna(0.0)
    assert ar1_slopes.loglike(with_rho.to_numpy()) == pytest.approx(independent.loglike(at.to_numpy()), rel=1e-12)
    with_rho["rho(Residual)"] = 0.4
    step = 1e-6
    numeric = np.array([(ar1_slopes.loglike(with_rho.to_numpy() + step * e) - ar1_slopes.loglike(
        with_rho.to_numpy() - step * e)) / (2 * step) for e in np.eye(len(with_rho))])
    np.testing.assert_allclose(ar1_slopes.score(with_rho.to_numpy()), numeric, rtol=1e-6, atol=1e-6)
