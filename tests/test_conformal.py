"""MAFRegressor's split-conformal intervals on a known heteroscedastic, heavy-tailed model."""

import numpy as np
import pytest

from skflow import MAFRegressor


def _data(n, seed):
    rng = np.random.RandomState(seed)
    x = rng.uniform(-2, 2, (n, 1))
    return x, x[:, 0] + (0.2 + np.abs(x[:, 0])) * rng.standard_t(3, n)


@pytest.mark.parametrize("base", ["normal", "made_mog"])
def test_conformal_intervals_cover_as_promised(base):
    X, y = _data(3000, 0)
    X_test, y_test = _data(4000, 1)
    reg = MAFRegressor(base=base, n_flows=2, hidden_layer_sizes=(32, 32), max_iter=20, random_state=0).fit(X, y)
    assert reg.interval_scores_.shape == (300,) and np.all(np.diff(reg.interval_scores_) >= 0)
    for coverage in (0.8, 0.9):
        lower, upper = reg.predict_interval(X_test, coverage)
        covered = np.mean((y_test >= lower) & (y_test <= upper))
        # 300 calibration rows: the coverage of one calibration is within about 0.03 of its target
        assert coverage - 0.035 <= covered <= coverage + 0.05
    # the intervals follow the spread: wider where |x| is larger
    lower, upper = reg.predict_interval(np.array([[0.0], [1.8]]))
    assert upper[1] - lower[1] > 2 * (upper[0] - lower[0])


def test_conformal_scores_are_the_held_out_cdf_values():
    X, y = _data(1000, 0)
    reg = MAFRegressor(base="normal", n_flows=1, hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    # the level q of a coverage is a held-out score, and the interval is the model's quantiles at 1/2 -+ q
    q = reg.interval_scores_[int(np.ceil(101 * 0.9)) - 1]
    lower, upper = reg.predict_interval(X[:5], 0.9)
    expected = reg.predict_quantiles(X[:5], [0.5 - q, 0.5 + q])
    np.testing.assert_allclose(lower, expected[:, 0])
    np.testing.assert_allclose(upper, expected[:, 1])
    model = reg.predict_quantiles(X[:5], [0.05, 0.95])
    np.testing.assert_allclose(np.c_[reg.predict_interval(X[:5], 0.9, conformal=False)], model)


def test_too_few_held_out_rows_give_unbounded_intervals_and_no_calibration_without_them():
    X, y = _data(100, 0)
    reg = MAFRegressor(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    lower, upper = reg.predict_interval(X[:3], 0.99)  # 10 held-out rows cannot promise 0.99
    assert np.all(np.isneginf(lower)) and np.all(np.isposinf(upper))
    plain = MAFRegressor(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, early_stopping=False,
                         random_state=0).fit(X, y)
    assert plain.interval_scores_ is None
    two = MAFRegressor(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, early_stopping=False,
                       random_state=0).fit(X, np.c_[y, y])
    assert two.interval_scores_ is None and two.predict_interval(X[:3])[0].shape == (3, 2)


def _two_targets(n, seed):
    x, y = _data(n, seed)
    rng = np.random.RandomState(seed + 100)
    return x, np.c_[y, 0.5 * y + x[:, 0] ** 2 + (0.3 + 0.3 * np.abs(x[:, 0])) * rng.normal(size=n)]


def test_several_targets_get_a_box_that_holds_all_of_them_as_promised():
    X, y = _two_targets(3000, 0)
    X_test, y_test = _two_targets(4000, 1)
    reg = MAFRegressor(n_flows=2, hidden_layer_sizes=(32, 32), max_iter=20, random_state=0).fit(X, y)
    assert reg.interval_scores_.shape == (300,)
    for coverage in (0.8, 0.9):
        lower, upper = reg.predict_interval(X_test, coverage)
        inside = (y_test >= lower) & (y_test <= upper)
        # both targets at once, as promised (300 calibration rows: within about 0.03)
        assert coverage - 0.035 <= inside.all(axis=1).mean() <= coverage + 0.05
        # each target alone is held more often than both
        assert np.all(inside.mean(axis=0) > inside.all(axis=1).mean())
