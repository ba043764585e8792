"""MAFDensity as a scikit-learn estimator: quality, API, persistence, devices."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import ChunkedRows, MAFDensity, MAFOutlierDetector, MAFRegressor

FAST = dict(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=15, random_state=0)
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_fits_correlated_gaussian_to_true_log_likelihood(gaussian_data):
    X, cov = gaussian_data
    rng = np.random.RandomState(1)
    X_test = rng.multivariate_normal(np.zeros(3), cov, size=5000)
    est = MAFDensity(n_flows=3, hidden_layer_sizes=(32, 32), random_state=0).fit(X)
    true = multivariate_normal(np.zeros(3), cov).logpdf(X_test).mean()
    assert abs(est.score(X_test) - true) < 0.05
    assert est.score_samples(X_test).dtype == np.float64


def test_learns_non_gaussian_density_better_than_gaussian():
    # Two moons in 2-D: a single Gaussian is a poor fit, a flow should be far better.
    from sklearn.datasets import make_moons
    from sklearn.mixture import GaussianMixture

    X, _ = make_moons(3000, noise=0.05, random_state=0)
    X_test, _ = make_moons(2000, noise=0.05, random_state=1)
    flow = MAFDensity(n_flows=5, hidden_layer_sizes=(64, 64), random_state=0).fit(X)
    gauss = GaussianMixture(1).fit(X)
    assert flow.score(X_test) > gauss.score(X_test) + 0.5


def test_fitted_attributes(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST, init="identity").fit(X)
    assert est.n_features_in_ == 3
    assert est.n_iter_ == len(est.loss_curve_) == len(est.validation_scores_)
    assert est.best_validation_score_ == pytest.approx(max(est.validation_scores_), abs=1e-4) or (
        est.best_validation_score_ >= max(est.validation_scores_)
    )
    assert est.device_ == torch.device("cpu")
    assert not est.flow_.training


def test_without_early_stopping(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "early_stopping": False}).fit(X)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert len(est.loss_curve_) == est.n_iter_


def test_early_stopping_restores_best_weights(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "max_iter": 40, "n_iter_no_change": 2, "learning_rate_init": 3e-2},
                     init="identity").fit(X)
    assert est.n_iter_ < 40
    assert est.best_validation_score_ == pytest.approx(max(est.validation_scores_))


def test_same_random_state_same_model(gaussian_data):
    X, _ = gaussian_data
    # From the identity: on Gaussian data the Gaussian start is kept whatever the seed.
    a = MAFDensity(**{**FAST, "order": "random", "init": "identity"}).fit(X).score_samples(X)
    b = MAFDensity(**{**FAST, "order": "random", "init": "identity"}).fit(X).score_samples(X)
    c = MAFDensity(**{**FAST, "random_state": 1, "init": "identity"}).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_score_samples_does_not_depend_on_batch_composition(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X)
    full = est.score_samples(X)
    np.testing.assert_allclose(full[:5], est.score_samples(X[:5]), rtol=1e-6)
    np.testing.assert_allclose(full[::-1], est.score_samples(X[::-1]), rtol=1e-6)


def test_batch_norm_statistics_are_whole_training_set(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST, batch_norm=True, init="identity").fit(X)
    first_bn = est.flow_.transforms[1]
    with torch.no_grad():
        z = (X - est.location_) / est.scale_  # the flow models the standardised rows
        h, _ = est.flow_.transforms[0](torch.as_tensor(z, dtype=torch.float32))
    np.testing.assert_allclose(first_bn.running_mean.numpy(), h.mean(0).numpy(), atol=1e-4)


def test_sample_shape_reproducibility_and_distribution(gaussian_data):
    X, cov = gaussian_data
    est = MAFDensity(n_flows=3, hidden_layer_sizes=(32, 32), random_state=0).fit(X)
    s1 = est.sample(4000, random_state=0)
    assert s1.shape == (4000, 3) and s1.dtype == np.float64
    np.testing.assert_array_equal(s1, est.sample(4000, random_state=0))
    assert not np.array_equal(s1, est.sample(4000, random_state=1))
    np.testing.assert_allclose(np.cov(s1.T), cov, atol=0.12)
    assert est.sample(0).shape == (0, 3)


@pytest.mark.parametrize("bad", [-1, 2.5, "3", None, True])
def test_sample_rejects_bad_n_samples(gaussian_data, bad):
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X[:200])
    with pytest.raises((TypeError, ValueError), match="n_samples"):
        est.sample(bad)


def test_float64_model(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "dtype": "float64"}).fit(X)
    assert next(est.flow_.parameters()).dtype == torch.float64
    assert np.isfinite(est.score(X))


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "gelu", "silu"])
def test_activations(gaussian_data, activation):
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "max_iter": 2, "activation": activation}).fit(X[:300])
    assert np.isfinite(est.score(X))


def test_explicit_orders_and_no_batch_norm(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "order": [[2, 0, 1], [1, 2, 0]], "batch_norm": False}).fit(X)
    assert est.flow_.transforms[1].made.order == [2, 0, 1]  # after the Gaussian start
    with pytest.raises(ValueError, match="order"):
        MAFDensity(**{**FAST, "order": [[0, 1], [1, 0]]}).fit(X)


def test_narrow_hidden_layers_warn(gaussian_data):
    from skflow.nn import MADEWidthWarning

    X = np.random.RandomState(0).normal(size=(100, 6))
    with pytest.warns(MADEWidthWarning):
        MAFDensity(n_flows=1, hidden_layer_sizes=(3,), max_iter=1).fit(X)


def test_warm_start_continues_training(gaussian_data, monkeypatch):
    from skflow.nn import LowerTriangularAffine

    calls = []
    set_gaussian = LowerTriangularAffine.set_gaussian
    monkeypatch.setattr(LowerTriangularAffine, "set_gaussian", lambda *a: calls.append(1) or set_gaussian(*a))
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "max_iter": 3, "warm_start": True, "n_iter_no_change": 100, "layer_type": "affine",
                        "init": "gaussian"}).fit(X)
    starts = len(calls)  # 2 when the Gaussian was kept: the start, then its refit on all rows
    before = {k: v.clone() for k, v in est.flow_.state_dict().items()}
    est.fit(X)
    assert est.n_iter_ == 6 and len(est.loss_curve_) == 6
    assert any(not torch.equal(v, est.flow_.state_dict()[k]) for k, v in before.items())
    assert len(calls) == starts  # a warm start continues; it does not reset to the data's Gaussian
    est.set_params(n_flows=3)
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X)
    assert est.n_iter_ == 6  # the failed fit left the model untouched


def test_failed_fit_leaves_fitted_model_unchanged(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X)
    before = est.score_samples(X[:10])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    with pytest.raises(ValueError, match="features"):
        est.score_samples(X[:, :2])
    np.testing.assert_array_equal(before, est.score_samples(X[:10]))


def test_divergence_restores_finite_weights_and_warns():
    X = np.random.RandomState(0).standard_t(1.2, size=(400, 3))  # heavy tails
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(16,), learning_rate_init=50.0, max_iter=20,
                     log_scale_bound=None, max_grad_norm=None, random_state=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        est.fit(X)
    assert np.all(np.isfinite(est.score_samples(X)))


@pytest.mark.parametrize("init", ["identity", "gaussian"])
def test_data_beyond_float32_train_as_standardised_data(init):
    # Standardised in float64 before the cast: 1e30 (beyond float32 squared) is no problem.
    X = np.random.RandomState(0).normal(size=(100, 2)) * 1e30 + 1e31
    est = MAFDensity(**FAST, init=init).fit(X)
    assert np.all(np.isfinite(est.score_samples(X)))
    np.testing.assert_allclose(est.scale_, X.std(0))


class _shrunk_gaussian:
    """The Gaussian start, written out with numpy: the shrunk Gaussian of the
    standardised rows ``X``, with the standardisation's Jacobian."""

    def __init__(self, X, shrinkage):
        from scipy.stats import multivariate_normal

        self.location, self.scale = X.mean(0), X.std(0)
        Z = (X - self.location) / self.scale
        cov = np.cov(Z.T, bias=True)
        mean_variance = cov.diagonal().mean()
        cov = (1 - shrinkage) * cov + (shrinkage * mean_variance + 1e-6 * mean_variance + 1e-12) * np.eye(X.shape[1])
        self.gaussian = multivariate_normal(Z.mean(0), cov)

    def logpdf(self, X):
        return self.gaussian.logpdf((X - self.location) / self.scale) - np.log(self.scale).sum()


