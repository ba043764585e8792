"""One process against two data-parallel ranks on this machine (issue 34, item 3).

Fits ``MAFDensity(max_iter=1, random_state=0)`` (affine layers, one epoch,
early stopping on held-out chunks) on ``--rows`` x ``--features`` rows in
memory, cut into ``ChunkedRows`` of 65,536 rows:

- **1 process**: ``fit(ChunkedRows(X))``, torch's thread policy for a seeded
  fit (one thread below 2**28 of work per step);
- **1 process, 2 threads**: the same with ``random_state=None`` (threads
  chosen by timing);
- **2 ranks**: two local gloo processes, each ``fit(ChunkedRows(half,
  distributed=True))`` on its half, one thread each.

It prints the training rows per second of each (all ranks' rows over the
epoch's seconds from the verbose log) and the held-out log-likelihood of
the model on rows no run trained on.

Run: ``python benchmarks/data_parallel.py [--rows 1000000] [--features 16]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import socket
import sys
import tempfile

import numpy as np
import torch
import torch.multiprocessing as mp

from _machine import machine_line  # benchmarks/_machine.py


def make_rows(n, d, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, d))
    x[:, 1::2] += np.sin(2 * x[:, ::2][:, : d // 2])
    return x.astype(np.float32)


def _epoch(log: str) -> float:
    return float(re.search(r"epoch +1 .* ([0-9.]+)s", log).group(1))


def _rank(rank, world, port, X, X_test, out):
    import torch.distributed as dist

    from skflow import ChunkedRows, MAFDensity

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    shard = np.array_split(X, world)[rank]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        est = MAFDensity(max_iter=1, random_state=0, layer_type="affine", verbose=1).fit(
            ChunkedRows(shard, distributed=True))
    if rank == 0:
        np.save(out, [_epoch(log.getvalue()), est.score(X_test)])
    dist.destroy_process_group()


def single(X, X_test, random_state):
    from skflow import ChunkedRows, MAFDensity

    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        est = MAFDensity(max_iter=1, random_state=random_state, layer_type="affine", verbose=1).fit(ChunkedRows(X))
    return _epoch(log.getvalue()), est.score(X_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=16)
    args = parser.parse_args()
    print(machine_line())
    X = make_rows(args.rows, args.features)
    X_test = make_rows(50_000, args.features, seed=1)
    trained = 0.9 * args.rows  # a tenth of the chunks held out for early stopping
    rows = []
    for name, state in (("1 process", 0), ("1 process, 2 threads", None)):
        seconds, score = single(X, X_test, state)
        rows.append((name, seconds, score))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.npy")
        mp.spawn(_rank, args=(2, port, X, X_test, out), nprocs=2, join=True)
        seconds, score = np.load(out)
    rows.append(("2 ranks (gloo)", seconds, score))
    print(f"\n{args.rows:,} x {args.features} rows, one epoch\n")
    print(f"{'run':<22} {'train rows/s':>13} {'epoch s':>9} {'held-out log-lik':>17}")
    for name, seconds, score in rows:
        print(f"{name:<22} {trained / seconds:>13,.0f} {seconds:>9.1f} {score:>17.3f}")


if __name__ == "__main__":
    sys.exit(main())
