"""Residual structures within a residual grouping: exchangeable residuals (Stata ``mixed,
residuals(exchangeable)``, nlme ``corCompSymm``).

The residuals of one unit of the *residual grouping* share a covariance:

.. math:: R_u = (\\sigma^2_e - c)\\, I + c\\, 1 1', \\qquad
          \\sigma^2_e - c > 0, \\quad \\sigma^2_e + (n_u - 1)\\, c > 0,

``var(Residual)`` = :math:`\\sigma^2_e` and ``cov(Residual)`` = :math:`c`, which may be
negative (down to :math:`-\\sigma^2_e/(n_u - 1)` for the largest unit). It is a random
intercept of the unit with "variance" ``c`` on top of independent residuals of variance
``var - cov``, so the nested likelihood evaluates it in closed form from the same per-unit
sums (:class:`~sm_multisem.likelihood.NestedNormal` with ``residual_covariance=True``).

The residual grouping must not carry a random intercept of its own: ``var(level) 1 1' + R_u``
with an exchangeable ``R_u`` identifies only ``var(level) + cov``. It is therefore a grouping
*below* the lowest random level, named by ``within=``: ``(1|k)`` with residuals exchangeable
within ``k:j``. In the layout it is the lowest level (its slots are positions of the wide
model), and the parameter table writes its covariance as equal-labelled residual
covariances ``y1_1 ~~ C_e*y1_2`` between the positions of one unit.
"""

from __future__ import annotations

import dataclasses
from itertools import combinations

import numpy as np
import pandas as pd

from .layout import build_layout, level_name

__all__ = ["RESIDUAL_KINDS", "STRUCTURES", "exchangeable_changes", "exchangeable_rows",
           "with_residual_heading"]

#: The residual structures :meth:`~sm_multisem.MultilevelSEM.relax_residuals` fits.
STRUCTURES = ("independent", "ar1", "exchangeable")
#: Relaxations of the residuals; exchangeable residuals combine with none of the others.
RESIDUAL_KINDS = ("residual variance", "residual correlation", "residual covariance")


def exchangeable_changes(model, within: str | None) -> dict:
    """The model's recipe with the residual grouping ``within`` added below its lowest level.

    Parameters
    ----------
    model : MultilevelSEM
    within : str or None
        A column of the data whose units, nested in the lowest random level, are the residual
        grouping; None names the lowest random level itself, which is refused.

    Raises
    ------
    ValueError
        A grouping that is (or contains) a random level, confounded with that level's variance;
        a column that is not in the data or is missing in rows used; or a model already
        carrying a residual structure.
    """
    if any(r.kind in RESIDUAL_KINDS for r in model.relaxations):
        raise ValueError("the model already has a residual structure (AR(1), exchangeable, or a variance by label); "
                         "exchangeable residuals take their variances by label through by=")
    layout = model.layout
    lowest = layout.level_names[-1]
    random_columns = {column for grouping in layout.levels for column in grouping}
    if within is None or within in random_columns or within in layout.level_names:
        named = lowest if within is None else within
        if len(layout.levels) > 1:
            instead = (f"Drop the random term of the residual grouping and name it with within=, e.g. "
                       f"y ~ x + (1|{'/'.join(layout.levels[-2])}) with relax_residuals(structure='exchangeable', "
                       f"within='{layout.levels[-1][-1]}')")
        else:
            instead = ("Without a random effect above the residual grouping the model is a marginal GLS model "
                       "(nlme gls()), which is not fitted here")
        raise ValueError(
            f"exchangeable residuals within the units of {named!r}, which carry their own random intercept, are "
            f"confounded with its variance: Sigma = var 1 1' + R, and an exchangeable R = (var(e) - cov(e)) I + "
            f"cov(e) 1 1' already holds a term in 1 1', so only var + cov(e) is identified. {instead}."
        )
    frame = model._recipe["frame"]
    if not isinstance(within, str) or frame is None or within not in frame.columns:
        raise ValueError(f"within={within!r} must name a column of the data the model was built from")
    source = model._recipe["source"]
    values = pd.Series(frame[within].to_numpy()[source.rows_used])
    if values.isna().any():
        raise ValueError(f"the residual grouping {within!r} is missing in {int(values.isna().sum()):,} rows used")
    ids = source.ids.copy()
    ids[within] = values.to_numpy()
    groupings = (*layout.levels, (*layout.levels[-1], within))
    terms = f"{model._recipe['terms']} with residuals within {level_name(groupings[-1])}"
    grouped = build_layout(ids, groupings, terms)
    _check_grouping(grouped)
    return {"source": dataclasses.replace(source, ids=ids), "groupings": groupings, "layout": grouped, "terms": terms}


def _check_grouping(layout) -> None:
    """Refuse a residual grouping that the data cannot tell from the level above it or from nothing."""
    *_, above, name = layout.level_names
    if layout.n_units[-1] == layout.n_units[-2]:
        raise ValueError(f"every unit of {above} holds a single unit of {name}: the residual covariance within "
                         f"{name} is then confounded with var({above}); the residual grouping must split the units "
                         f"of {above}")
    if layout.unit_sizes(len(layout.levels) - 1).max() < 2:
        raise ValueError(f"every unit of {name} holds a single observation: a covariance of residuals within "
                         f"{name} is not identified")


def exchangeable_rows(rules: pd.DataFrame, y_names: list[str], units, rows_at, label_at) -> list[tuple]:
    """Residual covariances of every pair of positions of one unit of the residual grouping.

    ``units`` is the unit part of every position's name, ``rows_at`` a data row standing for each
    position and ``label_at(rule, row)`` whether a (labelled) rule applies there.
    """
    rows = []
    for a, b in combinations(range(len(y_names)), 2):
        if units[a] == units[b]:
            rule = next(rule for rule in rules.itertuples(index=False) if label_at(rule, rows_at[a]))
            rows.append((y_names[a], "~~", y_names[b], rule.label, True, np.nan))
    return rows


def with_residual_heading(model, random: pd.DataFrame) -> pd.DataFrame:
    """The random-effects rows of a summary with Stata ``mixed``'s heading above an exchangeable
    structure's parameters (``Residual: Exchangeable``), one heading per label with ``by=``."""
    rules = model.table.rules
    covariance = rules[rules["kind"] == "residual covariance"]
    if not len(covariance):
        return random
    blank = pd.DataFrame([[""] * random.shape[1]], columns=random.columns)
    pieces = [random[~random.index.str.contains(r"^(?:var|cov)\(Residual\)")]]
    within = covariance["level"].iloc[0]
    by = covariance["by"].iloc[0]
    pieces.append(blank.set_axis([f"Residual: Exchangeable within {within}" + (f", by {by}" if by else "")]))
    for value, name in zip(covariance["where"], covariance["name"]):
        if by:
            pieces.append(blank.set_axis([f"  {by} = {value}"]))
        suffix = f"[{value}]" if by else ""
        pieces.append(random.loc[[f"var(Residual){suffix}", name]])
    return pd.concat(pieces)
