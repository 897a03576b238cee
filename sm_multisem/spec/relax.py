"""Relaxations: constraints of the mixed model released by a labelling column.

A relaxation names a constraint of the standard model and a column of the data whose
values label the units (or observations) it is released across:

* ``Relaxation("variance", "k:j", "type")``: one variance of the ``k:j`` effects per
  school type instead of one for all (heteroskedastic effects; nlme ``pdDiag(~ 0 + type)``);
* ``Relaxation("residual variance", "Residual", "role")``: one residual variance per role
  (nlme ``varIdent(~ 1 | role)``, Stata ``mixed, residuals(independent, by(role))``);
* ``Relaxation("slope", "x", "type")``: one slope of ``x`` per school type (``x:C(type)``
  in long form);
* ``Relaxation("intercept", "Intercept", "type")``: one intercept per school type
  (``0 + C(type)`` in place of the intercept in long form);
* ``Relaxation("residual correlation", "Residual", "time")``: residuals of a lowest unit
  correlated ``rho^|t - s|`` along the integer time column (Stata ``mixed,
  residuals(ar 1, t(time))``, nlme ``corCAR1(form = ~ time | k/j)``);
  ``Relaxation("residual correlation", "Residual", "time", per="type")``: the same with a
  residual variance and a rho per label constant within the lowest units (Stata
  ``residuals(ar 1, t(time) by(type))``);
* ``Relaxation("residual covariance", "k:j", "type")``: residuals of one unit of the
  residual grouping ``k:j`` share a covariance (exchangeable; nlme ``corCompSymm``), one
  variance and one covariance per label constant within those units (``by=""``: one of
  each). See :mod:`sm_multisem.spec.residuals`;
* ``Relaxation("residual block", "k:j", "time", per="toeplitz")``: residuals of one unit of the
  residual grouping ``k:j`` have one variance and a covariance per lag of the integer ``time``
  (Stata ``mixed, residuals(toeplitz, t(time))``), a dense block of every unit; ``per="unstructured"``
  a variance per time and a covariance per pair of times; ``per="ar1"`` the correlation
  ``rho^|t - s|`` in any real time (nlme ``corCAR1``), with the residual variance of every row;
* ``Relaxation("covariance", "k:j", "region", among=(("north",),), equal=False)``: the effects of
  sibling units of ``k:j`` (units of one ``k``) whose labels are in one group of ``among`` are
  correlated, a covariance per pair of keyed slots (one per group with ``equal``). See
  :mod:`sm_multisem.spec.pairs` and :mod:`sm_multisem.engine.siblings`.

Everything downstream sees a relaxation only as different labels in the parameter
table: :func:`sm_multisem.spec.spec.specify` writes them, :func:`sm_multisem.compile.plan.compile_plan`
maps them to indices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.segments import time_order
from .layout import WideLayout

__all__ = ["KINDS", "LabelColumn", "Labels", "Relaxation", "collect_labels", "expand_slopes", "key_slots",
           "occasion_times", "time_key"]

KINDS = ("variance", "residual variance", "slope", "intercept", "residual correlation", "residual covariance",
         "covariance", "residual block")
#: Fewest units (or observations) a label needs before a parameter may rest on it.
MIN_PER_LABEL = 2


@dataclass(frozen=True)
class Relaxation:
    """One released constraint.

    Attributes
    ----------
    kind : {"variance", "residual variance", "slope", "intercept", "residual correlation", "residual covariance"}
    target : str
        The level (``"k:j"``; for a residual covariance the residual grouping), ``"Residual"``,
        or the fixed-effect column (``"x"``, ``"Intercept"``).
    by : str
        The labelling column (``""`` for a residual covariance shared by every unit); for a
        residual correlation, the time column.
    per : str
        For a residual correlation, the labelling column whose labels each get their own
        residual variance and rho (``""``: one of each for every unit).
    among : tuple of tuple of str, or None
        For a covariance, the groups of labels whose siblings are correlated (None: every label
        its own group; see :func:`sm_multisem.spec.pairs.normalized_among`).
    equal : bool
        For a covariance, one per group of labels instead of one per pair of keyed slots.
    """

    kind: str
    target: str
    by: str
    per: str = ""
    among: tuple[tuple[str, ...], ...] | None = None
    equal: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class LabelColumn:
    """A labelling column on the rows used (in their input order), factorized once.

    A model relaxed several times is rebuilt at every step; its labelling columns are read
    as integer codes, not compared as strings, on every rebuild.

    Attributes
    ----------
    codes : ndarray of int
        The label of every row, as its index in ``names``.
    names : list of str
        The distinct labels as text, sorted by their values.
    """

    codes: np.ndarray
    names: list[str]

    @classmethod
    def of(cls, values, by: str) -> LabelColumn:
        """Factorize the values of the labelling column ``by``.

        Raises
        ------
        ValueError
            A missing label (every row needs one).
        """
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=True)
        missing = codes < 0  # factorize codes a missing value -1
        if missing.any():
            raise ValueError(
                f"labelling column {by!r} is missing in {int(missing.sum()):,} of the rows used; "
                "every row needs a label"
            )
        return cls(codes, [str(u) for u in uniques])

    def strings(self, codes: np.ndarray | None = None) -> np.ndarray:
        """The labels as text (object array) of ``codes``, by default of every row."""
        return np.asarray(self.names, dtype=object)[self.codes if codes is None else codes]


@dataclass(frozen=True)
class Labels:
    """Label values the relaxations use, in the layout's sorted row order.

    Attributes
    ----------
    values : dict
        ``(kind, target) -> (labels of every unit or row, sorted distinct labels)``.
        Variance relaxations label the units of their level; the others label rows.
    codes : dict
        ``(kind, target) ->`` the same labels as indices into the distinct labels (every key
        of ``values`` but the times of AR(1) residuals).
    """

    values: dict[tuple[str, str], tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    codes: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def of(self, relaxation: Relaxation) -> tuple[np.ndarray, list[str]]:
        return self.values[(relaxation.kind, relaxation.target)]


def time_key(name: str) -> str:
    """The key of a time column among the labelling columns: a column may be a time and a label at once
    (AR(1) along ``occ`` with a variance per ``occ``)."""
    return f"time of {name}"


def collect_labels(relaxations: tuple[Relaxation, ...], columns: dict[str, np.ndarray],
                   layout: WideLayout) -> Labels:
    """Label every unit or row a relaxation refers to, and check the labels can carry it.

    Parameters
    ----------
    relaxations : tuple of Relaxation
    columns : dict
        Labelling column name -> its :class:`LabelColumn` (the time column of AR(1)
        residuals: its values on the rows used, in their input order).
    layout : WideLayout

    Raises
    ------
    ValueError
        A variance (or AR(1) residuals) relaxed by a column that is not constant within the
        level's units (the lowest units), a level that is not in the model, a missing label,
        or a label carried by fewer than :data:`MIN_PER_LABEL` units or rows (its parameter
        is not identified).

    Notes
    -----
    AR(1) residuals store their times under their own key, with the names of their labels
    (none without ``per``); their labels, as those of exchangeable residuals, are the
    residual variance's, one per row.
    """
    values: dict[tuple[str, str], tuple[np.ndarray, list[str]]] = {}
    codes_of: dict[tuple[str, str], np.ndarray] = {}
    for relax in relaxations:
        column, target = relax.by, relax.target
        if relax.kind == "residual block":
            times = occasion_times(relax.by, columns[time_key(relax.by)], layout, whole=relax.per != "ar1")
            values[(relax.kind, relax.target)] = (times, [])
            if relax.per.split(":")[0] in ("unstructured", "banded"):  # a residual variance per time
                distinct = np.unique(times)
                values[("residual variance", "Residual")] = (times.astype(str).astype(object),
                                                            [str(t) for t in distinct])
                codes_of[("residual variance", "Residual")] = np.searchsorted(distinct, times)
            continue
        if relax.kind == "residual correlation":
            times = occasion_times(relax.by, columns[time_key(relax.by)], layout)
            values[(relax.kind, relax.target)] = (times, [])
            if not relax.per:
                continue
            column, target = relax.per, layout.level_names[-1]
        if relax.kind == "residual covariance" and not relax.by:
            continue
        label_column: LabelColumn = columns[column]
        codes, names = label_column.codes[layout.order], label_column.names
        labels = label_column.strings(codes)
        if relax.kind in ("residual covariance", "residual correlation"):
            # a unit's block has one set of parameters, so its label is the unit's
            values[("residual variance", "Residual")] = (labels, names)
            codes_of[("residual variance", "Residual")] = codes
        if relax.kind in _PER_UNIT:
            if target not in layout.level_names:
                raise ValueError(f"level {target!r} is not in the model; its levels are {list(layout.level_names)}")
            level = layout.level_names.index(target)
            unit_codes, varies = layout.per_unit(codes, level)  # integers: compared faster than strings
            if varies is not None:
                ids = layout.unit_ids[level].iloc[varies].to_dict()
                raise ValueError(f"labelling column {column!r} is not constant within the units of {target} "
                                 f"(unit {ids} has several labels); " + _PER_UNIT[relax.kind].format(level=target))
            labels, codes, what = np.asarray(names, dtype=object)[unit_codes], unit_codes, f"units of {target}"
        else:
            what = "observations"
        counts = np.bincount(codes, minlength=len(names))
        thin = np.flatnonzero(counts < MIN_PER_LABEL)
        if len(thin):
            raise ValueError(
                f"relaxing the {relax.kind} of {relax.target} by {column!r}: label "
                f"{names[thin[0]]!r} has only {counts[thin[0]]} of the {what}; its parameter would "
                "not be identified"
            )
        if relax.kind == "residual correlation":
            values[(relax.kind, relax.target)] = (times, names)
        else:
            values[(relax.kind, relax.target)] = (labels, names)
            codes_of[(relax.kind, relax.target)] = codes
    return Labels(values, codes_of)


#: Relaxations whose label must be constant within units, and why.
_PER_UNIT = {
    "variance": "a variance of {level} effects can only differ between units",
    "covariance": "the covariance of two {level} effects is keyed by the labels of the two units",
    "residual covariance": ("an exchangeable block has one variance and one covariance, so its label must be the "
                            "unit's (a variance per occasion is structure='unstructured' with t=)"),
    "residual correlation": ("AR(1) residuals of a unit have one variance and one rho, so its label must be the "
                             "unit's (Stata residuals(ar 1, t(time) by(type)) requires the same)"),
}


def expand_slopes(exog: np.ndarray, exog_names: list[str], relaxations: tuple[Relaxation, ...],
                  columns: dict[str, np.ndarray], fitted: Labels | None = None) -> tuple[np.ndarray, list[str]]:
    """Replace each relaxed column ``x`` by ``x[g] = x * 1{label = g}`` for every label ``g``.

    Rows stay in input order. A relaxed intercept becomes the label's indicators
    ``Intercept[g]`` (kind ``"intercept"``); a slope relaxation of the intercept is refused.

    Parameters
    ----------
    exog : ndarray
        The design before any slope is split.
    exog_names : list of str
    relaxations : tuple of Relaxation
        Only the slope and intercept relaxations are used.
    columns : dict
        Labelling column name -> its :class:`LabelColumn` on the rows of ``exog``.
    fitted : Labels, optional
        The labels of a fitted model, for new rows: they get the fitted model's columns,
        whatever labels they carry, and a label the fit did not see is refused (it has no slope).
    """
    for relax in (r for r in relaxations if r.kind in ("slope", "intercept")):
        if relax.target not in exog_names:
            raise ValueError(f"{relax.target!r} is not a fixed-effect column; the columns are {exog_names}")
        if relax.kind == "slope" and relax.target == "Intercept":
            raise ValueError("the intercept differs by a label through relax_intercept(by=...) (or C(label) in the "
                             "formula), not relax_slope")
        labels, names = columns[relax.by].strings(), columns[relax.by].names
        if fitted is not None:
            unseen = sorted(set(names) - set(fitted.of(relax)[1]))
            if unseen:
                raise ValueError(f"{relax.by} = {unseen[0]!r} is not a label of the fitted data: the slope of "
                                 f"{relax.target} was estimated for {fitted.of(relax)[1]} only")
            names = fitted.of(relax)[1]
        at = exog_names.index(relax.target)
        expanded = exog[:, at][:, None] * (labels[:, None] == np.asarray(names, dtype=object)[None, :])
        exog = np.hstack([exog[:, :at], expanded, exog[:, at + 1:]])
        exog_names = exog_names[:at] + [f"{relax.target}[{g}]" for g in names] + exog_names[at + 1:]
    return exog, exog_names


def key_slots(layout: WideLayout, relaxations: tuple[Relaxation, ...],
              labels: Labels) -> tuple[WideLayout, str, tuple[str, np.ndarray] | None]:
    """Key the slots a relaxation is about by its labels, so that one position means one label.

    A variance relaxed at a level keys that level's slots (``J_pub1``); a residual variance
    keys the observations' slots; a slope or an intercept keys the coarsest level whose units carry a single
    label, else the observations. AR(1) residuals number the observations' slots by time (slot 1
    at the earliest time of the data), so that one position means one time in every cluster and
    the residual covariance of two positions, ``S_e * rho^|t_p - t_q|``, is one constant of the
    wide model. A label of the top-level clusters does not key slots: the wide form is then a
    multi-group SEM, one group of rows per label.

    Returns
    -------
    layout : WideLayout
        The keyed layout.
    problem : str
        Why the model has no wide form here (top-level labels from two columns), else empty.
    groups : tuple or None
        ``(labelling column, label of every top-level cluster)`` of a multi-group wide form.
    """
    done: set[tuple[int, str]] = set()
    last = len(layout.slots) - 1
    problem = ""
    groups: tuple[str, np.ndarray] | None = None
    for relax in relaxations:
        if (relax.kind == "residual correlation" and not relax.per) or not relax.by or relax.kind == "residual block":
            continue
        # integer codes of the labels: compared and ranked faster than their text
        if relax.kind == "residual correlation":  # its label keys the lowest units, as a variance of them would
            level = len(layout.levels) - 1
            key = ("residual variance", "Residual")
            column, codes = level - 1, layout.per_unit(labels.codes[key], level)[0]
        else:
            key = (relax.kind, relax.target)
            codes = labels.codes[key]
            if relax.kind in ("variance", "residual covariance", "covariance"):
                level = layout.level_names.index(relax.target)
                column = level - 1
            elif relax.kind == "residual variance":
                level, column = None, last
            else:
                level, per_unit = _coarsest_constant_level(codes, layout)
                column, codes = (last, codes) if level is None else (level - 1, per_unit)
        keys = np.asarray(labels.values[key][1], dtype=object)[codes]
        if level == 0:
            if groups is not None and groups[0] != relax.by:
                problem = problem or (
                    f"parameters differ by two labels of the top-level clusters ({groups[0]!r} and {relax.by!r}): "
                    "the wide form would be a multi-group SEM with one group per combination, which is not "
                    "written here"
                )
            groups = groups or (relax.per or relax.by, np.asarray(keys, dtype=object))
            continue
        if (column, relax.per or relax.by) not in done:
            layout = layout.keyed(column, keys, codes)
            done.add((column, relax.per or relax.by))
    for relax in (r for r in relaxations if r.kind == "residual correlation"
                  or (r.kind == "residual block" and r.per != "ar1")):
        # last, as keying the observations by a label would renumber them; a label key stays a prefix
        times, _ = labels.of(relax)
        slots = list(layout.slots)
        slots[-1] = times - times.min()
        layout = dataclasses.replace(layout, slots=tuple(slots))
    return layout, problem, groups


def _coarsest_constant_level(values: np.ndarray, layout: WideLayout) -> tuple[int | None, np.ndarray]:
    """The coarsest level whose units each carry one label, with the label of every unit."""
    for level in range(len(layout.levels)):
        per_unit, varies = layout.per_unit(values, level)
        if varies is None:
            return level, per_unit
    return None, values


def occasion_times(name: str, values: np.ndarray, layout: WideLayout, whole: bool = True) -> np.ndarray:
    """Times of the sorted rows (integers, unless ``whole`` is False), distinct within every lowest unit."""
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":  # text or mixed: what reads as a number (a numeric column is used as it is)
        values = pd.to_numeric(pd.Series(values.astype(object)), errors="coerce").to_numpy(dtype=float)
    numeric = values[layout.order].astype(float)
    if np.isnan(numeric).any() or np.isinf(numeric).any():
        raise ValueError(f"time column {name!r} has {int((~np.isfinite(numeric)).sum()):,} missing, infinite or "
                         "non-numeric values")
    if whole and np.any(numeric != np.round(numeric)):
        raise ValueError(f"time column {name!r} must hold integers (occasions); AR(1) correlation is rho^|t - s|")
    times = numeric.astype(np.int64) if whole else numeric
    lowest = layout.level_names[-1]
    unit = layout.unit_of_rows(len(layout.levels) - 1)
    order = time_order(times, unit)
    repeated = np.flatnonzero((np.diff(times[order]) == 0) & (np.diff(unit[order]) == 0))
    if len(repeated):
        ids = layout.unit_ids[-1].iloc[unit[order][repeated[0]]].to_dict()
        raise ValueError(f"unit {ids} of {lowest} has two observations at {name} = {times[order][repeated[0]]}; "
                         "AR(1) residuals need one observation per time within a unit")
    return times
