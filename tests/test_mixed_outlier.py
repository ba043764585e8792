"""MixedOutlierDetector: outliers of tables with categorical columns, with conformal p-values."""

import numpy as np
import pandas as pd
import pytest

from skflow import MixedDensity, MixedOutlierDetector
from skflow.estimators._conformal import benjamini_hochberg, calibration_rows
from skflow.io import load_model, save_model

FAST = {"n_flows": 2, "hidden_layer_sizes": (16,), "max_iter": 20}


def _table(n=500, seed=0):
    rng = np.random.RandomState(seed)
    colour = rng.choice(["red", "blue"], n, p=[0.6, 0.4])
    shape = np.where(colour == "red", rng.choice(["round", "square"], n, p=[0.97, 0.03]), "square")
    return pd.DataFrame({"colour": colour, "shape": shape,
                         "size": np.where(colour == "red", 2.0, 6.0) + rng.normal(0, 0.3, n)})


@pytest.fixture(scope="module")
def fitted():
    X = _table()
    return X, MixedOutlierDetector(flow_params=FAST, random_state=0).fit(X)


def test_flags_numbers_unusual_for_their_category_and_unusual_combinations(fitted):
    _, det = fitted
    new = pd.DataFrame({"colour": ["red", "blue", "red", "blue", "red"],
                        "shape": ["round", "square", "round", "round", "round"],
                        "size": [2.1, 5.8, 6.0, 6.0, 4.0]})
    assert det.predict(new).tolist() == [1, 1, -1, -1, -1]
    p = det.p_values(new)
    assert p[0] > 0.2 and p[1] > 0.2 and (p[2:] < 0.05).all()


def test_unseen_category_scores_minus_infinity_and_gets_the_smallest_p_value(fitted):
    _, det = fitted
    new = pd.DataFrame({"colour": ["violet", "red"], "shape": ["round", "round"], "size": [2.0, 2.0]})
    scores = det.score_samples(new)
    assert np.isneginf(scores[0]) and np.isfinite(scores[1])
    assert det.predict(new)[0] == -1
    assert det.p_values(new)[0] == pytest.approx(1 / (len(det.calibration_scores_) + 1))
    with pytest.raises(ValueError, match="not seen in fit"):  # the density itself keeps its error
        det.density_.score_samples(new)


def test_calibration_rows_are_held_out_of_the_density(fitted):
    X, det = fitted
    held = calibration_rows(len(X), None, 0.1, 0)
    assert len(det.calibration_scores_) == len(held) == 50
    np.testing.assert_allclose(det.calibration_scores_, np.sort(det.density_.score_samples(X.iloc[held])))
    rest = np.setdiff1d(np.arange(len(X)), held)
    alone = MixedDensity(flow_params=FAST, random_state=0).fit(X.iloc[rest])
    np.testing.assert_allclose(alone.score_samples(X), det.score_samples(X), rtol=1e-6)
    # "auto": 1 % of the calibration rows fall below the threshold
    assert det.offset_ == pytest.approx(np.percentile(det.calibration_scores_, 1))


def test_p_values_are_uniform_on_new_normal_rows_over_many_fits():
    # categorical columns only: no flow, so many fits are cheap; ties in the scores make p conservative
    rng = np.random.RandomState(0)
    p_new = []
    for seed in range(300):
        a = rng.choice(["x", "y", "z"], 61, p=[0.5, 0.3, 0.2])
        b = np.where(a == "x", rng.choice(["u", "v"], 61, p=[0.8, 0.2]), rng.choice(["u", "v"], 61, p=[0.3, 0.7]))
        frame = pd.DataFrame({"a": a, "b": b})
        det = MixedOutlierDetector(calibration_fraction=0.2, random_state=seed).fit(frame.iloc[:60])
        p_new.append(det.p_values(frame.iloc[60:])[0])
    p_new = np.array(p_new)
    for alpha in (0.1, 0.3, 0.5):
        assert np.mean(p_new <= alpha) <= alpha + 0.05


def test_contamination_share_of_the_training_rows_is_flagged():
    X = _table(400)
    det = MixedOutlierDetector(contamination=0.1, flow_params=FAST, random_state=0).fit(X)
    assert np.mean(det.predict(X) == -1) == pytest.approx(0.1, abs=0.01)


def test_fdr_predict_is_benjamini_hochberg_on_the_p_values(fitted):
    X, det = fitted
    new = pd.concat([_table(5, seed=1), pd.DataFrame({"colour": ["red"] * 5, "shape": ["round"] * 5,
                                                       "size": [6.0, 6.5, 7.0, -1.0, 5.5]})], ignore_index=True)
    det_fdr = MixedOutlierDetector(flow_params=FAST, fdr=0.1, random_state=0).fit(X)
    np.testing.assert_array_equal(det_fdr.predict(new), benjamini_hochberg(det_fdr.p_values(new), 0.1))
    assert (det_fdr.predict(new)[-5:] == -1).all()


def test_groups_hold_out_whole_groups():
    X = _table(300)
    groups = np.repeat(np.arange(30), 10)
    det = MixedOutlierDetector(flow_params=FAST, calibration_fraction=0.2, random_state=0).fit(X, groups=groups)
    held = calibration_rows(len(X), groups, 0.2, 0)
    assert len(det.calibration_scores_) == len(held) and len(held) % 10 == 0
    assert set(np.bincount(groups[held])) <= {0, 10}
    with pytest.raises(ValueError, match="groups has 3 entries, X has 300 rows"):
        MixedOutlierDetector(flow_params=FAST).fit(X, groups=[1, 2, 3])


def test_a_calibration_row_outside_the_model_leaves_the_threshold_finite():
    X = _table(200)
    held = calibration_rows(len(X), None, 0.1, 0)
    X.loc[held[0], "colour"] = "violet"  # a category only a calibration row has: it scores -inf
    det = MixedOutlierDetector(flow_params=FAST, random_state=0).fit(X)
    assert np.isneginf(det.calibration_scores_[0]) and np.isfinite(det.offset_)
    assert det.predict(X.iloc[held[:1]])[0] == -1 and (det.decision_function(X.iloc[held[1:]]) > -np.inf).all()


def test_numpy_input_and_no_calibration():
    rng = np.random.RandomState(0)
    X = np.c_[rng.normal(size=200), rng.poisson(3, 200)]
    det = MixedOutlierDetector(flow_params=FAST, calibration_fraction=0, random_state=0).fit(X)
    assert det.calibration_scores_ is None and not hasattr(det, "feature_names_in_")
    assert det.density_.grid_steps_ == {1: 1.0}  # counts in a float array: a continuous column on a grid
    with pytest.raises(ValueError, match="p_values needs calibration scores"):
        det.p_values(X)
    assert det.calibrate(X[:50]).p_values(X[:3]).shape == (3,)


def test_skops_round_trip(fitted, tmp_path):
    X, det = fitted
    path = tmp_path / "det.skops"
    save_model(det, path)
    again = load_model(path)
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    np.testing.assert_array_equal(again.p_values(X), det.p_values(X))