def test_gaussian_start_is_the_gaussian_before_training():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 3)) + [1.0, -2.0, 5.0]
    # one epoch at a negligible rate, no validation split: the fitted Gaussian of all rows
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-12,
                     early_stopping=False, dtype="float64", random_state=0, gaussian_weight=0.0).fit(X)
    assert est.init == "gaussian_mixture"  # the default: on Gaussian rows, the Gaussian start
    assert est.start_mixture_ == (1, "full")
    # plenty of rows in 3-D: cross-validation shrinks little
    assert 0 <= est.covariance_shrinkage_ <= 0.01
    expected = _shrunk_gaussian(X, est.covariance_shrinkage_).logpdf(X)
    np.testing.assert_allclose(est.score_samples(X), expected, rtol=0, atol=1e-8)


def test_insignificant_training_keeps_the_gaussian_refitted_on_all_rows(gaussian_data):
    X, _ = gaussian_data
    # Gaussian data: the flow cannot beat the start by more than noise
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=3, dtype="float64",
                     random_state=0, gaussian_weight=0.0).fit(X[:500])
    assert est.best_epoch_ == 0 and est.n_iter_ >= 1
    expected = _shrunk_gaussian(X[:500], est.covariance_shrinkage_).logpdf(X)
    np.testing.assert_allclose(est.score_samples(X), expected, rtol=0, atol=1e-8)


