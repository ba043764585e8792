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

    python benchmarks/audio_outliers.py [--targets yes no up down] [--json results/audio_outliers.json]
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


def evaluate(index, waves, mel, target, random_state=0):
    is_target = np.flatnonzero(index.word == target)
    train, held = speaker_split(index.speaker[is_target], 0.3, random_state)
    train, held = is_target[train], is_target[held]
    others = [w for w in index.words if w != target]
    rows = []
    detectors = {**frame_detectors(random_state),
                 **{f"clips: {k}": v for k, v in make_detectors(random_state).items()}}
    for name, det in detectors.items():
        clip_level = name.startswith("clips")
        data = mel if clip_level else waves

        def pick(idx):
            return data[idx] if clip_level else [data[i] for i in idx]

        began = time.perf_counter()
        det.fit(pick(train))
        fit_s = time.perf_counter() - began
        began = time.perf_counter()
        scores = {w: det.score_samples(pick(np.flatnonzero(index.word == w))) for w in others}
        scores[target] = det.score_samples(pick(held))
        score_s = time.perf_counter() - began
        aucs = {}
        for w in others:
            y = np.r_[np.ones(len(scores[target])), np.zeros(len(scores[w]))]
            aucs[w] = float(roc_auc_score(y, np.r_[scores[target], scores[w]]))
        means = {w: float(np.mean(s)) for w, s in scores.items()}
        rank = 1 + sorted(means, key=means.get, reverse=True).index(target)
        worst = min(aucs, key=aucs.get)
        rows.append(dict(target=target, detector=name, mean_auc=float(np.mean(list(aucs.values()))),
                         min_auc=aucs[worst], worst_word=worst, target_rank=rank, aucs=aucs,
                         fit_seconds=fit_s, score_seconds=score_s, n_train=len(train), n_heldout=len(held)))
        print(f"{target:>5} {name:28s} mean AUC {rows[-1]['mean_auc']:.3f}  min {aucs[worst]:.3f} ({worst})"
              f"  rank {rank:2d}  fit {fit_s:6.1f}s  score {score_s:5.1f}s", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["yes", "no", "up", "down"])
    parser.add_argument("--json", default="results/audio_outliers.json")
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
        rows += evaluate(index, waves, mel, target)
    print("\n| target | detector | mean AUC | min AUC (word) | target rank | fit s | score s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['target']} | {r['detector']} | {r['mean_auc']:.3f} | {r['min_auc']:.3f} ({r['worst_word']}) | "
              f"{r['target_rank']} | {r['fit_seconds']:.1f} | {r['score_seconds']:.1f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(cpu=cpu_name(), features=FrameFeatures().get_params(),
                                               rows=rows), indent=2))


if __name__ == "__main__":
    main()
