"""Speech-Commands-style folders: one sub-folder per word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils import Bunch

__all__ = ["load_speech_commands", "speaker_split"]

UNKNOWN = "_unknown_"
SILENCE = "_silence_"


def _speaker(stem: str) -> str:
    # "{speaker}_nohash_{n}" -> speaker
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem


def load_speech_commands(root, words=None) -> Bunch:
    """Index the wav files of a Speech Commands folder.

    Layout: ``root/<word>/<speaker>_nohash_<n>.wav`` for each word;
    ``root/_unknown_/<word>_<speaker>_nohash_<n>.wav`` for words outside the
    keyword set (the word is the file-name prefix); ``root/_silence_/*.wav``
    for background-noise clips (each its own "speaker").  ``_background_noise_``
    (long recordings, not clips) is skipped.

    Parameters
    ----------
    root : str or path-like
    words : list of str, optional
        Keep only these words (``"_silence_"`` included).

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``paths``, ``word``, ``speaker`` (arrays of str, one entry per clip,
        sorted by path), ``words`` (the distinct words) and ``root``.

    Raises
    ------
    FileNotFoundError
        If ``root`` has no wav files in word sub-folders.

    Examples
    --------
    >>> from skflow.datasets import load_speech_commands
    >>> sc = load_speech_commands("speech_commands_v0.02_test_subset")  # doctest: +SKIP
    >>> sc.words[:3]  # doctest: +SKIP
    ['_silence_', 'backward', 'bed']
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    paths, word, speaker = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name == "_background_noise_":
            continue
        for wav in sorted(folder.glob("*.wav")):
            if folder.name == UNKNOWN:
                w, _, rest = wav.stem.partition("_")
                spk = _speaker(rest)
            elif folder.name == SILENCE:
                w, spk = SILENCE, f"silence:{wav.stem}"
            else:
                w, spk = folder.name, _speaker(wav.stem)
            paths.append(str(wav))
            word.append(w)
            speaker.append(spk)
    if not paths:
        raise FileNotFoundError(f"no wav files in word sub-folders of {root}")
    word = np.asarray(word)
    keep = np.ones(len(word), dtype=bool) if words is None else np.isin(word, list(words))
    bunch = Bunch(
        paths=np.asarray(paths)[keep],
        word=word[keep],
        speaker=np.asarray(speaker)[keep],
        root=str(root),
    )
    bunch.words = sorted(set(bunch.word.tolist()))
    return bunch


def speaker_split(speakers, test_size=0.3, random_state=0):
    """Split clip indices so that no speaker is on both sides.

    Parameters
    ----------
    speakers : array-like of str
    test_size : float, default=0.3
        Approximate share of *speakers* in the test part.
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    train_index, test_index : ndarrays of int

    Examples
    --------
    >>> from skflow.datasets import speaker_split
    >>> train, test = speaker_split(["a", "a", "b", "c", "c", "d"], test_size=0.5)
    >>> sorted(len(part) for part in (train, test))
    [3, 3]
    """
    speakers = np.asarray(speakers)
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    train, test = next(splitter.split(np.zeros(len(speakers)), groups=speakers))
    return train, test
