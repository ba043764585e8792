"""partial_fit: chunks of rows trained as one pass of fit would train them."""

import copy
import pickle

import numpy as np
import pytest
import torch

from skflow import MAFDensity, MAFOutlierDetector
from skflow.nn import build_maf, train_flow

PARAMS = dict(n_flows=2, hidden_layer_sizes=(16,), random_state=0)


def _data(n=2000, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, 3))
    return np.c_[x[:, 0], x[:, 1] + x[:, 0] ** 2, x[:, 2]]


def test_chunks_with_resumed_moments_equal_one_pass_over_all_rows():
    x = torch.from_numpy(_data(1024))
    flow = build_maf(3, n_flows=2, hidden_sizes=(16,), generator=torch.Generator().manual_seed(0),
                     dtype=torch.float64)
    whole, chunked = copy.deepcopy(flow), copy.deepcopy(flow)
    settings = dict(batch_size=128, max_epochs=1, shuffle=False, tune_threads=False, learning_rate=1e-2)
    train_flow(whole, x, **settings)
    moments = None
    for chunk in torch.split(x, 256):  # two batches each
        moments = train_flow(chunked, chunk, optimizer_moments=moments, **settings).optimizer_moments
    for a, b in zip(whole.state_dict().values(), chunked.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # without the moments each chunk restarts Adam: a different model
    restarted = copy.deepcopy(flow)
    for chunk in torch.split(x, 256):
        train_flow(restarted, chunk, **settings)
    assert not all(torch.allclose(a, b) for a, b in zip(whole.state_dict().values(), restarted.state_dict().values()))


def test_first_partial_fit_is_one_epoch_of_fit():
    X = _data()
    one_epoch = MAFDensity(**PARAMS, max_iter=1, early_stopping=False, average_decay=None).fit(X)
    partial = MAFDensity(**PARAMS).partial_fit(X)
    np.testing.assert_array_equal(partial.score_samples(X[:50]), one_epoch.score_samples(X[:50]))
    assert partial.n_iter_ == 1 and partial.validation_scores_ is None
    assert partial.start_mixture_ == one_epoch.start_mixture_


def test_later_calls_continue_the_model_and_its_optimiser():
    X = _data()
    first, second = X[:1000], X[1000:] * 1.5 + 3.0
    model = MAFDensity(**PARAMS, init="identity").partial_fit(first)
    location, scale = model.location_.copy(), model.scale_.copy()
    reloaded = pickle.loads(pickle.dumps(model))  # the optimiser's moments are not saved
    model.partial_fit(second)
    np.testing.assert_array_equal(model.location_, location)  # the first chunk's scales stay
    np.testing.assert_array_equal(model.scale_, scale)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    reloaded.partial_fit(second)
    assert not np.allclose(model.score_samples(X[:20]), reloaded.score_samples(X[:20]))
    # training on: the log-likelihood of the data rises over the passes
    before = model.score(X)
    for _ in range(10):
        for chunk in np.array_split(X, 4):
            model.partial_fit(chunk)
    assert model.score(X) > before


def test_partial_fit_after_fit_continues_the_fitted_flow():
    X = _data()
    fitted = MAFDensity(**PARAMS, max_iter=3).fit(X)
    continued = copy.deepcopy(fitted).partial_fit(X[:500])
    assert continued.n_iter_ == fitted.n_iter_ + 1
    np.testing.assert_array_equal(continued.location_, fitted.location_)


def test_clear_errors():
    X = _data()
    with pytest.raises(AttributeError, match="partial_fit"):
        MAFDensity(**PARAMS, n_estimators=2).partial_fit(X)
    assert not hasattr(MAFDensity(n_estimators=2), "partial_fit")
    model = MAFDensity(**PARAMS).partial_fit(X)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :2])
    with pytest.raises(ValueError, match="minimum of 2"):
        MAFDensity(**PARAMS).partial_fit(X[:1])


def test_outlier_detector_partial_fit():
    X = _data()
    det = MAFOutlierDetector(**PARAMS, contamination=0.05).partial_fit(X[:1000])
    assert det.calibration_scores_ is None  # nothing held out, the first call included
    one_epoch = MAFOutlierDetector(**PARAMS, contamination=0.05, max_iter=1, early_stopping=False,
                                   calibration_fraction=0, average_decay=None).fit(X[:1000])
    np.testing.assert_array_equal(det.score_samples(X[:50]), one_epoch.score_samples(X[:50]))
    det.partial_fit(X[1000:])
    assert det.calibration_scores_ is None
    assert np.mean(det.predict(X[1000:]) == -1) == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ValueError, match="calibrat"):
        det.p_values(X[:3])
    det.calibrate(_data(500, seed=1))
    assert det.p_values(X[:3]).shape == (3,)


def test_dask_ml_incremental_trains_as_a_partial_fit_loop():
    pytest.importorskip("dask_ml")
    da = pytest.importorskip("dask.array")
    from dask_ml.wrappers import Incremental

    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 2))
    X[:, 1] += X[:, 0] ** 2
    params = dict(n_flows=2, hidden_layer_sizes=(16,), random_state=0)
    inc = Incremental(MAFDensity(**params), shuffle_blocks=False).fit(da.from_array(X, chunks=(500, 2)))
    loop = MAFDensity(**params)
    for block in np.split(X, 4):
        loop.partial_fit(block)
    assert inc.estimator_.n_iter_ == 4
    np.testing.assert_allclose(inc.estimator_.score_samples(X[:20]), loop.score_samples(X[:20]), rtol=1e-6)
