"""Compile the parameter table into the index arrays the likelihood evaluates.

The table is the meaning of the model; the plan is how it is computed. The likelihood
never walks the table: it receives ``beta`` and a vector of variances, with the variance
parameter of every unit and row, gathered from the parameter vector through the indices
built here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..engine.effects import LevelEffects
from ..engine.siblings import SiblingCovariances
from ..spec.layout import WideLayout
from ..spec.spec import INTERCEPT, ParameterTable, block_occasions, unit_slots

__all__ = ["Plan", "compile_plan"]


@dataclass(frozen=True)
class Plan:
    """Index arrays from the parameter vector to the likelihood's arguments.

    Attributes
    ----------
    param_names : tuple of str
        Names of the free parameters, in the order of the parameter vector.
    labels : tuple of str
        Constraint label of each free parameter.
    beta_index : ndarray
        For each column of the fixed-effect design, its parameter.
    variance_index : ndarray
        The parameters that are variances, in the order of the likelihood's variance
        vector.
    unit_variance : tuple of ndarray
        For each grouping level (top first), the entry of the variance vector that is the
        variance of every unit's random intercept (-1 for a level without one, ``(0 + x|k)``).
    row_variance : ndarray
        The entry of the variance vector that is the residual variance of every row (in
        the layout's sorted order).
    ar1_entries : ndarray
        The entries of the vector that are AR(1) correlations of the residuals, one per label
        of ``relax_residuals(structure="ar1", by=...)``, else one or none (the vector holds
        them after the variances; they are correlations, not variances).
    row_correlation : ndarray or None
        The entry of the vector that is the AR(1) correlation of every row (in the layout's
        sorted order); None without AR(1) residuals.
    level_effects : tuple of LevelEffects
        For each grouping level (top first), the effect columns of its random effects (among the
        model's :class:`~sm_multisem.spec.data.EffectColumns`) and the entries of the vector that are
        their covariance ``G``; empty when every random effect is an intercept.
    siblings : SiblingCovariances or None
        The covariances of the random intercepts of sibling units of one level, by keyed slot
        (the level's ``level_effects`` then leave its intercept to them).
    residual_block : (ndarray, ndarray) or None
        The occasion of every row (sorted) and the entries of the residual covariance over the
        occasions, for residuals with a dense covariance within every lowest unit (Toeplitz).
    residual_ar1 : (ndarray, int) or None
        The time of every row (sorted; any real number) and the entry of ``rho``, for AR(1)
        residuals evaluated as a dense block of every lowest unit.
    covariance_entries : ndarray
        The entries that are covariances of exchangeable residuals: the lowest level's
        ``unit_variance`` then points at them (see :mod:`sm_multisem.spec.residuals`).
    """

    param_names: tuple[str, ...]
    labels: tuple[str, ...]
    beta_index: np.ndarray
    variance_index: np.ndarray
    unit_variance: tuple[np.ndarray, ...]
    row_variance: np.ndarray
    ar1_entries: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    row_correlation: np.ndarray | None = None
    level_effects: tuple[LevelEffects, ...] = ()
    siblings: SiblingCovariances | None = None
    residual_block: tuple[np.ndarray, np.ndarray] | None = None
    residual_ar1: tuple[np.ndarray, int] | None = None
    covariance_entries: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    @property
    def k_params(self) -> int:
        return len(self.param_names)

    @property
    def level_variances(self) -> np.ndarray:
        """Entries of the variance vector that are parameters of the random effects: the variances
        of random intercepts and, with random slopes, the slopes' variances and covariances (not the
        covariances of exchangeable residuals, which the lowest level's ``unit_variance`` points at)."""
        if self.level_effects:
            entries = [effects.entries.ravel() for effects in self.level_effects]
            if self.siblings is not None:
                entries += [self.siblings.variance, self.siblings.covariance_entries]
            entries = np.concatenate(entries)
            return np.unique(entries[entries >= 0])
        return np.setdiff1d(np.concatenate(self.unit_variance), self.covariance_entries)

    @cached_property
    def residual_variances(self) -> np.ndarray:
        """Entries of the variance vector that are residual variances (computed once: O(rows))."""
        return np.flatnonzero(np.bincount(self.row_variance))  # np.unique would sort or hash every row

    @property
    def variance_mask(self) -> np.ndarray:
        """True for the parameters that are variances."""
        mask = np.zeros(self.k_params, dtype=bool)
        mask[self.variance_index] = True
        mask[self.variance_index[self.ar1_entries]] = False
        return mask & ~self.covariance_mask

    @property
    def covariance_mask(self) -> np.ndarray:
        """True for the parameters that are covariances: of a random intercept and slope, and of
        exchangeable residuals."""
        mask = np.zeros(self.k_params, dtype=bool)
        for effects in self.level_effects:
            off_diagonal = effects.entries[~np.eye(len(effects.entries), dtype=bool)]
            mask[self.variance_index[off_diagonal[off_diagonal >= 0]]] = True
        if self.siblings is not None:
            mask[self.variance_index[self.siblings.covariance_entries]] = True
        if self.residual_block is not None:
            entries = self.residual_block[1]
            off = entries[~np.eye(len(entries), dtype=bool)]
            mask[self.variance_index[off[off >= 0]]] = True
        mask[self.variance_index[self.covariance_entries]] = True
        return mask

    @property
    def correlation_mask(self) -> np.ndarray:
        """True for the parameters that are correlations."""
        mask = np.zeros(self.k_params, dtype=bool)
        mask[self.variance_index[self.ar1_entries]] = True
        return mask

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(beta, variances)`` from the parameter vector."""
        params = np.asarray(params, dtype=float)
        if params.shape != (self.k_params,):
            raise ValueError(f"expected {self.k_params} parameters {list(self.param_names)}, got shape {params.shape}")
        return params[self.beta_index], params[self.variance_index]

    @property
    def likelihood_index(self) -> np.ndarray:
        """Parameter behind every likelihood argument ``[beta, variances]``."""
        return np.r_[self.beta_index, self.variance_index]

    def gradient_to_params(self, gradient: np.ndarray) -> np.ndarray:
        """Chain rule from likelihood arguments to parameters (sums over shared labels).

        ``gradient`` has the likelihood arguments on its last axis.
        """
        gradient = np.asarray(gradient, dtype=float)
        jacobian = np.zeros((len(self.likelihood_index), self.k_params))
        jacobian[np.arange(len(self.likelihood_index)), self.likelihood_index] = 1.0
        return gradient @ jacobian

    def join(self, beta, variances) -> np.ndarray:
        """The inverse of :meth:`split`."""
        params = np.empty(self.k_params)
        params[self.beta_index] = beta
        params[self.variance_index] = variances
        return params


_SUPPORTED = {
    "slope": (True, None),
    "intercept": (True, None),
    "loading": (False, 1.0),
    "variance": (True, None),
    "residual variance": (True, None),
    "covariance": (False, 0.0),
    "residual correlation": (True, None),
    "slope loading": (False, None),  # the loading is the data, x{p}
    "slope variance": (True, None),
    "slope covariance": (True, None),
    "residual covariance": (True, None),
    "sibling covariance": (True, None),
    "residual block covariance": (True, None),
    "residual block correlation": (True, None),
}


def compile_plan(table: ParameterTable, exog_names: list[str], layout: WideLayout, labels=None,
                 effect_names: tuple[str, ...] = ()) -> Plan:
    """Build the :class:`Plan` of a parameter table.

    ``labels`` (:class:`~sm_multisem.spec.relax.Labels`) gives the label of every unit or row
    that a relaxed rule refers to; ``effect_names`` names the effect columns of random effects
    beyond intercepts (:attr:`~sm_multisem.spec.data.EffectColumns.names`).

    Raises
    ------
    NotImplementedError
        For a rule the nested-intercept likelihood cannot evaluate (a freed loading or
        covariance).
    """
    # plain records: a table of a few dozen rules is filtered faster in Python than by pandas
    rules = list(table.rules.itertuples(index=False))
    for rule in rules:
        if rule.kind not in _SUPPORTED:
            raise NotImplementedError(f"parameter rule of kind {rule.kind!r} cannot be compiled")
        free, value = _SUPPORTED[rule.kind]
        if bool(rule.free) != free or (value is not None and rule.value != value):
            raise NotImplementedError(
                f"{rule.kind} {rule.lhs} {rule.op} {rule.rhs} must be "
                + ("free" if free else f"fixed at {value:g}") + " in the nested random-intercept model"
            )

    def of_kind(*kinds: str) -> list:
        return [rule for rule in rules if rule.kind in kinds]

    first_of_label: dict = {}
    for rule in rules:
        if rule.free:
            first_of_label.setdefault(rule.label, rule)
    free = list(first_of_label.values())
    index = {rule.label: i for i, rule in enumerate(free)}
    by_name = {rule.name: index[rule.label] for rule in of_kind("slope", "intercept")}
    missing = [name for name in exog_names if name not in by_name]
    if missing:
        raise ValueError(f"no parameter rule for the fixed-effect column(s) {missing}")
    variances = of_kind("variance", "residual variance", "residual covariance")
    correlation = of_kind("residual correlation")
    slope_rules = of_kind("slope covariance", "slope variance")
    sibling_rules = of_kind("sibling covariance")
    lag_rules = of_kind("residual block covariance")
    block_correlation = of_kind("residual block correlation")
    variance_labels = list(dict.fromkeys(rule.label for rule in [*variances, *slope_rules, *sibling_rules,
                                                                 *lag_rules, *correlation, *block_correlation]))
    variance_index = np.array([index[label] for label in variance_labels], dtype=np.intp)
    position = {label: i for i, label in enumerate(variance_labels)}

    def assign(level_rules: list, key: tuple[str, str], n: int) -> np.ndarray:
        """Entry of every unit of a level (or every row) among ``level_rules``, by the labels under ``key``."""
        if not level_rules[0].by:
            return np.full(n, position[level_rules[0].label], dtype=np.intp)
        entry = {rule.where: position[rule.label] for rule in level_rules}
        # a lookup per distinct label, not per row
        return np.array([entry[name] for name in labels.values[key][1]], dtype=np.intp)[labels.codes[key]]

    def level_rules(level: str) -> list:
        # the residual grouping of exchangeable residuals gets its covariance
        return [rule for rule in variances if rule.level == level]

    unit_variance = tuple(
        assign(level_rules(level), (level_rules(level)[0].kind, level), n_units) if level_rules(level)
        else np.full(n_units, -1, dtype=np.intp)  # no random intercept
        for level, n_units in zip(layout.level_names, layout.n_units)
    )
    row_variance = assign(level_rules("Residual"), ("residual variance", "Residual"), layout.n_rows)
    # AR(1) by a label: the rows carry it as the residual variance's label
    row_correlation = assign(correlation, ("residual variance", "Residual"), layout.n_rows) if correlation else None
    covariance_labels = dict.fromkeys(rule.label for rule in variances if rule.kind == "residual covariance")
    siblings = _siblings(sibling_rules, layout, unit_variance, position) if sibling_rules else None
    residual_block = _residual_block(lag_rules, layout, labels, row_variance, position) if lag_rules else None
    residual_ar1 = None
    if block_correlation:  # the times (any real ones) of the rows and rho
        residual_ar1 = (_block_times(labels), position[block_correlation[0].label])
    level_effects = ()
    if slope_rules or siblings is not None or residual_block is not None or residual_ar1 is not None:
        no_intercept = np.full(1, -1, dtype=np.intp)  # the intercepts of correlated siblings are their block's
        level_effects = tuple(
            _level_effects(level, no_intercept if siblings is not None and siblings.level == at else unit_variance[at],
                           slope_rules, position, effect_names or (INTERCEPT,))
            for at, level in enumerate(layout.level_names))
    return Plan(
        param_names=tuple(rule.name for rule in free),
        labels=tuple(index),
        beta_index=np.array([by_name[name] for name in exog_names], dtype=np.intp),
        variance_index=variance_index,
        unit_variance=unit_variance,
        row_variance=row_variance,
        ar1_entries=np.array([position[rule.label] for rule in [*correlation, *block_correlation]], dtype=np.intp),
        row_correlation=row_correlation,
        level_effects=level_effects,
        siblings=siblings,
        residual_block=residual_block,
        residual_ar1=residual_ar1,
        covariance_entries=np.array([position[label] for label in covariance_labels], dtype=np.intp),
    )


def _level_effects(level: str, intercept: np.ndarray, rules: list, position: dict, effect_names) -> LevelEffects:
    """The effects of one level: its intercept (if ``intercept``, the entry of every unit's, is not
    -1), then its slopes in the order of their variance rules, and the entries of their ``G``."""
    names = ([INTERCEPT] if intercept[0] >= 0 else []) + [
        rule.effects[0] for rule in rules if rule.level == level and rule.kind == "slope variance"]
    entries = np.full((len(names), len(names)), -1, dtype=np.intp)
    if intercept[0] >= 0:
        entries[0, 0] = intercept[0]
    for rule in rules:
        if rule.level != level:
            continue
        at = [names.index(effect) for effect in rule.effects]
        entries[at[0], at[-1]] = entries[at[-1], at[0]] = position[rule.label]
    return LevelEffects(np.array([effect_names.index(name) for name in names], dtype=np.intp), entries)


def _siblings(rules: list, layout: WideLayout, unit_variance, position: dict) -> SiblingCovariances:
    """The covariances of sibling effects of the rules' level: every unit's keyed slot and variance, and the
    entry of every pair of slots the rules join."""
    levels = {rule.level for rule in rules}
    if len(levels) > 1:
        raise NotImplementedError(f"covariances of sibling effects are freed at one level at a time; got "
                                  f"{sorted(levels)}")
    level = layout.level_names.index(levels.pop())
    slots, _ = unit_slots(layout, level)
    codes, distinct = pd.factorize(slots)
    index = {slot: i for i, slot in enumerate(distinct)}
    pair_entry = np.full((len(distinct), len(distinct)), -1, dtype=np.intp)
    for rule in rules:
        for a, b in rule.effects:
            pair_entry[index[a], index[b]] = pair_entry[index[b], index[a]] = position[rule.label]
    return SiblingCovariances(level, codes.astype(np.intp), unit_variance[level], pair_entry)


def _residual_block(rules: list, layout: WideLayout, labels, row_variance: np.ndarray,
                    position: dict) -> tuple[np.ndarray, np.ndarray]:
    """The occasion of every row (its time from the earliest, on the integer grid) and the entries of ``R``
    over the occasions: the residual variance of every occasion on the diagonal, the covariance of every
    pair of times (unstructured) or of every lag (Toeplitz) off it, 0 where no unit holds the pair."""
    times = _block_times(labels)
    occasion = (times - times.min()).astype(np.intp)
    n_occasions = block_occasions(layout, times).shape[1]
    lag = np.abs(np.subtract.outer(np.arange(n_occasions), np.arange(n_occasions)))
    entries = np.full((n_occasions, n_occasions), -1, dtype=np.intp)
    entries[occasion, occasion] = row_variance
    first = int(times.min())
    for rule in rules:
        if len(rule.effects) == 1:  # a lag
            entries[lag == rule.effects[0]] = position[rule.label]
        else:
            s, t = rule.effects[0] - first, rule.effects[1] - first
            entries[s, t] = entries[t, s] = position[rule.label]
    return occasion, entries


def _block_times(labels) -> np.ndarray:
    """The times of the sorted rows of the residual block (the lowest units are its units)."""
    return next(times for (kind, _), (times, _) in labels.values.items() if kind == "residual block")
