"""Wide models only the SEM form can express: covariates modelled jointly, endogenous covariates.

Each builder starts from the nested mixed model(s) of a formula (their layouts and
per-position tables), edits the table as Stata ``sem`` would write the larger model, and
returns a :class:`~sm_multisem.wide_model.WideSEM`:

* :func:`joint_model`: the covariates become modelled variables with free means,
  variances and covariances (saturated), so that rows with a missing covariate are kept
  and handled by FIML under MAR (Stata ``sem, method(mlmv)``; lavaan ``fixed.x = FALSE``);
* :func:`instrumental_model`: ``y ~ w + [x ~ z1 + z2] + (1|k/j)`` is a bivariate system per
  position, the equation of ``x`` on ``w`` and the instruments with its own random effects,
  and the equation of ``y`` on ``x`` and ``w``; the covariances of the two equations' effects
  and residuals are free, and testing them zero tests the exogeneity of ``x``.
"""

from __future__ import annotations

import re
import warnings
from functools import partial
from itertools import combinations_with_replacement

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .engine.ram import conditioned_covariates
from .spec.data import RowAccounting
from .spec.layout import identifier
from .wide_model import ExtraTest, WideSEM

__all__ = ["estimates_by_label", "instrumental_model", "joint_model", "split_endogenous"]

_BRACKET = re.compile(r"\[\s*([^\]~]+?)\s*~\s*([^\]]+?)\s*\]")
COVARIATES = ("conditional", "joint")


def split_endogenous(formula: str) -> tuple[str, str | None, str | None]:
    """``"y ~ w + [x ~ z1 + z2] + (1|k/j)"`` -> ``("y ~ w + x + (1|k/j)", "x", "z1 + z2")``.

    Without brackets the formula comes back unchanged with ``None, None``.

    Raises
    ------
    ValueError
        Several bracketed terms, or an endogenous part that is not one column name.
    """
    found = list(_BRACKET.finditer(formula))
    if not found:
        if "[" in formula.split("~", 1)[-1] and "~" in formula.split("[", 1)[-1]:
            raise ValueError(f"cannot read the endogenous term of {formula!r}; write it as [x ~ z1 + z2]")
        return formula, None, None
    if len(found) > 1:
        raise ValueError("one endogenous covariate is supported: write a single [x ~ z1 + z2] term")
    match = found[0]
    endogenous, instruments = match.group(1).strip(), match.group(2).strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", endogenous):
        raise ValueError(f"the endogenous covariate must be one column name, got {endogenous!r}")
    return formula[: match.start()] + endogenous + formula[match.end():], endogenous, instruments


def _random_part(formula: str) -> str:
    return " + ".join(re.findall(r"\([^()]*\|[^()]*\)", formula))


def _fixed_terms(formula: str) -> str:
    """The fixed terms of a formula's right side, without the random terms."""
    rhs = formula.split("~", 1)[1]
    rhs = re.sub(r"\([^()]*\|[^()]*\)", "", rhs)
    terms = [t.strip() for t in rhs.split("+") if t.strip()]
    return " + ".join(terms) if terms else "1"


def _names_of(model) -> dict[str, str]:
    free = model.table.free_parameters
    return dict(zip(free["label"], free["name"]))


