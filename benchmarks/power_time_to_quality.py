"""Test log-likelihood against wall-clock time on the MAF paper's POWER data.

Preprocessing as the MAF paper's code (SOURCE.md of the shared data):
numeric columns + time of day in minutes; drop Global_intensity and
Global_reactive_power; uniform noise (0.001 active power, 0.01 voltage, 1.0
sub-meterings); shuffle (seed 42); 10% test, 10% of the rest validation;
standardise with train+validation statistics -> 6 dims.  Rows the shared
copy imputed (identical to the row 24 h earlier) are dropped first.

Every library trains MAF(5) with 2x100 relu hidden layers (batch norm where it
has one) under the same wall-clock budget: the peers (and skflow's flow, for
reference) in the minimal loop of their examples (Adam, lr 1e-3, batch 512),
and MAFDensity through its own fit loop with its defaults.  Test
log-likelihood (a fixed 50,000-row test subset) is measured after every epoch
with the clock stopped; the table gives the wall time at which each run first
reaches --target (published MAF(5) on POWER: 0.14 nats; MAF(10) 0.24).

    cd benchmarks && python power_time_to_quality.py [--budget 900] [--libs MAFDensity,nflows,zuko]

``--libs MAFDensity.fit --max-iter N`` fits the public estimator instead
(its own start and validation split, N epochs) and records its validation
log-likelihood after each epoch against the time since ``fit`` began.
"""

import argparse
import contextlib
import json
import sys
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
    if lib in ("skflow", "skflow-nobn"):
        from skflow.nn import build_maf

        return build_maf(6, 5, (100, 100), "relu", lib == "skflow", "reverse",
                         generator=torch.Generator().manual_seed(0), batch_norm=True)
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

    if lib == "zuko-nsf":  # rational-quadratic splines, 8 bins on [-5, 5]
        return zuko.flows.NSF(6, transforms=5, hidden_features=(100, 100), activation=torch.nn.ReLU)
    return zuko.flows.MAF(6, transforms=5, hidden_features=(100, 100), activation=torch.nn.ReLU)


class BudgetSpent(Exception):
    pass


@torch.no_grad()
def test_ll(lib, flow, x_test, train_rows=None):
    if lib == "skflow" and train_rows is not None:
        flow.refit_batch_norm(train_rows)
    was_training = flow.training
    flow.eval()
    out = torch.cat([speed.log_prob(lib, flow, c) for c in x_test.split(65536)]).mean().item()
    flow.train(was_training)
    return out


class Curve:
    """Test log-likelihood after every epoch; the clock stops while it is measured."""

    def __init__(self, name, flow, x_test, budget, target):
        self.name, self.flow, self.x_test = name, flow, x_test
        self.budget, self.target = budget, target
        self.points, self.paused, self.start = [], 0.0, time.perf_counter()

    def epoch_done(self, lib, stats_rows=None):
        pause = time.perf_counter()
        elapsed = pause - self.start - self.paused
        ll = test_ll(lib, self.flow, self.x_test, stats_rows)
        self.points.append((round(elapsed, 1), ll))
        print(f"  {self.name:40} {elapsed:7.1f}s  epoch {len(self.points):3d}  test LL {ll:7.3f}", flush=True)
        self.paused += time.perf_counter() - pause
        if elapsed >= self.budget:
            raise BudgetSpent

    def time_to_target(self):
        return next((t for t, ll in self.points if ll >= self.target), None)