def test_significant_training_is_kept():
    from sklearn.datasets import make_moons

    X, _ = make_moons(2000, noise=0.05, random_state=0)
    est = MAFDensity(n_flows=3, hidden_layer_sizes=(32, 32), max_iter=30, random_state=0).fit(X[:1500])
    assert est.best_epoch_ > 0
    gaussian = _shrunk_gaussian(X[:1500], est.covariance_shrinkage_)
    assert est.score(X[1500:]) > gaussian.logpdf(X[1500:]).mean() + 0.3


def test_shrinkage_grows_as_rows_become_few():
    from skflow.estimators._gaussian import SHRINKAGES, select_shrinkage

    rng = np.random.RandomState(0)
    cov = 0.5 * np.eye(20) + 0.5
    many = rng.multivariate_normal(np.zeros(20), cov, size=5000)
    few = rng.multivariate_normal(np.zeros(20), cov, size=25)
    shrink_many, scores = select_shrinkage(many)
    shrink_few, _ = select_shrinkage(few)
    assert scores.shape == (len(SHRINKAGES),)
    assert shrink_many <= 0.01 < 0.1 <= shrink_few


def test_significance_rule():
    from skflow.estimators._gaussian import _significant_gain

    rng = np.random.RandomState(0)
    assert not _significant_gain(rng.normal(0.0, 1.0, 400))
    assert not _significant_gain(rng.normal(0.02, 1.0, 100))  # 0.2 standard errors
    assert _significant_gain(rng.normal(0.5, 1.0, 100))  # 5 standard errors
    assert _significant_gain(np.array([0.1])) and not _significant_gain(np.array([-0.1]))


def test_invalid_parameters_are_named():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="n_flows"):
        MAFDensity(n_flows=0).fit(X)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MAFDensity(hidden_layer_sizes=(10, 0)).fit(X)
    with pytest.raises(ValueError, match="activation"):
        MAFDensity(activation="sigmoid").fit(X)
    with pytest.raises(ValueError, match="device"):
        MAFDensity(device="tpu").fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_request_without_cuda_is_a_clear_error(gaussian_data):
    X, _ = gaussian_data
    with pytest.raises(ValueError, match="CUDA is not available"):
        MAFDensity(**FAST, device="cuda").fit(X)


def test_global_torch_state_untouched(gaussian_data):
    X, _ = gaussian_data
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    dtype = torch.get_default_dtype()
    np_state = np.random.get_state()[1].copy()
    est = MAFDensity(**{**FAST, "dtype": "float64"}).fit(X)
    est.sample(10, random_state=0)
    assert torch.equal(rng_state, torch.get_rng_state())
    assert torch.get_num_threads() == threads
    assert torch.get_default_dtype() == dtype
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])


