"""Training, scoring and sampling speed of skflow's MAF against nflows and zuko,
and of its rational-quadratic spline flow against zuko's NSF.

Same architecture for all (MAF layers of 2 tanh hidden layers, reversed orders),
same data, same minimal training loop for the peers (tensor slices, Adam);
skflow is timed through its own training loop.  Batch norm between layers
where the peer has it: nflows has it, zuko has none, so skflow runs both
ways ("skflow" with batch norm, "skflow-nobn" without, MAFDensity's default)
and each peer is compared with the skflow flow of its own architecture.
Spline rows: "skflow-spline" (8 bins, no batch norm) against "zuko-nsf";
"skflow-affine-spline" adds the shift and scale before each spline.

This machine's speed drifts by up to 2x within minutes, so the rates are
measured in ONE process per configuration, the libraries taking turns: each
round measures every metric once per library, the order rotating from round
to round, and the table gives medians over rounds.  Peak memory (max RSS)
comes from a separate process per library running the same work once.
Ratios skflow / fastest peer; a table and JSON.

    pip install nflows zuko        # the peers (optional; missing ones are skipped)
    python benchmarks/speed.py [--quick] [--repeats 5] [--json results/speed.json] [--configs 8-D] [--libs skflow,nflows]

A/B against an earlier skflow (a checkout at DIR, e.g. ``git worktree add
/tmp/prev HEAD~3``): ``--previous DIR`` imports DIR/skflow as
``skflow_previous`` beside this one and adds the libraries
"skflow-previous" (batch norm) and "skflow-previous-nobn":

    python benchmarks/speed.py --previous /tmp/prev --libs skflow,skflow-previous,skflow-nobn,skflow-previous-nobn
"""

import argparse
import importlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _machine import cpu_name, load_average, n_cpus  # benchmarks/_machine.py

CONFIGS = {
    "8-D": dict(D=8, layers=10, hidden=100, train_rows=20_000, score_rows=1_000_000, sample_rows=10_000,
                naive_sample_rows=10_000),
    "257-D": dict(D=257, layers=10, hidden=512, train_rows=4_000, score_rows=100_000, sample_rows=2_000,
                  naive_sample_rows=50),
}


LIBRARIES = ("skflow", "skflow-nobn", "skflow+compile", "nflows", "zuko", "skflow-spline", "skflow-affine-spline",
             "zuko-nsf")
PEER_BATCH_NORM = {"nflows": True, "zuko": False, "zuko-nsf": False}
#: The skflow flow built like each peer (rational-quadratic splines of 8 bins for NSF).
TWINS = {"nflows": "skflow", "zuko": "skflow-nobn", "zuko-nsf": "skflow-spline"}
N_BINS = 8
METRICS = ["train_b100", "train_b1024", "score", "sample", "peak_rss_mb"]
MATCHED = "skflow vs same-architecture peer"


PREVIOUS = "skflow-previous"


def batch_norm(lib):
    if lib in PEER_BATCH_NORM:
        return PEER_BATCH_NORM[lib]
    return not lib.endswith(("-nobn", "-spline"))


def family(lib):
    """The transform: libraries are compared within one ("affine" or "spline")."""
    return "spline" if lib.endswith(("-spline", "-nsf")) else "affine"


def import_previous(checkout):
    """Make DIR/skflow importable as ``skflow_previous`` (a copy in a temporary folder)."""
    target = Path(tempfile.mkdtemp()) / "skflow_previous"
    shutil.copytree(Path(checkout) / "skflow", target)
    sys.path.insert(0, str(target.parent))


def skflow_api(lib):
    """``(build_maf, train_flow)`` of the skflow that ``lib`` names."""
    package = "skflow_previous" if lib.startswith(PREVIOUS) else "skflow"
    build_maf = importlib.import_module(package + ".nn").build_maf
    for module in (".nn.training", "._training"):  # where train_flow lived over time
        try:
            return build_maf, importlib.import_module(package + module).train_flow
        except ModuleNotFoundError:
            continue
    raise ImportError(f"no train_flow in {package}")


def twin(peer):
    """The skflow flow built like ``peer``."""
    return TWINS[peer]


def ratios(results, name):
    """skflow / fastest peer, per metric: against the fastest peer of any
    architecture, and against each peer's own architecture (the worse ratio
    over peers, each compared with the skflow flow built like it)."""
    peers = {lib: r for (n, lib), r in results.items() if n == name and lib in PEER_BATCH_NORM}
    ours = {lib: r for (n, lib), r in results.items() if n == name and lib.startswith("skflow")}
    out = {}
    for lib, r in ours.items():
        same = [p for peer, p in peers.items() if family(peer) == family(lib)]
        if same:
            out[lib] = {m: r[m] / max(p[m] for p in same) for m in METRICS[:-1]}
    for kind in ("affine", "spline"):
        matched = {}
        for peer, p in peers.items():
            if family(peer) == kind and twin(peer) in ours:
                for m in METRICS[:-1]:
                    matched[m] = min(matched.get(m, float("inf")), ours[twin(peer)][m] / p[m])
        if len(matched) == len(METRICS) - 1:
            out[MATCHED + ("" if kind == "affine" else " (spline)")] = matched
    return out


