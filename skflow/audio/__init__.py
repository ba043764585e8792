"""Audio: wav reading and feature transformers (``features``), and the
spoken-word outlier workflow (``spoken_words``: train on one word, flag the others)."""

from .features import MelFeatures, SpectrumFeatures, fix_length, mel_filterbank, read_wav, resample
from .spoken_words import make_detectors, run_audio_outliers

__all__ = [
    "MelFeatures",
    "SpectrumFeatures",
    "fix_length",
    "make_detectors",
    "mel_filterbank",
    "read_wav",
    "resample",
    "run_audio_outliers",
]
