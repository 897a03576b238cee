"""Covariances the mixed model holds at 0, freed by a label: among sibling effects and among residuals.

The mixed model makes the random effects of a level independent, and so the residuals. In
the wide form (one row per top-level cluster, one latent per unit slot, one equation per
position) each of these zeros is a row ``a ~~ 0*b`` of the parameter table, and the source
article frees some of them: the effects of the three northern counties correlated, the
errors of the public schools correlated, each pair free or all pairs equal.

What is freed is always a covariance between *siblings*, two units with the same parent:

* effects: two units of a level below the top inside one unit of the level above (two
  counties of one state); the top level has one unit per wide row, so no siblings;
* residuals: two observations of one unit of the lowest level (two schools of one county
  when the schools are the observations, as in the article).

The slots of the siblings are keyed by the labelling column (``J_north1``, ``J_north2``,
``y_pub1``: the first and second northern county of a state, the first public school of a
county), so that one position means one label in every cluster, and a freed covariance is
a parameter per *pair of keyed slots*, ``cov(k:j)[north1,north2]`` (label
``C_j_north1_north2``), shared by every parent unit that holds the pair, or one parameter per
group of labels (``cov(k:j)[north]``, label ``C_j_north``) with ``equal=True``. Only
siblings whose labels are in one group of ``among`` are correlated; siblings of different
groups stay uncorrelated.

The model is not a mixed model any more, so it is fitted by the dense wide engine
(:class:`~sm_multisem.wide_model.WideSEM`), from the nested model's own table (see
:meth:`~sm_multisem.model.MultilevelSEM.as_wide`) with the covariance rows freed. The same engine
fits unstructured residuals with a set of variances and covariances per label of the residual
grouping's units (:func:`unstructured_model`), from the exchangeable model's table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from .engine.ram import conditioned_covariates
from .spec.layout import join_parts, level_name, position_name
from .spec.pairs import RESIDUAL, Siblings, label_groups, sibling_pairs
from .spec.relax import Relaxation, occasion_times
from .spec.residuals import check_occasion_pairs, exchangeable_changes
from .wide_model import WideSEM

__all__ = ["RESIDUAL", "Covariances", "free_sibling_covariances", "keying_relaxation", "relax_covariances",
           "unstructured_model"]


@dataclass(frozen=True)
class Covariances:
    """Covariances to free among siblings of a level, by a label.

    Attributes
    ----------
    level : str
        A grouping level below the top (``"k:j"``): covariances of its units' effects; or
        ``"Residual"``: covariances of the residuals of one lowest unit's observations.
    by : str or array_like
        The labelling column (or one label per input row), constant within the units of
        ``level``.
    among : str, sequence, or None
        The groups of labels whose siblings are correlated: a label, a sequence of labels
        (each its own group), or a sequence whose items are sequences of labels (siblings
        of any labels of one item are correlated, across those labels too). By default every
        label is its own group.
    equal : bool
        One covariance per group instead of one per pair of keyed slots.
    """

    level: str
    by: object
    among: object = None
    equal: bool = False


def relax_covariances(model, *requests: Covariances, start_params=None):
    """The wide model of ``model`` with the covariances of ``requests`` freed.

    Parameters
    ----------
    model : MultilevelSEM
        Any model with a single wide form (relaxed variances, slopes or residual variances
        included; AR(1) residuals are not, see :meth:`~sm_multisem.model.MultilevelSEM.as_wide`).
    *requests : Covariances
        At most one per level (and one for the residuals).
    start_params : array_like, optional
        Start values of ``model``'s parameters; by default its ML estimates. The freed
        covariances start at 0, so the fit starts at the constrained optimum.

    Returns
    -------
    WideSEM
        Its parameters are ``model``'s, then the covariances, named ``cov(<level>)[a,b]``
        (``cov(<level>)[group]`` when equal).

    Raises
    ------
    ValueError
        Before fitting, for a request the data cannot identify: the top level; a labelling
        column that varies inside the units; a label of ``among`` that is not a label of
        the level; no two siblings of one group in any parent; every pair of siblings in
        the data correlated (then their covariance is confounded with the parent's variance);
        or, by the rank of the moments' Jacobian, any other direction the positions
        present in the data do not identify.
    """
    levels = [request.level for request in requests]
    if len(set(levels)) < len(levels):
        raise ValueError(f"covariances of one level are freed by a single request; got the levels {levels}")
    layout = model.layout
    labelled = []
    for request in requests:
        column, keys, names = _keys(model, request)
        # a variance or slope relaxed by the same label has keyed these slots already
        if not (layout.slot_keys and np.array_equal(layout.slot_keys[column], keys)):
            layout = layout.keyed(column, keys)
        labelled.append((request, column, keys, names))
    view = model.with_positions(layout)
    wide = view.as_wide(start_params=start_params)
    table = wide.parameter_table
    new_names: dict[str, str] = {}
    for request, column, keys, names in labelled:
        siblings = _siblings(view, request, column, keys)
        groups = label_groups(request.among, names, request.level, request.by)
        pairs = sibling_pairs(siblings, groups, request.among is not None, request.equal)
        table = _free(table, siblings, pairs, new_names)
    relaxed = wide.with_table(table, names=new_names)
    relaxed.check_identification()
    return relaxed


def free_sibling_covariances(model, table: pd.DataFrame) -> pd.DataFrame:
    """The per-position table of ``model`` with the covariances of its ``relax_covariance`` relaxations freed
    (the recursion evaluates them; the table shows and exports them)."""
    names: dict[str, str] = {}
    for relax in (r for r in model.relaxations if r.kind == "covariance"):
        keys, labels = model.labels.of(relax)
        request = Covariances(relax.target, relax.by, relax.among, relax.equal)
        siblings = _siblings(model, request, model.layout.level_names.index(relax.target) - 1, keys)
        groups = label_groups(relax.among, labels, relax.target, relax.by)
        table = _free(table, siblings, sibling_pairs(siblings, groups, relax.among is not None, relax.equal), names)
    return table


def keying_relaxation(model, level: str, name: str, residual: bool = True) -> Relaxation | None:
    """The relaxation whose label keys the slots of ``level`` (its variance, or the residual variance,
    relaxed by a label), or None, for freeing covariances among its siblings by the label ``name``.

    Raises
    ------
    ValueError
        The top level (no siblings); a level the model does not have (``Residual`` counts as one
        when ``residual``); slots keyed by another label than ``name``.
    """
    names = model.layout.level_names
    if level == names[0]:
        raise ValueError(
            f"{level} is the top level: each of its units is one row of the wide model, so its effects have "
            "no siblings to be correlated with (covariances across rows are not a wide SEM)")
    if level not in names and not (residual and level == RESIDUAL):
        raise ValueError(f"level must be one of {list(names[1:])} (the levels below the top) or {RESIDUAL!r}, "
                         f"got {level!r}")
    kind = "residual variance" if level == RESIDUAL else "variance"
    done = next((r for r in model.relaxations if (r.kind, r.target) == (kind, level)), None)
    if done is not None and done.by != name:
        raise ValueError(f"the {kind} of {level} is relaxed by {done.by!r}: its slots are keyed by that label, "
                         f"so its covariances are freed by {done.by!r} too, not by {name!r}")
    return done


def _keys(model, request: Covariances) -> tuple[int, np.ndarray, list[str]]:
    """The column of the layout's slots the request keys, the label of every unit (or sorted row) there,
    and the distinct labels; checked as a variance (residual variance) relaxed by the same column is."""
    layout = model.layout
    done = keying_relaxation(model, request.level, model._label_name(request.by))
    if request.level == RESIDUAL:
        column, relax = len(layout.slots) - 1, model.relax_residuals
    else:
        column, relax = layout.level_names.index(request.level) - 1, partial(model.relax_variance, request.level)
    if done is not None:
        return (column, *model.labels.of(done))
    probe = relax(request.by)  # labels every unit (row), with the relaxation's own checks
    return (column, *probe.labels.of(probe.relaxations[-1]))


def _siblings(view, request: Covariances, column: int, keys: np.ndarray) -> Siblings:
    """Every child (unit of the level, or observation) with its name in the wide model, keyed slot,
    parent unit and label."""
    layout, table = view.layout, view.table
    parts = layout.position_parts()
    level = column + 1  # levels are numbered from the top; slot columns from the first level below it
    if request.level == RESIDUAL:
        first = np.arange(layout.n_rows)
        names = [position_name(table.outcome, s) for s in join_parts(parts)]
        parent = layout.unit_of_rows(level - 1)
        stem = "e"
    else:
        unit = layout.unit_of_rows(level)
        first = np.flatnonzero(np.r_[True, np.diff(unit) != 0])
        names = [position_name(table.latent_bases[level], s) for s in join_parts([p[first] for p in parts[:level]])]
        parent = layout.unit_of_rows(level - 1)[first]
        stem = table.latent_bases[level].lower()
    frame = pd.DataFrame({"name": names, "slot": parts[column][first], "parent": parent, "label": keys})
    return Siblings(request.level, layout.level_names[level - 1], stem, frame)


def _free(table: pd.DataFrame, siblings: Siblings, pairs: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Free the covariance rows of ``pairs`` (latents' rows are in the table at 0; residuals' are added)."""
    clash = sorted(set(pairs["label"]) & (set(table["label"]) | set(names)))
    if clash:  # a shared label would tie the covariance to another parameter
        raise ValueError(f"the covariance label {clash[0]!r} is already a label of the model; rename the level or "
                         "the labels of the labelling column")
    table = table.copy()
    names.update(dict(zip(pairs["label"], pairs["display"])))
    if siblings.level == RESIDUAL:
        added = pd.DataFrame({"lhs": pairs["name_a"].to_numpy(), "op": "~~", "rhs": pairs["name_b"].to_numpy(),
                              "label": pairs["label"].to_numpy(), "free": True, "value": np.nan})
        return pd.concat([table, added], ignore_index=True)
    key = dict(zip(map(frozenset, zip(pairs["name_a"], pairs["name_b"])), pairs["label"]))
    covariance = (table["op"] == "~~") & (table["lhs"] != table["rhs"])
    label = [key.get(frozenset((a, b))) for a, b in zip(table["lhs"], table["rhs"])]
    freed = covariance & pd.Series([lab is not None for lab in label], index=table.index)
    table.loc[freed, "label"] = [lab for lab, f in zip(label, freed) if f]
    table.loc[freed, "free"] = True
    table.loc[freed, "value"] = np.nan
    return table


def unstructured_model(model, t: str, within: str | None, by=None):
    """The model with unstructured residuals within ``within`` along the occasions ``t``, as a
    :class:`~sm_multisem.wide_model.WideSEM` started from the exchangeable fit.

    With ``by`` (a label constant within the units of ``within``) every label has its own
    variances and covariances: the positions are keyed by the label (``y_a1_2``: the first unit
    labelled ``a``, occasion 2), and the parameters are ``var(Residual)[a,2]`` and
    ``cov(Residual)[a,1,2]``.

    Raises
    ------
    ValueError
        The groupings :func:`exchangeable_changes` refuses; an occasion repeated within a unit;
        no more units than occasions, an occasion seen in a single unit or a pair of occasions
        never observed together in one unit, within any label (their variance or covariance is
        not identified).
    """
    changes = exchangeable_changes(model, within, "unstructured")
    target = level_name(changes["groupings"][-1])
    blocks = model._relaxed(Relaxation("residual covariance", target, "" if by is None else model._label_name(by)),
                            by, **changes)
    layout = blocks.layout
    if not isinstance(t, str) or t not in model._recipe["frame"].columns:
        raise ValueError(f"t={t!r} must name a column of the data (the occasion of every row)")
    times = occasion_times(t, model._recipe["frame"][t].to_numpy()[model._recipe["source"].rows_used], layout)
    occasions, code = np.unique(times, return_inverse=True)
    if by is None:
        check_occasion_pairs(layout, code, occasions, t)
    else:
        unit_labels, names = blocks.labels.values[("residual covariance", target)]
        for name in names:
            check_occasion_pairs(layout, code, occasions, t, unit_labels == name, f" labelled {name}")
    exchangeable_fit = blocks.fit()
    # the same model with the positions of a unit numbered by occasion: one position, one time
    timed = blocks.with_positions(dataclasses.replace(layout, slots=(*layout.slots[:-1], code)))
    table = timed.parameter_table
    start = dict(zip(blocks.plan.labels, exchangeable_fit.params))
    names = dict(zip(blocks.plan.labels, blocks.plan.param_names))
    occasion_of = {y: occasions[int(y.rsplit("_", 1)[1]) - 1] for y in table.loc[table["op"] == "~1", "lhs"]}
    residual = table["op"].eq("~~") & table["label"].str.match(r"^[SC]_e(_|$)") & ~table["lhs"].isin(
        set(table.loc[table["op"] == "=~", "lhs"]))
    for at, row in table[residual].iterrows():
        pair = sorted({occasion_of[row.lhs], occasion_of[row.rhs]})
        kind, group = row.label[:3], row.label[4:]  # "S_e" / "C_e", then the label's identifier, if any
        label = f"{kind}{'_' + group if group else ''}_t" + "_t".join(map(str, pair))
        table.loc[at, "label"] = label
        where = names[row.label].rsplit("[", 1)[1].rstrip("]") + "," if group else ""
        names[label] = f"{'var' if len(pair) == 1 else 'cov'}(Residual)[{where}{','.join(map(str, pair))}]"
        start[label] = start[row.label]
    exogenous = conditioned_covariates(table)
    labelled = f", by {blocks.relaxations[-1].by}" if by is not None else ""
    title = (f"Residual: Unstructured within {target} along {t}{labelled} "
             f"(wide SEM: {model.formula or model.endog_names})")
    return WideSEM(table, timed.wide_data(fill_absent_covariates=True), exogenous=exogenous, names=names,
                   start=start, source=blocks, title=title)
