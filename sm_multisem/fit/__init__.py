"""Fitting: the optimizer, the checks before a fit, the covariance of the estimates, GMM."""
