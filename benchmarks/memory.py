"""Peak memory of MAFDensity.fit on GAS-sized data (4.2 M x 8 float32).

Prints the data size, the process's resident memory before fitting and its
peak during one epoch of fitting (the kernel's peak counter is reset just
before ``fit`` on Linux), and the extra peak in units of the data size: the
data themselves plus ``extra`` copies are what fitting holds.

    python benchmarks/memory.py [--rows 4208261] [--max-iter 1]
"""

import argparse
import resource
import time

import numpy as np

from skflow import MAFDensity


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak():
    """Restart the kernel's peak-RSS counter (Linux), so building the data does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_208_261)
    parser.add_argument("--max-iter", type=int, default=1)
    args = parser.parse_args()
    # Drawn directly in float32: a float64 draw and its conversion would set
    # the process's peak before fitting starts.
    X = np.random.default_rng(0).standard_normal((args.rows, 8), dtype=np.float32)
    data_mb = X.nbytes / 2**20
    est = MAFDensity(n_flows=10, hidden_layer_sizes=(100, 100), batch_size=1024,
                     max_iter=args.max_iter, random_state=0)
    # Warm up torch (kernels, thread pools, allocator) so only the data-dependent
    # memory is counted below.
    MAFDensity(n_flows=10, hidden_layer_sizes=(100, 100), max_iter=1, random_state=0).fit(X[:5000])
    before = status_mb("VmRSS")
    exact = reset_peak()
    t = time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - t
    peak = status_mb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"data {args.rows:,} x 8 float32 = {data_mb:.0f} MB; RSS before fit {before:.0f} MB; "
          f"peak during fit {peak:.0f} MB; extra {peak - before:.0f} MB = "
          f"{(peak - before) / data_mb:.2f} x the data ({seconds:.0f} s, {est.n_iter_} epoch(s))")


if __name__ == "__main__":
    main()
