"""Audio: wav reading and clip feature transformers (``features``), frame-level
features and a clip detector over frame densities (``frames``).  The
spoken-word outlier workflow is :mod:`skflow.experiments.spoken_words`."""

from .frames import FrameFeatures, FrameOutlierDetector, aggregate_frames, stack_frames
from .features import (MelFeatures, SpectrumFeatures, fix_length, log_mel_spectrogram, mel_filterbank, read_wav,
                       resample)

__all__ = [
    "FrameFeatures",
    "FrameOutlierDetector",
    "aggregate_frames",
    "stack_frames",
    "MelFeatures",
    "SpectrumFeatures",
    "fix_length",
    "log_mel_spectrogram",
    "mel_filterbank",
    "read_wav",
    "resample",
]