def test_verbose_prints_epochs(gaussian_data, capsys):
    X, _ = gaussian_data
    MAFDensity(**{**FAST, "max_iter": 2, "verbose": 1}).fit(X)
    out = capsys.readouterr().out
    assert "epoch    1" in out and "valid log-lik" in out
    MAFDensity(**{**FAST, "max_iter": 2}).fit(X)
    assert capsys.readouterr().out == ""


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.RandomState(0).normal(size=(200, 2)), columns=["a", "b"])
    est = MAFDensity(**FAST).fit(X)
    assert list(est.feature_names_in_) == ["a", "b"]


# ----------------------------------------------------------------- workflow
@pytest.fixture(scope="module")
def wine():
    X = load_wine().data
    return X[::2], X[1::2]


def test_pipeline_on_real_data_beats_nothing_silly(wine):
    X_train, X_test = wine
    pipe = make_pipeline(StandardScaler(), MAFDensity(**FAST))
    pipe.fit(X_train)
    scores = pipe.score_samples(X_test)
    assert scores.shape == (len(X_test),) and np.all(np.isfinite(scores))
    assert pipe.score(X_test) == pytest.approx(scores.mean())


def test_grid_search_parallel(wine):
    X_train, _ = wine
    pipe = make_pipeline(StandardScaler(), MAFDensity(**{**FAST, "max_iter": 3}))
    grid = GridSearchCV(pipe, {"mafdensity__n_flows": [1, 2]}, cv=2, n_jobs=2).fit(X_train)
    serial = GridSearchCV(pipe, {"mafdensity__n_flows": [1, 2]}, cv=2, n_jobs=1).fit(X_train)
    np.testing.assert_allclose(grid.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])
    assert grid.best_params_["mafdensity__n_flows"] in (1, 2)


def test_clone_gives_unfitted_copy(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "flow_")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_joblib_and_pickle_round_trip_bit_identical(tmp_path, wine, dtype):
    X_train, X_test = wine
    pipe = make_pipeline(StandardScaler(), MAFDensity(**{**FAST, "dtype": dtype})).fit(X_train)
    expected = pipe.score_samples(X_test)
    joblib.dump(pipe, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.score_samples(X_test), expected)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.score_samples(X_test), expected)
    np.testing.assert_array_equal(again[-1].sample(5, random_state=0), pipe[-1].sample(5, random_state=0))


def test_pickle_holds_plain_arrays_only(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X)
    state = est.__getstate__()
    # numpy arrays: no device, no torch objects (skops can store them)
    assert all(type(t) is np.ndarray for t in state["flow_"].values())
    assert state["device_"] == "cpu"
    assert "_skflow_version" in state


def test_model_saved_on_cuda_loads_on_cpu(gaussian_data, monkeypatch):
    """Simulate a CUDA-fitted pickle on a CPU-only machine."""
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X)
    expected = est.score_samples(X)
    state = est.__getstate__()
    state["device_"] = "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clone_ = MAFDensity.__new__(MAFDensity)
    clone_.__setstate__(state)
    assert clone_.device_ == torch.device("cpu")
    np.testing.assert_array_equal(clone_.score_samples(X), expected)


def test_loading_other_version_warns(gaussian_data):
    X, _ = gaussian_data
    est = MAFDensity(**FAST).fit(X[:200])
    state = est.__getstate__()
    state["_skflow_version"] = "0.0.1"
    new = MAFDensity.__new__(MAFDensity)
    with pytest.warns(UserWarning, match="skflow 0.0.1"):
        new.__setstate__(state)


@requires_cuda
def test_cuda_fit_score_and_cpu_reload(gaussian_data, tmp_path):
    X, _ = gaussian_data
    est = MAFDensity(**{**FAST, "device": "cuda"}).fit(X)
    assert est.device_.type == "cuda"
    scores = est.score_samples(X)
    assert np.all(np.isfinite(scores))
    state = est.__getstate__()
    assert all(t.device.type == "cpu" for t in state["flow_"].values())
    joblib.dump(est, tmp_path / "cuda.joblib")
    loaded = joblib.load(tmp_path / "cuda.joblib")
    np.testing.assert_allclose(loaded.score_samples(X), scores, rtol=1e-5)
    cpu = MAFDensity.__new__(MAFDensity)
    state["device_"] = "cpu"
    cpu.__setstate__(state)
    np.testing.assert_allclose(cpu.score_samples(X), scores, rtol=1e-4, atol=1e-4)


