"""Long data -> wide layout: one row per top-level cluster, one position per lower-level slot.

The layout is stored ragged (long rows sorted by cluster and unit, with offsets), never as
a dense clusters x positions array: real cluster sizes are ragged and a dense array can be
thousands of times larger than the data. :meth:`WideLayout.wide_frame` materialises the
wide data only to show or export it.

A *slot* is a unit's position inside its parent, in sorted order of its id (as Stata's
``reshape wide`` numbers them); the slot of an observation inside its lowest unit is its
order of appearance in the data.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..engine.segments import dense_codes

__all__ = ["WideLayout", "build_layout", "combine_codes", "identifier", "join_parts", "level_name", "nesting_chain",
           "position_name", "position_order"]


def identifier(name: str) -> str:
    """A name usable as a variable or label in Stata and lavaan (``C(t)[T.b]`` -> ``C_t_T_b``)."""
    text = re.sub(r"[^0-9A-Za-z_]+", "_", str(name)).strip("_") or "v"
    return text if not text[0].isdigit() else f"v{text}"


def level_name(grouping: tuple[str, ...]) -> str:
    """The name of a grouping level as lme4 prints it: ``k``, ``k:j``."""
    return ":".join(grouping)


def position_name(stem: str, suffix: str) -> str:
    """``y`` and ``1_2`` -> ``y1_2``; ``y`` and ``pub1_2`` -> ``y_pub1_2``; ``z1`` and ``1_2`` -> ``z1_1_2``.

    A label, or a stem ending in a digit, needs a separator (``z11_2`` would be ambiguous).
    """
    return f"{stem}{suffix}" if suffix[:1].isdigit() and not stem[-1:].isdigit() else f"{stem}_{suffix}"


def _codes(values: pd.Series | np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Integer codes in sorted order of the values (categoricals in category order)."""
    kind, size = values.dtype.kind, getattr(values.dtype, "itemsize", 0)
    if len(values) and (kind == "i" or (kind == "u" and size < 8)):  # integer ids: no sort if their range is small
        array = np.asarray(values, dtype=np.int64)
        low, high = int(array.min()), int(array.max())  # Python integers: the range itself cannot overflow
        # a range wider than dense_codes takes would overflow int64 in the difference, near the ends of int64
        dense = dense_codes(array - low) if high - low < 4 * len(array) + 1024 else None
        if dense is not None:
            return dense
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError as err:  # mixed types that cannot be sorted
        raise ValueError(f"id column {name!r} mixes values that cannot be ordered: {err}") from None
    return codes.astype(np.int64), len(uniques)


