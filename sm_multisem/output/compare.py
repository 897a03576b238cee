"""Cross-check a fit against statsmodels ``MixedLM`` on the same rows.

The equivalent ``MixedLM`` has the top level as ``groups`` with a random intercept and
one variance component per deeper level (an indicator column per unit inside each
group), which is how statsmodels writes nested random intercepts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

__all__ = ["mixedlm_equivalent", "compare_mixedlm"]

#: MixedLM's default tolerances stop early (variances off by about 1e-3 relative);
#: these converge it tightly enough for a comparison to many digits.
TIGHT_FIT = {"method": ["bfgs"], "gtol": 1e-7, "maxiter": 2000}


def mixedlm_equivalent(model) -> MixedLM:
    """The statsmodels ``MixedLM`` with the same fixed effects and nested random intercepts.

    Rows are passed in the layout's sorted order (each group contiguous). Slopes relaxed by
    a label carry over, and so do intercepts (they are columns of the design); relaxed variances do not.
    """
    if model.plan.level_effects:
        raise NotImplementedError("the MixedLM equivalent of random slopes is not built here; the fits are checked "
                                  "against lme4 (tests/reference/slopes_lme4.R)")
    unmatched = [r for r in model.relaxations if r.kind not in ("slope", "intercept")]
    if unmatched:
        raise ValueError(
            f"MixedLM has no equivalent of the {unmatched[0].kind} of {unmatched[0].target} relaxed by "
            f"{unmatched[0].by!r}; compare with nlme or lme4 instead"
        )
    layout = model.layout
    order = layout.order
    endog = model.model_data.endog[order]
    exog = pd.DataFrame(model.model_data.exog[order], columns=model.model_data.exog_names)
    clusters = layout.cluster_of_rows()
    group_rows = np.split(np.arange(layout.n_rows), np.flatnonzero(np.diff(clusters)) + 1)
    names, colnames, mats = [], [], []
    for level in range(1, len(layout.levels)):
        units = layout.unit_of_rows(level)
        names.append(layout.level_names[level])
        level_cols, level_mats = [], []
        for rows in group_rows:
            local = units[rows] - units[rows[0]]
            indicator = np.zeros((len(rows), local.max() + 1))
            indicator[np.arange(len(rows)), local] = 1.0
            level_mats.append(indicator)
            level_cols.append([f"{names[-1]}[{i}]" for i in range(indicator.shape[1])])
        colnames.append(level_cols)
        mats.append(level_mats)
    exog_vc = VCSpec(names, colnames, mats) if names else None
    return MixedLM(endog, exog, groups=clusters, exog_re=np.ones((layout.n_rows, 1)), exog_vc=exog_vc)


def mixedlm_params(mixed_result, level_names) -> pd.Series:
    """MixedLM estimates under this package's parameter names (variances on the data scale)."""
    values = dict(mixed_result.fe_params)
    values[f"var({level_names[0]})"] = float(np.asarray(mixed_result.cov_re)[0, 0])
    for name, vc in zip(level_names[1:], np.atleast_1d(mixed_result.vcomp)):
        values[f"var({name})"] = float(vc)
    values["var(Residual)"] = float(mixed_result.scale)
    return pd.Series(values)


def compare_mixedlm(results, **fit_kwargs) -> pd.DataFrame:
    """Fit ``MixedLM`` (ML or REML, as ``results``) and set both fits side by side.

    Parameters
    ----------
    results : MultilevelSEMResults
    **fit_kwargs
        Passed to ``MixedLM.fit``; defaults to a tight BFGS fit (:data:`TIGHT_FIT`).

    Returns
    -------
    DataFrame
        Rows: every parameter and ``llf``. Columns: ``MultilevelSEM``, ``MixedLM``,
        ``difference``, and the fixed-effect standard errors of both (MixedLM reports
        observed-information SEs; compare with ``cov_type="oim"``). MixedLM's variance
        SEs refer to variances relative to the profiled scale and are not shown.
    """
    model = results.model
    mixed = mixedlm_equivalent(model)
    kwargs = {**TIGHT_FIT, **fit_kwargs}
    mixed_result = mixed.fit(reml=results.reml, **kwargs)
    ours = pd.Series(np.asarray(results.params), index=model.param_names)
    theirs = mixedlm_params(mixed_result, model.layout.level_names)[ours.index]
    ours["llf"], theirs["llf"] = results.llf, mixed_result.llf
    bse = pd.Series(np.asarray(results.bse), index=model.param_names)
    table = pd.DataFrame({"MultilevelSEM": ours, "MixedLM": theirs, "difference": ours - theirs})
    fe = list(model.model_data.exog_names)
    table["bse MultilevelSEM"] = bse.reindex(table.index).where(table.index.isin(fe))
    table["bse MixedLM"] = pd.Series(np.asarray(mixed_result.bse_fe), index=fe).reindex(table.index)
    table.attrs["mixedlm_converged"] = bool(mixed_result.converged)
    return table