def estimates_by_label(model) -> dict[str, float]:
    """The nested model's ML estimates by label: start values of the wide fit.

    Its warnings (a variance at 0) are about a model the user did not ask for, and stay silent.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = model.fit()
    return dict(zip(model.table.free_parameters["label"], np.asarray(results.params)))


def joint_model(formula: str, data: pd.DataFrame, **kwargs) -> WideSEM:
    """The wide model with the covariates' means, variances and covariances free.

    Parameters
    ----------
    formula : str
        ``"y ~ x + (1|k/j)"``; every fixed-effect term must be a numeric column of
        ``data`` (a transformed or categorical term has no column to model).
    data : DataFrame
        Rows missing the outcome or a covariate are kept (FIML); a row missing both the
        outcome and every covariate carries nothing and is dropped.
    kwargs
        Passed to :meth:`MultilevelSEM.from_formula` (``subset``, ``eval_env``).

    Returns
    -------
    WideSEM
        Its log-likelihood is that of the outcomes and covariates jointly, what Stata
        ``sem`` reports (not ``mixed``'s, which conditions on the covariates).
    """
    from .model import MultilevelSEM

    if kwargs.pop("weights", None) is not None:
        raise ValueError("sampling weights are not supported with covariates='joint'")
    conditional = MultilevelSEM.from_formula(formula, data, **kwargs)
    outcome = conditional.model_data.endog_name
    covariates = [name for name in conditional.exog_names if name != "Intercept"]
    not_columns = [name for name in covariates if name not in data.columns]
    if not_columns:
        raise ValueError(f"covariates='joint' models each covariate column with the outcome; term(s) {not_columns} "
                         "are not numeric columns of the data (make them columns first)")
    nothing = data[[outcome, *covariates]].isna().all(axis=1)
    frame = data.loc[~nothing].copy()
    missing = frame[[outcome, *covariates]].isna()
    frame[[outcome, *covariates]] = frame[[outcome, *covariates]].fillna(0.0)
    filled = MultilevelSEM.from_formula(formula, frame, **kwargs)
    used = filled.model_data.rows_used
    long = pd.DataFrame({filled.table.outcome: filled.model_data.endog})
    for name, ident in zip(covariates, filled.table.covariates):
        long[ident] = frame[name].to_numpy()[used]
    long = long.mask(missing.to_numpy()[used])
    wide = filled.layout.wide_frame(long)
    table = filled.parameter_table
    modelled = [c for c in wide.columns if any(c.startswith(ident) for ident in filled.table.covariates)
                and c in set(table["rhs"])]
    rows = [(c, "~1", "", f"m_{c}", True, np.nan) for c in modelled]
    rows += [(a, "~~", b, f"v_{a}" if a == b else f"c_{a}_{b}", True, np.nan)
             for a, b in combinations_with_replacement(modelled, 2)]
    table = pd.concat([table, pd.DataFrame(rows, columns=table.columns)], ignore_index=True)
    names = _names_of(filled)
    names.update({f"m_{c}": f"mean({c})" for c in modelled})
    names.update({f"v_{c}": f"var({c})" for c in modelled})
    names.update({f"c_{a}_{b}": f"cov({a},{b})" for a, b in combinations_with_replacement(modelled, 2) if a != b})
    start = estimates_by_label(conditional)
    present = wide[modelled]
    start.update({f"m_{c}": float(present[c].mean()) for c in modelled})
    covariance = present.cov(min_periods=2).fillna(0.0)
    if modelled and np.linalg.eigvalsh(covariance.to_numpy()).min() <= 0:  # pairwise estimates need not be positive definite
        covariance = pd.DataFrame(np.diag(np.diag(covariance)), index=modelled, columns=modelled)
    start.update({f"v_{c}": float(covariance.loc[c, c]) for c in modelled})
    start.update({f"c_{a}_{b}": float(covariance.loc[a, b]) for a, b in combinations_with_replacement(modelled, 2)
                  if a != b})
    accounting = filled.row_accounting
    dropped = {"outcome and every covariate missing": int(nothing.sum())} if nothing.any() else {}
    accounting = RowAccounting(len(data), accounting.n_used, {**dropped, **accounting.dropped})
    return WideSEM(table, wide, exogenous=[], names=names, start=start, source=filled, accounting=accounting,
                   title=f"Wide SEM, covariates modelled jointly: {formula}")


def instrumental_model(formula: str, data: pd.DataFrame, **kwargs) -> WideSEM:
    """The bivariate multilevel system of an endogenous covariate and the outcome.

    Parameters
    ----------
    formula : str
        ``"y ~ w + [x ~ z1 + z2] + (1|k/j)"``: ``x`` is endogenous, ``z1, z2`` are its
        instruments (excluded from the outcome's equation); ``w`` and the random part
        enter both equations.
    data : DataFrame
    kwargs
        Passed to :meth:`MultilevelSEM.from_formula`.

    Returns
    -------
    WideSEM
        Parameters of the outcome's equation keep their usual names (``x``, ``var(k)``);
        those of the endogenous covariate's equation are prefixed with its name
        (``x: z1``, ``x: var(k)``); ``cov(k)[y,x]`` ... ``cov(Residual)[y,x]`` are the
        covariances of the two equations' effects and residuals.
    """
    from .model import MultilevelSEM

    if kwargs.pop("weights", None) is not None:
        raise ValueError("sampling weights are not supported with an endogenous covariate")
    outcome_formula, endogenous, instruments = split_endogenous(formula)
    if endogenous not in data.columns:
        raise ValueError(f"the endogenous covariate {endogenous!r} is not a column of the data")
    exogenous_terms = [t.strip() for t in _fixed_terms(outcome_formula).split("+") if t.strip() != endogenous]
    first_formula = f"{endogenous} ~ {' + '.join([*exogenous_terms, instruments])} + {_random_part(outcome_formula)}"
    second = MultilevelSEM.from_formula(outcome_formula, data, **kwargs)
    first = MultilevelSEM.from_formula(first_formula, data, **kwargs)
    both = second.model_data.rows_used & first.model_data.rows_used
    if not both.all():
        frame = data.loc[both]
        second = MultilevelSEM.from_formula(outcome_formula, frame, **kwargs)
        first = MultilevelSEM.from_formula(first_formula, frame, **kwargs)
    extra_instruments = sorted(set(first.exog_names) - set(second.exog_names))
    if not extra_instruments:
        raise ValueError(f"the instruments {instruments!r} add no column to the equation of {endogenous!r}: "
                         "the model is not identified")
    y, x = second.table.outcome, first.table.outcome
    suffix = identifier(endogenous)
    y_table = _rename_latents(second.parameter_table, f"_{y}")
    x_table = _rename_latents(first.parameter_table, f"_{suffix}")
    x_table["label"] = [f"{label}_{suffix}" if label else "" for label in x_table["label"]]
    clash = set(y_table["label"]) & set(x_table["label"]) - {""}
    if clash:
        raise ValueError(f"parameter labels {sorted(clash)} occur in both equations; rename the columns")
    cross = []
    for latent in dict.fromkeys(first.parameter_table.loc[first.parameter_table["op"] == "=~", "lhs"]):
        level = _level_of(latent, first)
        cross.append((f"{latent}_{y}", "~~", f"{latent}_{suffix}", f"C_{identifier(level).lower()}", True, np.nan))
    residuals = y_table[(y_table["op"] == "~~") & (y_table["lhs"] == y_table["rhs"])
                        & y_table["lhs"].isin(set(y_table.loc[y_table["op"].isin(["~", "~1"]), "lhs"]))]["lhs"]
    cross += [(p, "~~", x + p[len(y):], "C_e", True, np.nan) for p in residuals]
    cross_levels = {f"C_{identifier(level).lower()}": f"cov({level})[{second.model_data.endog_name},{endogenous}]"
                    for level in second.layout.level_names}
    paired = {(lhs, rhs) for lhs, _, rhs, *_ in cross}
    latents_y = dict.fromkeys(y_table.loc[y_table["op"] == "=~", "lhs"])
    latents_x = dict.fromkeys(x_table.loc[x_table["op"] == "=~", "lhs"])
    # every other pair of the two equations' effects is uncorrelated, written out as the table's other zeros are
    cross += [(a, "~~", b, "", False, 0.0) for a in latents_y for b in latents_x if (a, b) not in paired]
    cross_table = pd.DataFrame(cross, columns=y_table.columns)
    table = pd.concat([y_table, x_table, cross_table], ignore_index=True)
    wide = second.wide_data(fill_absent_covariates=True)
    x_wide = first.wide_data(fill_absent_covariates=True)
    wide = pd.concat([wide, x_wide[[c for c in x_wide.columns if c not in wide.columns]]], axis=1)
    exogenous = conditioned_covariates(table)
    names = _names_of(second)
    names.update({f"{label}_{suffix}": f"{endogenous}: {name}" for label, name in _names_of(first).items()})
    names.update(cross_levels)
    names["C_e"] = f"cov(Residual)[{second.model_data.endog_name},{endogenous}]"
    start = estimates_by_label(second)
    start.update({f"{label}_{suffix}": value for label, value in estimates_by_label(first).items()})
    accounting = second.row_accounting
    lost = int(accounting.n_used - both.sum()) if both.sum() < accounting.n_used else 0
    accounting = RowAccounting(len(data), int(both.sum()),
                               {**accounting.dropped, **({"missing an instrument": lost} if lost else {})})
    covariance_labels = [label for label in cross_levels if label in set(cross_table["label"])] + ["C_e"]
    return WideSEM(table, wide, exogenous=exogenous, names=names, start=start, source=second, accounting=accounting,
                   title=f"Wide SEM with endogenous {endogenous} (instruments {', '.join(extra_instruments)})",
                   tests=partial(_exogeneity_tests, endogenous=endogenous, labels=covariance_labels))


def _level_of(latent: str, model) -> str:
    """The grouping level of a latent variable of the wide model (``J2`` -> ``k:j``)."""
    bases = sorted(zip(model.table.latent_bases, model.layout.level_names), key=lambda b: -len(b[0]))
    return next(level for base, level in bases if latent.startswith(base))


def _rename_latents(table: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """The table with every latent variable renamed ``K -> K_y`` (each equation has its own effects)."""
    table = table.copy()
    latents = set(table.loc[table["op"] == "=~", "lhs"])
    for column in ("lhs", "rhs"):
        table[column] = [f"{name}{suffix}" if name in latents else name for name in table[column]]
    return table


def _exogeneity_tests(results, endogenous: str, labels: list[str]) -> list[ExtraTest]:
    """Wald tests that the endogenous covariate is exogenous: the residual covariance, then all covariances."""
    tests = []
    model_labels = results.model.labels
    for title, chosen in ((f"Exogeneity of {endogenous} (residual covariance = 0)", ["C_e"]),
                          (f"Exogeneity of {endogenous} (all covariances of the two equations = 0)", labels)):
        index = [model_labels.index(label) for label in chosen if label in model_labels]
        if title.endswith("all covariances of the two equations = 0)") and len(index) < 2:
            continue
        estimate = np.asarray(results.params)[index]
        cov = np.asarray(results.cov_params())[np.ix_(index, index)]
        statistic = float(estimate @ np.linalg.solve(cov, estimate))
        tests.append(ExtraTest(f"Wald test: {title}", statistic, len(index), float(stats.chi2.sf(statistic,
                                                                                              len(index)))))
    return tests
