"""Bad input, numerical safety, persistence and concurrency."""

import pickle
import threading
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import MAFDensity, MAFOutlierDetector
from skflow.preprocessing import CorrelationFilter, DropColumns

TINY = dict(n_flows=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
rng = np.random.RandomState(0)
X = rng.normal(size=(200, 3))


@pytest.fixture(scope="module")
def fitted():
    return dict(
        density=MAFDensity(**TINY).fit(X),
        detector=MAFOutlierDetector(**TINY).fit(X),
        filter=CorrelationFilter().fit(X),
        drop=DropColumns([0]).fit(X),
    )


def _methods(fitted):
    return {
        "fit": lambda A: MAFDensity(**TINY).fit(A),
        "detector.fit": lambda A: MAFOutlierDetector(**TINY).fit(A),
        "score_samples": fitted["density"].score_samples,
        "score": fitted["density"].score,
        "predict": fitted["detector"].predict,
        "decision_function": fitted["detector"].decision_function,
        "filter.transform": fitted["filter"].transform,
        "filter.fit": lambda A: CorrelationFilter().fit(A),
    }


BAD = {
    "nan": (np.where(X > 2, np.nan, X), ValueError, "NaN"),
    "inf": (np.where(X > 2, np.inf, X), ValueError, "infinity"),
    "-inf": (np.where(X > 2, -np.inf, X), ValueError, "infinity"),
    "empty": (np.zeros((0, 3)), ValueError, "0 sample"),
    "1-D": (X[:, 0], ValueError, "Expected 2D array"),
    "3-D": (X[:, :, None], ValueError, "dim 3"),
    "complex": (X + 1j, ValueError, "Complex data not supported"),
    "strings": (np.array([["a", "b", "c"]] * 5), ValueError, "could not convert string"),
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("method", ["fit", "detector.fit", "score_samples", "score", "predict",
                                    "decision_function", "filter.fit", "filter.transform"])
def test_bad_input_is_a_clear_error(fitted, bad, method):
    A, error, match = BAD[bad]
    with pytest.raises(error, match=match):
        _methods(fitted)[method](A)


@pytest.mark.parametrize("method", ["score_samples", "score", "predict", "decision_function",
                                    "filter.transform"])
def test_wrong_number_of_features(fitted, method):
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        _methods(fitted)[method](X[:, :2])


@pytest.mark.parametrize("method", ["fit", "score_samples", "predict", "filter.fit", "filter.transform"])
def test_sparse_input_is_rejected(fitted, method):
    with pytest.raises(TypeError, match="Sparse data"):
        _methods(fitted)[method](sp.csr_matrix(X))


def test_sparse_passes_through_column_selection(fitted):
    out = fitted["drop"].transform(sp.csr_matrix(X))
    assert sp.issparse(out) and out.shape == (200, 2)


@pytest.mark.parametrize("kind", ["bool", "float16", "int", "object", "list"])
def test_convertible_inputs_are_accepted(fitted, kind):
    A = {"bool": X > 0, "float16": X.astype(np.float16), "int": (X * 10).astype(int),
         "object": X.astype(object), "list": X.tolist()}[kind]
    scores = fitted["density"].score_samples(A)
    assert scores.shape == (200,) and np.all(np.isfinite(scores))
    assert np.isfinite(MAFDensity(**TINY).fit(A).score(A))


def test_single_sample_fit_and_score(fitted):
    with pytest.raises(ValueError, match="1 sample"):
        MAFDensity(**TINY).fit(X[:1])
    assert fitted["density"].score_samples(X[:1]).shape == (1,)
    assert fitted["detector"].predict(X[:1]).shape == (1,)


def test_fewer_rows_than_batch_size_or_validation_needs():
    est = MAFDensity(**{**TINY, "batch_size": 512}).fit(X[:5])
    assert np.all(np.isfinite(est.score_samples(X)))
    est = MAFDensity(**{**TINY, "validation_fraction": 0.01}).fit(X[:2])
    assert len(est.validation_scores_) == est.n_iter_


def test_huge_magnitudes(fitted):
    # The estimators standardise inside: data at 1e30 give the model of the
    # data at 1, its log-densities shifted by the Jacobian (float32 included).
    small, huge = MAFDensity(**TINY, init="identity").fit(X), MAFDensity(**TINY, init="identity").fit(X * 1e30)
    np.testing.assert_allclose(huge.score_samples(X * 1e30) + X.shape[1] * np.log(1e30),
                               small.score_samples(X), rtol=0, atol=1e-9)
    # Scoring absurd rows: a documented -inf (zero density in float32), never NaN.
    scores = fitted["density"].score_samples(X * 1e30)
    assert not np.any(np.isnan(scores)) and np.all(scores < -1e30)
    assert np.all(fitted["detector"].predict(X * 1e30) == -1)


@pytest.mark.parametrize("n", [-1, 2.5, "3", None, True])
def test_sample_bad_n(fitted, n):
    with pytest.raises((TypeError, ValueError), match="n_samples"):
        fitted["density"].sample(n)


def test_sample_zero_and_numpy_int(fitted):
    assert fitted["density"].sample(0).shape == (0, 3)
    assert fitted["density"].sample(np.int64(4)).shape == (4, 3)


@pytest.mark.parametrize("param, value", [
    ("n_flows", 0), ("n_flows", 1.5), ("hidden_layer_sizes", (0,)), ("hidden_layer_sizes", ()),
    ("activation", "softmax"), ("order", "sideways"), ("learning_rate_init", 0.0),
    ("learning_rate", "linear"),
    ("weight_decay", -1.0), ("batch_size", 0), ("max_iter", 0), ("validation_fraction", 1.0),
    ("n_iter_no_change", 0), ("tol", -1.0), ("log_scale_bound", 0.0), ("max_grad_norm", -1.0),
    ("dtype", "float16"), ("device", "tpu"), ("early_stopping", "yes"),
])
def test_bad_hyper_parameters_are_named(param, value):
    with pytest.raises(ValueError, match=param if param != "device" else "device"):
        MAFDensity(**{**TINY, param: value}).fit(X)


def test_failed_fit_leaves_model_unchanged(fitted, monkeypatch):
    est = MAFDensity(**TINY).fit(X)
    state = pickle.dumps(est)
    expected = est.score_samples(X)

    import skflow.estimators._fitting as fitting

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting, "train_flow", boom)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X + 5)
    monkeypatch.undo()
    for bad in (np.full((10, 3), np.nan), X[:, :2]):
        est.set_params(warm_start=True)
        with pytest.raises(ValueError):
            est.fit(bad)
    est.set_params(warm_start=False)
    np.testing.assert_array_equal(est.score_samples(X), expected)
    assert pickle.dumps(est) == state