def test_verbose_reports_progress_of_long_scoring_and_sampling(capsys):
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(4,), max_iter=1, random_state=0, gaussian_weight=0.0).fit(
        np.random.RandomState(0).normal(size=(100, 2)))
    est.set_params(verbose=1)
    est.score_samples(np.zeros((70_000, 2)))
    est.sample(70_000, random_state=0)
    out = capsys.readouterr().out
    assert "scored 65,536 / 70,000 rows" in out and "sampled 70,000 / 70,000 rows" in out
    est.set_params(verbose=0)
    est.score_samples(np.zeros((70_000, 2)))
    assert capsys.readouterr().out == ""


def test_validation_uses_a_subsample_of_training_rows_for_batch_norm(gaussian_data, monkeypatch):
    import skflow.nn.training as training

    X, _ = gaussian_data
    monkeypatch.setattr(training, "_BATCH_NORM_STAT_ROWS", 100)  # force the subsample path
    a = MAFDensity(**FAST).fit(X)
    b = MAFDensity(**FAST).fit(X)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert np.isfinite(a.best_validation_score_)
    c = MAFDensity(**{**FAST, "early_stopping": False}).fit(X)  # no train_index, subsample too
    assert np.all(np.isfinite(c.score_samples(X)))


def test_compiled_training_matches_eager(gaussian_data):
    X, _ = gaussian_data
    params = dict(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, batch_size=500, random_state=0)
    eager = MAFDensity(**params).fit(X)
    compiled = MAFDensity(**params, compile=True).fit(X)
    np.testing.assert_allclose(compiled.score_samples(X), eager.score_samples(X), rtol=1e-3, atol=1e-3)


def test_compile_failure_falls_back_with_a_warning(gaussian_data, monkeypatch):
    X, _ = gaussian_data

    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0, compile=True).fit(X)
    assert np.all(np.isfinite(est.score_samples(X)))


@pytest.mark.parametrize("batch_size, n_train, expected", [
    ("auto", 1_000, (256, 1e-3)),
    ("auto", 100, (100, 1e-3)),
    ("auto", 2**18, (256, 1e-3)),
    ("auto", 2**19, (512, 1e-3 * 2**0.5)),
    ("auto", 1_660_000, (1024, 2e-3)),
    ("auto", 10**9, (1024, 2e-3)),
    (64, 1_660_000, (64, 1e-3)),
    (500, 100, (100, 1e-3)),
])
def test_batch_schedule(batch_size, n_train, expected):
    from skflow.nn.training import batch_schedule

    batch, lr = batch_schedule(batch_size, 1e-3, n_train)
    assert batch == expected[0]
    assert lr == pytest.approx(expected[1])


def test_auto_batch_size_reaches_the_fit_loop(gaussian_data, monkeypatch, capsys):
    import skflow.nn.training

    X, _ = gaussian_data
    monkeypatch.setattr(skflow.nn.training, "_AUTO_STEPS", 4)  # "large" data at test size
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0, verbose=1).fit(X)
    n_train = len(X) - round(0.1 * len(X))
    assert est.batch_size_ == min(1024, n_train // 4) > 256
    rates = [float(line.split(" lr ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()
             if " lr " in line]
    assert rates == [pytest.approx(1e-3 * (est.batch_size_ / 256) ** 0.5, rel=0.05)] * 2
    fixed = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, batch_size=32, random_state=0).fit(X)
    assert fixed.batch_size_ == 32


def test_groups_hold_out_whole_sources_for_early_stopping():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 2))
    groups = np.repeat(np.arange(20), 20)
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0, validation_fraction=0.2)
    val, train = est._group_split(groups)
    assert set(groups[val]).isdisjoint(groups[train]) and len(val) + len(train) == 400
    assert len(set(groups[val])) == 4
    est.fit(X, groups=groups)
    assert np.isfinite(est.best_validation_score_)
    # the same split through a pipeline's routed fit parameter
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), clone(est)).fit(X, mafdensity__groups=groups)
    direct = clone(est).fit(StandardScaler().fit_transform(X), groups=groups)
    assert pipe[-1].best_validation_score_ == pytest.approx(direct.best_validation_score_)


