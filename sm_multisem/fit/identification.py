"""Refusals and warnings for models the data cannot identify, raised before anything is fitted.

Each check names what is wrong and what to write instead: a relaxation the likelihood does
not evaluate, collinear fixed effects, an outcome the covariates fit exactly inside the lowest
units, levels whose variances enter only as a sum, and levels the fixed effects absorb.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ..engine.likelihood import NestedNormal
from ..spec.data import ModelData
from ..spec.layout import WideLayout
from ..spec.relax import Relaxation
from ..spec.spec import INTERCEPT

__all__ = ["check_absorbed_levels", "check_effects", "check_identification", "check_rank"]


def check_effects(effects: dict, relaxations: tuple[Relaxation, ...]) -> None:
    """Refuse relaxations the random-effects likelihood does not evaluate, naming them: with random slopes
    or correlated sibling effects, slopes, intercepts, residual variances by label and variances of the
    correlated siblings only."""
    correlated = {r.target for r in relaxations if r.kind == "covariance"}
    block = any(r.kind == "residual block" for r in relaxations)
    relaxed = sorted({r.kind for r in relaxations if r.kind not in ("slope", "intercept", "residual variance",
                                                                    "covariance", "residual block")
                      and not (r.kind == "variance" and r.target in correlated and not effects)})
    slope_blocks = [block for level in correlated for block in effects.get(level, ())
                    if block.correlated and INTERCEPT in block.names and len(block.names) > 1]
    if slope_blocks:
        raise NotImplementedError(
            f"correlating the intercepts of sibling units of {sorted(correlated)[0]} whose random slopes are "
            f"correlated with them ({'+'.join(slope_blocks[0].names)}) is not implemented; write the level's slopes "
            "independent of its intercept, (1|k:j) + (0 + x|k:j) or (1 + x||k:j)")
    if (effects or correlated or block) and relaxed:
        what = ("random slopes" if effects else "correlated sibling effects" if correlated
                else "a residual block")
        raise NotImplementedError(f"relaxing the {', '.join(relaxed)} of a model with {what} is not implemented "
                                  "(relax_slope, relax_intercept, relax_residuals(by=) and, of the correlated "
                                  "level, relax_variance are)")


def check_identification(likelihood: NestedNormal, layout: WideLayout) -> None:
    """Refuse data with an unbounded likelihood; warn about variances that are not identified.

    * The outcome fitted exactly by the covariates and the lowest units (some unit holding
      several rows): the residual variance can shrink to 0 and the likelihood grows without
      bound, so any "estimate" would be meaningless. Refused.
    * Every unit of a level holding a single child (a single observation, for the lowest
      level): the level's variance and the one below it enter only as their sum. Warned.
    """
    dof, rss, tss = likelihood.within_unit_residual()
    lowest = layout.level_names[-1]
    if layout.n_rows > layout.n_units[-1] and rss <= 1e-12 * max(tss, 1e-300):
        raise ValueError(
            f"the residual variance is not identified: inside the units of {lowest} the outcome has "
            f"{'no variation' if tss == 0 else 'no variation left after the covariates'} "
            f"({layout.n_rows:,} rows, {layout.n_units[-1]:,} units of {lowest}, {max(dof, 0)} degrees of "
            f"freedom within them), so the likelihood has no maximum; remove the (1|{lowest}) term or "
            "the covariates that vary only within units"
        )
    below = [*layout.level_names[1:], "Residual"]
    for level, (name, child) in enumerate(zip(layout.level_names, below)):
        n_children = layout.n_units[level + 1] if level + 1 < len(layout.levels) else layout.n_rows
        if n_children == layout.n_units[level]:
            warnings.warn(
                f"every unit of {name} holds a single {'observation' if child == 'Residual' else child + ' unit'}: "
                f"var({name}) and var({child}) enter the likelihood only as their sum and are not "
                "separately identified; consider removing the term",
                ConvergenceWarning,
                stacklevel=4,
            )


def check_absorbed_levels(exog: np.ndarray, layout: WideLayout) -> None:
    """Warn about a level whose effects the fixed effects absorb: one top-level cluster, ``C(k)``.

    When the indicator of every unit of a level is a combination of the fixed-effect
    columns, the profiled likelihood falls as the level's variance grows (its effects only
    add to the determinant), so the estimate is 0 whatever the data. The indicators are
    linearly independent, so this needs no more units than fixed effects; only such levels
    are checked, through each unit's column sums: the indicator of unit u is in the span
    of X when n_u = s_u' (X'X)^-1 s_u. The model stays a valid likelihood, so it is a
    warning, as for the confounded levels of :func:`check_identification`.
    """
    n_columns = exog.shape[1]
    for level, name in enumerate(layout.level_names):
        n_units = layout.n_units[level]
        if n_units > n_columns:
            continue
        unit = layout.unit_of_rows(level)
        sorted_exog = layout.sort_rows(exog)
        sums = np.column_stack([np.bincount(unit, weights=sorted_exog[:, c], minlength=n_units)
                                for c in range(n_columns)])
        counts = np.bincount(unit, minlength=n_units)
        explained = np.einsum("uc,cu->u", sums, np.linalg.solve(exog.T @ exog, sums.T))
        if np.any(counts - explained > 1e-8 * counts):
            continue
        if n_units == 1:
            why = (f"the data hold a single {name} cluster, so var({name}) cannot be told apart from the intercept "
                   f"(the wide model has one row)")
        else:
            why = (f"the fixed effects give each of the {n_units} units of {name} its own mean, which absorbs "
                   f"their random effects")
        warnings.warn(f"var({name}) is not identified: {why}; its estimate is 0 whatever the data. Remove the "
                      f"(1|{name}) term{'' if n_units == 1 else ' or those fixed effects'}.",
                      ConvergenceWarning, stacklevel=4)


def check_rank(model_data: ModelData) -> None:
    """Refuse a fixed-effect design whose columns are linearly dependent, naming them."""
    exog = model_data.exog
    if exog.shape[0] < exog.shape[1]:
        raise ValueError(f"{exog.shape[0]} rows cannot estimate {exog.shape[1]} fixed effects")
    # each column to unit length first: a column around 1e11 (money in units) must not make the others look
    # negligible; a diagonal of R then is the share of its column that the columns before it do not explain
    norms = np.linalg.norm(exog, axis=0)
    diag = np.abs(np.diag(np.linalg.qr(exog / np.where(norms > 0, norms, 1.0), mode="r")))
    dependent = [name for name, d in zip(model_data.exog_names, diag) if d <= 1e-10]
    if dependent:
        raise ValueError(
            f"the fixed-effect columns are collinear: {dependent} "
            f"{'is a linear combination' if len(dependent) == 1 else 'are linear combinations'} "
            "of the columns before it; remove it from the formula"
        )
