"""The caterpillar plot draws every unit's predicted effect with its interval, sorted."""

import sys

import numpy as np
import pytest

import sm_multisem as sms

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen


@pytest.fixture(scope="module")
def res(unbalanced_data):
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", unbalanced_data).fit()


@pytest.mark.parametrize("level", ["k", "k:j"])
def test_one_point_and_one_interval_per_unit_sorted(res, level):
    fig = res.plot_random_effects(level)
    ax = fig.axes[0]
    (bars,) = ax.containers
    points, _, (segments,) = bars.lines
    effects, se = res.random_effects[level], res.random_effects_se[level]
    n = len(effects)
    x = np.asarray(points.get_xdata())
    assert len(x) == n and len(segments.get_segments()) == n
    np.testing.assert_array_equal(x, np.sort(effects.to_numpy()))
    order = np.argsort(effects.to_numpy(), kind="stable")
    ends = np.array([[seg[0][0], seg[1][0]] for seg in segments.get_segments()])
    np.testing.assert_allclose(ends[:, 0], effects.to_numpy()[order] - 1.959963984540054 * se.to_numpy()[order])
    np.testing.assert_allclose(ends[:, 1], effects.to_numpy()[order] + 1.959963984540054 * se.to_numpy()[order])
    plt.close(fig)


def test_few_units_are_labelled_by_their_ids_into_given_axes():
    data = sms.simulate_article_data(n_clusters=6, seed=4)
    res = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).fit()
    fig, ax = plt.subplots()
    assert res.plot_random_effects("k:j", ax=ax, alpha=0.1) is fig
    order = np.argsort(res.random_effects["k:j"].to_numpy(), kind="stable")
    expected = [f"{k}:{j}" for k, j in res.random_effects["k:j"].index[order]]
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    (segments,) = ax.containers[0].lines[2]
    width = np.diff(segments.get_segments()[0][:, 0])[0]
    assert width == pytest.approx(2 * 1.6448536269514722 * res.random_effects_se["k:j"].to_numpy()[order[0]])
    plt.close(fig)


def test_unknown_level_and_missing_matplotlib_are_explained(res, monkeypatch):
    with pytest.raises(ValueError, match="level 'school' is not one of"):
        res.plot_random_effects("school")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # as if matplotlib were not installed
    with pytest.raises(ImportError, match=r"needs matplotlib.*pip install 'sm_multisem\[plot\]'"):
        res.plot_random_effects()
