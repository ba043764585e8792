"""What the README says its first command prints is what it prints."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from .conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]


def _readme_tool():
    spec = importlib.util.spec_from_file_location("readme_gas", ROOT / "benchmarks" / "readme_gas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shape(line: str) -> re.Pattern:
    """``line`` as a pattern in which every number and run of spaces may differ."""
    pattern = re.sub(r"\\ ", " ", re.escape(line))
    pattern = re.sub(r"-?\d[\d,]*(?:\\\.\d+)?", r"-?[\\d,]+(?:\\.\\d+)?", pattern)
    pattern = re.sub(r" +", r"\\s+", pattern)
    return re.compile(pattern + "$")


def test_readme_block_is_the_recorded_run():
    tool = _readme_tool()
    record = json.loads(tool.RECORD.read_text())
    assert tool.readme_block(tool.README.read_text()) == tool.render(record["lines"])
    assert tool.caption(record) in tool.README.read_text()


def test_readme_lines_have_the_shape_the_command_prints_today(tmp_path, monkeypatch, capsys):
    from skflow.cli import main
    from skflow.experiments.gas import run_gas_experiment

    tool = _readme_tool()
    documented = tool.readme_block(tool.README.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("skflow.experiments.gas.run_gas_experiment", lambda *a, **k: results.append(
        run_gas_experiment(*a, **{**k, "n_flows": 1, "max_iter": 2})))
    results = []
    assert main(tool.COMMAND[1:]) == 0  # what `skflow gas` runs, two epochs of one layer
    fresh = tool.render(capsys.readouterr().out.splitlines())
    results = results[0]
    assert fresh[0].startswith("data: ") and documented[0].startswith("data: ")
    kinds = {"split:": 1, "features after": 2, "Gaussian baseline": 3, "MAF(": -2, "saved the": -1}
    for prefix, position in kinds.items():
        assert documented[position].startswith(prefix) and _shape(documented[position]).match(fresh[position]), (
            documented[position], fresh[position])
    stop = re.compile(r"^(stopped early at epoch \d+|reached max_iter=\d+ epochs)"
                      r"(, best validation at epoch \d+ \(restored\)|; .+)$")
    assert stop.match(documented[-3])
    if "gas sensor array drift" in results["data"] and "gas sensor array drift" in documented[0]:
        # The same data: everything before the flow is closed-form and must agree to the digit.
        assert fresh[:4] == documented[:4]


def test_readme_gas_data_is_the_shared_drift_data():
    if not (SHARED_DATA / "uci_gas_sensor_array_drift").exists():
        pytest.skip("shared gas drift data not available")
    assert "gas sensor array drift" in _readme_tool().readme_block((ROOT / "README.md").read_text())[0]


def test_the_readme_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    example = text.split("## In 30 seconds", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)  # it saves model.skops
    exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "model.skops").exists()
