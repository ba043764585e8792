"""Bagged ensembles of flows (n_estimators > 1): the mixture, persistence, parallel fits."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from skflow import MAFDensity, MAFOutlierDetector
from skflow.nn import FlowEnsemble, build_maf

from ._helpers import joblib_round_trip

TINY = dict(n_flows=1, hidden_layer_sizes=(8,), max_iter=4, random_state=0, dtype="float64")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(300, 2))
    return np.c_[x[:, 0], x[:, 1] + 0.5 * x[:, 0] ** 2]


@pytest.fixture(scope="module")
def ensemble(data):
    return MAFDensity(**TINY, n_estimators=3, gaussian_weight=0.0).fit(data)  # the members' mixture alone


def test_log_density_is_the_log_mean_exp_of_the_members(ensemble, data):
    members = ensemble.flow_.members
    assert len(members) == 3
    with torch.no_grad():
        z = (data - ensemble.location_) / ensemble.scale_  # the members model standardised rows
        each = np.stack([m.log_prob(torch.as_tensor(z)).numpy() for m in members])
    each -= np.log(ensemble.scale_).sum()
    np.testing.assert_allclose(ensemble.score_samples(data), logsumexp(each, axis=0) - np.log(3),
                               rtol=0, atol=1e-10)
    # bootstrap samples differ, so do the members
    assert np.ptp(each, axis=0).max() > 1e-3


def test_fitted_attributes_hold_one_entry_per_member(ensemble, data):
    assert ensemble.n_iter_.shape == ensemble.best_epoch_.shape == (3,)
    assert len(ensemble.loss_curve_) == len(ensemble.validation_scores_) == 3
    assert ensemble.covariance_shrinkage_.shape == (3,)
    assert np.isfinite(ensemble.best_validation_score_)


def test_pickle_round_trip_scores_and_samples_alike(ensemble, data):
    loaded = joblib_round_trip(ensemble)
    np.testing.assert_array_equal(loaded.score_samples(data), ensemble.score_samples(data))
    np.testing.assert_array_equal(loaded.sample(50, random_state=1), ensemble.sample(50, random_state=1))


def test_parallel_fit_equals_sequential(ensemble, data):
    parallel = MAFDensity(**TINY, n_estimators=3, n_jobs=2, gaussian_weight=0.0).fit(data)
    np.testing.assert_array_equal(parallel.score_samples(data), ensemble.score_samples(data))


def test_samples_come_from_every_member_in_equal_shares():
    # members that put their mass far apart: the share of draws near each is ~1/3
    members = []
    for shift in (-10.0, 0.0, 10.0):
        flow = build_maf(1, n_flows=1, hidden_sizes=(4,), gaussian_start=True, dtype=torch.float64, batch_norm=True)
        flow.transforms[0].set_gaussian(torch.tensor([shift], dtype=torch.float64),
                                        torch.eye(1, dtype=torch.float64))
        members.append(flow.eval())
    draws = FlowEnsemble(members).sample(30000, torch.Generator().manual_seed(0))[:, 0].numpy()
    shares = np.histogram(draws, bins=[-20, -5, 5, 20])[0] / len(draws)
    np.testing.assert_allclose(shares, 1 / 3, atol=0.02)


def test_same_random_state_same_ensemble(data, ensemble):
    again = MAFDensity(**TINY, n_estimators=3, gaussian_weight=0.0).fit(data)
    np.testing.assert_array_equal(again.score_samples(data), ensemble.score_samples(data))


def test_outlier_detector_ensemble(data):
    det = MAFOutlierDetector(**TINY, n_estimators=2, contamination=0.1).fit(data)
    assert np.mean(det.predict(data) == -1) == pytest.approx(0.1, abs=0.01)


def test_warm_start_is_refused_for_ensembles(data):
    with pytest.raises(ValueError, match="warm_start"):
        MAFDensity(**TINY, n_estimators=2, warm_start=True).fit(data)


def test_ensemble_members_must_agree_on_features():
    with pytest.raises(ValueError, match="features"):
        FlowEnsemble([build_maf(2, n_flows=1, hidden_sizes=(4,), batch_norm=True), build_maf(3, n_flows=1, hidden_sizes=(4,), batch_norm=True)])


def test_skops_round_trip(ensemble, data, tmp_path):
    pytest.importorskip("skops")
    from skflow.io import load_model, save_model

    save_model(ensemble, tmp_path / "ensemble.skops")
    loaded = load_model(tmp_path / "ensemble.skops")
    np.testing.assert_array_equal(loaded.score_samples(data), ensemble.score_samples(data))
