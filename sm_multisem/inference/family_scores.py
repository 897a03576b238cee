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

from ..engine.segments import time_order
from .hypothesis import ScoreTest, score_statistics

__all__ = ["correlation_score_test", "fixed_effect_score_test", "variance_score_test", "tested_from_the_fit"]


def tested_from_the_fit(model, kind: str) -> bool:
    """Whether a family of ``kind`` of this model is tested from its fit (else from the relaxed model).

    Fixed effects: nested random intercepts with independent residuals (by label) or exchangeable
    ones. Variances: the same without exchangeable residuals, one parameter per variance entry;
    the AR(1) correlation also with one residual variance in every lowest unit.
    """
    plan = model.plan
    nested = not plan.level_effects and plan.row_correlation is None
    if kind in ("intercept", "slope"):
        return nested
    one_each = len(np.unique(plan.variance_index)) == len(plan.variance_index)
    simple = nested and not len(plan.covariance_entries) and one_each
    if kind in ("variance", "residual variance"):
        return simple
    if kind == "residual correlation":  # AR(1) takes one residual variance per lowest unit
        layout = model.layout
        return simple and layout.per_unit(plan.row_variance, len(layout.levels) - 1)[1] is None
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
    precision, kr = _precision_and_kr(results)
    target = int(_entries_by_level(plan, layout)[level][0])
    if level < len(layout.levels):
        codes = layout.per_unit(codes, level)[0]
    labelings = [(level, codes, len(names))] + _variance_labelings(plan, layout, skip=level)
    score, info = _variance_score_and_information(precision, kr, labelings)
    entries = [target] + [int(e) for e in _labelled_entries(plan, layout, skip=level)]
    mapping = np.zeros((len(names) + len(entries) - 1, len(entries)))
    mapping[: len(names), 0] = 1.0
    mapping[len(names):, 1:] = np.eye(len(entries) - 1)
    base = plan.param_names[plan.variance_index[target]]
    relaxed_names = [f"{base}[{name}]" for name in names] + _entry_names(plan, entries[1:])
    return score_statistics(score, info, mapping, relaxed_names, "expected")


def correlation_score_test(results, times: np.ndarray) -> ScoreTest:
    """Expected-information score test of AR(1) residuals within the lowest units, ``rho = 0``.

    At ``rho = 0`` the derivative of ``Sigma`` in ``rho`` is ``sigma_u^2 A_u`` in every lowest unit ``u``,
    ``A_u`` the pairs of its rows one time apart (``rho^|t - s|`` has a slope at 0 only at lag one),
    so the score is a sum over those pairs and the information, with every variance, a sum over the
    units and their ancestors (:class:`~sm_multisem.engine.precision.NestedPrecision`).

    Parameters
    ----------
    results : MultilevelSEMResults
        An ML fit with independent residuals, one residual variance per lowest unit.
    times : ndarray of int
        The time of every sorted row, distinct within every lowest unit.
    """
    model = results.model
    plan, layout = model.plan, model.layout
    precision, kr = _precision_and_kr(results)
    rows, lowest = len(layout.levels), len(layout.levels) - 1
    unit = precision.parent_of[rows]
    order = time_order(times, unit)
    lag_one = np.flatnonzero((np.diff(unit[order]) == 0) & (np.diff(times[order]) == 1))
    first, second = order[lag_one], order[lag_one + 1]
    del order, lag_one  # row-length: the pairs are all that is kept
    n_units = precision.sizes[lowest]
    pair_unit = unit[first]
    weight = precision.steps[rows]  # lambda: a row's weight in its unit's GLS mean
    unit_variance = 1.0 / precision.rho[rows][layout.row_starts]  # one residual variance per unit
    gamma = precision.gamma[lowest]
    unit_weight = np.broadcast_to(np.asarray(precision.weight(lowest), dtype=float), (n_units,))
    pair_lambda = np.bincount(pair_unit, weights=weight[first] * weight[second], minlength=n_units)

    def per_unit(values: np.ndarray) -> np.ndarray:
        return np.bincount(pair_unit, weights=values, minlength=n_units)

    # s = (1/2) r'K S K r - (1/2) tr(K S): over the pairs, K of two rows of a unit being -lambda lambda' gamma
    score = np.sum(unit_weight * unit_variance * (per_unit(kr[first] * kr[second]) + gamma * pair_lambda))
    # tr(K S K S) / 2: the pairs of one unit, then of two units apart at an ancestor
    neighbours = (np.bincount(first, weights=weight[second], minlength=layout.n_rows)
                  + np.bincount(second, weights=weight[first], minlength=layout.n_rows))
    row_precision = precision.rho[rows]
    same = unit_variance**2 * (2.0 * per_unit(row_precision[first] * row_precision[second])
                               - 2.0 * gamma * np.bincount(unit, weights=row_precision * neighbours**2,
                                                            minlength=n_units)
                               + (2.0 * gamma * pair_lambda) ** 2)
    spread = unit_variance * pair_lambda  # half the weight of a unit's pairs in the sums apart
    one = np.zeros(n_units, dtype=np.intp)
    rho_rho = 0.5 * np.sum(unit_weight * same) + 2.0 * precision.apart_sums(lowest, one, 1, lowest, one, 1,
                                                                            spread, spread)[0, 0]
    labelings = _variance_labelings(plan, layout)
    entries = _labelled_entries(plan, layout)
    # the variances among themselves: the model's own score and expected information (O(units) memory)
    params = np.asarray(results.params)
    variance_params = plan.variance_index[entries]
    variance_score = model.score(params)[variance_params]
    variance_info = model.information(params, kind="eim")[np.ix_(variance_params, variance_params)]
    with_variances = []
    for level, codes, n in labelings:
        apart = precision.apart_sums(level, codes, n, lowest, one, 1, 1.0, spread)[:, 0]
        if level == rows:  # a row and the pairs of its own unit
            # sigma^2 (gamma^2 lambda_i^2 sum lambda_a lambda_b - gamma lambda_i (its neighbours' lambda) / sigma_i^2)
            row_gamma = gamma[unit]
            inside_values = (unit_variance * pair_lambda)[unit] * (row_gamma * weight) ** 2
            inside_values -= unit_variance[unit] * row_gamma * weight * neighbours * row_precision
            del row_gamma
            inside = np.bincount(codes, weights=inside_values * precision.weight(rows), minlength=n)
            del inside_values
        else:  # a unit and the pairs of the lowest units inside it
            ancestor, entry = precision.nested_entries(level, rows)
            values = (unit_weight * unit_variance)[pair_unit] * entry[first] * entry[second]
            inside = np.bincount(codes[ancestor[first]], weights=values, minlength=n)
            del ancestor, entry, values
        with_variances.append(apart + inside)
    with_variances = np.concatenate(with_variances)
    info = np.block([[variance_info, with_variances[:, None]], [with_variances[None, :], np.array([[rho_rho]])]])
    mapping = np.vstack([np.eye(len(entries)), np.zeros((1, len(entries)))])
    names = _entry_names(plan, entries) + ["rho(Residual)"]
    return score_statistics(np.append(variance_score, score), info, mapping, names, "expected")


