"""Conformal p-values and the Benjamini-Hochberg procedure, shared by the outlier detectors."""

from __future__ import annotations

import numpy as np


def conformal_p_values(calibration: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``(1 + #{calibration <= s}) / (n + 1)`` for each score ``s`` (higher: more normal);
    ``calibration`` sorted ascending."""
    return (1.0 + np.searchsorted(calibration, scores, side="right")) / (len(calibration) + 1.0)


def benjamini_hochberg(p: np.ndarray, level: float) -> np.ndarray:
    """-1 for the rows the Benjamini-Hochberg procedure rejects at false discovery rate ``level``, else +1."""
    n = len(p)
    labels = np.ones(n, dtype=int)
    if n == 0:
        return labels
    order = np.argsort(p, kind="stable")
    passed = np.flatnonzero(p[order] <= level * np.arange(1, n + 1) / n)
    if len(passed):
        labels[order[: passed[-1] + 1]] = -1
    return labels


def sorted_calibration(scores: np.ndarray) -> np.ndarray:
    """Calibration scores as :func:`conformal_p_values` needs them, with a clear error when there are none."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("calibrate needs at least one row")
    return np.sort(scores)
