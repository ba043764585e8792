"""Functions the distributed tests run in two local gloo processes (spawned:
they must be importable, not defined inside a test)."""

import os

import numpy as np
import torch
import torch.distributed as dist


def _init(rank, world, port):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.set_num_threads(1)


def train_shard(rank, world, port, out_dir, shards, batch_size, steps_config):
    """train_flow with data_parallel on this rank's shard; saves the final parameters."""
    from skflow.nn import build_maf
    from skflow.nn.training import train_flow

    _init(rank, world, port)
    try:
        # Each rank builds its flow from another seed: the broadcast must make them equal.
        flow = build_maf(n_features=shards.shape[2], n_flows=2, hidden_sizes=(16,),
                         generator=torch.Generator().manual_seed(100 + rank))
        train_flow(flow, torch.from_numpy(shards[rank]), batch_size=batch_size, shuffle=False,
                   data_parallel=True, tune_threads=False, **steps_config)
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"),
                 **{k: v.detach().numpy() for k, v in flow.state_dict().items()})
    finally:
        dist.destroy_process_group()


def fit_estimator(rank, world, port, out_dir, shards, X_test, params):
    """MAFDensity.fit of this rank's shard as ChunkedRows(distributed=True); saves test scores."""
    from skflow import ChunkedRows, MAFDensity

    _init(rank, world, port)
    try:
        est = MAFDensity(**params).fit(ChunkedRows(shards[rank], chunk_rows=500, distributed=True))
        np.save(os.path.join(out_dir, f"rank{rank}.npy"),
                np.r_[est.score_samples(X_test), est.n_iter_, est.best_epoch_, est.batch_size_])
    finally:
        dist.destroy_process_group()
