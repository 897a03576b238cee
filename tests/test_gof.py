"""Fit statistics of the wide model (``res.gof()``) against lavaan's ``fitMeasures``.

tests/reference/lavaan_gof.R fits the syntax written by ``to_lavaan`` to the wide data
written by ``wide_data(fill_absent_covariates=True)`` (lavaan 0.6.14, FIML, ``fixed.x =
TRUE``) for the article's model, two relaxations (``relax_variance`` and ``relax_slope`` by
a label), a misfitting model and its relaxation (RMSEA well above 0), a model without
covariates on 10 clusters (lme4's Pastes), all on complete wide data, and an unbalanced
design (FIML, the saturated model by EM).
"""

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms
from sm_multisem.inference.gof import SINGULAR, WideData, cfi, fit_saturated, rmsea, rmsea_interval, rmsea_pclose, tli

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from make_lavaan_gof_inputs import models as misfit_models
from make_lavaan_gof_inputs import pastes_model
from make_lavaan_inputs import designs
from make_lavaan_score_inputs import relaxations

FORMULA = "y ~ x + (1|k/j)"
COMPLETE = ["article", "score_variance", "score_slope", "gof_misfit", "gof_misfit_variance", "gof_pastes"]
MEASURES = ["chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "baseline.pvalue", "cfi", "tli", "rmsea",
            "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "aic", "bic"]


@cache
def model_of(design: str) -> sms.MultilevelSEM:
    """The model whose syntax and wide data lavaan_gof.R fitted as ``design``."""
    if design in ("article", "unbalanced"):
        return sms.MultilevelSEM.from_formula(FORMULA, designs()[design])
    if design.startswith("score_"):
        model = sms.MultilevelSEM.from_formula(FORMULA, pd.read_csv(REFERENCE / "lavaan_score_long.csv"))
        return relaxations(model)[design.removeprefix("score_")]
    if design == "gof_pastes":
        return pastes_model()
    return misfit_models(pd.read_csv(REFERENCE / "lavaan_gof_long.csv"))[design.removeprefix("gof_")]


@cache
def fit_of(design: str):
    return model_of(design).fit()


def lavaan(design: str) -> pd.Series:
    ref = pd.read_csv(REFERENCE / "lavaan_gof.csv")
    return ref[ref["design"] == design].set_index("measure")["value"].astype(float)


@pytest.mark.parametrize("design", [*COMPLETE, "unbalanced"])
def test_the_model_lavaan_fitted_is_the_exported_one(design):
    assert model_of(design).to_lavaan() + "\n" == (REFERENCE / f"lavaan_{design}.lav").read_text()
    wide = pd.read_csv(REFERENCE / f"lavaan_{design}_wide.csv")
    pd.testing.assert_frame_equal(model_of(design).wide_data(fill_absent_covariates=True), wide,
                                  check_dtype=False, atol=1e-15)


@pytest.mark.parametrize("design", COMPLETE)
def test_every_statistic_matches_lavaan_on_complete_wide_data(design):
    ref = lavaan(design)
    ours = fit_of(design).gof().to_series()
    assert list(ours.index) == MEASURES
    # lavaan's interval bounds carry uniroot's error (1e-4 in the noncentrality); its own
    # equations solved to 1e-12 are the exact reference, and lavaan's bounds are within 1e-6
    for bound in ["rmsea.ci.lower", "rmsea.ci.upper"]:
        assert ours[bound] == pytest.approx(ref[f"{bound}.exact"], rel=1e-9, abs=1e-12)
        assert ours[bound] == pytest.approx(ref[bound], rel=1e-6, abs=1e-12)
    for measure in MEASURES:
        # lavaan's p-values are 1 - pchisq, exact to about 1e-16 only (0 where ours are 1e-30); SRMR
        # moves with the estimates, which lavaan converges to about 1e-7
        assert ours[measure] == pytest.approx(ref[measure], rel=1e-6, abs=1e-12 if ref[measure] else 1e-15), measure


def test_misfitting_model_is_not_at_the_edge_of_any_statistic():
    """The misfit designs exercise what the others do not: RMSEA and its lower bound above 0, CFI below 1."""
    fit = fit_of("gof_misfit").gof()
    assert fit.rmsea_ci_lower > 0.05 and fit.cfi < 0.9 and fit.tli < 0.9 and fit.rmsea_pvalue < 0.01
    # the interval's upper search bound is max(N, 4 chi2) = 4 chi2 here
    assert 4 * fit.chi2 > fit.nobs


def test_saturated_and_model_log_likelihoods_are_lavaans():
    for design in [*COMPLETE, "unbalanced"]:
        fit, ref = fit_of(design).gof(), lavaan(design)
        assert fit.llf_saturated == pytest.approx(ref["unrestricted.logl"], rel=1e-11), design
        assert fit.llf == pytest.approx(ref["logl"], rel=1e-9), design
        assert fit.nobs == ref["ntotal"] and len(fit_of(design).params) == ref["npar"]


def test_unbalanced_data_by_fiml_match_lavaan():
    """lavaan's own baseline fit fails on this design; lavaan_gof.R fits the same model explicitly."""
    ref = lavaan("unbalanced")
    fit = fit_of("unbalanced").gof()
    assert not fit.complete
    ours = fit.to_series()
    for measure in ["chisq", "df", "pvalue", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr",
                    "aic", "bic"]:
        assert ours[measure] == pytest.approx(ref[measure], rel=1e-6, abs=1e-12), measure
    assert ours["rmsea.ci.upper"] == pytest.approx(ref["rmsea.ci.upper.exact"], rel=1e-9)
    assert fit.baseline_chi2 == pytest.approx(ref["explicit.baseline.chisq"], rel=1e-8)
    assert fit.baseline_df == ref["explicit.baseline.df"]
    assert fit.cfi == pytest.approx(ref["explicit.cfi"], rel=1e-8)
    assert fit.tli == pytest.approx(ref["explicit.tli"], rel=1e-8)
    assert "by FIML" in str(fit)


def test_lr_test_against_the_saturated_model_is_the_gof_chi2():
    for design in ["article", "unbalanced"]:
        res = fit_of(design)
        test, fit = res.lr_test_saturated(), res.gof()
        assert (test.statistic, test.df) == (fit.chi2, fit.df)
    assert "LR test of model vs. saturated: chi2(58)" in fit_of("unbalanced").summary(style="sem").as_text()


def test_printed_like_stata_with_the_wide_model_named():
    text = str(fit_of("article").gof())
    assert text.startswith("Fit statistics of the wide model: one row per k cluster, N = 100")
    for line in ["chi2_ms(25) |     19.243   model vs. saturated", "chi2_bs(22) |    185.336   baseline vs. saturated",
                 "RMSEA |      0.000", "upper bound |      0.055",
                 "BIC |   1430.366   Bayesian information criterion (N = 100)", "SRMR |      0.072"]:
        assert line in text, line
    assert "FIML" not in text


def test_wide_covariates_that_repeat_count_once():
    """A covariate of the top-level clusters is the same in every position's column: the saturated
    model's regression has one slope for it, not one per position. (lavaan fits these wide data
    with a warning, the same chi2 and df larger by P per extra copy of the column.)"""
    rng = np.random.default_rng(3)
    data = designs()["article"].assign(w=lambda d: rng.normal(size=100)[d["k"].to_numpy() - 1])
    res = sms.MultilevelSEM.from_formula("y ~ x + w + (1|k/j)", data).fit()
    fit = res.gof()
    p = 4
    assert fit.df == p * (1 + 4 + 1) + p * (p + 1) // 2 - len(res.params)
    assert fit.baseline_df == p * (4 + 1) + p * (p - 1) // 2
    wide = res.model.wide_data()
    y = wide.filter(regex="^y").to_numpy()
    x = wide[["x1_1", "x1_2", "x2_1", "x2_2", "w1_1"]].to_numpy()
    once = fit_saturated(WideData(y, x, [], []))
    assert fit.llf_saturated == pytest.approx(once.llf, rel=1e-12)
    assert 2 * (once.llf - res.llf) == pytest.approx(fit.chi2, rel=1e-10)


def test_fit_statistics_need_an_ml_fit_of_a_wide_sem(article_data):
    model = sms.MultilevelSEM.from_formula(FORMULA, article_data)
    with pytest.raises(ValueError, match="unweighted ML fit"):
        model.fit(reml=True).gof()
    weighted = sms.MultilevelSEM.from_formula(FORMULA, article_data.assign(w=2.0), weights="w")
    with pytest.raises(ValueError, match="unweighted ML fit"):
        weighted.fit().gof()
    regions = article_data.assign(region=article_data["k"] % 2)
    by_region = sms.MultilevelSEM.from_formula(FORMULA, regions).relax_variance("k", by="region")
    with pytest.raises(NotImplementedError, match="multi-group"):
        by_region.fit().gof()


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")  # var(k:j) at 0
def test_too_few_clusters_for_the_saturated_model_are_refused(article_data, unbalanced_data):
    few = article_data[article_data["k"] <= 8]  # 4 positions on 5 regressors need 9 clusters
    with pytest.raises(ValueError, match="8 clusters cannot estimate the saturated model.*below 9 clusters"):
        sms.MultilevelSEM.from_formula(FORMULA, few).fit().gof()
    # 12 positions with 80 clusters, some seen in 33: EM heads for a singular Sigma (lavaan too)
    with pytest.raises(ValueError, match="singular with 80 clusters"):
        sms.MultilevelSEM.from_formula(FORMULA, unbalanced_data).fit().gof()
    y = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, 1.0], [np.nan, 3.0], [0.5, np.nan]])
    with pytest.raises(ValueError, match="positions a and b are never observed in the same cluster"):
        fit_saturated(WideData(y, np.zeros((5, 0)), ["a", "b"], []))


