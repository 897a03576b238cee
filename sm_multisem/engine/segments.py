"""Sums over consecutive runs of rows: the one reduction every likelihood of the recursion is made of.

A level's units are runs of its rows (the layout sorts them so), a cluster's children are runs
of their units; summing a column over every run is all the likelihood asks of the data. Here
too the two orderings the runs are made from: integer codes without a sort, and rows by time.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Segments", "dense_codes", "distinct_integers", "segment_outer_sums", "GroupSums", "time_order"]


class Segments:
    """Consecutive runs of rows (units of a level, or the children of each parent) to sum over.

    ``np.add.reduceat`` pays a fixed cost per run, which dominates when runs hold one or
    two rows (many small clusters); there a ``bincount`` on the run of every row is several
    times faster, and longer runs keep ``reduceat`` (the measured crossover: about 6 rows).
    Runs may be empty (clusters without units of one AR(1) label): ``reduceat`` gives an empty
    run the next row, so it reduces only the runs with rows, and the others stay 0.
    """

    def __init__(self, starts: np.ndarray, ids: np.ndarray):
        self.starts = np.asarray(starts, dtype=np.intp)
        self.ids = np.asarray(ids, dtype=np.intp)  # the run of every row
        lengths = np.diff(np.append(self.starts, len(self.ids)))
        self._nonempty = None if lengths.all() else lengths > 0
        self._short = len(self.ids) < 6 * max(np.count_nonzero(lengths), 1)
        self._one_row_each = bool(np.all(lengths == 1))

    def __len__(self) -> int:
        return len(self.starts)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sums over every run, along the first axis."""
        if self._one_row_each:
            return values
        if not self._short:
            return self._reduce(values, axis=0)
        flat = values.reshape(len(values), int(np.prod(values.shape[1:])))  # explicit: no rows is no error
        out = np.empty((len(self.starts), flat.shape[1]))
        for column in range(flat.shape[1]):
            out[:, column] = np.bincount(self.ids, weights=flat[:, column], minlength=len(self.starts))
        return out.reshape((len(self.starts),) + values.shape[1:])

    def sum_last(self, values: np.ndarray) -> np.ndarray:
        """Sums over every run along the last axis (arrays that keep their rows last), as :meth:`sum` does."""
        if self._one_row_each:
            return values
        if not self._short:
            return self._reduce(values, axis=values.ndim - 1)
        rows = values.reshape(int(np.prod(values.shape[:-1])), values.shape[-1])
        sums = [np.bincount(self.ids, weights=row, minlength=len(self.starts)) for row in rows]
        return np.reshape(np.array(sums, dtype=float), values.shape[:-1] + (len(self.starts),))

    def _reduce(self, values: np.ndarray, axis: int) -> np.ndarray:
        """``reduceat`` along ``axis`` over the runs with rows; the empty runs sum to 0."""
        if self._nonempty is None:
            return np.add.reduceat(values, self.starts, axis=axis)
        shape = list(values.shape)
        shape[axis] = len(self.starts)
        out = np.zeros(shape)
        at = [slice(None)] * values.ndim
        at[axis] = self._nonempty
        out[tuple(at)] = np.add.reduceat(values, self.starts[self._nonempty], axis=axis)
        return out


def segment_outer_sums(
    left: np.ndarray, right: np.ndarray, segments: Segments, symmetric: bool = False
) -> np.ndarray:
    """``sum_i left_i right_i'`` over the rows of every segment: (rows, p), (rows, q) -> (segments, p, q).

    The same as ``segments.sum(left[:, :, None] * right[:, None, :])``, computed as p * q
    sums of contiguous 1-D products, several times faster than summing a (rows, p, q) array
    along its first axis. ``symmetric``: the result is (``left`` is ``right`` times a weight
    per row), and only its upper triangle is summed.
    """
    left_t, right_t = np.ascontiguousarray(left.T), np.ascontiguousarray(right.T)
    out = np.empty((len(segments), len(left_t), len(right_t)))
    for i, column in enumerate(left_t):
        for j, other in enumerate(right_t):
            if symmetric and j < i:
                out[:, i, j] = out[:, j, i]
            else:
                out[:, i, j] = segments.sum(column * other)
    return out


def distinct_integers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of non-negative integers (sorted, as floats) and the index of every value among them.

    The marking of the values present (:func:`dense_codes`) when they
    are small (AR(1) gaps between occasions), a sort otherwise.
    """
    values = np.asarray(values, dtype=np.int64)
    dense = dense_codes(values) if len(values) else None
    if dense is None:
        distinct, code = np.unique(values, return_inverse=True)
        return distinct.astype(float), code.ravel()
    code, n_distinct = dense
    distinct = np.empty(n_distinct)
    distinct[code] = values
    return distinct, code


class GroupSums:
    """Sums of row-length arrays over the groups ``0..n_groups-1`` of a key of every row.

    ``key`` is almost always sorted (rows in unit order), and then every group is one run of
    :class:`Segments`; otherwise the rows are put in key order first, by one permutation kept
    for every sum. Summing one product of columns at a time through it keeps one row-length
    buffer alive, never a stack of them.
    """

    def __init__(self, key: np.ndarray, n_groups: int):
        self._order = None
        if np.any(key[1:] < key[:-1]):
            self._order = np.argsort(key, kind="stable")
            key = key[self._order]
        self._runs = Segments(np.searchsorted(key, np.arange(n_groups)), key)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sums along the last axis: ``(..., rows)`` -> ``(..., n_groups)``."""
        return self._runs.sum_last(values if self._order is None else values[..., self._order])


def dense_codes(keys: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Codes of non-negative integer keys by marking the keys present and counting them in order.

    O(rows + largest key), several times faster than a sort; None when the keys spread too
    far above the number of rows for that to pay.
    """
    n_keys = int(keys.max()) + 1
    if n_keys > 4 * len(keys) + 1024:
        return None
    present = np.zeros(n_keys, dtype=bool)
    present[keys] = True
    number = np.cumsum(present, dtype=np.int64) - 1
    return number[keys], int(number[-1]) + 1


def time_order(times: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """The rows sorted by unit and, inside each, by time; no sort when they already are."""
    if np.all((np.diff(unit) > 0) | ((np.diff(unit) == 0) & (np.diff(times) > 0))):
        return np.arange(len(times))
    return np.lexsort((times, unit))
