"""Training throughput of skflow and the peers measured in ONE process, turn by turn.

This machine's speed drifts by up to 1.5-2x within minutes, which separate
processes run one after the other (``speed.py``) cannot cancel.  Here every
library trains one epoch of the same rows in turn, round after round (the
order rotating), so drift hits them alike; medians over rounds and the
ratios skflow / peer of the same architecture (nflows with batch norm, zuko
without) are printed.  skflow trains through its own fit loop.

    python benchmarks/train_interleaved.py [--rounds 15] [--config 8-D]
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402  (same folder)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--config", default="8-D", choices=list(speed.CONFIGS))
    parser.add_argument("--libs", default="skflow,skflow-nobn,nflows,zuko")
    args = parser.parse_args()
    cfg = speed.CONFIGS[args.config]
    torch.manual_seed(0)
    x = torch.randn(cfg["train_rows"], cfg["D"])
    flows = {}
    for lib in args.libs.split(","):
        try:
            flows[lib] = speed.build(lib, cfg["D"], cfg["layers"], cfg["hidden"])
        except ImportError as exc:
            print(f"{lib}: skipped ({exc})")
    for lib, flow in flows.items():
        speed.train_rows_per_s(lib, flow, x[:1000], 100)  # warm-up
    libs = list(flows)
    rates = {(lib, b): [] for lib in libs for b in (100, 1024)}
    for r in range(args.rounds):
        for batch in (100, 1024):
            for lib in libs[r % len(libs):] + libs[: r % len(libs)]:
                rates[lib, batch].append(speed.train_rows_per_s(lib, flows[lib], x, batch))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.config}, "
          f"{len(x):,} rows per epoch, {args.rounds} rounds; training rows/s (median, min-max)")
    med = {}
    for (lib, batch), v in rates.items():
        med[lib, batch] = statistics.median(v)
        print(f"  {lib:12} batch {batch:5d}  {med[lib, batch]:9,.0f}  ({min(v):,.0f}-{max(v):,.0f})")
    for batch in (100, 1024):
        peers = [p for p in libs if p in speed.PEER_BATCH_NORM]
        for peer in peers:
            ours = speed.twin(peer)
            if ours in libs:
                per_round = [a / b for a, b in zip(rates[ours, batch], rates[peer, batch])]
                print(f"  batch {batch:5d}: {ours} / {peer} (same architecture) "
                      f"{med[ours, batch] / med[peer, batch]:.2f}x; per round median "
                      f"{statistics.median(per_round):.2f}x")
        if peers and "skflow" in libs:
            fastest = max(med[p, batch] for p in peers)
            best = max(med[s, batch] for s in libs if s.startswith("skflow"))
            print(f"  batch {batch:5d}: fastest skflow / fastest peer {best / fastest:.2f}x")


if __name__ == "__main__":
    main()
