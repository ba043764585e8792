"""Spoken-word outliers: frame-level densities against clip-level detectors.

Speech Commands v0.02 test subset (../shared/data).  For each target word,
the target's clips are split by speaker (70 % of speakers train, the rest are
held out, as ``skflow audio-outliers`` does); every detector is fitted on the
training clips and scores the held-out target clips against every other word
and _silence_.  Per target: mean and minimum ROC AUC over the other words,
the held-out target's rank by mean score among all words (1 is best), fit and
scoring seconds.

Detectors: ``FrameOutlierDetector`` with its default MAF and with a
GaussianMixture on the same frames (speaker verification's GMM-UBM
baseline), and the clip-level detectors of ``skflow audio-outliers`` on
``MelFeatures`` (MAF, IsolationForest, LOF, OneClassSVM, GaussianMixture).

With ``--background`` the speakers of every word are split (70 % train),
only the held-out speakers' clips are scored, and detectors scoring by a
likelihood ratio against a background fitted to the training speakers'
clips of every other word (``--background-all-words``: of every word, the
target's too) run beside the same detectors without one.

    python benchmarks/audio_outliers.py [--targets yes no up down] [--json results/audio_outliers.json]
        [--background [--background-all-words]] [--seeds 0 1 2]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from skflow import GaussianDensity, MAFOutlierDetector
from skflow.audio import FrameFeatures, FrameOutlierDetector, MelFeatures, read_wav
from skflow.experiments import make_detectors
from skflow.datasets import find_shared_data, load_speech_commands, speaker_split

sys.path.insert(0, str(Path(__file__).parent))
from small_data import cpu_name  # noqa: E402  (same folder)


def frame_detectors(random_state=0) -> dict:
    return {
        "frames: MAF": FrameOutlierDetector(random_state=random_state),
        "frames: GMM (32 diag)": FrameOutlierDetector(
            density=GaussianMixture(32, covariance_type="diag", reg_covar=1e-3, random_state=random_state)),
    }


class GaussianRatio:
    """A GaussianDensity of the target over one of every training clip: GMM-UBM's one-component analogue."""

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X, X_background):
        self.target_ = GaussianDensity(random_state=self.random_state).fit(X)
        self.background_ = GaussianDensity(random_state=self.random_state).fit(X_background)
        return self

    def score_samples(self, X):
        return self.target_.score_samples(X) - self.background_.score_samples(X)


def background_detectors(random_state=0) -> dict:
    return {
        "frames: MAF": FrameOutlierDetector(random_state=random_state),
        "frames: MAF + background": FrameOutlierDetector(random_state=random_state),
        "clips: MAF defaults": MAFOutlierDetector(random_state=random_state),
        "clips: MAF defaults + background": MAFOutlierDetector(random_state=random_state),
        "clips: Gaussian / Gaussian": GaussianRatio(random_state),
        **{f"clips: {k}": v for k, v in make_detectors(random_state).items() if k != "MAF"},
    }


def evaluate(index, waves, mel, target, random_state=0, background=False, all_words=False):
    is_target = np.flatnonzero(index.word == target)
    if background:  # every word's speakers split; only held-out speakers' clips are scored
        train_all, test_all = speaker_split(index.speaker, 0.3, random_state)
        scored = np.zeros(len(index.paths), dtype=bool)
        scored[test_all] = True
        train, held = is_target[~scored[is_target]], is_target[scored[is_target]]
        # the alternative to the target: every other word (as `skflow audio-outliers`)
        background_rows = train_all if all_words else train_all[index.word[train_all] != target]
        detectors = background_detectors(random_state)
    else:
        background_rows, scored = None, np.ones(len(index.paths), dtype=bool)
        train, held = speaker_split(index.speaker[is_target], 0.3, random_state)
        train, held = is_target[train], is_target[held]
        detectors = {**frame_detectors(random_state),
                     **{f"clips: {k}": v for k, v in make_detectors(random_state).items()}}
    others = [w for w in index.words if w != target and np.any((index.word == w) & scored)]
    rows = []
    for name, det in detectors.items():
        clip_level = name.startswith("clips")
        data = mel if clip_level else waves

        def pick(idx):
            return data[idx] if clip_level else [data[i] for i in idx]

        began = time.perf_counter()
        if "background" in name or "/ Gaussian" in name:
            det.fit(pick(train), X_background=pick(background_rows))
        else:
            det.fit(pick(train))
        fit_s = time.perf_counter() - began
        began = time.perf_counter()
        scores = {w: det.score_samples(pick(np.flatnonzero((index.word == w) & scored))) for w in others}
        scores[target] = det.score_samples(pick(held))
        score_s = time.perf_counter() - began
        aucs = {}
        for w in others:
            y = np.r_[np.ones(len(scores[target])), np.zeros(len(scores[w]))]
            aucs[w] = float(roc_auc_score(y, np.r_[scores[target], scores[w]]))
        means = {w: float(np.mean(s)) for w, s in scores.items()}
        rank = 1 + sorted(means, key=means.get, reverse=True).index(target)
        worst = min(aucs, key=aucs.get)
        rows.append(dict(target=target, seed=random_state, detector=name, mean_auc=float(np.mean(list(aucs.values()))),
                         min_auc=aucs[worst], worst_word=worst, target_rank=rank, aucs=aucs,
                         fit_seconds=fit_s, score_seconds=score_s, n_train=len(train), n_heldout=len(held)))
        print(f"{target:>5} {name:28s} mean AUC {rows[-1]['mean_auc']:.3f}  min {aucs[worst]:.3f} ({worst})"
              f"  rank {rank:2d}  fit {fit_s:6.1f}s  score {score_s:5.1f}s", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["yes", "no", "up", "down"])
    parser.add_argument("--json", default="results/audio_outliers.json")
    parser.add_argument("--background", action="store_true",
                        help="every word's speakers split; the detectors with a background model beside "
                             "those without, on the same held-out speakers' clips")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="speaker splits")
    parser.add_argument("--background-all-words", action="store_true",
                        help="backgrounds of every word's training clips, the target's too (before "
                             "2026-12-07 the only choice), instead of every other word's")
    args = parser.parse_args()
    folder = find_shared_data("speech_commands_v0.02_test_subset")
    if folder is None:
        raise SystemExit("Speech Commands data not found (../shared/data/speech_commands_v0.02_test_subset)")
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    index = load_speech_commands(folder)
    waves = [read_wav(p) for p in index.paths]  # read once, shared by every detector
    mel = MelFeatures().fit_transform(waves)
    rows = []
    for target in args.targets:
        for seed in args.seeds:
            rows += evaluate(index, waves, mel, target, seed, args.background, args.background_all_words)
    print("\n| target | split | detector | mean AUC | min AUC (word) | target rank | fit s | score s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['target']} | {r['seed']} | {r['detector']} | {r['mean_auc']:.3f} | {r['min_auc']:.3f} ({r['worst_word']}) | "
              f"{r['target_rank']} | {r['fit_seconds']:.1f} | {r['score_seconds']:.1f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(cpu=cpu_name(), features=FrameFeatures().get_params(),
                                               rows=rows), indent=2))


if __name__ == "__main__":
    main()
