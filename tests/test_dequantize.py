"""Columns on a grid: found, dequantised in fit, and the documented scoring convention."""

import numpy as np
import pytest

from skflow import MAFDensity, MAFOutlierDetector
from skflow.preprocessing import grid_steps


def test_grid_steps_finds_constructed_grids():
    rng = np.random.RandomState(0)
    n = 500
    X = np.c_[
        rng.poisson(4, n),  # integer counts
        np.round(rng.normal(170, 8, n), 1),  # one decimal
        25 * rng.randint(100, 140, n),  # a 25-unit grid
        np.log([10.0, 25.0, 50.0, 95.0])[rng.randint(4, size=n)],  # a few values on no grid
        rng.normal(size=n),  # continuous
        np.ones(n),  # constant
    ]
    steps = grid_steps(X)
    assert steps[0] == 1.0 and steps[1] == pytest.approx(0.1) and steps[2] == 25.0
    gaps = np.diff(np.log([10.0, 25.0, 50.0, 95.0]))
    assert steps[3] == pytest.approx(np.median(gaps))
    assert steps[4] == 0.0 and steps[5] == 0.0
    np.testing.assert_array_equal(grid_steps(X.astype(np.float32))[[0, 2, 4]], [1.0, 25.0, 0.0])
    # a one-decimal column whose values hardly repeat is left alone
    assert grid_steps(np.round(rng.normal(0, 100, (300, 1)), 1))[0] == 0.0


def _counts(n, seed):
    rng = np.random.RandomState(seed)
    a = rng.poisson(4, n)
    return np.c_[a, a + rng.poisson(3, n)].astype(float)


def test_density_of_grid_data_sums_to_one_over_the_cells():
    X = _counts(3000, 0)
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=30, random_state=0).fit(X)
    np.testing.assert_array_equal(est.grid_steps_, [1.0, 1.0])
    grid = np.array([[i, j] for i in range(-3, 25) for j in range(-3, 40)], dtype=float)
    # exp(score) * cell size approximates each cell's probability: they sum to about 1
    total = np.exp(est.score_samples(grid)).sum()
    assert 0.9 < total < 1.1
    # and the density between grid values is not far below the density on them
    X_test = _counts(500, 1)
    on, between = est.score_samples(X_test), est.score_samples(X_test + 0.5)
    assert np.median(on - between) < 1.0


def test_dequantize_false_and_warm_start():
    X = _counts(400, 0)
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, dequantize=False, random_state=0).fit(X)
    np.testing.assert_array_equal(est.grid_steps_, [0.0, 0.0])
    det = MAFOutlierDetector(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    np.testing.assert_array_equal(det.grid_steps_, [1.0, 1.0])
    # a warm start dequantises as the first fit did, even on rows that look continuous
    det.set_params(warm_start=True).fit(X + np.random.RandomState(1).uniform(-0.5, 0.5, X.shape))
    np.testing.assert_array_equal(det.grid_steps_, [1.0, 1.0])
    # the same seed, the same noise, the same model
    again = MAFOutlierDetector(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    first = MAFOutlierDetector(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    np.testing.assert_array_equal(again.score_samples(X), first.score_samples(X))


def test_fit_sees_one_step_of_uniform_noise():
    # binary columns: variance 1/4, plus 1/12 from noise of one step
    X = np.random.RandomState(0).randint(0, 2, (4000, 2)).astype(float)
    params = dict(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    noisy = MAFDensity(**params).fit(X)
    plain = MAFDensity(**params, dequantize=False).fit(X)
    np.testing.assert_allclose(noisy.scale_**2, X.var(0) + 1 / 12, atol=0.01)
    np.testing.assert_allclose(plain.scale_**2, X.var(0), atol=1e-6)
