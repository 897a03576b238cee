"""Score tests of every constraint of the wide model (Stata ``estat scoretests``, lavaan ``lavTestScore``).

The wide SEM ties parameters across positions with labels: the slope ``bx`` and the
intercept ``c`` are the same in every equation, ``S_j`` is the variance of every latent
``J1, J2, ...``, ``S_e`` the variance of every residual, and the residuals are
uncorrelated. Each *family* below is the relaxation that frees one of these labels
position by position; its score test, at the constrained estimate alone, says whether
the data reject the constraint, and each row of the family says at which position.

What a position is depends on the parameter:

* slopes, the intercept and the residual variance belong to an equation, ``y1_2``: their
  position is the full position ``1_2`` (slot 1 of ``j`` in the cluster, observation 2 in it);
* the variance of a level's effects belongs to its latent variables, ``J1, J2``: its
  position is the unit's slot down to that level, ``1`` for ``J1`` (``1_2`` for a latent
  ``C1_2`` of a third level);
* the AR(1) correlation of the residuals is one parameter held at 0; its time is the
  observation's slot inside its lowest unit, unless a time column is given.

The top level has one latent per cluster (``K``), so no position to differ by.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engine.segments import time_order
from ..spec.layout import identifier, join_parts
from ..spec.relax import MIN_PER_LABEL
from .family_scores import correlation_score_test, fixed_effect_score_test, tested_from_the_fit, variance_score_test
from .hypothesis import InformationNotPositiveDefinite, score_test

__all__ = ["ScoreTests", "Family", "position_labels", "constraint_families", "score_tests"]

#: The label of the positions a partial release (``release=``) leaves tied together.
OTHERS = "others"
#: The label of the positions holding too few rows or units for a parameter each: they share one.
POOLED = "pooled"
#: The most groups a family frees; with more positions it is freed by the slots of a level above.
MAX_RELEASED = 50
_RELEASED_ROW = re.compile(r"^(?P<base>.+)\[(?P<position>[^\[\]]+)\]$")


@dataclass(frozen=True)
class Family:
    """A constraint of the wide model and the relaxation that frees it position by position.

    Attributes
    ----------
    label : str
        The constraint label in the wide model (``bx``, ``c``, ``S_j``, ``S_e``, ``rho``).
    question : str
        What the joint test of the family asks.
    kind : {"slope", "intercept", "variance", "residual variance", "residual correlation"}
    target : str
        The fixed-effect column, level or ``"Residual"`` the constraint is about.
    parameter : str
        The name of the constrained parameter in the results (``x``, ``var(k:j)``).
    note : str
        Why the family is not tested, empty when it is.
    grouping : str
        What the groups freed are: ``"by position"``, or by the slots of a level above and why,
        and which positions share the group ``pooled``.
    codes, names : ndarray or None
        The group of every sorted row (the layout's order), as an index into ``names``; None
        when the family cannot be tested, and for the residual correlation.
    input_rows : ndarray or None
        The input row of every sorted row (shared by the families of a model).
    n_input : int
        The number of input rows.
    times : ndarray, str or None
        The time of the residual correlation: one value per input row, or a column name.
    """

    label: str
    question: str
    kind: str
    target: str
    parameter: str
    note: str = ""
    grouping: str = ""
    codes: np.ndarray | None = None
    names: np.ndarray | None = None
    input_rows: np.ndarray | None = None
    n_input: int = 0
    times: np.ndarray | str | None = None

    @property
    def positions(self) -> np.ndarray | str | None:
        """The group of every input row (None where a row is not used), or, for the residual correlation,
        its time (or the name of the time column); None when the family cannot be tested.

        Built when asked for: a million rows of labels are kept as small integer codes until then.
        """
        if self.note:
            return None
        if self.kind == "residual correlation":
            return self.times
        out = np.full(self.n_input, None, dtype=object)
        out[self.input_rows] = self.names[self.codes]
        return out

    def relax(self, model, labels: np.ndarray | None = None):
        """The model with this constraint released by ``labels`` (by default one label per position)."""
        labels = self.positions if labels is None else labels
        if self.kind == "residual correlation":
            return model.relax_residuals(structure="ar1", t=labels)
        labels = pd.Series(labels, name=f"{self.label} position")  # a name of its own: relaxations chain
        if self.kind == "slope":
            return model.relax_slope(self.target, by=labels)
        if self.kind == "intercept":
            return model.relax_intercept(by=labels)
        if self.kind == "variance":
            return model.relax_variance(self.target, by=labels)
        return model.relax_residuals(by=labels)


@dataclass(frozen=True)
class ScoreTests:
    """Score tests of the constraints of a fit, family by family.

    Attributes
    ----------
    table : DataFrame
        Indexed by ``(family, constraint)``: for every position of a family the constraint
        released alone (``x[1_2]``: the slope of position ``1_2`` freed, the other positions
        sharing theirs), then the row ``joint`` releasing the whole family. Columns ``chi2``,
        ``df``, ``pvalue`` and ``epc``, the expected difference of the freed parameter from
        the value the other positions share (or from the held value, for ``rho``).
    families : DataFrame
        One row per family (indexed by its label): the ``question`` it answers, ``chi2``,
        ``df``, ``pvalue`` of the joint test, the ``information`` it used, the ``grouping`` of
        the positions it freed, and the ``note`` saying why a family was not tested.
    information : str
        The information matrix asked for (``"expected"`` by default).
    """

    table: pd.DataFrame
    families: pd.DataFrame
    information: str

    def __str__(self) -> str:
        width = 78
        rule = "-" * width
        lines = [f"Score tests of the constraints of the wide model ({self.information} information)", rule,
                 f"{'constraint released':<40}{'chi2':>10}{'df':>5}{'P>chi2':>10}{'EPC':>13}", rule]
        for label, family in self.families[self.families["note"] == ""].iterrows():
            used = "" if family["information"] == self.information else f" [{family['information']} information]"
            lines.append(f"{label}: {family['question']}{used}")
            if family["grouping"] and family["grouping"] != "by position":
                lines += textwrap.wrap(f"freed {family['grouping']}", width, initial_indent="  ",
                                       subsequent_indent="    ")
            for constraint, row in self.table.loc[label].iterrows():
                epc = "" if np.isnan(row["epc"]) else f"{row['epc']:13.4f}"
                lines.append(f"  {constraint:<38}{row['chi2']:10.4f}{int(row['df']):5d}{row['pvalue']:10.4f}{epc}")
        lines.append(rule)
        notes = ["Each row frees the parameter of one position, the other positions keeping a shared value; "
                 "joint frees them all. EPC: expected difference of the freed parameter from the shared one."]
        notes += [f"Not tested: {label} ({family['question']}): {family['note']}."
                  for label, family in self.families[self.families["note"] != ""].iterrows()]
        lines += [wrapped for note in notes for wrapped in textwrap.wrap(note, width, subsequent_indent="  ")]
        return "\n".join(lines)


def position_labels(model, level: str | None = None) -> np.ndarray:
    """The position of every input row in the wide model, for the relaxations' ``by=``.

    Parameters
    ----------
    model : MultilevelSEM
    level : str, optional
        A grouping level below the top: the slots of the row's units down to that level
        (``"1"`` for the rows of ``J1``). By default the full position (``"1_2"`` for the
        rows of equation ``y1_2``).

    Returns
    -------
    ndarray of object
        One label per input row, None for rows the model does not use.

    Examples
    --------
    ``model.relax_residuals(by=position_labels(model))`` frees the residual variance of every
    equation; ``model.relax_variance("k:j", by=position_labels(model, "k:j"))`` the variance of
    every latent ``J1, J2, ...``.
    """
    layout = model.layout
    if level is not None and level not in layout.level_names[1:]:
        raise ValueError(f"level must be one of {list(layout.level_names[1:])} (the levels below the top), "
                         f"got {level!r}")
    return _to_input_rows(model, _sorted_positions(layout, level))


def _sorted_positions(layout, level: str | None) -> np.ndarray:
    """Position of every sorted row: its slots down to ``level`` (all of them by default)."""
    parts = layout.position_parts()
    return join_parts(parts[: len(parts) if level is None else layout.level_names.index(level)])


def _to_input_rows(model, sorted_values: np.ndarray) -> np.ndarray:
    """Values of the layout's sorted rows placed at their input rows (None at rows not used)."""
    used = np.flatnonzero(model.model_data.rows_used)
    out = np.full(len(model.model_data.rows_used), None, dtype=object)
    out[used[model.layout.order]] = sorted_values
    return out


def constraint_families(model, t=None) -> list[Family]:
    """Every constraint of ``model`` that can be freed position by position, in table order.

    Parameters
    ----------
    model : MultilevelSEM
    t : str or array_like, optional
        Time of the AR(1) residual correlation (a column of the data, or one value per input
        row); by default the order of the observations inside their lowest unit.

    Returns
    -------
    list of Family
        Intercept, slopes, the variance of every level below the top, the residual variance,
        and the AR(1) correlation of the residuals. Each family frees its parameter by the
        grouping :func:`_grouping` chooses (by position, or by the slot of a level above when
        the positions are too many), and says which in ``grouping``; a family that cannot be
        freed (already relaxed, a single position) carries a note instead of positions.
    """
    rules = model.table.rules
    layout = model.layout
    relaxed = {(r.kind, r.target): r.by for r in model.relaxations}
    input_rows = np.flatnonzero(model.model_data.rows_used)[layout.order]
    families: list[Family] = []

    def add(label: str, question: str, kind: str, target: str, parameter: str, level: str | None = None) -> None:
        """A family freed across the positions of every row (of every unit of ``level``)."""
        if (kind, target) in relaxed:
            families.append(Family(label, question, kind, target, parameter,
                                   f"already relaxed by {relaxed[(kind, target)]!r}"))
            return
        depth = len(layout.levels) if level is None else layout.level_names.index(level)
        grouping = _grouping(layout, depth, None if level is None else layout.level_names.index(level))
        families.append(Family(label, question, kind, target, parameter, grouping.note, grouping.description,
                               grouping.codes, grouping.names, input_rows, len(model.model_data.rows_used)))

    fixed = rules[rules["kind"].isin(["intercept", "slope"])]
    for rule in fixed.assign(base=[_shared(r)[1] for r in fixed.itertuples()]).drop_duplicates("base").itertuples():
        label, base = _shared(rule)
        if rule.kind == "intercept":
            add(label, "intercepts equal in every position", "intercept", base, base)
        else:
            add(label, f"slopes of {base} equal in every position", "slope", base, base)
    variances = rules[rules["kind"] == "variance"].drop_duplicates("level").iloc[1:]
    for rule in variances.itertuples(index=False):
        add(_shared(rule)[0], f"{rule.level} effects homoskedastic: var({rule.level}) equal in every slot", "variance",
            rule.level, f"var({rule.level})", rule.level)
    residual = next(rules[rules["kind"] == "residual variance"].itertuples(index=False))
    add(_shared(residual)[0], "residuals homoskedastic: var(Residual) equal in every position", "residual variance",
        "Residual", "var(Residual)")
    lowest = layout.level_names[-1]
    note = ""
    if ("residual correlation", "Residual") in relaxed:
        note = f"already relaxed along {relaxed[('residual correlation', 'Residual')]!r}"
    elif layout.n_rows == layout.n_units[-1]:
        note = f"every {lowest} unit holds a single observation"
    if t is None:
        first = np.repeat(layout.row_starts, np.diff(np.append(layout.row_starts, layout.n_rows)))
        t = np.full(len(model.model_data.rows_used), np.nan)  # the rows not used have no time
        t[input_rows] = np.arange(layout.n_rows) - first
    families.append(Family("rho", f"residuals of a {lowest} unit uncorrelated: AR(1) rho(Residual) = 0",
                           "residual correlation", "Residual", "rho(Residual)", note, input_rows=input_rows,
                           n_input=len(model.model_data.rows_used), times=t))
    return families


@dataclass(frozen=True)
class _Grouping:
    """The groups a family frees (see :func:`_grouping`): the group of every sorted row as a code into
    ``names``, what the groups are, or why the family cannot be freed."""

    codes: np.ndarray | None
    names: np.ndarray | None
    description: str
    note: str = ""


def _grouping(layout, depth: int, level: int | None) -> _Grouping:
    """The groups a family frees its parameter by, from its positions down to coarser slots.

    A family's positions are the slots of its rows (``level`` None) or of its units of ``level``
    down to ``depth`` slots. Each group must hold :data:`~sm_multisem.spec.relax.MIN_PER_LABEL`
    rows or units to carry a parameter: positions holding fewer share one group, ``pooled``.
    On ragged data the full positions are many and most mean little (the 39th pupil of the 15th
    school of a district); beyond :data:`MAX_RELEASED` groups the family is freed by the slots
    one level up instead (the 15th school), and so on up to the slot below the top. Checked
    before any relaxed model is built, in integer arrays: O(rows) memory at any size.
    """
    what = "observations" if level is None else f"units of {layout.level_names[level]}"
    problems = []
    for d in range(depth, 0, -1):
        codes, names = layout.position_codes(d)
        counts = np.bincount(codes if level is None else layout.per_unit(codes, level)[0], minlength=len(names))
        thin = counts < MIN_PER_LABEL
        n_groups = int((~thin).sum()) + int(thin.any())
        scope = "by position" if d == depth else f"by the slot of {layout.level_names[d]}"
        if len(names) < 2:
            problem = "a single position: no constraint to release"
        elif thin.any() and counts[thin].sum() < MIN_PER_LABEL:
            first = int(np.flatnonzero(thin)[0])
            problem = (f"position {names[first]} holds only {int(counts[first])} of the {what}, too few to carry "
                       f"a parameter even with the other thin positions")
        elif n_groups > MAX_RELEASED:
            problem = f"{len(names):,} positions, more than the {MAX_RELEASED} groups a family frees"
        elif n_groups < 2:
            problem = f"no two positions hold {MIN_PER_LABEL} {what} each"
        else:
            description = scope if d == depth else f"{scope} ({'; '.join(problems)})"
            if thin.any():
                description += (f"; {int(thin.sum())} positions holding fewer than {MIN_PER_LABEL} {what} "
                                f"({int(counts[thin].sum())} in all) share one group, {POOLED!r}")
            kept = np.flatnonzero(~thin)  # the groups: every position kept, then the pooled ones
            group = np.full(len(names) + 1, len(kept))
            group[kept] = np.arange(len(kept))
            labels = np.array([*np.asarray(names, dtype=object)[kept], *([POOLED] * int(thin.any()))], dtype=object)
            codes = group[np.where(thin[codes], len(names), codes)].astype(np.min_scalar_type(len(labels)))
            return _Grouping(codes, labels, description)
        problems.append(problem if d == depth else f"{scope}: {problem}")
    return _Grouping(None, None, "", "; ".join(problems))


def _shared(rule) -> tuple[str, str]:
    """The label and parameter name a rule has in the model without its relaxation.

    A relaxed rule appends its label value to both (``bx_pub``, ``x[pub]``; see :func:`spec.specify`).
    """
    if not rule.by:
        return rule.label, rule.name
    return rule.label[: -len(identifier(rule.where)) - 1], rule.name[: -len(rule.where) - 2]


def score_tests(results, families=None, *, release=None, information: str = "expected", t=None) -> ScoreTests:
    """Score tests of every constraint of the wide model, one position at a time and family by family.

    For every family (:func:`constraint_families`) the relaxed model frees the constrained
    parameter at every position (``x[1_1]``, ``x[1_2]``, ...); :func:`~sm_multisem.inference.hypothesis.score_test`
    at the constrained estimate gives the statistic of freeing each position alone (df 1, the
    others keeping a shared value) and of freeing them all (df = positions - 1):

    .. math::

        LM = s' I^{-1} s, \\qquad s, I \\text{ of the relaxed model at } \\theta = A\\hat\\theta_0.

    Parameters
    ----------
    results : MultilevelSEMResults
        An ML fit.
    families : sequence of str, optional
        The labels of the families to test (``["bx", "S_e"]``); by default all of them, and
        none with ``[]`` (to test only ``release``).
    release : sequence of str, optional
        Constraints to release together, named as the rows of the table (``["x[1_2]",
        "var(Residual)[2_1]"]``, ``"rho(Residual)"``): one more family, ``released``, tests
        them jointly, every position not named keeping a shared value (lavaan
        ``lavTestScore(release = ...)``).
    information : {"expected", "observed"}
        The expected information is positive definite at any estimate; the observed one
        need not be. With the expected information, families of a model of nested random
        intercepts and independent residuals are tested from the fit alone
        (:mod:`~sm_multisem.inference.family_scores`), in O(rows) memory; the others, and every
        family under the observed information, from the relaxed model. The AR(1) family takes
        the observed information of the relaxed model where it is not tested from the fit
        (real or repeated times, other structures), and says so.
    t : str or array_like, optional
        Time of the AR(1) residuals (default: the order of the observations in their unit).

    Returns
    -------
    ScoreTests

    Raises
    ------
    ValueError
        For a REML fit, an unknown family label, or a constraint in ``release`` that names no
        position of any family. A family the data cannot identify (a position with fewer
        than :data:`~sm_multisem.spec.relax.MIN_PER_LABEL` units or rows, a covariate constant
        within a position) is not an error: it is left out with the reason in ``families``.
    """
    if results.reml:
        raise ValueError("score tests need an ML fit (reml=False): REML likelihoods of models with "
                         "different fixed effects are not comparable")
    if information not in ("expected", "observed"):
        raise ValueError(f"information must be 'expected' or 'observed', got {information!r}")
    model = results.model
    if model.plan.level_effects:
        raise NotImplementedError(
            "score tests of the wide model's constraints, position by position, are not implemented for random "
            "slopes (their wide form has loadings that are data); test a model against another with "
            "res.score_test(other_model) or res.lr_test(other_fit)")
    candidates = constraint_families(model, t=t)
    if families is not None:
        known = [f.label for f in candidates]
        unknown = [label for label in families if label not in known]
        if unknown:
            raise ValueError(f"no family labelled {unknown}; the families of this model are {known}")
        candidates = [f for f in candidates if f.label in families]
    rows, summaries = [], []
    for family in candidates:
        times, note = None, family.note
        if family.kind == "residual correlation" and not note:
            times, note = _sorted_times(model, family)
        from_fit = information == "expected" and not note and tested_from_the_fit(model, family.kind)
        from_fit = from_fit and (family.kind != "residual correlation" or times is not None)
        # the relaxed model of an AR(1) fit, or of the AR(1) family, has no expected information
        observed_only = len(model.plan.ar1_entries) or family.kind == "residual correlation"
        used = "observed" if observed_only and not from_fit else information
        summary = {"question": family.question, "chi2": np.nan, "df": 0, "pvalue": np.nan, "information": used,
                   "grouping": family.grouping, "note": note}
        if not note:
            if from_fit:
                outcome = _without_relaxing(results, family, times)
            else:
                outcome = _test(results, lambda m, f=family: f.relax(m), summary["information"])
            if isinstance(outcome, str):
                summary["note"] = outcome
            else:
                rows.append((family.label, outcome))
                summary.update(chi2=outcome.statistic, df=outcome.df, pvalue=outcome.pvalue)
        summaries.append((family.label, summary))
    if release:
        released = _released(constraint_families(model, t=t), list(release))
        used = "observed" if any(f.kind == "residual correlation" for f, _ in released) else information
        outcome = _test(results, lambda m: _relax_chain(m, released), used)
        if isinstance(outcome, str):
            raise ValueError(f"the constraints {list(release)} cannot be released together: {outcome}")
        rows.append(("released", outcome))
        summaries.append(("released", {"question": "the constraints " + ", ".join(release), "chi2": outcome.statistic,
                                       "df": outcome.df, "pvalue": outcome.pvalue, "information": used, "grouping": "",
                                       "note": ""}))
    return ScoreTests(_table(rows), pd.DataFrame.from_dict(dict(summaries), orient="index"), information)


def _sorted_times(model, family: Family) -> tuple[np.ndarray | None, str]:
    """The integer time of every sorted row for the AR(1) family, or why there is no score test at rho = 0.

    None without a reason when the times are a column name or repeat inside a unit: the relaxed
    model reads them, and says what is wrong.
    """
    if isinstance(family.times, str):
        return None, ""
    times = np.asarray(family.times, dtype=float)[family.input_rows]
    if not np.all(np.isfinite(times)):
        return None, ""
    if np.any(times != np.round(times)):
        return None, ("the times are not whole numbers: in real time rho^|t - s| has no finite slope at rho = 0 "
                      "for gaps below 1, so rho = 0 has no score test; compare the fits with lr_test")
    times = times.astype(np.int64)
    unit = model.layout.unit_of_rows(len(model.layout.levels) - 1)
    order = time_order(times, unit)
    if np.any((np.diff(times[order]) == 0) & (np.diff(unit[order]) == 0)):
        return None, ""
    return times, ""


def _test(results, relax, information: str):
    """The score test of ``relax(model)`` against the fit, or why it cannot be computed."""
    try:
        relaxed = relax(results.model)
    except ValueError as err:  # the relaxation refuses positions the data cannot identify
        return str(err)
    if len(relaxed.plan.ar1_entries):  # AR(1) in real time is a dense block of every unit, with its times
        plan = relaxed.plan
        times = (plan.residual_ar1[0] if plan.residual_ar1 is not None
                 else relaxed.labels.values[("residual correlation", "Residual")][0])
        problem = _ar1_problem(relaxed.layout, times)
        if problem:
            return problem
    try:
        return score_test(results, relaxed, information=information)
    except InformationNotPositiveDefinite as err:
        return str(err)


def _without_relaxing(results, family: Family, times: np.ndarray | None):
    """The score test of a family from the fit alone (:mod:`~sm_multisem.inference.family_scores`: no
    relaxed model is built), or why it cannot be computed."""
    try:
        if family.kind == "residual correlation":
            return _ar1_problem(results.model.layout, times) or correlation_score_test(results, times)
        if family.kind in ("intercept", "slope"):
            return fixed_effect_score_test(results, family.target, family.codes, family.names)
        layout = results.model.layout
        level = len(layout.levels) if family.kind == "residual variance" else layout.level_names.index(family.target)
        return variance_score_test(results, level, family.codes, family.names)
    except InformationNotPositiveDefinite as err:
        return str(err)


def _ar1_problem(layout, times: np.ndarray) -> str:
    """Why the residual correlation cannot be told from the lowest level's variance (empty when it can).

    Both add to the covariance of two observations of a unit, the correlation as ``rho^lag``:
    they are apart only when some pairs are further apart than others, i.e. when some unit
    has three observations, or units of two observations have different gaps.
    """
    sizes = np.diff(np.append(layout.row_starts, layout.n_rows))
    pairs = layout.row_starts[sizes == 2]
    if np.any(sizes > 2) or len(np.unique(np.abs(times[pairs + 1] - times[pairs]))) > 1:
        return ""
    lowest = layout.level_names[-1]
    return (f"every {lowest} unit has at most two observations, all the same time apart: rho(Residual) and "
            f"var({lowest}) then only enter as their sum, the covariance of the two")


def _released(families: list[Family], names: list[str]) -> list[tuple[Family, np.ndarray | None]]:
    """The families ``names`` release, each with its labels: the named positions, the others tied."""
    by_parameter = {f.parameter: f for f in families}
    chosen: dict[str, set[str]] = {}
    for name in names:
        match = _RELEASED_ROW.match(name)
        parameter, position = (match["base"], match["position"]) if match else (name, None)
        family = by_parameter.get(parameter)
        if family is None or family.note or (position is None) != (family.kind == "residual correlation"):
            raise ValueError(f"{name!r} is not a constraint that can be released; name a parameter at a position, "
                             f"as the rows of score_tests() do (e.g. {families[0].parameter}[...])")
        if position is not None and position not in set(family.names):
            raise ValueError(f"{name!r}: {position!r} is not a position of {parameter}")
        chosen.setdefault(family.label, set()).update([position] if position else [])
    out = []
    for family in families:
        if family.label in chosen:
            if family.kind == "residual correlation":
                out.append((family, None))
                continue
            positions = family.positions
            keep = np.isin(positions, list(chosen[family.label]))
            out.append((family, np.where(keep | pd.isna(positions), positions, OTHERS)))
    return out


def _relax_chain(model, released: list[tuple[Family, np.ndarray | None]]):
    for family, labels in released:
        model = family.relax(model, labels)
    return model


def _table(rows: list[tuple[str, object]]) -> pd.DataFrame:
    """Univariate rows of every tested family (constraints named by the relaxed parameters), then its joint row."""
    frames = []
    for label, test in rows:
        table = test.table[~test.table.index.str.endswith(f"[{OTHERS}]")]
        joint = pd.DataFrame({"chi2": test.statistic, "df": test.df, "pvalue": test.pvalue, "epc": np.nan},
                             index=["joint"])
        frame = pd.concat([table, joint])
        frame.index = pd.MultiIndex.from_product([[label], frame.index], names=["family", "constraint"])
        frames.append(frame)
    columns = ["chi2", "df", "pvalue", "epc"]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)
