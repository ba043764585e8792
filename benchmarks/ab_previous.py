"""Head-to-head A/B of this skflow against an earlier checkout, robust to a noisy machine.

``speed.py --previous`` gives rows/s tables; on a shared machine whose speed
drifts by 20-40 % from minute to minute its medians can still differ by more
than the code does.  This script times the same work for the two versions in
alternating pairs (A then B, then B then A, ...), in CPU time of one thread,
and prints the median of the per-pair speed ratios (new / previous) with their
spread.  Through the same ``build`` and ``train_flow`` as ``speed.py``.

    git worktree add /tmp/prev <commit>
    python benchmarks/ab_previous.py --previous /tmp/prev [--pairs 20] [--bn] [--config 8-D] [--layer spline]
"""

import argparse
import statistics
import time

import torch

import speed


def timer(lib, flow, metric, x, big, cfg):
    """A function that runs one ``metric`` once and returns its CPU seconds."""
    _, train_flow = speed.skflow_api(lib)

    def run():
        start = time.process_time()
        if metric.startswith("train_b"):
            train_flow(flow, x, None, batch_size=int(metric[len("train_b"):]), max_epochs=1, learning_rate=1e-4,
                       max_grad_norm=None, generator=torch.Generator().manual_seed(0))
        else:
            flow.eval()
            with torch.no_grad():
                if metric == "score":
                    for chunk in big.split(65536):
                        flow.log_prob(chunk)
                else:
                    flow.sample(cfg["sample_rows"] // 4, torch.Generator().manual_seed(0))
        return time.process_time() - start

    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--previous", required=True, metavar="DIR")
    parser.add_argument("--config", default="8-D", choices=list(speed.CONFIGS))
    parser.add_argument("--bn", action="store_true", help="with batch norm (default: without)")
    parser.add_argument("--layer", default="affine", choices=["affine", "spline", "affine-spline"])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--metrics", default="train_b100,train_b1024,score,sample")
    args = parser.parse_args()
    speed.import_previous(args.previous)
    torch.set_num_threads(1)  # CPU time of one thread: less exposed to other processes
    cfg = speed.CONFIGS[args.config]
    x, big = speed._data(cfg)
    x, big = x[: cfg["train_rows"] // 4], big[: cfg["score_rows"] // 10]
    if args.layer != "affine":  # spline layers run without batch norm
        libs = (f"skflow-{args.layer}", f"{speed.PREVIOUS}-{args.layer}")
    else:
        libs = ("skflow", speed.PREVIOUS) if args.bn else ("skflow-nobn", speed.PREVIOUS + "-nobn")
    print(f"{args.config}, {args.layer} layers, {'with' if args.bn else 'without'} batch norm, "
          f"{args.pairs} alternating pairs, 1 thread")
    for metric in args.metrics.split(","):
        flows = {lib: speed.build(lib, cfg["D"], cfg["layers"], cfg["hidden"]) for lib in libs}
        runs = {lib: timer(lib, flows[lib], metric, x, big, cfg) for lib in libs}
        for lib in libs:
            runs[lib]()  # warm-up
        times = {lib: [] for lib in libs}
        for i in range(args.pairs):
            for lib in (libs if i % 2 == 0 else libs[::-1]):
                times[lib].append(runs[lib]())
        ratios = [old / new for new, old in zip(times[libs[0]], times[libs[1]])]
        print(f"{metric:12} new {statistics.median(times[libs[0]]) * 1e3:8.1f} ms  previous "
              f"{statistics.median(times[libs[1]]) * 1e3:8.1f} ms  speed ratio new/previous: median "
              f"{statistics.median(ratios):.3f}, sd {statistics.stdev(ratios):.3f}")


if __name__ == "__main__":
    main()
