"""The parameter table: the wide, constrained SEM that equals the nested mixed model.

One row per parameter *rule* (lavaan's ``partable`` with equal labels as equality
constraints): the slope of ``x`` is one rule, ``y{p} ~ x{p}`` labelled ``bx`` at every
position ``p``. This compact form stays small however ragged the design;
:meth:`ParameterTable.expand` writes one row per position, as the ``sem`` command in
the source article does, when the table is shown or exported.

Naming in the wide model
------------------------
* observed: the outcome or covariate name followed by the position, ``y1_2`` is the
  outcome at slot 1 of the second level and slot 2 inside it (slots are 1-based);
* latent: the capitalised name of the level's grouping column followed by the slots of
  the levels above it, ``K`` for the top level, ``J1``, ``J2`` for the units of ``k:j``;
* labels: ``b<x>`` for slopes, ``c`` for the intercept, ``S_<level>`` for effect
  variances and ``S_e`` for the residual variance;
* a random slope of ``x`` at a level adds the latent ``K_x`` (``J_x1``, ...), loading on
  ``y{p}`` with the position's own ``x{p}`` (a definition variable: the loading is data),
  its variance ``S_<level>_<x>`` and its covariance ``C_<level>_<x>`` with the level's
  random intercept (``C_<level>_<x>_<w>`` with the slope of ``w``), unless the two are
  independent (``||``, or effects of two terms of one grouping factor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .layout import WideLayout, identifier, join_parts, level_name, position_name, position_order
from .pairs import Siblings, label_groups, sibling_pairs
from .relax import Relaxation
from .residuals import exchangeable_rows

__all__ = ["INTERCEPT", "EffectBlock", "ParameterTable", "block_occasions", "constrained_values", "effect_blocks",
           "effect_name", "power_constraints", "specify", "unit_slots"]

INTERCEPT = "Intercept"
RULE_COLUMNS = ["kind", "lhs", "op", "rhs", "label", "free", "value", "name", "applies_to", "level", "by", "where",
                "effects"]
TABLE_COLUMNS = ["lhs", "op", "rhs", "label", "free", "value"]
_POWER = re.compile(r"(\w+)\*(\w+)\^(\d+)")  # the right side of an AR(1) constraint, S_e*rho^2


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count + 1}")
    return out


@dataclass(frozen=True)
class EffectBlock:
    """Random effects of one level whose covariance is one block of ``G``: the effects of one
    random term, unstructured (``correlated``, lme4's ``|``) or independent (``||``).

    Attributes
    ----------
    names : tuple of str
        The effect columns (``Intercept`` for the random intercept, ``x``, ``type[pub]``).
    correlated : bool
    """

    names: tuple[str, ...]
    correlated: bool = True


def effect_name(effect: str, level: str) -> str:
    """How results name an effect of a level: the level itself for its intercept, ``x|k`` for a slope."""
    return level if effect == INTERCEPT else f"{effect}|{level}"


@dataclass(frozen=True)
class ParameterTable:
    """The wide SEM as rules over positions.

    Attributes
    ----------
    rules : DataFrame
        One row per parameter rule with columns ``kind, lhs, op, rhs, label, free, value,
        name, applies_to``. ``{p}`` in ``lhs``/``rhs`` stands for a position, ``{u}`` for
        the slots of a unit. Rows with the same label are one parameter; ``name`` is
        the parameter's name in the results.
    outcome : str
        Identifier of the outcome in the wide model.
    covariates : tuple of str
        Identifiers of the covariate columns (excluding the intercept), in design order.
    latent_bases : tuple of str
        Latent name stem of each level, top first.
    """

    rules: pd.DataFrame
    outcome: str
    covariates: tuple[str, ...]
    latent_bases: tuple[str, ...]

    @property
    def free_parameters(self) -> pd.DataFrame:
        """One row per free parameter (distinct label), in the order of the parameter vector."""
        free = self.rules[self.rules["free"]]
        return free.drop_duplicates("label")[["label", "name", "kind"]].reset_index(drop=True)

    def expand(self, layout: WideLayout, labels=None, groups: np.ndarray | None = None) -> pd.DataFrame:
        """One row per parameter of the wide SEM at every position present in the data.

        Parameters
        ----------
        layout : WideLayout
            With slots keyed by the labelling columns of any relaxation (see
            :func:`sm_multisem.spec.relax.key_slots`), so that one position means one label.
        labels : Labels, optional
            The label values of the relaxations.
        groups : ndarray, optional
            The group of every top-level cluster, for a multi-group wide form (a parameter
            that differs by a label of the top-level clusters): the rows are written for
            every group, with the positions present in its clusters, under a first column
            ``group``.

        Returns
        -------
        DataFrame
            Columns ``lhs, op, rhs, label, free, value`` in lavaan's order: regressions,
            loadings, variances, covariances, then (AR(1) residuals) the equality constraints
            ``S_e_lag2 == S_e*rho^2`` that make the residual covariance of positions two time
            steps apart ``S_e * rho^2``.
        """
        parts = layout.position_parts()
        suffix = join_parts(parts)
        if groups is None:
            return self._expand_at(np.arange(len(suffix)), layout, labels, parts, suffix)
        row_group = np.asarray(groups, dtype=object)[layout.cluster_of_rows()]
        frames = []
        for group in sorted(set(row_group)):
            frame = self._expand_at(np.flatnonzero(row_group == group), layout, labels, parts, suffix)
            frame.insert(0, "group", group)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _expand_at(self, rows: np.ndarray, layout: WideLayout, labels, parts: list[np.ndarray],
                   suffix: np.ndarray) -> pd.DataFrame:
        """The per-position rows of the positions present among the sorted ``rows``."""
        distinct, first = np.unique(suffix[rows], return_index=True)
        ordered = sorted(range(len(distinct)), key=lambda i: position_order(distinct[i]))
        rows_at = rows[first[ordered]]  # one sorted row standing for every position
        y_names = [position_name(self.outcome, suffix[r]) for r in rows_at]

        def label_at(rule, row: int) -> bool:
            """Whether a (possibly labelled) rule applies at a row."""
            if not rule.by:
                return True
            target = rule.name.rsplit("[", 1)[0] if rule.kind in ("slope", "intercept") else rule.level
            values, _ = labels.values[(rule.kind, target)]
            if rule.kind in ("variance", "residual covariance"):
                level = layout.level_names.index(target)
                return values[layout.unit_of_rows(level)[row]] == rule.where
            return values[row] == rule.where

        rows: list[tuple] = []
        rules = self.rules
        for r, y in zip(rows_at, y_names):
            for rule in rules[rules["kind"].isin(["slope", "intercept"])].itertuples(index=False):
                if not label_at(rule, r):
                    continue
                if rule.kind == "slope":
                    covariate = position_name(rule.rhs.replace("{p}", ""), suffix[r])
                    rows.append((y, "~", covariate, rule.label, True, np.nan))
                else:
                    rows.append((y, "~1", "", rule.label, True, np.nan))
        latents = []  # per level: latent name -> (a row standing for it, positions it loads on)
        for level, base in enumerate(self.latent_bases):
            members: dict[str, tuple[int, list[str]]] = {}
            for r, y in zip(rows_at, y_names):
                name = base if level == 0 else position_name(base, str(join_parts([p[[r]] for p in parts[:level]])[0]))
                members.setdefault(name, (r, []))[1].append(y)
            latents.append(members)
        for members in latents:
            for name, (_, ys) in members.items():
                rows += [(name, "=~", y, "", False, 1.0) for y in ys]
        for level, members in enumerate(latents):
            level_rules = rules[(rules["kind"] == "variance") & (rules["level"] == layout.level_names[level])]
            for name, (r, _) in members.items():
                rule = next(rule for rule in level_rules.itertuples(index=False) if label_at(rule, r))
                rows.append((name, "~~", name, rule.label, True, np.nan))
        residual = rules[rules["kind"] == "residual variance"]
        for r, y in zip(rows_at, y_names):
            rule = next(rule for rule in residual.itertuples(index=False) if label_at(rule, r))
            rows.append((y, "~~", y, rule.label, True, np.nan))
        all_latents = [name for members in latents for name in members]
        rows += [(a, "~~", b, "", False, 0.0) for a, b in combinations(all_latents, 2)]
        units = join_parts(parts[:-1])[rows_at] if len(parts) > 1 else [""] * len(rows_at)
        covariance = rules[rules["kind"] == "residual covariance"]
        if len(covariance):
            rows += exchangeable_rows(covariance, y_names, units, rows_at, label_at)
        block = rules[rules["kind"] == "residual block covariance"]
        if len(block):
            times = next(times for (kind, _), (times, _) in labels.values.items() if kind == "residual block")[rows_at]
            rows += _block_rows(block, times, y_names, units)
        correlation = rules[rules["kind"] == "residual correlation"]
        if len(correlation):
            times = labels.values[("residual correlation", "Residual")][0][rows_at]
            # a position's rho is the one of its residual variance's label (the same where, or the only one)
            rho_of = dict(zip(correlation["where"], correlation["label"]))
            pairs = [(rule.label, rho_of[rule.where])
                     for rule in (next(rule for rule in residual.itertuples(index=False) if label_at(rule, r))
                                  for r in rows_at)]
            rows += _ar1_rows(pairs, times, y_names, units)
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _block_rows(rules: pd.DataFrame, times: np.ndarray, y_names: list[str], units) -> list[tuple]:
    """The residual covariance of every pair of positions of one unit of a residual block: the rule of
    their pair of times (unstructured) or of their lag (Toeplitz)."""
    label_of = dict(zip(rules["effects"], rules["label"]))
    rows = []
    for a, b in combinations(range(len(y_names)), 2):
        if units[a] != units[b]:
            continue
        pair = tuple(sorted((int(times[a]), int(times[b]))))
        label = label_of.get(pair, label_of.get((pair[1] - pair[0],)))
        if label is not None:
            rows.append((y_names[a], "~~", y_names[b], label, True, np.nan))
    return rows


def _ar1_rows(pairs: list[tuple[str, str]], times: np.ndarray, y_names: list[str], units) -> list[tuple]:
    """Residual covariances of the positions of one lowest unit, and the constraints that tie them.

    Positions are numbered by time (see :func:`sm_multisem.spec.relax.key_slots`), so the covariance
    of two positions of a unit is one constant, labelled by their distance in time ``d`` and
    constrained to ``scale * rho^d`` (a nonlinear equality constraint, lavaan's ``==``), where
    ``pairs`` holds the ``(scale, rho)`` labels of every position (those of its unit's label).
    """
    rows, lags = [], {}
    for a, b in combinations(range(len(y_names)), 2):
        if units[a] == units[b]:
            (scale, rho), lag = pairs[a], abs(int(times[a]) - int(times[b]))
            rows.append((y_names[a], "~~", y_names[b], f"{scale}_lag{lag}", True, np.nan))
            lags[(scale, lag)] = rho
    return rows + [(f"{scale}_lag{lag}", "==", f"{scale}*{rho}^{lag}", "", False, np.nan)
                   for (scale, lag), rho in sorted(lags.items())]


def power_constraints(table: pd.DataFrame) -> list[tuple[str, str, str, int]]:
    """The constraints ``label == scale*rho^power`` of a per-position table, as
    ``(label, scale, rho, power)``."""
    constraints = []
    for row in table[table["op"] == "=="].itertuples():
        scale, rho, power = _POWER.fullmatch(row.rhs).groups()
        constraints.append((row.lhs, scale, rho, int(power)))
    return constraints


def constrained_values(table: pd.DataFrame, values) -> dict[str, float]:
    """``values`` (free label -> value) with the labels the table's equality constraints fix."""
    out = dict(values)
    for label, scale, rho, power in power_constraints(table):
        out[label] = values[scale] * values[rho] ** power
    return out


def specify(outcome: str, exog_names: list[str], layout: WideLayout, relaxations=(), labels=None,
            effects=None) -> ParameterTable:
    """The parameter table: every constraint of the mixed model, less the relaxed ones.

    Parameters
    ----------
    outcome : str
        Name of the outcome.
    exog_names : list of str
        Fixed-effect column names as the formula engine gives them (``Intercept`` is the
        constant), with relaxed slopes already split by label (``x[pub]``, ``x[prv]``).
    layout : WideLayout
    relaxations : tuple of Relaxation
        Constraints to release (see :mod:`sm_multisem.spec.relax`).
    labels : Labels, optional
        The label values of the relaxations (required when there are relaxations).
    effects : dict, optional
        Level name -> the :class:`EffectBlock` of its random effects, for levels with more than a
        random intercept (``{"k": (EffectBlock(("Intercept", "x")),)}``).

    Returns
    -------
    ParameterTable
        Shared slope labels, a shared intercept, equal effect variances within each level,
        equal residual variances and zero covariances among all effects; a relaxed
        constraint becomes one label per value of its labelling column.
    """
    y = identifier(outcome)
    effects = dict(effects or {})
    relaxed = {(r.kind, r.target): r for r in relaxations}
    slope_of = {f"{r.target}[{g}]": (r, g) for r in relaxations if r.kind in ("slope", "intercept")
                for g in labels.of(r)[1]}
    intercepts = {name for name, (r, _) in slope_of.items() if r.kind == "intercept"}
    exchangeable = next((r for r in relaxations if r.kind == "residual covariance"), None)
    block = next((r for r in relaxations if r.kind == "residual block"), None)
    # the residual grouping of an exchangeable structure or a residual block is a level of the layout
    # without an effect
    grouping = (exchangeable or block).target if exchangeable or block else None
    levels = [g for g in layout.levels if level_name(g) != grouping]
    level_names = [level_name(g) for g in levels]
    covariates = [name for name in exog_names if name != INTERCEPT and name not in intercepts]
    base_of = {n: slope_of[n][0].target if n in slope_of else n for n in covariates}  # x[pub] -> x
    bases = list(dict.fromkeys(base_of.values()))
    ident_of_base = dict(zip(bases, _unique([identifier(base) for base in bases])))
    covariate_ids = [ident_of_base[base_of[n]] for n in covariates]
    latent_bases = _unique([identifier(grouping[-1]).capitalize() for grouping in levels])
    if y in latent_bases or y in covariate_ids:
        raise ValueError(f"outcome identifier {y!r} clashes with a covariate or a level name")
    variance_labels = _unique([f"S_{base.lower()}" for base in latent_bases] + ["S_e"])
    slot_text = ["{u}" if level else "" for level in range(len(latent_bases))]

    rules: list[tuple] = []
    identifiers = dict(zip(covariates, covariate_ids))
    for name in exog_names:  # in design order, so the parameter vector starts with the design's columns
        if name == INTERCEPT:
            rules.append(("intercept", f"{y}{{p}}", "~1", "", "c", True, np.nan, INTERCEPT, "every position",
                          "", "", ""))
        elif name in intercepts:
            relax, value = slope_of[name]
            rules.append(("intercept", f"{y}{{p}}", "~1", "", f"c_{identifier(value)}", True, np.nan, name,
                          f"positions with {relax.by} = {value}", "", relax.by, value))
        elif name in slope_of:
            relax, value = slope_of[name]
            ident = identifiers[name]
            rules.append(("slope", f"{y}{{p}}", "~", f"{ident}{{p}}", f"b{ident}_{identifier(value)}", True, np.nan,
                          name, f"positions with {relax.by} = {value}", "", relax.by, value))
        else:
            ident = identifiers[name]
            rules.append(("slope", f"{y}{{p}}", "~", f"{ident}{{p}}", f"b{ident}", True, np.nan, name,
                          "every position", "", "", ""))
    def has_intercept(level: str) -> bool:
        return level not in effects or any(INTERCEPT in block.names for block in effects[level])

    for base, slots, level in zip(latent_bases, slot_text, level_names):
        if has_intercept(level):
            rules.append(("loading", f"{base}{slots}", "=~", f"{y}{{p}}", "", False, 1.0, "",
                          f"positions inside the {level} unit", level, "", ""))
    for base, slots, level, label in zip(latent_bases, slot_text, level_names, variance_labels):
        if has_intercept(level):
            rules += _variance_rules("variance", f"{base}{slots}", f"{base}{slots}", label, level,
                                     f"every unit of {level}", relaxed.get(("variance", level)), labels)
        if level in effects:
            rules += _effect_rules(y, base, slots, level, label, effects[level])
    for relax in relaxations:
        if relax.kind == "covariance":
            rules += _sibling_rules(relax, layout, labels, latent_bases[level_names.index(relax.target)])
    correlation = relaxed.get(("residual correlation", "Residual"))
    # AR(1) by a label: the residual variance and rho are labelled as a residual variance by it would be
    per_label = Relaxation("residual variance", "Residual", correlation.per) if correlation and correlation.per else None
    by_label = (relaxed.get(("residual variance", "Residual")) or (exchangeable if exchangeable and exchangeable.by
                                                                   else None) or per_label)
    if block is None or block.per.split(":")[0] not in ("unstructured", "banded"):  # a variance per time
        rules += _variance_rules("residual variance", f"{y}{{p}}", f"{y}{{p}}", variance_labels[-1], "Residual",
                                 "every position", by_label, labels)
    if block is not None:
        rules += _block_rules(y, block, layout, labels)
    if exchangeable is not None:
        rules += _variance_rules("residual covariance", f"{y}{{p}}", f"{y}{{q}}", "C_e", exchangeable.target,
                                 f"positions p != q of one {exchangeable.target} unit",
                                 exchangeable if exchangeable.by else None, labels, name="cov(Residual)")
    if correlation is not None and per_label is not None:
        rules += _variance_rules("residual correlation", f"e.{y}{{p}}", f"e.{y}{{q}}", "rho", "Residual",
                                 "", per_label, labels, name="rho(Residual)")
    elif correlation is not None:
        rules.append(("residual correlation", f"e.{y}{{p}}", "~~", f"e.{y}{{q}}", "rho", True, np.nan, "rho(Residual)",
                      f"positions p, q of one {layout.level_names[-1]} unit: S_e * rho^|{correlation.by}_p - "
                      f"{correlation.by}_q|", "Residual", "", ""))
    rules.append(("covariance", "(effect)", "~~", "(other effect)", "", False, 0.0, "",
                  "every other pair of effects" if effects else "every pair of effects", "", "", ""))
    # only the rules of effects beyond intercepts name their effects
    table = pd.DataFrame([rule if len(rule) == len(RULE_COLUMNS) else rule + ((),) for rule in rules],
                         columns=RULE_COLUMNS)
    return ParameterTable(rules=table, outcome=y, covariates=tuple(dict.fromkeys(covariate_ids)),
                          latent_bases=tuple(latent_bases))


def _effect_rules(y: str, base: str, slots: str, level: str, label: str, blocks) -> list[tuple]:
    """The random effects of a level beyond its intercept: every slope's latent (loading with the
    data), its variance, and the covariance of every pair of effects of one correlated block
    (lme4's unstructured ``(1 + x + w|k)``; none for ``||``)."""
    def latent(effect: str) -> str:
        return f"{base}{slots}" if effect == INTERCEPT else f"{base}_{identifier(effect)}{slots}"

    rules = []
    for block in blocks:
        for effect in block.names:
            if effect == INTERCEPT:
                continue
            ident = identifier(effect)
            rules += [
                ("slope loading", latent(effect), "=~", f"{y}{{p}}", "", False, np.nan, "",
                 f"positions inside the {level} unit, with the loading {ident}{{p}} (the data)", level, "", "",
                 (effect,)),
                ("slope variance", latent(effect), "~~", latent(effect), f"{label}_{ident}", True, np.nan,
                 f"var({effect_name(effect, level)})", f"every unit of {level}", level, "", "", (effect,)),
            ]
    for block in blocks:
        if not block.correlated:
            continue
        for first, second in combinations(block.names, 2):
            suffix = "_".join(identifier(e) for e in (first, second) if e != INTERCEPT)
            rules.append(("slope covariance", latent(first), "~~", latent(second), f"C{label[1:]}_{suffix}", True,
                          np.nan, f"cov({effect_name(first, level)}, {effect_name(second, level)})",
                          f"every unit of {level}", level, "", "", (first, second)))
    return rules


def unit_slots(layout: WideLayout, level: int) -> tuple[np.ndarray, np.ndarray]:
    """The keyed slot of every unit of ``level`` (below the top) and its parent unit."""
    first = np.flatnonzero(np.r_[True, np.diff(layout.unit_of_rows(level)) != 0])
    return layout.unit_slot_names(level), layout.unit_of_rows(level - 1)[first]


def sibling_frame(layout: WideLayout, level: int, labels: np.ndarray) -> pd.DataFrame:
    """Every unit of ``level`` with its keyed slot (also its name), parent unit and label."""
    slots, parents = unit_slots(layout, level)
    return pd.DataFrame({"name": slots, "slot": slots, "parent": parents, "label": labels})


def _sibling_rules(relax: Relaxation, layout: WideLayout, labels, base: str) -> list[tuple]:
    """One rule per covariance of sibling effects freed by ``relax``, naming the pairs of keyed slots it joins."""
    level = layout.level_names.index(relax.target)
    values, names = labels.of(relax)
    siblings = Siblings(relax.target, layout.level_names[level - 1], base.lower(),
                        sibling_frame(layout, level, values))
    groups = label_groups(relax.among, names, relax.target, relax.by)
    pairs = sibling_pairs(siblings, groups, relax.among is not None, relax.equal)
    rules = []
    for label, joined in pairs.groupby("label", sort=False):
        slots = tuple(zip(joined["slot_a"], joined["slot_b"]))
        rules.append(("sibling covariance", f"{base}{{u}}", "~~", f"{base}{{v}}", label, True, np.nan,
                      joined["display"].iloc[0], f"units {', '.join(f'{a} and {b}' for a, b in slots)} of one "
                      f"{layout.level_names[level - 1]} unit", relax.target, relax.by, "", slots))
    return rules


def block_occasions(layout: WideLayout, times: np.ndarray) -> np.ndarray:
    """Which occasions (times from the earliest, on the integer grid) every unit of the lowest level
    holds: (units, occasions) of bool."""
    occasion = times - times.min()
    present = np.zeros((layout.n_units[-1], int(occasion.max()) + 1), dtype=bool)
    present[layout.unit_of_rows(len(layout.levels) - 1), occasion] = True
    return present


def _block_rules(y: str, block: Relaxation, layout: WideLayout, labels) -> list[tuple]:
    """The residual covariances of a residual block, for every pair of times (unstructured) or lag (Toeplitz)
    that two rows of one unit of the residual grouping hold somewhere in the data; unstructured residuals
    have a variance per time too (before them)."""
    kind, _, order = block.per.partition(":")
    band = int(order) if order else None
    if kind == "ar1":
        return [("residual block correlation", f"e.{y}{{p}}", "~~", f"e.{y}{{q}}", "rho", True, np.nan,
                 "rho(Residual)", f"rows of one {block.target} unit: S_e * rho^|{block.by}_p - {block.by}_q|",
                 "Residual", block.by, "")]
    times = labels.of(block)[0]
    present = block_occasions(layout, times)
    first = int(times.min())
    if kind == "toeplitz":
        lags = [lag for lag in range(1, present.shape[1] if band is None else min(band + 1, present.shape[1]))
                if np.any(present[:, :-lag] & present[:, lag:])]
        return [("residual block covariance", f"{y}{{p}}", "~~", f"{y}{{q}}", f"C_e_lag{lag}", True, np.nan,
                 f"cov(Residual)[lag{lag}]", f"rows of one {block.target} unit {lag} apart in {block.by}",
                 "Residual", block.by, "", (lag,)) for lag in lags]
    held = present.T.astype(float) @ present  # units holding both times
    occasions = np.flatnonzero(present.any(0)) + first
    rules = [("residual variance", f"{y}{{p}}", "~~", f"{y}{{p}}", f"S_e_t{t}", True, np.nan, f"var(Residual)[{t}]",
              f"positions with {block.by} = {t}", "Residual", block.by, str(t)) for t in occasions]
    for s_time, t_time in combinations(occasions, 2):
        if held[s_time - first, t_time - first] > 0 and (band is None or t_time - s_time <= band):
            rules.append(("residual block covariance", f"{y}{{p}}", "~~", f"{y}{{q}}", f"C_e_t{s_time}_t{t_time}",
                          True, np.nan, f"cov(Residual)[{s_time},{t_time}]",
                          f"rows at {block.by} = {s_time} and {t_time} of one {block.target} unit", "Residual",
                          block.by, "", (int(s_time), int(t_time))))
    return rules


def _variance_rules(kind, lhs, rhs, label, level, applies_to, relax, labels, name=None) -> list[tuple]:
    """One variance rule, or one per label value when the variance is relaxed by a label."""
    name = name or f"var({level})"
    if relax is None:
        return [(kind, lhs, "~~", rhs, label, True, np.nan, name, applies_to, level, "", "")]
    unit_word = "positions" if kind == "residual variance" else "units"
    return [(kind, lhs, "~~", rhs, f"{label}_{identifier(value)}", True, np.nan, f"{name}[{value}]",
             f"{unit_word} with {relax.by} = {value}", level, relax.by, value)
            for value in labels.of(relax)[1]]


def effect_blocks(parsed, model_data) -> dict[str, tuple[EffectBlock, ...]]:
    """The random effects of every level with more than a random intercept, one block per random
    term of the level (its effect columns, and whether they are correlated).

    Raises
    ------
    ValueError
        An effect of one level written in two terms (its variance would be counted twice).
    """
    if model_data.effects is None:
        return {}
    level_of = {frozenset(grouping): level_name(grouping) for grouping in parsed.groupings}
    blocks: dict[str, list[EffectBlock]] = {}
    written: dict[tuple[str, str], str] = {}
    for term, names in zip(parsed.terms, model_data.effects.of_term):
        for grouping in term.grouping:
            level = level_of[frozenset(grouping)]
            for name in names:
                if (level, name) in written:
                    effect = "the random intercept" if name == INTERCEPT else f"the random slope of {name!r}"
                    raise ValueError(f"{effect} of {level} is written twice, in {written[level, name]} and "
                                     f"{term.text}; write each effect of a grouping factor once")
                written[level, name] = term.text
            blocks.setdefault(level, []).append(EffectBlock(names, term.correlated))
    return {level: tuple(b) for level, b in blocks.items() if [block.names for block in b] != [(INTERCEPT,)]}