# ------------------------------------------------------- numerical safety
CASES = {
    "heavy-tailed": lambda r: r.standard_t(1, size=(600, 3)),
    "duplicated": lambda r: np.repeat(r.normal(size=(600, 2)), [1, 2], axis=1),
    "constant": lambda r: np.column_stack([r.normal(size=(600, 2)), np.full(600, 7.0)]),
    "near-constant": lambda r: np.column_stack([r.normal(size=(600, 2)), 7 + 1e-9 * r.normal(size=600)]),
    "badly scaled": lambda r: r.normal(size=(600, 3)) * [1e-6, 1.0, 1e6] + [0, 1e7, 0],
    "discrete": lambda r: r.randint(0, 3, size=(600, 3)).astype(float),
}


@pytest.mark.parametrize("case", list(CASES))
def test_awkward_data_gives_finite_log_densities(case):
    A = CASES[case](np.random.RandomState(1))
    est = MAFDensity(n_flows=3, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0).fit(A)
    assert np.all(np.isfinite(est.score_samples(A)))
    assert np.all(np.isfinite(est.sample(100, random_state=0)))


def test_divergence_warns_and_keeps_finite_model():
    A = np.random.RandomState(0).standard_t(1.1, size=(500, 3)) * 100
    est = MAFDensity(layer_type="affine", n_flows=2, hidden_layer_sizes=(16,), learning_rate_init=10.0, max_iter=30,
                     log_scale_bound=None, max_grad_norm=None, batch_norm=False, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(A)
    assert any("diverged" in str(w.message) for w in caught)
    assert np.all(np.isfinite(est.score_samples(A)))


# -------------------------------------------------------------- persistence
def _roundtrips(obj, tmp_path):
    path = tmp_path / "m.joblib"
    joblib.dump(obj, path)
    return [joblib.load(path), pickle.loads(pickle.dumps(obj))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_roundtrip_plain_pipeline_and_warm_start(tmp_path, dtype):
    est = MAFDensity(**{**TINY, "dtype": dtype, "warm_start": True}).fit(X)
    est.fit(X)  # a warm-started second round
    for loaded in _roundtrips(est, tmp_path):
        np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
        loaded.fit(X)  # and it can keep training
        assert loaded.n_iter_ == est.n_iter_ + 3


def test_roundtrip_grid_search_best_estimator(tmp_path):
    grid = GridSearchCV(make_pipeline(StandardScaler(), MAFOutlierDetector(**TINY)),
                        {"mafoutlierdetector__n_flows": [1, 2]}, cv=2,
                        scoring=lambda est, A, y=None: est.score_samples(A).mean()).fit(X)
    for loaded in _roundtrips(grid.best_estimator_, tmp_path):
        np.testing.assert_array_equal(loaded.decision_function(X), grid.best_estimator_.decision_function(X))


def test_pickle_has_no_lambdas_modules_or_devices():
    est = MAFDensity(**TINY).fit(X)
    state = est.__getstate__()
    assert isinstance(state["flow_"], dict)
    assert all(type(v) is np.ndarray for v in state["flow_"].values())
    assert isinstance(state["device_"], str)
    blob = pickle.dumps(est)
    assert b"<lambda>" not in blob and b"torch" not in blob


# --------------------------------------------------------------- concurrency
def test_grid_search_and_cross_val_in_parallel_match_sequential():
    pipe = make_pipeline(StandardScaler(), MAFDensity(**TINY))
    grid = {"mafdensity__n_flows": [1, 2]}
    par = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X).cv_results_["mean_test_score"]
    seq = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X).cv_results_["mean_test_score"]
    np.testing.assert_array_equal(par, seq)
    np.testing.assert_array_equal(cross_val_score(pipe, X, cv=3, n_jobs=2),
                                  cross_val_score(pipe, X, cv=3, n_jobs=1))


