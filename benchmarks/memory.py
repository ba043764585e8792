"""Peak memory of MAFDensity.fit on GAS-sized data (4.2 M x 8 float32).

Prints the data size, the process's resident memory before fitting and its
peak during one epoch of fitting, and the extra peak in units of the data size.

    python benchmarks/memory.py [--rows 4208261] [--max-iter 1]
"""

import argparse
import resource
import time

import numpy as np

from skflow import MAFDensity


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_208_261)
    parser.add_argument("--max-iter", type=int, default=1)
    args = parser.parse_args()
    X = np.random.RandomState(0).normal(size=(args.rows, 8)).astype(np.float32)
    data_mb = X.nbytes / 2**20
    est = MAFDensity(n_flows=10, hidden_layer_sizes=(100, 100), batch_size=1024,
                     max_iter=args.max_iter, random_state=0)
    # Warm up torch (kernels, thread pools, allocator) so only the data-dependent
    # memory is counted below.
    MAFDensity(n_flows=10, hidden_layer_sizes=(100, 100), max_iter=1, random_state=0).fit(X[:5000])
    before = rss_mb()
    t = time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"data {args.rows:,} x 8 float32 = {data_mb:.0f} MB; RSS before fit {before:.0f} MB; "
          f"peak during fit {peak:.0f} MB; extra {peak - before:.0f} MB = "
          f"{(peak - before) / data_mb:.2f} x the data ({seconds:.0f} s, {est.n_iter_} epoch(s))")


if __name__ == "__main__":
    main()
