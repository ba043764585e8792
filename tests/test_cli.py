"""The skflow command line: fit / score / sample / demo and its errors."""

import numpy as np
import pytest

from skflow.cli import _read_table, main


@pytest.fixture
def table(tmp_path):
    X = np.random.RandomState(0).multivariate_normal([0, 5], [[1, 0.9], [0.9, 1]], size=600) * [1, 100]
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",", header="a,b", comments="")
    return path, X


def test_fit_score_sample_round_trip(tmp_path, table, capsys):
    path, X = table
    model = tmp_path / "m.joblib"
    assert main(["fit", str(path), "-o", str(model), "--max-iter", "5", "--n-flows", "2",
                 "--hidden", "16", "--quiet"]) == 0
    assert model.exists()
    scores = tmp_path / "s.csv"
    assert main(["score", str(model), str(path), "-o", str(scores)]) == 0
    values = np.loadtxt(scores, skiprows=1)
    assert values.shape == (600,) and np.all(np.isfinite(values))
    samples = tmp_path / "x.csv"
    assert main(["sample", str(model), "300", "-o", str(samples), "--random-state", "0"]) == 0
    drawn = np.loadtxt(samples, delimiter=",", skiprows=1)
    assert drawn.shape == (300, 2)
    # Samples come back in the data's units (through the StandardScaler).
    assert abs(drawn[:, 1].mean() - 500) < 60
    assert "saved to" in capsys.readouterr().out


def test_read_table_formats(tmp_path, table):
    path, X = table
    np.testing.assert_allclose(_read_table(path), X)
    np.save(tmp_path / "d.npy", X)
    np.testing.assert_allclose(_read_table(tmp_path / "d.npy"), X)
    plain = tmp_path / "plain.txt"
    np.savetxt(plain, X)
    np.testing.assert_allclose(_read_table(plain), X)
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pd.DataFrame(X).to_parquet(tmp_path / "d.parquet")
    np.testing.assert_allclose(_read_table(tmp_path / "d.parquet"), X)


@pytest.mark.parametrize("argv, message", [
    (["score", "{tmp}/missing.joblib", "{data}"], "no such model file"),
    (["score", "{data}", "{data}"], "not a model saved with joblib"),
    (["fit", "{tmp}/missing.csv"], "no such file"),
])
def test_errors_exit_2_with_message(tmp_path, table, capsys, argv, message):
    path, _ = table
    argv = [a.format(tmp=tmp_path, data=path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_non_numeric_table_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    assert main(["fit", str(bad)]) == 2
    assert "not a numeric table" in capsys.readouterr().err


def test_wrong_model_type(tmp_path, capsys, table):
    import joblib

    path, _ = table
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    assert main(["score", str(tmp_path / "dict.joblib"), str(path)]) == 2
    assert "not a density model" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys):
    for cmd in ["fit", "score", "sample", "gas", "audio-outliers", "demo"]:
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_plot_training_history(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skflow import MAFDensity
    from skflow.plotting import plot_training_history

    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=4, random_state=0).fit(
        np.random.RandomState(0).normal(size=(200, 2)))
    ax = plot_training_history(est)
    assert len(ax.lines) == 3
    ax.figure.savefig(tmp_path / "h.png")


def test_demo_runs(capsys):
    assert main(["demo", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "MAFDensity(5)" in out and "GaussianMixture(10)" in out


def test_batch_size_option():
    from skflow.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["fit", "x.csv"]).batch_size == "auto"
    assert parser.parse_args(["fit", "x.csv", "--batch-size", "512"]).batch_size == 512
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["fit", "x.csv", "--batch-size", bad])