def _precision_and_kr(results):
    """``Sigma^{-1}`` of the fit by its pieces, and ``Sigma^{-1} r`` of its residuals (sorted rows)."""
    model = results.model
    layout = model.layout
    beta, variances = model.plan.split(np.asarray(results.params))
    precision = model.likelihood.precision(variances)
    residual = layout.sort_rows(model.model_data.endog) - layout.sort_rows(model.model_data.exog) @ beta
    return precision, precision.apply(residual)


def _entries_by_level(plan, layout) -> list[np.ndarray]:
    """The variance entry of every unit of each level (top first), then of every row."""
    return [plan.unit_variance[at] for at in range(len(layout.levels))] + [plan.row_variance]


def _variance_labelings(plan, layout, skip: int | None = None) -> list[tuple[int, np.ndarray, int]]:
    """Every variance entry as a group of one kind of units: ``(level, group of every unit, groups)``."""
    out = []
    for at, entries in enumerate(_entries_by_level(plan, layout)):
        if at != skip:
            distinct = np.unique(entries)
            out.append((at, np.searchsorted(distinct, entries), len(distinct)))
    return out


def _labelled_entries(plan, layout, skip: int | None = None) -> list[int]:
    """The variance entries in the order of :func:`_variance_labelings`."""
    return [int(e) for at, entries in enumerate(_entries_by_level(plan, layout)) if at != skip
            for e in np.unique(entries)]


def _entry_names(plan, entries) -> list[str]:
    return [plan.param_names[plan.variance_index[e]] for e in entries]


def _variance_score_and_information(precision, kr: np.ndarray, labelings) -> tuple[np.ndarray, np.ndarray]:
    """The score and expected information of variances ``Sigma_g = sum_{v in g} z_v z_v'`` of the labelings:
    ``(1/2) sum_{v in g} ((z_v'Kr)^2 - z_v'Kz_v)`` and ``(1/2) sum_{v in g, w in h} (z_v'Kz_w)^2``."""
    score = np.concatenate([
        0.5 * np.bincount(group, weights=precision.weight(at) * (precision.quadratic(at, kr) ** 2
                                                                   - precision.diagonal(at)), minlength=n)
        for at, group, n in labelings])
    info = 0.5 * np.block([[precision.squared_sums(a, codes_a, n_a, b, codes_b, n_b)
                            for b, codes_b, n_b in labelings] for a, codes_a, n_a in labelings])
    return score, info
