"""The printed summary of a fit, laid out as Stata ``mixed`` prints it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.iolib.summary2 import Summary

__all__ = ["build_summary"]


def _num(value: float, digits: int = 6) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:.{digits}g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"


def _fixed_table(res, alpha: float) -> pd.DataFrame:
    names = res.model.param_names
    ci = np.asarray(res.conf_int(alpha))
    params, bse = np.asarray(res.params), np.asarray(res.bse)
    z, p = np.asarray(res.tvalues), np.asarray(res.pvalues)
    lo, hi = f"[{alpha / 2:.3g}", f"{1 - alpha / 2:.3g}]"
    rows = {
        names[i]: [_num(params[i]), _num(bse[i]), f"{z[i]:.2f}", f"{p[i]:.3f}", _num(ci[i, 0]), _num(ci[i, 1])]
        for i in res.model.plan.beta_index
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["Coef.", "Std.Err.", "z", "P>|z|", lo, hi])


def _random_table(res, alpha: float) -> pd.DataFrame:
    names = res.model.param_names
    ci = np.asarray(res.conf_int(alpha))
    params, bse = np.asarray(res.params), np.asarray(res.bse)
    rows = {}
    plan = res.model.plan
    for i in np.flatnonzero(plan.variance_mask | plan.correlation_mask):
        on_boundary = names[i] in res.boundary
        rows[names[i]] = [
            _num(params[i]),
            "(boundary)" if on_boundary else _num(bse[i]),
            "" if on_boundary else _num(ci[i, 0]),
            "" if on_boundary else _num(ci[i, 1]),
        ]
    lo, hi = f"[{alpha / 2:.3g}", f"{1 - alpha / 2:.3g}]"
    return pd.DataFrame.from_dict(rows, orient="index", columns=["Estimate", "Std.Err.", lo, hi])


def _llf_label(res) -> str:
    if res.model.cluster_weights is not None:
        return "Log pseudolikelihood:"
    return "Log restricted-likelihood:" if res.reml else "Log likelihood:"


def build_summary(res, alpha: float = 0.05) -> Summary:
    """Build the summary of a :class:`~sm_multisem.results.MultilevelSEMResults`."""
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
    summary = Summary()
    summary.add_title(f"Mixed-effects {method} regression")
    summary.add_dict(info, ncols=2)

    groups = res.groups.copy()
    groups["mean"] = groups["mean"].map(lambda v: f"{v:.1f}")
    groups.index.name = None
    groups.columns = ["No. of groups", "Obs. min", "Obs. mean", "Obs. max"]
    summary.add_df(groups.astype(str))
    summary.add_df(_fixed_table(res, alpha))
    summary.add_df(_random_table(res, alpha))

    if res.model.cluster_weights is None:
        lr = res.lr_test_linear()
        notes = [f"LR test vs. linear model: {lr}"]
        if lr.note:
            notes.append(f"Note: {lr.note}")
    else:
        notes = ["Sampling weights of the top-level clusters: the estimates maximise a pseudo-likelihood; "
                 "LR tests are not valid and are not shown."]
    notes.append(f"Rows: {res.row_accounting.describe()}.")
    for name in res.boundary:
        notes.append(f"Note: {name} is estimated on the boundary (0); it is held fixed for the standard errors.")
    if not res.converged:
        notes.append(f"Warning: the optimizer did not converge ({res.optimum.message}); "
                     f"largest gradient {np.max(np.abs(res.optimum.gradient)):.2e}.")
    for note in notes:
        summary.add_text(note)
    return summary
