"""Tests between a model and its relaxations: score (Lagrange multiplier) and likelihood-ratio.

A relaxation of a model has every parameter of the model, some of them split by a label
(``var(k:j)`` into ``var(k:j)[pub]``, ``var(k:j)[prv]``, ...), and possibly parameters the
model holds at a known value (``rho(Residual)`` at 0). The constrained model is the
relaxed one with ``theta_1 = A theta_0 + c``, ``A`` the 0/1 matrix mapping each relaxed
parameter to the one it was split from and ``c`` the held values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..compile.plan import Plan
from ..spec.spec import INTERCEPT
from .gof import fit_saturated, wide_data_of

__all__ = ["LRTest", "ScoreTest", "InformationNotPositiveDefinite", "score_test", "score_statistics", "lr_test",
           "lr_test_saturated", "constraint_map", "check_same_rows"]

_LABEL_SUFFIX = re.compile(r"\[[^\[\]]*\]$")
#: Parameters a relaxation may add, and the value the constrained model holds them at.
HELD_VALUES = {"rho(Residual)": 0.0}


class InformationNotPositiveDefinite(ValueError):
    """The information of a relaxed model at the constrained estimate is not positive definite."""


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio test with the reference distribution it was referred to.

    Attributes
    ----------
    statistic : float
    df : int
    pvalue : float
    distribution : str
        ``"chibar2(01)"`` for a single variance tested at its boundary (a 50:50 mixture of
        chi2(0) and chi2(1)), ``"chi2(df)"`` otherwise.
    note : str
        Caveat to print with the test, empty when there is none.
    """

    statistic: float
    df: int
    pvalue: float
    distribution: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.distribution} = {self.statistic:.2f}   Prob > chi2 = {self.pvalue:.4f}"


@dataclass(frozen=True)
class ScoreTest:
    """Score test of the constraints a relaxation releases.

    Attributes
    ----------
    statistic, df, pvalue
        The joint test of every released constraint.
    information : str
        The information matrix used (``"expected"`` is positive definite; the observed
        Hessian at a constrained estimate need not be, and can give a negative statistic).
    table : DataFrame
        One row per parameter of the relaxed model that the constraint tied to others or
        held at a value: ``chi2`` (df 1) for releasing that parameter alone, its ``pvalue``,
        and ``epc``, the expected change of that parameter from the shared (held) value.
    """

    statistic: float
    df: int
    pvalue: float
    information: str
    table: pd.DataFrame

    def __str__(self) -> str:
        lines = [
            f"Score test of the released constraints ({self.information} information)",
            f"  joint: chi2({self.df}) = {self.statistic:.4f}   Prob > chi2 = {self.pvalue:.4f}",
            self.table.to_string(float_format=lambda v: f"{v:.4f}"),
        ]
        return "\n".join(lines)


