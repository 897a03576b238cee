"""A correlation matrix by its canonical partial correlations, and fits of free sibling pairs on ragged data."""

import warnings

import numpy as np
import pytest

import sm_multisem as sms
from sm_multisem.fit.partial_correlations import correlation_gradient, correlation_matrix, partial_correlations


@pytest.mark.parametrize("size", [2, 3, 6])
def test_every_point_of_the_box_is_a_correlation_matrix_and_the_map_inverts(size):
    rng = np.random.default_rng(size)
    z = rng.uniform(-0.99, 0.99, size * (size - 1) // 2)
    matrix, factor = correlation_matrix(z, size)
    np.testing.assert_allclose(np.diag(matrix), 1.0, rtol=1e-14)
    assert np.linalg.eigvalsh(matrix).min() > 0
    np.testing.assert_allclose(factor @ factor.T, matrix, rtol=1e-14)
    np.testing.assert_allclose(partial_correlations(matrix, 0.999), z, atol=1e-10)


def test_gradient_equals_finite_differences():
    size = 5
    rng = np.random.default_rng(3)
    z = rng.uniform(-0.9, 0.9, size * (size - 1) // 2)
    weights = rng.normal(size=(size, size))

    def f(values):
        return float(np.sum(weights * correlation_matrix(values, size)[0]))

    lower = np.tril_indices(size, -1)
    gradient_r = (weights + weights.T)[lower]  # one entry per pair, both sides
    exact = correlation_gradient(z, correlation_matrix(z, size)[1], gradient_r)
    step = 1e-6
    numeric = [(f(z + step * e) - f(z - step * e)) / (2 * step) for e in np.eye(len(z))]
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-8)


def test_a_matrix_that_is_not_definite_is_factored_as_far_as_it_is():
    matrix = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])
    z = partial_correlations(matrix, 0.999)
    assert np.all(np.abs(z) <= 0.999)
    assert np.linalg.eigvalsh(correlation_matrix(z, 3)[0]).min() > 0


def test_free_pairs_on_ragged_data_end_in_a_fit_not_an_error():
    """Districts of 5-15 schools, a free covariance for every pair of public slots: the likelihood rises
    toward the edge of the definite covariances, and the fit ends there with a warning, never inside the
    engine with an error; the relaxation fits at least as well as the model it relaxes."""
    data = sms.simulate_districts(10_000, 1)
    rng = np.random.default_rng(1)
    school = data.groupby(["k", "j"]).ngroup().to_numpy()
    data["type"] = rng.choice(["pub", "prv", "chr"], size=school.max() + 1)[school]
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    standard = model.fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.relax_covariance("k:j", by="type", among=["pub"]).fit()
    assert np.isfinite(res.llf) and res.llf >= standard.llf
    assert np.isfinite(res.model.loglike(np.asarray(res.params)))