def run_loop(lib, x_train, x_test, budget, target):
    """The peers' loop: Adam lr 1e-3, batch 512, constant rate (their examples' choice)."""
    torch.manual_seed(0)
    flow = build(lib)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    lib = "skflow" if lib.startswith("skflow") else lib
    stats_rows = x_train[:50_000]
    curve = Curve(lib + " (plain loop)", flow, x_test, budget, target)
    try:
        while True:
            for idx in torch.randperm(len(x_train)).split(512):
                loss = -speed.log_prob(lib, flow, x_train[idx]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            curve.epoch_done(lib, stats_rows)
    except BudgetSpent:
        pass
    return curve


def run_estimator_loop(x_train, x_test, budget, target, params, average_decay=None):
    """MAFDensity's own fit loop with the estimator's defaults (10% validation split,
    early stopping, its learning-rate schedule), as MAFDensity(n_flows=5,
    activation="relu").fit runs it, except that the flow starts at the
    identity (the MAF paper's start, as the peers do), not at the Gaussian
    of ``init="gaussian"``; test LL measured after every epoch."""
    from skflow import MAFDensity
    from skflow.estimators._architecture import resolve_layer_type
    from skflow.estimators._base import AUTO_MAX_EPOCHS, AUTO_MIN_STEPS, MIN_PATIENCE_STEPS
    from skflow.nn.training import batch_schedule
    from skflow.nn.training import train_flow
    from skflow.nn import build_maf

    est = MAFDensity(n_flows=5, hidden_layer_sizes=(100, 100), activation="relu", random_state=0,
                     **params)
    flow = build_maf(6, 5, (100, 100), "relu", est.batch_norm, "reverse",
                     generator=torch.Generator().manual_seed(0), transform=resolve_layer_type(est.layer_type, 6),
                     n_bins=est.n_bins, tail_bound=est.tail_bound, base=est.base,
                     n_components=est.n_components)
    rng = np.random.RandomState(0)
    perm = torch.from_numpy(rng.permutation(len(x_train)))
    n_val = int(round(est.validation_fraction * len(x_train)))
    x_val, train_index = x_train[perm[:n_val]], perm[n_val:]
    batch_size, learning_rate = batch_schedule(est.batch_size, est.learning_rate_init, len(train_index))
    name = "MAFDensity " + (" ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)") + (
        "" if average_decay is None else f" averaged {average_decay}")
    print(f"  {name}: batch {batch_size}, learning rate {learning_rate:.2g}")
    curve = Curve(name, flow, x_test, budget, target)
    try:
        train_flow(flow, x_train, x_val, train_index=train_index, learning_rate=learning_rate,
                   weight_decay=est.weight_decay, batch_size=batch_size,
                   max_epochs=AUTO_MAX_EPOCHS if est.max_iter == "auto" else est.max_iter,
                   min_steps=AUTO_MIN_STEPS if est.max_iter == "auto" else 0,
                   n_iter_no_change=10 if est.n_iter_no_change == "auto" else est.n_iter_no_change,
                   min_steps_no_change=MIN_PATIENCE_STEPS if est.n_iter_no_change == "auto" else 0,
                   tol=est.tol, max_grad_norm=est.max_grad_norm,
                   learning_rate_schedule=est.learning_rate, average_decay=average_decay,
                   generator=torch.Generator().manual_seed(0),
                   log=lambda msg: curve.epoch_done("skflow"))
    except BudgetSpent:
        pass
    return curve


class _EpochLines:
    """stdout of a verbose fit: each epoch line's validation log-likelihood,
    stamped with the wall time since the fit began (its start included)."""

    def __init__(self, curve):
        self.curve, self.text = curve, ""

    def write(self, text):
        self.text += text
        *lines, self.text = self.text.split("\n")
        for line in lines:
            if line.startswith("epoch") and "valid log-lik" in line:
                valid = float(line.split("valid log-lik")[1].split()[0])
                elapsed = time.perf_counter() - self.curve.start
                self.curve.points.append((round(elapsed, 1), valid))
                print(f"  {self.curve.name:40} {elapsed:7.1f}s  epoch {len(self.curve.points):3d}  "
                      f"valid LL {valid:7.3f}", file=sys.__stdout__, flush=True)
            elif line.strip():
                print("  " + line, file=sys.__stdout__, flush=True)

    def flush(self):
        pass


def run_estimator_fit(train, test, max_iter, params, target):
    """``MAFDensity(random_state=0, max_iter=max_iter, verbose=1, **params).fit(train)``
    through the public estimator (its own start, validation split and
    defaults); the curve is its validation log-likelihood after each epoch
    against the wall time since ``fit`` began; the test log-likelihood of the
    model it keeps is printed at the end."""
    from skflow import MAFDensity

    est = MAFDensity(random_state=0, max_iter=max_iter, verbose=1, **params)
    name = "MAFDensity.fit " + " ".join(f"{k}={v}" for k, v in {"max_iter": max_iter, **params}.items())
    curve = Curve(name + " (valid)", None, None, float("inf"), target)
    with contextlib.redirect_stdout(_EpochLines(curve)):
        est.fit(train)
    seconds = time.perf_counter() - curve.start
    print(f"  {name}: fit {seconds:.0f} s, best epoch {est.best_epoch_}, "
          f"test LL {est.score(test):.4f}", flush=True)
    return curve


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=900.0, help="training seconds per run")
    parser.add_argument("--target", type=float, default=0.14, help="test LL to reach (MAF(5), paper)")
    parser.add_argument("--libs", default="MAFDensity,skflow,nflows,zuko",
                        help="comma-separated: MAFDensity, MAFDensity.fit, skflow, skflow-nobn, nflows, zuko, "
                             "zuko-nsf")
    parser.add_argument("--estimator-params", default="{}",
                        help='JSON of MAFDensity parameters, e.g. \'{"layer_type": "spline"}\'')
    parser.add_argument("--average-decay", type=float, action="append", default=None,
                        help="MAFDensity's loop with weight averaging at this decay (repeat for several runs; "
                             "a negative value: a run without averaging)")
    parser.add_argument("--max-iter", type=int, default=20,
                        help="epochs of the MAFDensity.fit run (the public estimator, its own start)")
    parser.add_argument("--json", default="results/power_time_to_quality.json")
    args = parser.parse_args()
    train, test = load_power()
    test = test[np.random.RandomState(0).permutation(len(test))[:50_000]]
    print(f"POWER: {len(train):,} train+validation rows, {len(test):,} test rows (subset), 6 dims; "
          f"budget {args.budget:.0f} s per run, target {args.target} nats")
    x_train, x_test = torch.from_numpy(train), torch.from_numpy(test)
    curves = []
    for lib in args.libs.split(","):
        try:
            if lib == "MAFDensity.fit":
                curves.append(run_estimator_fit(train, test, args.max_iter,
                                                json.loads(args.estimator_params), args.target))
            elif lib == "MAFDensity":
                for decay in args.average_decay or [None]:
                    curves.append(run_estimator_loop(x_train, x_test, args.budget, args.target,
                                                     json.loads(args.estimator_params),
                                                     None if decay is None or decay < 0 else decay))
            else:
                curves.append(run_loop(lib, x_train, x_test, args.budget, args.target))
        except ImportError as exc:
            print(f"{lib}: skipped ({exc})")
    print(f"\n{'run':44} {'epochs':>6} {'time to ' + str(args.target):>14} {'best test LL':>13} {'at s':>7}")
    for c in curves:
        reach = c.time_to_target()
        best_t, best = max(c.points, key=lambda p: p[1]) if c.points else (float("nan"), float("nan"))
        print(f"{c.name:44} {len(c.points):6d} {('%.0f s' % reach) if reach else 'not reached':>14} "
              f"{best:13.3f} {best_t:7.0f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({c.name: c.points for c in curves}, indent=2))


if __name__ == "__main__":
    main()
