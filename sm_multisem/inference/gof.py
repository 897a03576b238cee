"""Fit statistics of the wide model: Stata's ``estat gof``, lavaan's ``fitMeasures``.

The wide model (one row per top-level cluster) is a model of the outcomes of every position
given the covariates of every position, as lavaan fits it with ``fixed.x = TRUE``: the
covariates' own means and covariances are fixed at their sample values and cancel from
every comparison. Its fit is measured against two models of the same wide data:

* the *saturated* model, a multivariate regression of the ``P`` outcomes on an intercept
  and all ``Q`` wide covariates with an unrestricted residual covariance,
  ``P (1 + Q) + P (P + 1) / 2`` parameters (lavaan's unrestricted H1 of the outcomes and
  the covariates, less the covariates' fixed moments);
* the *baseline* (independence) model, lavaan's for ``fixed.x = TRUE``: every outcome
  with its own mean and variance, uncorrelated with the other outcomes and with the
  covariates, ``2 P`` parameters.

With missing positions (unbalanced data) both are fitted by full-information ML, the
saturated one by EM, on the wide data lavaan is given (:meth:`MultilevelSEM.wide_data`
with ``fill_absent_covariates=True``: covariates of absent positions set to 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..spec.layout import position_name, position_order
from ..spec.spec import constrained_values

__all__ = [
    "GoodnessOfFit",
    "SaturatedModel",
    "WideData",
    "cfi",
    "fit_independence",
    "fit_saturated",
    "goodness_of_fit",
    "implied_moments",
    "rmsea",
    "rmsea_interval",
    "rmsea_pclose",
    "srmr",
    "tli",
    "wide_data_of",
]

_LOG_2PI = np.log(2.0 * np.pi)
#: Smallest eigenvalue of the saturated model's Sigma, relative to the largest, taken as singular
SINGULAR = 1e-8
#: Elements of the per-cluster matrices gathered at once by :meth:`_Patterns.rowwise`
_GATHER_ELEMENTS = 2 ** 21
#: R's ``all.equal`` tolerance, below which lavaan reads the noncentralities of CFI as 0
_ALL_EQUAL = 1.5e-8


@dataclass(frozen=True)
class WideData:
    """The wide outcomes and covariates a fit statistic compares.

    Attributes
    ----------
    outcomes : ndarray
        ``(clusters, P)``, NaN at absent positions.
    covariates : ndarray
        ``(clusters, Q)``, every covariate at every position, 0 at absent positions.
    outcome_names, covariate_names : list of str
        Their columns in :meth:`MultilevelSEM.wide_data`.
    """

    outcomes: np.ndarray
    covariates: np.ndarray
    outcome_names: list[str]
    covariate_names: list[str]

    @property
    def design(self) -> np.ndarray:
        """The regressors of the saturated model: an intercept and every covariate."""
        return np.column_stack([np.ones(len(self.covariates)), self.covariates])

    @property
    def complete(self) -> bool:
        return not np.isnan(self.outcomes).any()


@dataclass(frozen=True)
class SaturatedModel:
    """ML fit of the saturated model: ``y = A [1, x] + e``, ``e ~ N(0, Sigma)`` unrestricted.

    Attributes
    ----------
    coef : ndarray
        ``A``, ``(P, 1 + Q)``.
    cov : ndarray
        ``Sigma``, ``(P, P)``.
    llf : float
        Log-likelihood of the outcomes given the covariates.
    n_params : int
        ``P rank([1, x]) + P (P + 1) / 2``.
    iterations : int
        EM iterations (1 with complete data: the closed form).
    """

    coef: np.ndarray
    cov: np.ndarray
    llf: float
    n_params: int
    iterations: int


@dataclass(frozen=True)
class GoodnessOfFit:
    """Fit statistics of a wide model (:func:`goodness_of_fit`); names as lavaan's ``fitMeasures``.

    Attributes
    ----------
    chi2, df, pvalue
        LR test of the model against the saturated model.
    baseline_chi2, baseline_df, baseline_pvalue
        LR test of the baseline (independence) model against the saturated model.
    rmsea, rmsea_ci_lower, rmsea_ci_upper, rmsea_pvalue
        RMSEA, its 90% interval and the probability that it is at most 0.05 (pclose).
    cfi, tli, srmr, aic, bic
    nobs : int
        Rows of the wide model (top-level clusters): the ``N`` of RMSEA and of BIC.
    llf, llf_saturated, llf_baseline : float
        Log-likelihoods of the outcomes given the covariates.
    cluster_level : str
        The level whose units are the rows of the wide model.
    complete : bool
        False when positions are missing and the saturated and baseline models are FIML fits.
    """

    chi2: float
    df: int
    pvalue: float
    baseline_chi2: float
    baseline_df: int
    baseline_pvalue: float
    rmsea: float
    rmsea_ci_lower: float
    rmsea_ci_upper: float
    rmsea_pvalue: float
    cfi: float
    tli: float
    srmr: float
    aic: float
    bic: float
    nobs: int
    llf: float
    llf_saturated: float
    llf_baseline: float
    cluster_level: str
    complete: bool

    def to_series(self) -> pd.Series:
        """The statistics under lavaan's ``fitMeasures`` names (``chisq``, ``baseline.df``, ...)."""
        return pd.Series({
            "chisq": self.chi2, "df": self.df, "pvalue": self.pvalue,
            "baseline.chisq": self.baseline_chi2, "baseline.df": self.baseline_df,
            "baseline.pvalue": self.baseline_pvalue, "cfi": self.cfi, "tli": self.tli, "rmsea": self.rmsea,
            "rmsea.ci.lower": self.rmsea_ci_lower, "rmsea.ci.upper": self.rmsea_ci_upper,
            "rmsea.pvalue": self.rmsea_pvalue, "srmr": self.srmr, "aic": self.aic, "bic": self.bic,
        }, name="value")

    def __str__(self) -> str:
        rule = "-" * 21 + "+" + "-" * 56
        rows = [
            ("Likelihood ratio", None, ""),
            (f"chi2_ms({self.df})", self.chi2, "model vs. saturated"),
            ("p > chi2", self.pvalue, ""),
            (f"chi2_bs({self.baseline_df})", self.baseline_chi2, "baseline vs. saturated"),
            ("p > chi2", self.baseline_pvalue, ""),
            ("Population error", None, ""),
            ("RMSEA", self.rmsea, "Root mean squared error of approximation"),
            ("90% CI, lower bound", self.rmsea_ci_lower, ""),
            ("upper bound", self.rmsea_ci_upper, ""),
            ("pclose", self.rmsea_pvalue, "Probability RMSEA <= 0.05"),
            ("Information criteria", None, ""),
            ("AIC", self.aic, "Akaike's information criterion"),
            ("BIC", self.bic, f"Bayesian information criterion (N = {self.nobs:,})"),
            ("Baseline comparison", None, ""),
            ("CFI", self.cfi, "Comparative fit index"),
            ("TLI", self.tli, "Tucker-Lewis index"),
            ("Size of residuals", None, ""),
            ("SRMR", self.srmr, "Standardized root mean squared residual"),
        ]
        lines = [f"Fit statistics of the wide model: one row per {self.cluster_level} cluster, N = {self.nobs:,}",
                 rule, f"{'Fit statistic':<21}|{'Value':>11}   Description"]
        for name, value, text in rows:
            if value is None:
                lines += [rule, f"{name:<21}|"]
            else:
                lines.append(f"{name:>20} |{value:>11.3f}   {text}".rstrip())
        lines.append(rule)
        if not self.complete:
            lines.append("Saturated and baseline models by FIML; covariates of absent positions set to 0.")
        return "\n".join(lines)


