"""Score and likelihood-ratio tests of relaxations."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sm_multisem as sms

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def model():
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", pd.read_csv(REFERENCE / "relax_data.csv"))


@pytest.fixture(scope="module")
def fit(model):
    return model.fit()


def large_sample(seed):
    data = sms.simulate_nested((1500, 4, 3), sd=(1.0, 0.8, 1.0), seed=seed)
    rng = np.random.default_rng(seed)
    data["type"] = np.repeat(rng.choice(["a", "b"], size=1500 * 4), 3)
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)


@pytest.mark.parametrize("relax", [
    lambda m: m.relax_slope("x", by="type"),
    lambda m: m.relax_variance("k:j", by="type"),
])
def test_score_statistic_is_close_to_lr_in_a_large_sample(relax):
    model = large_sample(seed=9)
    res = model.fit()
    relaxed = relax(model)
    score = res.score_test(relaxed)
    lr = res.lr_test(relaxed.fit())
    assert score.df == lr.df == 1
    assert score.statistic == pytest.approx(lr.statistic, rel=0.05, abs=0.05)


def test_two_labels_univariate_equals_joint():
    model = large_sample(seed=10)
    test = model.fit().score_test(model.relax_slope("x", by="type"))
    np.testing.assert_allclose(test.table["chi2"], test.statistic, rtol=1e-8)


def test_table_and_joint(model, fit):
    test = fit.score_test(model.relax_variance("k:j", by="type"))
    assert test.information == "expected" and test.df == 2
    assert list(test.table.index) == ["var(k:j)[chr]", "var(k:j)[prv]", "var(k:j)[pub]"]
    assert test.pvalue == pytest.approx(stats.chi2.sf(test.statistic, 2))
    lr = fit.lr_test(model.relax_variance("k:j", by="type").fit())
    assert test.statistic == pytest.approx(lr.statistic, rel=0.1)  # 60 clusters: close, not equal
    assert "joint: chi2(2)" in str(test)


def test_epc_points_to_the_relaxed_estimate(model, fit):
    """One Newton step from the constrained estimate moves each released parameter the right way."""
    test = fit.score_test(model.relax_slope("x", by="type"))
    relaxed = model.relax_slope("x", by="type").fit()
    change = relaxed.params[test.table.index] - fit.params["x"]
    assert np.all(np.sign(test.table["epc"]) == np.sign(change))


def test_indefinite_observed_information_is_refused(model, fit):
    with pytest.raises(ValueError, match="not positive definite"):
        fit.score_test(model.relax_variance("k:j", by="type"), information="observed")


def test_lr_test_between_nested_fits(model, fit):
    relaxed = model.relax_residuals(by="role").fit()
    lr = fit.lr_test(relaxed)
    assert lr.df == 2 and lr.statistic == pytest.approx(2 * (relaxed.llf - fit.llf))
    assert relaxed.lr_test(fit).statistic == lr.statistic


def test_models_that_are_not_nested_are_refused(model, fit):
    other = sms.MultilevelSEM.from_formula("y ~ 1 + (1|k/j)", pd.read_csv(REFERENCE / "relax_data.csv")).fit()
    with pytest.raises(ValueError, match="not a relaxation"):
        other.lr_test(fit.model.relax_slope("x", by="type").fit())


def test_score_tests_need_ml(model):
    with pytest.raises(ValueError, match="need an ML fit"):
        model.fit(reml=True).score_test(model.relax_slope("x", by="type"))


@pytest.mark.slow
def test_size_under_a_true_null():
    """500 replications with equal slopes: the 5% score test rejects between 3% and 7%."""
    rejections = 0
    for seed in range(500):
        data = sms.simulate_nested((40, 3, 3), sd=(1.0, 0.8, 1.0), seed=1000 + seed)
        data["type"] = np.repeat(np.random.default_rng(seed).choice(["a", "b", "c"], size=120), 3)
        model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
        rejections += model.fit().score_test(model.relax_slope("x", by="type")).pvalue < 0.05
    assert 0.03 <= rejections / 500 <= 0.07


@pytest.mark.parametrize("design", ["variance", "slope"])
@pytest.mark.parametrize("information", ["expected", "observed"])
def test_score_test_matches_lavaan(design, information):
    """lavTestScore(release = the one equality) on the same wide model (tests/reference/lavaan_score.R)."""
    ref = pd.read_csv(REFERENCE / "lavaan_score.csv")
    ref = ref[(ref["design"] == design) & (ref["information"] == information)].set_index("quantity")["value"]
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", pd.read_csv(REFERENCE / "lavaan_score_long.csv"))
    relaxed = model.relax_variance("k:j", by="type") if design == "variance" else model.relax_slope("x", by="type")
    test = model.fit().score_test(relaxed, information=information)
    assert test.df == 1
    assert test.statistic == pytest.approx(float(ref["X2_total"]), rel=1e-6)
    released = "var(k:j)[pub]" if design == "variance" else "x[pub]"
    # our EPC is the change of the pub parameter away from the shared value: lavaan's pub - prv
    assert test.table.loc[released, "epc"] == pytest.approx(float(ref["epc_difference"]), rel=1e-6)
