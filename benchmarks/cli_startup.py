"""How long `skflow --help` and `skflow --version` take (they must not import torch).

    python benchmarks/cli_startup.py [--repeats 5]

Prints the median wall time of each command and whether torch was imported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for command in (["--help"], ["--version"], ["fit", "--help"]):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "skflow.cli", *command], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        probe = subprocess.run([sys.executable, "-c", "import sys; from skflow.cli import main\n"
                                "try:\n    main(" + repr(command) + ")\nexcept SystemExit:\n    pass\n"
                                "print('torch' in sys.modules, file=sys.stderr)"],
                               capture_output=True, text=True)
        print(f"skflow {' '.join(command):<12} median {statistics.median(times):.3f} s over {args.repeats} runs; "
              f"imports torch: {probe.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
