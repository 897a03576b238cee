"""Which pairs of siblings a freed covariance joins: groups of labels, keyed slots, and their checks.

Two siblings are two units with one parent (two counties of a state, two schools of a district;
for residuals, two observations of one lowest unit). Their slots are keyed by a labelling column
(``north1``, ``north2``, ``south1``: a label and the rank of the sibling among its parent's
siblings of that label), so that a covariance is a parameter per *pair of keyed slots*
(``cov(k:j)[north1,north2]``), shared by every parent that holds the pair, or one parameter per
group of labels (``cov(k:j)[north]``) when equal. Only siblings whose labels are in one group
are correlated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .layout import identifier, position_order

__all__ = ["RESIDUAL", "Siblings", "label_groups", "normalized_among", "sibling_pairs"]

#: The ``level`` of residual covariances.
RESIDUAL = "Residual"


@dataclass(frozen=True)
class Siblings:
    """The children of every parent unit, one row each, with their names in the wide model."""

    level: str  # as the request names it
    parent_level: str  # the level whose units are the parents (and whose variance the pairs confound)
    stem: str  # of the covariance labels: ``j`` for the effects of k:j, ``e`` for residuals
    frame: pd.DataFrame  # per child: name (latent or outcome), slot, parent (unit id), label

    @property
    def units(self) -> str:
        return "observations" if self.level == RESIDUAL else f"units of {self.level}"


def normalized_among(among) -> tuple[tuple[str, ...], ...] | None:
    """``among`` as groups of labels (a label, a sequence of labels each its own group, or a
    sequence of sequences of labels); None (every label its own group) as it is."""
    if among is None:
        return None
    if isinstance(among, str):
        return ((among,),)
    if isinstance(among, (Sequence, np.ndarray, pd.Series)):
        return tuple((str(item),) if isinstance(item, str) else tuple(str(g) for g in item) for item in among)
    raise ValueError(f"among must be a label, a sequence of labels or of groups of labels, got {among!r}")


def label_groups(among, names: list[str], level: str, by) -> list[tuple[str, ...]]:
    """The groups of labels of ``among`` (see :func:`normalized_among`), checked against the labels
    ``names`` of ``level``'s labelling column ``by``."""
    groups = normalized_among(among)
    groups = [(name,) for name in names] if groups is None else list(groups)
    seen: set[str] = set()
    for group in groups:
        unknown = [g for g in group if g not in names]
        if unknown:
            raise ValueError(f"among: {unknown} {'is not a label' if len(unknown) == 1 else 'are not labels'} of "
                             f"{level} in {by if isinstance(by, str) else 'by'!r}; its labels are {names}")
        twice = seen.intersection(group)
        if twice:
            raise ValueError(f"among: label {min(twice)!r} is in two groups; a label belongs to one group")
        seen.update(group)
    return groups


def sibling_pairs(siblings: Siblings, groups: list[tuple[str, ...]], among_given: bool, equal: bool) -> pd.DataFrame:
    """The pairs of sibling names to correlate, with their label and display name.

    A pair is freed where two siblings of one group share a parent somewhere in the data; a
    pair of keyed slots that never meets has no covariance to estimate and is left out.

    Parameters
    ----------
    siblings : Siblings
    groups : list of tuple of str
        From :func:`label_groups`.
    among_given : bool
        Whether the groups were asked for (each must then meet somewhere).
    equal : bool
        One covariance per group instead of one per pair of keyed slots.

    Returns
    -------
    DataFrame
        One row per pair of sibling names: ``name_a, name_b, slot_a, slot_b, group, label, display``.
    """
    frame = siblings.frame
    group_of = {label: g for g, group in enumerate(groups) for label in group}
    frame = frame.assign(group=frame["label"].map(group_of).fillna(-1).astype(int))
    _refuse_all_pairs(siblings, frame)
    grouped = frame[frame["group"] >= 0]
    met = grouped.merge(grouped, on=["parent", "group"], suffixes=("_a", "_b"))
    met = met[met["name_a"] != met["name_b"]]
    # slots in the order of the wide model's positions, ranked once (a few dozen distinct slots)
    slots = sorted(set(frame["slot"]), key=position_order)
    rank = {slot: at for at, slot in enumerate(slots)}
    rank_a, rank_b = met["slot_a"].map(rank).to_numpy(), met["slot_b"].map(rank).to_numpy()
    met = met[rank_a < rank_b].drop_duplicates(["name_a", "name_b"])
    rank_a, rank_b = met["slot_a"].map(rank).to_numpy(), met["slot_b"].map(rank).to_numpy()
    met = met.iloc[np.lexsort((met["name_a"].to_numpy(), rank_a, rank_b))]
    empty = sorted(set(range(len(groups))) - set(met["group"]))
    if among_given and empty:
        group = groups[empty[0]]
        raise ValueError(f"no unit of {siblings.parent_level} holds two {siblings.units} labelled "
                         f"{' or '.join(map(repr, group))}: there is no covariance among them to estimate")
    if met.empty:
        raise ValueError(f"no unit of {siblings.parent_level} holds two {siblings.units} with labels of one group: "
                         "there is no covariance to estimate")
    level = siblings.level
    if equal:
        words = ["+".join(groups[g]) for g in met["group"]]
        met = met.assign(label=[f"C_{siblings.stem}_{identifier('_'.join(groups[g]))}" for g in met["group"]],
                         display=[f"cov({level})[{w}]" for w in words])
    else:
        met = met.assign(label=[f"C_{siblings.stem}_{identifier(a)}_{identifier(b)}"
                                for a, b in zip(met["slot_a"], met["slot_b"])],
                         display=[f"cov({level})[{a},{b}]" for a, b in zip(met["slot_a"], met["slot_b"])])
    return met


def _refuse_all_pairs(siblings: Siblings, frame: pd.DataFrame) -> None:
    """Refuse correlating every pair of siblings the data hold.

    In a parent unit, two siblings ``a, b`` have ``Cov(y_a, y_b) = var(parent) + cov(a, b)``
    and every outcome of the parent shares ``var(parent)``. When every pair of siblings in the
    data is correlated, adding ``d`` to ``var(parent)`` and taking ``d`` from every covariance
    and every sibling variance leaves every implied covariance unchanged: the parent's
    variance is not identified. An uncorrelated pair (two siblings of different groups, or
    one outside the groups) pins it.
    """
    parent, group = frame["parent"].to_numpy(), frame["group"].to_numpy()
    n_parents = int(parent.max()) + 1
    size = np.bincount(parent, minlength=n_parents)
    outside = np.bincount(parent, weights=group < 0, minlength=n_parents)
    distinct = np.unique(np.column_stack([parent, group]), axis=0)
    groups = np.bincount(distinct[:, 0], minlength=n_parents)
    if np.any((size >= 2) & ((outside > 0) | (groups > 1))):
        return
    parent = siblings.parent_level
    raise ValueError(
        f"every pair of sibling {siblings.units} in the data would be correlated: in a unit of {parent}, two of "
        f"them have Cov(y_a, y_b) = var({parent}) + cov({siblings.level})[a,b], so var({parent}) cannot be told "
        f"apart from the covariances and var({siblings.level}); keep some pairs uncorrelated (among= fewer labels, "
        f"or labels in separate groups)"
    )