def build(lib, D, layers, hidden):
    if lib.startswith("skflow"):
        build_maf, _ = skflow_api(lib)
        extra = {}
        if family(lib) == "spline":  # "-affine-spline": the spline after a shift and scale
            extra = dict(transform="affine_spline" if lib.endswith("-affine-spline") else "spline", n_bins=N_BINS)
        return build_maf(D, layers, (hidden, hidden), "tanh", batch_norm(lib), "reverse",
                         generator=torch.Generator().manual_seed(0), **extra)
    if lib == "nflows":
        from nflows.distributions import StandardNormal
        from nflows.flows import Flow
        from nflows.transforms import (BatchNorm, CompositeTransform,
                                       MaskedAffineAutoregressiveTransform, ReversePermutation)

        ts = []
        for _ in range(layers):
            ts += [MaskedAffineAutoregressiveTransform(D, hidden, num_blocks=1, use_residual_blocks=False,
                                                       activation=torch.tanh),
                   BatchNorm(D), ReversePermutation(D)]
        return Flow(CompositeTransform(ts), StandardNormal([D]))
    if lib == "zuko":
        import zuko

        return zuko.flows.MAF(D, transforms=layers, hidden_features=(hidden, hidden), activation=torch.nn.Tanh)
    if lib == "zuko-nsf":
        import zuko

        return zuko.flows.NSF(D, bins=N_BINS, transforms=layers, hidden_features=(hidden, hidden),
                              activation=torch.nn.Tanh)
    raise ValueError(lib)


def log_prob(lib, flow, x):
    return flow().log_prob(x) if lib.startswith("zuko") else flow.log_prob(x)  # skflow: eager scoring


def sample(lib, flow, n):
    if lib.startswith("zuko"):
        return flow().sample((n,))
    if lib.startswith("skflow"):
        return flow.sample(n, generator=torch.Generator().manual_seed(0))
    return flow.sample(n)


