"""Audio features on synthetic tones, wav reading, the folder reader, the experiment."""

import numpy as np
import pytest
from scipy.io import wavfile

from skflow.audio import MelFeatures, SpectrumFeatures, fix_length, read_wav, resample
from skflow.datasets import load_speech_commands, speaker_split

from .conftest import shared_path

SR = 16000


def tone(freq, seconds=1.0, rate=SR, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq", [1000, 2500, 440])
def test_spectrum_peaks_in_the_right_bin(freq):
    feats = SpectrumFeatures().fit_transform(tone(freq)[None])
    assert feats.shape == (1, 257)
    assert np.argmax(feats[0]) == round(freq / (SR / 512))


def test_spectrum_names_and_linear_option():
    sf = SpectrumFeatures(log=False).fit(None)
    assert sf.get_feature_names_out()[32] == "spec_1000Hz"
    lin = sf.transform(tone(1000)[None])
    assert np.all(lin >= 0)


def test_fix_length_pads_and_trims():
    assert fix_length(np.ones(10), 16).tolist() == [1.0] * 10 + [0.0] * 6
    assert fix_length(np.arange(20.0), 5).tolist() == [0, 1, 2, 3, 4]


def test_short_and_long_clips_give_fixed_shapes():
    clips = [tone(1000, 0.5), tone(1000, 1.7), tone(1000, 1.0)]
    assert SpectrumFeatures().fit_transform(clips).shape == (3, 257)
    assert MelFeatures().fit_transform(clips).shape == (3, 36)


def test_resampling_8k_file(tmp_path):
    path = tmp_path / "tone8k.wav"
    wavfile.write(path, 8000, (tone(1000, 1.0, 8000) * 32767).astype(np.int16))
    x = read_wav(path)
    assert x.shape == (16000,) and x.dtype == np.float32
    assert np.argmax(SpectrumFeatures().fit_transform([path])[0]) == 32
    assert resample(np.ones(441), 44100, 16000).shape == (160,)


@pytest.mark.parametrize("dtype, scale", [(np.int16, 32767), (np.int32, 2**31 - 1), (np.float32, 1.0)])
def test_read_wav_sample_formats(tmp_path, dtype, scale):
    path = tmp_path / "x.wav"
    wavfile.write(path, SR, (tone(300) * scale).astype(dtype))
    np.testing.assert_allclose(read_wav(path), tone(300), atol=1e-3)


def test_read_wav_stereo_is_averaged(tmp_path):
    path = tmp_path / "st.wav"
    stereo = np.stack([tone(300), np.zeros(SR, np.float32)], axis=1)
    wavfile.write(path, SR, stereo)
    np.testing.assert_allclose(read_wav(path), tone(300) / 2, atol=1e-6)


def test_unreadable_and_non_pcm_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all")
    with pytest.raises(ValueError, match="junk.wav.*PCM"):
        read_wav(junk)
    # A RIFF header announcing IMA-ADPCM (format code 0x11), which scipy cannot decode.
    adpcm = tmp_path / "adpcm.wav"
    fmt = (b"fmt " + (20).to_bytes(4, "little") + (0x11).to_bytes(2, "little") + (1).to_bytes(2, "little")
           + SR.to_bytes(4, "little") + (8000).to_bytes(4, "little") + (256).to_bytes(2, "little")
           + (4).to_bytes(2, "little") + (2).to_bytes(2, "little") + (505).to_bytes(2, "little"))
    data = b"data" + (256).to_bytes(4, "little") + bytes(256)
    body = b"WAVE" + fmt + data
    adpcm.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    with pytest.raises(ValueError, match="adpcm.wav.*PCM"):
        read_wav(adpcm)
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "missing.wav")


def test_bad_waveform_inputs():
    with pytest.raises(ValueError, match="NaN"):
        SpectrumFeatures().fit_transform([np.full(100, np.nan)])
    with pytest.raises(ValueError, match="2-D"):
        SpectrumFeatures().fit_transform(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="single path"):
        SpectrumFeatures().fit_transform("a.wav")
    with pytest.raises(ValueError, match="no clips"):
        SpectrumFeatures().fit_transform([])


def test_mel_features_tell_speechlike_bursts_from_noise():
    rng = np.random.RandomState(0)
    noise = rng.normal(size=SR).astype(np.float32) * 0.001
    burst = noise.copy()
    burst[6000:10000] += tone(700, 0.25)
    f = MelFeatures().fit(None)
    names = list(f.get_feature_names_out())
    a, b = f.transform([noise, burst])
    assert b[names.index("dynamic_range_db")] > a[names.index("dynamic_range_db")] + 10
    assert b[names.index("voiced_seconds")] < a[names.index("voiced_seconds")]


# -------------------------------------------------------------- folder reader
def _write(path, rate=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (tone(500, 0.2, rate) * 3000).astype(np.int16))


@pytest.fixture
def tiny_folder(tmp_path):
    root = tmp_path / "sc"
    for spk in ["aaa", "bbb", "ccc", "ddd"]:
        for n in range(2):
            _write(root / "yes" / f"{spk}_nohash_{n}.wav")
        _write(root / "no" / f"{spk}_nohash_0.wav")
    _write(root / "_unknown_" / "cat_eee_nohash_0.wav")
    _write(root / "_unknown_" / "sheila_aaa_nohash_1.wav")
    _write(root / "_silence_" / "17.wav")
    _write(root / "_background_noise_" / "long.wav")
    return root


def test_folder_reader(tiny_folder):
    b = load_speech_commands(tiny_folder)
    assert b.words == ["_silence_", "cat", "no", "sheila", "yes"]
    assert (b.word == "yes").sum() == 8
    i = list(b.word).index("cat")
    assert b.speaker[i] == "eee"
    assert b.speaker[list(b.word).index("sheila")] == "aaa"
    assert b.speaker[list(b.word).index("_silence_")] == "silence:17"
    assert not any("long.wav" in p for p in b.paths)
    only = load_speech_commands(tiny_folder, words=["no"])
    assert set(only.word) == {"no"}
    with pytest.raises(FileNotFoundError):
        load_speech_commands(tiny_folder / "nothing")


def test_speaker_split_is_disjoint(tiny_folder):
    b = load_speech_commands(tiny_folder, words=["yes"])
    train, test = speaker_split(b.speaker, test_size=0.5, random_state=0)
    assert len(train) + len(test) == 8
    assert not set(b.speaker[train]) & set(b.speaker[test])


# ---------------------------------------------------------------- end to end
def test_audio_outliers_end_to_end_on_real_clips(tmp_path, capsys):
    from skflow.cli import main

    data = shared_path("speech_commands_v0.01_sample")
    plot = tmp_path / "scores.png"
    pytest.importorskip("matplotlib")
    code = main(["audio-outliers", "--data", str(data), "--target", "zero", "--plot", str(plot)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mean AUC" in out and "IsolationForest" in out and "held-out 'zero' ranks" in out
    assert plot.exists() and plot.stat().st_size > 1000


def test_audio_outliers_rejects_unknown_target(tiny_folder):
    from skflow.experiments import run_audio_outliers

    with pytest.raises(ValueError, match="target word 'bird'"):
        run_audio_outliers(tiny_folder, "bird", print_fn=lambda *a: None)
