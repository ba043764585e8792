"""The spoken-word outlier experiment: train on one word, flag the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from .. import MAFOutlierDetector
from ..audio import FrameFeatures, FrameOutlierDetector, MelFeatures, SpectrumFeatures, read_wav
from ..datasets import load_speech_commands, speaker_split

__all__ = ["FEATURES", "make_detectors", "run_audio_outliers"]

FEATURES = {"mel": MelFeatures, "spectrum": SpectrumFeatures}


def make_detectors(random_state=0, n_components=0.99) -> dict:
    """MAF and scikit-learn's detectors, each behind the same scaling and PCA whitening.

    Whitening hands every detector decorrelated features; the MAF then starts
    from the full-covariance Gaussian and only has to learn what is left.

    Examples
    --------
    >>> from skflow.experiments import make_detectors
    >>> sorted(make_detectors())
    ['GaussianMixture', 'IsolationForest', 'LOF', 'MAF', 'OneClassSVM']
    """

    def prefix():
        return [StandardScaler(), PCA(n_components, whiten=True, random_state=random_state)]

    return {
        "MAF": make_pipeline(*prefix(), MAFOutlierDetector(
            n_flows=2, hidden_layer_sizes=(64,), validation_fraction=0.2,
            contamination=0.05, random_state=random_state)),
        "IsolationForest": make_pipeline(*prefix(), IsolationForest(random_state=random_state)),
        "LOF": make_pipeline(*prefix(), LocalOutlierFactor(novelty=True)),
        "OneClassSVM": make_pipeline(*prefix(), OneClassSVM()),
        "GaussianMixture": make_pipeline(*prefix(), GaussianMixture(
            1, reg_covar=1e-2, random_state=random_state)),
    }


def _auc(target_scores, other_scores):
    y = np.r_[np.ones(len(target_scores)), np.zeros(len(other_scores))]
    return roc_auc_score(y, np.r_[target_scores, other_scores])


def run_audio_outliers(
    data,
    target="yes",
    *,
    features="mel",
    background=False,
    test_size=0.3,
    random_state=0,
    plot=None,
    json_path=None,
    print_fn=print,
) -> dict:
    """Train on one word's clips, then score every other word and silence.

    The target word's clips are split by speaker (no speaker in both parts).
    Every detector is fitted on the training clips of the target.  For each
    other word the table gives the MAF's mean log-likelihood, that word's
    rank by it among all words (the held-out target clips should rank 1),
    and the ROC AUC of held-out-target vs that word for each detector.

    Parameters
    ----------
    data : str or path-like
        A Speech-Commands-style folder (see
        :func:`skflow.datasets.load_speech_commands`).
    target : str, default="yes"
    features : {"mel", "spectrum", "frames"}, default="mel"
        Clip features for every detector ("mel": :class:`MelFeatures`,
        "spectrum": :class:`SpectrumFeatures`), or "frames": the MAF and a
        32-component GaussianMixture model frame densities
        (:class:`FrameOutlierDetector`), the other detectors mel clip
        summaries.  "mel" has measured best (``benchmarks/audio_outliers.py``).
    background : bool, default=False
        Also score by likelihood ratio: "MAF + background" is
        :class:`MAFOutlierDetector` (defaults; for "frames",
        :class:`FrameOutlierDetector`) with a background
        :class:`~skflow.GaussianDensity` fitted to the training speakers'
        clips of every other word: the alternative to the target, which
        the ratio weighs the target against (a background that holds the
        target word too takes part of what makes a clip like it out of the
        ratio).  The speakers of all words are then split (not only the
        target's), and only the held-out speakers' clips are scored, so
        that no scored clip is in any model's training data.
    test_size : float, default=0.3
        Share of the target's speakers (of every word's, with
        ``background``) held out.
    random_state : int, default=0
    plot : str or path-like, optional
        Save a histogram of MAF scores (held-out target vs the rest) with the
        detector's threshold (needs matplotlib).
    json_path : str or path-like, optional
        Write the returned results (per-word AUC of every detector, ranks) as JSON.
    print_fn : callable, default=print

    Returns
    -------
    results : dict
        ``table`` (list of per-word dicts), ``mean_auc`` and ``min_auc``
        (per detector, over the other words),
        ``target_rank`` (rank of the held-out target by MAF mean log-likelihood
        among all words; 1 is best), ``n_train``,
        ``n_heldout``, ``n_background`` (the background's clips; None
        without ``background``).

    Examples
    --------
    >>> from skflow.experiments import run_audio_outliers
    >>> res = run_audio_outliers("speech_commands_v0.02_test_subset", "yes")  # doctest: +SKIP
    >>> res["target_rank"]  # doctest: +SKIP
    1
    """
    index = load_speech_commands(data)
    if target not in index.words:
        raise ValueError(f"target word {target!r} not in {data}; words: {index.words}")
    if features not in (*FEATURES, "frames"):
        raise ValueError(f"features must be one of {sorted([*FEATURES, 'frames'])}, got {features!r}")
    is_target = np.flatnonzero(index.word == target)
    if background:  # every word's speakers split: the background learns from none of the scored clips
        train_all, test_all = speaker_split(index.speaker, test_size, random_state)
        scored = np.zeros(len(index.paths), dtype=bool)
        scored[test_all] = True
        train, heldout = np.flatnonzero(~scored[is_target]), np.flatnonzero(scored[is_target])
        other_words = train_all[index.word[train_all] != target]
    else:
        other_words, scored = None, np.ones(len(index.paths), dtype=bool)
        train, heldout = speaker_split(index.speaker[is_target], test_size, random_state)
    if features == "frames":
        waves = [read_wav(p) for p in index.paths]
        clips = MelFeatures().fit_transform(waves)
        detectors = {
            "MAF": FrameOutlierDetector(random_state=random_state),
            "GMM frames": FrameOutlierDetector(density=GaussianMixture(
                32, covariance_type="diag", reg_covar=1e-3, random_state=random_state)),
            **{name: det for name, det in make_detectors(random_state).items() if name != "MAF"},
        }
        inputs = {name: (waves if name in ("MAF", "GMM frames") else clips) for name in detectors}
        described = (f"frame features ({len(FrameFeatures().get_feature_names_out())} per frame) for the "
                     "MAF and the frame GMM, mel clip summaries for the others")
        with_background = FrameOutlierDetector(random_state=random_state)
    else:
        X = FEATURES[features]().fit_transform(index.paths)
        detectors = make_detectors(random_state)
        inputs = dict.fromkeys(detectors, X)
        described = f"{features} features ({X.shape[1]})"
        with_background = MAFOutlierDetector(random_state=random_state)
    if background:
        detectors["MAF + background"] = with_background
        inputs["MAF + background"] = inputs["MAF"]
    print_fn(
        f"target {target!r}: {len(train)} training clips, {len(heldout)} held-out clips from "
        f"other speakers; {described}; data {index.root}"
        + (f"; background: {len(other_words)} clips of the other words' training speakers" if background else "")
    )
    others = [w for w in index.words if w != target and np.any((index.word == w) & scored)]
    scores = {}
    for name, det in detectors.items():
        data_of = inputs[name]

        def rows(idx, data_of=data_of):
            return data_of[idx] if isinstance(data_of, np.ndarray) else [data_of[i] for i in idx]

        if name == "MAF + background":
            det.fit(rows(is_target[train]), X_background=rows(other_words))
        else:
            det.fit(rows(is_target[train]))
        scores[name] = {w: det.score_samples(rows(np.flatnonzero((index.word == w) & scored))) for w in others}
        scores[name][target] = det.score_samples(rows(is_target[heldout]))
    maf = scores["MAF"]
    mean_ll = {w: float(np.mean(s)) for w, s in maf.items()}
    order = sorted(mean_ll, key=mean_ll.get, reverse=True)

    table = []
    for w in others:
        row = dict(word=w, n=int(np.sum((index.word == w) & scored)), maf_mean_ll=mean_ll[w],
                   rank=1 + order.index(w))
        for name in detectors:
            row[name] = _auc(scores[name][target], scores[name][w])
        table.append(row)
    mean_auc = {name: float(np.mean([r[name] for r in table])) for name in detectors}
    min_auc = {name: float(np.min([r[name] for r in table])) for name in detectors}
    target_rank = 1 + order.index(target)

    names = list(detectors)
    print_fn(f"\n{'word':>12} {'n':>4} {'MAF mean LL':>12} {'rank':>5} " + " ".join(f"{n[:15]:>15}" for n in names))
    print_fn(f"{target + ' (held out)':>12} {len(heldout):>4} {mean_ll[target]:12.2f} {target_rank:>5}")
    for r in sorted(table, key=lambda r: r["MAF"]):
        print_fn(f"{r['word']:>12} {r['n']:>4} {r['maf_mean_ll']:12.2f} {r['rank']:>5} "
                 + " ".join(f"{r[n]:15.3f}" for n in names))
    print_fn(f"{'mean AUC':>12} {'':>4} {'':>12} {'':>5} " + " ".join(f"{mean_auc[n]:15.3f}" for n in names))
    print_fn(f"{'min AUC':>12} {'':>4} {'':>12} {'':>5} " + " ".join(f"{min_auc[n]:15.3f}" for n in names))
    beaten = [w for w in others if mean_ll[w] > mean_ll[target]]
    print_fn(
        f"\nheld-out {target!r} ranks {target_rank} of {len(order)} words by MAF mean log-likelihood"
        + (f"; words scoring higher: {beaten}" if beaten else " (above every other word)")
    )
    if plot is not None:
        maf_det = detectors["MAF"]
        threshold = maf_det.offset_ if isinstance(maf_det, FrameOutlierDetector) else maf_det[-1].offset_
        _plot_scores(maf, target, threshold, plot)
        print_fn(f"saved the score histogram to {plot}")
    results = dict(target=target, features=features, background=background, table=table,
                   mean_auc=mean_auc, min_auc=min_auc, target_rank=target_rank, n_train=len(train),
                   n_heldout=len(heldout), n_background=None if other_words is None else len(other_words))
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(results, indent=2))
        print_fn(f"wrote the per-word AUCs and ranks to {json_path}")
    return results


def _plot_scores(scores, target, threshold, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("plotting needs matplotlib: pip install 'skflow[plot]'") from exc
    others = np.concatenate([s for w, s in scores.items() if w != target])
    fig, ax = plt.subplots(figsize=(7, 4))
    lo = np.percentile(np.r_[others, scores[target]], 1)
    bins = np.linspace(lo, max(others.max(), scores[target].max()), 50)
    ax.hist(np.clip(others, lo, None), bins, alpha=0.6, density=True, label="other words and silence")
    ax.hist(scores[target], bins, alpha=0.6, density=True, label=f"held-out {target!r}")
    ax.axvline(threshold, color="k", ls="--", label="threshold (offset_)")
    ax.set_xlabel("MAF log-likelihood (whitened features)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
