"""Columns recorded on a grid (whole millimetres, integer counts, one decimal)."""

from __future__ import annotations

import numpy as np

__all__ = ["grid_steps"]

#: Decimal places tried when looking for a column's grid.
MAX_DECIMALS = 6
#: A column is on a grid only if it has at most this share of distinct values
#: per row: otherwise its values rarely repeat and the grid does not matter.
MAX_DISTINCT_FRACTION = 0.5


def _column_step(values: np.ndarray, max_distinct: float) -> float:
    distinct = np.unique(values[np.isfinite(values)])
    if len(distinct) < 2 or len(distinct) > max_distinct:
        return 0.0
    median_gap = float(np.median(np.diff(distinct)))
    for decimals in range(MAX_DECIMALS + 1):
        scaled = distinct * 10.0**decimals
        if np.abs(scaled).max() >= 2.0**52:
            break
        if np.abs(scaled - np.round(scaled)).max() <= 1e-4:
            step = float(np.gcd.reduce(np.diff(np.round(scaled).astype(np.int64)))) / 10.0**decimals
            if step >= median_gap / 10:
                return step
            break
    # Few values on no grid that explains their spacing (e.g. logarithms of a
    # few prices): the median gap between them.
    return median_gap


def grid_steps(X, max_distinct_fraction: float = MAX_DISTINCT_FRACTION) -> np.ndarray:
    """The step of the grid each column's values lie on, 0 for a column on none.

    Only columns with at most ``max_distinct_fraction`` distinct values per
    row count (their values repeat).  Such a column is on a grid of step
    ``h`` when, written with at most six decimals, every difference between
    its distinct values is a whole multiple of ``h`` (their greatest common
    divisor) and ``h`` is at least a tenth of the median difference; a
    column of repeated values on no such grid (logarithms of a few prices,
    say) gets that median difference as its step.  Such columns have spikes
    a density model can chase; adding uniform noise on ``[-h/2, h/2]``
    (dequantisation) removes them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    max_distinct_fraction : float, default=0.5

    Returns
    -------
    steps : ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.c_[[1, 2, 2, 4, 1, 2], [0.5, 0.25, 0.5, 0.75, 0.5, 0.5], [0.1, 0.7, 0.3, 0.9, 0.2, 0.4]]
    >>> grid_steps(X)
    array([1.  , 0.25, 0.  ])
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    max_distinct = max_distinct_fraction * X.shape[0]
    return np.array([_column_step(X[:, j], max_distinct) for j in range(X.shape[1])])
