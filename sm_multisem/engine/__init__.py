"""The normal likelihoods, from per-unit sums; nothing here knows of structural equation models."""
