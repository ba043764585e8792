"""Rewrite the benchmark tables of docs/benchmarks.md from the JSON files in results/

    python benchmarks/report.py [--results results] [--readme docs/benchmarks.md]

Replaces the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->``
with tables built from ``gas_drift_density.json``, ``small_data.json``,
``speed.json`` and ``contention.json`` (those present); ``make bench`` runs the benchmarks and then this script.
"""

import argparse
import json
import statistics
from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def drift_table(rows):
    lines = ["Gas sensor drift data (`benchmarks/gas_drift_density.py`; held-out log-likelihood, nats):", "",
             "| model | mean | median | rows < -1000 | fit s |", "|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: -r["median_ll"]):
        lines.append(f"| {r['model']} | {r['test_ll']:.1f} | {r['median_ll']:.1f} | "
                     f"{r['n_below_minus_1000']} | {r['fit_seconds']:.0f} |")
    return lines


def small_data_tables(result):
    """Density and novelty tables of benchmarks/small_data.py, one row per data set / task."""
    density, novelty = result["density"], result["novelty"]
    lines = [f"Small data (`benchmarks/small_data.py`, CPU: {result['cpu']}). Held-out log-likelihood "
             "(nats, 5-fold mean ± sd over folds, standardised space); `tails`: how far MAFDensity's samples' 0.1 % / "
             "99.9 % quantiles reach past the data's range, in range widths (worst column and fold):", ""]
    models = list(dict.fromkeys(r["model"] for r in density))
    short = {m: m.split(" (")[0].replace("one full ", "").replace("MAFDensity", "MAF") for m in models}
    lines += ["| data | rows x cols | " + " | ".join(short[m] for m in models) + " | MAF tails |",
              "|---|---|" + "---:|" * (len(models) + 1)]
    by = {(r["data"], r["model"]): r for r in density}
    for data in dict.fromkeys(r["data"] for r in density):
        cells = [by[(data, m)] for m in models]
        best = max(c["mean"] for c in cells)
        text = [(f"**{c['mean']:.2f}** ± {c['sd']:.2f}" if c["mean"] == best else f"{c['mean']:.2f} ± {c['sd']:.2f}")
                for c in cells]
        tails = by[(data, models[0])].get("tails_max_reach", float("nan"))
        lines.append(f"| {data} | {cells[0]['shape'][0]:,} x {cells[0]['shape'][1]} | "
                     + " | ".join(text) + f" | {tails:.2f} |")
    from small_data import density_targets  # benchmarks/small_data.py

    for maf in [m for m in models if m.startswith("MAF")]:
        lines += ["", f"Targets for {maf}:", ""] + density_targets(density, maf)
    if novelty:
        models = list(dict.fromkeys(r["model"] for r in novelty))
        name = {m: m.replace("MAFOutlierDetector (defaults)", "MAF").replace("one full ", "")
                .replace(" (GridSearchCV)", " (CV)").replace("LocalOutlierFactor", "LOF") for m in models}
        lines += ["", "Novelty ROC AUC (mean over 5 splits; `MAF, fit(groups=sources)`: the same model "
                  "told the training rows' speakers / recording batches, so that early stopping holds "
                  "out whole sources):", "",
                  "| task | " + " | ".join(name[m] for m in models) + " |", "|---|" + "---:|" * len(models)]
        by = {(r["task"], r["model"]): r for r in novelty}
        for task in dict.fromkeys(r["task"] for r in novelty):
            cells = [by.get((task, m)) for m in models]
            best = max(c["mean"] for c in cells if c)
            text = ["–" if c is None else (f"**{c['mean']:.3f}**" if c["mean"] == best else f"{c['mean']:.3f}")
                    for c in cells]
            lines.append(f"| {task} | " + " | ".join(text) + " |")
    return lines


def speed_table(result):
    from speed import MATCHED, METRICS, batch_norm, ratios  # same folder

    # speed.json was a bare list of rows before it named its machine.
    rows = result["rows"] if isinstance(result, dict) else result
    where = (f"CPU: {result['cpu']}, {result['cpus']} CPUs, torch {result['torch']} with "
             f"{result['threads']} threads, {result['date']}" if isinstance(result, dict) else "CPU not recorded")
    lines = [f"Speed against nflows and zuko (`benchmarks/speed.py`; {where}; rows/s, medians over rounds in "
             "which the libraries take turns in one process; peak RSS in MB, each library in its own process; "
             "nflows has batch norm, zuko none: `skflow` has it, `skflow-nobn` not):", "",
             "| config | library | batch norm | train b=100 | train b=1024 | score | sample | peak MB |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        bn = "yes" if r.get("batch_norm", batch_norm(r["library"])) else "no"
        lines.append(f"| {r['config']} | {r['library']} | {bn} | "
                     + " | ".join(f"{r[m]:,.0f}" for m in METRICS) + " |")
    lines.append("")
    results = {(r["config"], r["library"]): r for r in rows}
    for config in dict.fromkeys(r["config"] for r in rows):
        for lib, rs in ratios(results, config).items():
            text = ", ".join(f"{m} {v:.2f}x" for m, v in rs.items())
            if lib == MATCHED:
                lines.append(f"- {config}, skflow / the peer of the same architecture (the worse of "
                             f"skflow / nflows and skflow-nobn / zuko): {text}")
            else:
                lines.append(f"- {config}, {lib} / fastest peer: {text}")
    for config, by_lib in ((result.get("paired_ratios") if isinstance(result, dict) else None) or {}).items():
        for lib, rs in by_lib.items():
            lines.append(f"- {config}, {lib} / fastest peer, per round (median of the rounds' ratios): "
                         + ", ".join(f"{m} {v:.2f}x" for m, v in rs.items()))
    for r in rows:
        if "roofline" in r:
            lines.append(f"- {r['config']}, {r['library']} as a fraction of this CPU's bound "
                         "(`benchmarks/roofline.py`: matrix products at their measured rates + tanh): "
                         + ", ".join(f"{m} {v:.0%}" for m, v in r["roofline"].items()))
    return lines


def contention_table(result):
    lines = [f"Idle and beside {result['busy']} busy processes (`benchmarks/contention.py`; CPU: {result['cpu']}, "
             f"{result['cpus']} CPUs, torch {result['torch']}; median seconds of {result['repeats']} runs):", "",
             "| job | idle s | busy s | slowdown |", "|---|---:|---:|---:|"]
    for name, r in result["results"].items():
        idle, busy = statistics.median(r["idle"]), statistics.median(r["busy"])
        lines.append(f"| {name} | {idle:.2f} | {busy:.2f} | {busy / idle:.1f}x |")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="results")
    parser.add_argument("--readme", default="docs/benchmarks.md", help="the page whose tables are rewritten")
    args = parser.parse_args()
    results, readme = Path(args.results), Path(args.readme)
    blocks = []
    if (results / "gas_drift_density.json").exists():
        blocks += drift_table(json.loads((results / "gas_drift_density.json").read_text())) + [""]
    if (results / "small_data.json").exists():
        blocks += small_data_tables(json.loads((results / "small_data.json").read_text())) + [""]
    if (results / "speed.json").exists():
        blocks += speed_table(json.loads((results / "speed.json").read_text())) + [""]
    if (results / "contention.json").exists():
        blocks += contention_table(json.loads((results / "contention.json").read_text())) + [""]
    if not blocks:
        raise SystemExit(f"no benchmark results in {results}/; run `make bench` first")
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + "\n".join(blocks) + END + tail)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
