"""The Gaussian-mixture start: the base, the start's closed form, the estimator."""

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from skflow import MAFDensity, MAFOutlierDetector
from skflow.estimators._mixture_start import GaussianMixtureStart
from skflow.nn import StandardNormal, build_maf
from skflow.nn.bases import GaussianMixtureBase

from ._helpers import joblib_round_trip


def _blobs(n=900, seed=0):
    rng = np.random.RandomState(seed)
    centres = np.array([[-4.0, 0.0, 1.0], [4.0, 1.0, -1.0], [0.0, 6.0, 0.0]])
    X = centres[rng.randint(3, size=n)] + rng.normal(size=(n, 3)) * [0.5, 1.0, 0.3]
    return X * [1.0, 10.0, 0.1]  # units of their own


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_mixture_base_is_the_fitted_mixture(covariance_type):
    X = _blobs()
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    factors = gm.precisions_cholesky_
    if covariance_type == "diag":
        factors = np.stack([np.diag(f) for f in factors])
    base = GaussianMixtureBase(3, 3).double()
    base.set_mixture(gm.weights_, gm.means_, factors)
    got = base.log_prob(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(got, gm.score_samples(X), rtol=0, atol=1e-8)
    # draws have the mixture's mean and covariance
    draws = base.sample(40000, torch.Generator().manual_seed(0), torch.float64).numpy()
    mean = gm.weights_ @ gm.means_
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.08 * X.std(0).max())
    covs = gm.covariances_ if covariance_type == "full" else np.stack([np.diag(c) for c in gm.covariances_])
    total = sum(w * (c + np.outer(m - mean, m - mean)) for w, c, m in zip(gm.weights_, covs, gm.means_))
    np.testing.assert_allclose(np.cov(draws.T), total, rtol=0.05, atol=0.02 * np.abs(total).max())


def test_the_start_is_exactly_the_chosen_mixture_before_training():
    X = (_blobs() - _blobs().mean(0)) / _blobs().std(0)
    flow = build_maf(3, n_flows=2, hidden_sizes=(8,), gaussian_start=True, dtype=torch.float64)
    x = torch.from_numpy(X)
    attributes = GaussianMixtureStart(random_state=0).fit(flow, x, None, None)
    k, covariance_type = attributes["start_mixture_"]
    assert k > 1 and isinstance(flow.base, GaussianMixtureBase)
    # the closed form: the mixture of the whitened rows, mapped back with the whitening's Jacobian
    first = flow.transforms[0]
    with torch.no_grad():
        z, log_det = first(x)
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0, max_iter=100, n_init=3).fit(z.numpy())
    expected = gm.score_samples(z.numpy()) + log_det.numpy()
    with torch.no_grad():
        np.testing.assert_allclose(flow.eval().log_prob(x).numpy(), expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "whitened_diag"])
def test_each_mixture_type_is_the_mixture_of_its_own_rows(monkeypatch, covariance_type):
    # "full" and "diag" mixtures are fitted to the rows centred and scaled
    # (the columns' axes, as GaussianMixture on standardised data), a
    # "whitened_diag" one to the whitened rows; the start must be exactly
    # that mixture carried back with the Jacobian.
    from skflow.estimators import _mixture_start
    from skflow.estimators._gaussian import _shrunk_gaussian
    from skflow.nn.layers.linear import whitening_matrix

    monkeypatch.setattr(_mixture_start, "COVARIANCE_TYPES", (covariance_type,))
    X = (_blobs() - _blobs().mean(0)) / _blobs().std(0)  # the blobs' centres correlate the columns
    x = torch.from_numpy(X)
    flow = build_maf(3, n_flows=1, hidden_sizes=(8,), gaussian_start=True, dtype=torch.float64)
    attributes = GaussianMixtureStart(random_state=0).fit(flow, x, None, None)
    k, chosen = attributes["start_mixture_"]
    assert k > 1 and chosen == covariance_type
    mean, cov, _ = _shrunk_gaussian(x)
    centred = X - mean.numpy()
    if covariance_type == "whitened_diag":
        w = whitening_matrix(torch.from_numpy(cov)).numpy()
        rows, log_jacobian = centred @ w.T, np.log(np.diag(w)).sum()
    else:
        scale = np.sqrt(np.diag(cov))
        rows, log_jacobian = centred / scale, -np.log(scale).sum()
    gm = GaussianMixture(k, covariance_type="full" if covariance_type == "full" else "diag", random_state=0,
                         max_iter=100, n_init=3, reg_covar=1e-6).fit(rows)
    with torch.no_grad():
        np.testing.assert_allclose(flow.eval().log_prob(x).numpy(), gm.score_samples(rows) + log_jacobian,
                                   rtol=0, atol=1e-8)
        z, _ = flow.transforms[0](x)
    # a "diag" start's first layer only centres and scales; the others whiten
    correlation = np.corrcoef(z.numpy().T)[np.triu_indices(3, 1)]
    if covariance_type == "diag":
        np.testing.assert_allclose(correlation, np.corrcoef(X.T)[np.triu_indices(3, 1)], atol=1e-10)
    else:
        np.testing.assert_allclose(correlation, 0.0, atol=0.05)