def wide_data_of(results) -> WideData:
    """The wide data of an unweighted ML fit whose model has a wide form.

    Raises
    ------
    ValueError
        For REML or weighted fits: their criterion is not the likelihood the saturated
        model maximises.
    NotImplementedError
        When the model has no single wide SEM (a label of the top-level clusters): the
        saturated model of the wide data does not nest it.
    """
    model = results.model
    if results.reml or model.cluster_weights is not None:
        raise ValueError("fit statistics against the saturated model need an unweighted ML fit (reml=False, "
                         "no weights)")
    _wide_table(model)
    positions = sorted(set(model.layout.position_names()), key=position_order)
    outcome_names = [position_name(model.table.outcome, s) for s in positions]
    covariate_names = [position_name(x, s) for x in model.table.covariates for s in positions]
    wide = model.wide_data(fill_absent_covariates=True)
    return WideData(wide[outcome_names].to_numpy(dtype=float), wide[covariate_names].to_numpy(dtype=float),
                    outcome_names, covariate_names)


def _wide_table(model) -> pd.DataFrame:
    """The per-position parameter table, refused with the reason when the model has none."""
    try:
        return model.single_group_table("the saturated model")
    except NotImplementedError as err:
        raise NotImplementedError(f"the model has no single wide SEM for the saturated model to nest: {err}") from None