def train_rows_per_s(lib, flow, x, batch):
    if lib.startswith("skflow"):
        _, train_flow = skflow_api(lib)
        t = time.perf_counter()
        train_flow(flow, x, None, batch_size=batch, max_epochs=1, learning_rate=1e-4,
                   max_grad_norm=None, generator=torch.Generator().manual_seed(0),
                   compile=lib == "skflow+compile")
        return len(x) / (time.perf_counter() - t)
    flow.train()
    opt = torch.optim.Adam(flow.parameters(), lr=1e-4)
    perm = torch.randperm(len(x))
    t = time.perf_counter()
    for idx in perm.split(batch):
        loss = -log_prob(lib, flow, x[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return len(x) / (time.perf_counter() - t)


def _data(cfg):
    torch.manual_seed(0)
    return torch.randn(cfg["train_rows"], cfg["D"]), torch.randn(cfg["score_rows"], cfg["D"])


def measure(lib, flow, cfg, metric, x, big):
    """One measurement of one metric, in rows/s."""
    if metric.startswith("train_b"):
        return train_rows_per_s(lib, flow, x, int(metric[len("train_b"):]))
    flow.eval()
    with torch.no_grad():
        t = time.perf_counter()
        if metric == "score":
            for chunk in big.split(65536):
                log_prob(lib, flow, chunk)
            return len(big) / (time.perf_counter() - t)
        n = cfg["sample_rows"] if lib.startswith("skflow") else cfg["naive_sample_rows"]
        sample(lib, flow, n)
        return n / (time.perf_counter() - t)


def rates(name, libs, repeats, log=print, rounds=None):
    """Median rows/s per (library, metric), the libraries taking turns in this process;
    ``rounds`` (a dict), where given, receives every round's rates per (library, metric)."""
    cfg = CONFIGS[name]
    x, big = _data(cfg)
    flows = {}
    for lib in libs:
        try:
            flows[lib] = build(lib, cfg["D"], cfg["layers"], cfg["hidden"])
        except ImportError as exc:
            log(f"{lib} {name}: skipped ({exc})")
    for lib, flow in flows.items():  # warm-up: first-call costs are not throughput
        train_rows_per_s(lib, flow, x[:1000], 100)
        measure(lib, flow, dict(cfg, sample_rows=10, naive_sample_rows=2), "sample", x, big[:1000])
    order = list(flows)
    runs = {(lib, m): [] for lib in order for m in METRICS[:-1]}
    for r in range(repeats):
        turn = order[r % len(order):] + order[: r % len(order)]
        for metric in METRICS[:-1]:
            for lib in turn:
                runs[lib, metric].append(measure(lib, flows[lib], cfg, metric, x, big))
        log(f"round {r + 1} {name}: " + ", ".join(
            f"{lib} " + "/".join(f"{runs[lib, m][-1]:,.0f}" for m in METRICS[:-1]) for lib in order), flush=True)
    if rounds is not None:
        rounds.update(runs)
    return {lib: {m: statistics.median(runs[lib, m]) for m in METRICS[:-1]} for lib in order}


def paired_ratios(rounds):
    """skflow / fastest peer of the same transform, per round, then the median
    over rounds.  On a VM whose speed drifts (this project's 2-core machines
    ran the same loop at 33k and 67k rows/s minutes apart), rates measured in
    the same round, seconds apart, compare more fairly than medians over rounds."""
    libs = dict.fromkeys(lib for lib, _ in rounds)
    peers = [lib for lib in libs if lib in PEER_BATCH_NORM]
    out = {}
    for lib in libs:
        if not lib.startswith("skflow"):
            continue
        same = [p for p in peers if family(p) == family(lib)]
        if same:
            out[lib] = {m: statistics.median(ours / max(rounds[p, m][i] for p in same)
                                             for i, ours in enumerate(rounds[lib, m]))
                        for m in METRICS[:-1]}
    return out


def one(lib, name):
    """The whole workload once, for one library (peak memory in its own process)."""
    cfg = CONFIGS[name]
    x, big = _data(cfg)
    flow = build(lib, cfg["D"], cfg["layers"], cfg["hidden"])
    out = {m: measure(lib, flow, cfg, m, x, big) for m in METRICS[:-1]}
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _peak_rss_mb():
    # VmHWM belongs to this process's memory map; ru_maxrss also counts the
    # parent's resident size at the fork that started it.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss(lib, name, quick, previous=None):
    cmd = [sys.executable, __file__, "--one", lib, name] + (["--quick"] if quick else [])
    cmd += ["--previous", previous] if previous else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (each library measured once per round)")
    parser.add_argument("--json", default="results/speed.json")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--libs", default=",".join(LIBRARIES), help="comma-separated: " + ", ".join(LIBRARIES))
    parser.add_argument("--previous", metavar="DIR", help="a checkout of an earlier skflow, for A/B rows")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--no-roofline", action="store_true",
                        help="skip measuring this CPU's ceilings (benchmarks/roofline.py)")
    parser.add_argument("--one", nargs=2, metavar=("LIB", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.previous:
        import_previous(args.previous)
    if args.quick:
        for cfg in CONFIGS.values():
            cfg.update(train_rows=cfg["train_rows"] // 10, score_rows=cfg["score_rows"] // 10)
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    print(f"CPU: {cpu_name()} ({n_cpus()} CPUs); load average {load_average():.2f}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.repeats} rounds")
    results, paired = {}, {}
    for name in args.configs.split(","):
        rounds = {}
        for lib, r in rates(name, args.libs.split(","), args.repeats, rounds=rounds).items():
            results[name, lib] = r
        paired[name] = paired_ratios(rounds)
    for (name, lib), r in results.items():
        r["peak_rss_mb"] = float("nan") if args.no_memory else (
            peak_rss(lib, name, args.quick, args.previous) or float("nan"))

    print(f"\n{'config':6} {'library':15} " + " ".join(f"{m:>12}" for m in METRICS) + "   (rows/s; MB)")
    table = []
    for (name, lib), r in results.items():
        print(f"{name:6} {lib:15} " + " ".join(f"{r[m]:12,.0f}" for m in METRICS))
        table.append(dict(config=name, library=lib, batch_norm=batch_norm(lib), **r))
    print(f"\nratios skflow / fastest peer of the same transform; {MATCHED}: the worse of skflow / nflows "
          "and skflow-nobn / zuko; (spline): skflow-spline / zuko-nsf (higher is better)")
    for name in args.configs.split(","):
        for lib, rs in ratios(results, name).items():
            print(f"{name:6} {lib:15} " + " ".join(f"{m}={v:.2f}x" for m, v in rs.items()))
    print("\nthe same, per round (median over rounds of each round's ratio)")
    for name, by_lib in paired.items():
        for lib, rs in by_lib.items():
            print(f"{name:6} {lib:15} " + " ".join(f"{m}={v:.2f}x" for m, v in rs.items()))
    machine = None
    if not args.no_roofline:
        import roofline  # same folder

        machine = roofline.machine_rates()
        print("\nfraction of the roofline bound (benchmarks/roofline.py: matrix products at their "
              "measured rates + tanh, nothing else)")
        for row in table:
            if row["library"].startswith("skflow") and row["config"] in roofline.MODELS:
                transform = "spline" if family(row["library"]) == "spline" else "affine"
                row["roofline"] = {m: row[m] / roofline.bound_rows_per_s(machine, row["config"], m,
                                                                         CONFIGS[row["config"]]["layers"], transform)
                                   for m in METRICS[:-1]}
                print(f"{row['config']:6} {row['library']:15} " + " ".join(
                    f"{m}={v:.0%}" for m, v in row["roofline"].items()))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(cpu=cpu_name(), cpus=n_cpus(), torch=torch.__version__,
                                               threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"),
                                               machine=machine, rows=table, paired_ratios=paired),
                                          indent=2))


if __name__ == "__main__":
    main()
