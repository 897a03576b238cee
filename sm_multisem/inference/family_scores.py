"""Score tests of a parameter freed by groups, from the fit alone: no relaxed model is built.

Freeing the slope of ``x`` by P groups replaces the column ``x`` with P columns ``x 1[g]``; as a
design that is rows x P numbers (half a gigabyte for 50 groups of a million rows), and a relaxed
model copies the data again. But the expected-information score test needs, at the constrained
estimate, only products with ``Sigma^{-1}`` (``K``), which
:class:`~sm_multisem.engine.precision.NestedPrecision` gives from the recursion's units:

* a fixed effect by groups: ``s = X_P'Kr``, ``X_P'KX_P`` and ``X_P'KX``, with ``X_P`` a sparse
  matrix of one entry per row (the expected information of ML is block-diagonal between fixed
  effects and variances, so these are the whole test);
* a variance by groups (of the units of a level, or of the rows): with ``Sigma_g = sum_{v in g}
  z_v z_v'``, the score ``s_g = (1/2) sum_{v in g} ((z_v'Kr)^2 - z_v'Kz_v)`` and the information
  ``(1/2) sum_{v in g, w in h} (z_v'Kz_w)^2`` against the groups and every other variance.

Both equal :func:`~sm_multisem.inference.hypothesis.score_test` of the relaxed model (the tests
check it), at O(rows + P^2) memory. They hold for nested random intercepts with independent
residuals (by label); other structures take the relaxed model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .hypothesis import ScoreTest, score_statistics

__all__ = ["fixed_effect_score_test", "variance_score_test", "tested_from_the_fit"]


def tested_from_the_fit(model, kind: str) -> bool:
    """Whether a family of ``kind`` of this model is tested from its fit (else from the relaxed model).

    Fixed effects: nested random intercepts with independent residuals (by label) or exchangeable
    ones. Variances: the same without exchangeable residuals, one parameter per variance entry.
    """
    plan = model.plan
    nested = not plan.level_effects and plan.row_correlation is None
    if kind in ("intercept", "slope"):
        return nested
    if kind in ("variance", "residual variance"):
        one_each = len(np.unique(plan.variance_index)) == len(plan.variance_index)
        return nested and not len(plan.covariance_entries) and one_each
    return False


def fixed_effect_score_test(results, column: str, codes: np.ndarray, names) -> ScoreTest:
    """Expected-information score test of the fixed effect ``column`` freed by groups of rows.

    Parameters
    ----------
    results : MultilevelSEMResults
        An ML fit of the model with one ``column`` for all rows.
    column : str
        A fixed-effect column (``"x"``, ``"Intercept"``).
    codes : ndarray of int
        The group of every sorted row (the layout's order), an index into ``names``; every group
        holds rows.
    names : sequence of str
        The groups: the freed parameters are named ``column[name]``, as the relaxations name them.

    Returns
    -------
    ScoreTest
        Joint test with ``len(names) - 1`` df, and one row per group: freeing its parameter alone,
        the other groups sharing one, with the expected change from the shared value.

    Raises
    ------
    InformationNotPositiveDefinite
        When the columns by group are collinear with the other fixed effects.
    """
    model = results.model
    beta, variances = model.plan.split(np.asarray(results.params))
    layout, data = model.layout, model.model_data
    exog = layout.sort_rows(data.exog)
    residual = layout.sort_rows(data.endog) - exog @ beta
    at = data.exog_names.index(column)
    split = sp.csr_matrix((exog[:, at], (np.arange(layout.n_rows), codes)), shape=(layout.n_rows, len(names)))
    precision = model.likelihood.precision(variances)
    others = np.delete(np.arange(len(data.exog_names)), at)  # the relaxed model: the groups replace the column
    kept = exog[:, others]
    with_split = precision.cross(kept, split)
    info = np.block([[precision.cross(kept, kept), with_split], [with_split.T, precision.cross(split, split)]])
    weighted_kr = precision.apply(residual) * precision.weight(len(layout.levels))  # each row's cluster weight
    score = np.concatenate([kept.T @ weighted_kr, split.T @ weighted_kr])
    mapping = np.zeros((len(others) + len(names), len(data.exog_names)))
    mapping[np.arange(len(others)), others] = 1.0
    mapping[len(others):, at] = 1.0
    relaxed_names = [data.exog_names[i] for i in others] + [f"{column}[{name}]" for name in names]
    return score_statistics(score, info, mapping, relaxed_names, "expected")


def variance_score_test(results, level: int, codes: np.ndarray, names) -> ScoreTest:
    """Expected-information score test of a variance freed by groups: of the units of ``level``, or of the rows.

    Parameters
    ----------
    results : MultilevelSEMResults
        An ML fit of the model with one variance for the units of ``level`` (the residual variance
        for the rows).
    level : int
        A grouping level below the top (1, ...), or ``len(layout.levels)`` for the residual variance.
    codes : ndarray of int
        The group of every sorted row, an index into ``names``; constant within the units of ``level``.
    names : sequence of str
        The groups: the freed variances are named ``var(<level>)[name]``, as the relaxations name them.

    Returns
    -------
    ScoreTest
        As :func:`fixed_effect_score_test`, the other variances of the model taken into account.
    """
    model = results.model
    plan, layout = model.plan, model.layout
    beta, variances = plan.split(np.asarray(results.params))
    precision = model.likelihood.precision(variances)
    rows = len(layout.levels)
    # every variance entry as the groups of one kind of units: the levels' units, then the rows
    entries_of = [plan.unit_variance[at] for at in range(rows)] + [plan.row_variance]
    target = int(entries_of[level][0])
    if level < rows:
        codes = layout.per_unit(codes, level)[0]
    labelings, relaxed_entries = [(level, codes, len(names))], [None] * len(names)
    for at, entries in enumerate(entries_of):
        if at == level:
            continue
        distinct = np.unique(entries)
        labelings.append((at, np.searchsorted(distinct, entries), len(distinct)))
        relaxed_entries += list(distinct)
    # the score of every group: (1/2) sum over its units of ((z'Kr)^2 - z'Kz)
    exog = layout.sort_rows(model.model_data.exog)
    kr = precision.apply(layout.sort_rows(model.model_data.endog) - exog @ beta)
    score = np.concatenate([
        0.5 * np.bincount(group, weights=precision.weight(at) * (precision.quadratic(at, kr) ** 2
                                                                   - precision.diagonal(at)), minlength=n)
        for at, group, n in labelings])
    info = 0.5 * np.block([[precision.squared_sums(a, codes_a, n_a, b, codes_b, n_b)
                            for b, codes_b, n_b in labelings] for a, codes_a, n_a in labelings])
    variance_params = plan.variance_index  # entry -> parameter, one to one (tested_from_the_fit)
    constrained = [int(variance_params[target])] + [int(variance_params[e]) for e in relaxed_entries[len(names):]]
    mapping = np.zeros((len(relaxed_entries), len(constrained)))
    mapping[: len(names), 0] = 1.0
    mapping[np.arange(len(names), len(relaxed_entries)), np.arange(1, len(constrained))] = 1.0
    base = plan.param_names[variance_params[target]]
    relaxed_names = [f"{base}[{name}]" for name in names] + [plan.param_names[p] for p in constrained[1:]]
    return score_statistics(score, info, mapping, relaxed_names, "expected")
