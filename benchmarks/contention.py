"""Fits on an idle machine and beside busy processes (issue 15, item 3).

Runs each job idle, then again while ``--busy`` background processes spin
(``while True: pass``; started and stopped by this script), and prints the
median seconds of ``--repeats`` runs and the slowdown.  Jobs:

- ``skflow fit 300x30``: ``MAFDensity()`` defaults on 300 standardised rows
  of scikit-learn's breast-cancer set (fit only);
- ``GMM GridSearchCV 300x30``: ``GaussianMixture`` with components (1-5)
  and covariance type chosen by 5-fold ``GridSearchCV``, the small-data peer;
- ``skflow/zuko 100 steps``: the same 30-D MAF(5) of two 100-unit layers,
  100 Adam steps at batch 256 (skflow through ``train_flow``, zuko in a
  plain loop);
- ``skflow/zuko 8-D b1024``: 20 steps at batch 1024 of an 8-D MAF(5), where
  two threads help on an idle machine.

Run: ``python benchmarks/contention.py [--busy 2] [--repeats 3] [--json results/contention.json]``.
The machine should be otherwise idle (the script prints the load average).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from _machine import cpu_name, load_average, machine_line, n_cpus  # benchmarks/_machine.py
from skflow import MAFDensity
from skflow.nn import build_maf, train_flow


@contextlib.contextmanager
def busy(n: int):
    """``n`` processes that keep a core each busy while the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(1.0)  # let the scheduler spread them
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def small_rows():
    return StandardScaler().fit_transform(load_breast_cancer().data)[:300]


def skflow_fit(X):
    MAFDensity(random_state=0).fit(X)


def seeded_spline_fit():
    # The seeded fit a thread count kept from torch used to leave stuck behind busy cores.
    X = np.random.RandomState(0).normal(size=(5000, 7))
    X[:, 1] += X[:, 0] ** 2
    return lambda: MAFDensity(layer_type="affine_spline", init="identity", max_iter=20, random_state=0).fit(X)


def gmm_grid(X):
    GridSearchCV(GaussianMixture(random_state=0),
                 {"n_components": [1, 2, 3, 4, 5], "covariance_type": ["full", "diag"]}).fit(X)


def skflow_steps(D, batch, steps):
    flow = build_maf(D, 5, (100, 100), batch_norm=False, generator=torch.Generator().manual_seed(0))
    x = torch.randn(batch * steps, D, generator=torch.Generator().manual_seed(1))
    return lambda: train_flow(flow, x, None, batch_size=batch, max_epochs=1, learning_rate=1e-4,
                              generator=torch.Generator().manual_seed(0))


def zuko_steps(D, batch, steps):
    import zuko

    flow = zuko.flows.MAF(D, transforms=5, hidden_features=(100, 100), activation=torch.nn.Tanh)
    x = torch.randn(batch * steps, D, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(flow.parameters(), lr=1e-4)

    def run():
        for idx in torch.randperm(len(x)).split(batch):
            loss = -flow().log_prob(x[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    return run


def jobs():
    X = small_rows()
    out = {
        "skflow fit 300x30": lambda: skflow_fit(X),
        "GMM GridSearchCV 300x30": lambda: gmm_grid(X),
        "skflow seeded affine_spline 5000x7, 20 epochs": seeded_spline_fit(),
        "skflow 30-D 100 steps b256": skflow_steps(30, 256, 100),
        "skflow 8-D 20 steps b1024": skflow_steps(8, 1024, 20),
    }
    try:
        out["zuko 30-D 100 steps b256"] = zuko_steps(30, 256, 100)
        out["zuko 8-D 20 steps b1024"] = zuko_steps(8, 1024, 20)
    except ImportError:
        print("zuko is not installed: its rows are skipped (pip install zuko)")
    return out


def timed(fn, repeats):
    fn()  # warm-up: first calls allocate and build
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=2, help="background busy processes (default 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="results/contention.json", help="write the results here")
    args = parser.parse_args(argv)
    print(machine_line(), f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    todo = jobs()
    results = {}
    for name, fn in todo.items():
        results[name] = {"idle": timed(fn, args.repeats)}
    with busy(args.busy):
        print(f"{args.busy} busy processes started; load average {load_average():.2f}", flush=True)
        for name, fn in todo.items():
            results[name]["busy"] = timed(fn, args.repeats)
    print(f"\n| job | idle s | beside {args.busy} busy processes s | slowdown |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        idle, loaded = r["idle"][0], r["busy"][0]
        print(f"| {name} | {idle:.2f} | {loaded:.2f} | {loaded / idle:.1f}x |")
    print(f"\nmedians of {args.repeats}; all runs: " + "; ".join(
        f"{name}: idle {' '.join(f'{t:.2f}' for t in r['idle'][1])}, busy {' '.join(f'{t:.2f}' for t in r['busy'][1])}"
        for name, r in results.items()))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(
            cpu=cpu_name(), cpus=n_cpus(), busy=args.busy, repeats=args.repeats, torch=torch.__version__,
            results={k: {"idle": v["idle"][1], "busy": v["busy"][1]} for k, v in results.items()}), indent=1))


if __name__ == "__main__":
    np.random.seed(0)
    main()
