"""Speed and peak memory of read_ethylene_co on a file in the exact UCI format.

The real ethylene_CO.txt (4,208,261 rows) is not on these machines, so this
writes a synthetic file with the same layout and size (or pass --file).

    python benchmarks/read_ethylene_co.py [--rows 4208261] [--file ethylene_CO.txt]
"""

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from skflow.datasets import read_ethylene_co

HEADER = "Time (seconds), CO conc (ppm), Ethylene conc (ppm), sensor readings (16 channels) \n"


def write_uci_like(path: Path, n_rows: int, seed=0, block=200_000):
    rng = np.random.RandomState(seed)
    with open(path, "w") as f:
        f.write(HEADER)
        for start in range(0, n_rows, block):
            n = min(block, n_rows - start)
            rows = np.column_stack([
                (start + np.arange(n)) * 0.01,
                rng.choice([0.0, 2.22, 4.44, 6.67], n),
                rng.choice([0.0, 3.13, 6.25], n),
                rng.normal(2000, 800, (n, 16)),
            ])
            np.savetxt(f, rows, fmt="%.2f", delimiter="  ")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_208_261)
    parser.add_argument("--file", help="an existing ethylene_CO.txt to read instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.file) if args.file else Path(tmp) / "ethylene_CO.txt"
        if not args.file:
            t = time.perf_counter()
            write_uci_like(path, args.rows)
            print(f"wrote {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
        tracemalloc.start()
        t = time.perf_counter()
        data = read_ethylene_co(path)
        seconds = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"read {len(data):,} rows x {data.shape[1]} in {seconds:.1f} s: "
              f"{len(data) / seconds:,.0f} rows/s; peak traced memory {peak / 1e6:.0f} MB "
              f"(result array {data.nbytes / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
