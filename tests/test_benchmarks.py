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


def test_small_data_tails_are_measured_in_range_widths():
    import numpy as np
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    small_data = pytest.importorskip("small_data")
    X = np.random.RandomState(0).uniform(size=(2000, 2))
    pipe = make_pipeline(StandardScaler(), GaussianMixture(1, random_state=0)).fit(X)
    tails = small_data.sample_tails(pipe, X)
    # a Gaussian's 0.1 % quantile, 3.09 sd out, passes the edge of U(0, 1) by 0.39 widths
    assert tails["max_reach"] == pytest.approx(3.09 / np.sqrt(12) - 0.5, abs=0.1)  # 20,000 draws
    assert tails["columns_outside"] == 0 and tails["n_columns"] == 2


def test_small_data_report_tables():
    report = pytest.importorskip("report")
    density = [dict(data="iris", shape=[150, 4], model=m, mean=v, sd=0.1, fit_seconds=0.1,
                    **({"tails_max_reach": 0.4} if m.startswith("MAF") else {}))
               for m, v in (("MAFDensity (defaults)", -3.3), ("one full Gaussian", -3.4))]
    novelty = [dict(task="t", model=m, mean=v, sd=0.0, fit_seconds=0.1)
               for m, v in (("MAFOutlierDetector (defaults)", 0.9), ("one full Gaussian", 0.95))]
    lines = report.small_data_tables(dict(cpu="X", density=density, novelty=novelty))
    text = "\n".join(lines)
    assert "| iris | 150 x 4 | **-3.30** ± 0.10 | -3.40 ± 0.10 | 0.40 |" in text
    assert "Within the best baseline's sd on 1 of 1 sets" in text
    assert "| t | 0.900 | **0.950** |" in text


def test_speed_report_names_the_cpu_and_the_roofline_fraction():
    report = pytest.importorskip("report")
    rows = [dict(config="8-D", library="skflow-nobn", batch_norm=False, **_row(60.0),
                 roofline={m: 0.5 for m in speed.METRICS[:-1]}),
            dict(config="8-D", library="zuko", batch_norm=False, **_row(40.0))]
    text = "\n".join(report.speed_table(dict(cpu="Some CPU", cpus=2, torch="2.x", threads=2,
                                             date="2026-12-03", rows=rows)))
    assert "CPU: Some CPU, 2 CPUs" in text
    assert "8-D, skflow-nobn as a fraction of this CPU's bound" in text and "score 50%" in text
    assert "CPU not recorded" in "\n".join(report.speed_table(rows))  # older speed.json: a bare list


def test_contention_report_gives_medians_and_slowdowns():
    report = pytest.importorskip("report")
    text = "\n".join(report.contention_table(dict(
        cpu="X", cpus=2, torch="2.x", busy=2, repeats=3,
        results={"skflow fit": {"idle": [1.0, 2.0, 3.0], "busy": [4.0, 4.0, 9.0]}})))
    assert "| skflow fit | 2.00 | 4.00 | 2.0x |" in text


def test_roofline_bound_counts_training_products_three_times():
    roofline = pytest.importorskip("roofline")
    rates = {"gemm_peak_gflops": 100.0, "gemm_gflops": {}, "tanh_gelem_s_cached": 1e9}  # tanh free
    flops, tanh = roofline.flow_cost(8, 5, 100)
    per_row = sum(flops.values()) / 100e9
    assert roofline.bound_rows_per_s(rates, "8-D", "score") == pytest.approx(1 / per_row, rel=1e-6)
    assert roofline.bound_rows_per_s(rates, "8-D", "train_b1024") == pytest.approx(1 / (3 * per_row), rel=1e-6)
    spline_flops, _ = roofline.flow_cost(8, 5, 100, "spline")
    assert sum(spline_flops.values()) > sum(flops.values())
