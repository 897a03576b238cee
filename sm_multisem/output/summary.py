"""The printed summary of a fit, laid out as Stata ``mixed`` prints it, or as Stata ``sem`` does."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.iolib.summary2 import Summary

from ..spec.residuals import with_residual_heading
from ..spec.spec import power_constraints

__all__ = ["STYLES", "build_summary", "estimates_table", "format_number"]

STYLES = ("mixed", "sem")
_WEIGHTS_NOTE = ("Sampling weights of the top-level clusters: the estimates maximise a pseudo-likelihood; "
                 "LR tests are not valid and are not shown.")


def format_number(value: float, digits: int = 6) -> str:
    """``digits`` significant digits, in scientific notation below 1e-4; empty for a missing value."""
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:.{digits}g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"


def estimates_table(res, alpha: float) -> pd.DataFrame:
    """Every parameter formatted for a table: estimate, SE, z, p and the ``1 - alpha`` interval.

    Variances and correlations get no z test (0 is on the boundary); a variance estimated at 0
    shows ``(boundary)`` in place of its SE and interval.
    """
    names = res.model.param_names
    ci = np.asarray(res.conf_int(alpha))
    params, bse = np.asarray(res.params), np.asarray(res.bse)
    z, p = np.asarray(res.tvalues), np.asarray(res.pvalues)
    rows = []
    for i, name in enumerate(names):
        estimate, interval = format_number(params[i]), [format_number(ci[i, 0]), format_number(ci[i, 1])]
        if name in res.boundary:
            rows.append([estimate, "(boundary)", "", "", "", ""])
        elif np.isnan(z[i]):
            rows.append([estimate, format_number(bse[i]), "", "", *interval])
        else:
            rows.append([estimate, format_number(bse[i]), f"{z[i]:.2f}", f"{p[i]:.3f}", *interval])
    columns = ["Coef.", "Std.Err.", "z", "P>|z|", f"[{alpha / 2:.3g}", f"{1 - alpha / 2:.3g}]"]
    return pd.DataFrame(rows, index=names, columns=columns)


def _llf_label(res) -> str:
    if res.model.cluster_weights is not None:
        return "Log pseudolikelihood:"
    return "Log restricted-likelihood:" if res.reml else "Log likelihood:"


def _fit_notes(res) -> list[str]:
    """Notes every style prints: rows used, variances on the boundary, convergence."""
    notes = [f"Rows: {res.row_accounting.describe()}."]
    for name in res.boundary:
        if name in res.singular:
            notes.append(f"Note: the random intercept and slope behind {name} are perfectly correlated (a singular "
                         "2 x 2 covariance); it is held fixed for the standard errors.")
        else:
            notes.append(f"Note: {name} is estimated on the boundary (0); it is held fixed for the standard errors.")
    if not res.converged:
        notes.append(f"Warning: the optimizer did not converge ({res.optimum.message}); "
                     f"largest gradient {np.max(np.abs(res.optimum.gradient)):.2e}.")
    return notes


def build_summary(res, alpha: float = 0.05, style: str = "mixed", max_equations: int = 10) -> Summary:
    """Build the summary of a :class:`~sm_multisem.results.MultilevelSEMResults` (see its ``summary``)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    summary = Summary()
    build = _mixed_summary if style == "mixed" else _sem_summary
    for note in build(res, alpha, summary, max_equations) + _fit_notes(res):
        summary.add_text(note)
    return summary