def test_bad_groups_are_named():
    X = np.random.RandomState(0).normal(size=(50, 2))
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    with pytest.raises(ValueError, match="one entry per row"):
        est.fit(X, groups=np.zeros(49))
    with pytest.raises(ValueError, match="two distinct"):
        est.fit(X, groups=np.zeros(50))


@pytest.mark.parametrize("n_rows, epochs", [(200, 100), (2000, 15)])
def test_auto_patience_counts_at_least_100_optimiser_steps(n_rows, epochs):
    # tol so large that no epoch improves: training stops when patience runs out.
    X = np.random.RandomState(0).normal(size=(n_rows, 2))
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(4,), max_iter=500, tol=1e9, random_state=0).fit(X)
    steps_per_epoch = max(1, int(n_rows * 0.9) // 256)
    assert est.n_iter_ == epochs == max(10, -(-100 // steps_per_epoch))


def test_a_collapsed_fit_is_retried_at_a_tenth_of_the_rate(monkeypatch):
    import skflow.estimators._fitting as fitting
    from sklearn.datasets import make_moons

    X, _ = make_moons(1000, noise=0.1, random_state=0)
    # the weights as trained: averaging damps the constructed collapse
    params = dict(layer_type="affine", n_flows=3, hidden_layer_sizes=(32, 32), learning_rate_init=0.3,
                  random_state=0, max_iter=60, init="gaussian", average_decay=None)
    monkeypatch.setattr(fitting, "COLLAPSE_NATS", np.inf)  # no retry: the start is all that is left
    without = MAFDensity(**params).fit(X)
    assert without.best_epoch_ == 0 and min(without.validation_scores_) < without.validation_scores_[0] - 100
    monkeypatch.setattr(fitting, "COLLAPSE_NATS", 1.0)
    retried = MAFDensity(**params).fit(X)
    assert retried.n_iter_ > without.n_iter_ and retried.best_epoch_ > without.n_iter_  # the retry's epoch
    assert retried.score(X) > without.score(X) + 0.5


def test_auto_layer_type_is_spline_up_to_ten_features():
    rng = np.random.RandomState(0)
    params = dict(n_flows=1, hidden_layer_sizes=(16,), max_iter=1, random_state=0)
    ten = MAFDensity(**params).fit(rng.normal(size=(200, 10)))
    eleven = MAFDensity(**params).fit(rng.normal(size=(200, 11)))
    assert MAFDensity().layer_type == "auto" and MAFOutlierDetector().layer_type == "auto"
    assert (ten.layer_type_, eleven.layer_type_) == ("spline", "affine")
    assert ten._flow_config_["transform"] == "spline" and "transform" not in eleven._flow_config_
    assert MAFDensity(**params, layer_type="affine_spline").fit(rng.normal(size=(200, 3))).layer_type_ == "affine_spline"


def _either_side_of(monkeypatch, threshold):
    """Fits on 300 and 301 rows with the rule ``threshold`` of _architecture set at 300 rows."""
    from skflow.estimators import _architecture

    monkeypatch.setattr(_architecture, threshold, 300)
    rng = np.random.RandomState(0)
    params = dict(n_flows=1, hidden_layer_sizes=(16,), max_iter=1, random_state=0)
    few = MAFDensity(**params).fit(rng.normal(size=(300, 3)))
    many = MAFDensity(**params).fit(rng.normal(size=(301, 3)))
    return few, many, params, rng


def test_many_rows_start_at_the_identity_with_affine_splines(monkeypatch):
    few, many, params, rng = _either_side_of(monkeypatch, "MIXTURE_START_MAX_ROWS")
    assert (few.init_, few.layer_type_) == ("gaussian_mixture", "spline")
    assert (many.init_, many.layer_type_) == ("identity", "affine_spline")
    assert hasattr(few, "start_mixture_") and not hasattr(many, "start_mixture_")
    first = [type(est.flow_.transforms[0]).__name__ for est in (few, many)]
    assert first == ["LowerTriangularAffine", "MaskedRQSplineAutoregressive"]  # whitening, or none
    # an explicit identity start builds the shifted splines too; an explicit layer type is kept
    assert MAFDensity(**params, init="identity").fit(rng.normal(size=(50, 3))).layer_type_ == "affine_spline"
    assert MAFDensity(**params, layer_type="spline").fit(rng.normal(size=(301, 3))).layer_type_ == "spline"
    # a warm start keeps the start it continues, whatever the rows now
    warm = MAFDensity(**params, warm_start=True).fit(rng.normal(size=(301, 3)))
    warm.fit(rng.normal(size=(100, 3)))
    assert (warm.init_, warm.layer_type_) == ("identity", "affine_spline")
    assert MAFDensity(**params, activation="elu").fit(rng.normal(size=(301, 3))).activation_ == "elu"


def _collinear(n, seed=0):
    """Rows whose second column repeats the first to a thousandth: a Gaussian
    holds that from the outset, a flow from the identity only after many steps."""
    rng = np.random.RandomState(seed)
    a = rng.normal(size=n)
    return np.c_[a, a + 1e-3 * rng.normal(size=n), rng.normal(size=n)]


def test_many_rows_train_again_from_a_mixture_that_beats_the_identity(monkeypatch, capsys):
    from skflow.estimators import _architecture

    monkeypatch.setattr(_architecture, "MIXTURE_START_MAX_ROWS", 300)
    X = _collinear(600)
    params = dict(n_flows=2, hidden_layer_sizes=(16,), max_iter=2, random_state=0)
    identity = MAFDensity(**params, init="identity").fit(X)  # the same validation rows
    guarded = MAFDensity(**params, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert identity.init_ == "identity"
    assert guarded.init_ == "gaussian_mixture" and hasattr(guarded, "start_mixture_")
    assert (type(guarded.flow_.transforms[0]).__name__, guarded.layer_type_) == ("LowerTriangularAffine", "spline")
    assert guarded.best_validation_score_ > identity.best_validation_score_ + 1.0
    assert "weighing the start at a mixture" in out and "training from it" in out
    # a first fit with warm_start trains its second start afresh; the next fit continues it
    warm = MAFDensity(**params, warm_start=True).fit(X)
    assert warm.init_ == "gaussian_mixture"
    warm.fit(X[:400])
    assert warm.init_ == "gaussian_mixture" and warm.n_iter_ > guarded.n_iter_
    # rows streamed from disk are weighed alike
    streamed = MAFDensity(**params).fit(ChunkedRows(X, chunk_rows=100))
    assert streamed.init_ == "gaussian_mixture"


def test_auto_activation_is_relu_on_many_rows(monkeypatch):
    few, many, params, rng = _either_side_of(monkeypatch, "RELU_MIN_ROWS")
    assert (few.activation_, many.activation_) == ("tanh", "relu")
    assert many._flow_config_["activation"] == "relu"
    assert MAFRegressor(**params).fit(rng.normal(size=(301, 2)), rng.normal(size=301)).activation_ == "relu"
    # a continued fit keeps its units, whatever the rows now
    warm = MAFDensity(**params, warm_start=True).fit(rng.normal(size=(301, 3)))
    warm.fit(rng.normal(size=(100, 3)))
    assert warm.activation_ == "relu"


def test_max_time_ends_training_and_leaves_no_time_for_a_second_start(monkeypatch, capsys):
    from skflow.estimators import _architecture

    monkeypatch.setattr(_architecture, "MIXTURE_START_MAX_ROWS", 300)
    X = _collinear(600)  # a mixture would beat the identity here (see above), given the time
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_time=1e-9, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert est.n_iter_ == 1 and est.init_ == "identity"
    assert "stopped at max_time=1e-09 s in epoch 1" in out and "weighing" not in out
    cosine = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=3, learning_rate="cosine",
                        random_state=0).fit(X[:200])
    assert cosine.n_iter_ <= 3 and np.isfinite(cosine.score(X[:50]))
    with pytest.raises(ValueError, match="max_time"):
        MAFDensity(max_time=0).fit(X)
