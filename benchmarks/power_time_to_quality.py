"""Test log-likelihood against wall-clock time on the MAF paper's POWER data.

Preprocessing as the MAF paper's code (SOURCE.md of the shared data):
numeric columns + time of day in minutes; drop Global_intensity and
Global_reactive_power; uniform noise (0.001 active power, 0.01 voltage, 1.0
sub-meterings); shuffle (seed 42); 10% test, 10% of the rest validation;
standardise with train+validation statistics -> 6 dims.  Rows the shared
copy imputed (identical to the row 24 h earlier) are dropped first.

Every library trains MAF(5) with 2x100 relu hidden layers (batch norm where it
has one) under the same wall-clock budget with the same minimal loop (Adam,
lr 1e-3, batch 512); skflow is also run through MAFDensity's own training loop
(its defaults).  Test log-likelihood (on a fixed 50,000-row test subset) is
printed at checkpoints.  Published MAF(5) on POWER: 0.14 nats; MAF(10) 0.24.

    python benchmarks/power_time_to_quality.py [--budget 120] [--json results/power.json]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from skflow.datasets import find_shared_data

import speed  # same folder: the peers' flow constructors


def load_power():
    import pandas as pd

    folder = find_shared_data("uci_household_power_consumption")
    if folder is None:
        raise SystemExit("POWER data not found (../shared/data/uci_household_power_consumption)")
    df = pd.read_csv(folder / "householdpower.csv.gz")
    t = pd.to_datetime(df["date_time"])
    cols = ["Global_active_power", "Global_reactive_power", "Voltage", "Global_intensity",
            "Sub_metering_1", "Sub_metering_2", "Sub_metering_3"]
    values = df[cols].to_numpy(float)
    imputed = np.zeros(len(values), bool)
    imputed[1440:] = np.all(values[1440:] == values[:-1440], axis=1)
    data = np.column_stack([values, (t.dt.hour * 60 + t.dt.minute).to_numpy(float)])[~imputed]
    rng = np.random.RandomState(42)
    rng.shuffle(data)
    data = np.delete(data, 3, axis=1)  # Global_intensity
    data = np.delete(data, 1, axis=1)  # Global_reactive_power
    n = len(data)
    noise = np.hstack([0.001 * rng.rand(n, 1), 0.01 * rng.rand(n, 1), rng.rand(n, 3), np.zeros((n, 1))])
    data = data + noise
    n_test = int(0.1 * n)
    test, rest = data[-n_test:], data[:-n_test]
    mu, sd = rest.mean(0), rest.std(0)
    return ((rest - mu) / sd).astype(np.float32), ((test - mu) / sd).astype(np.float32)


def build(lib):
    if lib == "skflow":
        from skflow.nn import build_maf

        return build_maf(6, 5, (100, 100), "relu", True, "reverse", generator=torch.Generator().manual_seed(0))
    if lib == "nflows":
        from nflows.distributions import StandardNormal
        from nflows.flows import Flow
        from nflows.transforms import (BatchNorm, CompositeTransform,
                                       MaskedAffineAutoregressiveTransform, ReversePermutation)

        ts = []
        for _ in range(5):
            ts += [MaskedAffineAutoregressiveTransform(6, 100, num_blocks=1, use_residual_blocks=False,
                                                       activation=torch.relu),
                   BatchNorm(6), ReversePermutation(6)]
        return Flow(CompositeTransform(ts), StandardNormal([6]))
    import zuko

    return zuko.flows.MAF(6, transforms=5, hidden_features=(100, 100), activation=torch.nn.ReLU)


@torch.no_grad()
def test_ll(lib, flow, x_test, train_rows=None):
    if lib == "skflow" and train_rows is not None:
        flow.refit_batch_norm(train_rows)
    flow.eval()
    out = torch.cat([speed.log_prob(lib, flow, c) for c in x_test.split(65536)]).mean().item()
    flow.train()
    return out


def run_loop(lib, x_train, x_test, budget, checkpoints):
    torch.manual_seed(0)
    flow = build(lib)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    stats_rows = x_train[:50_000]
    curve, start, next_cp = [], time.perf_counter(), 0
    while True:
        for idx in torch.randperm(len(x_train)).split(512):
            loss = -speed.log_prob(lib, flow, x_train[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            elapsed = time.perf_counter() - start
            if elapsed >= checkpoints[next_cp]:
                pause = time.perf_counter()
                curve.append((checkpoints[next_cp], test_ll(lib, flow, x_test, stats_rows)))
                print(f"  {lib:8} {checkpoints[next_cp]:6.0f}s  test LL {curve[-1][1]:8.3f}", flush=True)
                start += time.perf_counter() - pause  # evaluation is not training time
                next_cp += 1
                if next_cp == len(checkpoints):
                    return curve


def run_estimator(x_train, x_test, budget, checkpoints):
    """MAFDensity with its defaults, stopped at each checkpoint by max_iter=1 warm starts."""
    from skflow import MAFDensity

    est = MAFDensity(n_flows=5, hidden_layer_sizes=(100, 100), activation="relu", warm_start=True,
                     max_iter=1, random_state=0)
    curve, trained, next_cp = [], 0.0, 0
    while next_cp < len(checkpoints):
        t = time.perf_counter()
        est.fit(x_train)
        trained += time.perf_counter() - t
        while next_cp < len(checkpoints) and trained >= checkpoints[next_cp]:
            curve.append((checkpoints[next_cp], float(est.score(x_test))))
            print(f"  MAFDensity {checkpoints[next_cp]:6.0f}s  test LL {curve[-1][1]:8.3f} "
                  f"({est.n_iter_} epochs)", flush=True)
            next_cp += 1
    return curve


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per library")
    parser.add_argument("--json", default="results/power_time_to_quality.json")
    args = parser.parse_args()
    train, test = load_power()
    test = test[np.random.RandomState(0).permutation(len(test))[:50_000]]
    print(f"POWER: {len(train):,} train+validation rows, {len(test):,} test rows (subset), 6 dims")
    x_train, x_test = torch.from_numpy(train), torch.from_numpy(test)
    checkpoints = [args.budget * f for f in (0.125, 0.25, 0.5, 1.0)]
    results = {}
    for lib in ("skflow", "nflows", "zuko"):
        try:
            results[lib] = run_loop(lib, x_train, x_test, args.budget, checkpoints)
        except ImportError as exc:
            print(f"{lib}: skipped ({exc})")
    results["MAFDensity (its own loop, defaults)"] = run_estimator(train, test, args.budget, checkpoints)
    print(f"\n{'library':38} " + " ".join(f"{c:>8.0f}s" for c in checkpoints) + "   (test LL, nats)")
    for lib, curve in results.items():
        print(f"{lib:38} " + " ".join(f"{ll:9.3f}" for _, ll in curve))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
