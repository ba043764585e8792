"""Data-parallel training over torch.distributed, in two local gloo processes."""

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from skflow import GaussianDensity, MAFDensity
from skflow.nn import build_maf
from skflow.nn.training import train_flow

from . import _distributed_workers as workers

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(fn, *args, world=2):
    try:
        mp.spawn(fn, args=(world, _free_port(), *args), nprocs=world, join=True)
    except (OSError, PermissionError) as exc:  # no processes or sockets here
        pytest.skip(f"cannot spawn local gloo processes: {exc}")


def test_two_ranks_train_as_one_process_on_the_joined_batches(tmp_path):
    rng = np.random.RandomState(0)
    batch, n_batches = 32, 12
    shards = rng.normal(size=(2, batch * n_batches, 3)).astype(np.float32)
    shards[..., 1] += shards[..., 0] ** 2
    settings = dict(max_epochs=2, learning_rate=3e-3, max_grad_norm=1.0, weight_decay=1e-4)
    _spawn(workers.train_shard, str(tmp_path), shards, batch, settings)

    # One process: step k trains on rank 0's k-th batch and rank 1's k-th batch together.
    joined = np.concatenate([shards[:, k * batch:(k + 1) * batch].reshape(-1, 3) for k in range(n_batches)])
    flow = build_maf(n_features=3, n_flows=2, hidden_sizes=(16,), generator=torch.Generator().manual_seed(100))
    train_flow(flow, torch.from_numpy(joined), batch_size=2 * batch, shuffle=False, tune_threads=False, **settings)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    for name, value in flow.state_dict().items():
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name])
        np.testing.assert_allclose(ranks[0][name], value.numpy(), rtol=1e-4, atol=2e-5, err_msg=name)
    # and training moved the weights: the comparison is not of two starts
    start = build_maf(n_features=3, n_flows=2, hidden_sizes=(16,), generator=torch.Generator().manual_seed(100))
    moved = [not np.allclose(ranks[0][k], v.numpy()) for k, v in start.state_dict().items()]
    assert sum(moved) >= len(moved) // 2


def test_estimator_fit_of_sharded_chunked_rows(tmp_path):
    rng = np.random.RandomState(1)
    x = rng.normal(size=(8000, 1))
    X = np.c_[x, np.sin(2 * x) + 0.2 * rng.normal(size=(8000, 1))]
    X_test = X[:1000]
    shards = X[1000:].reshape(2, 3500, 2)
    params = dict(n_flows=2, hidden_layer_sizes=(32, 32), max_iter=20, random_state=0, layer_type="affine")
    _spawn(workers.fit_estimator, str(tmp_path), shards, X_test, params)
    rank0, rank1 = (np.load(tmp_path / f"rank{r}.npy") for r in range(2))
    np.testing.assert_array_equal(rank0, rank1)  # one model, every rank
    single = MAFDensity(**params).fit(X[1000:])
    # a step's batch is both ranks' together (128 rows each): what one process on every row takes
    assert rank0[-1] == single.batch_size_ == 256
    # the same quality as one process on every row (not the same model: other batches and chunks)
    assert rank0[:1000].mean() > single.score_samples(X_test).mean() - 0.1
    assert rank0[:1000].mean() > GaussianDensity().fit(X[1000:]).score_samples(X_test).mean() + 0.5


def test_data_parallel_without_a_process_group_says_so():
    flow = build_maf(n_features=2, n_flows=1, hidden_sizes=(4,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="init_process_group"):
        train_flow(flow, torch.zeros(64, 2), batch_size=32, max_epochs=1, data_parallel=True)


def test_dask_workers_train_one_model_on_their_shards(tmp_path):
    distributed = pytest.importorskip("distributed")
    import functools

    from skflow.dask import fit_data_parallel

    rng = np.random.RandomState(2)
    x = rng.normal(size=(6000, 1))
    X = np.c_[x, np.sin(2 * x) + 0.2 * rng.normal(size=(6000, 1))]
    paths = []
    for r, shard in enumerate(np.array_split(X[1000:], 2)):
        paths.append(tmp_path / f"part{r}.npy")
        np.save(paths[-1], shard)
    params = dict(n_flows=2, hidden_layer_sizes=(32, 32), max_iter=4, random_state=0, layer_type="affine")
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    except Exception as exc:  # no processes or sockets here
        pytest.skip(f"cannot start a local Dask cluster: {exc}")
    with cluster, distributed.Client(cluster) as client:
        shards = [functools.partial(np.load, str(p), mmap_mode="r") for p in paths]
        est = fit_data_parallel(MAFDensity(**params), shards, client, chunk_rows=500)
        with pytest.raises(ValueError, match="between 1 and 2 shards"):
            fit_data_parallel(MAFDensity(**params), shards * 2, client)
    assert est.n_iter_ == 4 and est.n_features_in_ == 2
    assert est.score(X[:1000]) > GaussianDensity().fit(X[1000:]).score(X[:1000]) + 0.5
