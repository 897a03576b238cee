"""Plots of a fit; matplotlib is an optional dependency, imported only when a plot is drawn."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["plot_random_effects"]

#: Above this many units the axis shows ranks, not every unit's ids.
MAX_LABELLED_UNITS = 50


def _require_pyplot() -> None:
    try:
        import matplotlib.pyplot  # noqa: F401  (only whether it imports)
    except ImportError as err:
        raise ImportError("plotting needs matplotlib, an optional dependency: "
                          "pip install 'sm_multisem[plot]' (or pip install matplotlib)") from err


def plot_random_effects(results, level: str | None = None, *, ax=None, alpha: float = 0.05):
    """Caterpillar plot: a level's predicted random effects, sorted, with prediction intervals.

    Every unit is a point at its predicted effect ``E[v | y]`` (``results.random_effects``)
    with a bar of plus or minus ``z_{1-alpha/2}`` conditional standard deviations
    (``results.random_effects_se``), sorted from the lowest effect to the highest, as lme4's
    ``dotplot(ranef(fit, condVar = TRUE))``. A line marks 0, the effect of an average unit.

    Parameters
    ----------
    results : MultilevelSEMResults
    level : str, optional
        The level (``"k"``, ``"k:j"``); by default the top level.
    ax : matplotlib Axes, optional
        Draw into these axes; by default a new figure.
    alpha : float
        ``1 - alpha`` is the coverage of the intervals (0.05: plus or minus 1.96 SDs).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require_pyplot()  # a clear message before statsmodels' own import of matplotlib
    from statsmodels.graphics.utils import create_mpl_ax

    names = results.model.layout.level_names
    level = names[0] if level is None else level
    if level not in names:
        raise ValueError(f"level {level!r} is not one of {list(names)}")
    effects, se = results.random_effects[level], results.random_effects_se[level]
    order = np.argsort(effects.to_numpy(), kind="stable")
    z = stats.norm.ppf(1 - alpha / 2)
    rank = np.arange(len(order))
    fig, ax = create_mpl_ax(ax)
    ax.axvline(0.0, color="0.6", linewidth=0.8, zorder=0)
    ax.errorbar(effects.to_numpy()[order], rank, xerr=z * se.to_numpy()[order], fmt="o", markersize=3,
                elinewidth=1, capsize=0)
    if len(order) <= MAX_LABELLED_UNITS:
        ids = effects.index[order]
        ax.set_yticks(rank, [":".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in ids])
    else:
        ax.set_yticks([])
    ax.set_ylim(-1, len(order))
    ax.set_xlabel(f"predicted effect of {level} \N{PLUS-MINUS SIGN} {z:.3g} conditional SD")
    ax.set_ylabel(f"units of {level}, sorted")
    return fig
