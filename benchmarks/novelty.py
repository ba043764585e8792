"""Novelty detection on real data: ROC AUC, mean rank, false discoveries and p-value calibration.

Twelve one-class tasks from data that needs no network (scikit-learn's
bundled sets, ../shared/data, and the optional packages statsmodels,
palmerpenguins and vega_datasets; tasks whose data are missing are
skipped).  Each detector is fitted on normal rows only and scores test rows
of the normal class and of the others.  Eight tasks have a *source shift*:
the test's normal rows come from sources the training rows do not (new
speakers, later recording days, later years), so that nothing guarantees
that held-out and new normal rows look alike.

Per task and detector: ROC AUC (mean over repetitions with different
splits) and the rank among detectors; for MAFOutlierDetector also

- the empirical false discovery rate of ``predict`` with ``fdr=0.1``
  (Benjamini-Hochberg on the conformal p-values of all test rows): the
  share of flagged rows that are normal, 0 when nothing is flagged;
- the Kolmogorov-Smirnov test of randomised conformal p-values of held-out
  normal rows against the uniform distribution, each from its own
  resampled calibration set (``resampled_p_values``; on the tasks without
  a shift the guarantee says uniform): one test per task on the draws of
  all its repetitions, and the smallest of the repetitions' own tests (five
  tests per task, so that under the guarantee about one task in twenty has
  a smallest p below 0.01).

Detectors: MAFOutlierDetector defaults (and told the training rows'
sources, ``fit(groups=...)``, where known), one full Gaussian,
GaussianMixture (components and covariance type by 3-fold GridSearchCV),
IsolationForest, LocalOutlierFactor(novelty=True) and OneClassSVM; each
behind the task's preprocessing and a StandardScaler.

    python benchmarks/novelty.py [--repeats 5] [--tasks SUBSTRING ...] [--json results/novelty.json]
        [--maf KEY=VALUE ...]   # MAFOutlierDetector parameters to try

Prints markdown tables and the CPU; writes JSON.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kstest
from sklearn.datasets import load_digits, load_iris
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
from small_data import (_mel_features, _parameters, _speech_commands,  # noqa: E402
                        dequantised, fit_timed, novelty_models, novelty_tasks)
from skflow.datasets import speaker_split  # noqa: E402
from _machine import cpu_name  # noqa: E402

FDR = 0.1


def _one_class(X, normal, rng, train_share=0.7):
    """Train on a random 70 % of the normal rows; test on the rest and every other row."""
    normal_rows = np.flatnonzero(normal)
    rng.shuffle(normal_rows)
    cut = int(train_share * len(normal_rows))
    test = np.r_[normal_rows[cut:], np.flatnonzero(~normal)]
    return X[normal_rows[:cut]], X[test], normal[test].astype(int)


def _shifted(X, normal, early):
    """Train on the normal rows of the early sources; test on every row of the later ones."""
    return X[normal & early], X[~early], normal[~early].astype(int)


def extra_tasks(repeats: int):
    """The tasks beyond ``small_data.novelty_tasks`` (same tuple layout)."""
    speech = _speech_commands()
    if speech is not None:
        X = _mel_features(speech.paths)
        is_no = np.flatnonzero(speech.word == "no")
        for r in range(repeats):
            train, held = speaker_split(speech.speaker[is_no], 0.3, r)
            test = np.r_[is_no[held], np.flatnonzero(speech.word != "no")]
            yield ("speech: 'no' of new speakers vs other words and silence", r, X[is_no[train]], X[test],
                   (speech.word[test] == "no").astype(int), [], speech.speaker[is_no[train]])
    for r in range(repeats):
        rng = np.random.RandomState(100 + r)
        iris = load_iris()
        yield ("iris: versicolor vs the other species", r,
               *_one_class(dequantised(iris.data, r)[0], iris.target == 1, rng), [], None)
        digits = load_digits()
        X = dequantised(digits.data, r)[0]
        yield ("digits (8x8 images): one digit vs the others", r,
               *_one_class(X, digits.target == r % 10, rng), [], None)
    try:
        import statsmodels.api as sm

        fair = sm.datasets.fair.load_pandas().data
        X = dequantised(fair.drop(columns="affairs").to_numpy(float))[0]
        for r in range(repeats):
            yield ("fair: no affair vs affairs (survey)", r,
                   *_one_class(X, (fair.affairs == 0).to_numpy(), np.random.RandomState(200 + r)), [], None)
    except ImportError:
        print("statsmodels not installed: its task skipped", file=sys.stderr)
    try:
        from palmerpenguins import load_penguins

        p = load_penguins().dropna(subset=["bill_length_mm"])
        X = p[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]].to_numpy(float)
        for r in range(repeats):  # one split (the years); the repetitions vary the dequantisation noise
            X_r = dequantised(X, r)[0]
            yield ("penguins: Adelie of 2009 (trained on 2007-08) vs other species", r,
                   *_shifted(X_r, (p.species == "Adelie").to_numpy(), (p.year < 2009).to_numpy()), [],
                   p.island[(p.species == "Adelie") & (p.year < 2009)].to_numpy())
    except ImportError:
        print("palmerpenguins not installed: its task skipped", file=sys.stderr)
    try:
        from vega_datasets import local_data

        w = local_data.seattle_weather()
        w = w[w.weather.isin(["sun", "rain", "snow"])]
        X = w[["precipitation", "temp_max", "temp_min", "wind"]].to_numpy(float)
        years = w.date.dt.year.to_numpy()
        sunny = (w.weather == "sun").to_numpy()
        for r in range(repeats):
            X_r = dequantised(X, r)[0]
            yield ("seattle weather: sunny days of 2014-15 (trained on 2012-13) vs rain, snow", r,
                   *_shifted(X_r, sunny, years < 2014), [], years[sunny & (years < 2014)])
        cars = local_data.cars().dropna()
        X = cars[["Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower", "Weight_in_lbs",
                  "Acceleration"]].to_numpy(float)
        year = cars.Year.dt.year.to_numpy()
        usa = (cars.Origin == "USA").to_numpy()
        for r in range(repeats):
            X_r = dequantised(X, r)[0]
            yield ("cars: US models of 1977-82 (trained on 1970-76) vs European, Japanese", r,
                   *_shifted(X_r, usa, year < 1977), [], year[usa & (year < 1977)])
    except ImportError:
        print("vega_datasets not installed: its tasks skipped", file=sys.stderr)


SHIFTED = ("new speakers", "later recording days", "2014-15", "1977-82", "of 2009")


def resampled_p_values(calibration, normal_scores, seed, draws=500) -> np.ndarray:
    """Randomised conformal p-values of held-out normal rows, each from its
    own calibration set.

    p-values of many rows against one calibration set are not independent
    draws of the uniform distribution (they share that set's luck), so a KS
    test on them rejects a valid method once the rows outnumber the
    calibration rows.  Here each draw splits the held-out normal rows (the
    calibration rows and the test's normal rows, exchangeable under the
    same fitted model) afresh into a calibration set of the same size and
    one new row, and takes its randomised conformal p-value, which is
    exactly uniform under exchangeability; at most one draw per row.
    """
    rng = np.random.RandomState(seed)
    pool = np.r_[calibration, normal_scores]
    n = len(calibration)
    values = []
    for _ in range(min(draws, len(pool))):
        order = rng.permutation(len(pool))
        cal, s = pool[order[:n]], pool[order[n]]
        values.append((np.sum(cal < s) + rng.uniform() * (1 + np.sum(cal == s))) / (n + 1))
    return np.array(values)


def run(repeats, only=None, maf_params=None):
    results = {}
    tasks = list(novelty_tasks(False, repeats)) + list(extra_tasks(repeats))
    for task, r, X_train, X_test, y_test, pre, groups in tasks:
        if only and not any(s in task for s in only):
            continue
        models = novelty_models(maf_params or {}, False)
        runs = [(m, model, None) for m, model in models.items()]
        maf_name = next(iter(models))
        if groups is not None and len(np.unique(groups)) > 1:
            runs.insert(1, (maf_name + ", fit(groups=sources)", models[maf_name], groups))
        for m, model, g in runs:
            pipe, seconds = fit_timed(pre, model, X_train, g)
            entry = results.setdefault((task, m), dict(aucs=[], seconds=[], fdr=[], flagged=[], ks=[], p_values=[],
                                                       n_train=len(X_train), n_test=len(X_test)))
            entry["aucs"].append(float(roc_auc_score(y_test, pipe.score_samples(X_test))))
            entry["seconds"].append(seconds)
            if m == maf_name:
                det, Z = pipe[-1], pipe[:-1].transform(X_test)
                flagged = det.set_params(fdr=FDR).predict(Z) == -1
                entry["fdr"].append(float((flagged & (y_test == 1)).sum() / max(1, flagged.sum())))
                entry["flagged"].append(int(flagged.sum()))
                values = resampled_p_values(det.calibration_scores_, det.score_samples(Z[y_test == 1]), r)
                entry["ks"].append(float(kstest(values, "uniform").pvalue))
                entry["p_values"].append(values)
        print(f"{task[:60]:60s} rep {r}: " + "  ".join(
            f"{m.split(' ')[0][:12]} {results[(task, m)]['aucs'][-1]:.3f}" for m, _, _ in runs), flush=True)
    rows = []
    for (task, m), e in results.items():
        a = np.array(e["aucs"])
        rows.append(dict(task=task, model=m, shift=any(s in task for s in SHIFTED), mean=float(a.mean()),
                         sd=float(a.std(ddof=1)) if len(a) > 1 else 0.0, aucs=a.tolist(),
                         n_train=e["n_train"], n_test=e["n_test"], fit_seconds=float(np.mean(e["seconds"])),
                         fdr=float(np.mean(e["fdr"])) if e["fdr"] else None,
                         flagged=float(np.mean(e["flagged"])) if e["flagged"] else None,
                         ks_min=float(np.min(e["ks"])) if e["ks"] else None,
                         ks_pooled=float(kstest(np.concatenate(e["p_values"]), "uniform").pvalue) if e["ks"]
                         else None))
    return rows


def bootstrap_ranks(aucs, draws=2000, seed=0):
    """How much the mean rank owes to the repetitions drawn: ``aucs[t][m]``
    holds model ``m``'s AUC per repetition of task ``t``.  Each draw resamples
    every task's repetitions with replacement (the same ones for every
    model, which saw the same splits), ranks the models by their mean AUC
    over them and averages the ranks over tasks.  Returns each model's 5th
    and 95th percentile of the mean rank and the share of draws in which it
    has the best one (ties shared)."""
    rng = np.random.RandomState(seed)
    n_models = len(aucs[0])
    mean_ranks = np.zeros((draws, n_models))
    for t in aucs:
        a = np.array(t)  # (models, repetitions)
        pick = rng.randint(a.shape[1], size=(draws, a.shape[1]))
        means = a[:, pick].mean(2).T  # (draws, models)
        mean_ranks += (-means).argsort(1).argsort(1) + 1
    mean_ranks /= len(aucs)
    best = mean_ranks == mean_ranks.min(1, keepdims=True)
    share = (best / best.sum(1, keepdims=True)).mean(0)
    return np.percentile(mean_ranks, 5, axis=0), np.percentile(mean_ranks, 95, axis=0), share


def tables(rows) -> str:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows if ", fit(groups" not in r["model"]))
    by = {(r["task"], r["model"]): r for r in rows}
    out = ["| task | shift | " + " | ".join(models) + " | MAF, fit(groups=sources) |",
           "|---|---|" + "---:|" * (len(models) + 1)]
    ranks = {m: [] for m in models}
    for t in tasks:
        means = np.array([by[(t, m)]["mean"] for m in models])
        order = (-means).argsort().argsort() + 1  # 1 = best
        for m, k in zip(models, order):
            ranks[m].append(int(k))
        best = means.max()
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in means]
        grouped = by.get((t, models[0] + ", fit(groups=sources)"))
        shift = "yes" if by[(t, models[0])]["shift"] else ""
        out.append(f"| {t} | {shift} | " + " | ".join(cells) + f" | {grouped['mean']:.3f} |" if grouped
                   else f"| {t} | {shift} | " + " | ".join(cells) + " | |")
    out.append("| **mean rank** | | " + " | ".join(f"{np.mean(ranks[m]):.2f}" for m in models) + " | |")
    out.append("| **mean AUC** | | " + " | ".join(
        f"{np.mean([by[(t, m)]['mean'] for t in tasks]):.3f}" for m in models) + " | |")
    low, high, best_share = bootstrap_ranks([[by[(t, m)]["aucs"] for m in models] for t in tasks])
    out.append("| mean rank, 90 % bootstrap interval | | " + " | ".join(
        f"{a:.2f}-{b:.2f}" for a, b in zip(low, high)) + " | |")
    out.append("| share of draws with the best mean rank | | " + " | ".join(
        f"{v:.2f}" for v in best_share) + " | |")
    maf = models[0]
    out += ["", f"MAFOutlierDetector, `predict` with fdr={FDR} (Benjamini-Hochberg on conformal p-values), "
            "and the KS test of resampled randomised p-values of held-out normals against uniform "
            "(one test on the draws of all repetitions; the smallest of the repetitions' own tests):", "",
            "| task | shift | flagged rows (mean) | empirical FDR | KS p (pooled) | KS p (min) |",
            "|---|---|---:|---:|---:|---:|"]
    for t in tasks:
        r = by[(t, maf)]
        out.append(f"| {t} | {'yes' if r['shift'] else ''} | {r['flagged']:.1f} | {r['fdr']:.3f} | "
                   f"{r['ks_pooled']:.3g} | {r['ks_min']:.3g} |")
    for shift in (False, True):
        sel = [by[(t, maf)] for t in tasks if by[(t, maf)]["shift"] == shift]
        if sel:
            out.append(f"| mean over {'shifted' if shift else 'unshifted'} tasks | | | "
                       f"{np.mean([r['fdr'] for r in sel]):.3f} | | |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", nargs="*", default=None, help="only tasks whose name contains one of these")
    parser.add_argument("--json", default="results/novelty.json")
    parser.add_argument("--maf", nargs="*", default=[], help="MAFOutlierDetector parameters to try, KEY=VALUE")
    args = parser.parse_args()
    cpu = cpu_name()
    print(f"CPU: {cpu}; load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = run(args.repeats, args.tasks, _parameters(args.maf))
    print()
    print(tables(rows))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(cpu=cpu, rows=rows), indent=2))


if __name__ == "__main__":
    main()
