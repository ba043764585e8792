"""Column types of a mixed table, and the maps that free bounded columns.

A bounded column ``x`` in ``(a, b)`` is modelled as ``z = log(x - a) -
log(b - x)``, one bounded below as ``z = log(x - a)``, one bounded above as
``z = log(b - x)``; the log-density in the data's units adds
``log |dz/dx|``.  A one-sided map may instead be the soft log
``z = s log(exp((x - a) / s) - 1)`` of a scale ``s`` (``b - x`` in place of
``x - a`` for an upper bound): a log within about ``s`` of the bound, a
shift (``z ~ x - a``) beyond, so that a column far
from its bound keeps its shape; :func:`one_sided_scale` picks ``s``.  Integer columns are dequantised (uniform noise of one
grid step) before the maps, their bounds widened by half a step so that
every drawn value rounds back inside.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ColumnMap", "infer_column_types", "integer_step", "lattice_cells", "one_sided_scale", "sparse_lattice"]

#: An integer column uses at most this share of the grid points between its
#: smallest and largest value ...
SPARSE_LATTICE_SHARE = 0.5
#: ... with this many rows per distinct value on average: a lattice of its own
#: (scaled test scores), not a wide-ranging count whose values rarely repeat.
LATTICE_ROWS_PER_VALUE = 10

#: Candidate scales of the soft log, in units of the column's spread (distance to its bound).
SCALE_MULTIPLES = tuple(2.0**k for k in range(-4, 5))

KINDS = ("categorical", "integer", "continuous")


def infer_column_types(X, overrides) -> list[str]:
    """Each column's kind: a DataFrame's category, object, string and bool
    columns are categorical, its integer columns integer, the rest
    continuous; a numpy array's columns by its dtype the same way.
    ``overrides`` maps column names (or positions) to a kind."""
    import pandas as pd  # MixedDensity checked that it is installed

    kinds = []
    for name in X.columns:
        dtype = X[name].dtype
        if isinstance(dtype, pd.CategoricalDtype) or dtype == bool or dtype.kind in "OSUb" \
                or pd.api.types.is_string_dtype(dtype):
            kinds.append("categorical")
        elif dtype.kind in "iu":
            kinds.append("integer")
        else:
            kinds.append("continuous")
    names = list(X.columns)
    for key, kind in overrides.items():
        if kind not in KINDS:
            raise ValueError(f"column_types[{key!r}] must be one of {KINDS}, got {kind!r}")
        position = names.index(key) if key in names else key
        if not isinstance(position, (int, np.integer)) or not 0 <= position < len(names):
            raise ValueError(f"column_types names column {key!r}, which X does not have")
        kinds[int(position)] = kind
    return kinds


def integer_step(values: np.ndarray) -> float:
    """The grid step of an integer column: the greatest common divisor of
    the gaps between its distinct values (1 for a single value)."""
    distinct = np.unique(values.astype(np.int64))
    if len(distinct) < 2:
        return 1.0
    return float(np.gcd.reduce(np.diff(distinct)))


def sparse_lattice(values: np.ndarray, step: float):
    """The distinct values of an integer column that uses at most
    :data:`SPARSE_LATTICE_SHARE` of its grid's points, each value held by
    :data:`LATTICE_ROWS_PER_VALUE` rows on average, or None."""
    distinct = np.unique(np.asarray(values, dtype=np.float64))
    points = (distinct[-1] - distinct[0]) / step + 1
    repeated = len(values) >= LATTICE_ROWS_PER_VALUE * len(distinct)
    return distinct if repeated and 2 <= len(distinct) <= SPARSE_LATTICE_SHARE * points else None


def lattice_cells(lattice: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Each lattice value's cell: from the midpoint to the value below to the
    midpoint to the value above (half a step beyond the ends)."""
    middles = (lattice[1:] + lattice[:-1]) / 2
    return np.r_[lattice[0] - step / 2, middles], np.r_[middles, lattice[-1] + step / 2]


class ColumnMap:
    """The map of one numeric column to the real line: ``low``/``high``
    bounds (None: open), a log on one bound (or the soft log of ``scale``),
    a logit between two."""

    def __init__(self, low=None, high=None, scale=None):
        if low is not None and high is not None and not low < high:
            raise ValueError(f"a bound's low end must lie below its high end, got ({low}, {high})")
        if scale is not None and ((low is None) == (high is None) or not scale > 0):
            raise ValueError(f"a soft log's scale needs exactly one bound and must be positive, got {scale!r}")
        self.low, self.high, self.scale = low, high, scale

    def inside(self, x: np.ndarray) -> np.ndarray:
        ok = np.isfinite(x)
        if self.low is not None:
            ok &= x > self.low
        if self.high is not None:
            ok &= x < self.high
        return ok

    def some_inside(self) -> float:
        """A value strictly inside the bounds."""
        if self.low is not None and self.high is not None:
            return (self.low + self.high) / 2
        return 0.0 if self.low is None and self.high is None else \
            self.low + 1.0 if self.high is None else self.high - 1.0

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``z`` and ``log |dz/dx|`` of values strictly inside the bounds."""
        if self.low is None and self.high is None:
            return x, np.zeros_like(x)
        if self.low is not None and self.high is not None:
            below, above = np.log(x - self.low), np.log(self.high - x)
            return below - above, np.log(self.high - self.low) - below - above
        gap = x - self.low if self.high is None else self.high - x
        if self.scale is None:
            return np.log(gap), -np.log(gap)
        # s log(expm1(g / s)) = g + s log(1 - exp(-g / s)): no overflow far out
        tail = np.log(-np.expm1(-gap / self.scale))
        return gap + self.scale * tail, -tail

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.low is None and self.high is None:
            return z
        with np.errstate(over="ignore"):
            if self.low is not None and self.high is not None:
                out = self.low + (self.high - self.low) / (1.0 + np.exp(-z))
            else:
                gap = np.exp(z) if self.scale is None else self.scale * np.logaddexp(0.0, z / self.scale)
                out = self.low + gap if self.high is None else self.high - gap
        # exp underflows far out in a tail: keep draws strictly inside, as every density value is
        return self.clip(out)

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` moved strictly inside the bounds where it is not."""
        low = -np.inf if self.low is None else np.nextafter(self.low, np.inf)
        high = np.inf if self.high is None else np.nextafter(self.high, -np.inf)
        return np.clip(x, low, high)


def one_sided_scale(x: np.ndarray, low=None, high=None):
    """The map of a column with one bound under which its values ``x``
    (strictly inside) are most Gaussian: the ``scale`` of the soft log, or
    None for the log, whichever gives the largest Gaussian log-likelihood in
    the data's units (the fitted Gaussian's plus the map's log-Jacobian, a
    profile likelihood as in choosing a Box-Cox power).  The soft log's
    candidates are :data:`SCALE_MULTIPLES` times the mean distance to the
    bound; a larger scale approaches the log, a smaller one a shift."""
    if (low is None) == (high is None):
        raise ValueError("one_sided_scale needs exactly one bound")
    gap = np.asarray(x, dtype=np.float64) - low if high is None else high - np.asarray(x, dtype=np.float64)
    spread = float(gap.mean())

    def gaussian_log_likelihood(scale):
        z, log_jacobian = ColumnMap(low, high, scale).forward(x)
        variance = z.var()
        if not variance > 0:
            return -np.inf
        return -0.5 * np.log(2 * np.pi * np.e * variance) + float(log_jacobian.mean())

    candidates = [None] + [spread * m for m in SCALE_MULTIPLES]
    scores = [gaussian_log_likelihood(scale) for scale in candidates]
    return candidates[int(np.argmax(scores))]