def test_gaussian_data_keep_the_gaussian_start():
    X = np.random.RandomState(0).multivariate_normal([0, 1, 2], [[2, 1, 0], [1, 2, 0], [0, 0, 1]], size=600)
    flow = build_maf(3, n_flows=1, hidden_sizes=(8,), gaussian_start=True, dtype=torch.float64)
    attributes = GaussianMixtureStart(random_state=0).fit(flow, torch.from_numpy(X), None, None)
    assert attributes["start_mixture_"] == (1, "full")
    assert isinstance(flow.base, StandardNormal)


def test_a_kept_start_is_refitted_with_the_mixture_the_validation_rows_judged(monkeypatch):
    from skflow.estimators import _mixture_start

    chosen = []
    select = _mixture_start.select_mixture

    def recording(*args, **kwargs):
        chosen.append(select(*args, **kwargs)[0])
        return chosen[-1], {}

    monkeypatch.setattr(_mixture_start, "select_mixture", recording)
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(_blobs(600))
    assert est.best_epoch_ == 0  # one epoch does not beat a three-blob mixture: the start is kept
    # chosen once, on the training rows; the refit on every row fits that choice again
    assert len(chosen) == 1 and est.start_mixture_ == chosen[0] and chosen[0][0] > 1
    assert isinstance(est.flow_.base, GaussianMixtureBase) and est.flow_.base.n_components == chosen[0][0]


def test_estimator_with_the_mixture_start_beats_the_gaussian_start_and_round_trips():
    from skops.io import dumps, get_untrusted_types, loads

    X, X_test = _blobs(900, 0), _blobs(600, 1)
    params = dict(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0)
    mixture = MAFDensity(init="gaussian_mixture", **params).fit(X)
    gaussian = MAFDensity(init="gaussian", **params).fit(X)
    assert mixture.start_mixture_[0] > 1
    assert mixture.score(X_test) > gaussian.score(X_test) + 0.3
    expected = mixture.score_samples(X_test)
    np.testing.assert_array_equal(joblib_round_trip(mixture).score_samples(X_test), expected)
    blob = dumps(mixture)
    np.testing.assert_array_equal(loads(blob, trusted=get_untrusted_types(data=blob)).score_samples(X_test),
                                  expected)
    assert mixture.sample(5, random_state=0).shape == (5, 3)
    # the same seed, the same model
    again = MAFDensity(init="gaussian_mixture", **params).fit(X)
    np.testing.assert_array_equal(again.score_samples(X_test), expected)
    # a warm start keeps the chosen base and trains on
    warm = mixture.set_params(warm_start=True, max_iter=2).fit(X)
    assert np.isfinite(warm.score_samples(X_test)).all()


def test_the_mixture_start_in_the_outlier_detector_and_ensembles():
    X = _blobs(600)
    det = MAFOutlierDetector(init="gaussian_mixture", n_flows=1, hidden_layer_sizes=(8,), max_iter=3,
                             random_state=0).fit(X)
    assert det.decision_function(np.array([[0.0, 200.0, 5.0]]))[0] < np.quantile(det.decision_function(X), 0.01)
    bag = MAFDensity(init="gaussian_mixture", n_estimators=2, n_flows=1, hidden_layer_sizes=(8,), max_iter=3,
                     random_state=0).fit(X)
    np.testing.assert_array_equal(joblib_round_trip(bag).score_samples(X[:20]), bag.score_samples(X[:20]))


def test_the_mixture_base_is_chosen_by_the_start_only():
    with pytest.raises(ValueError, match="init='gaussian_mixture'"):
        MAFDensity(base="gaussian_mixture").fit(_blobs(100))
