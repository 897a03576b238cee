"""Residual structures within a residual grouping: exchangeable residuals (Stata ``mixed,
residuals(exchangeable)``, nlme ``corCompSymm``) and unstructured residuals along occasions
(Stata ``residuals(unstructured, t(time))``, nlme ``corSymm`` with ``varIdent(~ 1 | time)``).

The residuals of one unit of the *residual grouping* share a covariance:

.. math:: R_u = (\\sigma^2_e - c)\\, I + c\\, 1 1', \\qquad
          \\sigma^2_e - c > 0, \\quad \\sigma^2_e + (n_u - 1)\\, c > 0,

``var(Residual)`` = :math:`\\sigma^2_e` and ``cov(Residual)`` = :math:`c`, which may be
negative (down to :math:`-\\sigma^2_e/(n_u - 1)` for the largest unit). It is a random
intercept of the unit with "variance" ``c`` on top of independent residuals of variance
``var - cov``, so the nested likelihood evaluates it in closed form from the same per-unit
sums (:class:`~sm_multisem.engine.likelihood.NestedNormal` with ``residual_covariance=True``).

The residual grouping must not carry a random intercept of its own: ``var(level) 1 1' + R_u``
with an exchangeable ``R_u`` identifies only ``var(level) + cov``. It is therefore a grouping
*below* the lowest random level, named by ``within=``: ``(1|k)`` with residuals exchangeable
within ``k:j``. In the layout it is the lowest level (its slots are positions of the wide
model), and the parameter table writes its covariance as equal-labelled residual
covariances ``y1_1 ~~ C_e*y1_2`` between the positions of one unit.

Unstructured residuals give every occasion its variance and every pair of occasions its
covariance, Toeplitz residuals one variance and a covariance per lag: a dense block of every unit
of the residual grouping, evaluated in the recursion (:class:`~sm_multisem.engine.whitened.BlockResiduals`).
Their wide form numbers the positions of a unit by occasion, with one label per occasion and per
pair (``S_e_t2``, ``C_e_t1_t2``) or per lag (``C_e_lag1``). Unstructured residuals by a label of
the units (a set per label) are fitted by the dense wide engine
(:func:`~sm_multisem.correlate.unstructured_model`) from the exchangeable model's table, so their number of
positions (units of the residual grouping per cluster times occasions) is bounded by
:data:`~sm_multisem.wide_model.MAX_POSITIONS`.
"""

from __future__ import annotations

import dataclasses
from itertools import combinations

import numpy as np
import pandas as pd

from .layout import build_layout, level_name

__all__ = ["RESIDUAL_KINDS", "STRUCTURES", "check_occasion_pairs", "check_occasions", "exchangeable_changes",
           "exchangeable_rows", "with_residual_heading"]

#: The residual structures :meth:`~sm_multisem.MultilevelSEM.relax_residuals` fits.
STRUCTURES = ("independent", "ar1", "exchangeable", "unstructured", "banded", "toeplitz")
#: Relaxations of the residuals; exchangeable residuals combine with none of the others.
RESIDUAL_KINDS = ("residual variance", "residual correlation", "residual covariance", "residual block")


