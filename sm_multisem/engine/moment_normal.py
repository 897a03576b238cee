"""Gaussian log-likelihoods of independent clusters, from the moments of every cluster.

Whatever the covariance of a cluster is made of, the log-likelihood, its score, the restricted
(REML) log-likelihood and the deviance profiled over the fixed effects and a common scale need
only ``log|Sigma_k|`` and ``C_k = W_k' Sigma_k^{-1} W_k`` (``W = [X, y]``) and their derivatives:
:class:`MomentNormal` computes them all from a subclass's ``moments``. The nested recursion
(:class:`~sm_multisem.engine.likelihood.NestedNormal`), random effects with dense blocks
(:class:`~sm_multisem.engine.effects.EffectsNormal`) and the patterns
(:class:`~sm_multisem.engine.patterns.PatternNormal`) are such subclasses.
"""

from __future__ import annotations

import numpy as np

from .centring import NO_CENTRING, Centring

__all__ = ["MomentNormal", "NotPositiveDefinite"]

_LOG_2PI = np.log(2.0 * np.pi)


class NotPositiveDefinite(ValueError):
    """The covariance of some cluster is not positive definite at the parameters given."""


class MomentNormal:
    """Gaussian log-likelihoods of independent clusters, from their moments.

    Everything here needs of the data only ``log|Sigma_k|`` and ``C_k = W_k' Sigma_k^{-1} W_k``
    (``W = [X, y]``) of every cluster and their derivatives in the variances: a subclass
    provides them as ``moments(variances)`` (an object with ``logdet``, ``cross``,
    ``d_logdet`` and ``gradient(weight)``, as :class:`ClusterMoments`), with the attributes
    ``n_columns``, ``cluster_size``, ``cluster_weights`` and ``weighted_obs``. A "cluster"
    may be any set of independent rows whose moments are summed, such as every cluster
    sharing one missingness pattern (:class:`~sm_multisem.engine.patterns.PatternNormal`).

    The columns may be centred (:attr:`centring`, see :class:`Centring`); every method takes and
    returns the fixed effects of the columns as the caller gave them.
    """

    centring: Centring = NO_CENTRING

    def definite_moments(self, variances: np.ndarray):
        """:meth:`moments`, refused where a cluster's covariance is not positive definite (covariances of
        sibling effects free of any bound can leave it indefinite; every other structure is bounded).

        Raises
        ------
        NotPositiveDefinite
        """
        mom = self.moments(variances)
        if not getattr(mom, "positive", True):
            raise NotPositiveDefinite("the covariance of some cluster is not positive definite at these parameters")
        return mom

    def total(self, per_cluster: np.ndarray) -> np.ndarray:
        """Weighted sum over clusters (the first axis)."""
        # einsum, not tensordot: a BLAS call per evaluation on these small products costs far
        # more than the sum itself (thread start-up, and contention when the cores are busy)
        return np.einsum("k,k...->...", self.cluster_weights, per_cluster)

    # ---------------------------------------------------------- log-likelihoods
    def loglikeobs(self, beta: np.ndarray, variances: np.ndarray) -> np.ndarray:
        """Log-likelihood of every cluster.

        .. math:: l_k = -\\tfrac12 [n_k \\log 2\\pi + \\log|\\Sigma_k| + r_k'\\Sigma_k^{-1} r_k]
        """
        mom = self.definite_moments(variances)
        v = np.append(-self.centring.internal_beta(beta), 1.0)
        quad = np.einsum("i,kij,j->k", v, mom.cross, v)
        return -0.5 * (self.cluster_size * _LOG_2PI + mom.logdet + quad)

    def score_obs(self, beta: np.ndarray, variances: np.ndarray) -> np.ndarray:
        """Score of every cluster with respect to ``[beta, variances]``.

        .. math::

            \\partial l_k/\\partial\\beta = X_k'\\Sigma_k^{-1} r_k, \\qquad
            \\partial l_k/\\partial\\theta = -\\tfrac12[\\partial\\log|\\Sigma_k|
            + r_k'\\,\\partial(\\Sigma_k^{-1})\\, r_k]
        """
        mom = self.definite_moments(variances)
        v = np.append(-self.centring.internal_beta(beta), 1.0)
        p = len(v) - 1
        score_beta = self.centring.user_gradient(mom.cross[:, :p, :] @ v)
        return np.hstack([score_beta, -0.5 * mom.gradient(np.outer(v, v))])

    def restricted_loglike(self, variances: np.ndarray) -> tuple[float, np.ndarray]:
        """REML log-likelihood and its gradient with respect to the variances.

        .. math::

            l_R = -\\tfrac12[(N-p)\\log 2\\pi + \\log|\\Sigma| + \\log|X'\\Sigma^{-1}X|
            + \\hat r'\\Sigma^{-1}\\hat r]
        """
        mom, chol, v, quad = self._pooled_gls(variances)
        p = self.n_columns - 1
        logdet_xx = 2.0 * np.log(np.diag(chol)).sum()
        # d log|X'S^-1 X| + d(r'S^-1 r) in one contraction: A = [[(X'S^-1X)^-1, 0], [0, 0]] + v v'
        weight = _trace_weight(chol) + np.outer(v, v)
        llf = -0.5 * ((self.weighted_obs - p) * _LOG_2PI + self.total(mom.logdet) + logdet_xx + quad)
        grad = -0.5 * self.total(mom.gradient(weight))
        return llf, grad

    def profiled_deviance(self, rel_var: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
        """Deviance with beta and the scale profiled out.

        Parameters
        ----------
        rel_var : ndarray
            Every variance relative to the profiled scale ``sigma^2`` (give the reference
            residual variance as 1).
        reml : bool
            Restricted (REML) instead of maximum-likelihood deviance.

        Returns
        -------
        deviance : float
            ``-2 l`` at the profiled beta and scale.
        gradient : ndarray
            Derivative of the deviance with respect to every entry of ``rel_var``.

        Notes
        -----
        With ``Sigma = sigma^2 V(rho)`` and ``q`` the GLS residual sum of squares in
        the metric ``V^{-1}``, the ML deviance is ``log|V| + N (1 + log(2 pi q / N))``;
        REML adds ``log|X'V^{-1}X|`` and replaces ``N`` by ``N - p``.
        """
        mom, chol, v, quad = self._pooled_gls(rel_var)
        p = self.n_columns - 1
        dof = self.weighted_obs - p if reml else self.weighted_obs
        deviance = self.total(mom.logdet) + dof * (1.0 + np.log(2.0 * np.pi * quad / dof))
        weight = dof / quad * np.outer(v, v)
        if reml:
            deviance += 2.0 * np.log(np.diag(chol)).sum()
            weight += _trace_weight(chol)
        gradient = self.total(mom.gradient(weight))
        return deviance, gradient

    def gls(self, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """GLS estimate of beta, its covariance ``(X'Sigma^{-1}X)^{-1}``, and the quadratic form."""
        _, chol, v, quad = self._pooled_gls(variances)
        return self.centring.user_beta(-v[:-1]), self.centring.user_covariance(_chol_inverse(chol)), quad

    def _pooled_gls(self, variances: np.ndarray):
        """The moments, and from their sum over clusters the GLS fit: the Cholesky factor of
        ``X'Sigma^{-1}X``, ``v = [-beta, 1]`` (internal fixed effects) and ``r'Sigma^{-1}r``."""
        mom = self.definite_moments(variances)
        total = self.total(mom.cross)
        beta, chol = _gls(total)
        v = np.append(-beta, 1.0)
        return mom, chol, v, float(v @ total @ v)

    def fixed_information(self, variances: np.ndarray) -> np.ndarray:
        """``X'Sigma^{-1}X``: the information of the fixed effects (minus the Hessian of the loglike)."""
        p = self.n_columns - 1
        return self.centring.user_matrix(self.total(self.definite_moments(variances).cross)[:p, :p])

    def logdet_gradient(self, variances: np.ndarray, restricted: bool = False) -> np.ndarray:
        """Derivative of ``log|Sigma|`` (plus ``log|X'Sigma^{-1}X|`` if restricted) in every variance.

        Because ``Sigma`` is linear in the variances, minus one half of the Jacobian of this
        gradient is the expected information of the variances (ML, or REML if restricted):
        :math:`\\tfrac12 \\operatorname{tr}(P \\Sigma_i P \\Sigma_j)`.
        """
        mom = self.definite_moments(variances)
        if not restricted:
            return self.total(mom.d_logdet)
        _, chol = _gls(self.total(mom.cross))
        return self.total(mom.gradient(_trace_weight(chol)))


def _gls(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve the GLS normal equations from the pooled cross-product ``[X y]' Sigma^{-1} [X y]``."""
    p = total.shape[0] - 1
    chol = np.linalg.cholesky(total[:p, :p])
    z = np.linalg.solve(chol, total[:p, p])
    return np.linalg.solve(chol.T, z), chol


def _trace_weight(chol: np.ndarray) -> np.ndarray:
    """``A`` with ``tr(A dC) = tr((X'S^-1X)^-1 d(X'S^-1X))``: the inverse padded with zeros."""
    p = chol.shape[0]
    weight = np.zeros((p + 1, p + 1))
    weight[:p, :p] = _chol_inverse(chol)
    return weight


def _chol_inverse(chol: np.ndarray) -> np.ndarray:
    inv_l = np.linalg.inv(chol)
    return inv_l.T @ inv_l
