"""Audio features for spoken-word outlier detection.

Transformers take a list of wav paths, a list of 1-D waveforms, or a 2-D array
of waveforms (one clip per row), all at ``sample_rate``.  Files at other rates
are resampled; clips are padded with zeros or trimmed to ``clip_samples``.

``SpectrumFeatures`` is the representation of the blog article this project
grew from ("Experimenting with autoregressive flows in TensorFlow
Probability", 2025): 257 magnitude bins over the whole clip; ``MelFeatures`` (MFCCs of the voiced part of the
clip, pooled into a fixed number of time segments) captures *which* word was
said far better, because it keeps the order of the sounds.
"""

from __future__ import annotations

import warnings
from math import gcd
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy.fft import dct, rfft
from scipy.io import wavfile
from scipy.signal import resample_poly
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval

__all__ = ["MelFeatures", "SpectrumFeatures", "fix_length", "mel_filterbank", "read_wav", "resample"]


def read_wav(path, sample_rate: int = 16000) -> np.ndarray:
    """Read a PCM (or float) WAV file as mono float32 in [-1, 1] at ``sample_rate``.

    Parameters
    ----------
    path : str or path-like
    sample_rate : int, default=16000
        Target rate; other rates are resampled with a polyphase filter.

    Returns
    -------
    waveform : ndarray of shape (n_samples,), float32

    Raises
    ------
    ValueError
        If the file cannot be read or is not uncompressed PCM / float WAV.

    Examples
    --------
    >>> x = read_wav("yes/0a7c2a8d_nohash_0.wav")  # doctest: +SKIP
    >>> x.dtype, x.shape  # doctest: +SKIP
    (dtype('float32'), (16000,))
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{path}: cannot read as an uncompressed PCM/float WAV file ({exc}); "
            "convert it first, e.g. `sox in.wav -e signed -b 16 out.wav`"
        ) from None
    if data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype.kind == "i":
        x = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    elif data.dtype.kind == "f":
        x = data.astype(np.float32)
    else:  # pragma: no cover - scipy only returns the kinds above
        raise ValueError(f"{path}: unsupported sample type {data.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != sample_rate:
        x = resample(x, rate, sample_rate)
    return x


def resample(x: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling of a 1-D waveform (float32 out).

    Examples
    --------
    >>> import numpy as np
    >>> resample(np.zeros(8000), 8000, 16000).shape
    (16000,)
    """
    if int(orig_rate) < 1 or int(target_rate) < 1:
        raise ValueError(f"sample rates must be positive, got {orig_rate} and {target_rate}")
    g = gcd(int(orig_rate), int(target_rate))
    return resample_poly(x, target_rate // g, orig_rate // g).astype(np.float32)


def fix_length(x: np.ndarray, n: int) -> np.ndarray:
    """Pad with trailing zeros or trim the end to exactly ``n`` samples.

    Examples
    --------
    >>> fix_length([1.0, 2.0], 4).tolist(), fix_length([1.0, 2.0, 3.0], 2).tolist()
    ([1.0, 2.0, 0.0, 0.0], [1.0, 2.0])
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin=0.0, fmax=None) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape ``(n_mels, n_fft // 2 + 1)``.

    Examples
    --------
    >>> mel_filterbank(40, 512, 16000).shape
    (40, 257)
    """
    fmax = sample_rate / 2 if fmax is None else fmax

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0.0, np.minimum(lower, upper))


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    n = 1 + max(0, len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def log_mel_spectrogram(wave: np.ndarray, sample_rate: int, n_mels: int, window: int,
                        hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel energies and power spectrum of each frame of ``wave``.

    Frames of ``window`` samples every ``hop`` samples, Hamming-windowed, to
    a power spectrum (FFT size the next power of two), then ``n_mels``
    triangular mel bands and ``log(x + 1e-10)``.

    Returns
    -------
    log_mel : ndarray of shape (n_frames, n_mels)
    power : ndarray of shape (n_frames, n_fft // 2 + 1)
    """
    n_fft = 1 << (window - 1).bit_length()
    power = np.abs(rfft(_frames(wave, window, hop) * np.hamming(window), n=n_fft, axis=1)) ** 2
    return np.log(power @ mel_filterbank(n_mels, n_fft, sample_rate).T + 1e-10), power


def _waveforms(X, sample_rate: int) -> list[np.ndarray]:
    """Clips (paths or 1-D waveforms) as float arrays, with errors that name the clip."""
    if isinstance(X, (str, Path)):
        raise TypeError("X must be a list of paths or waveforms, not a single path")
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiu" and X.ndim != 2:
        raise ValueError(f"a waveform array must be 2-D (one clip per row), got shape {X.shape}")
    items = list(X)
    if not items:
        raise ValueError("X holds no clips")
    waves = []
    for i, item in enumerate(items):
        if isinstance(item, (str, Path)):
            wave = read_wav(item, sample_rate)
        else:
            wave = np.asarray(item)
            if wave.ndim != 1 or wave.dtype.kind not in "fiu":
                raise ValueError(f"clip {i} must be a path or a 1-D numeric waveform")
            if not np.all(np.isfinite(wave)):
                raise ValueError(f"clip {i} contains NaN or infinite samples")
        waves.append(np.asarray(wave, dtype=np.float64))
    return waves



class _ClipTransformer(TransformerMixin, BaseEstimator):
    """Shared input handling: paths or waveforms -> fixed-length clips."""

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, 1000, None, closed="left")],
        "clip_samples": [Interval(Integral, 64, None, closed="left")],
    }

    def _clips(self, X) -> np.ndarray:
        waves = _waveforms(X, self.sample_rate)
        clips = np.empty((len(waves), self.clip_samples), dtype=np.float32)
        for i, wave in enumerate(waves):
            clips[i] = fix_length(wave, self.clip_samples)
        return clips

    def fit(self, X, y: None = None):
        """Validate parameters (the features need no fitting).

        Parameters
        ----------
        X : list of paths or waveforms, or ndarray of shape (n_clips, n_samples)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        self.n_features_out_ = len(self.get_feature_names_out())
        return self

    def transform(self, X) -> np.ndarray:
        """Compute the features of each clip.

        Parameters
        ----------
        X : list of paths or waveforms, or ndarray of shape (n_clips, n_samples)

        Returns
        -------
        features : ndarray of shape (n_clips, n_features_out_), float64
        """
        self._validate_params()
        return np.stack([self._features(c) for c in self._clips(X)]).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class SpectrumFeatures(_ClipTransformer):
    """The blog article's features: a 257-bin magnitude spectrum over the whole clip.

    Each clip is padded/trimmed to ``clip_samples`` and cut into Hann-windowed
    frames of ``n_fft`` samples (hop ``n_fft // 2``); the magnitudes of their
    FFTs are averaged, which gives ``n_fft // 2 + 1`` bins describing the
    whole clip.  (The article's TensorFlow call ``stft(x, 16000, 1, 512)`` in
    fact looked at the first 512 samples only: the FFT length truncates the
    16000-sample frame.)

    Parameters
    ----------
    sample_rate : int, default=16000
    clip_samples : int, default=16000
    n_fft : int, default=512
    log : bool, default=True
        Return ``log(magnitude + 1e-6)``: magnitudes span orders of magnitude,
        and logs are far closer to Gaussian, which density models need.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.audio import SpectrumFeatures
    >>> t = np.arange(16000) / 16000
    >>> feats = SpectrumFeatures().fit_transform(np.sin(2 * np.pi * 1000 * t)[None])
    >>> feats.shape, int(np.argmax(feats[0]))
    ((1, 257), 32)
    """

    _parameter_constraints: dict = {
        **_ClipTransformer._parameter_constraints,
        "n_fft": [Interval(Integral, 16, None, closed="left")],
        "log": ["boolean"],
    }

    def __init__(self, sample_rate=16000, clip_samples=16000, n_fft=512, log=True):
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.n_fft = n_fft
        self.log = log

    def _features(self, clip):
        frames = _frames(clip, self.n_fft, self.n_fft // 2) * np.hanning(self.n_fft)
        mag = np.abs(rfft(frames, axis=1)).mean(0)
        return np.log(mag + 1e-6) if self.log else mag

    def get_feature_names_out(self, input_features=None):
        """Names ``spec_<Hz>`` of the frequency bins."""
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate)
        return np.asarray([f"spec_{f:.0f}Hz" for f in freqs], dtype=object)


class MelFeatures(_ClipTransformer):
    """MFCCs of the spoken part of a clip, pooled over time segments.

    Steps: log-mel spectrogram (``n_mels`` bands, 25 ms windows, 10 ms hop);
    keep the frames from the first to the last one within ``top_db`` of the
    loudest (the word, without leading/trailing silence); DCT to ``n_mfcc``
    coefficients; average them over ``n_segments`` equal parts of the spoken
    region.  The result describes the sequence of sounds independent of when
    the word starts and how fast it is said.  Four extra features: the spoken
    region's length (s) and mean log-energy, the clip's dynamic range (dB from
    its 10th-percentile frame to its loudest) and the spoken region's mean
    log spectral flatness -- these tell speech from stationary noise.

    Parameters
    ----------
    sample_rate : int, default=16000
    clip_samples : int, default=16000
    n_mels : int, default=40
    n_mfcc : int or None, default=8
        None keeps the log-mel bands instead of MFCCs.
    n_segments : int, default=4
    top_db : float or None, default=35.0
        Silence threshold below the loudest frame; None keeps the whole clip.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.audio import MelFeatures
    >>> noise = np.random.RandomState(0).normal(size=(2, 16000)) * 0.1
    >>> MelFeatures().fit_transform(noise).shape
    (2, 36)
    """

    _parameter_constraints: dict = {
        **_ClipTransformer._parameter_constraints,
        "n_mels": [Interval(Integral, 4, None, closed="left")],
        "n_mfcc": [Interval(Integral, 1, None, closed="left"), None],
        "n_segments": [Interval(Integral, 1, None, closed="left")],
        "top_db": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, sample_rate=16000, clip_samples=16000, n_mels=40, n_mfcc=8,
                 n_segments=4, top_db=35.0):
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.n_mels = n_mels
        self.n_mfcc = n_mfcc
        self.n_segments = n_segments
        self.top_db = top_db

    def _features(self, clip):
        hop = int(round(0.010 * self.sample_rate))
        logmel, power = log_mel_spectrogram(clip, self.sample_rate, self.n_mels,
                                            int(round(0.025 * self.sample_rate)), hop)
        energy = np.log(power.sum(1) + 1e-10)
        start, stop = 0, len(energy)
        if self.top_db is not None:
            loud = np.flatnonzero(energy >= energy.max() - self.top_db * np.log(10) / 10)
            start, stop = loud[0], loud[-1] + 1
        coeffs = logmel[start:stop]
        if self.n_mfcc is not None:
            coeffs = dct(coeffs, type=2, norm="ortho", axis=1)[:, : self.n_mfcc]
        # Equal parts of the spoken region; a region shorter than n_segments
        # frames repeats frames rather than leaving parts empty.
        edges = np.linspace(0, len(coeffs), self.n_segments + 1)
        parts = [
            coeffs[int(np.floor(a)) : max(int(np.floor(a)) + 1, int(np.ceil(b)))].mean(0)
            for a, b in zip(edges[:-1], edges[1:])
        ]
        # Speech rises far above its own background; stationary noise does not.
        db = 10 / np.log(10)
        dynamic_range = db * (energy.max() - np.percentile(energy, 10))
        voiced = power[start:stop] + 1e-10
        flatness = np.mean(np.exp(np.log(voiced).mean(1)) / voiced.mean(1))
        extra = [(stop - start) * hop / self.sample_rate, energy[start:stop].mean(),
                 dynamic_range, np.log(flatness)]
        return np.concatenate(parts + [extra])

    def get_feature_names_out(self, input_features=None):
        """Names ``mfcc<k>_seg<s>`` (or ``mel<k>_seg<s>``), then duration and energy."""
        kind, n = ("mfcc", self.n_mfcc) if self.n_mfcc is not None else ("mel", self.n_mels)
        names = [f"{kind}{k}_seg{s}" for s in range(self.n_segments) for k in range(n)]
        extra = ["voiced_seconds", "voiced_log_energy", "dynamic_range_db", "log_flatness"]
        return np.asarray(names + extra, dtype=object)