def _mixed_summary(res, alpha: float, summary: Summary, max_equations: int) -> list[str]:
    """Stata ``mixed``: groups, fixed effects, random-effects parameters, LR test vs. linear model."""
    method = "REML" if res.reml else "ML"
    wald, wald_df, wald_p = res.wald_test_fixed()
    info = {
        "Model:": "MultilevelSEM (wide SEM, FIML)",
        "Dependent variable:": res.model.endog_names,
        "Method:": method,
        "No. observations:": f"{res.nobs_long:,}",
        "No. clusters (nobs):": f"{res.nobs:,}",
        "Covariance type:": res.cov_description,
        "Converged:": "Yes" if res.converged else "No",
        _llf_label(res): f"{res.llf:.5f}",
        f"Wald chi2({wald_df}):": "" if not wald_df else f"{wald:.2f}",
        "Prob > chi2:": "" if not wald_df else f"{wald_p:.4f}",
        "AIC:": "" if np.isnan(res.aic) else f"{res.aic:.4f}",
        "BIC:": "" if np.isnan(res.bic) else f"{res.bic:.4f}",
    }
    summary.add_title(f"Mixed-effects {method} regression")
    summary.add_dict(info, ncols=2)

    groups = res.groups.copy()
    groups["mean"] = groups["mean"].map(lambda v: f"{v:.1f}")
    groups.index.name = None
    groups.columns = ["No. of groups", "Obs. min", "Obs. mean", "Obs. max"]
    summary.add_df(groups.astype(str))
    estimates = estimates_table(res, alpha)
    plan = res.model.plan
    summary.add_df(estimates.iloc[plan.beta_index])
    random = estimates.iloc[np.flatnonzero(plan.variance_mask | plan.correlation_mask | plan.covariance_mask)]
    random = with_residual_heading(res.model, random.drop(columns=["z", "P>|z|"]))
    summary.add_df(random.rename(columns={"Coef.": "Estimate"}))

    if res.model.cluster_weights is not None:
        return [_WEIGHTS_NOTE]
    lr = res.lr_test_linear()
    return [f"LR test vs. linear model: {lr}"] + ([f"Note: {lr.note}"] if lr.note else [])


def _sem_summary(res, alpha: float, summary: Summary, max_equations: int) -> list[str]:
    """Stata ``sem``: one block per equation of the wide model, then the variances."""
    table, n_equations, collapsed = _sem_table(res, estimates_table(res, alpha), max_equations)
    info = {
        "Estimation method:": res.method,
        "Number of obs (clusters):": f"{res.nobs:,}",
        _llf_label(res): f"{res.llf:.5f}",
        "Observations (long rows):": f"{res.nobs_long:,}",
        "Covariance type:": res.cov_description,
        "Equations (positions):": f"{n_equations:,}",
        "Converged:": "Yes" if res.converged else "No",
        "Free parameters:": f"{len(res.params)}",
    }
    summary.add_title("Structural equation model")
    summary.add_dict(info, ncols=2)
    summary.add_df(table)
    notes = ["Label: parameters sharing a label are constrained equal. Every effect loads with 1 and is "
             "uncorrelated with the other effects and with the covariates (fixed at 0)."]
    if collapsed:
        notes.append(f"More than {max_equations} equations: equations with the same parameters are shown once, "
                     "{p} standing for their positions and {u} for the slots of a unit, as in model.table.rules.")
    notes.append("The log likelihood is that of the outcomes given the covariates (lavaan fixed.x = TRUE); "
                 "Stata sem adds the covariates' own, which involves none of these parameters.")
    if res.model.cluster_weights is not None:
        return [*notes, _WEIGHTS_NOTE]
    try:
        notes.append(f"LR test of model vs. saturated: {res.lr_test_saturated()}")
    except (ValueError, NotImplementedError) as err:  # REML, too few clusters, no single wide SEM
        notes.append(f"LR test of model vs. saturated: not available ({err}).")
    return notes


