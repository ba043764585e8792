"""The benchmark scripts' bookkeeping (their numbers are measured, not tested)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
speed = pytest.importorskip("speed")


def _row(value):
    return {m: value for m in speed.METRICS}


def test_ratios_compare_each_peer_with_the_skflow_flow_of_its_architecture():
    results = {
        ("8-D", "skflow"): _row(30.0),  # batch norm, like nflows
        ("8-D", "skflow-nobn"): _row(60.0),  # none, like zuko
        ("8-D", "nflows"): _row(10.0),
        ("8-D", "zuko"): _row(40.0),
    }
    out = speed.ratios(results, "8-D")
    assert out["skflow"]["train_b1024"] == pytest.approx(30 / 40)  # against the fastest peer
    assert out["skflow-nobn"]["score"] == pytest.approx(60 / 40)
    # matched: min(skflow / nflows, skflow-nobn / zuko) = min(3.0, 1.5)
    assert out[speed.MATCHED]["sample"] == pytest.approx(1.5)
    assert "peak_rss_mb" not in out["skflow"]


def test_ratios_without_peers_or_twins():
    assert speed.ratios({("8-D", "skflow"): _row(1.0)}, "8-D") == {}
    out = speed.ratios({("8-D", "skflow"): _row(2.0), ("8-D", "zuko"): _row(1.0)}, "8-D")
    assert set(out) == {"skflow"}  # no skflow-nobn run: no matched ratio for zuko


def test_batch_norm_flags():
    assert speed.batch_norm("skflow") and speed.batch_norm("nflows")
    assert not speed.batch_norm("skflow-nobn") and not speed.batch_norm("zuko")
    assert speed.twin("nflows") == "skflow" and speed.twin("zuko") == "skflow-nobn"
    assert all(speed.batch_norm(speed.twin(p)) == speed.batch_norm(p) for p in speed.PEER_BATCH_NORM)
