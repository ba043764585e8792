"""Run the README's first command and rewrite what the README says it prints.

    python benchmarks/readme_gas.py              # runs `skflow gas` (minutes), records it, rewrites README.md
    python benchmarks/readme_gas.py --log FILE   # records the output of a run you already made instead

The run's lines, the command, the CPU, torch and the date go to
``benchmarks/records/readme_gas.json``; the README block between
``<!-- gas:start -->`` and ``<!-- gas:end -->`` is rendered from that record
(per-epoch lines folded into ``...``), and ``tests/test_readme.py`` checks
that the two agree and that the lines have the shape the command prints
today, so the README cannot drift from the command silently.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "readme_gas.json"
README = ROOT / "README.md"
START, END = "<!-- gas:start -->", "<!-- gas:end -->"
COMMAND = ["skflow", "gas"]


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render(lines: list[str]) -> list[str]:
    """The README's rendition of a run: epoch lines folded into one ``...``,
    the long data line cut at a word boundary."""
    out = []
    for line in lines:
        if line.startswith("epoch"):
            if out[-1] != "...":
                out.append("...")
            continue
        if len(line) > 150:
            line = line[: line.rindex(" ", 0, 150)] + " ..."
        out.append(line)
    return out


def caption(record: dict) -> str:
    return (f"`{record['command']}` on {record['date']}: {record['cpu']}, torch {record['torch']}, "
            f"{record['threads']} threads:")


def readme_block(text: str) -> list[str]:
    """The lines of the README's recorded output (inside the code fence)."""
    block = text.split(START, 1)[1].split(END, 1)[0]
    inside = block.split("```")[1]
    return inside.strip().splitlines()


def rewrite_readme(record: dict) -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    body = "\n".join([caption(record), "", "```", *render(record["lines"]), "```"])
    README.write_text(f"{head}{START}\n{body}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="the output of a `skflow gas` run to record instead of running it")
    args = parser.parse_args()
    if args.log:
        lines = Path(args.log).read_text().splitlines()
    else:
        skflow = Path(sys.executable).with_name("skflow")
        run = subprocess.run([str(skflow), *COMMAND[1:]], capture_output=True, text=True, cwd=ROOT, check=True)
        lines = run.stdout.splitlines()
    import torch

    record = dict(command=" ".join(COMMAND), cpu=cpu_name(), torch=torch.__version__,
                  threads=torch.get_num_threads(), date=datetime.date.today().isoformat(), lines=lines)
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    rewrite_readme(record)
    print(f"recorded {RECORD.relative_to(ROOT)} and rewrote {README.name}")


if __name__ == "__main__":
    main()
