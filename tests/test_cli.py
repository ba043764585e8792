"""The skflow command line: fit / score / sample / demo and its errors."""

import numpy as np
import pytest

from skflow.cli import main
from skflow.io import read_table


def _read_table(path):
    return read_table(path)[0]


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
    # Samples come back in the data's units (the model standardises inside).
    assert abs(drawn[:, 1].mean() - 500) < 60
    assert "saved to" in capsys.readouterr().err


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
    (["score", "{data}", "{data}"], "not a model saved with joblib (or a damaged file)"),
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
    assert main(["fit", str(bad), "-o", str(tmp_path / "m.skops")]) == 2
    err = capsys.readouterr().err
    assert "row 1, column 2: 'x' is not a number (1-based, rows counted after the header)" in err
    assert "skflow fit --mixed" in err


def test_mixed_table_fit_score_sample(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    colour = rng.choice(["red", "blue"], 400)
    frame = pd.DataFrame({"colour": colour, "size": np.where(colour == "red", 2.0, 6.0) * rng.lognormal(0, 0.2, 400),
                          "count": rng.poisson(3, 400),
                          "spend": np.where(rng.uniform(size=400) < 0.3, 0.0, rng.lognormal(0, 1, 400))})
    data, model, scores, samples = (tmp_path / n for n in ("t.csv", "m.skops", "s.csv", "x.csv"))
    frame.to_csv(data, index=False)
    assert main(["fit", str(data), "-o", str(model), "--mixed", "--max-iter", "5", "--n-flows", "2",
                 "--hidden", "16", "--quiet"]) == 0
    assert ("colour: categorical, size: continuous, count: integer, spend: continuous with a point mass at 0"
            in capsys.readouterr().err)
    assert main(["score", str(model), str(data), "-o", str(scores)]) == 0
    values = np.loadtxt(scores, skiprows=1)
    assert values.shape == (400,) and np.isfinite(values).all()
    assert main(["sample", str(model), "300", "-o", str(samples), "--random-state", "0"]) == 0
    drawn = pd.read_csv(samples)
    assert list(drawn.columns) == ["colour", "size", "count", "spend"] and set(drawn.colour) <= {"red", "blue"}
    assert (drawn["size"] > 0).all() and drawn["count"].dtype.kind == "i" and (drawn["count"] >= 0).all()
    assert (drawn["spend"] >= 0).all() and 0.15 < (drawn["spend"] == 0).mean() < 0.45
    assert main(["score", str(model), str(data), "--p-values"]) == 2
    assert "--p-values needs an outlier detector (skflow fit --mixed --outlier)" in capsys.readouterr().err
    assert main(["score", str(model), str(data), "--features"]) == 2
    assert "--features needs a model of numeric columns" in capsys.readouterr().err


def test_mixed_table_outliers_with_p_values(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    from skflow.io import load_model

    rng = np.random.RandomState(0)
    colour = rng.choice(["red", "blue"], 400)
    frame = pd.DataFrame({"colour": colour, "size": np.where(colour == "red", 2.0, 6.0) * rng.lognormal(0, 0.1, 400)})
    data, new, model, scores = (tmp_path / n for n in ("t.csv", "new.csv", "o.skops", "s.csv"))
    frame.to_csv(data, index=False)
    # a usual row, a red row of a blue size, a colour never seen
    pd.DataFrame({"colour": ["red", "red", "green"], "size": [2.0, 6.0, 2.0]}).to_csv(new, index=False)
    assert main(["fit", str(data), "-o", str(model), "--mixed", "--outlier", "--max-iter", "5", "--n-flows", "2",
                 "--hidden", "16", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "fitted MixedOutlierDetector on 400 rows (colour: categorical, size: continuous)" in err
    assert "40 rows held out for p-values" in err
    assert main(["score", str(model), str(new), "-o", str(scores), "--p-values"]) == 0
    table = pd.read_csv(scores)
    assert list(table.columns) == ["log_density", "p_value"]
    assert table.p_value[0] > 0.1 and table.p_value[1] == table.p_value[2] == pytest.approx(1 / 41)
    assert np.isneginf(table.log_density[2])
    np.testing.assert_allclose(table.log_density[:2], load_model(model).score_samples(pd.read_csv(new))[:2], rtol=1e-6)
    assert main(["fit", str(data), "-o", str(tmp_path / "b.skops"), "--mixed", "--outlier",
                 "--background", str(data)]) == 2
    assert "--background takes numeric tables only" in capsys.readouterr().err


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


def test_demo_runs_quietly_by_default(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "epoch" not in out
    assert "MAFDensity(5)" in out and "GaussianMixture(10)" in out
    assert out.count("nats per row above GaussianMixture(10)") + out.count("nats per row below") == 3
    assert "MAFDensity(5, spline)" in out and "MAFDensity(5, affine_spline)" in out


def test_batch_size_option():
    from skflow.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["fit", "x.csv"]).batch_size == "auto"
    assert parser.parse_args(["fit", "x.csv", "--batch-size", "512"]).batch_size == 512
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["fit", "x.csv", "--batch-size", bad])


def _fit(tmp_path, table, name="m.skops", *extra):
    path, _ = table
    model = tmp_path / name
    assert main(["fit", str(path), "-o", str(model), "--max-iter", "3", "--n-flows", "1",
                 "--hidden", "8", "--quiet", *extra]) == 0
    return model


def test_fit_takes_a_layer_type(tmp_path, table):
    from skflow.io import load_model

    model = load_model(_fit(tmp_path, table, "s.skops", "--layer-type", "affine_spline"))
    assert model.layer_type == "affine_spline"


def test_fit_takes_a_time_budget_and_a_schedule(tmp_path, table, capsys):
    from skflow.io import load_model

    model = load_model(_fit(tmp_path, table, "t.skops", "--max-time", "1e-9", "--schedule", "cosine"))
    assert (model.max_time, model.learning_rate, model.n_iter_) == (1e-9, "cosine", 1)
    with pytest.raises(SystemExit) as exc:
        main(["fit", "x.csv", "--max-time", "0"])
    assert exc.value.code == 2 and "--max-time: must be a positive number" in capsys.readouterr().err


def test_score_and_sample_write_to_stdout_without_output(tmp_path, table, capsys):
    model = _fit(tmp_path, table)
    capsys.readouterr()
    path, _ = table
    assert main(["score", str(model), str(path)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "log_density" and len(lines) == 601
    assert "scored 600 rows" in captured.err
    assert main(["sample", str(model), "5", "--random-state", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "a,b" and len(out) == 6  # the training table's column names
    assert not (tmp_path / "scores.csv").exists() and not (tmp_path / "samples.csv").exists()


def test_outputs_are_not_overwritten_silently(tmp_path, table, capsys):
    model = _fit(tmp_path, table)
    path, _ = table
    out = tmp_path / "s.csv"
    out.write_text("keep me")
    assert main(["score", str(model), str(path), "-o", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["score", str(model), str(path), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("log_density")
    assert main(["fit", str(path), "-o", str(model)]) == 2  # the model too


def test_version(capsys):
    from skflow import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"skflow {__version__}"


def test_empty_cell_message(tmp_path, capsys):
    bad = tmp_path / "gap.csv"
    bad.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,\n")
    assert main(["fit", str(bad), "-o", str(tmp_path / "m.skops")]) == 2
    err = capsys.readouterr().err
    assert "row 3, column 3: an empty cell (missing value)" in err and "could not convert" not in err


def test_fit_reports_where_it_stopped(tmp_path, table, capsys):
    path, _ = table
    assert main(["fit", str(path), "-o", str(tmp_path / "m.skops"), "--n-flows", "1", "--hidden", "8",
                 "--max-iter", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "reached max_iter=2 epochs" in captured.err and captured.out == ""
    assert main(["fit", str(path), "-o", str(tmp_path / "g.skops"), "--n-flows", "1", "--hidden", "8",
                 "--max-iter", "1", "--quiet", "--init", "gaussian"]) == 0


def test_skops_model_is_the_default_and_safe(tmp_path, table, monkeypatch):
    skops_io = pytest.importorskip("skops.io")
    monkeypatch.chdir(tmp_path)
    path, _ = table
    assert main(["fit", str(path), "--max-iter", "2", "--n-flows", "1", "--hidden", "8", "--quiet"]) == 0
    model = tmp_path / "model.skops"
    assert model.exists()
    assert skops_io.get_untrusted_types(file=model) == ["skflow.estimators.density.MAFDensity"]


# ------------------------------------------------------- Unix conventions
def test_score_is_in_the_data_units(tmp_path, table):
    from skflow.io import load_model

    path, X = table
    model = load_model(_fit(tmp_path, table))
    scores = tmp_path / "s.csv"
    assert main(["score", str(tmp_path / "m.skops"), str(path), "-o", str(scores)]) == 0
    pd = pytest.importorskip("pandas")
    expected = model.score_samples(pd.DataFrame(X, columns=["a", "b"]))
    np.testing.assert_allclose(np.loadtxt(scores, skiprows=1), expected, rtol=1e-6)


def test_an_older_pipeline_model_scores_with_its_scaler_jacobian(tmp_path, table, capsys):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skflow import MAFDensity
    from skflow.io import save_model

    path, X = table
    pipe = make_pipeline(StandardScaler(), MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2,
                                                      random_state=0)).fit(X)
    save_model(pipe, tmp_path / "p.joblib")
    assert main(["score", str(tmp_path / "p.joblib"), str(path), "-o", str(tmp_path / "s.csv")]) == 0
    expected = pipe.score_samples(X) - np.log(pipe[0].scale_).sum()
    np.testing.assert_allclose(np.loadtxt(tmp_path / "s.csv", skiprows=1), expected, rtol=1e-6)


def test_a_closed_pipe_ends_quietly(tmp_path, table):
    import subprocess
    import sys

    model = _fit(tmp_path, table)
    path, _ = table
    big = tmp_path / "big.npy"
    np.save(big, np.tile(table[1], (200, 1)))  # 120,000 rows: more than a pipe holds
    for command in (["score", str(model), str(big)], ["sample", str(model), "200000"]):
        pipeline = subprocess.run(f"{sys.executable} -m skflow.cli {' '.join(command)} | head -n 2",
                                  shell=True, capture_output=True, text=True, timeout=300)
        assert len(pipeline.stdout.splitlines()) == 2
        assert "Broken pipe" not in pipeline.stderr and "Traceback" not in pipeline.stderr, pipeline.stderr


def test_hidden_sizes_do_not_swallow_the_table(tmp_path, table):
    from skflow.cli import build_parser

    args = build_parser().parse_args(["fit", "--hidden", "16,16", "train.csv"])
    assert args.hidden == (16, 16) and args.data == "train.csv"
    for bad in ("16 16", "0", "a,b"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["fit", "--hidden", bad, "train.csv"])


@pytest.mark.parametrize("n", ["0", "-5", "x"])
def test_sample_counts_have_one_rule(tmp_path, table, capsys, n):
    model = _fit(tmp_path, table)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["sample", str(model), n])
    assert f"must be a positive integer, got '{n}'" in capsys.readouterr().err


def test_standard_input_and_headerless_tables(tmp_path, table, monkeypatch, capsys):
    import io
    import warnings

    path, X = table
    model = _fit(tmp_path, table)
    capsys.readouterr()
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, X[:10], delimiter=",")  # no header: scored by column position
    monkeypatch.setattr("sys.stdin", io.StringIO(plain.read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning
        assert main(["score", str(model), "-"]) == 0
        np.save(tmp_path / "d.npy", X[:10])
        assert main(["score", str(model), str(tmp_path / "d.npy"), "-o", str(tmp_path / "n.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "log_density" and len(lines) == 11
    np.testing.assert_allclose(np.loadtxt(tmp_path / "n.csv", skiprows=1), np.asarray(lines[1:], float),
                               rtol=1e-6)


def test_fit_says_when_the_gaussian_start_was_kept(tmp_path, capsys):
    gaussian = tmp_path / "g.csv"
    np.savetxt(gaussian, np.random.RandomState(0).normal(size=(300, 2)), delimiter=",")
    assert main(["fit", str(gaussian), "-o", str(tmp_path / "g.skops"), "--n-flows", "1", "--hidden", "8",
                 "--max-iter", "3", "--quiet"]) == 0
    assert "so the Gaussian start was kept" in capsys.readouterr().err