def _sem_table(res, estimates: pd.DataFrame, max_equations: int) -> tuple[pd.DataFrame, int, bool]:
    """The coefficients and variances of the wide model, read from its per-position parameter table.

    With more than ``max_equations`` equations, equations whose parameters carry the same labels
    (the same slopes, effect variances and residual variance) are shown once, as ``y{p}``.
    Returns the table, the number of equations and whether any were collapsed.
    """
    model = res.model
    expanded = model.single_group_table("the sem-style summary")
    outcome, bases = model.table.outcome, model.table.latent_bases
    row_of = {label: estimates.iloc[i].tolist() for i, label in enumerate(model.plan.labels)}
    regressions = expanded[expanded["op"].isin(["~", "~1"])]
    latents_of = expanded[expanded["op"] == "=~"].groupby("rhs", sort=False)["lhs"].agg(list)  # top level first
    level_of = {latent: level for latents in latents_of for level, latent in enumerate(latents)}
    variances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] == expanded["rhs"])]
    variance_label = dict(zip(variances["lhs"], variances["label"]))

    equations: dict[str, tuple] = {}  # y -> (covariate terms (stem, name, label), constant label, signature)
    for y, rows in regressions.groupby("lhs", sort=False):
        position = y[len(outcome):]  # what every name of this position ends with ("1_2", "_pub1_2")
        terms = tuple((rhs[: len(rhs) - len(position)], rhs, label)
                      for op, rhs, label in zip(rows["op"], rows["rhs"], rows["label"]) if op == "~")
        constant = next((label for op, label in zip(rows["op"], rows["label"]) if op == "~1"), None)
        signature = (tuple((stem, label) for stem, _, label in terms), constant,
                     tuple(variance_label[latent] for latent in latents_of[y]), variance_label[y])
        equations[y] = (terms, constant, signature)
    collapsed = len(equations) > max_equations
    if collapsed:
        groups: dict[tuple, list[str]] = {}
        for y, (*_, signature) in equations.items():
            groups.setdefault(signature, []).append(y)
        blocks = list(groups.values())
    else:
        blocks = [[y] for y in equations]

    blank = [""] * (estimates.shape[1] + 1)
    fixed_at_1 = ["1", "(constrained)"] + [""] * (estimates.shape[1] - 1)
    lines = [("Structural", blank)]
    for ys in blocks:
        many = len(ys) > 1
        terms, constant, _ = equations[ys[0]]
        header = f"{outcome}{{p}} <-  ({len(ys)} equations: {ys[0]} ... {ys[-1]})" if many else f"{ys[0]} <-"
        lines.append((f"  {header}", blank))
        lines += [(f"    {stem + '{p}' if many else name}", [*row_of[label], label]) for stem, name, label in terms]
        lines += [(f"    {bases[level] + '{u}' if many and level else latent}", fixed_at_1)
                  for level, latent in enumerate(latents_of[ys[0]])]
        if constant is not None:
            lines.append(("    _cons", [*row_of[constant], constant]))

    lines.append(("Variance", blank))
    variance_rows = [(f"e.{y}", f"e.{outcome}{{p}}", "positions", variance_label[y]) for y in equations]
    variance_rows += [(latent, bases[level] + "{u}" if level else latent, "effects", variance_label[latent])
                      for latent, level in level_of.items()]
    shown: dict[tuple, list[str]] = {}  # a row of the table -> the variances it stands for
    for name, generic, noun, label in variance_rows:
        shown.setdefault((generic if collapsed else name, noun, label), []).append(name)
    for (generic, noun, label), names in shown.items():
        text = names[0] if len(names) == 1 else f"{generic}  ({len(names)} {noun})"
        lines.append((f"    {text}", [*row_of[label], label]))
    constraints = power_constraints(expanded)
    covariances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] != expanded["rhs"]) & expanded["free"]]
    if len(covariances) and not constraints:
        lines.append(("Covariance", blank))
        for label, pairs in covariances.groupby("label", sort=False):
            if collapsed and len(pairs) > 1:
                lines.append((f"    e.{outcome}{{p}} e.{outcome}{{q}}  ({len(pairs)} pairs)", [*row_of[label], label]))
            else:
                lines += [(f"    e.{pair.lhs} e.{pair.rhs}", [*row_of[label], label]) for pair in pairs.itertuples()]
    if constraints:  # AR(1) residuals: every residual covariance follows from S_e and rho (of each label)
        lines.append(("Residual covariance", blank))
        for scale, rho in dict.fromkeys((scale, rho) for _, scale, rho, _ in constraints):
            lines.append((f"    {rho}  ({scale}*{rho}^|t_p-t_q|)", [*row_of[rho], rho]))
    table = pd.DataFrame([row for _, row in lines], index=[name for name, _ in lines],
                         columns=[*estimates.columns, "Label"])
    return table, len(equations), collapsed
