"""statsmodels ``MixedLM``'s log-likelihood at given parameters, as an independent reference."""

from __future__ import annotations

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams

from sm_multisem.output.compare import mixedlm_equivalent


def mixedlm_profiled_loglike(model, theta: np.ndarray, reml: bool, mixed: MixedLM | None = None) -> float:
    """MixedLM's log-likelihood with the fixed effects and the scale profiled out.

    ``theta`` holds the relative standard deviations of the levels, top first; pass the
    model's :func:`mixedlm_equivalent` as ``mixed`` to evaluate it several times.
    """
    mixed = mixedlm_equivalent(model) if mixed is None else mixed
    mixed.reml, mixed.fe_pen, mixed.cov_pen = reml, None, None  # what MixedLM.fit sets before loglike
    rho = np.square(theta)
    k_fe = model.model_data.exog.shape[1]
    packed = MixedLMParams.from_components(np.zeros(k_fe), cov_re=np.array([[rho[0]]]), vcomp=rho[1:])
    return float(mixed.loglike(packed, profile_fe=True))
