"""feature_log_densities: each feature's conditional log-density given the others."""

import numpy as np
import pytest

from skflow import MAFDensity, MAFOutlierDetector


def _gaussian_model(X):
    # one epoch at a negligible rate, no validation split, no mixture: exactly the shrunk Gaussian
    return MAFDensity(init="gaussian", n_flows=1, hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-12,
                      early_stopping=False, dtype="float64", gaussian_weight=0.0, random_state=0).fit(X)


def test_gaussian_conditionals_in_closed_form():
    rng = np.random.RandomState(0)
    A = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.8]])
    X = rng.normal(size=(2000, 3)) @ A.T * [1.0, 10.0, 0.1] + [0.0, 5.0, -1.0]
    est = _gaussian_model(X)
    shrinkage = est.covariance_shrinkage_
    Z = (X - X.mean(0)) / X.std(0)
    cov = np.cov(Z.T, bias=True)
    cov = (1 - shrinkage) * cov + (shrinkage * cov.diagonal().mean() + 1e-6 * cov.diagonal().mean() + 1e-12) * np.eye(3)
    precision = np.linalg.inv(cov)
    rows = X[:50]
    z = (rows - X.mean(0)) / X.std(0)
    expected = np.empty((50, 3))
    for j in range(3):
        var = 1 / precision[j, j]
        mean = -var * (np.delete(precision[j], j) @ np.delete(z - Z.mean(0), j, axis=1).T) + Z.mean(0)[j]
        expected[:, j] = -0.5 * np.log(2 * np.pi * var) - 0.5 * (z[:, j] - mean) ** 2 / var - np.log(X.std(0)[j])
    np.testing.assert_allclose(est.feature_log_densities(rows), expected, atol=1e-6)


def test_the_feature_that_breaks_the_pattern_has_the_lowest_conditional():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(3000, 1))
    X = np.c_[x, 2 * x + 0.1 * rng.normal(size=(3000, 1)), rng.normal(size=(3000, 1))]
    det = MAFOutlierDetector(n_flows=2, hidden_layer_sizes=(16,), max_iter=20, random_state=0).fit(X)
    row = np.array([[1.0, -2.0, 0.0]])  # feature 1 contradicts feature 0
    attributions = det.feature_log_densities(row)
    assert attributions.shape == (1, 3) and attributions[0].argmin() in (0, 1)
    assert attributions[0, 2] > attributions[0, :2].max() + 5
    with pytest.raises(ValueError, match="n_grid"):
        det.feature_log_densities(row, n_grid=1)


def test_cli_writes_the_feature_columns(tmp_path, capsys):
    from skflow.cli import main

    X = np.random.RandomState(0).normal(size=(300, 2))
    data = tmp_path / "x.csv"
    np.savetxt(data, X, delimiter=",", header="a,b", comments="")
    model = tmp_path / "m.skops"
    assert main(["fit", str(data), "-o", str(model), "--n-flows", "1", "--hidden", "8", "--max-iter", "2",
                 "--quiet"]) == 0
    out = tmp_path / "s.csv"
    assert main(["score", str(model), str(data), "--features", "-o", str(out)]) == 0
    header = out.read_text().splitlines()[0]
    assert header == "log_density,log_density_given_rest:a,log_density_given_rest:b"
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    from skflow.io import load_model

    est = load_model(model)
    np.testing.assert_allclose(table[:, 1:], est.feature_log_densities(X), rtol=1e-6)


def test_plot_helper():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skflow.plotting import plot_feature_log_densities

    X = np.random.RandomState(0).normal(size=(200, 3))
    det = MAFOutlierDetector(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    ax = plot_feature_log_densities(det, [0.0, 4.0, 0.0], feature_names=["p", "q", "r"])
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "q"  # the surprising one first
    with pytest.raises(ValueError, match="feature_names"):
        plot_feature_log_densities(det, [0.0, 4.0, 0.0], feature_names=["p"])