def test_saturated_model_by_em_stops_where_sigma_becomes_singular():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(12, 2))
    y[:, 1] = y[:, 0] * 2.0  # exactly collinear outcomes: Sigma is singular in one step
    with pytest.raises(ValueError, match="singular"):
        fit_saturated(WideData(y, np.zeros((12, 0)), ["a", "b"], []))
    assert SINGULAR < 1e-6


@pytest.mark.parametrize(("chi2", "df", "n"), [(19.243, 25, 100), (127.74, 58, 150)])
def test_rmsea_and_its_interval(chi2, df, n):
    assert rmsea(chi2, df, n) == pytest.approx(np.sqrt(max(chi2 - df, 0) / (n * df)), rel=1e-15)
    lower, upper = rmsea_interval(chi2, df, n)
    assert lower <= rmsea(chi2, df, n) <= upper
    assert (lower == 0) == (chi2 < df)


def test_index_formulas_at_their_edges():
    """lavaan's conventions: RMSEA 0 and interval (0, 0) at df = 0, no pclose; CFI 1 when neither
    the model nor the baseline has chi2 above its df; TLI not truncated."""
    assert rmsea(3.0, 0, 50) == 0 and rmsea_interval(3.0, 0, 50) == (0.0, 0.0)
    assert np.isnan(rmsea_pclose(3.0, 0, 50)) and tli(3.0, 0, 100.0, 10) == 1.0
    assert cfi(10.0, 20, 5.0, 10) == 1.0
    assert cfi(30.0, 20, 15.0, 10) == 0.0  # the model misfits more than the baseline
    assert cfi(30.0, 20, 110.0, 10) == pytest.approx(0.9, rel=1e-15)
    assert tli(10.0, 20, 110.0, 10) == pytest.approx(1 + 10 * 10 / (100 * 20), rel=1e-15)
