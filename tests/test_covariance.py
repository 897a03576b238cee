"""Score-based covariance estimators: OPG, robust and cluster-robust sandwiches."""

import numpy as np
import pytest

import sm_multisem as sms
from dense_reference import finite_difference_hessian


@pytest.fixture(scope="module")
def data(unbalanced_data):
    return unbalanced_data.assign(state=(unbalanced_data["k"] - 1) // 8)


@pytest.fixture(scope="module")
def model(data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)


def hand_sandwich(model, params, groups=None):
    """H^-1 (sum over groups of summed cluster scores, outer) H^-1, H = minus the Hessian of llf."""
    bread = np.linalg.inv(-finite_difference_hessian(model.score, params))
    scores = model.score_obs(params)
    if groups is not None:
        scores = np.vstack([scores[groups == g].sum(0) for g in np.unique(groups)])
    return bread @ scores.T @ scores @ bread, len(scores)


def test_robust_is_the_hand_built_sandwich(model):
    res = model.fit(cov_type="robust")
    sandwich, n = hand_sandwich(model, res.params.to_numpy())
    np.testing.assert_allclose(res.cov_params().to_numpy(), sandwich * n / (n - 1), rtol=1e-5)
    plain = model.fit(cov_type="robust", cov_kwds={"use_correction": False})
    np.testing.assert_allclose(plain.cov_params().to_numpy(), sandwich, rtol=1e-5)
    assert "no small-sample factor" in plain.summary().as_text()


def test_cluster_is_the_hand_built_sandwich(model, data):
    res = model.fit(cov_type="cluster", cov_kwds={"groups": data["state"]})
    state_of_cluster = data.groupby("k")["state"].first().to_numpy()
    sandwich, n = hand_sandwich(model, res.params.to_numpy(), state_of_cluster)
    np.testing.assert_allclose(res.cov_params().to_numpy(), sandwich * n / (n - 1), rtol=1e-5)
    assert f"CLUSTER ({n} groups, factor {n}/{n - 1})" in res.summary().as_text()


def test_cluster_on_the_top_level_is_robust(model, data):
    robust = model.fit(cov_type="robust")
    cluster = model.fit(cov_type="cluster", cov_kwds={"groups": data["k"]})
    np.testing.assert_allclose(cluster.bse.to_numpy(), robust.bse.to_numpy(), rtol=1e-12)


def test_opg_is_the_inverse_outer_product(model):
    res = model.fit(cov_type="opg")
    scores = model.score_obs(res.params.to_numpy())
    np.testing.assert_allclose(res.cov_params().to_numpy(), np.linalg.inv(scores.T @ scores), rtol=1e-10)


def test_estimates_do_not_depend_on_the_covariance(model, data):
    oim = model.fit()
    for cov_type, kwds in [("eim", None), ("opg", None), ("robust", None), ("cluster", {"groups": data["state"]})]:
        np.testing.assert_array_equal(model.fit(cov_type=cov_type, cov_kwds=kwds).params, oim.params)


@pytest.mark.parametrize("kwds, message", [
    ({"groups": "j"}, r"one value per input row"),
    (None, r'needs cov_kwds=\{"groups": ...\}'),
    ({"groups": None, "weights": 1}, r"\['weights'\] are not options"),
])
def test_cluster_option_errors(model, kwds, message):
    with pytest.raises(ValueError, match=message):
        model.fit(cov_type="cluster", cov_kwds=kwds)


def test_clusters_finer_than_the_top_level_are_refused(model, data):
    with pytest.raises(ValueError,
                       match=r"groups vary within units of 'k', the top level: .* clustering below it is impossible"):
        model.fit(cov_type="cluster", cov_kwds={"groups": data["j"]})


def test_a_single_cluster_group_is_refused(model, data):
    with pytest.raises(ValueError, match="needs at least two"):
        model.fit(cov_type="cluster", cov_kwds={"groups": np.zeros(len(data))})


@pytest.mark.parametrize("design", ["article", "unbalanced"])
def test_robust_matches_lavaan_mlr(design):
    """lavaan MLR (tests/reference/lavaan_robust.R): observed-information bread, wide-row scores,
    no small-sample factor, so the comparison turns the factor off."""
    import sys
    from pathlib import Path

    import pandas as pd

    reference = Path(__file__).parent / "reference"
    sys.path.insert(0, str(reference))
    from make_lavaan_inputs import designs

    ref = pd.read_csv(reference / "lavaan_robust.csv")
    ref = ref[(ref["design"] == design) & (ref["information"] == "observed")].set_index("label")["se"]
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", designs()[design])
    res = model.fit(cov_type="robust", cov_kwds={"use_correction": False})
    np.testing.assert_allclose(res.bse.to_numpy(), ref[["c", "bx", "S_k", "S_j", "S_e"]].to_numpy(), rtol=1e-5)
