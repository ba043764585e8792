"""The GAS workflow end to end on real gas-sensor data from ../shared."""

import joblib
import numpy as np
import pytest

from skflow import MAFDensity
from skflow.cli import main
from skflow.datasets import load_gas_drift
from skflow.experiments import GAS_MAF_PARAMS, make_gas_pipeline, run_gas_experiment

from .conftest import shared_path

FAST = dict(n_flows=2, hidden_layer_sizes=(80, 80), max_iter=3, batch_size=256, verbose=0)


def test_make_gas_pipeline_has_paper_defaults():
    pipe = make_gas_pipeline()
    assert [name for name, _ in pipe.steps] == ["drop", "filter", "scale", "density"]
    maf = pipe.named_steps["density"]
    assert isinstance(maf, MAFDensity)
    for key, value in GAS_MAF_PARAMS.items():
        assert maf.get_params()[key] == value
    assert pipe.named_steps["filter"].threshold == 0.98
    assert pipe.named_steps["drop"].columns == ["time_s", "co_ppm", "ethylene_ppm"]


def test_gas_pipeline_fit_score_save_load_on_drift_data(tmp_path):
    bunch = load_gas_drift(shared_path("uci_gas_sensor_array_drift"), batches=[1, 2])
    X = bunch.data
    train, test = X[::2], X[1::2]
    pipe = make_gas_pipeline([0], random_state=0, **FAST).fit(train)
    kept = pipe.named_steps["filter"].get_support().sum()
    assert 20 < kept < 128  # the filter removed the many near-duplicate features
    scores = pipe.score_samples(test)
    assert scores.shape == (len(test),) and np.all(np.isfinite(scores))
    joblib.dump(pipe, tmp_path / "gas.joblib")
    loaded = joblib.load(tmp_path / "gas.joblib")
    np.testing.assert_array_equal(loaded.score_samples(test), scores)


def test_gas_pipeline_on_dataframe_drops_by_name():
    pd = pytest.importorskip("pandas")
    bunch = load_gas_drift(shared_path("uci_gas_sensor_array_drift"), batches=[4], as_frame=True)
    frame = bunch.frame
    pipe = make_gas_pipeline(["gas", "concentration"], random_state=0, **FAST).fit(frame)
    assert "gas" not in pipe[:-1].get_feature_names_out()
    assert np.isfinite(pipe.score(frame))


def test_run_experiment_and_cli(tmp_path, capsys):
    shared_path("uci_gas_sensor_array_drift")
    out = tmp_path / "m.joblib"
    res = run_gas_experiment(output=out, print_fn=lambda *a: None, **FAST)
    assert "NOT the MAF paper" in res["data"]
    assert res["n_train"] + res["n_validation"] + res["n_test"] == 6697
    assert np.isfinite(res["maf_test_ll"]) and np.isfinite(res["gaussian_test_ll"])
    assert out.exists()
    code = main(["gas", "--max-iter", "1", "--n-flows", "1", "--quiet", "--output", str(tmp_path / "c.joblib")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Gaussian baseline" in printed and "test log-likelihood" in printed and "data:" in printed


def test_cli_reports_missing_file(tmp_path, capsys):
    assert main(["gas", "--data", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_cli_on_uci_format_file(tmp_path, capsys):
    from .test_datasets import _ethylene_text

    text, _ = _ethylene_text(600)
    path = tmp_path / "ethylene_CO.txt"
    path.write_text(text)
    code = main(["gas", "--data", str(path), "--max-iter", "1", "--n-flows", "1", "--quiet",
                 "--output", str(tmp_path / "e.joblib")])
    assert code == 0
    assert "UCI ethylene_CO.txt (600 rows)" in capsys.readouterr().out


def test_experiment_data_comes_from_the_fetch_gas_cache(tmp_path):
    from skflow.experiments import load_experiment_data

    (tmp_path / "gas").mkdir()
    np.save(tmp_path / "gas" / "ethylene_CO.npy", np.ones((50, 19), dtype=np.float32))
    X, drop, description, fraction = load_experiment_data(data_home=tmp_path)
    assert X.shape == (50, 19) and drop == [0, 1, 2] and fraction == 1.0
    assert "UCI ethylene_CO.txt (50 rows)" in description
