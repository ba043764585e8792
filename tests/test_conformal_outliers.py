"""MAFOutlierDetector's conformal p-values and Benjamini-Hochberg predictions."""

import numpy as np
import pytest

from skflow import MAFOutlierDetector

PARAMS = dict(n_flows=1, hidden_layer_sizes=(16,), max_iter=5, random_state=0)


def _normal(n, seed):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, 3))
    return np.c_[x[:, 0], x[:, 1] + 0.5 * x[:, 0] ** 2, x[:, 2]]


def test_p_values_are_the_conformal_formula_and_control_false_alarms():
    det = MAFOutlierDetector(**PARAMS).fit(_normal(5000, 0))
    calibration = det.calibration_scores_
    assert calibration.shape == (500,) and np.all(np.diff(calibration) >= 0)
    X_new = _normal(20000, 1)
    p = det.p_values(X_new)
    scores = det.score_samples(X_new)
    manual = (1 + (calibration[None, :] <= scores[:, None]).sum(1)) / 501
    np.testing.assert_allclose(p, manual)
    # new normal rows: P(p <= alpha) about alpha (500 calibration rows: within a few points)
    for alpha in (0.01, 0.05, 0.2):
        assert np.mean(p <= alpha) <= alpha + 0.03
        assert np.mean(p <= alpha) >= alpha - 0.03
    # far rows get the smallest p-value there is
    assert det.p_values(np.array([[50.0, 50.0, 50.0]]))[0] == pytest.approx(1 / 501)


def test_benjamini_hochberg_keeps_the_false_discovery_rate():
    det = MAFOutlierDetector(**PARAMS, fdr=0.1).fit(_normal(5000, 0))
    rng = np.random.RandomState(2)
    normal = _normal(2000, 3)
    outliers = _normal(200, 4) + rng.choice([-6.0, 6.0], size=(200, 3))
    X = np.r_[normal, outliers]
    labels = det.predict(X)
    flagged = labels == -1
    assert flagged[2000:].mean() > 0.9  # power: most outliers found
    false_share = flagged[:2000].sum() / max(1, flagged.sum())
    assert false_share <= 0.15
    # on normal rows alone BH flags almost nothing (a false discovery there is an error)
    assert (det.predict(_normal(2000, 5)) == -1).mean() < 0.02
    # without fdr the threshold is offset_
    plain = det.set_params(fdr=None)
    np.testing.assert_array_equal(plain.predict(X), np.where(plain.decision_function(X) < 0, -1, 1))


def test_guarantee_holds_on_small_data_over_many_fits():
    # 66 rows: 6 calibration rows held out of everything, p-values on a grid of 1/7.  The
    # guarantee is over the draw of the calibration rows: P(p <= 1/7) = 1/7 for new normal
    # rows, averaged over fits (early-stopping rows as calibration gave far more).
    shares = []
    for seed in range(40):
        det = MAFOutlierDetector(**{**PARAMS, "random_state": seed}).fit(_normal(66, seed))
        assert det.calibration_scores_.shape == (6,)
        shares.append(np.mean(det.p_values(_normal(200, 1000 + seed)) <= 1 / 7 + 1e-9))
    assert abs(np.mean(shares) - 1 / 7) < 0.06


def test_calibrate_with_fresh_rows_and_no_calibration_without_held_out_rows():
    det = MAFOutlierDetector(**PARAMS, calibration_fraction=0).fit(_normal(500, 0))
    assert det.calibration_scores_ is None
    with pytest.raises(ValueError, match="needs calibration scores"):
        det.p_values(_normal(5, 1))
    fresh = _normal(300, 2)
    det.calibrate(fresh)
    np.testing.assert_array_equal(det.calibration_scores_, np.sort(det.score_samples(fresh)))
    assert det.p_values(fresh).max() == 1.0
