"""Point masses of continuous columns: one value held by a share of the rows, a density elsewhere.

A zero-inflated column -- a wage that is 0 for those who did not work, the
rain on dry days -- is a mixture of an atom of probability ``pi`` and a
density over the other values.  :class:`~skflow.MixedDensity` models the
indicator "at the atom" as one more column of its categorical chain (so
``pi`` is a probability, given the categories before it) and gives the
numeric flow, on the rows at the atom, a stand-in for the column: a draw
``u`` from a fixed Gaussian ``q`` (the mean and spread of the column's other
values on the real line), independent of everything else.  The flow then
learns ``p(others, u | atom) = p(others | atom) q(u)``, and scoring
integrates ``u`` out, ``p(others | atom) = E_q[p(others, u | atom) / q(u)]``,
by a fixed quadrature at :data:`NODES` quantiles of ``q`` (a Latin
hypercube of them when a row has several such columns): no random numbers,
the same score on every call.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["MIN_RATIO", "MIN_ROWS", "MIN_SHARE", "NODES", "find_point_mass", "quadrature_nodes"]

#: A continuous column's most frequent value is a point mass when it holds at least this share ...
MIN_SHARE = 0.05
#: ... and at least this many of the training rows ...
MIN_ROWS = 5
#: ... and this many times as many as the next most frequent value: a value
#: far more common than any other, not one of several rounded ones (tips of
#: $2 and $3, heart weights recorded to 0.1 g), which are a grid's business.
MIN_RATIO = 3.0
#: Quadrature nodes per row at a point mass, when scoring.
NODES = 32


def find_point_mass(values: np.ndarray) -> float | None:
    """The value that :data:`MIN_SHARE` (and :data:`MIN_ROWS`) of ``values``
    share, :data:`MIN_RATIO` times as many as share any other, if there is
    one and at least two other distinct values beside it."""
    distinct, counts = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    if len(distinct) < 3:
        return None
    k = int(np.argmax(counts))
    runner_up = np.partition(counts, -2)[-2]
    if counts[k] < max(MIN_ROWS, MIN_SHARE * len(values), MIN_RATIO * runner_up):
        return None
    return float(distinct[k])


def quadrature_nodes(n_columns: int, n_nodes: int = NODES) -> np.ndarray:
    """Standard normal nodes of shape ``(n_nodes, n_columns)``: each column
    the ``n_nodes`` quantiles at ``(k + 1/2) / n_nodes``, columns after the
    first in a fixed shuffled order (a Latin hypercube)."""
    quantiles = norm.ppf((np.arange(n_nodes) + 0.5) / n_nodes)
    shuffle = np.random.RandomState(0)  # fixed: the same nodes on every call
    columns = [quantiles] + [quantiles[shuffle.permutation(n_nodes)] for _ in range(n_columns - 1)]
    return np.column_stack(columns) if n_columns else np.zeros((n_nodes, 0))
