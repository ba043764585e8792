"""This CPU's ceilings for a MAF, and a speed table's rows as fractions of them.

Measures, in this process and with torch's current thread count:

- float32 matrix-product rates (GFLOP/s) for the shapes a MAF's MADE layers
  use at batch 100 and 1024 (8-D and 257-D models, as in ``speed.py``), and
  for one large square product (the machine's practical peak);
- memory bandwidth (GB/s, a large tensor copy: read + write);
- the rates of ``tanh`` (torch's; the fused training pass's ``2 sigmoid(2a) - 1``;
  scoring's, one ``sigmoid`` pass with the rest folded into the products)
  and ``exp`` over a cache-resident and a large tensor (G elements/s).

From these, :func:`bound_rows_per_s` gives the rows/s a MAF could reach if
its matrix products ran at the measured rate of their shapes and its tanh
at the fused kernels' measured tanh rate, with nothing else costing time.  ``speed.py``
prints each of its rows as a fraction of that bound (unless ``--no-roofline``).

Run: ``python benchmarks/roofline.py [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from _machine import cpu_name, machine_line, n_cpus  # benchmarks/_machine.py
from skflow.nn.layers.kernel import activation_

#: The MAF shapes measured: (features, hidden units, outputs per feature).
MODELS = {"8-D": (8, 100), "257-D": (257, 512)}
SPLINE_OUTPUTS = 3 * 8 - 1  # 8 bins: widths, heights, interior derivatives


def _rate(fn, work, min_seconds=0.2):
    """``work`` units per second of ``fn()``, the median of 5 timed batches."""
    fn()
    reps, start = 1, time.perf_counter()
    while time.perf_counter() - start < min_seconds / 5:
        fn()
        reps += 1
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        rates.append(work * reps / (time.perf_counter() - start))
    return statistics.median(rates)


def gemm_gflops(m, k, n):
    """float32 ``(m x k) @ (k x n)`` rate in GFLOP/s."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    out = torch.empty(m, n)
    return _rate(lambda: torch.mm(a, b, out=out), 2.0 * m * k * n) / 1e9


def made_shapes(D, hidden, outputs_per_feature=2):
    """The (in, out) widths of a MADE with two hidden layers."""
    return [(D, hidden), (hidden, hidden), (hidden, outputs_per_feature * D)]


def machine_rates():
    """The measured ceilings, as a dict."""
    out = {"cpu": cpu_name(), "cpus": n_cpus(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    out["gemm_peak_gflops"] = gemm_gflops(2048, 2048, 2048)
    out["gemm_gflops"] = {}
    for name, (D, hidden) in MODELS.items():
        for batch in (100, 1024):
            for k, n in made_shapes(D, hidden):
                out["gemm_gflops"][f"{batch}x{k}x{n}"] = gemm_gflops(batch, k, n)
    big = torch.randn(32 * 2**20)  # 128 MB: beyond any cache
    dst = torch.empty_like(big)
    out["copy_gbs"] = _rate(lambda: dst.copy_(big), 2 * 4 * big.numel()) / 1e9
    for size, label in ((2**16, "cached"), (big.numel(), "large")):
        x = big[:size].clone()
        y = torch.empty_like(x)
        out[f"tanh_gelem_s_{label}"] = _rate(lambda: torch.tanh(x, out=y), size) / 1e9
        out[f"exp_gelem_s_{label}"] = _rate(lambda: torch.exp(x, out=y), size) / 1e9
        # the fused kernels' tanh: 2 sigmoid(2a) - 1 in place (skflow.nn.layers.kernel.activation_)
        out[f"fused_tanh_gelem_s_{label}"] = _rate(lambda: activation_(y.copy_(x), "tanh"), size) / 1e9
        # scoring's tanh: one sigmoid pass (made_kernel.MADEKernel.made_eval_prepare folds the rest)
        out[f"scoring_tanh_gelem_s_{label}"] = _rate(lambda: y.copy_(x).sigmoid_(), size) / 1e9
    return out


def flow_cost(D, n_layers, hidden, transform="affine"):
    """Per row and layer stack: dense matrix-product FLOPs by shape (forward
    only) and tanh evaluations."""
    per_feature = 2 if transform == "affine" else SPLINE_OUTPUTS
    shapes = made_shapes(D, hidden, per_feature)
    flops = {shape: 2.0 * shape[0] * shape[1] * n_layers for shape in shapes}
    return flops, 2 * hidden * n_layers


def bound_rows_per_s(rates, model, metric, n_layers=5, transform="affine"):
    """Rows/s if the matrix products ran at their measured rates and tanh
    at its measured rate, and nothing else took time.  Training counts the
    forward products three times (forward, input and weight gradients) and
    tanh once; scoring and one-pass sampling count them once."""
    D, hidden = MODELS[model]
    flops, tanh = flow_cost(D, n_layers, hidden, transform)
    batch = 100 if metric == "train_b100" else 1024
    passes = 3 if metric.startswith("train") else 1
    seconds = sum(passes * f / (rates["gemm_gflops"].get(f"{batch}x{k}x{n}") or rates["gemm_peak_gflops"]) / 1e9
                  for (k, n), f in flops.items())
    tanh_rate = rates.get("fused_tanh_gelem_s_cached", rates["tanh_gelem_s_cached"])  # older JSON: torch's tanh
    if metric == "score":
        tanh_rate = rates.get("scoring_tanh_gelem_s_cached", tanh_rate)
    seconds += tanh / (tanh_rate * 1e9)
    return 1.0 / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the rates here")
    args = parser.parse_args(argv)
    print(machine_line(), f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    rates = machine_rates()
    print(f"\nfloat32 matrix products (GFLOP/s): 2048^3 {rates['gemm_peak_gflops']:.1f}")
    for shape, r in rates["gemm_gflops"].items():
        print(f"  {shape:>14}: {r:7.1f}  ({r / rates['gemm_peak_gflops']:.0%} of the large product)")
    print(f"memory copy: {rates['copy_gbs']:.1f} GB/s (read + write)")
    for label in ("cached", "large"):
        print(f"tanh ({label}): torch {rates[f'tanh_gelem_s_{label}']:.2f}, as skflow's kernels compute it "
              f"(copy + 2 sigmoid(2a) - 1) {rates[f'fused_tanh_gelem_s_{label}']:.2f}, in scoring "
              f"(copy + sigmoid) {rates[f'scoring_tanh_gelem_s_{label}']:.2f} G elements/s; "
              f"exp: {rates[f'exp_gelem_s_{label}']:.2f} G elements/s")
    print("\nbound on rows/s (products at their measured rates + tanh; nothing else):")
    for model in MODELS:
        for transform in ("affine", "spline"):
            print(f"  {model} {transform:6}: " + ", ".join(
                f"{m} {bound_rows_per_s(rates, model, m, transform=transform):,.0f}"
                for m in ("train_b100", "train_b1024", "score", "sample")))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rates, indent=1))


if __name__ == "__main__":
    main()
