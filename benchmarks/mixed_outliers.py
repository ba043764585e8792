"""Outliers in mixed tables: MixedOutlierDetector against one-hot detectors (issue 33, item 4).

Tasks from the seven real tables of ``benchmarks/mixed_tables.py`` (packages
that bundle them: palmerpenguins, vega_datasets, statsmodels, scikit-learn),
3-fold (shuffled, seed 0): detectors are fitted on two folds, and scored on
the third fold's rows (normal) and on as many anomalies made from them:

- ``swap`` (every table): each held-out row with one categorical column's
  value replaced by another category of that column (drawn uniformly among
  those seen in training), so that its categories no longer agree with each
  other or with its numbers -- the anomaly a mixed table can hide;
- ``penguins-species``: a real novelty -- species dropped, normal rows
  Adelie penguins, outliers Chinstrap penguins (same islands, other bills).

Detectors: ``MixedOutlierDetector()`` defaults; one-hot (``pandas.get_dummies``)
+ ``MAFOutlierDetector()`` defaults; one-hot + ``IsolationForest``; one-hot +
standardised ``LocalOutlierFactor(novelty=True)``; and the per-category
Gaussian mixture of ``mixed_tables.py`` (frequency of the row's categories
times a GMM of its numbers).  Printed: ROC AUC (outliers against held-out
normals, mean over folds) and, for MixedOutlierDetector, the false discovery
proportion of ``predict`` with ``fdr=0.1`` (mean over folds).

Run: ``python benchmarks/mixed_outliers.py [--tasks penguins cars ...] [--json results/mixed_outliers.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _machine import machine_line  # benchmarks/_machine.py
from mixed_tables import PerCategoryGMM, kinds, load_tables
from skflow import MAFOutlierDetector, MixedOutlierDetector
from skflow.estimators._conformal import benjamini_hochberg


def swapped(test: pd.DataFrame, train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``test`` with one categorical column per row set to another category seen in ``train``."""
    rng = np.random.RandomState(seed)
    cat, _, _ = kinds(train)
    out = test.copy()
    for i in range(len(out)):
        c = cat[rng.randint(len(cat))]
        seen = [v for v in train[c].unique() if v != out[c].iloc[i]]
        if seen:
            out.iloc[i, out.columns.get_loc(c)] = seen[rng.randint(len(seen))]
    return out


def tasks(tables):
    """(name, normal rows, outlier rows or None for swaps) of every task."""
    out = [(f"{name}-swap", frame, None) for name, frame in tables.items() if kinds(frame)[0]]
    penguins = tables["penguins"]
    rest = penguins.drop(columns=["species"])
    out.append(("penguins-species", rest[penguins.species == "Adelie"].reset_index(drop=True),
                rest[penguins.species == "Chinstrap"].reset_index(drop=True)))
    return out


class OneHot:
    """A numeric detector behind ``pandas.get_dummies`` (columns fixed by the training rows)."""

    def __init__(self, detector):
        self.detector = detector

    def fit(self, frame):
        self.columns = pd.get_dummies(frame, dtype=float).columns
        self.detector.fit(self._x(frame))
        return self

    def _x(self, frame):
        return pd.get_dummies(frame, dtype=float).reindex(columns=self.columns, fill_value=0.0).to_numpy()

    def score_samples(self, frame):
        return self.detector.score_samples(self._x(frame))


DETECTORS = {
    "MixedOutlierDet.": lambda: MixedOutlierDetector(random_state=0),
    "one-hot MAF": lambda: OneHot(MAFOutlierDetector(random_state=0)),
    "one-hot IForest": lambda: OneHot(IsolationForest(random_state=0)),
    "one-hot LOF": lambda: OneHot(make_pipeline(StandardScaler(), LocalOutlierFactor(novelty=True))),
    "per-category GMM": lambda: PerCategoryGMM(),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="*")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine_line())
    results = []
    print(f"{'task':<22} " + " ".join(f"{d:>17}" for d in DETECTORS) + f" {'FDP(fdr=0.1)':>13} {'fit s':>6}")
    for name, normal, outliers in tasks(load_tables()):
        if args.tasks and not any(name.startswith(t) for t in args.tasks):
            continue
        aucs, fdps, seconds = {d: [] for d in DETECTORS}, [], []
        for k, (train, test) in enumerate(KFold(args.folds, shuffle=True, random_state=0).split(normal)):
            tr, te = normal.iloc[train].reset_index(drop=True), normal.iloc[test].reset_index(drop=True)
            bad = swapped(te, tr, k) if outliers is None else outliers
            rows = pd.concat([te, bad], ignore_index=True)
            is_outlier = np.r_[np.zeros(len(te)), np.ones(len(bad))]
            for d, make in DETECTORS.items():
                began = time.perf_counter()
                model = make().fit(tr)
                if d == "MixedOutlierDet.":
                    seconds.append(time.perf_counter() - began)
                    fdps.append(_false_discovery_proportion(model, rows, is_outlier))
                scores = np.asarray(model.score_samples(rows), dtype=float)
                scores = np.where(np.isfinite(scores), scores, np.nanmin(scores[np.isfinite(scores)]) - 1e3)
                aucs[d].append(roc_auc_score(is_outlier, -scores))
        row = dict(task=name, auc={d: float(np.mean(v)) for d, v in aucs.items()},
                   fdp=float(np.mean(fdps)), fit_s=float(np.mean(seconds)))
        results.append(row)
        print(f"{name:<22} " + " ".join(f"{row['auc'][d]:>17.3f}" for d in DETECTORS)
              + f" {row['fdp']:>13.3f} {row['fit_s']:>6.1f}", flush=True)
    if results:
        means = {d: np.mean([r["auc"][d] for r in results]) for d in DETECTORS}
        ranks = np.mean([len(DETECTORS) - pd.Series(r["auc"]).rank().to_numpy() + 1 for r in results], axis=0)
        print(f"{'mean AUC':<22} " + " ".join(f"{means[d]:>17.3f}" for d in DETECTORS))
        print(f"{'mean rank':<22} " + " ".join(f"{r:>17.2f}" for r in ranks))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=1))


def _false_discovery_proportion(model, rows, is_outlier) -> float:
    flagged = benjamini_hochberg(model.p_values(rows), 0.1) == -1
    return float((flagged & (is_outlier == 0)).sum() / max(flagged.sum(), 1))


if __name__ == "__main__":
    main()
