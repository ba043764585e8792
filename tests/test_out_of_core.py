"""fit of rows streamed a chunk at a time (ChunkedRows): memmaps, Parquet, Dask."""

import numpy as np
import pytest

from skflow import ChunkedRows, MAFDensity, MAFOutlierDetector
from skflow.estimators._streamed import _merge, _moments

SMALL = dict(n_flows=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0, layer_type="affine")


def _data(n=3000, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, 1))
    return np.c_[x, x**2 + 0.3 * rng.normal(size=(n, 1)), rng.gamma(2.0, size=(n, 1))]


@pytest.fixture
def npy(tmp_path):
    X = _data()
    path = tmp_path / "rows.npy"
    np.save(path, X.astype(">f4"))  # a header before the rows, and another byte order
    return X.astype(">f4").astype(np.float64), np.load(path, mmap_mode="r")


def test_memmap_chunks_are_read_from_the_file(npy):
    X, mm = npy
    rows = ChunkedRows(mm, chunk_rows=700)
    assert type(rows._reader).__name__ == "_MemmapReader"
    assert rows.chunk_sizes == [700] * 4 + [200]
    np.testing.assert_array_equal(np.concatenate([rows.read(i) for i in range(rows.n_chunks)]), X)
    view = ChunkedRows(mm[100:], chunk_rows=700)  # a view: sliced, not read by offset
    np.testing.assert_array_equal(view.read(0), X[100:800])


def test_streamed_memmap_fit_equals_the_in_memory_array_in_the_same_chunks(npy):
    X, mm = npy
    a = MAFDensity(**SMALL).fit(ChunkedRows(mm, chunk_rows=500))
    b = MAFDensity(**SMALL).fit(ChunkedRows(np.array(X), chunk_rows=500))
    np.testing.assert_array_equal(a.score_samples(X[:200]), b.score_samples(X[:200]))
    assert a.n_features_in_ == 3 and not hasattr(a, "feature_names_in_")


def test_parquet_row_groups_are_the_chunks(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = _data()
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": np.arange(len(X)).astype(str)})
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=500)
    rows = ChunkedRows(tmp_path / "rows.parquet", columns=["a", "b", "c"])
    assert rows.n_chunks == 6 and rows.shape == (3000, 3)
    a = MAFDensity(**SMALL).fit(rows)
    b = MAFDensity(**SMALL).fit(ChunkedRows(X, chunk_rows=500))
    assert list(a.feature_names_in_) == ["a", "b", "c"]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X[:100], columns=["a", "b", "c"])
    np.testing.assert_array_equal(a.score_samples(frame), b.score_samples(X[:100]))
    with pytest.raises(ValueError, match="label"):
        MAFDensity(**SMALL).fit(ChunkedRows(tmp_path / "rows.parquet"))


def test_dask_array_is_streamed_block_by_block():
    da = pytest.importorskip("dask.array")
    X = _data()
    a = MAFDensity(**SMALL).fit(ChunkedRows(da.from_array(X, chunks=(1000, 3)), chunk_rows=600))
    b = MAFDensity(**SMALL).fit(ChunkedRows(X, chunk_rows=600))
    np.testing.assert_array_equal(a.score_samples(X[:100]), b.score_samples(X[:100]))


def test_moments_merged_chunk_by_chunk_are_the_whole_datas():
    X = _data(1234) * [1e3, 1.0, 1e-3] + [1e6, 0.0, 5.0]
    moments = (0, np.zeros(3), np.zeros((3, 3)))
    for block in np.array_split(X, 7):
        moments = _merge(moments, _moments(block))
    n, mean, scatter = moments
    assert n == 1234
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(scatter / n, np.cov(X.T, bias=True), rtol=1e-9)


def test_standardisation_is_every_training_rows_and_dequantisation_adds_its_variance():
    X = _data()
    X[:, 2] = np.round(X[:, 2] * 2) / 2  # a grid of 0.5
    est = MAFDensity(**{**SMALL, "early_stopping": False}).fit(ChunkedRows(X, chunk_rows=1000))
    np.testing.assert_array_equal(est.grid_steps_, [0, 0, 0.5])
    np.testing.assert_allclose(est.location_, X.mean(0), rtol=1e-10)
    np.testing.assert_allclose(est.scale_, np.sqrt(X.var(0) + est.grid_steps_**2 / 12), rtol=1e-10)