def combine_codes(left: np.ndarray, n_right: int, right: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of the pairs (left, right), in lexicographic order."""
    key = left * n_right + right
    return dense_codes(key) or _codes(key, "combined id")


def _parent_units(fine: np.ndarray, n_fine: int, coarse: np.ndarray) -> np.ndarray | None:
    """The coarse unit of every fine unit, from the codes of both on every row; None when some
    fine unit lies in several coarse units (the factors are crossed). O(rows), no sort."""
    parent = np.empty(n_fine, dtype=np.int64)
    parent[fine] = coarse
    return parent if np.array_equal(parent[fine], coarse) else None


def nesting_chain(
    groupings: tuple[tuple[str, ...], ...], id_codes: dict[str, tuple[np.ndarray, int]], terms: str
) -> tuple[tuple[str, ...], ...]:
    """Order grouping factors from the top level down and check that each is nested in the last.

    Parameters
    ----------
    groupings : tuple of tuple of str
        Grouping factors as written in the random terms.
    id_codes : dict
        Integer codes and their count for every id column (see :func:`_codes`).
    terms : str
        The random terms as written, for messages.

    Raises
    ------
    ValueError
        When a grouping factor repeats, or two factors are crossed (a unit of the finer one
        appears in more than one unit of the coarser one), which is not a nested model.
    """
    seen: dict[frozenset[str], tuple[str, ...]] = {}
    for grouping in groupings:
        if frozenset(grouping) in seen:
            first = seen[frozenset(grouping)]
            also = "" if first == grouping else f" (as {level_name(first)!r})"
            raise ValueError(f"grouping factor {level_name(grouping)!r} appears twice{also} in {terms}")
        seen[frozenset(grouping)] = grouping
    unit_codes = {g: _grouping_codes(g, id_codes) for g in groupings}
    chain = sorted(groupings, key=lambda g: (unit_codes[g][1], len(g)))
    for coarse, fine in zip(chain, chain[1:]):
        if _parent_units(*unit_codes[fine], unit_codes[coarse][0]) is None:
            # neither factor is nested in the other; name them in the order written
            outer, inner = sorted((coarse, fine), key=groupings.index)
            codes, n_cells = _grouping_codes(tuple(dict.fromkeys(outer + inner)), id_codes)
            if n_cells == len(codes):  # a row per combination: a crossed design, which nesting would not fit
                hint = (f"; every combination of them holds a single row, a crossed design (lme4 fits it as "
                        f"(1|{level_name(outer)}) + (1|{level_name(inner)})), which is not a nested model: nesting "
                        f"them would make var({level_name(outer)}:{level_name(inner)}) and var(Residual) one "
                        "variance that the data cannot split")
            elif len(outer) == 1 and len(inner) == 1:
                hint = f"; if {inner[0]!r} ids are reused inside each {outer[0]!r}, write (1|{outer[0]}/{inner[0]})"
            else:
                hint = "; crossed random effects are not a nested model"
            raise ValueError(
                f"random terms {terms} are crossed, not nested: some units of "
                f"{level_name(inner)!r} belong to more than one unit of {level_name(outer)!r}{hint}"
            )
    return tuple(chain)


def _grouping_codes(grouping: tuple[str, ...], id_codes) -> tuple[np.ndarray, int]:
    codes, n = id_codes[grouping[0]]
    for column in grouping[1:]:
        codes, n = combine_codes(codes, id_codes[column][1], id_codes[column][0])
    return codes, n


@dataclass(frozen=True)
class WideLayout:
    """Where every long row sits in the wide model.

    Attributes
    ----------
    levels : tuple of tuple of str
        Grouping columns of each level, top level first.
    order : ndarray
        Positions (into the rows used) that sort them by cluster, unit and slot.
    row_starts : ndarray
        First sorted row of every unit of the lowest grouping level.
    child_starts : tuple of ndarray
        For each level above the lowest, the first child (a unit of the next level)
        of every unit.
    slots : tuple of ndarray
        For each level below the top, the slot of every unit inside its parent
        (0-based); the last entry is the slot of every sorted row inside its unit.
    ids : pandas.DataFrame
        The id columns of the rows used, in their input order (:attr:`unit_ids` reads them).
    slot_keys : tuple
        For each entry of ``slots``, None, or the label of every unit (row) when the slots
        of that level are keyed by a labelling column: slot ``pub2`` is the second unit
        labelled ``pub`` inside its parent (see :meth:`keyed`).
    rows_in_order : bool
        The rows used were already sorted (``order`` is ``0, 1, ...``).
    """

    levels: tuple[tuple[str, ...], ...]
    order: np.ndarray
    row_starts: np.ndarray
    child_starts: tuple[np.ndarray, ...]
    slots: tuple[np.ndarray, ...]
    ids: pd.DataFrame
    slot_keys: tuple = ()
    rows_in_order: bool = False

    def sort_rows(self, values: np.ndarray) -> np.ndarray:
        """Values of the rows used (first axis), in the layout's order; no copy when already so."""
        return values if self.rows_in_order else values[self.order]

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level_name(g) for g in self.levels)

    @property
    def n_units(self) -> tuple[int, ...]:
        """Number of units at each level, top first."""
        return (*(len(starts) for starts in self.child_starts), len(self.row_starts))

    @cached_property
    def unit_ids(self) -> tuple[pd.DataFrame, ...]:
        """Id values of every unit of each level, top first (built when first asked for: most fits
        never name a unit)."""
        first_rows = [self.row_starts]  # the first sorted row of every unit, from the lowest level up
        for starts in reversed(self.child_starts):
            first_rows.insert(0, first_rows[0][starts])
        return tuple(self.ids[list(grouping)].iloc[self.order[rows]].reset_index(drop=True)
                     for grouping, rows in zip(self.levels, first_rows))

    @property
    def n_clusters(self) -> int:
        return self.n_units[0]

    @property
    def n_rows(self) -> int:
        return len(self.order)

    def unit_sizes(self, level: int) -> np.ndarray:
        """Number of observations in every unit of a level."""
        sizes = np.diff(np.append(self.row_starts, self.n_rows))
        for starts in reversed(self.child_starts[level:]):
            sizes = np.add.reduceat(sizes, starts)
        return sizes

    def unit_of_rows(self, level: int) -> np.ndarray:
        """Unit (0-based, in sorted order) of every sorted row at a level (0 = top)."""
        unit = np.repeat(np.arange(len(self.row_starts)), np.diff(np.append(self.row_starts, self.n_rows)))
        for parent_level in range(len(self.levels) - 2, level - 1, -1):
            starts = self.child_starts[parent_level]
            n_children = len(self.slots[parent_level])
            parent = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n_children)))
            unit = parent[unit]
        return unit

    def per_unit(self, values: np.ndarray, level: int) -> tuple[np.ndarray, int | None]:
        """The value of every unit of a level, from values of the sorted rows.

        Returns the values of each unit's first row and the unit (0-based) where the values
        vary inside a unit, None when every unit carries one value.
        """
        unit = self.unit_of_rows(level)
        per_unit = values[np.r_[True, np.diff(unit) != 0]]
        varies = np.flatnonzero(per_unit[unit] != values)
        return per_unit, (int(unit[varies[0]]) if len(varies) else None)

    def position_of_rows(self) -> np.ndarray:
        """Slots (one column per level below the top, then the row slot) of every sorted row."""
        columns = [self.slots[level - 1][self.unit_of_rows(level)] for level in range(1, len(self.levels))]
        return np.column_stack([*columns, self.slots[-1]])

    def position_parts(self) -> list[np.ndarray]:
        """Slot names of every sorted row, one array per column of :meth:`position_of_rows`.

        A slot is named by its 1-based number, prefixed by its label when keyed (``pub2``).
        """
        positions = self.position_of_rows() + 1
        keys = list(self.slot_keys) or [None] * positions.shape[1]
        parts = []
        for column, key in enumerate(keys):
            text = positions[:, column].astype(str).astype(object)
            if key is not None:
                per_row = key if column == len(keys) - 1 else key[self.unit_of_rows(column + 1)]
                text = per_row.astype(object) + text
            parts.append(text)
        return parts

    def unit_slot_names(self, level: int) -> np.ndarray:
        """The slot name of every unit of ``level`` (below the top), as :meth:`position_parts` names it."""
        text = (self.slots[level - 1] + 1).astype(str).astype(object)
        keys = list(self.slot_keys)
        if keys and keys[level - 1] is not None:
            text = keys[level - 1].astype(object) + text
        return text

    def position_names(self) -> np.ndarray:
        """The position suffix of every sorted row: ``1_2``, or ``pub1_2`` with keyed slots."""
        return join_parts(self.position_parts())

    def position_codes(self, depth: int) -> tuple[np.ndarray, list[str]]:
        """The position of every sorted row down to its first ``depth`` slots, as codes of names.

        ``depth = len(levels)`` is the full position (:meth:`position_names`), ``1`` the slot of
        the row's unit of the level below the top. The names are those :meth:`position_parts`
        joins, sorted as text; no string is made per row, so a million rows cost a few integer
        arrays.
        """
        keys = list(self.slot_keys) or [None] * len(self.slots)
        code, n_codes, columns = np.zeros(self.n_rows, dtype=np.int64), 1, []
        for column in range(depth):
            key = keys[column]
            if column < len(self.slots) - 1:  # a level's units: name the units, spread to their rows
                part, names = pd.factorize(self.unit_slot_names(column + 1))
                part = part[self.unit_of_rows(column + 1)]
            elif key is None:  # the row slot, numbered
                part, n_slots = self.slots[-1], int(self.slots[-1].max(initial=0)) + 1
                names = np.arange(1, n_slots + 1).astype(str)
            else:  # the row slot, keyed by the label of every row
                key_code, key_names = pd.factorize(key)
                part, n_pairs = combine_codes(key_code, len(self.slots[-1]), self.slots[-1])
                first = np.zeros(n_pairs, dtype=np.int64)
                first[part] = np.arange(self.n_rows)
                names = key_names[key_code[first]].astype(object) + (self.slots[-1][first] + 1).astype(str)
            columns.append((part, np.asarray(names, dtype=object)))
            code, n_codes = combine_codes(code, len(names), part)
        first = np.zeros(n_codes, dtype=np.int64)
        first[code] = np.arange(self.n_rows)
        names = join_parts([part_names[part[first]] for part, part_names in columns])
        order = np.argsort(names.astype(str), kind="stable")
        rank = np.empty(n_codes, dtype=np.int64)
        rank[order] = np.arange(n_codes)
        return rank[code], [str(name) for name in names[order]]

    def keyed(self, column: int, keys: np.ndarray, codes: np.ndarray | None = None) -> WideLayout:
        """A layout whose slots at ``column`` of :meth:`position_of_rows` are keyed by labels.

        ``keys`` holds the label of every unit of that level (or of every sorted row for the
        last column), ``codes`` optionally the same labels as integers (one per distinct
        label); a unit's slot becomes its rank among the units with the same label inside
        its parent, so that one slot means one label in every cluster.
        """
        keys = np.asarray(keys, dtype=object)
        old = list(self.slot_keys) or [None] * len(self.slots)
        if old[column] is not None:  # keyed before: a slot is keyed by both labels
            keys, codes = old[column] + keys, None
        if codes is None:
            codes = pd.factorize(keys)[0]
        slots = list(self.slots)
        starts = self.child_starts[column] if column < len(self.child_starts) else self.row_starts
        parent = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
        slots[column] = _rank_within(parent * (int(codes.max(initial=0)) + 1) + codes)
        old[column] = keys
        return dataclasses.replace(self, slots=tuple(slots), slot_keys=tuple(old))

    def cluster_of_rows(self) -> np.ndarray:
        """Top-level cluster (0-based) of every sorted row."""
        return self.unit_of_rows(0)

    def wide_frame(self, long: pd.DataFrame, max_cells: int = 10_000_000) -> pd.DataFrame:
        """Reshape sorted long columns to one row per cluster.

        Parameters
        ----------
        long : DataFrame
            Columns to spread, rows in the order of the rows used (before sorting).
        max_cells : int
            Refuse to build a frame with more cells than this.

        Notes
        -----
        Column ``x1_2`` holds ``x`` at slot 1 of level 2 and slot 2 inside it (1-based).
        Absent positions are missing.
        """
        suffix = pd.Series(self.position_names())
        n_positions = suffix.nunique()
        if self.n_clusters * n_positions * long.shape[1] > max_cells:
            raise ValueError(
                f"the wide data would have {self.n_clusters:,} rows x "
                f"{n_positions * long.shape[1]:,} columns; raise max_cells to build it anyway"
            )
        sorted_long = long.iloc[self.order].reset_index(drop=True)
        sorted_long["_cluster"] = self.cluster_of_rows()
        sorted_long["_position"] = suffix
        wide = sorted_long.pivot(index="_cluster", columns="_position")
        ordered = sorted(set(suffix), key=position_order)
        wide = wide.reindex(columns=pd.MultiIndex.from_product([long.columns, ordered]))
        wide.columns = [position_name(name, pos) for name, pos in wide.columns]
        top = self.unit_ids[0].reset_index(drop=True)
        return pd.concat([top, wide.reset_index(drop=True)], axis=1)


