"""Tests and fit indices: score, Wald and LR tests, goodness of fit."""