def test_streamed_fit_is_as_good_as_the_in_memory_fit():
    X = _data(12000, seed=3)
    params = dict(n_flows=3, hidden_layer_sizes=(32, 32), max_iter=30, random_state=0, layer_type="affine")
    streamed = MAFDensity(**params).fit(ChunkedRows(X[2000:], chunk_rows=1000))
    in_memory = MAFDensity(**params).fit(X[2000:])
    gaussian = MAFDensity(**{**params, "init": "gaussian", "max_iter": 1, "learning_rate_init": 1e-12}).fit(X[2000:])
    s, m, g = (e.score(X[:2000]) for e in (streamed, in_memory, gaussian))
    assert streamed.best_epoch_ > 0
    assert s > m - 0.05 and s > g + 0.2


def test_outlier_detector_calibrates_on_held_out_chunks():
    X = _data(4000)
    det = MAFOutlierDetector(**SMALL, calibration_fraction=0.2).fit(ChunkedRows(X, chunk_rows=400))
    assert len(det.calibration_scores_) == 800  # two of ten chunks, every row
    p = det.p_values(np.r_[X[:50], X[:1] + 50])
    assert p[-1] == pytest.approx(1 / 801) and p[:50].mean() > 0.3


@pytest.mark.parametrize("source, kwargs, error, match", [
    (np.zeros((10, 2)), dict(chunk_rows=0), ValueError, "chunk_rows"),
    (np.zeros(10), {}, ValueError, "2-D"),
    (np.zeros((10, 2)), dict(columns=["a"]), ValueError, "Parquet"),
])
def test_bad_chunked_rows(source, kwargs, error, match):
    with pytest.raises(error, match=match):
        ChunkedRows(source, **kwargs)


def test_bad_streamed_fits_say_why():
    X = _data(1000)
    with pytest.raises(ValueError, match="whole chunks.*chunk_rows"):
        MAFDensity(**SMALL).fit(ChunkedRows(X))  # one chunk: nothing to hold out
    bad = X.copy()
    bad[777, 1] = np.nan
    with pytest.raises(ValueError, match=r"row 777 \(in chunk 3\) holds NaN"):
        MAFDensity(**{**SMALL, "early_stopping": False}).fit(ChunkedRows(bad, chunk_rows=200))
    with pytest.raises(ValueError, match="groups"):
        MAFDensity(**SMALL).fit(ChunkedRows(X, chunk_rows=100), groups=np.arange(1000))
    with pytest.raises(ValueError, match="n_estimators=1"):
        MAFDensity(**SMALL, n_estimators=2).fit(ChunkedRows(X, chunk_rows=100))
    with pytest.raises(TypeError, match="partial_fit"):
        MAFDensity(**SMALL).partial_fit(ChunkedRows(X, chunk_rows=100))
    with pytest.raises(ValueError, match="random_state"):
        MAFDensity(**{**SMALL, "random_state": None}).fit(ChunkedRows(X, chunk_rows=100, distributed=True))
    with pytest.raises(RuntimeError, match="init_process_group"):
        MAFDensity(**SMALL).fit(ChunkedRows(X, chunk_rows=100, distributed=True))
    est = MAFDensity(**SMALL).fit(X)
    with pytest.raises(ValueError, match="2 features"):
        est.set_params(warm_start=True).fit(ChunkedRows(X[:, :2], chunk_rows=100))


def test_warm_start_continues_on_streamed_rows():
    X = _data(2000)
    est = MAFDensity(**SMALL).fit(ChunkedRows(X, chunk_rows=200))
    location = est.location_.copy()
    est.set_params(warm_start=True).fit(ChunkedRows(X[::-1].copy(), chunk_rows=200))
    np.testing.assert_array_equal(est.location_, location)
    assert est.n_iter_ > 3


def test_batch_norm_statistics_come_from_every_streamed_row(monkeypatch):
    import torch

    monkeypatch.setattr("skflow.estimators._streamed.SAMPLE_ROWS", 400)  # the sample is not every row
    X = np.random.RandomState(5).standard_normal((2400, 3)) * [1.0, 3.0, 0.5] + [0.0, 1.0, -2.0]
    est = MAFDensity(**{**SMALL, "batch_norm": True, "early_stopping": False, "dequantize": False}).fit(
        ChunkedRows(X, chunk_rows=300))
    layers = [t for t in est.flow_.transforms if hasattr(t, "set_statistics")]
    streamed = [(t.running_mean.clone(), t.running_var.clone()) for t in layers]
    z = torch.from_numpy(((X - est.location_) / est.scale_).astype(np.float32))
    est.flow_.refit_batch_norm(z)  # every row in memory at once: the reference
    assert layers
    for (mean, var), t in zip(streamed, layers):
        torch.testing.assert_close(mean, t.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var, t.running_var, rtol=1e-5, atol=1e-6)
