"""Frame-level audio features and a clip outlier detector over frame densities.

A one-second clip holds about 100 short-time frames, so a few hundred clips
give tens of thousands of frame vectors -- the regime where a flow has data
to learn from.  :class:`FrameFeatures` turns clips into per-frame vectors
(MFCCs or log-mel energies, their deltas, optional stacking of neighbouring
frames) and keeps the frames of the spoken part; :class:`FrameOutlierDetector`
fits a density to every frame of the training clips and scores a clip by an
aggregate of its frames' log-densities (speaker verification's GMM-UBM
recipe, with any density estimator in place of the GMM).
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real

import numpy as np
from scipy.fft import dct
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin, _fit_context, clone
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..estimators import MAFDensity
from ..estimators._background import fitted_background
from ..estimators._conformal import ConformalOutlierMixin, outlier_offset, sorted_calibration
from ..nn.devices import private_random_state
from .features import _waveforms, log_mel_spectrogram

__all__ = ["FrameFeatures", "FrameOutlierDetector", "aggregate_frames", "stack_frames"]

_WINDOW_SECONDS = 0.025
_HOP_SECONDS = 0.010


def _deltas(c: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over +-``width`` frames (edges repeated), as HTK computes them."""
    n = len(c)
    padded = np.pad(c, ((width, width), (0, 0)), mode="edge")
    num = sum(k * (padded[width + k : width + k + n] - padded[width - k : width - k + n])
              for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def stack_frames(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All clips' frames in one array, and the clip each row comes from.

    Examples
    --------
    >>> import numpy as np
    >>> rows, clip = stack_frames([np.zeros((2, 3)), np.ones((1, 3))])
    >>> rows.shape, clip.tolist()
    ((3, 3), [0, 0, 1])
    """
    clip = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    return np.concatenate(frames), clip


def aggregate_frames(values: np.ndarray, clip: np.ndarray, n_clips: int, how: str = "mean",
                     trim: float = 0.1) -> np.ndarray:
    """One number per clip from its frames' ``values``.

    ``how``: "mean"; "trimmed" (the mean without each clip's ``trim`` share of
    lowest values, so a cough or a click does not decide); "median".

    Examples
    --------
    >>> import numpy as np
    >>> aggregate_frames(np.array([1.0, 3.0, 10.0]), np.array([0, 0, 1]), 2).tolist()
    [2.0, 10.0]
    """
    out = np.empty(n_clips)
    order = np.argsort(clip, kind="stable")
    bounds = np.searchsorted(clip[order], np.arange(n_clips + 1))
    for k in range(n_clips):
        v = values[order[bounds[k] : bounds[k + 1]]]
        if how == "mean":
            out[k] = v.mean()
        elif how == "median":
            out[k] = np.median(v)
        elif how == "trimmed":
            v = np.sort(v)
            out[k] = v[int(np.floor(trim * len(v))):].mean()
        else:
            raise ValueError(f"unknown aggregate {how!r}; use 'mean', 'trimmed' or 'median'")
    return out


class FrameFeatures(TransformerMixin, BaseEstimator):
    """Per-frame features of audio clips: MFCCs (or log-mel energies) and their deltas.

    Each clip is cut into Hamming-windowed frames of 25 ms every 10 ms; a
    mel filterbank of ``n_mels`` bands gives log energies, and a DCT the
    first ``n_mfcc`` cepstral coefficients.  ``deltas`` appends their first
    (and second) time derivatives; ``context`` appends the frames
    ``context_step`` apart on each side, up to ``context`` of them, so a row
    describes a stretch of ~``2 * context * context_step * 10`` ms.  Only the
    frames within ``top_db`` of the clip's loudest frame are kept (the spoken
    part); ``top_db=None`` keeps them all.

    Unlike most transformers, :meth:`transform` returns one array of frames
    per clip (clips differ in length and in voiced frames); use
    :func:`stack_frames` for one array and the clip of each row.

    Parameters
    ----------
    sample_rate : int, default=16000
        Rate the clips are read at (files at other rates are resampled).
    n_mels : int, default=40
    n_mfcc : int or None, default=13
        Cepstral coefficients kept; None keeps the log-mel energies.
    deltas : {0, 1, 2}, default=2
        Append first (1) or first and second (2) time derivatives.
    context : int, default=0
        Neighbouring frames appended on each side.
    context_step : int, default=3
        Frames between appended neighbours.
    top_db : float or None, default=20.0
        Keep the frames whose energy is within this many dB of the clip's
        loudest frame.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.audio import FrameFeatures
    >>> rng = np.random.RandomState(0)
    >>> clips = [rng.normal(size=16000), rng.normal(size=8000)]
    >>> frames = FrameFeatures(top_db=None).fit_transform(clips)
    >>> [f.shape for f in frames]
    [(98, 39), (48, 39)]
    """

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, 1000, None, closed="left")],
        "n_mels": [Interval(Integral, 4, None, closed="left")],
        "n_mfcc": [Interval(Integral, 1, None, closed="left"), None],
        "deltas": [Interval(Integral, 0, 2, closed="both")],
        "context": [Interval(Integral, 0, None, closed="left")],
        "context_step": [Interval(Integral, 1, None, closed="left")],
        "top_db": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, sample_rate=16000, n_mels=40, n_mfcc=13, deltas=2, context=0, context_step=3,
                 top_db=20.0):
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.n_mfcc = n_mfcc
        self.deltas = deltas
        self.context = context
        self.context_step = context_step
        self.top_db = top_db

    def fit(self, X, y=None):
        """Validate the parameters (the features need no fitting).

        Parameters
        ----------
        X : list of paths or 1-D waveforms, or ndarray of shape (n_clips, n_samples)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        self.n_features_out_ = self._n_features()
        return self

    def _n_features(self) -> int:
        base = self.n_mels if self.n_mfcc is None else min(self.n_mfcc, self.n_mels)
        return base * (1 + self.deltas) * (1 + 2 * self.context)

    @property
    def window(self) -> int:
        """Samples per frame."""
        return int(round(_WINDOW_SECONDS * self.sample_rate))

    def transform(self, X) -> list[np.ndarray]:
        """The kept frames of each clip.

        Parameters
        ----------
        X : list of paths or 1-D waveforms, or ndarray of shape (n_clips, n_samples)

        Returns
        -------
        frames : list of ndarray of shape (n_frames_i, n_features)
            One array per clip, float64, in time order (``n_features`` is
            the fitted ``n_features_out_``).
        """
        self._validate_params()
        return [self._clip_frames(i, w) for i, w in enumerate(_waveforms(X, self.sample_rate))]

    def _clip_frames(self, i: int, wave: np.ndarray) -> np.ndarray:
        win, hop = self.window, int(round(_HOP_SECONDS * self.sample_rate))
        if len(wave) < win:
            raise ValueError(f"clip {i} has {len(wave)} samples, fewer than one frame "
                             f"({win} samples = {1000 * _WINDOW_SECONDS:.0f} ms at {self.sample_rate} Hz)")
        feats, power = log_mel_spectrogram(wave, self.sample_rate, self.n_mels, win, hop)
        if self.n_mfcc is not None:
            feats = dct(feats, type=2, norm="ortho", axis=1)[:, : self.n_mfcc]
        parts = [feats]
        for _ in range(self.deltas):
            parts.append(_deltas(parts[-1]))
        feats = np.concatenate(parts, axis=1)
        if self.context:
            n, k = len(feats), self.context * self.context_step
            padded = np.pad(feats, ((k, k), (0, 0)), mode="edge")
            feats = np.concatenate([padded[k + j * self.context_step : k + j * self.context_step + n]
                                    for j in range(-self.context, self.context + 1)], axis=1)
        if self.top_db is not None:
            energy = np.log(power.sum(1) + 1e-10)
            feats = feats[energy >= energy.max() - self.top_db * np.log(10) / 10]
        return feats

    def get_feature_names_out(self, input_features=None):
        """Names ``mfcc<k>`` / ``mel<k>``, ``d_`` and ``dd_`` for deltas, ``@<offset>`` for neighbours."""
        kind, n = ("mel", self.n_mels) if self.n_mfcc is None else ("mfcc", min(self.n_mfcc, self.n_mels))
        names = [f"{p}{kind}{k}" for p in ["", "d_", "dd_"][: 1 + self.deltas] for k in range(n)]
        if self.context:
            names = [f"{name}@{j * self.context_step:+d}" for j in range(-self.context, self.context + 1)
                     for name in names]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class FrameOutlierDetector(ConformalOutlierMixin, OutlierMixin, BaseEstimator):
    """Clip outlier detector over frame-level densities.

    Fits ``density`` (after a ``StandardScaler``) to every kept frame of the
    training clips; a clip's score is the ``aggregate`` of its frames'
    log-densities.  The MAF's early stopping holds out whole clips (its
    ``groups`` are the clips), so it is judged on frames of clips it has not
    seen.

    Parameters
    ----------
    features : FrameFeatures, default=None
        The frame features; ``FrameFeatures()`` if None.
    density : estimator, default=None
        Anything with ``fit`` and ``score_samples`` (a
        :class:`~sklearn.mixture.GaussianMixture` gives the GMM-UBM
        baseline); ``MAFDensity(n_flows=2, hidden_layer_sizes=(64, 64),
        gaussian_weight=0.0)`` if None (the flow alone: see the outlier
        guide for why no Gaussian is mixed in here).
    aggregate : {"mean", "trimmed", "median"}, default="mean"
        How frames' log-densities make a clip's score ("trimmed" drops each
        clip's lowest 10 %).
    contamination : "auto" or float, default="auto"
        Share of training clips expected to be outliers; sets ``offset_`` at
        that percentile of the training clips' scores ("auto": 1 %).
    random_state : int or None, default=None
        Passed to the default density and background; seeds the choice of
        the calibration clips.
    calibration_fraction : float in [0, 0.5], default=0.1
        Share of the training clips (at least one when positive) held out of
        the density's fit; their scores are the reference of
        :meth:`p_values`.  0 fits on every clip (then :meth:`calibrate`
        before :meth:`p_values`).
    fdr : float in (0, 1) or None, default=None
        With a float, :meth:`predict` flags clips by the Benjamini-Hochberg
        procedure on their :meth:`p_values` at this false discovery rate;
        None flags by ``offset_``.
    background : estimator or None, default=None
        A frame density of other speech (the other words) for
        likelihood-ratio scoring: a frame's score becomes its log-density
        minus the background's (on the same scaled frames) before the
        clip aggregate, which discounts what makes any speech (or silence)
        likely.  Fitted like
        :class:`~skflow.MAFOutlierDetector`'s: cloned and fitted to the
        frames of ``X_background`` when :meth:`fit` gets it, else used as
        fitted; None with ``X_background``: a :class:`~skflow.GaussianDensity`.

    Attributes
    ----------
    features_ : FrameFeatures
        The fitted features.
    scaler_ : StandardScaler
        Fitted on the training frames.
    density_ : estimator
        The fitted frame density.
    offset_ : float
        ``decision_function = score_samples - offset_``.
    n_frames_ : int
        Training frames.
    calibration_scores_ : ndarray of shape (n_calibration_clips,) or None
        Sorted scores of the held-out calibration clips (or of the clips
        given to :meth:`calibrate`); None when ``calibration_fraction=0``.
    background_ : estimator or None
        The fitted frame background, or None.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.audio import FrameOutlierDetector
    >>> from sklearn.mixture import GaussianMixture
    >>> rng = np.random.RandomState(0)
    >>> t = np.arange(8000) / 16000
    >>> tones = [np.sin(2 * np.pi * f * t) + 0.01 * rng.normal(size=t.size) for f in (440, 450, 460)]
    >>> det = FrameOutlierDetector(density=GaussianMixture(2, random_state=0), calibration_fraction=0).fit(tones)
    >>> det.score_samples([tones[0], rng.normal(size=8000)]).round(0) > -100
    array([ True, False])
    """

    _parameter_constraints: dict = {
        "features": [HasMethods(["transform"]), None],
        "density": [HasMethods(["fit", "score_samples"]), None],
        "aggregate": [StrOptions({"mean", "trimmed", "median"})],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
        "calibration_fraction": [Interval(Real, 0, 0.5, closed="both")],
        "fdr": [Interval(Real, 0, 1, closed="neither"), None],
        "background": [HasMethods(["fit", "score_samples"]), None],
    }

    def __init__(self, features=None, density=None, aggregate="mean", contamination="auto", random_state=None,
                 calibration_fraction=0.1, fdr=None, background=None):
        self.features = features
        self.density = density
        self.aggregate = aggregate
        self.contamination = contamination
        self.random_state = random_state
        self.calibration_fraction = calibration_fraction
        self.fdr = fdr
        self.background = background

    def _default_density(self):
        return MAFDensity(n_flows=2, hidden_layer_sizes=(64, 64), gaussian_weight=0.0,
                          random_state=self.random_state)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, X_background=None):
        """Fit the frame density to every kept frame of the clips ``X``.

        Parameters
        ----------
        X : list of paths or 1-D waveforms, or ndarray of shape (n_clips, n_samples)
            Clips of the normal class.
        y : None
            Ignored.
        X_background : list of paths or 1-D waveforms, or ndarray, default=None
            Clips of other speech (the other words) for the ``background`` frame density.

        Returns
        -------
        self : object
        """
        features = FrameFeatures() if self.features is None else clone(self.features)
        frames = features.fit(X).transform(X)
        if len(frames) < 2:
            raise ValueError("FrameOutlierDetector needs at least 2 training clips")
        n_calibration = 0
        if self.calibration_fraction > 0:
            n_calibration = max(1, int(round(self.calibration_fraction * len(frames))))
            if len(frames) - n_calibration < 2:
                raise ValueError(f"{len(frames)} clips leave fewer than 2 to fit on after holding "
                                 f"{n_calibration} out for calibration; set calibration_fraction=0")
        order = private_random_state(self.random_state).permutation(len(frames))
        held = np.zeros(len(frames), dtype=bool)
        held[order[:n_calibration]] = True
        rows, clip = stack_frames([f for f, h in zip(frames, held) if not h])
        scaler = StandardScaler().fit(rows)
        density = self._default_density() if self.density is None else clone(self.density)
        scaled = scaler.transform(rows)
        if getattr(density, "early_stopping", False) and "groups" in inspect.signature(density.fit).parameters:
            density.fit(scaled, groups=clip)  # validation on whole held-out clips
        else:
            density.fit(scaled)
        self.features_, self.scaler_, self.density_ = features, scaler, density
        background_rows = None if X_background is None else scaler.transform(
            stack_frames(features.transform(X_background))[0])
        self.background_ = fitted_background(self.background, background_rows, self.random_state, "clips")
        self.n_frames_ = len(rows)
        scores = self._clip_scores(scaled, clip, int((~held).sum()))
        self.offset_ = outlier_offset(self.contamination, scores, scores)  # the training clips for "auto" too
        self.calibration_scores_ = None
        if n_calibration:
            self.calibration_scores_ = sorted_calibration(
                self._clip_scores(*self._scaled_frames([f for f, h in zip(frames, held) if h])))
        return self

    def _scaled_frames(self, frames):
        rows, clip = stack_frames(frames)
        return self.scaler_.transform(rows), clip, len(frames)

    def _clip_scores(self, scaled, clip, n_clips):
        values = self.density_.score_samples(scaled)
        if getattr(self, "background_", None) is not None:
            values = values - self.background_.score_samples(scaled)
        return aggregate_frames(values, clip, n_clips, self.aggregate)

    def score_samples(self, X) -> np.ndarray:
        """Aggregated frame log-density of each clip (higher: more normal).

        With ``background_``, each frame's log-density minus the
        background's (the log-likelihood ratio) is aggregated instead.

        Parameters
        ----------
        X : list of paths or 1-D waveforms, or ndarray of shape (n_clips, n_samples)

        Returns
        -------
        scores : ndarray of shape (n_clips,)
        """
        check_is_fitted(self)
        return self._clip_scores(*self._scaled_frames(self.features_.transform(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
