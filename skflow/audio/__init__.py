"""Audio: wav reading and clip feature transformers (``features``), frame-level
features and a clip detector over frame densities (``frames``), and the
spoken-word outlier workflow (``spoken_words``: train on one word, flag the others)."""

from .frames import FrameFeatures, FrameOutlierDetector, aggregate_frames, stack_frames
from .features import MelFeatures, SpectrumFeatures, fix_length, mel_filterbank, read_wav, resample
from .spoken_words import make_detectors, run_audio_outliers

__all__ = [
    "FrameFeatures",
    "FrameOutlierDetector",
    "aggregate_frames",
    "stack_frames",
    "MelFeatures",
    "SpectrumFeatures",
    "fix_length",
    "make_detectors",
    "mel_filterbank",
    "read_wav",
    "resample",
    "run_audio_outliers",
]
