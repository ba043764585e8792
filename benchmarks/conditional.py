"""Conditional flows against scikit-learn's classifiers and regressors.

Classification (stratified k-fold, every model in the same Pipeline after a
StandardScaler): accuracy and log loss of MAFClassifier (defaults) against
QuadraticDiscriminantAnalysis (reg_param by inner 3-fold CV on log loss),
GaussianNB, LogisticRegression and one GaussianMixture per class
(components and covariance type by BIC).  Data: iris, wine, breast cancer,
digits (bundled with scikit-learn) and the gas drift data's six gases
(``../shared/data``; discrete column dropped, CorrelationFilter(0.98)).

Regression (k-fold): held-out mean conditional log-likelihood (nats per row,
in the targets' units) and the coverage of central 90 % intervals.
MAFRegressor (defaults: the MADE mixture-of-Gaussians base; and with the
normal base) against homoscedastic Gaussians around a linear and
an MLP mean (sigma from 3-fold out-of-fold residuals of the training rows)
and, for coverage, gradient-boosted quantile regression (5 % and 95 %).
Data: a synthetic heteroscedastic set with known truth (the true
conditional density's log-likelihood is printed), scikit-learn's diabetes,
the gas drift log-concentration given the 128 sensor features
(quantile-normalised for every model: they are heavy-tailed), and household
power (global active power, and power with voltage as two targets, given
the time of day, weekday and month; a 20,000-row sample).

    python benchmarks/conditional.py [--quick] [--folds 5] [--json results/conditional.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm, multivariate_normal
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from _machine import cpu_name  # benchmarks/_machine.py
from skflow import MAFClassifier, MAFRegressor
from skflow.datasets import load_gas_drift
from skflow.preprocessing import CorrelationFilter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# ------------------------------------------------------------------ data
def classification_sets(quick: bool):
    sets = {"iris": load_iris(return_X_y=True), "wine": load_wine(return_X_y=True),
            "breast cancer": load_breast_cancer(return_X_y=True), "digits": load_digits(return_X_y=True)}
    try:
        drift = load_gas_drift()
        X = CorrelationFilter(threshold=0.98).fit_transform(drift.data[:, 1:])
        sets["gas drift (6 gases)"] = (X, drift.target)
    except FileNotFoundError:
        print("gas drift data not found: skipped", file=sys.stderr)
    if quick:
        sets = {k: sets[k] for k in ("iris", "wine")}
    return sets


def regression_sets(quick: bool):
    rng = np.random.RandomState(0)
    x = rng.uniform(-3, 3, size=(3000, 2))
    loc = np.sin(x[:, 0]) + 0.5 * x[:, 1]
    scale = 0.1 + 0.4 * np.abs(x[:, 0])
    y = loc + scale * rng.normal(size=len(x))
    sets = {"synthetic heteroscedastic": (x, y, (loc, scale))}
    sets["diabetes"] = (*load_diabetes(return_X_y=True), None)
    try:
        drift = load_gas_drift()
        # The sensor features are heavy-tailed (glitches score 1e4 standard deviations
        # out): every model gets them quantile-normalised (fitted on each training fold).
        sets["gas drift log-concentration"] = (drift.data[:, 1:], np.log(drift.data[:, 0]), None)
    except FileNotFoundError:
        print("gas drift data not found: skipped", file=sys.stderr)
    power = SHARED / "uci_household_power_consumption" / "householdpower.csv.gz"
    if power.exists():
        import pandas as pd

        frame = pd.read_csv(power).sample(20000, random_state=0)
        when = pd.to_datetime(frame["date_time"])
        minute = (when.dt.hour * 60 + when.dt.minute).to_numpy()
        month = when.dt.month.to_numpy()
        features = np.c_[np.sin(2 * np.pi * minute / 1440), np.cos(2 * np.pi * minute / 1440),
                         when.dt.weekday.to_numpy(), np.sin(2 * np.pi * month / 12), np.cos(2 * np.pi * month / 12)]
        sets["power: active power | time"] = (features, frame["Global_active_power"].to_numpy(), None)
        sets["power: (active power, voltage) | time"] = (
            features, frame[["Global_active_power", "Voltage"]].to_numpy(), None)
    if quick:
        sets = {k: sets[k] for k in ("synthetic heteroscedastic", "diabetes")}
    return sets


# ---------------------------------------------------------- classifiers
class GaussianMixtureClassifier(ClassifierMixin, BaseEstimator):
    """One GaussianMixture per class (components and covariance type by BIC), Bayes' rule."""

    def fit(self, X, y):
        self.classes_, labels = np.unique(y, return_inverse=True)
        self.log_prior_ = np.log(np.bincount(labels) / len(labels))
        self.mixtures_ = []
        for k in range(len(self.classes_)):
            rows = X[labels == k]
            best = None
            for n in (1, 2, 4):
                for cov in ("full", "diag"):
                    if n > len(rows) // 2 and n > 1:
                        continue
                    gm = GaussianMixture(n, covariance_type=cov, reg_covar=1e-3, random_state=0).fit(rows)
                    bic = gm.bic(rows)
                    if best is None or bic < best[0]:
                        best = (bic, gm)
            self.mixtures_.append(best[1])
        return self

    def predict_proba(self, X):
        joint = np.stack([m.score_samples(X) for m in self.mixtures_], 1) + self.log_prior_
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def classifiers(quick: bool):
    maf = MAFClassifier(random_state=0, max_iter=5 if quick else 200)
    return {
        "MAFClassifier (defaults)": make_pipeline(StandardScaler(), maf),
        "QDA (reg_param by CV)": GridSearchCV(
            make_pipeline(StandardScaler(), QuadraticDiscriminantAnalysis()),
            {"quadraticdiscriminantanalysis__reg_param": [0.0, 0.01, 0.1, 0.3, 0.6, 0.9]},
            cv=3, scoring="neg_log_loss"),
        "LDA": make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()),
        "GaussianNB": make_pipeline(StandardScaler(), GaussianNB()),
        "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
        "GaussianMixture per class (BIC)": make_pipeline(StandardScaler(), GaussianMixtureClassifier()),
        "LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
    }