def exchangeable_changes(model, within: str | None, structure: str = "exchangeable") -> dict:
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
                       f"y ~ x + (1|{'/'.join(layout.levels[-2])}) with relax_residuals(structure='{structure}', "
                       f"within='{layout.levels[-1][-1]}')")
        else:
            instead = ("Without a random effect above the residual grouping the model is a marginal GLS model "
                       "(nlme gls()), which is not fitted here")
        form = {"exchangeable": "= (var(e) - cov(e)) I + cov(e) 1 1' already holds a term in 1 1', so only "
                                "var + cov(e) is identified",
                "unstructured": "with a free covariance for every pair of occasions already spans 1 1', so var is "
                                "not identified",
                "toeplitz": "with a covariance per lag already spans 1 1' (a covariance at every lag), so var is "
                            "not identified",
                "ar1": "runs within the lowest units already: leave within= out for AR(1) residuals within "
                       f"{named}"}[structure]
        raise ValueError(
            f"{structure} residuals within the units of {named!r}, which carry their own random intercept, are "
            f"confounded with its variance: Sigma = var 1 1' + R, and the {structure} R {form}. {instead}."
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
    """The random-effects rows of a summary with Stata ``mixed``'s heading above the residual
    structure's parameters (``Residual: Exchangeable``, ``Residual: AR(1)``), one heading per
    label with ``by=``."""
    rules = model.table.rules
    structure = rules[rules["kind"].isin(["residual covariance", "residual correlation", "residual block covariance"])]
    if not len(structure):
        return random
    blank = pd.DataFrame([[""] * random.shape[1]], columns=random.columns)
    if structure["kind"].iloc[0] == "residual block covariance":
        kind, _, order = next(r.per for r in model.relaxations if r.kind == "residual block").partition(":")
        name = kind.capitalize() + (f"({order})" if order else "")
        title = f"Residual: {name} within {model.layout.level_names[-1]} along {structure['by'].iloc[0]}"
        rows = random.index.str.contains(r"^(?:var|cov)\(Residual\)")
        return pd.concat([random[~rows], blank.set_axis([title]), random[rows]])
    if structure["kind"].iloc[0] == "residual covariance":
        title = f"Exchangeable within {structure['level'].iloc[0]}"
    else:
        time = next(r.by for r in model.relaxations if r.kind == "residual correlation")
        title = f"AR(1) along {time} within {model.layout.level_names[-1]}"
    pieces = [random[~random.index.str.contains(r"^(?:var|cov|rho)\(Residual\)")]]
    by = structure["by"].iloc[0]
    pieces.append(blank.set_axis([f"Residual: {title}" + (f", by {by}" if by else "")]))
    for value, name in zip(structure["where"], structure["name"]):
        if by:
            pieces.append(blank.set_axis([f"  {by} = {value}"]))
        suffix = f"[{value}]" if by else ""
        pieces.append(random.loc[[f"var(Residual){suffix}", name]])
    return pd.concat(pieces)


def check_occasions(model, t, layout, band: int | None = None) -> None:
    """Refuse occasions of ``t`` whose unstructured variances or covariances (those ``band`` apart at
    most, if given) the units of the residual grouping (the lowest level of ``layout``) cannot identify
    (see :func:`check_occasion_pairs`)."""
    from .relax import occasion_times

    if not isinstance(t, str) or t not in model._recipe["frame"].columns:
        raise ValueError(f"t={t!r} must name a column of the data (the occasion of every row)")
    times = occasion_times(t, model._recipe["frame"][t].to_numpy()[model._recipe["source"].rows_used], layout)
    occasions, code = np.unique(times, return_inverse=True)
    check_occasion_pairs(layout, code, occasions, t, band=band)


def check_occasion_pairs(layout, code: np.ndarray, occasions: np.ndarray, t: str, units=None, which: str = "",
                     band: int | None = None) -> None:
    """Refuse occasions whose variances or covariances the units (``units``: a mask of the residual
    grouping's units, all by default; ``which`` says which in the messages) cannot identify."""
    seen = np.zeros((layout.n_units[-1], len(occasions)))
    seen[layout.unit_of_rows(len(layout.levels) - 1), code] = 1.0
    if units is not None:  # the occasions a label never has carry no parameter of that label
        seen = seen[units]
        present = seen.any(0)
        seen, occasions = seen[:, present], occasions[present]
    n_units, n_times = seen.shape
    together = seen.T @ seen  # units observing both occasions
    if n_units <= n_times:
        raise ValueError(f"{n_units} units of {layout.level_names[-1]}{which} cannot estimate a {n_times} x "
                         f"{n_times} unstructured covariance of the {n_times} occasions of {t}: it needs more units "
                         "than occasions")
    lonely = np.flatnonzero(np.diag(together) < 2)
    if len(lonely):
        raise ValueError(f"occasion {t} = {occasions[lonely[0]]} is observed in fewer than two units{which}: its "
                         "residual variance is not identified")
    apart = np.abs(np.subtract.outer(occasions, occasions))
    never = np.argwhere((together == 0) & (apart <= (np.inf if band is None else band)))
    if len(never):
        s, u = occasions[never[0]]
        raise ValueError(f"occasions {t} = {s} and {u} are never observed together in one unit{which}: their "
                         "residual covariance is not identified")
