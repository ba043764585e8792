"""Likelihood-ratio scoring against a background density, and GaussianDensity."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV

from skflow import GaussianDensity, MAFDensity, MAFOutlierDetector

from .conftest import shared_path

PARAMS = dict(n_flows=1, hidden_layer_sizes=(16,), max_iter=5, random_state=0)


def _data(seed=0):
    rng = np.random.RandomState(seed)
    target = rng.normal(size=(600, 3)) * [1.0, 0.5, 2.0] + [1.0, 0.0, -1.0]
    background = rng.normal(size=(3000, 3)) * 3.0
    return target, background


def test_gaussian_density_is_the_closed_form_gaussian_in_data_units():
    X = np.random.RandomState(0).multivariate_normal([1.0, -2.0, 0.0], [[4, 1, 0], [1, 2, 0.5], [0, 0.5, 1]], 400)
    g = GaussianDensity(random_state=0).fit(X)
    Y = X[:50] + 0.3
    np.testing.assert_allclose(g.score_samples(Y), multivariate_normal(g.mean_, g.covariance_).logpdf(Y), rtol=1e-10)
    np.testing.assert_allclose(g.mean_, X.mean(0))
    # in the data's units: rescaling the data shifts every log-density by -d log c
    scaled = GaussianDensity(random_state=0).fit(10 * X)
    assert scaled.shrinkage_ == g.shrinkage_
    np.testing.assert_allclose(scaled.score_samples(10 * Y), g.score_samples(Y) - 3 * np.log(10), rtol=1e-8)
    draws = g.sample(20000, random_state=0)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), g.covariance_, atol=0.15)
    assert g.score(Y) == pytest.approx(g.score_samples(Y).sum())


def test_gaussian_density_shrinks_when_rows_are_few():
    rng = np.random.RandomState(0)
    few = GaussianDensity(random_state=0).fit(rng.normal(size=(12, 10)))  # 12 rows, 10 independent columns
    many = GaussianDensity(random_state=0).fit(rng.normal(size=(5000, 10)) @ np.triu(np.ones((10, 10))))
    assert few.shrinkage_ >= 0.2 and many.shrinkage_ <= 0.01


def test_ratio_is_the_difference_of_the_two_models_scores():
    target, background = _data()
    det = MAFOutlierDetector(**PARAMS).fit(target, X_background=background)
    alone = MAFOutlierDetector(**PARAMS).fit(target)
    assert isinstance(det.background_, GaussianDensity)
    X = np.r_[target[:20], background[:20]]
    expected = alone.score_samples(X) - det.background_.score_samples(X)
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-10)
    # threshold and p-values are on the ratio's scale: calibration rows are scored the same way
    assert det.offset_ != alone.offset_
    np.testing.assert_allclose(det.decision_function(X), expected - det.offset_)
    assert np.all(np.diff(det.calibration_scores_) >= 0)
    p = det.p_values(target[:200])  # training rows: mostly large p-values
    assert 0 < p.min() and p.max() <= 1


def test_ratio_discounts_what_makes_any_row_likely():
    # Normal rows sit on a ring; both the outliers and the background pile up at the centre,
    # where the target flow (a broad Gaussian start) also gives a high density.
    rng = np.random.RandomState(1)
    angle = rng.uniform(0, 2 * np.pi, 800)
    ring = np.c_[np.cos(angle), np.sin(angle)] * 3 + rng.normal(scale=0.3, size=(800, 2))
    centre = rng.normal(scale=0.4, size=(200, 2))
    generic = np.r_[rng.normal(scale=0.4, size=(2000, 2)), rng.normal(scale=3.0, size=(2000, 2))]
    det = MAFOutlierDetector(**{**PARAMS, "max_iter": 1}, init="gaussian")
    plain = clone(det).fit(ring[:600])
    ratio = clone(det).set_params(background=GaussianMixture(2, random_state=0)).fit(ring[:600], X_background=generic)

    def auc(model):
        normal, odd = model.score_samples(ring[600:]), model.score_samples(centre)
        return np.mean(normal[:, None] > odd[None, :])

    assert auc(plain) < 0.5 < 0.9 < auc(ratio)


def test_fitted_background_is_used_as_given():
    target, background = _data()
    bg = GaussianMixture(3, random_state=0).fit(background)
    det = MAFOutlierDetector(**PARAMS, background=bg).fit(target)
    assert det.background_ is bg
    np.testing.assert_allclose(det.score_samples(target[:5]),
                               MAFOutlierDetector(**PARAMS).fit(target).score_samples(target[:5])
                               - bg.score_samples(target[:5]))
    # an unfitted background needs rows
    with pytest.raises(ValueError, match="background is not fitted"):
        MAFOutlierDetector(**PARAMS, background=GaussianMixture(2)).fit(target)
    with pytest.raises(ValueError, match="background scores 2 columns, X has 3"):
        MAFOutlierDetector(**PARAMS, background=GaussianMixture(1).fit(background[:, :2])).fit(target)
    with pytest.raises(ValueError, match="background scores 2 columns, X has 3"):
        MAFOutlierDetector(**PARAMS).fit(target, X_background=background[:, :2])


def test_background_in_a_grid_search_and_on_disk():
    target, background = _data()
    frozen = FrozenEstimator(GaussianDensity(random_state=0).fit(background))
    search = GridSearchCV(MAFOutlierDetector(**PARAMS, background=frozen, contamination=0.1),
                          {"n_flows": [1, 2]}, cv=2,
                          scoring=lambda est, X, y=None: float(np.mean(est.score_samples(X)))).fit(target)
    assert search.best_estimator_.background_ is not None
    det = MAFOutlierDetector(**PARAMS).fit(target, X_background=background)
    buffer = io.BytesIO()
    joblib.dump(det, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).score_samples(target[:9]), det.score_samples(target[:9]))


def test_background_model_may_be_a_flow():
    target, background = _data()
    bg = MAFDensity(**PARAMS)
    det = MAFOutlierDetector(**PARAMS, background=bg).fit(target, X_background=background)
    assert isinstance(det.background_, MAFDensity) and det.background_ is not bg
    assert not hasattr(bg, "flow_")  # the parameter is cloned, never fitted in place


def test_cli_fits_a_ratio_detector_and_writes_p_values(tmp_path, capsys):
    from skflow.cli import main
    from skflow.io import load_model

    target, background = _data()
    paths = {}
    for name, rows in (("t", target), ("b", background), ("new", np.r_[target[:5], [[20.0, 20.0, 20.0]]])):
        paths[name] = tmp_path / f"{name}.csv"
        np.savetxt(paths[name], rows, delimiter=",", header="a,b,c", comments="")
    model = tmp_path / "m.skops"
    assert main(["fit", str(paths["t"]), "--outlier", "--background", str(paths["b"]), "-o", str(model),
                 "--n-flows", "1", "--hidden", "8", "--max-iter", "2", "--quiet"]) == 0
    assert "(log-likelihood ratio)" in capsys.readouterr().err
    out = tmp_path / "s.csv"
    assert main(["score", str(model), str(paths["new"]), "--p-values", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "log_likelihood_ratio,p_value"
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    det = load_model(model)
    rows = np.loadtxt(paths["new"], delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 1], det.p_values(pd.DataFrame(rows, columns=["a", "b", "c"])))
    assert table[-1, 1] == table[:, 1].min()
    assert main(["fit", str(paths["t"]), "--background", str(paths["b"]), "-o", str(tmp_path / "x.skops")]) != 0
    assert "--background needs --outlier" in capsys.readouterr().err
    density = tmp_path / "d.skops"
    assert main(["fit", str(paths["t"]), "-o", str(density), "--n-flows", "1", "--max-iter", "1", "--quiet"]) == 0
    assert main(["score", str(density), str(paths["new"]), "--p-values"]) != 0
    assert "--p-values needs an outlier detector" in capsys.readouterr().err


def test_spoken_word_experiment_with_a_background(tmp_path):
    from skflow.datasets import load_speech_commands, speaker_split
    from skflow.experiments import run_audio_outliers

    lines = []
    result = run_audio_outliers(shared_path("speech_commands_v0.01_sample"), "zero", background=True,
                                print_fn=lines.append)
    assert "MAF + background" in result["mean_auc"] and result["background"]
    # the background is the training speakers' clips of every other word: none of the target's
    index = load_speech_commands(shared_path("speech_commands_v0.01_sample"))
    train_all, _ = speaker_split(index.speaker, 0.3, 0)
    others = int(np.sum(index.word[train_all] != "zero"))
    assert others < len(train_all) and result["n_background"] == others
    assert any(f"background: {others} clips of the other words' training speakers" in line for line in lines)
    # only held-out speakers' clips are scored: every word's count is below its 10 clips
    assert all(row["n"] < 10 for row in result["table"])
