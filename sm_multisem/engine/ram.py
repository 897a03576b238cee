"""A per-position parameter table compiled into RAM matrices (McArdle's reticular action model).

Every modelled variable (observed outcomes, then latent variables) obeys

.. math:: v = A v + \\Gamma z + u, \\qquad \\operatorname{Var}(u) = S,

with ``z`` the exogenous data of the row (a constant first, then the covariates that are
conditioned on). With ``E = (I - A)^{-1}`` and ``F`` the selection of the observed rows,
the observed outcomes have mean ``M z`` and covariance ``Sigma``:

.. math:: M = F E \\Gamma, \\qquad \\Sigma = F E S E' F'.

A table row (lavaan's operators) writes one entry: ``f =~ y`` is ``A[y, f]``; ``y ~ x`` is
``A[y, x]`` when ``x`` is modelled and ``Gamma[y, x]`` when it is exogenous; ``y ~1`` is
``Gamma[y, constant]``; ``a ~~ b`` is ``S[a, b] = S[b, a]``. Rows with one label share one
parameter (an equality constraint). The compiled form is index arrays, so that evaluating
``M``, ``Sigma`` and their derivatives never walks the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CONSTANT", "RamModel", "compile_ram", "conditioned_covariates"]

CONSTANT = "1"
_SUPPORTED_OPS = ("=~", "~", "~1", "~~")


@dataclass(frozen=True)
class _Entries:
    """Entries of one matrix: row, column, and either a parameter or a fixed value."""

    row: np.ndarray
    col: np.ndarray
    param: np.ndarray  # -1 where the entry is fixed
    value: np.ndarray  # the fixed value (ignored where param >= 0)

    def fill(self, shape: tuple[int, int], params: np.ndarray) -> np.ndarray:
        matrix = np.zeros(shape)
        free = self.param >= 0
        values = np.where(free, params[np.maximum(self.param, 0)], self.value)
        matrix[self.row, self.col] = values
        return matrix

    def by_param(self, k: int) -> np.ndarray:
        """Indicator (k_params, entries): which parameter sets each entry."""
        indicator = np.zeros((k, len(self.row)))
        free = np.flatnonzero(self.param >= 0)
        indicator[self.param[free], free] = 1.0
        return indicator


@dataclass(frozen=True)
class RamModel:
    """Index arrays of a RAM model and the names around them.

    Attributes
    ----------
    observed : tuple of str
        The modelled observed variables, in the order of ``M``'s and ``Sigma``'s rows.
    latent : tuple of str
    exogenous : tuple of str
        ``z``: the constant first, then the conditioning covariates.
    labels : tuple of str
        The parameter of every position of the parameter vector.
    """

    observed: tuple[str, ...]
    latent: tuple[str, ...]
    exogenous: tuple[str, ...]
    labels: tuple[str, ...]
    _a: _Entries
    _gamma: _Entries
    _s: _Entries  # both triangles

    @property
    def k_params(self) -> int:
        return len(self.labels)

    @property
    def n_modelled(self) -> int:
        return len(self.observed) + len(self.latent)

    def matrices(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(A, Gamma, S)`` at ``params``."""
        params = np.asarray(params, dtype=float)
        v, q = self.n_modelled, len(self.exogenous)
        return self._a.fill((v, v), params), self._gamma.fill((v, q), params), self._s.fill((v, v), params)

    def implied(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(M, Sigma)``: the observed outcomes' mean is ``M z``, their covariance ``Sigma``."""
        a, gamma, s = self.matrices(params)
        total = self._total_effects(a)
        p = len(self.observed)
        observed_rows = total[:p]
        return observed_rows @ gamma, observed_rows @ s @ observed_rows.T

    def jacobian(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives of ``M`` and ``Sigma`` in every parameter: (k, p, q) and (k, p, p).

        With ``FE`` the observed rows of ``E``: ``dSigma = FE dS FE' + FE dA E S FE' + (...)'``
        and ``dM = FE dA E Gamma + FE dGamma``, one entry at a time, summed over the entries a
        parameter sets.
        """
        a, gamma, s = self.matrices(params)
        total = self._total_effects(a)
        p, k = len(self.observed), self.k_params
        fe = total[:p]
        d_sigma = np.zeros((k, p, p))
        d_mean = np.zeros((k, p, len(self.exogenous)))
        if len(self._s.row):
            per_entry = fe[:, self._s.row].T[:, :, None] * fe[:, self._s.col].T[:, None, :]
            d_sigma += np.einsum("ke,eij->kij", self._s.by_param(k), per_entry)
        if len(self._a.row):
            # dA at (r, c): FE[:, r] (E S FE')[c, :] in Sigma, FE[:, r] (E Gamma)[c, :] in M
            after_sigma = (total @ s @ fe.T)[self._a.col]
            after_mean = (total @ gamma)[self._a.col]
            left = fe[:, self._a.row].T
            one_side = left[:, :, None] * after_sigma[:, None, :]
            indicator = self._a.by_param(k)
            half = np.einsum("ke,eij->kij", indicator, one_side)
            d_sigma += half + np.swapaxes(half, 1, 2)
            d_mean += np.einsum("ke,eij->kij", indicator, left[:, :, None] * after_mean[:, None, :])
        if len(self._gamma.row):
            per_entry = np.zeros((len(self._gamma.row), p, len(self.exogenous)))
            per_entry[np.arange(len(self._gamma.row)), :, self._gamma.col] = fe[:, self._gamma.row].T
            d_mean += np.einsum("ke,eij->kij", self._gamma.by_param(k), per_entry)
        return d_mean, d_sigma

    def _total_effects(self, a: np.ndarray) -> np.ndarray:
        """``E = (I - A)^{-1}``; a recursive model has nilpotent ``A`` and ``E`` always exists."""
        return np.linalg.inv(np.eye(len(a)) - a)


def conditioned_covariates(table: pd.DataFrame) -> list[str]:
    """The regressors of a table that no row models: the covariates a fit conditions on."""
    return sorted(set(table.loc[table["op"] == "~", "rhs"]) - set(table["lhs"]))


def compile_ram(table: pd.DataFrame, exogenous: list[str]) -> RamModel:
    """Compile a per-position table (``lhs, op, rhs, label, free, value``).

    Parameters
    ----------
    table : DataFrame
        lavaan-style rows; free rows with one label share a parameter, a free row with an
        empty label is a parameter of its own.
    exogenous : list of str
        The covariates conditioned on (they must not appear on the left of a row). The
        constant is added in front.

    Raises
    ------
    ValueError
        An operator other than ``=~ ~ ~1 ~~`` (the AR(1) ``==`` constraints are not
        linear and are evaluated by the nested likelihood), or an exogenous covariate
        modelled on the left of a row.
    """
    unknown = sorted(set(table["op"]) - set(_SUPPORTED_OPS))
    if unknown:
        raise ValueError(f"operator(s) {unknown} cannot be compiled into a linear RAM model")
    exogenous = list(exogenous)
    modelled_lhs = set(table.loc[table["op"] != "=~", "lhs"])
    clash = sorted(modelled_lhs & set(exogenous))
    if clash:
        raise ValueError(f"exogenous covariate(s) {clash} cannot be modelled on the left of a row")
    latent = list(dict.fromkeys(table.loc[table["op"] == "=~", "lhs"]))
    names = [*table["lhs"], *table.loc[table["op"] != "~1", "rhs"]]
    observed = [n for n in dict.fromkeys(names) if n not in latent and n not in exogenous and n]
    index = {name: i for i, name in enumerate(observed + latent)}
    z_index = {name: i for i, name in enumerate([CONSTANT, *exogenous])}

    labels: list[str] = []
    param_of: dict[str, int] = {}

    def parameter(row) -> int:
        if not row.free:
            return -1
        label = row.label if row.label else f"{row.lhs}{row.op}{row.rhs}"
        if label not in param_of:
            param_of[label] = len(labels)
            labels.append(label)
        return param_of[label]

    a, gamma, s = ([], [], [])
    for row in table.itertuples(index=False):
        param, value = parameter(row), (0.0 if row.free else float(row.value))
        if row.op == "=~":
            a.append((index[row.rhs], index[row.lhs], param, value))
        elif row.op == "~1":
            gamma.append((index[row.lhs], z_index[CONSTANT], param, value))
        elif row.op == "~" and row.rhs in z_index:
            gamma.append((index[row.lhs], z_index[row.rhs], param, value))
        elif row.op == "~":
            a.append((index[row.lhs], index[row.rhs], param, value))
        else:
            i, j = index[row.lhs], index[row.rhs]
            s.append((i, j, param, value))
            if i != j:
                s.append((j, i, param, value))

    def entries(rows: list[tuple]) -> _Entries:
        array = np.array(rows, dtype=float).reshape(-1, 4)
        return _Entries(array[:, 0].astype(np.intp), array[:, 1].astype(np.intp), array[:, 2].astype(np.intp),
                        array[:, 3])

    return RamModel(tuple(observed), tuple(latent), (CONSTANT, *exogenous), tuple(labels),
                    entries(a), entries(gamma), entries(s))