def constraint_map(constrained_names: list[str], relaxed_names: list[str],
                   held_values: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``A`` and ``c`` with ``theta_relaxed = A theta_constrained + c``.

    Parameters
    ----------
    constrained_names, relaxed_names : list of str
    held_values : dict, optional
        Parameters of the relaxed model the constrained one holds at a value, besides
        :data:`HELD_VALUES` (the covariances a wide model frees, and the parameters of random
        slopes and of correlated siblings, held at 0).

    Raises
    ------
    ValueError
        When a relaxed parameter is neither a parameter of the constrained model, nor one
        split from it by a label, nor one it holds at a known value (:data:`HELD_VALUES` and
        ``held_values``).
    """
    held_values = {**HELD_VALUES, **(held_values or {})}
    index = {name: i for i, name in enumerate(constrained_names)}
    mapping = np.zeros((len(relaxed_names), len(constrained_names)))
    held = np.zeros(len(relaxed_names))
    for row, name in enumerate(relaxed_names):
        base = name if name in index else _LABEL_SUFFIX.sub("", name)
        if base in index:
            mapping[row, index[base]] = 1.0
        elif name in held_values:
            held[row] = held_values[name]
        else:
            raise ValueError(f"parameter {name!r} of the relaxed model is not a relaxation of the model's parameters")
    if np.any(mapping.sum(0) == 0):
        missing = [n for n, used in zip(constrained_names, mapping.sum(0)) if not used]
        raise ValueError(f"the relaxed model lacks the parameters {missing}; it is not a relaxation of this model")
    return mapping, held


def check_same_rows(model, other) -> None:
    """Refuse a test between models of different rows: their likelihoods are of different data.

    Raises
    ------
    ValueError
        Naming the rows each model uses (of the rows given), or that the same number of rows are
        different ones (a covariate missing in other rows).
    """
    first, second = getattr(model, "row_accounting", None), getattr(other, "row_accounting", None)
    if first is None or second is None:  # models built without row accounting: their clusters at least
        if model.nobs != other.nobs:
            raise ValueError(f"the two models have different clusters ({model.nobs:,} and {other.nobs:,}); "
                             "a test compares two models of the same data")
        return
    if (first.n_used, first.n_input) != (second.n_used, second.n_input):
        raise ValueError(f"the two models use different rows ({first.n_used:,} of {first.n_input:,} rows and "
                         f"{second.n_used:,} of {second.n_input:,}); a test compares two models of the same rows "
                         "(drop the rows with a missing value in either model's columns from the data of both)")
    used = [getattr(getattr(m, "model_data", None), "rows_used", None) for m in (model, other)]
    if used[0] is not None and used[1] is not None and not np.array_equal(used[0], used[1]):
        raise ValueError(f"the two models use {first.n_used:,} rows each, but not the same ones (a value missing "
                         "in different rows); a test compares two models of the same rows")


def score_test(results, relaxed_model, information: str = "expected") -> ScoreTest:
    """Score test of the constraints ``relaxed_model`` releases, at the estimate in ``results``.

    .. math::

        LM = s_1' I_1^{-1} s_1,\\qquad s_1, I_1 \\text{ at } \\theta_1 = A\\hat\\theta_0,

    with ``df`` = number of released constraints. Releasing one parameter alone,
    ``theta_1 = A theta_0 + e_i delta``:
    :math:`LM_i = s_\\delta^2 / (I_{\\delta\\delta} - I_{\\delta 0} I_{00}^{-1} I_{0\\delta})` and the
    expected parameter change is :math:`s_\\delta / (I_{\\delta\\delta} - I_{\\delta 0} I_{00}^{-1}
    I_{0\\delta})`.

    Parameters
    ----------
    results : MultilevelSEMResults
        An ML fit of the constrained model.
    relaxed_model : MultilevelSEM or WideSEM
        The model with the constraints released (e.g. ``model.relax_variance("k:j", by="type")``),
        or a wide model that frees covariances the model holds at 0
        (``model.relax_covariance("k:j", by="region")``): its parameters are matched to the
        model's by name (a label's display name), and every free covariance it adds is held
        at 0.
    information : {"expected", "observed"}
    """
    if results.reml:
        raise ValueError("score tests need an ML fit (reml=False): REML likelihoods of models with "
                         "different fixed effects are not comparable")
    if information not in ("expected", "observed"):
        raise ValueError(f"information must be 'expected' or 'observed', got {information!r}")
    check_same_rows(results.model, relaxed_model)
    mapping, held = constraint_map(results.model.param_names, relaxed_model.param_names,
                                   _covariances_held_at_zero(relaxed_model))
    theta = mapping @ np.asarray(results.params) + held
    score = relaxed_model.score(theta)
    info = relaxed_model.information(theta, kind="eim" if information == "expected" else "oim")
    return score_statistics(score, info, mapping, relaxed_model.param_names, information)


def score_statistics(score: np.ndarray, info: np.ndarray, mapping: np.ndarray, names, information: str) -> ScoreTest:
    """The score test from the relaxed model's score and information at the constrained estimate.

    Parameters
    ----------
    score, info : ndarray
        Of the relaxed model's parameters ``names``, at ``theta_1 = A theta_0``.
    mapping : ndarray
        ``A``: the relaxed parameters (rows) as the constrained ones (columns).
    names : sequence of str
    information : str
        The information ``info`` is.

    Raises
    ------
    InformationNotPositiveDefinite
        When ``info`` is not positive definite (relatively to its largest eigenvalue).
    """
    eigenvalues = np.linalg.eigvalsh(info)
    if eigenvalues[0] <= 1e-12 * max(eigenvalues[-1], 0.0):
        hint = "; use information='expected'" if information == "observed" else (
            ": the released parameters are not identified apart from the others")
        raise InformationNotPositiveDefinite(
            f"the {information} information of the relaxed model at the constrained estimate is not positive "
            f"definite (smallest eigenvalue {eigenvalues[0]:.3g}), so the score statistic could be negative{hint}")
    restricted = info @ mapping
    # information of every relaxed direction net of what the constrained parameters explain
    efficient = info - restricted @ np.linalg.solve(mapping.T @ restricted, restricted.T)
    df = mapping.shape[0] - mapping.shape[1]
    joint = float(score @ np.linalg.solve(info, score))  # the constrained directions score 0
    rows = {}
    # parameters split from a shared one, and parameters the model held at a value
    for i in np.flatnonzero((mapping @ mapping.sum(0) > 1) | (mapping.sum(1) == 0)):
        chi2 = score[i] ** 2 / efficient[i, i]
        rows[names[i]] = (chi2, 1, stats.chi2.sf(chi2, 1), score[i] / efficient[i, i])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["chi2", "df", "pvalue", "epc"])
    return ScoreTest(joint, df, float(stats.chi2.sf(joint, df)), information, table)


def _covariances_held_at_zero(model) -> dict[str, float]:
    """The parameters a model without them holds at 0, by name: the free covariances of a wide model
    (``a ~~ b``, ``a != b``); of a nested one, the variances and covariances of random effects other than
    intercepts, and the covariances of correlated siblings."""
    if isinstance(getattr(model, "plan", None), Plan):  # a nested model; a wide one has a table
        plan = model.plan
        columns = model.model_data.effects.names if model.model_data.effects is not None else (INTERCEPT,)
        held = set() if plan.siblings is None else set(plan.siblings.covariance_entries.tolist())
        for effects in plan.level_effects:
            for (i, j), entry in np.ndenumerate(effects.entries):
                if entry >= 0 and not (i == j and columns[effects.columns[i]] == INTERCEPT):
                    held.add(int(entry))
        return {plan.param_names[plan.variance_index[entry]]: 0.0 for entry in held}
    table = model.table
    covariances = table[(table["op"] == "~~") & (table["lhs"] != table["rhs"]) & table["free"]]
    # a free row without a label is a parameter of its own, named after the row (see ram.compile_ram)
    labels = {label or f"{lhs}~~{rhs}" for label, lhs, rhs in zip(covariances["label"], covariances["lhs"],
                                                                   covariances["rhs"])}
    return {name: 0.0 for name, label in zip(model.param_names, model.labels) if label in labels}


def lr_test(restricted, unrestricted) -> LRTest:
    """Likelihood-ratio test of a fit against a fit of a relaxation of it (both ML).

    When the released parameters include variances the null may put them on the boundary
    of the parameter space (a variance of 0); the chi2 reference is then conservative and
    the test says so.
    """
    if restricted.reml or unrestricted.reml:
        raise ValueError("LR tests need ML fits (reml=False)")
    check_same_rows(restricted.model, unrestricted.model)
    names0, names1 = restricted.model.param_names, unrestricted.model.param_names
    held = _covariances_held_at_zero(unrestricted.model)
    constraint_map(names0, names1, held)  # refuses fits that are not nested
    df = len(names1) - len(names0)
    if df <= 0:
        raise ValueError("the second fit must be a relaxation of the first (more parameters)")
    statistic = max(2.0 * (unrestricted.llf - restricted.llf), 0.0)
    note = ""
    # a random slope's variance, 0 under the null
    on_boundary = list(restricted.boundary) + [n for n in names1 if n.startswith("var(") and n in held]
    if on_boundary:
        note = (f"{', '.join(on_boundary)} on the boundary under the null: the chi2 reference is "
                "conservative.")
    return LRTest(statistic, df, float(stats.chi2.sf(statistic, df)), f"chi2({df})", note)


def lr_test_saturated(results) -> LRTest:
    """LR test of the model against the saturated model of the wide data (Stata's "LR test of
    model vs. saturated", lavaan's chi-square with ``fixed.x = TRUE``).

    The saturated model regresses every position's outcome on every covariate of every
    position with an unrestricted covariance matrix (:func:`sm_multisem.inference.gof.fit_saturated`:
    closed form with complete wide data, EM for full-information ML with missing positions);
    ``df`` is its number of parameters less the model's.

    Raises
    ------
    ValueError
        For REML or weighted fits, or wide data that cannot estimate the saturated model.
    NotImplementedError
        For models without a single wide SEM (a relaxation by a label of the top-level clusters).
    """
    saturated = fit_saturated(wide_data_of(results))
    df = saturated.n_params - len(results.params)
    statistic = max(2.0 * (saturated.llf - results.llf), 0.0)
    return LRTest(statistic, df, float(stats.chi2.sf(statistic, df)), f"chi2({df})")
