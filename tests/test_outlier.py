"""MAFOutlierDetector follows scikit-learn's outlier contract exactly."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skflow import MAFOutlierDetector

FAST = dict(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=10, random_state=0)


@pytest.fixture(scope="module")
def toy():
    rng = np.random.RandomState(0)
    inliers = rng.normal(size=(1000, 2))
    outliers = rng.uniform(6, 9, size=(50, 2)) * rng.choice([-1, 1], size=(50, 2))
    return inliers, outliers


def test_offset_is_training_percentile_and_predict_matches(toy):
    X, _ = toy
    det = MAFOutlierDetector(contamination=0.1, **FAST).fit(X)
    scores = det.score_samples(X)
    assert det.offset_ == pytest.approx(np.percentile(scores, 10))
    np.testing.assert_allclose(det.decision_function(X), scores - det.offset_)
    labels = det.predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, np.where(scores - det.offset_ < 0, -1, 1))
    assert np.mean(labels == -1) == pytest.approx(0.1, abs=0.002)


@pytest.mark.parametrize("contamination", [1e-9, 0.5])
def test_contamination_extremes(toy, contamination):
    X, _ = toy
    det = MAFOutlierDetector(contamination=contamination, **FAST).fit(X)
    share = np.mean(det.predict(X) == -1)
    assert share == pytest.approx(contamination, abs=0.002)


def test_invalid_contamination_is_named(toy):
    X, _ = toy
    for bad in (0.0, 0.6, "often"):
        with pytest.raises(ValueError, match="contamination"):
            MAFOutlierDetector(contamination=bad).fit(X)


def test_auto_uses_held_out_rows(toy):
    X, outliers = toy
    det = MAFOutlierDetector(**FAST).fit(X)
    assert det.contamination == "auto"
    # ~1% of new normal rows flagged; real outliers all flagged.
    new = np.random.RandomState(5).normal(size=(5000, 2))
    assert np.mean(det.predict(new) == -1) < 0.04
    assert np.all(det.predict(outliers) == -1)
    assert det.offset_ == pytest.approx(np.percentile(det.calibration_scores_, 1))
    no_es = MAFOutlierDetector(early_stopping=False, calibration_fraction=0, **FAST).fit(X)
    assert no_es.offset_ == pytest.approx(np.percentile(no_es.score_samples(X), 1))


def test_fit_predict_equals_fit_then_predict(toy):
    X, _ = toy
    a = MAFOutlierDetector(contamination=0.05, **FAST).fit_predict(X)
    b = MAFOutlierDetector(contamination=0.05, **FAST).fit(X).predict(X)
    np.testing.assert_array_equal(a, b)


def test_separates_outliers(toy):
    from sklearn.metrics import roc_auc_score

    X, outliers = toy
    det = MAFOutlierDetector(contamination=0.01, **FAST).fit(X)
    test = np.vstack([X[:200], outliers])
    y = np.r_[np.ones(200), np.zeros(len(outliers))]
    assert roc_auc_score(y, det.score_samples(test)) > 0.99


def test_shares_flow_parameters_with_density():
    from skflow import MAFDensity

    det_params = set(MAFOutlierDetector().get_params())
    assert det_params - set(MAFDensity().get_params()) == {"contamination", "fdr", "background", "calibration_fraction"}


@parametrize_with_checks(
    [MAFOutlierDetector(n_flows=2, hidden_layer_sizes=(8,), max_iter=3, batch_size=64, random_state=0)]
)
def test_sklearn_compatible_outlier_detector(estimator, check):
    check(estimator)
