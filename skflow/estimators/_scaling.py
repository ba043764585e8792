"""The per-feature standardisation every estimator fits inside.

A flow's defaults (the Gaussian start's ridge, the bounds on log-scales and
spline intervals, the learning rate, the float32 weights) are set for
features of unit scale.  So each estimator maps its features to
``(X - location) / scale`` in float64 before anything else and adds the
Jacobian ``-sum(log scale)`` to every log-density: the fitted model is the
same whatever units the data come in (``log p(cX) = log p(X) - d log c``),
and data around 1e8 keep their digits because centring happens before the
cast to the model's dtype.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_standardisation", "refuse_rows_beyond_reach", "standardise"]

#: Rows are standardised this many at a time (float64 temporaries stay small).
_CHUNK = 65536


def fit_standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of ``X`` (float64), 1 where a column is constant.

    Computed on columns divided by their largest magnitude first, so that
    values up to float64's maximum neither overflow nor lose the spread.
    """
    X = np.asarray(X)
    d = X.shape[1]
    mean, scale = np.zeros(d), np.ones(d)
    for j in range(d):
        column = np.asarray(X[:, j], dtype=np.float64)
        size = float(np.max(np.abs(column))) if column.size else 0.0
        if not np.isfinite(size):
            raise ValueError(f"feature {j} holds infinite values")
        if size == 0.0:
            continue
        unit = column / size
        m = unit.mean()
        s = np.sqrt(np.mean(np.square(unit - m)))
        mean[j] = m * size
        # Constant up to rounding: no scale to remove (scikit-learn's rule for StandardScaler).
        scale[j] = s * size if s > 10 * np.finfo(np.float64).eps * max(abs(m), 1.0) else 1.0
    return mean, scale


def standardise(X: np.ndarray, location: np.ndarray, scale: np.ndarray, dtype,
                model_dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """``(X - location) / scale`` in ``dtype``, and the rows a model of
    ``model_dtype`` (default ``dtype``) cannot hold.

    Returns
    -------
    Z : ndarray of ``dtype``
        The standardised rows; a row with a value beyond :func:`max_standardised`
        is set to zeros there.
    outside : ndarray of bool, shape (n_rows,)
        The rows with such a value: far beyond every training row (their
        density underflows to 0 in any case), or beyond the model's range.
    """
    dtype = np.dtype(dtype)
    n = X.shape[0]
    Z = np.empty(X.shape, dtype=dtype)
    outside = np.zeros(n, dtype=bool)
    limit = max_standardised(dtype if model_dtype is None else model_dtype)
    for start in range(0, n, _CHUNK):
        with np.errstate(over="ignore", invalid="ignore"):
            z = (np.asarray(X[start : start + _CHUNK], dtype=np.float64) - location) / scale
        bad = ~(np.abs(z) <= limit)
        if bad.any():
            outside[start : start + _CHUNK] = bad.any(1)
            z[bad.any(1)] = 0.0
        Z[start : start + _CHUNK] = z
    return Z, outside


def refuse_rows_beyond_reach(outside: np.ndarray, what: str = "X") -> None:
    """A clear error for training rows that :func:`standardise` could not hold:
    possible only in a warm start, whose scales come from an earlier fit."""
    if outside.any():
        raise ValueError(f"row {int(np.flatnonzero(outside)[0])} of {what} lies too many standard deviations "
                         "beyond the rows the warm-started model was first fitted on; fit afresh "
                         "(warm_start=False)")


def max_standardised(dtype) -> float:
    """The largest standardised value a model of ``dtype`` scores: beyond it
    squares overflow (about 1.8e19 standard deviations in float32)."""
    return float(np.sqrt(np.finfo(np.dtype(dtype)).max)) / 1e3
