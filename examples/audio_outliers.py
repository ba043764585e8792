"""Spoken-word outlier detection: train on one word, flag the others.

Run:  python examples/audio_outliers.py [DATA_DIR] [TARGET]

DATA_DIR is a Speech-Commands-style folder (default:
../shared/data/speech_commands_v0.02_test_subset), TARGET a word in it.
"""

import sys

from skflow.datasets import find_shared_data
from skflow.experiments import run_audio_outliers

if __name__ == "__main__":
    data = sys.argv[1] if len(sys.argv) > 1 else find_shared_data("speech_commands_v0.02_test_subset")
    if data is None:
        sys.exit("give the folder of a Speech-Commands-style data set")
    target = sys.argv[2] if len(sys.argv) > 2 else "yes"
    for features in ("mel", "spectrum"):
        print(f"\n=== {features} features ===")
        run_audio_outliers(data, target, features=features, plot=f"results/audio_{target}_{features}.png")