def run_classification(quick, folds):
    rows = []
    for name, (X, y) in classification_sets(quick).items():
        split = StratifiedKFold(folds, shuffle=True, random_state=0)
        for model_name, model in classifiers(quick).items():
            acc, loss, seconds = [], [], []
            for train, test in split.split(X, y):
                began = time.perf_counter()
                fitted = clone(model).fit(X[train], y[train])
                seconds.append(time.perf_counter() - began)
                proba = fitted.predict_proba(X[test])
                acc.append(accuracy_score(y[test], fitted.classes_[proba.argmax(1)]))
                loss.append(log_loss(y[test], proba, labels=fitted.classes_))
            row = dict(data=name, n=len(X), d=X.shape[1], classes=len(np.unique(y)), model=model_name,
                       accuracy=float(np.mean(acc)), accuracy_sd=float(np.std(acc)),
                       log_loss=float(np.mean(loss)), log_loss_sd=float(np.std(loss)),
                       fit_seconds=float(np.mean(seconds)))
            rows.append(row)
            print(f"{name:22s} {model_name:34s} acc {row['accuracy']:.3f} +/- {row['accuracy_sd']:.3f}  "
                  f"log loss {row['log_loss']:.4f} +/- {row['log_loss_sd']:.4f}  fit {row['fit_seconds']:6.2f}s",
                  flush=True)
    return rows


# ----------------------------------------------------------- regressors
def gaussian_log_likelihood(mean, y, residuals):
    """Homoscedastic Gaussian log-density (full covariance of the residuals for several targets)."""
    if y.ndim == 1:
        return norm(mean, residuals.std()).logpdf(y)
    cov = np.cov(residuals.T, bias=True)
    return np.array([multivariate_normal(m, cov).logpdf(t) for m, t in zip(mean, y)])


def covered(y, lower, upper) -> float:
    """Share of rows whose targets (all of them) lie in their intervals."""
    inside = (y >= lower) & (y <= upper)
    return float((inside.all(axis=1) if inside.ndim > 1 else inside).mean())


