"""Centring of the data columns, so that the quadratic forms of the likelihood keep their digits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NO_CENTRING", "Centring"]


@dataclass(frozen=True)
class Centring:
    """Columns centred for the likelihood, and the map between its fixed effects and the caller's.

    ``C = W' Sigma^{-1} W`` of raw columns holds terms in the columns' means squared: with
    ``y`` near 1e4 or a covariate near 2000 (a year), the quadratic form ``r' Sigma^{-1} r``
    is a difference of numbers 1e8 times larger, and six or more digits of the log-likelihood
    are lost. When the constant is in the span of the design, ``X c = 1`` (a column of ones,
    ``c = e_0``; or indicators of labels that cover every row, ``0 + C(type)`` or
    ``relax_intercept``, ``c`` their sum), every other column ``j`` (and ``y``) is replaced by
    ``w_j - mean_j`` times that constant, which changes only the coefficients of those columns:

    .. math:: \\beta^{int} = \\beta + c (\\bar x'\\beta - \\bar y),

    with ``mean`` 0 on the columns of ``c`` (so ``mean' c = 0``); a linear map, and the score and
    information are mapped back by its transpose.

    Attributes
    ----------
    direction : ndarray
        ``c`` (0/1 entries), or empty: no centring.
    means : ndarray
        Means of the covariates (0 on the columns of ``c``), then of the outcome.
    """

    direction: np.ndarray
    means: np.ndarray

    @classmethod
    def of(cls, exog: np.ndarray, endog: np.ndarray) -> Centring:
        direction = _constant_direction(exog)
        if direction is None:
            return NO_CENTRING
        means = np.r_[exog.mean(0), endog.mean()]
        means[:-1][direction > 0] = 0.0
        return cls(direction, means)

    @property
    def centred(self) -> bool:
        return len(self.direction) > 0

    def columns(self, exog: np.ndarray, endog: np.ndarray, sort_rows) -> np.ndarray:
        """``[X, y]`` centred, column-major and sorted by ``sort_rows`` (no transposed copy of a
        million rows)."""
        columns = np.empty((len(endog), exog.shape[1] + 1), order="F")
        columns[:, :-1], columns[:, -1] = exog, endog
        if self.centred:
            columns -= self.means
        return sort_rows(columns)

    def internal_beta(self, beta: np.ndarray) -> np.ndarray:
        """The fixed effects of the centred columns."""
        beta = np.array(beta, dtype=float)
        if self.centred:
            beta += self.direction * (self.means[:-1] @ beta - self.means[-1])
        return beta

    def user_beta(self, internal: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`internal_beta` (``mean' c = 0``: the shift reads the same from both)."""
        beta = np.array(internal, dtype=float)
        if self.centred:
            beta -= self.direction * (self.means[:-1] @ internal - self.means[-1])
        return beta

    def user_gradient(self, gradient: np.ndarray) -> np.ndarray:
        """A gradient over ``[internal beta, variances]`` (last axis) as one over ``[beta, variances]``."""
        if not self.centred:
            return gradient
        gradient = np.array(gradient, dtype=float)
        p = len(self.means) - 1
        gradient[..., :p] += (gradient[..., :p] @ self.direction)[..., None] * self.means[:-1]
        return gradient

    def user_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """A matrix over the internal fixed effects (an information) as one over the caller's: ``T' M T``."""
        return self.user_gradient(self.user_gradient(matrix).T).T

    def user_covariance(self, cov: np.ndarray) -> np.ndarray:
        """The covariance of the internal fixed effects as that of the caller's: ``T^{-1} C T^{-T}``."""
        if not self.centred:
            return cov
        inverse = np.eye(len(cov)) - np.outer(self.direction, self.means[:-1])  # (I + c m')^{-1}, as m'c = 0
        return inverse @ cov @ inverse.T


def _constant_direction(exog: np.ndarray) -> np.ndarray | None:
    """``c`` with ``X c = 1``: a column of ones, else the 0/1 columns when they add up to one in every
    row (the indicators of a label without an intercept); None when neither is there."""
    if not len(exog):
        return None
    direction = np.zeros(exog.shape[1])
    ones = np.flatnonzero(np.all(exog == 1.0, axis=0))
    if len(ones):
        direction[ones[0]] = 1.0
        return direction
    indicators = np.all((exog == 0.0) | (exog == 1.0), axis=0)
    if indicators.sum() < 2 or not np.all(exog[:, indicators].sum(1) == 1.0):
        return None
    direction[indicators] = 1.0
    return direction


#: Columns used as they are.
NO_CENTRING = Centring(np.zeros(0), np.zeros(0))
