"""Full-information ML of multivariate normal rows with missing values, by missingness pattern.

Row ``i`` has outcomes ``y_i`` (some missing) and exogenous data ``z_i`` (complete), and

.. math:: y_i \\sim N(M z_i, \\Sigma);

each row contributes the density of its observed outcomes only (FIML, Stata's
``method(mlmv)``). This module knows nothing about structural equation models: it takes
``M`` and ``Sigma`` and returns the log-likelihood and its derivatives with respect to them.

Rows that share a pattern of observed outcomes share ``Sigma_o``; over the rows of a
pattern the log-likelihood depends on the data only through the cross-products of
``[y_o, z]``, summed once here. An evaluation then costs O(patterns x p^3), whatever the
number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PatternedNormal"]

_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class _Pattern:
    observed: np.ndarray  # indices of the observed outcomes
    rows: np.ndarray  # the rows with this pattern
    count: float  # weighted number of rows
    cross: np.ndarray  # weighted sum of [y_o, z][y_o, z]'


class PatternedNormal:
    """Rows grouped by their pattern of observed outcomes.

    Parameters
    ----------
    outcomes : ndarray, shape (n, p)
        NaN where an outcome is missing. Rows with no observed outcome contribute nothing.
    exogenous : ndarray, shape (n, q)
        Complete; its first column is usually the constant.
    weights : ndarray, shape (n,), optional
        Sampling weights of the rows (pseudo-likelihood).
    """

    def __init__(self, outcomes: np.ndarray, exogenous: np.ndarray, weights: np.ndarray | None = None):
        outcomes = np.asarray(outcomes, dtype=float)
        exogenous = np.asarray(exogenous, dtype=float)
        if not np.isfinite(exogenous).all():
            raise ValueError("exogenous data must be complete and finite")
        self.n_rows, self.p = outcomes.shape
        self.q = exogenous.shape[1]
        self.weights = np.ones(self.n_rows) if weights is None else np.asarray(weights, dtype=float)
        present = ~np.isnan(outcomes)
        self._outcomes = np.where(present, outcomes, 0.0)
        self._exogenous = exogenous
        codes, pattern_of_row = np.unique(present, axis=0, return_inverse=True)
        self.pattern_of_row = pattern_of_row.ravel()
        self.patterns: list[_Pattern] = []
        order = np.argsort(self.pattern_of_row, kind="stable")
        bounds = np.searchsorted(self.pattern_of_row[order], np.arange(len(codes) + 1))
        for code, start, stop in zip(codes, bounds[:-1], bounds[1:]):
            observed = np.flatnonzero(code)
            if not len(observed):
                continue
            rows = order[start:stop]
            data = np.hstack([self._outcomes[np.ix_(rows, observed)], exogenous[rows]])
            w = self.weights[rows]
            self.patterns.append(_Pattern(observed, rows, float(w.sum()), (data * w[:, None]).T @ data))
        self.n_observed = float(sum(pt.count * len(pt.observed) for pt in self.patterns))

    def loglike(self, mean: np.ndarray, sigma: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Log-likelihood and its derivatives in ``M`` (p, q) and ``Sigma`` (p, p).

        Returns ``(llf, d_mean, d_sigma)`` with ``d llf = tr(d_mean' dM) + tr(d_sigma dSigma)``
        for any symmetric ``dSigma``. ``llf`` is ``-inf`` (and the derivatives are NaN) where a
        pattern's ``Sigma_o`` is not positive definite.
        """
        llf = 0.0
        d_mean = np.zeros((self.p, self.q))
        d_sigma = np.zeros((self.p, self.p))
        for pattern in self.patterns:
            o, k = pattern.observed, len(pattern.observed)
            try:
                chol = np.linalg.cholesky(sigma[np.ix_(o, o)])
            except np.linalg.LinAlgError:
                return -np.inf, np.full_like(d_mean, np.nan), np.full_like(d_sigma, np.nan)
            inverse = _chol_inverse(chol)
            # residual scatter sum (y - M z)(y - M z)' from the cross-products of [y_o, z]
            coef = np.vstack([np.eye(k), -mean[o].T])  # [y_o, z] @ coef = residual
            scatter = coef.T @ pattern.cross @ coef
            logdet = 2.0 * np.log(np.diag(chol)).sum()
            llf -= 0.5 * (pattern.count * (k * _LOG_2PI + logdet) + np.sum(inverse * scatter))
            inv_scatter_inv = inverse @ scatter @ inverse
            d_sigma[np.ix_(o, o)] += -0.5 * (pattern.count * inverse - inv_scatter_inv)
            # sum (y - M z) z' = cross[y, z] - M_o cross[z, z]
            resid_z = pattern.cross[:k, k:] - mean[o] @ pattern.cross[k:, k:]
            d_mean[o] += inverse @ resid_z
        return llf, d_mean, d_sigma

    def loglikeobs(self, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Log-likelihood of every row (unweighted)."""
        return self._per_row(mean, sigma, derivatives=False)[0]

    def derivatives_obs(self, mean: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives of every row's log-likelihood in ``M`` and ``Sigma``: (n, p, q), (n, p, p)."""
        _, d_mean, d_sigma = self._per_row(mean, sigma, derivatives=True)
        return d_mean, d_sigma

    def _per_row(self, mean, sigma, derivatives: bool):
        llf = np.zeros(self.n_rows)
        d_mean = np.zeros((self.n_rows, self.p, self.q)) if derivatives else None
        d_sigma = np.zeros((self.n_rows, self.p, self.p)) if derivatives else None
        for pattern in self.patterns:
            o, rows = pattern.observed, pattern.rows
            chol = np.linalg.cholesky(sigma[np.ix_(o, o)])
            inverse = _chol_inverse(chol)
            z = self._exogenous[rows]
            resid = self._outcomes[np.ix_(rows, o)] - z @ mean[o].T
            scaled = resid @ inverse
            logdet = 2.0 * np.log(np.diag(chol)).sum()
            llf[rows] = -0.5 * (len(o) * _LOG_2PI + logdet + np.einsum("ij,ij->i", scaled, resid))
            if derivatives:
                d_mean[np.ix_(rows, o)] = scaled[:, :, None] * z[:, None, :]
                outer = scaled[:, :, None] * scaled[:, None, :]
                d_sigma[np.ix_(rows, o, o)] = -0.5 * (inverse[None] - outer)
        return llf, d_mean, d_sigma

    def expected_information(self, mean: np.ndarray, sigma: np.ndarray, d_mean: np.ndarray,
                             d_sigma: np.ndarray) -> np.ndarray:
        """Fisher information of parameters whose derivatives of ``M`` and ``Sigma`` are given.

        .. math::

            I_{ab} = \\sum_g \\tfrac{n_g}{2} \\operatorname{tr}(\\Sigma_o^{-1} \\Sigma_{a,o}
            \\Sigma_o^{-1} \\Sigma_{b,o}) + \\operatorname{tr}(\\Sigma_o^{-1} M_{a,o} Z_g'Z_g M_{b,o}')

        Parameters
        ----------
        d_mean, d_sigma : ndarray
            (k, p, q) and (k, p, p).
        """
        k = len(d_sigma)
        info = np.zeros((k, k))
        for pattern in self.patterns:
            o, n_o = pattern.observed, len(pattern.observed)
            inverse = np.linalg.inv(sigma[np.ix_(o, o)])
            ds = inverse @ d_sigma[:, o][:, :, o]  # (k, o, o)
            info += 0.5 * pattern.count * np.einsum("aij,bji->ab", ds, ds)
            dm = d_mean[:, o]  # (k, o, q)
            zz = pattern.cross[n_o:, n_o:]
            info += np.einsum("aiq,ij,bjr,qr->ab", dm, inverse, dm, zz)
        return info


def _chol_inverse(chol: np.ndarray) -> np.ndarray:
    inv_l = np.linalg.inv(chol)
    return inv_l.T @ inv_l