def _rank_within(group: np.ndarray) -> np.ndarray:
    """The rank (from 0) of every element among the elements of its integer group, in their order."""
    order = np.argsort(group, kind="stable")
    grouped = group[order]
    first = np.ones(len(group), dtype=bool)
    first[1:] = grouped[1:] != grouped[:-1]
    at = np.arange(len(group))
    rank = np.empty(len(group), dtype=np.intp)
    rank[order] = at - np.maximum.accumulate(np.where(first, at, 0))
    return rank


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Join slot names column by column with ``_``."""
    suffix = parts[0]
    for part in parts[1:]:
        suffix = suffix + "_" + part
    return np.asarray(suffix, dtype=object)


def position_order(suffix: str) -> tuple:
    """Sort key of a position suffix: by label, then by number, slot by slot."""
    key = []
    for part in suffix.split("_"):
        label = part.rstrip("0123456789")
        key.append((label, int(part[len(label):])))
    return tuple(key)


def build_layout(ids: pd.DataFrame, groupings: tuple[tuple[str, ...], ...], terms: str) -> WideLayout:
    """Build the wide layout from the id columns of the rows used.

    Parameters
    ----------
    ids : DataFrame
        The id columns (ints, strings or categoricals), one row per observation used,
        without missing values.
    groupings : tuple of tuple of str
        Grouping factors as written in the random terms.
    terms : str
        The random terms as written, for messages.
    """
    id_codes = {col: _codes(ids[col], col) for col in ids.columns}
    levels = nesting_chain(groupings, id_codes, terms)
    unit_codes = []
    codes, _ = _grouping_codes(levels[0], id_codes)
    unit_codes.append(codes)
    for grouping in levels[1:]:
        # number the units by (parent, own code), so that the units of a parent are consecutive: a
        # sort of the units, not of the rows (nesting_chain has checked every unit has one parent)
        own, n_own = _grouping_codes(grouping, id_codes)
        parent = _parent_units(own, n_own, codes)
        if np.all(parent[1:] >= parent[:-1]):  # own codes already run parent by parent
            codes = own
        else:
            rank = np.empty(n_own, dtype=np.int64)
            rank[np.argsort(parent, kind="stable")] = np.arange(n_own)
            codes = rank[own]
        unit_codes.append(codes)

    n_rows = len(unit_codes[-1])
    rows_in_order = bool(np.all(np.diff(unit_codes[-1]) >= 0))
    if rows_in_order:  # no gather
        order, sorted_codes = np.arange(n_rows), unit_codes
    else:
        order = np.argsort(unit_codes[-1], kind="stable")
        sorted_codes = [c[order] for c in unit_codes]
    row_starts = np.flatnonzero(np.r_[True, np.diff(sorted_codes[-1]) != 0])
    # first row of every unit at each level, and each unit's first child
    first_rows = [np.flatnonzero(np.r_[True, np.diff(c) != 0]) for c in sorted_codes]
    child_starts = tuple(
        np.searchsorted(first_rows[level + 1], first_rows[level]) for level in range(len(levels) - 1)
    )
    slots = []
    for level in range(1, len(levels)):
        n_children = len(first_rows[level])
        parent_start = np.repeat(child_starts[level - 1], np.diff(np.append(child_starts[level - 1], n_children)))
        slots.append(np.arange(n_children) - parent_start)
    row_unit_start = np.repeat(row_starts, np.diff(np.append(row_starts, n_rows)))
    slots.append(np.arange(n_rows) - row_unit_start)

    return WideLayout(
        levels=levels,
        order=order,
        row_starts=row_starts,
        child_starts=child_starts,
        slots=tuple(slots),
        ids=ids,
        rows_in_order=rows_in_order,
    )
