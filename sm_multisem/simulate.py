"""Simulated nested data: the source article's design and general unbalanced designs."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_article_data", "simulate_districts", "simulate_nested"]

_ROWS_PER_DISTRICT = 10 * 22.5  # mean schools per district times mean students per school


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


def simulate_districts(target_rows: int, seed: int) -> pd.DataFrame:
    """Districts (k) of 5-15 schools (j, numbered within district) of 5-40 students.

    ``y = 1 + 2x + u_k + v_jk + e`` with ``x ~ N(0, 1)`` and standard deviations 1, 0.7, 1:
    the design of the benchmarks (``benchmarks/``), a realistic unbalanced one.

    Parameters
    ----------
    target_rows : int
        About this many rows: the number of districts is it divided by the mean district
        size (225 rows).
    seed : int

    Returns
    -------
    DataFrame
        Columns ``k, j, x, y`` (ids 1-based, schools numbered within their district).
    """
    rng = np.random.default_rng([seed, target_rows])
    n_districts = max(1, round(target_rows / _ROWS_PER_DISTRICT))
    n_schools = rng.integers(5, 16, size=n_districts)
    school_size = rng.integers(5, 41, size=int(n_schools.sum()))
    school = np.repeat(np.arange(len(school_size)), school_size)
    district_of_school = np.repeat(np.arange(n_districts), n_schools)
    first_school = np.r_[0, np.cumsum(n_schools)[:-1]]
    k = district_of_school[school]
    j = school - first_school[k]
    n = len(school)
    x = rng.normal(size=n)
    y = (
        1.0
        + 2.0 * x
        + rng.normal(scale=1.0, size=n_districts)[k]
        + rng.normal(scale=0.7, size=len(school_size))[school]
        + rng.normal(scale=1.0, size=n)
    )
    return pd.DataFrame({"k": k + 1, "j": j + 1, "x": x, "y": y})
