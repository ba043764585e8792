"""Variants of the frame-level detector on the spoken-word task (what did not help).

Runs ``benchmarks/audio_outliers.py``'s evaluation with other frame
detectors only: the frame MAF with a trimmed-mean and a median aggregate,
and with stacked neighbouring frames (``FrameFeatures(context=2)``).

    python benchmarks/audio_frame_variants.py [--targets yes] [--json results/audio_frame_variants.json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import audio_outliers  # noqa: E402  (same folder)

from skflow.audio import FrameFeatures, FrameOutlierDetector  # noqa: E402


def variants(random_state=0) -> dict:
    return {
        "frames: MAF trimmed": FrameOutlierDetector(aggregate="trimmed", random_state=random_state),
        "frames: MAF median": FrameOutlierDetector(aggregate="median", random_state=random_state),
        "frames: MAF stack +-2x3": FrameOutlierDetector(features=FrameFeatures(context=2),
                                                        random_state=random_state),
    }


if __name__ == "__main__":
    audio_outliers.frame_detectors = variants
    audio_outliers.make_detectors = lambda random_state=0: {}
    if "--json" not in sys.argv:
        sys.argv += ["--json", "results/audio_frame_variants.json"]
    if "--targets" not in sys.argv:
        sys.argv += ["--targets", "yes"]
    audio_outliers.main()
