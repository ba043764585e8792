"""Training on a file larger than the memory the process may use (issue 34, item 2).

Writes ``--rows`` x ``--features`` float32 rows to a raw file (a smooth
non-Gaussian distribution, in blocks: the writer never holds it), then, each
in a fresh process:

- **streamed**: ``MAFDensity(max_iter=1).fit(ChunkedRows(np.memmap(file)))``
  -- one measuring pass over the file and one epoch;
- **in memory**: the same estimator on the file's first ``--in-memory-rows``
  rows loaded into a numpy array (what fits in memory), one epoch.

It prints each run's training rows per second (the epoch's rows over the
epoch's seconds as the verbose log reports them), the fit's seconds and the
process's peak resident memory (``ru_maxrss``).  ``--cgroup DIR`` puts the
streamed process in a cgroup-v1 memory directory first (``DIR/cgroup.procs``;
set ``memory.limit_in_bytes`` there yourself, as root): the limit then holds
the page cache as well.

Run: ``python benchmarks/out_of_core.py [--rows 31250000] [--features 16]
[--file /tmp/skflow_out_of_core.f32] [--cgroup DIR] [--json results/out_of_core.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _machine import machine_line  # benchmarks/_machine.py

BLOCK = 1 << 20

CHILD = r"""
import json, re, resource, sys, time, contextlib, io
import numpy as np
cgroup, path, rows, features, mode, in_memory_rows, chunk_rows = sys.argv[1:8]
if cgroup:
    with open(cgroup + "/cgroup.procs", "w") as f:
        f.write(str(__import__("os").getpid()))
from skflow import ChunkedRows, MAFDensity
rows, features, in_memory_rows, chunk_rows = int(rows), int(features), int(in_memory_rows), int(chunk_rows)
est = MAFDensity(max_iter=1, random_state=0, layer_type="affine", verbose=1)
log = io.StringIO()
began = time.perf_counter()
with contextlib.redirect_stdout(log):
    if mode == "streamed":
        est.fit(ChunkedRows(np.memmap(path, dtype=np.float32, mode="r", shape=(rows, features)), chunk_rows=chunk_rows))
    else:
        X = np.fromfile(path, dtype=np.float32, count=in_memory_rows * features).reshape(-1, features)
        est.fit(X)
fit_seconds = time.perf_counter() - began
epoch = re.search(r"epoch +1 .* ([0-9.]+)s", log.getvalue())
print(json.dumps({"mode": mode, "fit_s": fit_seconds, "epoch_s": float(epoch.group(1)),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "batch_size": int(est.batch_size_)}))
"""


def write_file(path: Path, rows: int, features: int) -> None:
    """Rows of a smooth non-Gaussian distribution, written a block at a time."""
    if path.exists() and path.stat().st_size == rows * features * 4:
        return
    rng = np.random.RandomState(0)
    with open(path, "wb") as f:
        for start in range(0, rows, BLOCK):
            n = min(BLOCK, rows - start)
            x = rng.normal(size=(n, features))
            x[:, 1::2] += np.sin(2 * x[:, ::2][:, : features // 2])
            x[:, 0] = np.abs(x[:, 0]) ** 1.5
            f.write(x.astype(np.float32).tobytes())


def run(path, rows, features, mode, in_memory_rows, chunk_rows, cgroup=""):
    out = subprocess.run([sys.executable, "-c", CHILD, cgroup, str(path), str(rows), str(features), mode,
                          str(in_memory_rows), str(chunk_rows)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=31_250_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--in-memory-rows", type=int, default=2_000_000)
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--file", type=Path, default=Path("/tmp/skflow_out_of_core.f32"))
    parser.add_argument("--cgroup", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine_line())
    began = time.perf_counter()
    write_file(args.file, args.rows, args.features)
    size_gb = args.file.stat().st_size / 1e9
    print(f"file {args.file}: {args.rows:,} x {args.features} float32, {size_gb:.2f} GB "
          f"(written or found in {time.perf_counter() - began:.0f} s)")
    limit = ""
    if args.cgroup:
        with open(os.path.join(args.cgroup, "memory.limit_in_bytes")) as f:
            limit = f"{int(f.read()) / 1e9:.2f} GB"
        print(f"streamed run in cgroup {args.cgroup} (memory.limit_in_bytes {limit}, page cache included)")
    results = []
    for mode, rows in (("in memory", args.in_memory_rows), ("streamed", args.rows)):
        r = run(args.file, args.rows, args.features, "streamed" if mode == "streamed" else "memory",
                args.in_memory_rows, args.chunk_rows, args.cgroup if mode == "streamed" else "")
        trained = 0.9 * rows  # early stopping holds out a tenth (of the rows, or of the chunks)
        r.update(mode=mode, rows=rows, rows_per_s=trained / r["epoch_s"])
        results.append(r)
    print(f"\n{'run':<10} {'rows':>12} {'batch':>6} {'train rows/s':>13} {'epoch s':>9} {'fit s':>8} {'peak RSS':>10}")
    for r in results:
        print(f"{r['mode']:<10} {r['rows']:>12,} {r['batch_size']:>6} {r['rows_per_s']:>13,.0f} "
              f"{r['epoch_s']:>9.1f} {r['fit_s']:>8.1f} {r['peak_rss_mb']:>7.0f} MB")
    ratio = results[1]["rows_per_s"] / results[0]["rows_per_s"]
    print(f"\nstreamed / in-memory training rate: {ratio:.2f}; the file is "
          f"{size_gb * 1e3 / results[1]['peak_rss_mb']:.1f}x the streamed process's peak RSS")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine_line(), "file_gb": size_gb, "limit": limit,
                                         "runs": results}, indent=1))


if __name__ == "__main__":
    main()