def test_score_samples_from_many_threads(fitted):
    est = fitted["density"]
    expected = est.score_samples(X)
    results, errors = [None] * 8, []

    def work(i):
        try:
            results[i] = est.score_samples(X)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_no_global_torch_state_changed():
    before = (torch.get_rng_state(), torch.get_num_threads(), torch.get_default_dtype(),
              torch.is_grad_enabled())
    est = MAFDensity(**{**TINY, "dtype": "float64", "order": "random"}).fit(X)
    est.score_samples(X)
    est.sample(5)
    after = (torch.get_rng_state(), torch.get_num_threads(), torch.get_default_dtype(),
             torch.is_grad_enabled())
    assert torch.equal(before[0], after[0]) and before[1:] == after[1:]


# ------------------------------------------------------------ property-based
_rows = st.integers(min_value=4, max_value=40)
_cols = st.integers(min_value=1, max_value=4)


@st.composite
def _data(draw):
    n, d = draw(_rows), draw(_cols)
    return draw(arrays(np.float64, (n, d), elements=st.floats(-1e3, 1e3, allow_nan=False)))


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(A=_data())
def test_property_finite_per_row_and_order_invariant(A):
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(A)
    s = est.score_samples(A)
    assert s.shape == (len(A),) and np.all(np.isfinite(s))
    perm = np.random.RandomState(0).permutation(len(A))
    np.testing.assert_allclose(est.score_samples(A[perm]), s[perm], rtol=1e-6, atol=1e-6)
    parts = np.concatenate([est.score_samples(A[i : i + 3]) for i in range(0, len(A), 3)])
    np.testing.assert_allclose(parts, s, rtol=1e-6, atol=1e-6)
    sample = est.sample(5, random_state=0)
    assert sample.shape == (5, A.shape[1]) and sample.dtype == np.float64
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.score_samples(A), s)


