"""Held-out log-likelihood on the UCI gas sensor drift data (real MOX sensors).

Pipeline: drop the concentration column -> CorrelationFilter(0.98, "maf") ->
StandardScaler -> density estimator.  Compares MAFDensity (the MAF paper's
GAS settings and skflow's defaults) with GaussianMixture (n_components and
covariance type chosen by 3-fold CV) and KernelDensity (bandwidth by 3-fold
CV).  Same 80/20 random split for all; prints a table and writes JSON.

The drift data hold a few extreme rows (sensor glitches, drift): a single test
row can score -1e5 nats and dominate the mean, so the table also gives the
median and the number of test rows below -1000 nats.

    python benchmarks/gas_drift_density.py [--quick] [--json results/gas_drift.json] [--only spline,made_mog]

``--only`` runs the models whose name contains one of the words and merges
their rows into the JSON file (rows of other models are kept).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KernelDensity

from skflow import MAFDensity
from skflow.datasets import load_gas_drift
from skflow.experiments import make_gas_pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs, small grids (smoke run)")
    parser.add_argument("--json", default="results/gas_drift_density.json")
    parser.add_argument("--only", help="comma-separated words; run the models whose name has one")
    args = parser.parse_args()

    bunch = load_gas_drift()
    X_train, X_test = train_test_split(bunch.data, test_size=0.2, random_state=0)
    max_iter = 5 if args.quick else 1000
    models = {
        "MAFDensity, paper GAS settings (MAF(10) 2x100 tanh, lr 1e-4, batch 100)":
            make_gas_pipeline([0], random_state=0, max_iter=max_iter),
        "MAFDensity, skflow defaults (MAF(5) 2x100 tanh, Gaussian start, no batch norm, lr 1e-3, batch 256)":
            make_gas_pipeline([0], estimator=MAFDensity(random_state=0, max_iter=max_iter)),
        "MAFDensity, skflow defaults with gaussian_weight=0 (the flow alone, the default before the mixture)":
            make_gas_pipeline([0], estimator=MAFDensity(gaussian_weight=0.0, random_state=0, max_iter=max_iter)),
        "MAFDensity, skflow defaults with layer_type='spline'":
            make_gas_pipeline([0], estimator=MAFDensity(layer_type="spline", random_state=0, max_iter=max_iter)),
        "MAFDensity, skflow defaults with base='made_mog'":
            make_gas_pipeline([0], estimator=MAFDensity(base="made_mog", random_state=0, max_iter=max_iter)),
        "MAFDensity, skflow defaults with init='identity'":
            make_gas_pipeline([0], estimator=MAFDensity(init="identity", random_state=0, max_iter=max_iter)),
        "MAFDensity, skflow defaults with batch norm":
            make_gas_pipeline([0], estimator=MAFDensity(batch_norm=True, random_state=0,
                                                        max_iter=max_iter, init="identity")),
        "MAFDensity, MAF(5) 2x128 relu, no batch norm, patience 20":
            make_gas_pipeline([0], random_state=0, max_iter=max_iter, n_flows=5, batch_norm=False,
                              activation="relu", hidden_layer_sizes=(128, 128),
                              learning_rate_init=1e-3, batch_size=256, n_iter_no_change=20),
        "GaussianMixture (components, covariance by 3-fold CV)": GridSearchCV(
            make_gas_pipeline([0], estimator=GaussianMixture(random_state=0, reg_covar=1e-4)),
            {"density__n_components": [1, 2] if args.quick else [1, 2, 4, 8, 16],
             "density__covariance_type": ["full", "diag"]},
            cv=3, n_jobs=1),
        "KernelDensity (bandwidth by 3-fold CV)": GridSearchCV(
            make_gas_pipeline([0], estimator=KernelDensity()),
            {"density__bandwidth": np.logspace(-1.5, 0.5, 3 if args.quick else 12)},
            cv=3, n_jobs=1),
    }
    if args.only:
        words = args.only.split(",")
        models = {name: m for name, m in models.items() if any(w in name for w in words)}
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - start
        pipe = getattr(model, "best_estimator_", model)
        scores = pipe.score_samples(X_test)
        rows.append(dict(model=name, test_ll=float(scores.mean()),
                         median_ll=float(np.median(scores)),
                         n_below_minus_1000=int(np.sum(scores < -1000)),
                         se=float(scores.std(ddof=1) / np.sqrt(len(scores))),
                         fit_seconds=seconds,
                         best=str(getattr(model, "best_params_", ""))))
        print(f"{name}: mean {scores.mean():.2f}, median {np.median(scores):.2f} nats "
              f"({seconds:.0f} s) {rows[-1]['best']}", flush=True)

    n_kept = int(pipe.named_steps["filter"].get_support().sum())
    path = Path(args.json)
    if args.only and path.exists():
        fresh = {r["model"] for r in rows}
        rows = [r for r in json.loads(path.read_text()) if r["model"] not in fresh] + rows
    print(f"\nGAS drift data: {len(X_train)} train / {len(X_test)} test rows, "
          f"{n_kept} of 128 features kept by the correlation filter")
    print(f"{'model':<75} {'mean test LL':>12} {'median':>8} {'< -1000':>8} {'fit s':>6}")
    for r in sorted(rows, key=lambda r: -r["median_ll"]):
        print(f"{r['model']:<75} {r['test_ll']:12.2f} {r['median_ll']:8.2f} "
              f"{r['n_below_minus_1000']:8d} {r['fit_seconds']:6.0f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