def fit_saturated(data: WideData, *, tol: float = 1e-10, max_iter: int = 10_000) -> SaturatedModel:
    """ML fit of the saturated model; closed form with complete outcomes, EM with missing ones.

    With complete outcomes, ``A`` is least squares and ``Sigma = E'E / N``, and

    .. math:: l_{sat} = -\\tfrac N2 \\left[P \\log 2\\pi + \\log|\\hat\\Sigma| + P\\right].

    With missing outcomes (the covariates are complete) EM, batched over the patterns of
    missing positions: the E step replaces a cluster's missing outcomes ``m`` by
    ``A_m z + Sigma_mo Sigma_oo^{-1} (y_o - A_o z)`` and adds their conditional covariance
    ``Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om`` to the cross products; the M step is the
    complete-data closed form on those. The log-likelihood is the sum over clusters of the
    normal densities of the observed outcomes. Iterates until no element of ``A`` or
    ``Sigma`` moves by more than ``tol`` times the largest eigenvalue of ``Sigma``.

    Raises
    ------
    ValueError
        When the saturated model cannot be estimated: fewer clusters than positions plus
        regressors, two positions never observed in the same cluster, a singular estimate
        of ``Sigma``, or EM not converging.
    """
    y, z = data.outcomes, data.design
    n, p = y.shape
    # the least-squares solver through the SVD, with matrix_rank's cutoff: wide covariates may repeat
    # (a covariate of the top-level clusters is the same at every position)
    solver = np.linalg.pinv(z, rcond=max(z.shape) * np.finfo(float).eps)
    rank = int(np.linalg.matrix_rank(z))
    observed = ~np.isnan(y)
    together = observed.T.astype(float) @ observed
    if np.any(together == 0):
        a, b = np.argwhere(together == 0)[0]
        raise ValueError(f"positions {data.outcome_names[a]} and {data.outcome_names[b]} are never observed in the "
                         "same cluster, so the saturated model cannot estimate their covariance")
    if n < p + rank:
        raise ValueError(f"{n} clusters cannot estimate the saturated model of {p} outcomes on {rank} independent "
                         f"regressors (an intercept and the wide covariates): its residual covariance is singular "
                         f"below {p + rank} clusters")
    patterns = _Patterns.of_outcomes(y)
    coef = np.zeros((p, z.shape[1]))
    coef[:, 0] = np.nanmean(y, axis=0)
    cov = np.diag(np.nanvar(y, axis=0))
    complete = data.complete
    for iteration in range(1, max_iter + 1):
        completed, extra = _expected_outcomes(y, z @ coef.T, cov, patterns)
        new_coef = (solver @ completed).T
        resid = completed - z @ new_coef.T  # from residuals, not Y'Y - fitted: no cancellation
        new_cov = (resid.T @ resid + extra) / n
        new_cov = 0.5 * (new_cov + new_cov.T)
        eigenvalues = np.linalg.eigvalsh(new_cov)
        # checked every step: where the likelihood has no maximum, EM creeps towards a singular Sigma
        if eigenvalues[0] <= SINGULAR * eigenvalues[-1]:
            raise ValueError(f"the saturated model's residual covariance of the {p} positions is singular with {n} "
                             "clusters (its likelihood has no maximum): the wide data hold too few clusters for "
                             "some positions")
        change = max(np.abs(new_coef - coef).max(), np.abs(new_cov - cov).max()) / eigenvalues[-1]
        coef, cov = new_coef, new_cov
        if change <= tol or complete:  # with complete outcomes the first step is the closed form
            break
    else:
        raise ValueError(f"EM for the saturated model did not converge in {max_iter} iterations (last relative change "
                         f"{change:.2g}); the wide data may hold too few clusters for some positions")
    llf = _observed_loglike(y, z @ coef.T, cov, patterns)
    return SaturatedModel(coef, cov, llf, p * rank + p * (p + 1) // 2, iteration)


@dataclass(frozen=True)
class _Patterns:
    """The clusters grouped by the positions they observe.

    ``masks`` holds one row per distinct pattern, ``of`` the pattern of every cluster and
    ``counts`` the clusters of every pattern.
    """

    masks: np.ndarray
    of: np.ndarray
    counts: np.ndarray

    @classmethod
    def of_outcomes(cls, y: np.ndarray) -> _Patterns:
        masks, of, counts = np.unique(~np.isnan(y), axis=0, return_inverse=True, return_counts=True)
        return cls(masks, of.ravel(), counts)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pattern, ``(patterns, P, P)`` masks of the observed-observed, observed-missing and
        missing-missing entries of ``Sigma``."""
        seen, unseen = self.masks[:, :, None], ~self.masks[:, :, None]
        return seen & seen.transpose(0, 2, 1), seen & unseen.transpose(0, 2, 1), unseen & unseen.transpose(0, 2, 1)

    def bordered(self, cov: np.ndarray) -> np.ndarray:
        """``Sigma_oo`` of every pattern bordered by the identity on its missing positions: its
        inverse is ``Sigma_oo^{-1}`` bordered alike and its determinant ``|Sigma_oo|``."""
        observed, _, missing = self.pairs
        return np.where(observed, cov, 0.0) + missing * np.eye(len(cov))

    def rowwise(self, rows: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        """``rows[i] @ matrices[pattern of i]`` for every cluster, in chunks of bounded memory."""
        out = np.empty_like(rows)
        chunk = max(1, _GATHER_ELEMENTS // rows.shape[1] ** 2)
        for start in range(0, len(rows), chunk):
            part = slice(start, start + chunk)
            out[part] = np.einsum("ip,ipq->iq", rows[part], matrices[self.of[part]])
        return out


def _expected_outcomes(y, mean, cov, patterns: _Patterns) -> tuple[np.ndarray, np.ndarray]:
    """E step: the outcomes with missing ones replaced by their conditional means, and the summed
    conditional covariances of the missing ones.

    With ``K = Sigma_oo^{-1} Sigma_om`` (0 outside the observed rows and missing columns), a
    cluster's missing outcomes are ``mean_m + r_o K`` and their conditional covariance
    ``Sigma_mm - Sigma_mo K``.
    """
    observed = ~np.isnan(y)
    resid = np.where(observed, y - mean, 0.0)
    _, to_missing, missing = patterns.pairs
    across = np.where(to_missing, cov, 0.0)  # Sigma_om, bordered by 0
    gain = np.linalg.solve(patterns.bordered(cov), across)
    completed = np.where(observed, y, mean + patterns.rowwise(resid, gain))
    conditional = np.where(missing, cov, 0.0) - across.transpose(0, 2, 1) @ gain
    return completed, np.einsum("g,gpq->pq", patterns.counts, conditional)


def _observed_loglike(y, mean, cov, patterns: _Patterns) -> float:
    """Sum of the normal log-densities of every cluster's observed outcomes."""
    observed = ~np.isnan(y)
    resid = np.where(observed, y - mean, 0.0)
    bordered = patterns.bordered(cov)
    quadratic = np.sum(resid * patterns.rowwise(resid, np.linalg.inv(bordered)))
    logdet = np.linalg.slogdet(bordered)[1]
    return float(-0.5 * (observed.sum() * _LOG_2PI + patterns.counts @ logdet + quadratic))


def fit_independence(data: WideData) -> tuple[float, int]:
    """Log-likelihood and number of parameters of the baseline (independence) model.

    Every outcome has its own mean and variance and is uncorrelated with the others and
    with the covariates (lavaan's baseline for ``fixed.x = TRUE``). The FIML estimates are
    the mean and variance (divisor ``n_p``) of each position's ``n_p`` observed values:

    .. math:: l_{base} = -\\tfrac12 \\sum_p n_p \\left[\\log 2\\pi + \\log \\hat s_p + 1\\right].
    """
    y = data.outcomes
    counts = (~np.isnan(y)).sum(0)
    variances = np.nanvar(y, axis=0)
    if np.any(variances <= 0):
        raise ValueError(f"positions {list(np.asarray(data.outcome_names)[variances <= 0])} have no variation: the "
                         "baseline model's variance is 0")
    llf = -0.5 * float(np.sum(counts * (_LOG_2PI + np.log(variances) + 1.0)))
    return llf, 2 * y.shape[1]


def implied_moments(table: pd.DataFrame, values: dict[str, float], data: WideData) -> tuple[np.ndarray, np.ndarray]:
    """The model's ``A`` (regression of the outcomes on ``[1, x]``) and ``Sigma`` from its table.

    Parameters
    ----------
    table : DataFrame
        The per-position parameter table (:attr:`MultilevelSEM.parameter_table`).
    values : dict
        Estimate of every free label.
    data : WideData
        Names the rows (outcomes) and columns (covariates) of the result.

    Returns
    -------
    coef, cov : ndarray
        ``A``, ``(P, 1 + Q)``, and :math:`\\Sigma = \\Lambda \\Psi \\Lambda' + \\Theta`, ``(P, P)``.
    """
    value = np.where(table["free"], table["label"].map(constrained_values(table, values)), table["value"]).astype(float)
    outcome = {name: i for i, name in enumerate(data.outcome_names)}
    column = {name: i + 1 for i, name in enumerate(data.covariate_names)}
    coef = np.zeros((len(outcome), len(column) + 1))
    slopes, intercepts = (table["op"] == "~").to_numpy(), (table["op"] == "~1").to_numpy()
    coef[table.loc[slopes, "lhs"].map(outcome), table.loc[slopes, "rhs"].map(column)] = value[slopes]
    coef[table.loc[intercepts, "lhs"].map(outcome), 0] = value[intercepts]
    loads = (table["op"] == "=~").to_numpy()
    latent = {name: i for i, name in enumerate(dict.fromkeys(table.loc[loads, "lhs"]))}
    loading = np.zeros((len(outcome), len(latent)))
    loading[table.loc[loads, "rhs"].map(outcome), table.loc[loads, "lhs"].map(latent)] = value[loads]
    variables = {**latent, **{name: len(latent) + i for name, i in outcome.items()}}
    spread = np.zeros((len(variables),) * 2)  # Psi of the latents, then Theta of the outcomes
    pairs = (table["op"] == "~~").to_numpy()
    left, right = table.loc[pairs, "lhs"].map(variables), table.loc[pairs, "rhs"].map(variables)
    spread[left, right] = spread[right, left] = value[pairs]
    full = np.hstack([loading, np.eye(len(outcome))])
    return coef, full @ spread @ full.T


def _joint_moments(coef: np.ndarray, cov: np.ndarray, x_mean: np.ndarray, x_cov: np.ndarray):
    """Mean and covariance of ``(y, x)`` from ``y | x`` and the covariates' sample moments."""
    slopes = coef[:, 1:]
    mean = np.r_[coef[:, 0] + slopes @ x_mean, x_mean]
    y_x = slopes @ x_cov
    joint = np.block([[cov + y_x @ slopes.T, y_x], [y_x.T, x_cov]])
    return mean, joint


def srmr(sample_mean, sample_cov, implied_mean, implied_cov) -> float:
    """Standardized root mean squared residual with means (lavaan's ``srmr``, Bentler's form).

    .. math:: \\mathrm{SRMR} = \\sqrt{\\frac{\\sum_i \\left(\\frac{m_i - \\mu_i}{\\sqrt{s_{ii}}}\\right)^2
              + \\sum_{i \\le j} \\left(\\frac{s_{ij} - \\sigma_{ij}}{\\sqrt{s_{ii} s_{jj}}}\\right)^2}
              {v + v (v + 1) / 2}}

    over all ``v`` variables, outcomes and covariates (whose residuals are 0 with
    ``fixed.x``). A covariate constant in the wide data has residuals 0 that are counted as 0.
    """
    scale = np.sqrt(np.diag(sample_cov))
    outer = np.outer(scale, scale)
    cov_resid = np.divide(sample_cov - implied_cov, outer, out=np.zeros_like(outer), where=outer > 0)
    mean_resid = np.divide(sample_mean - implied_mean, scale, out=np.zeros_like(scale), where=scale > 0)
    v = len(scale)
    upper = np.triu_indices(v)
    return float(np.sqrt((np.sum(mean_resid ** 2) + np.sum(cov_resid[upper] ** 2)) / (v + v * (v + 1) / 2)))


def rmsea(chi2: float, df: int, n: int) -> float:
    """Root mean squared error of approximation, with ``N`` (not ``N - 1``) as lavaan under ML.

    .. math::

        \\mathrm{RMSEA} = \\sqrt{\\max\\left(\\frac{\\chi^2 - df}{N\\,df}, 0\\right)}, \\qquad 0 \\text{ if } df = 0.
    """
    return float(np.sqrt(max((chi2 - df) / (n * df), 0.0))) if df > 0 else 0.0


def _noncentral_cdf(x: float, df: int, noncentrality: float) -> float:
    return float(stats.chi2.cdf(x, df) if noncentrality == 0 else stats.ncx2.cdf(x, df, noncentrality))


def rmsea_interval(chi2: float, df: int, n: int, level: float = 0.90) -> tuple[float, float]:
    """Confidence interval of the RMSEA from the noncentral chi2 (lavaan's ``rmsea.ci.*``).

    The bounds are :math:`\\sqrt{\\lambda / (N\\,df)}` for the noncentralities with
    :math:`P(\\chi^2_{df}(\\lambda) \\le \\chi^2) = (1 + level)/2` (lower, searched in
    ``[0, chi2]``) and ``(1 - level)/2`` (upper, searched in ``[0, max(N, 4 chi2)]``); a bound
    is 0 where lavaan sets it to 0 (no root at or above 0 in its interval). lavaan finds the
    roots with R's ``uniroot`` to about 1e-4 in :math:`\\lambda`; here they are found to
    machine precision.
    """
    upper_p, lower_p = 1.0 - (1.0 - level) / 2.0, (1.0 - level) / 2.0

    def bound(noncentrality: float) -> float:
        return float(np.sqrt(noncentrality / (n * df)))

    def root(target: float, top: float) -> float:
        try:
            return optimize.brentq(lambda lam: _noncentral_cdf(chi2, df, lam) - target, 0.0, top,
                                   xtol=1e-13, rtol=4 * np.finfo(float).eps)
        except ValueError:  # no sign change in lavaan's interval: it reports NA
            return np.nan

    if df < 1 or _noncentral_cdf(chi2, df, 0.0) < upper_p:
        lower = 0.0
    else:
        lower = bound(root(upper_p, chi2))
    top = max(n, 4.0 * chi2)
    if df < 1 or _noncentral_cdf(chi2, df, top) > lower_p or _noncentral_cdf(chi2, df, 0.0) < lower_p:
        upper = 0.0
    else:
        upper = bound(root(lower_p, top))
    return lower, upper


def rmsea_pclose(chi2: float, df: int, n: int, rmsea0: float = 0.05) -> float:
    """Probability that the RMSEA is at most ``rmsea0`` (Stata's pclose, lavaan's ``rmsea.pvalue``).

    .. math:: 1 - P\\left(\\chi^2_{df}(N\\,df\\,\\mathrm{RMSEA}_0^2) \\le \\chi^2\\right)
    """
    return float(stats.ncx2.sf(chi2, df, n * df * rmsea0 ** 2)) if df > 0 else np.nan


def cfi(chi2: float, df: int, baseline_chi2: float, baseline_df: int) -> float:
    """Comparative fit index, as lavaan computes it.

    .. math:: 1 - \\frac{\\max(\\chi^2 - df, 0)}{\\max(\\chi^2 - df, \\chi^2_b - df_b, 0)},
              \\qquad 1 \\text{ when the denominator is } 0.
    """
    misfit = max(chi2 - df, 0.0)
    worst = max(chi2 - df, baseline_chi2 - baseline_df, 0.0)
    return 1.0 if worst <= _ALL_EQUAL else 1.0 - misfit / worst


def tli(chi2: float, df: int, baseline_chi2: float, baseline_df: int) -> float:
    """Tucker-Lewis index, as lavaan computes it (not truncated at 1).

    .. math:: 1 - \\frac{(\\chi^2 - df)\\, df_b}{(\\chi^2_b - df_b)\\, df}, \\qquad 1 \\text{ when } df = 0.
    """
    denominator = (baseline_chi2 - baseline_df) * df
    if df > 0 and denominator != 0:
        return 1.0 - (chi2 - df) * baseline_df / denominator
    return 1.0


def goodness_of_fit(results) -> GoodnessOfFit:
    """Fit statistics of a fitted wide model against its saturated and baseline models.

    The statistics are those of the wide model, one row per top-level cluster (``N`` = the
    number of clusters), as lavaan's ``fitMeasures`` gives them for
    ``sem(model.to_lavaan(), data = model.wide_data(fill_absent_covariates = TRUE),
    missing = "ml", fixed.x = TRUE)``:

    .. math::

        \\chi^2 = 2 (l_{sat} - l), \\quad df = P (1 + Q) + P (P + 1)/2 - k, \\qquad
        \\chi^2_b = 2 (l_{sat} - l_{base}), \\quad df_b = P Q + P (P - 1)/2

    with ``P`` positions, ``Q`` wide covariates (``Q`` counted by the rank of the intercept
    and covariates, less 1, when wide covariates repeat) and ``k`` free parameters;
    :func:`rmsea` (``N``, not ``N - 1``), :func:`rmsea_interval` (90%), :func:`rmsea_pclose`,
    :func:`cfi`, :func:`tli` and :func:`srmr` of the H1 moments (the saturated model's) against
    the model's. AIC and BIC are the results' (BIC with ``N`` = clusters), the same as
    lavaan's: both count ``k`` parameters and the log-likelihood of the outcomes given the
    covariates.

    Raises
    ------
    ValueError, NotImplementedError
        See :func:`wide_data_of` and :func:`fit_saturated`.
    """
    data = wide_data_of(results)
    saturated = fit_saturated(data)
    llf_baseline, k_baseline = fit_independence(data)
    model = results.model
    n = int(results.nobs)
    llf = float(results.llf)
    chi2 = max(2.0 * (saturated.llf - llf), 0.0)
    df = saturated.n_params - len(results.params)
    baseline_chi2 = max(2.0 * (saturated.llf - llf_baseline), 0.0)
    baseline_df = saturated.n_params - k_baseline

    x_mean = data.covariates.mean(0)
    x_cov = (data.covariates - x_mean).T @ (data.covariates - x_mean) / n
    values = dict(zip(model.plan.labels, np.asarray(results.params)))
    implied = _joint_moments(*implied_moments(_wide_table(model), values, data), x_mean, x_cov)
    sample = _joint_moments(saturated.coef, saturated.cov, x_mean, x_cov)
    lower, upper = rmsea_interval(chi2, df, n)
    return GoodnessOfFit(
        chi2=chi2, df=df, pvalue=float(stats.chi2.sf(chi2, df)) if df > 0 else np.nan,
        baseline_chi2=baseline_chi2, baseline_df=baseline_df,
        baseline_pvalue=float(stats.chi2.sf(baseline_chi2, baseline_df)),
        rmsea=rmsea(chi2, df, n), rmsea_ci_lower=lower, rmsea_ci_upper=upper, rmsea_pvalue=rmsea_pclose(chi2, df, n),
        cfi=cfi(chi2, df, baseline_chi2, baseline_df), tli=tli(chi2, df, baseline_chi2, baseline_df),
        srmr=srmr(*sample, *implied), aic=float(results.aic), bic=float(results.bic), nobs=n, llf=llf,
        llf_saturated=saturated.llf, llf_baseline=llf_baseline, cluster_level=model.layout.level_names[0],
        complete=data.complete,
    )