def test_unpickling_and_deepcopy_leave_the_global_torch_rng_alone():
    import copy

    X = np.random.RandomState(0).normal(size=(60, 3))
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    blob = pickle.dumps(est)
    state = torch.get_rng_state()
    loaded = pickle.loads(blob)
    copied = copy.deepcopy(est)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(copied.score_samples(X), est.score_samples(X))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_large_fit_gathers_a_batch_norm_subset_only_with_batch_norm(batch_norm, monkeypatch):
    import skflow.estimators._fitting as fitting
    from skflow.nn import Flow

    monkeypatch.setattr(fitting, "BATCH_NORM_REFIT_ROWS", 20)  # "more than 2^20 rows" at test size
    calls = []
    refit = Flow.refit_batch_norm
    monkeypatch.setattr(Flow, "refit_batch_norm", lambda self, x, *a, **k: calls.append(len(x)) or refit(self, x, *a, **k))
    X = np.random.RandomState(0).normal(size=(100, 2))
    MAFDensity(n_flows=1, hidden_layer_sizes=(4,), max_iter=1, batch_norm=batch_norm, random_state=0).fit(X)
    assert (20 in calls) == batch_norm  # the subset gathered for the final refit


def test_dask_doctest_skips_without_dask(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    fake = tmp_path / "dask"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('dask is not installed here')\n")
    root = Path(__file__).resolve().parents[1]
    env = dict(__import__("os").environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "skflow/dask.py"], cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode in (0, 5), proc.stdout[-2000:]  # 5: nothing collected


def test_skops_round_trip_is_bit_identical_and_trusts_only_skflow_types(tmp_path):
    pd = pytest.importorskip("pandas")
    sio = pytest.importorskip("skops.io")
    from skflow.io import TRUSTED_TYPES, load_model, save_model

    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(150, 4)), columns=["a", "b", "c", "d"])
    X["e"] = X["a"] * 0.999 + 0.001 * rng.normal(size=150)  # dropped by the filter
    for est in (MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, batch_norm=True, random_state=0),
                MAFOutlierDetector(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, contamination=0.1,
                                   random_state=0)):
        pipe = make_pipeline(DropColumns(["d"]), CorrelationFilter(threshold=0.98), StandardScaler(), est).fit(X)
        path = tmp_path / "m.skops"
        save_model(pipe, path)
        untrusted = sio.get_untrusted_types(file=path)
        assert untrusted and all(t.startswith("skflow.") and t in TRUSTED_TYPES for t in untrusted)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.score_samples(X), pipe.score_samples(X))
        np.testing.assert_array_equal(loaded[-1].sample(5, random_state=0), pipe[-1].sample(5, random_state=0))
        assert list(loaded.feature_names_in_) == list(X.columns)


def _halve(x):
    return x / 2


def test_skops_file_with_foreign_types_is_refused(tmp_path):
    pytest.importorskip("skops.io")
    from sklearn.preprocessing import FunctionTransformer

    from skflow.io import load_model, save_model

    X = np.random.RandomState(0).normal(size=(80, 2))
    pipe = make_pipeline(FunctionTransformer(_halve), MAFDensity(n_flows=1, hidden_layer_sizes=(4,),
                                                                   max_iter=1, random_state=0)).fit(X)
    save_model(pipe, tmp_path / "m.skops")
    with pytest.raises(ValueError, match="does not trust: .*_halve"):
        load_model(tmp_path / "m.skops")


