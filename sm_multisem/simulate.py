"""Simulated nested data: the source article's design and general unbalanced designs."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_article_data", "simulate_nested"]


def simulate_article_data(
    n_clusters: int = 100,
    n_units: int = 2,
    n_obs: int = 2,
    beta: float = 2.0,
    sd: tuple[float, float, float] = (1.0, 1.0, 1.0),
    seed: int | None = 12345,
) -> pd.DataFrame:
    """The article's 3-level data: ``y = beta * x + U_k + V_jk + E_ijk``, ``x ~ U(0, 1)``.

    Parameters
    ----------
    n_clusters, n_units, n_obs : int
        K top-level clusters, J units in each, I observations in each unit.
    beta : float
    sd : tuple of float
        Standard deviations of ``U``, ``V`` and ``E``.
    seed : int, optional

    Returns
    -------
    DataFrame
        Columns ``k, j, i, x, y`` (ids 1-based, as in the article).
    """
    return simulate_nested((n_clusters, n_units, n_obs), sd=sd, beta=(0.0, beta), seed=seed)


def simulate_nested(
    sizes: tuple[int, ...],
    *,
    sd: tuple[float, ...],
    beta: tuple[float, ...] = (0.0, 2.0),
    seed: int | None = None,
    drop_fraction: float = 0.0,
) -> pd.DataFrame:
    """Balanced nested data, optionally made unbalanced by dropping rows at random.

    Parameters
    ----------
    sizes : tuple of int
        Number of units at each level, top first; the last entry is observations per
        lowest unit. ``(100, 2, 2)`` is K=100, J=2, I=2.
    sd : tuple of float
        Standard deviation of the random intercept of every grouping level, then of the
        residual (``len(sizes)`` entries).
    beta : tuple of float
        Intercept and slopes; each slope multiplies a ``U(0, 1)`` covariate
        ``x`` (``x1, x2, ...`` when there are several).
    seed : int, optional
    drop_fraction : float
        Share of rows dropped at random.

    Returns
    -------
    DataFrame
        One id column per grouping level (``k, j`` for three levels, ``l1, l2, ...``
        beyond), ``i``, the covariates and ``y``.
    """
    if len(sd) != len(sizes):
        raise ValueError(f"sd needs {len(sizes)} entries (one per grouping level and the residual)")
    rng = np.random.default_rng(seed)
    n = int(np.prod(sizes))
    index = np.indices(sizes).reshape(len(sizes), -1)
    names = ["k", "j"] if len(sizes) == 3 else [f"l{i + 1}" for i in range(len(sizes) - 1)]
    frame = {name: index[level] + 1 for level, name in enumerate(names)}
    frame["i"] = index[-1] + 1
    y = np.full(n, float(beta[0]))
    for level in range(len(sizes) - 1):
        n_units = int(np.prod(sizes[: level + 1]))
        unit = np.ravel_multi_index(index[: level + 1], sizes[: level + 1])
        y += rng.normal(scale=sd[level], size=n_units)[unit]
    slopes = beta[1:]
    for s, slope in enumerate(slopes):
        x = rng.uniform(size=n)
        frame["x" if len(slopes) == 1 else f"x{s + 1}"] = x
        y += slope * x
    frame["y"] = y + rng.normal(scale=sd[-1], size=n)
    data = pd.DataFrame(frame)
    if drop_fraction:
        data = data[rng.uniform(size=n) >= drop_fraction].reset_index(drop=True)
    return data
