"""Random-effect structures against lme4 1.1.31, ML and REML.

tests/reference/structures_lme4.R fitted them to tests/reference/structures_data.csv
(tests/reference/make_structures_data.py): 50 districts ``k`` of 3-7 schools ``j`` of 1-8 pupils,
schools typed pub/prv/chr, covariates ``x`` and ``w``; the fixed part is ``y ~ x + w + type``
with pub as the reference type. Correlated sibling effects are checked through lme4's per-label
dummy terms: with a school variance and a (district, type) variance per type, two schools of one
type in a district covary by the (district, type) variance, and each has the sum as its variance.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"
FIXED = "y ~ x + w + C(type, Treatment('pub'))"
FIXED_NAMES = {"(Intercept)": "Intercept", "x": "x", "w": "w",
               "typeprv": "C(type, Treatment('pub'))[T.prv]", "typechr": "C(type, Treatment('pub'))[T.chr]"}
MODELS = {
    "us3": f"{FIXED} + (1 + x + w|k) + (1|k:j)",
    "diag": f"{FIXED} + (1 + x||k) + (1|k:j)",
    "split": f"{FIXED} + (1|k) + (0 + x|k) + (1|k:j)",
    "bytype": f"{FIXED} + (0 + type|k) + (1|k:j)",
    "slopes2": f"{FIXED} + (1 + x|k/j)",
    "xonly": f"{FIXED} + (0 + x|k) + (1|k:j)",
}
#: lme4's group names (``k.1`` for a second term of k; ``||`` names the k:j term ``k.j``)
LEVEL = {"k": "k", "k.1": "k", "k:j": "k:j", "k.j": "k:j", "j:k": "k:j", "Residual": "Residual"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "structures_data.csv")


@pytest.fixture(scope="module")
def lme4():
    return pd.read_csv(REFERENCE / "structures_lme4.csv", keep_default_na=False)


def _effect(name: str, level: str) -> str:
    """lme4's name of an effect as sm_multisem names it: ``k`` for the intercept, ``type[pub]|k``."""
    if name == "(Intercept)":
        return level
    return f"type[{name[4:]}]|{level}" if name.startswith("type") else f"{name}|{level}"


def _covariance(*effects: str) -> str:
    """A covariance's name with its two effects in sorted order (the two orders name one parameter)."""
    return f"cov({', '.join(sorted(effects))})"


def _canonical(name: str) -> str:
    return _covariance(*name[4:-1].split(", ")) if name.startswith("cov(") else name


def _reference(lme4: pd.DataFrame, model: str, reml: bool) -> tuple[pd.Series, float]:
    rows = lme4[(lme4["model"] == model) & (lme4["reml"] == reml)]
    values = {}
    for row in rows.itertuples():
        value = float(row.value)
        if row.kind == "fixef":
            values[FIXED_NAMES[row.var1]] = value
        elif row.kind == "vcov" and row.grp == "Residual":
            values["var(Residual)"] = value
        elif row.kind == "vcov":
            level = LEVEL[row.grp]
            first = _effect(row.var1, level)
            values[f"var({first})" if not row.var2 else _covariance(first, _effect(row.var2, level))] = value
    loglik = float(rows.loc[rows["kind"] == "loglik", "value"].iloc[0])
    return pd.Series(values), loglik


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("model", list(MODELS))
def test_fit_matches_lme4(data, lme4, model, reml):
    expected, loglik = _reference(lme4, model, reml)
    res = sms.MultilevelSEM.from_formula(MODELS[model], data).fit(reml=reml)
    assert res.converged
    params = res.params.rename(_canonical)
    assert sorted(params.index) == sorted(expected.index)
    np.testing.assert_allclose(params[expected.index], expected, rtol=1e-4, atol=1e-6)
    assert res.llf == pytest.approx(loglik, abs=1e-5)


@pytest.mark.parametrize("reml", [False, True])
def test_correlated_siblings_of_a_type_match_lme4_with_a_district_type_level(data, lme4, reml):
    """var(k:j)[t] = var(kj dummy t) + var(kt dummy t) and cov(k:j)[t] = var(kt dummy t), every t."""
    rows = lme4[(lme4["model"] == "siblings") & (lme4["reml"] == reml)]
    vcov = {(row.grp.split(".")[0], row.var1): float(row.value) for row in rows[rows["kind"] == "vcov"].itertuples()}
    res = (sms.MultilevelSEM.from_formula(f"{FIXED} + (1|k/j)", data).relax_variance("k:j", by="type")
           .relax_covariance("k:j", by="type", equal=True).fit(reml=reml))
    assert res.converged
    for label in ("pub", "prv", "chr"):
        dummy = f'dummy(type, "{label}")'
        assert res.params[f"cov(k:j)[{label}]"] == pytest.approx(vcov["kt", dummy], rel=1e-4)
        assert res.params[f"var(k:j)[{label}]"] == pytest.approx(vcov["kt", dummy] + vcov["kj", dummy], rel=1e-4)
    assert res.params["var(k)"] == pytest.approx(vcov["k", "(Intercept)"], rel=1e-4)
    assert res.params["var(Residual)"] == pytest.approx(vcov["Residual", ""], rel=1e-4)
    fixed = rows[rows["kind"] == "fixef"]
    np.testing.assert_allclose(res.params[[FIXED_NAMES[n] for n in fixed["var1"]]], fixed["value"].astype(float),
                               rtol=1e-5)
    assert res.llf == pytest.approx(float(rows.loc[rows["kind"] == "loglik", "value"].iloc[0]), abs=1e-5)


def test_predictions_of_the_effects_match_lme4(data):
    """``ranef(fit, condVar = TRUE)`` of (1 + x + w|k) + (1|k:j): the conditional modes and their sds,
    and lme4's fitted values at every level."""
    res = sms.MultilevelSEM.from_formula(MODELS["us3"], data).fit()
    ranef = pd.read_csv(REFERENCE / "structures_lme4_ranef.csv")
    names = {"(Intercept)": "Intercept", "x": "x", "w": "w"}
    for (group, effect), rows in ranef.groupby(["grp", "var1"]):
        level = LEVEL[group]
        if level == "k":
            ours, ours_se = res.random_effects["k"][names[effect]], res.random_effects_se["k"][names[effect]]
            index = rows["level"].astype(int).to_numpy()
        else:
            ours, ours_se = res.random_effects["k:j"], res.random_effects_se["k:j"]
            index = pd.MultiIndex.from_tuples([tuple(map(int, v.split(":"))) for v in rows["level"]])
        np.testing.assert_allclose(ours.loc[index], rows["value"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours_se.loc[index], rows["condsd"], rtol=1e-4, atol=1e-6)
    fitted = pd.read_csv(REFERENCE / "structures_lme4_predict.csv")
    np.testing.assert_allclose(res.predict(level="k:j"), fitted["fitted"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.predict(), fitted["population"], rtol=1e-5, atol=1e-6)
