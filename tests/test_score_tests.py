"""Score tests of every constraint of the wide model (``results.score_tests()``).

Reference: lavaan 0.6.14 ``lavTestScore`` on the article's standard model with a label per
position (tests/reference/lavaan_scoretests.R, inputs by make_lavaan_scoretests_inputs.py).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sm_multisem as sms
from sm_multisem.inference.hypothesis import score_test
from sm_multisem.inference.scoretests import constraint_families, position_labels

REFERENCE = Path(__file__).parent / "reference"
FAMILY_OF_KIND = {"c": "intercept", "bx": "slope", "S_j": "variance", "S_e": "residual variance",
                  "rho": "residual correlation"}


def simulate(n_clusters: int, seed: int, departure: str | None = None, size: float = 0.0) -> pd.DataFrame:
    """``y = c + b x + u_k + v_kj + e`` with 3 units of 3 observations per cluster (9 positions).

    ``departure`` breaks one constraint by ``size``: the intercept or slope graded across the
    positions (``c``, ``bx``), the effect SD growing with the j slot (``S_j``), the residual SD
    graded across the positions (``S_e``), AR(1) residuals with ``rho = size`` (``rho``).
    """
    rng = np.random.default_rng(seed)
    n_j, n_i = 3, 3
    k, j, i = (a.ravel() for a in np.indices((n_clusters, n_j, n_i)))
    position = j * n_i + i
    graded = size * (position - position.mean()) / position.std()
    x = rng.uniform(size=len(k))
    u = rng.normal(size=n_clusters)[k]
    v_sd = 0.8 * (1.0 + (size * j if departure == "S_j" else 0.0))
    v = rng.normal(size=n_clusters * n_j)[k * n_j + j] * v_sd
    e = rng.normal(size=len(k)) * (np.exp(0.5 * graded) if departure == "S_e" else 1.0)
    if departure == "rho":
        for step in range(1, n_i):  # e_i = rho e_(i-1) + sqrt(1 - rho^2) z_i, row by row of a unit
            at = np.flatnonzero(i == step)
            e[at] = size * e[at - 1] + np.sqrt(1.0 - size**2) * e[at]
    y = (0.5 + (graded if departure == "c" else 0.0) + (2.0 + (graded if departure == "bx" else 0.0)) * x
         + u + v + e)
    return pd.DataFrame({"k": k + 1, "j": j + 1, "i": i + 1, "x": x, "y": y})


@pytest.fixture(scope="module")
def article():
    data = sms.simulate_article_data(n_clusters=100, seed=2011)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    return model, model.fit()


# ------------------------------------------------------------------------------ lavaan
def test_article_wide_data_are_lavaans(article):
    model, res = article
    wide = pd.read_csv(REFERENCE / "lavaan_article_wide.csv")
    pd.testing.assert_frame_equal(model.wide_data(), wide, check_dtype=False, rtol=1e-14)
    ref = pd.read_csv(REFERENCE / "lavaan_scoretests.csv")
    assert res.llf == pytest.approx(ref.loc[ref["quantity"] == "logLik", "value"].astype(float), abs=1e-6)


@pytest.mark.parametrize("information", ["expected", "observed"])
def test_every_constraint_matches_lavaan(article, information):
    """Univariate chi2 and EPC of every position, and the joint test of every family."""
    _, res = article
    ref = pd.read_csv(REFERENCE / "lavaan_scoretests.csv")
    ref = ref[ref["information"] == information].set_index(["family", "constraint", "quantity"])["value"]
    tests = res.score_tests(information=information)
    assert tests.information == information
    compared = 0
    for (family, constraint), row in tests.table.iterrows():
        if family == "rho":  # the AR(1) family is not in the lavaan model
            continue
        assert row["chi2"] == pytest.approx(ref[(family, constraint, "X2")], rel=1e-5, abs=1e-9)
        if constraint == "joint":
            assert row["df"] == ref[(family, "joint", "df")]
        else:
            assert row["df"] == 1
            assert row["epc"] == pytest.approx(ref[(family, constraint, "epc")], rel=1e-5, abs=1e-9)
        compared += 1
    assert compared == len(ref) - ref.index.get_level_values("quantity").isin(["df", "epc"]).sum()


# ------------------------------------------------------------------ families and labels
def test_families_of_the_article_model(article):
    """Every constraint of the wide model is a family, with the right label, kind and positions."""
    model, res = article
    tests = res.score_tests()
    assert list(tests.families.index) == ["c", "bx", "S_j", "S_e", "rho"]
    assert [f.kind for f in constraint_families(model)] == [FAMILY_OF_KIND[f] for f in tests.families.index]
    # the labels are those of the wide model
    assert set(model.table.rules["label"]) >= {"c", "bx", "S_j", "S_e"}
    positions = ["1_1", "1_2", "2_1", "2_2"]
    expected = {"c": [f"Intercept[{p}]" for p in positions], "bx": [f"x[{p}]" for p in positions],
                "S_j": ["var(k:j)[1]", "var(k:j)[2]"], "S_e": [f"var(Residual)[{p}]" for p in positions]}
    for family, rows in expected.items():
        assert list(tests.table.loc[family].index) == [*rows, "joint"]
        assert tests.families.loc[family, "df"] == len(rows) - 1
    # 2 observations per unit, one step apart: rho is confounded with var(k:j)
    assert "only enter as their sum" in tests.families.loc["rho", "note"]
    assert "Not tested: rho" in str(tests)


def test_positions_are_the_slots_of_the_wide_model():
    """Each row of a family equals the test of a relaxation labelled from the data by hand.

    The rows are shuffled: the j slot is the rank of the j id in its cluster, the observation
    slot the order of the row in its unit (as the wide data number them), not the row order.
    """
    data = simulate(60, seed=4).sample(frac=1.0, random_state=1).reset_index(drop=True)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = model.fit()
    tests = res.score_tests()
    by_ids = data["j"].astype(str) + "_" + (data.groupby(["k", "j"]).cumcount() + 1).astype(str)
    for family, relaxed in {"bx": model.relax_slope("x", by=by_ids.rename("ids")),
                            "S_e": model.relax_residuals(by=by_ids.rename("ids")),
                            "c": model.relax_intercept(by=by_ids.rename("ids")),
                            "S_j": model.relax_variance("k:j", by=data["j"].astype(str).rename("ids"))}.items():
        direct = score_test(res, relaxed)
        rows = tests.table.loc[family]
        # the families are tested from the fit, exactly; the relaxed model's information of its variances
        # is a numerical Jacobian of their exact gradient (about 1e-10)
        np.testing.assert_allclose(rows.loc[direct.table.index, "chi2"], direct.table["chi2"], rtol=1e-8)
        np.testing.assert_allclose(rows.loc[direct.table.index, "epc"], direct.table["epc"], rtol=1e-8)
        assert rows.loc["joint", "chi2"] == pytest.approx(direct.statistic, rel=1e-8)
    assert list(position_labels(model, "k:j")) == list(data["j"].astype(str))


def test_families_of_a_four_level_model():
    data = sms.simulate_nested((40, 2, 2, 3), sd=(1.0, 0.7, 0.5, 1.0), seed=3)
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|l1/l2/l3)", data).fit()
    tests = res.score_tests()
    assert list(tests.families.index) == ["c", "bx", "S_l2", "S_l3", "S_e", "rho"]
    assert list(tests.table.loc["S_l2"].index) == ["var(l1:l2)[1]", "var(l1:l2)[2]", "joint"]
    assert list(tests.table.loc["S_l3"].index) == [f"var(l1:l2:l3)[{p}]" for p in ("1_1", "1_2", "2_1", "2_2")] + [
        "joint"]
    assert tests.families.loc["S_e", "df"] == 11 and tests.families.loc["rho", "information"] == "expected"
    assert (tests.families["note"] == "").all()


# ------------------------------------------------------------------ against the LR test
@pytest.mark.parametrize("family, size", [("c", 0.14), ("bx", 0.35), ("S_j", 0.35), ("S_e", 0.17), ("rho", 0.17)])
def test_family_statistic_is_close_to_the_lr_statistic(family, size):
    """400 clusters with one constraint broken: the joint score statistic is the LR statistic within 10%."""
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", simulate(400, seed=1, departure=family, size=size))
    res = model.fit()
    tests = res.score_tests([family])
    relaxation = next(f for f in constraint_families(model) if f.label == family)
    lr = res.lr_test(relaxation.relax(model).fit())
    assert tests.families.loc[family, "df"] == lr.df
    assert tests.families.loc[family, "chi2"] > 9  # the departure is detected ...
    assert tests.families.loc[family, "chi2"] == pytest.approx(lr.statistic, rel=0.1)  # ... as the LR test does


def test_family_statistics_are_small_under_the_null():
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", simulate(400, seed=2)).fit()
    families = res.score_tests().families
    assert (families["note"] == "").all()
    assert np.all(families["chi2"] < stats.chi2.ppf(0.999, families["df"].astype(int)))


# ------------------------------------------------------------------------ release=
def test_release_of_a_set_of_constraints(article):
    _, res = article
    tests = res.score_tests([], release=["x[1_2]", "var(Residual)[2_1]"])
    assert list(tests.families.index) == ["released"]
    assert list(tests.table.loc["released"].index) == ["x[1_2]", "var(Residual)[2_1]", "joint"]
    assert tests.families.loc["released", "df"] == 2
    family = res.score_tests(["bx", "S_e"]).table
    # one constraint released with the others kept is the univariate row of its family
    for name, label in [("x[1_2]", "bx"), ("var(Residual)[2_1]", "S_e")]:
        assert tests.table.loc[("released", name), "chi2"] == pytest.approx(family.loc[(label, name), "chi2"], rel=1e-9)
    # every position of a family released is the family
    every = res.score_tests([], release=[f"x[{p}]" for p in ("1_1", "1_2", "2_1", "2_2")])
    assert every.families.loc["released", "chi2"] == pytest.approx(family.loc[("bx", "joint"), "chi2"], rel=1e-9)


@pytest.mark.parametrize("release, message", [
    (["x[3_1]"], r"'3_1' is not a position of x"),
    (["z[1_1]"], r"'z\[1_1\]' is not a constraint that can be released"),
    (["x"], r"'x' is not a constraint that can be released"),
])
def test_release_refuses_unknown_constraints(article, release, message):
    with pytest.raises(ValueError, match=message):
        article[1].score_tests([], release=release)


# ------------------------------------------------------------------ what is not tested
def test_thin_positions_share_a_group_or_leave_the_family_out():
    """A cluster with a fourth unit of 9 rows: positions 4_1 .. 4_9 hold one row each and share the group
    ``pooled``; the slot 4 of k:j holds one unit, too few even alone, so S_j is left out."""
    data = simulate(30, seed=5)
    extra = data[data["k"] == 1].assign(j=4)
    data = pd.concat([data, extra], ignore_index=True)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = model.fit()
    tests = res.score_tests()
    assert "position 4 holds only 1 of the units of k:j" in tests.families.loc["S_j", "note"]
    assert "S_j" not in tests.table.index.get_level_values("family")
    assert "Not tested: S_j" in str(tests)
    by_hand = data["j"].astype(str) + "_" + (data.groupby(["k", "j"]).cumcount() + 1).astype(str)
    by_hand = by_hand.where(data["j"] < 4, "pooled").rename("ids")
    for family, relaxed in {"c": model.relax_intercept(by=by_hand), "bx": model.relax_slope("x", by=by_hand),
                            "S_e": model.relax_residuals(by=by_hand)}.items():
        assert tests.families.loc[family, "note"] == ""
        assert "9 positions holding fewer than 2 observations (9 in all) share one group, 'pooled'" in \
            tests.families.loc[family, "grouping"]
        assert tests.families.loc[family, "df"] == 9  # 9 positions and the pooled group
        direct = score_test(res, relaxed)
        assert tests.families.loc[family, "chi2"] == pytest.approx(direct.statistic, rel=1e-9)
        pooled = tests.table.loc[family].index[-2]
        assert pooled.endswith("[pooled]")
        assert tests.table.loc[(family, pooled), "chi2"] == pytest.approx(direct.table.loc[pooled, "chi2"], rel=1e-9)


def test_many_positions_are_freed_by_the_slots_of_a_level_above():
    """Ragged districts: hundreds of (school, pupil) positions give way to the school slots."""
    data = sms.simulate_districts(6000, seed=3)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = model.fit()
    tests = res.score_tests(["bx", "S_j"])
    grouping = tests.families.loc["bx", "grouping"]
    assert grouping.startswith("by the slot of k:j (")
    assert "positions, more than the 50 groups a family frees" in grouping
    assert tests.families.loc["S_j", "grouping"].startswith("by position")
    slots = position_labels(model, "k:j")
    direct = score_test(res, model.relax_slope("x", by=pd.Series(slots, name="slot")))
    assert tests.families.loc["bx", "chi2"] == pytest.approx(direct.statistic, rel=1e-9)
    assert "freed by the slot of k:j" in str(tests)


def test_rho_from_the_fit_and_from_the_relaxed_model():
    """Integer times: rho at 0 from the fit (expected information) or, asked for, from the relaxed model's
    observed information, both close to the LR statistic under a departure; real times: no score test."""
    data = simulate(300, seed=7, departure="rho", size=0.2)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    res = model.fit()
    expected = res.score_tests(["rho"], t=data["i"].to_numpy())
    observed = res.score_tests(["rho"], t=data["i"].to_numpy(), information="observed")
    assert expected.families.loc["rho", "information"] == "expected"
    assert observed.families.loc["rho", "information"] == "observed"
    lr = res.lr_test(model.relax_residuals(structure="ar1", t="i").fit())
    for tests in (expected, observed):
        assert tests.families.loc["rho", "chi2"] == pytest.approx(lr.statistic, rel=0.15)
    real = res.score_tests(["rho"], t=data["i"].to_numpy() + 0.5 * (data["k"].to_numpy() % 2))
    assert "not whole numbers" in real.families.loc["rho", "note"]


def test_relaxed_fit_tests_the_other_constraints():
    data = simulate(40, seed=6)
    data["half"] = np.where(data["i"] == 1, "first", "later")
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_slope("x", by="half")
    tests = model.fit().score_tests()
    assert tests.families.loc["bx", "note"] == "already relaxed by 'half'"
    assert list(tests.families.index) == ["c", "bx", "S_j", "S_e", "rho"]
    assert tests.families.loc["S_e", "note"] == ""


def test_refusals(article):
    model, res = article
    with pytest.raises(ValueError, match="need an ML fit"):
        model.fit(reml=True).score_tests()
    with pytest.raises(ValueError, match=r"no family labelled \['S_k'\]"):
        res.score_tests(["S_k"])
    with pytest.raises(ValueError, match="level must be one of"):
        position_labels(model, "k")


def test_families_of_ragged_keyed_data_equal_the_relaxed_models():
    """Ragged districts with the school variance by type (slots keyed by type): more than 16 groups of
    school slots, held as small integer codes, for every family tested from the fit."""
    data = sms.simulate_districts(3000, seed=1)
    rng = np.random.default_rng(1)
    school = data.groupby(["k", "j"]).ngroup().to_numpy()
    data["type"] = rng.choice(["pub", "prv", "chr"], size=school.max() + 1)[school]
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_variance("k:j", by="type")
    res = model.fit()
    tests = res.score_tests(["c", "S_e"])
    families = {f.label: f for f in constraint_families(model)}
    for label in ("c", "S_e"):
        assert tests.families.loc[label, "df"] > 16
        direct = score_test(res, families[label].relax(model))
        assert tests.families.loc[label, "chi2"] == pytest.approx(direct.statistic, rel=1e-7)


def test_families_of_an_ar1_fit_take_the_observed_information():
    data = simulate(80, seed=9, departure="rho", size=0.3)
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residuals(structure="ar1", t="i").fit()
    tests = res.score_tests()
    assert tests.families.loc["rho", "note"].startswith("already relaxed")
    for label in ("c", "bx", "S_j"):
        assert tests.families.loc[label, "information"] == "observed"
        assert tests.families.loc[label, "note"] == "" and np.isfinite(tests.families.loc[label, "chi2"])
    assert "relax_residuals(structure='ar1', t=..., by=...)" in tests.families.loc["S_e", "note"]
    assert "[observed information]" in str(tests)