def test_pickles_carry_a_format_and_others_are_refused():
    from skflow.estimators._base import PICKLE_FORMAT

    X = np.random.RandomState(0).normal(size=(60, 3))
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    state = est.__getstate__()
    assert state["_skflow_format"] == PICKLE_FORMAT
    for wrong in (None, PICKLE_FORMAT + 1):
        old = dict(state)
        if wrong is None:
            del old["_skflow_format"]  # a pre-release file
        else:
            old["_skflow_format"] = wrong
        with pytest.raises(ValueError, match="fit it again"):
            MAFDensity.__new__(MAFDensity).__setstate__(old)


def test_dataframe_with_a_string_column_names_it():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"kwh": np.arange(50.0), "tariff": ["day", "night"] * 25})
    with pytest.raises(ValueError, match="column 'tariff' is not numeric.*OneHotEncoder"):
        MAFDensity(max_iter=1).fit(X)


def test_verbose_fit_says_where_it_stopped(capsys):
    X = np.random.RandomState(0).normal(size=(200, 2))
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=200, tol=1e9, n_iter_no_change=3,
                     random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    # tol so large that no epoch improves: stops after 3 stale epochs, keeps the initial weights
    assert est.n_iter_ == 3 and est.best_epoch_ == 0
    assert "stopped early at epoch 3; no epoch beat the Gaussian start on validation, so the Gaussian start was kept" in out


def test_describing_the_gaussian_weight():
    from types import SimpleNamespace

    from skflow.estimators._validation import describe_gaussian_weight

    def est(given, chosen, floor=0.0):
        return SimpleNamespace(gaussian_weight=given, gaussian_weight_=chosen, _gaussian_weight_floor=floor)

    assert "takes the whole weight (gaussian_weight_=1)" in describe_gaussian_weight(est("auto", 1.0))
    assert "at weight 0.35 (gaussian_weight_)" in describe_gaussian_weight(est("auto", 0.35))
    assert describe_gaussian_weight(est("auto", 0.0)) is None
    assert describe_gaussian_weight(est("auto", 0.01, floor=0.01)) is None  # the density's floor
    assert describe_gaussian_weight(est(1.0, 1.0)) is None  # the user's own choice


def test_verbose_detector_says_what_the_gaussian_weight_does(capsys):
    # a kept mixture start weighed against the Gaussian: on this machine the Gaussian takes the scores
    X = np.random.RandomState(2).standard_t(8, size=(300, 3))
    det = MAFOutlierDetector(random_state=0, n_flows=2, hidden_layer_sizes=(16, 16), verbose=1).fit(X)
    out = capsys.readouterr().out
    weight = det.gaussian_weight_
    assert ("takes the whole weight" in out) == (weight == 1.0)
    assert (f"at weight {weight:.2f} (gaussian_weight_)" in out) == (0.0 < weight < 1.0)


def test_max_iter_auto_allows_2000_steps_on_small_data(capsys):
    # 135 training rows and batches of 256: an epoch is one step, so "auto" allows 2,000 epochs
    X = np.random.RandomState(0).normal(size=(150, 2))
    common = dict(n_flows=1, hidden_layer_sizes=(4,), n_iter_no_change=10**6, random_state=0, init="identity")
    est = MAFDensity(**common, verbose=1).fit(X)
    assert est.n_iter_ == 2000 and len(est.loss_curve_) == 2000
    assert "reached the limit of max_iter='auto', 2000 epochs" in capsys.readouterr().out
    assert MAFDensity(**common, max_iter=30).fit(X).n_iter_ == 30


@pytest.mark.parametrize("n_rows, epochs", [(100, 5), (20, 20)])
def test_min_steps_raise_the_epoch_limit_only_where_epochs_are_short(n_rows, epochs):
    from skflow.nn import train_flow
    from skflow.nn.flow import build_maf

    flow = build_maf(2, n_flows=1, hidden_sizes=(4,), generator=torch.Generator().manual_seed(0))
    x = torch.randn(n_rows, 2, generator=torch.Generator().manual_seed(1))
    # 100 rows in batches of 10 make 10 steps an epoch, so 5 epochs hold the 40 steps; 20 rows make 2
    result = train_flow(flow, x, max_epochs=5, min_steps=40, batch_size=10, tol=-1e9)
    assert result.n_epochs == result.max_epochs == epochs
