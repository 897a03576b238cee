"""When a model takes the likelihood by missingness pattern, and the positions it is computed over.

:func:`position_codes` numbers the positions of the wide model from the layout and the plan;
:func:`pattern_likelihood` applies the rule that says where the pattern path pays and builds
:class:`~sm_multisem.engine.patterns.PatternNormal`, which knows nothing of the layout.
"""

from __future__ import annotations

import numpy as np

from ..engine.likelihood import NestedNormal
from ..engine.patterns import PatternNormal, Positions, missingness_patterns
from ..spec.layout import WideLayout, combine_codes

__all__ = ["MAX_POSITIONS", "MIN_CLUSTERS_PER_PATTERN", "pattern_likelihood", "position_codes"]

#: Most positions (outcomes of the wide model) the pattern path takes: its set-up costs
#: (positions x columns)^2 per cluster and an evaluation positions^3 per pattern.
MAX_POSITIONS = 16
#: Fewest clusters per missingness pattern, on average, for the pattern path: with fewer, the
#: patterns save little over the recursion, which costs O(units) per evaluation.
MIN_CLUSTERS_PER_PATTERN = 16


def position_codes(layout: WideLayout, unit_variance, row_variance: np.ndarray, n_var: int) -> Positions:
    """Number the positions of the wide model and describe what they share.

    A position is the slot of a row's unit at every level below the top (its rank among its
    parent's children), the row's slot inside its lowest unit, and the variance parameter of
    every unit on the way and of the row: two clusters whose rows hold the same positions
    have the same covariance matrix, whatever labels the slots of the layout carry.

    Parameters
    ----------
    layout : WideLayout
    unit_variance : sequence of ndarray
        For each level (top first), the variance parameter of every unit.
    row_variance : ndarray
        The residual variance parameter of every sorted row.
    n_var : int
        Length of the likelihood's vector of variances.
    """
    n_levels = len(layout.levels)
    # the unit of every level as (slot, variance) pairs from the top down, coded unit by unit (a unit's
    # code is its parent's with its own pair added): only the last two pairs are coded row by row
    code = np.asarray(unit_variance[0])
    prefixes, parents = [code], []
    for level in range(1, n_levels):
        starts = layout.child_starts[level - 1]
        n_units = len(unit_variance[level])
        parent = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n_units)))
        slot = np.arange(n_units) - starts[parent]
        code = combine_codes(code[parent], int(slot.max()) + 1, slot)[0]
        code = combine_codes(code, n_var, np.asarray(unit_variance[level]))[0]
        prefixes.append(code)
        parents.append(parent)
    sizes = np.diff(np.append(layout.row_starts, layout.n_rows))
    row_unit = np.repeat(np.arange(len(sizes)), sizes)
    row_slot = np.arange(layout.n_rows) - np.repeat(layout.row_starts, sizes)
    code = combine_codes(code[row_unit], int(row_slot.max()) + 1, row_slot)[0]
    of_row, n_positions = combine_codes(code, n_var, np.asarray(row_variance))

    # a row standing for every position, and its unit at every level (bottom up): what the position shares
    row_of_position = np.empty(n_positions, dtype=np.intp)
    row_of_position[of_row] = np.arange(layout.n_rows)
    unit = [row_unit[row_of_position]]
    for parent in reversed(parents):
        unit.insert(0, parent[unit[0]])
    return Positions(of_row, tuple(prefix[u] for prefix, u in zip(prefixes, unit)),
                     tuple(np.asarray(variance)[u] for variance, u in zip(unit_variance, unit)),
                     np.asarray(row_variance)[row_of_position])


def pattern_likelihood(model, *, reml: bool) -> PatternNormal | None:
    """The likelihood by missingness pattern of a :class:`~sm_multisem.model.MultilevelSEM`, where it pays.

    The rule: maximum likelihood (REML stays with the recursion), no sampling weights, random
    intercepts with independent residuals (no AR(1) or exchangeable residuals, no random slopes), at most
    :data:`MAX_POSITIONS` positions in the wide model, and on average at least
    :data:`MIN_CLUSTERS_PER_PATTERN` clusters per missingness pattern. Relaxed variances and
    residual variances are positions of their own (a slot with its label's parameter), so a
    relaxed model takes the pattern path as long as its positions and patterns stay few.

    Returns
    -------
    PatternNormal or None
        None where the rule says the recursion (``model.likelihood``).
    """
    nested, layout, plan = model.likelihood, model.layout, model.plan
    if reml or model.cluster_weights is not None or type(nested) is not NestedNormal or len(plan.ar1_entries):
        return None
    cluster_sizes = layout.unit_sizes(0)
    if len(nested.covariances) or cluster_sizes.max() > MAX_POSITIONS:
        return None
    positions = position_codes(layout, plan.unit_variance, plan.row_variance, nested.n_var)
    if positions.n_positions > MAX_POSITIONS:
        return None
    patterns = missingness_patterns(positions.of_row, cluster_sizes)
    if len(patterns) * MIN_CLUSTERS_PER_PATTERN > layout.n_clusters:
        return None
    return PatternNormal(model._likelihood_columns(), positions, patterns, nested)
