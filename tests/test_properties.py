"""Property-based checks on random nested designs.

Every design is drawn at random: 1 to 60 top-level clusters with 1 to 6 children per unit
at every level (separate cases go to 200 clusters with few children, and to 10 children
per unit in a few clusters), two or three grouping levels
(``(1|k/j)`` or ``(1|k/j/l)``), one or two covariates, and random missingness (rows
deleted, or their outcome or a covariate set to NaN so that the model drops them). The
outcome is simulated with fixed effects in [-3, 3] and variances in [0.05, 5]; the
likelihood is evaluated at other parameters drawn from the same ranges.

The properties:

1. the log-likelihood equals statsmodels ``MixedLM``'s profiled log-likelihood (ML and
   REML) and a dense multivariate-normal evaluation (ML and REML);
2. the analytic score (ML and REML) equals central finite differences of ``loglike``;
3. the fit is invariant to the order of the rows and to how ids are coded, and scales
   with the outcome;
4. a cluster whose outcomes are all missing changes nothing but the row accounting.

Properties 1 and 2 hold for every design. Properties 3 and 4 compare two optimisations,
so they are restricted (with ``assume``) to designs in which every variance is identified.

The numbers of examples keep the file to a few seconds; set ``PROPERTY_EXAMPLES=10`` (a
multiplier) for a longer search.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import sm_multisem as sms
from dense_reference import dense_covariances, dense_loglike
from mixedlm_reference import mixedlm_profiled_loglike

LEVEL_COLUMNS = ("k", "j", "l")
LOG_2PI = np.log(2.0 * np.pi)
EXAMPLES = float(os.environ.get("PROPERTY_EXAMPLES", "1"))


def examples(n: int) -> int:
    """Number of generated cases of a test, scaled by ``PROPERTY_EXAMPLES``."""
    return max(1, round(n * EXAMPLES))


variance_values = st.floats(0.05, 5.0, allow_nan=False, allow_infinity=False)
fixed_values = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------- designs
@dataclass(frozen=True)
class Design:
    """A random nested data set, the formula to fit it, and a parameter point to evaluate."""

    data: pd.DataFrame  # includes the rows the model drops (NaN outcome or covariate)
    formula: str
    ids: tuple[str, ...]  # grouping columns, top first
    covariates: tuple[str, ...]
    params: np.ndarray  # an evaluation point: fixed effects, then variances (levels, residual)

    def model(self, data: pd.DataFrame | None = None) -> sms.MultilevelSEM:
        return sms.MultilevelSEM.from_formula(self.formula, self.data if data is None else data)

    def unbounded(self) -> bool:
        """The outcome lies in the span of the covariates and the lowest units, some unit holding
        several rows: the residual variance can vanish and the likelihood has no maximum."""
        used = self.used()
        lowest = used.groupby(list(self.ids)).ngroup().to_numpy()
        Z = (lowest[:, None] == np.arange(lowest.max() + 1)[None, :]).astype(float)
        X = np.column_stack([np.ones(len(used)), used[list(self.covariates)].to_numpy(), Z])
        spanned = np.linalg.matrix_rank(np.column_stack([X, used["y"]])) == np.linalg.matrix_rank(X)
        return bool(spanned and len(used) > Z.shape[1])

    def model_or_refusal(self) -> sms.MultilevelSEM | None:
        """The model, or None when the package refuses an unbounded likelihood (checked here)."""
        try:
            return self.model()
        except ValueError as err:
            if "residual variance is not identified" not in str(err):
                raise
            assert self.unbounded(), str(err)
            return None

    def used(self) -> pd.DataFrame:
        """The rows the model uses."""
        return self.data.dropna(subset=["y", *self.covariates])

    def identified(self) -> bool:
        """Every variance is identified by the rows used.

        With ``Z_0, Z_1, ...`` the indicators of the units of every grouping level (top
        first) and ``Z_L = I`` the observations, each level must add to the column space of
        ``[X, Z_l]``: ``rank[X, Z_0] > rank X`` (a variance of the top level), ``rank[X, Z_l]
        > rank[X, Z_{l-1}]`` (one of level ``l``), and ``n > rank[X, Z_{L-1}]`` (the residual).
        Otherwise two variances are confounded, or the likelihood is unbounded.
        """
        used = self.used()
        X = np.column_stack([np.ones(len(used)), used[list(self.covariates)].to_numpy()])
        ranks = [np.linalg.matrix_rank(X)]
        for depth in range(1, len(self.ids) + 1):
            unit = used.groupby(list(self.ids[:depth])).ngroup().to_numpy()
            within = X - pd.DataFrame(X).groupby(unit).transform("mean").to_numpy()
            ranks.append(unit.max() + 1 + np.linalg.matrix_rank(within))
        ranks.append(len(used))
        return bool(np.all(np.diff(ranks) > 0))


def _children(rng, n_parents: int, low: int, high: int) -> np.ndarray:
    return rng.integers(low, high + 1, size=n_parents)


@st.composite
def designs(draw, min_clusters: int = 1, max_clusters: int = 60, max_children: int = 6):
    n_levels = draw(st.sampled_from([2, 3]))
    n_clusters = draw(st.integers(min_clusters, max_clusters))
    # children per unit, level by level below the top (the last: observations per lowest unit)
    ranges = []
    for _ in range(n_levels):
        low = draw(st.integers(1, max_children))
        ranges.append((low, draw(st.integers(low, max_children))))
    n_cov = draw(st.sampled_from([1, 2]))
    missing = draw(st.sampled_from([0.0, 0.1, 0.3, 0.6]))
    beta = np.array(draw(st.lists(fixed_values, min_size=n_cov + 1, max_size=n_cov + 1)))
    sd = np.sqrt(draw(st.lists(variance_values, min_size=n_levels + 1, max_size=n_levels + 1)))
    params = np.r_[draw(st.lists(fixed_values, min_size=n_cov + 1, max_size=n_cov + 1)),
                   draw(st.lists(variance_values, min_size=n_levels + 1, max_size=n_levels + 1))]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    # ids: unit u of every level is a slot (1-based) inside its parent; ids repeat across parents
    parent = np.arange(n_clusters)
    columns = {"k": parent + 1}
    unit_index = [np.arange(n_clusters)]  # per row of the current level: unit index at each level
    for depth, (low, high) in enumerate(ranges):
        counts = _children(rng, len(parent), low, high)
        child_parent = np.repeat(np.arange(len(parent)), counts)
        slot = np.arange(len(child_parent)) - np.repeat(np.cumsum(counts) - counts, counts)
        columns = {name: values[child_parent] for name, values in columns.items()}
        unit_index = [u[child_parent] for u in unit_index]
        if depth < n_levels - 1:
            columns[LEVEL_COLUMNS[depth + 1]] = slot + 1
            unit_index.append(np.arange(len(child_parent)))
        parent = child_parent
    if len(parent) < n_cov + 2:  # more rows than fixed effects: top up the first lowest unit
        rows = np.r_[np.arange(len(parent)), np.zeros(n_cov + 2 - len(parent), dtype=int)]
        columns = {name: values[rows] for name, values in columns.items()}
        unit_index = [u[rows] for u in unit_index]
        parent = parent[rows]
    n = len(parent)
    frame = pd.DataFrame(columns)
    y = np.zeros(n)
    for level, units in enumerate(unit_index):
        y += rng.normal(scale=sd[level], size=units.max() + 1)[units]
    covariates = tuple(f"x{i + 1}" for i in range(n_cov))
    for i, name in enumerate(covariates):
        frame[name] = rng.normal(loc=rng.uniform(-2, 2), scale=rng.uniform(0.5, 2), size=n)
        y += beta[i + 1] * frame[name].to_numpy()
    frame["y"] = beta[0] + y + rng.normal(scale=sd[-1], size=n)

    # missingness: delete the row, or blank its outcome or a covariate
    lost = rng.uniform(size=n) < missing
    short = n_cov + 2 - (~lost).sum()  # keep more rows than fixed effects
    if short > 0:
        lost[rng.permutation(np.flatnonzero(lost))[:short]] = False
    how = rng.integers(0, 3, size=n)
    frame.loc[lost & (how == 1), "y"] = np.nan
    frame.loc[lost & (how == 2), covariates[-1]] = np.nan
    frame = frame[~(lost & (how == 0))]
    frame = frame.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)

    ids = LEVEL_COLUMNS[:n_levels]
    formula = f"y ~ {' + '.join(covariates)} + (1|{'/'.join(ids)})"
    return Design(frame, formula, ids, covariates, params)


# ---------------------------------------------------------------------------- helpers
def dense_restricted_loglike(model, params) -> float:
    """REML log-likelihood from dense covariance matrices, cluster by cluster."""
    y = model.model_data.endog[model.layout.order]
    X = model.model_data.exog[model.layout.order]
    n, p = X.shape
    logdet, xvx, xvy, yvy = 0.0, np.zeros((p, p)), np.zeros(p), 0.0
    for rows, sigma in dense_covariances(model, params):
        chol = np.linalg.cholesky(sigma)
        xw, yw = np.linalg.solve(chol, X[rows]), np.linalg.solve(chol, y[rows])
        logdet += 2.0 * np.log(np.diag(chol)).sum()
        xvx += xw.T @ xw
        xvy += xw.T @ yw
        yvy += yw @ yw
    beta = np.linalg.solve(xvx, xvy)
    quad = yvy - xvy @ beta
    return -0.5 * ((n - p) * LOG_2PI + logdet + np.linalg.slogdet(xvx)[1] + quad)


def central_gradient(f, x: np.ndarray) -> np.ndarray:
    """Central differences with Richardson extrapolation (error O(h^4))."""
    grad = np.empty(len(x))
    for i in range(len(x)):
        h = 1e-4 * max(abs(x[i]), 0.05)
        e = np.zeros(len(x))
        e[i] = h
        d1 = (f(x + e) - f(x - e)) / (2 * h)
        d2 = (f(x + 2 * e) - f(x - 2 * e)) / (4 * h)
        grad[i] = (4 * d1 - d2) / 3
    return grad


def fit(model, reml: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(reml=reml)


def assert_close(actual, desired, rtol, atol):
    """``|actual - desired| <= atol + rtol |desired|`` elementwise, ``atol`` an array."""
    bad = ~(np.abs(actual - desired) <= atol + rtol * np.abs(desired))
    assert not bad.any(), (f"entries {np.flatnonzero(bad)} differ: actual {actual!r}, desired {desired!r}, "
                           f"difference {actual - desired!r}, allowed {atol + rtol * np.abs(desired)!r}")


def assert_same_fit(first, second, *, beta_factor=1.0, var_factor=1.0, llf_shift=0.0, rtol=1e-8, se_share=1e-5):
    """Two fits agree: fixed effects (times beta_factor), variances (times var_factor), llf (+ llf_shift).

    Estimates agree to ``rtol`` relative to the size of their block (so that a variance near 0 is
    compared on the scale of the others), or to ``se_share`` of their standard error, whichever is
    larger. The second allowance is for variances the data barely determine: the optimizer stops
    once the gradient of the profiled deviance is below 1e-7, which on a flat deviance (a few
    clusters, a large variance ratio) leaves a relative error of a few 1e-8 in that variance and
    so differs between two optimisations of the same function. The llf is compared at ``rtol``.
    """
    plan = first.model.plan
    p1, p2 = np.asarray(first.params), np.asarray(second.params)
    assert list(first.model.param_names) == list(second.model.param_names)
    b1, v1 = plan.split(p1)
    b2, v2 = plan.split(p2)
    se_b, se_v = plan.split(np.nan_to_num(np.asarray(first.bse, dtype=float), nan=0.0, posinf=0.0))
    beta_scale = np.abs(beta_factor * b1).max() + abs(beta_factor) * np.sqrt(v1.sum())
    assert_close(b2, beta_factor * b1, rtol, np.maximum(rtol * beta_scale, se_share * abs(beta_factor) * se_b))
    assert_close(v2, var_factor * v1, rtol, np.maximum(rtol * var_factor * v1.max(), se_share * var_factor * se_v))
    assert second.llf == pytest.approx(first.llf + llf_shift, rel=rtol, abs=rtol)
    assert second.nobs == first.nobs and second.nobs_long == first.nobs_long


# --------------------------------------------------------------- 1. log-likelihood
def check_loglike(design: Design) -> None:
    model = design.model_or_refusal()
    assume(model is not None)
    params = design.params
    _, variances = model.plan.split(params)
    theta = np.sqrt(variances[:-1] / variances[-1])
    for reml in (False, True):
        ours = -0.5 * model.profiled_deviance(theta, reml=reml)
        theirs = mixedlm_profiled_loglike(model, theta, reml)
        assert ours == pytest.approx(theirs, rel=1e-10, abs=1e-8), (reml, theta)
    assert model.loglike(params) == pytest.approx(dense_loglike(model, params), rel=1e-10, abs=1e-9)
    assert model.loglike(params, reml=True) == pytest.approx(dense_restricted_loglike(model, params),
                                                             rel=1e-10, abs=1e-9)
    # the profiled value is the maximum over the fixed effects and the scale
    assert model.loglike(params) <= -0.5 * model.profiled_deviance(theta) + 1e-9 * abs(model.loglike(params))


@settings(max_examples=examples(80), deadline=None)
@given(design=designs())
def test_loglike_equals_mixedlm_and_dense_normal(design):
    check_loglike(design)


@settings(max_examples=examples(8), deadline=None)
@given(design=designs(min_clusters=100, max_clusters=200, max_children=2))
def test_loglike_equals_mixedlm_and_dense_normal_many_clusters(design):
    check_loglike(design)


@settings(max_examples=examples(12), deadline=None)
@given(design=designs(max_clusters=8, max_children=10))
def test_loglike_equals_mixedlm_and_dense_normal_large_units(design):
    check_loglike(design)


# ------------------------------------------------------------------------- 2. score
@settings(max_examples=examples(80), deadline=None)
@given(design=designs())
def test_score_equals_finite_differences(design):
    model = design.model_or_refusal()
    assume(model is not None)
    params = design.params
    for reml in (False, True):
        def loglike(p):
            return model.loglike(p, reml=reml)

        analytic = model.score(params, reml=reml)
        numeric = central_gradient(loglike, params)
        floor = 1e-7 * (1.0 + abs(loglike(params)))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=floor, err_msg=f"reml={reml}")
        if reml:
            assert np.all(analytic[model.plan.beta_index] == 0.0)


# --------------------------------------------------------------------- 3. invariance
invariance_settings = settings(max_examples=examples(30), deadline=None)


@invariance_settings
@given(design=designs(), reml=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fit_invariant_to_row_order(design, reml, seed):
    assume(design.identified())
    base = fit(design.model(), reml)
    shuffled = design.data.sample(frac=1.0, random_state=np.random.RandomState(seed))
    assert_same_fit(base, fit(design.model(shuffled), reml))
    # nor does the index: unordered labels, some of them repeated
    labels = np.random.default_rng(seed).integers(0, max(len(shuffled) // 2, 1), size=len(shuffled)) * 7 + 3
    assert_same_fit(base, fit(design.model(shuffled.set_axis(labels)), reml))


def recode_ids(data: pd.DataFrame, ids: tuple[str, ...], coding: str, rng) -> pd.DataFrame:
    """The same nesting under other id values."""
    data = data.copy()
    for name in ids:
        values = data[name].to_numpy()
        uniques = np.unique(values)
        permuted = dict(zip(uniques, rng.permutation(uniques) + 1000))  # a permutation, shifted
        if coding == "permuted":
            data[name] = [permuted[v] for v in values]
        elif coding == "strings":
            data[name] = [f"id{permuted[v]}" for v in values]  # sorts differently from the ints
        elif coding == "categorical":
            order = list(rng.permutation([f"c{v}" for v in uniques]))
            data[name] = pd.Categorical([f"c{v}" for v in values], categories=order)
        elif coding != "unique":
            raise AssertionError(coding)
    if coding == "unique":  # ids unique across parents ("2/3") instead of reused inside each parent
        for depth in range(len(ids) - 1, 0, -1):
            data[ids[depth]] = data[list(ids[: depth + 1])].astype(str).agg("/".join, axis=1)
    return data


@invariance_settings
@given(design=designs(), reml=st.booleans(),
       coding=st.sampled_from(["permuted", "strings", "categorical", "unique"]), seed=st.integers(0, 2**32 - 1))
def test_fit_invariant_to_id_coding(design, reml, coding, seed):
    assume(design.identified())
    base = fit(design.model(), reml)
    recoded = recode_ids(design.data, design.ids, coding, np.random.default_rng(seed))
    assert_same_fit(base, fit(design.model(recoded), reml))


@invariance_settings
@given(design=designs(), reml=st.booleans(),
       c=st.floats(0.01, 100.0).flatmap(lambda v: st.sampled_from([v, -v])))
def test_fit_scales_with_the_outcome(design, reml, c):
    assume(design.identified())
    base = fit(design.model(), reml)
    scaled = design.data.assign(y=design.data["y"] * c)
    n = base.nobs_long - (len(design.covariates) + 1 if reml else 0)
    assert_same_fit(base, fit(design.model(scaled), reml), beta_factor=c, var_factor=c * c,
                    llf_shift=-n * np.log(abs(c)))


# ---------------------------------------------------------- 4. an all-missing cluster
@settings(max_examples=examples(30), deadline=None)
@given(design=designs(), n_rows=st.integers(1, 6), reml=st.booleans(),
       blank_also=st.sampled_from(["nothing", "covariate"]), seed=st.integers(0, 2**32 - 1))
def test_cluster_without_outcomes_changes_nothing(design, n_rows, reml, blank_also, seed):
    assume(design.identified())
    rng = np.random.default_rng(seed)
    base_model = design.model()
    base = fit(base_model, reml)
    extra = {name: rng.integers(1, 4, size=n_rows) for name in design.ids[1:]}
    extra[design.ids[0]] = np.full(n_rows, int(design.data[design.ids[0]].max()) + 1)
    for name in design.covariates:
        extra[name] = rng.normal(size=n_rows)
    if blank_also == "covariate":
        extra[design.covariates[0]][0] = np.nan  # counted under the outcome, the first reason
    extra["y"] = np.full(n_rows, np.nan)
    position = int(rng.integers(0, len(design.data) + 1))
    more = pd.concat([design.data.iloc[:position], pd.DataFrame(extra), design.data.iloc[position:]],
                     ignore_index=True)
    model = design.model(more)
    res = fit(model, reml)
    assert_same_fit(base, res, rtol=1e-12, se_share=0.0)
    pd.testing.assert_frame_equal(res.groups, base.groups)
    assert model.nobs == base_model.nobs and model.nobs_long == base_model.nobs_long
    before, after = base_model.row_accounting, model.row_accounting
    assert after.n_input == before.n_input + n_rows
    assert after.n_used == before.n_used
    assert after.n_dropped == before.n_dropped + n_rows
    assert after.dropped.get("missing outcome y", 0) == before.dropped.get("missing outcome y", 0) + n_rows
    assert {k: v for k, v in after.dropped.items() if k != "missing outcome y"} == \
        {k: v for k, v in before.dropped.items() if k != "missing outcome y"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = str(res.summary())
    text = " ".join(text.split())  # the summary wraps long notes
    assert f"Rows: {after.describe()}." in text
    assert f"{after.n_used:,} of {after.n_input:,} rows used; dropped {after.n_dropped:,} (" in text
    assert f"missing outcome y: {after.dropped['missing outcome y']:,}" in text