def run_regression(quick, folds):
    rows = []
    for name, (X, y, truth) in regression_sets(quick).items():
        split = KFold(folds, shuffle=True, random_state=0)
        scores = {}
        for train, test in split.split(X):
            Xtr, Xte, ytr, yte = X[train], X[test], y[train], y[test]
            if name.startswith("gas drift"):
                normalise = QuantileTransformer(output_distribution="normal", random_state=0).fit(Xtr)
                Xtr, Xte = normalise.transform(Xtr), normalise.transform(Xte)
            results = {}
            for label, options in [("MAFRegressor (defaults: base='made_mog')", {}),
                                   ("MAFRegressor (base='normal')", {"base": "normal"})]:
                began = time.perf_counter()
                maf = MAFRegressor(random_state=0, max_iter=5 if quick else 200, **options).fit(Xtr, ytr)
                fit_s = time.perf_counter() - began
                lower, upper = maf.predict_interval(Xte, 0.9)
                results[label] = (maf.log_prob(Xte, yte).mean(), covered(yte, lower, upper), fit_s,
                                  maf.score(Xte, yte))
            for label, base in [("Gaussian around LinearRegression", LinearRegression()),
                                ("Gaussian around MLPRegressor", MLPRegressor(
                                    hidden_layer_sizes=(100, 100), early_stopping=True, max_iter=500, random_state=0))]:
                model = make_pipeline(StandardScaler(), base)
                began = time.perf_counter()
                oof = cross_val_predict(model, Xtr, ytr, cv=3)
                fitted = clone(model).fit(Xtr, ytr)
                fit_s = time.perf_counter() - began
                mean = fitted.predict(Xte)
                z = norm.ppf(0.95) * (ytr - oof).std(0)
                results[label] = (gaussian_log_likelihood(mean, yte, ytr - oof).mean(),
                                  covered(yte, mean - z, mean + z), fit_s, fitted.score(Xte, yte))
            if y.ndim == 1:
                # A Gaussian whose mean and spread both vary with x: boosting for the mean,
                # and boosting on the out-of-fold log squared residuals for the spread.
                began = time.perf_counter()
                booster = HistGradientBoostingRegressor(random_state=0)
                oof = cross_val_predict(booster, Xtr, ytr, cv=3)
                mean_model = clone(booster).fit(Xtr, ytr)
                spread = clone(booster).fit(Xtr, np.log((ytr - oof) ** 2 + 1e-12))
                fit_s = time.perf_counter() - began
                # E[log chi2_1] = -1.2704: the log-variance is the fitted mean log square plus 1.2704
                sigma = np.sqrt(np.exp(spread.predict(Xte) + 1.2704))
                mean = mean_model.predict(Xte)
                results["Gaussian, boosted mean and spread"] = (
                    norm(mean, sigma).logpdf(yte).mean(), covered(yte, mean - 1.645 * sigma, mean + 1.645 * sigma),
                    fit_s, mean_model.score(Xte, yte))
                began = time.perf_counter()
                q = [HistGradientBoostingRegressor(loss="quantile", quantile=p, random_state=0).fit(Xtr, ytr)
                     for p in (0.05, 0.95)]
                fit_s = time.perf_counter() - began
                results["quantile boosting (5 %, 95 %)"] = (
                    np.nan, covered(yte, q[0].predict(Xte), q[1].predict(Xte)), fit_s, np.nan)
            if truth is not None:
                loc, scale = truth
                results["true conditional density"] = (norm(loc[test], scale[test]).logpdf(yte).mean(),
                                                       np.nan, np.nan, np.nan)
            for label, values in results.items():
                scores.setdefault(label, []).append(values)
        for label, values in scores.items():
            v = np.array(values, dtype=float)
            row = dict(data=name, n=len(X), d=X.shape[1], targets=1 if y.ndim == 1 else y.shape[1], model=label,
                       log_likelihood=float(v[:, 0].mean()), log_likelihood_sd=float(v[:, 0].std()),
                       coverage_90=float(v[:, 1].mean()), fit_seconds=float(v[:, 2].mean()), r2=float(v[:, 3].mean()))
            rows.append(row)
            print(f"{name:38s} {label:34s} log-lik {row['log_likelihood']:9.3f} +/- {row['log_likelihood_sd']:.3f}  "
                  f"90% coverage {row['coverage_90']:.3f}  R2 {row['r2']:.3f}  fit {row['fit_seconds']:6.2f}s",
                  flush=True)
    return rows


def markdown(classification, regression) -> str:
    lines = ["| data | model | accuracy | log loss | fit s |", "|---|---|---:|---:|---:|"]
    for r in classification:
        lines.append(f"| {r['data']} ({r['n']} x {r['d']}, {r['classes']} classes) | {r['model']} | "
                     f"{r['accuracy']:.3f} | {r['log_loss']:.4f} ± {r['log_loss_sd']:.4f} | {r['fit_seconds']:.2f} |")
    lines += ["", "| data | model | log-likelihood | 90 % coverage | R² | fit s |", "|---|---|---:|---:|---:|---:|"]
    for r in regression:
        fmt = lambda v, f: "" if v != v else format(v, f)  # NaN -> empty cell
        lines.append(f"| {r['data']} ({r['n']} x {r['d']}) | {r['model']} | {fmt(r['log_likelihood'], '.3f')} | "
                     f"{fmt(r['coverage_90'], '.3f')} | {fmt(r['r2'], '.3f')} | {fmt(r['fit_seconds'], '.2f')} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small sets each, few epochs (smoke run)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", choices=["classification", "regression"])
    parser.add_argument("--json", default="results/conditional.json")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}", flush=True)
    classification = [] if args.only == "regression" else run_classification(args.quick, args.folds)
    regression = [] if args.only == "classification" else run_regression(args.quick, args.folds)
    print()
    print(markdown(classification, regression))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(cpu=cpu_name(), folds=args.folds, classification=classification,
                                               regression=regression), indent=1))


if __name__ == "__main__":
    main()
