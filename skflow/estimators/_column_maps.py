"""Column types of a mixed table, and the maps that free bounded columns.

A bounded column ``x`` in ``(a, b)`` is modelled as ``z = log(x - a) -
log(b - x)``, one bounded below as ``z = log(x - a)``, one bounded above as
``z = log(b - x)``; the log-density in the data's units adds
``log |dz/dx|``.  Integer columns are dequantised (uniform noise of one
grid step) before the maps, their bounds widened by half a step so that
every drawn value rounds back inside.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ColumnMap", "infer_column_types", "integer_step"]

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


class ColumnMap:
    """The map of one numeric column to the real line: ``low``/``high``
    bounds (None: open), a log on one bound, a logit between two."""

    def __init__(self, low=None, high=None):
        if low is not None and high is not None and not low < high:
            raise ValueError(f"a bound's low end must lie below its high end, got ({low}, {high})")
        self.low, self.high = low, high

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
        if self.high is None:
            return np.log(x - self.low), -np.log(x - self.low)
        if self.low is None:
            return np.log(self.high - x), -np.log(self.high - x)
        below, above = np.log(x - self.low), np.log(self.high - x)
        return below - above, np.log(self.high - self.low) - below - above

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.low is None and self.high is None:
            return z
        with np.errstate(over="ignore"):
            if self.high is None:
                out = self.low + np.exp(z)
            elif self.low is None:
                out = self.high - np.exp(z)
            else:
                out = self.low + (self.high - self.low) / (1.0 + np.exp(-z))
        # exp underflows far out in a tail: keep draws strictly inside, as every density value is
        return self.clip(out)

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` moved strictly inside the bounds where it is not."""
        low = -np.inf if self.low is None else np.nextafter(self.low, np.inf)
        high = np.inf if self.high is None else np.nextafter(self.high, -np.inf)
        return np.clip(x, low, high)
