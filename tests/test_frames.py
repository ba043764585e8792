"""Frame-level audio features and the clip detector over frame densities."""

import io
import json

import joblib
import numpy as np
import pytest
from scipy.io import wavfile
from sklearn.base import clone
from sklearn.mixture import GaussianMixture

from skflow import MAFDensity
from skflow.audio import FrameFeatures, FrameOutlierDetector, aggregate_frames, stack_frames

from .conftest import shared_path

SR = 16000


def tone(freq, seconds=0.5, amp=0.5, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.RandomState(seed).normal(size=t.size)


def test_frames_of_clips_of_different_lengths_map_back_to_their_clip():
    clips = [tone(440, 1.0), tone(440, 0.3), tone(440, 0.5)]
    frames = FrameFeatures(top_db=None).fit_transform(clips)
    # 25 ms frames every 10 ms: 1 + (n - 400) // 160 frames
    assert [len(f) for f in frames] == [1 + (len(c) - 400) // 160 for c in clips]
    rows, clip = stack_frames(frames)
    assert rows.shape == (sum(len(f) for f in frames), 39)
    for k, f in enumerate(frames):
        np.testing.assert_array_equal(rows[clip == k], f)


def test_silent_frames_are_dropped():
    clip = np.r_[np.zeros(8000), tone(440, 0.5)] + 1e-5 * np.random.RandomState(0).normal(size=16000)
    kept = FrameFeatures(top_db=20).fit_transform([clip])[0]
    every = FrameFeatures(top_db=None).fit_transform([clip])[0]
    # about half the clip is silence
    assert 0.4 < len(kept) / len(every) < 0.6


def test_feature_layout_and_names():
    ff = FrameFeatures(n_mfcc=5, deltas=1, context=1, context_step=2).fit([])
    names = ff.get_feature_names_out()
    assert ff.n_features_out_ == len(names) == 5 * 2 * 3
    assert names[0] == "mfcc0@-2" and names[5] == "d_mfcc0@-2" and names[-1] == "d_mfcc4@+2"
    frames = ff.transform([tone(300)])[0]
    assert frames.shape[1] == 30
    # the centre block of a row is the frame itself; its left block is the frame two earlier
    centre, left = frames[:, 10:20], frames[:, 0:10]
    np.testing.assert_allclose(left[5], centre[3])
    mel = FrameFeatures(n_mfcc=None, deltas=0).fit_transform([tone(300)])[0]
    assert mel.shape[1] == 40


def test_deltas_are_regression_slopes():
    from skflow.audio.frames import _deltas

    c = np.arange(10.0)[:, None] * 3.0  # a line of slope 3
    np.testing.assert_allclose(_deltas(c)[2:-2], 3.0)


def test_aggregation_matches_a_hand_computation():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0, -5.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    clip = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    np.testing.assert_allclose(aggregate_frames(values, clip, 3, "mean"), [2.5, 2.5, 4.0])
    np.testing.assert_allclose(aggregate_frames(values, clip, 3, "median"), [2.5, 2.5, 4.0])
    # trimmed at 25 %: drops floor(0.25 n) lowest -> 1 of 4, 0 of 2, 2 of 9
    np.testing.assert_allclose(aggregate_frames(values, clip, 3, "trimmed", trim=0.25), [3.0, 2.5, 5.0])
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_frames(values, clip, 3, "max")


@pytest.fixture(scope="module")
def detector():
    clips = [tone(f, seed=i) for i, f in enumerate(np.linspace(400, 500, 12))]
    return FrameOutlierDetector(density=GaussianMixture(2, random_state=0), contamination=0.1,
                                random_state=0).fit(clips)


def test_detector_flags_other_sounds(detector):
    normal = [tone(430, seed=99), tone(470, seed=98)]
    strange = [tone(2000, seed=97), np.random.RandomState(0).normal(size=8000)]
    scores = detector.score_samples(normal + strange)
    assert scores[:2].min() > scores[2:].max()
    assert list(detector.predict(normal + strange)[2:]) == [-1, -1]
    np.testing.assert_allclose(detector.decision_function(normal), scores[:2] - detector.offset_)


def test_score_is_the_aggregate_of_the_frames(detector):
    clip = tone(450, seed=5)
    frames = detector.features_.transform([clip])[0]
    by_hand = detector.density_.score_samples(detector.scaler_.transform(frames)).mean()
    assert detector.score_samples([clip])[0] == pytest.approx(by_hand)


def test_sklearn_conventions(detector):
    params = detector.get_params()
    assert params["aggregate"] == "mean" and "density__n_components" in params
    again = clone(detector)
    assert not hasattr(again, "density_")
    buffer = io.BytesIO()
    joblib.dump(detector, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    clips = [tone(450, seed=7), tone(900, seed=8)]
    np.testing.assert_array_equal(loaded.score_samples(clips), detector.score_samples(clips))


def test_default_density_is_a_maf_validated_on_held_out_clips():
    clips = [tone(f, seed=i) for i, f in enumerate(np.linspace(400, 500, 10))]
    det = FrameOutlierDetector(density=MAFDensity(n_flows=1, hidden_layer_sizes=(48,), max_iter=2,
                                                  random_state=0)).fit(clips)
    assert np.isfinite(det.density_.best_validation_score_)
    assert isinstance(FrameOutlierDetector()._default_density(), MAFDensity)


def test_clear_errors(tmp_path):
    det = FrameOutlierDetector(density=GaussianMixture(1))
    with pytest.raises(ValueError, match="no clips"):
        det.fit([])
    with pytest.raises(ValueError, match="clip 1 has 100 samples, fewer than one frame"):
        det.fit([tone(440), np.zeros(100)])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file")
    with pytest.raises(ValueError, match="bad.wav"):
        det.fit([tone(440), str(bad)])
    with pytest.raises(FileNotFoundError):
        det.fit([tone(440), str(tmp_path / "missing.wav")])
    with pytest.raises(TypeError, match="single path"):
        det.fit(str(bad))
    with pytest.raises(ValueError, match="at least 2"):
        det.fit([tone(440)])


def test_reads_wav_paths(tmp_path):
    paths = []
    for i, f in enumerate((440, 450, 460)):
        path = tmp_path / f"{i}.wav"
        wavfile.write(path, 8000, (tone(f, seed=i)[::2] * 20000).astype(np.int16))  # 8 kHz: resampled
        paths.append(str(path))
    frames = FrameFeatures().fit_transform(paths)
    assert len(frames) == 3 and all(f.shape[1] == 39 for f in frames)


def test_cli_frames_on_real_clips(tmp_path, capsys):
    from skflow.cli import main

    data = shared_path("speech_commands_v0.01_sample")
    out_json = tmp_path / "aucs.json"
    code = main(["audio-outliers", "--data", str(data), "--target", "zero", "--features", "frames",
                 "--plot", str(tmp_path / "p.png"), "--json", str(out_json)])
    assert code == 0
    out = capsys.readouterr().out
    assert "GMM frames" in out and "held-out 'zero' ranks" in out
    result = json.loads(out_json.read_text())
    assert result["features"] == "frames" and {"MAF", "GMM frames", "LOF"} <= set(result["mean_auc"])
    assert all(0 <= row["MAF"] <= 1 for row in result["table"])


def test_grid_search_over_its_parameters():
    from sklearn.model_selection import GridSearchCV

    clips = [tone(f, seed=i) for i, f in enumerate(np.linspace(400, 500, 9))]

    def mean_score(est, X, y=None):  # held-out mean clip score: higher is a better fit
        return float(np.mean(est.score_samples(X)))

    search = GridSearchCV(FrameOutlierDetector(density=GaussianMixture(1, random_state=0), random_state=0),
                          {"aggregate": ["mean", "median"], "density__n_components": [1, 2]},
                          scoring=mean_score, cv=3).fit(clips)
    assert set(search.best_params_) == {"aggregate", "density__n_components"}
    assert search.best_estimator_.score_samples(clips[:2]).shape == (2,)


def test_calibration_clips_are_held_out_and_give_conformal_p_values():
    clips = [tone(f, seed=i) for i, f in enumerate(np.linspace(400, 500, 20))]
    det = FrameOutlierDetector(density=GaussianMixture(2, random_state=0), random_state=0).fit(clips)
    assert det.calibration_scores_.shape == (2,)  # 10 % of 20 clips
    n_frames = sum(len(f) for f in det.features_.transform(clips))
    assert det.n_frames_ < n_frames  # the calibration clips' frames are not in the fit
    held = sorted(det.score_samples(clips))
    assert all(np.isclose(held, c).any() for c in det.calibration_scores_)
    strange = [np.random.RandomState(0).normal(size=8000)]
    assert det.p_values(strange)[0] == pytest.approx(1 / 3)
    det.calibrate(clips[:9])
    p = det.p_values(clips[:9] + strange)
    np.testing.assert_allclose(p[-1], 0.1)
    assert sorted(p[:9]) == pytest.approx(np.arange(2, 11) / 10)  # the ranks of the calibration clips
    assert det.set_params(fdr=0.2).predict(strange)[0] == -1  # BH on one clip: p = 0.1 <= 0.2
    assert det.set_params(fdr=0.05).predict(strange)[0] == 1
    with pytest.raises(ValueError, match="p_values needs calibration scores"):
        FrameOutlierDetector(density=GaussianMixture(1), calibration_fraction=0).fit(clips).p_values(clips)


def test_frame_background_ratio_is_the_difference_of_frame_log_densities():
    clips = [tone(f, seed=i) for i, f in enumerate(np.linspace(400, 500, 12))]
    generic = [tone(f, seed=50 + i) for i, f in enumerate(np.linspace(200, 2000, 12))]
    det = FrameOutlierDetector(density=GaussianMixture(2, random_state=0), calibration_fraction=0,
                               random_state=0).fit(clips, X_background=generic)
    clip = tone(450, seed=5)
    scaled = det.scaler_.transform(det.features_.transform([clip])[0])
    by_hand = (det.density_.score_samples(scaled) - det.background_.score_samples(scaled)).mean()
    assert det.score_samples([clip])[0] == pytest.approx(by_hand)
    with pytest.raises(ValueError, match="background is not fitted"):
        FrameOutlierDetector(density=GaussianMixture(1), background=GaussianMixture(1)).fit(clips)
