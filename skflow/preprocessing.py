"""Transformers for the GAS preprocessing of the MAF paper.

``DropColumns`` removes columns by name or position; ``CorrelationFilter``
removes one column of every highly correlated pair, with the MAF paper's rule
or R caret's ``findCorrelation``.  Both keep feature names and support
``set_output(transform="pandas")``.  ``grid_steps`` finds columns recorded
on a grid.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._grid import grid_steps

__all__ = ["CorrelationFilter", "DropColumns", "caret_find_correlation", "grid_steps", "maf_correlation_filter"]


class _DropSelector(SelectorMixin, BaseEstimator):
    """A selector that keeps every column except those in ``dropped_``."""

    def _get_support_mask(self):
        check_is_fitted(self)
        mask = np.ones(self.n_features_in_, dtype=bool)
        mask[self.dropped_] = False
        return mask


class DropColumns(_DropSelector):
    """Drop columns by name or position.

    Parameters
    ----------
    columns : list of str or int
        Columns to remove.  Strings need ``X`` with column names (a pandas
        DataFrame) at fit time; ints are positions (negative ones count from
        the end).

    Attributes
    ----------
    dropped_ : ndarray of int
        Positions of the removed columns.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.preprocessing import DropColumns
    >>> DropColumns([0, 2]).fit_transform(np.arange(8).reshape(2, 4))
    array([[1, 3],
           [5, 7]])
    """

    _parameter_constraints: dict = {"columns": ["array-like"]}

    def __init__(self, columns=()):
        self.columns = columns

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None):
        """Resolve ``columns`` to positions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        X = validate_data(self, X, dtype=None, ensure_all_finite=False)
        names = getattr(self, "feature_names_in_", None)
        n = X.shape[1]
        positions = []
        for col in np.atleast_1d(np.asarray(self.columns, dtype=object)).tolist():
            if isinstance(col, str):
                if names is None:
                    raise ValueError(
                        f"column {col!r} is a name, but X has no column names; pass a "
                        "DataFrame or give positions"
                    )
                hits = np.flatnonzero(names == col)
                if hits.size == 0:
                    raise ValueError(f"column {col!r} not found; X has {list(names)}")
                positions.append(int(hits[0]))
            elif isinstance(col, Integral) and not isinstance(col, bool):
                if not -n <= col < n:
                    raise ValueError(f"column position {col} is out of range for {n} features")
                positions.append(int(col) % n)
            else:
                raise TypeError(f"columns must hold str or int, got {col!r}")
        self.dropped_ = np.unique(np.asarray(positions, dtype=int))
        return self


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def _abs_correlation(X: np.ndarray, signed: bool = False) -> np.ndarray:
    """Pearson correlations with constant columns treated as uncorrelated (0)."""
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(0)
    norm = np.sqrt((Xc * Xc).sum(0))
    constant = norm <= 1e-12 * np.maximum(1.0, np.abs(X).max(0))
    norm[constant] = 1.0
    Z = Xc / norm
    C = Z.T @ Z
    C[constant, :] = 0.0
    C[:, constant] = 0.0
    np.fill_diagonal(C, 1.0)
    C = np.clip(C, -1.0, 1.0)
    return C if signed else np.abs(C)


def maf_correlation_filter(corr: np.ndarray, threshold: float = 0.98) -> np.ndarray:
    """Columns dropped by the MAF paper's rule.

    Repeatedly drop the first column whose *signed* correlation with some
    other remaining column exceeds ``threshold`` (negative correlations never
    count).

    Parameters
    ----------
    corr : ndarray of shape (n_features, n_features)
        Correlation matrix.
    threshold : float

    Returns
    -------
    dropped : ndarray of int, sorted

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[1.0, 0.99, 0.1], [0.99, 1.0, 0.6], [0.1, 0.6, 1.0]])
    >>> maf_correlation_filter(C, 0.98)
    array([0])
    """
    corr = np.asarray(corr, dtype=np.float64)
    above = corr > threshold
    np.fill_diagonal(above, False)
    alive = np.ones(len(corr), dtype=bool)
    dropped = []
    while True:
        counts = (above & alive[None, :]).sum(1)
        counts[~alive] = 0
        hits = np.flatnonzero(counts > 0)
        if hits.size == 0:
            return np.asarray(sorted(dropped), dtype=int)
        alive[hits[0]] = False
        dropped.append(int(hits[0]))


def caret_find_correlation(corr: np.ndarray, cutoff: float = 0.9, exact: bool | None = None) -> np.ndarray:
    """Columns dropped by R caret's ``findCorrelation``.

    With ``exact`` (caret's default below 100 columns): order the variables by
    mean absolute correlation, descending (stable); walk the pairs ``(i, j > i)``
    in that order skipping deleted ones, stopping once no remaining
    off-diagonal entry exceeds ``cutoff``; for ``|r_ij| > cutoff`` compare
    ``mn1`` = mean of row ``i``'s remaining off-diagonal entries with ``mn2`` =
    mean of all remaining off-diagonal entries outside row ``j``, and drop
    ``i`` if ``mn1 > mn2``, else ``j``.  Without ``exact``: rank the mean
    absolute correlations (diagonal included) once and for every pair above
    the cutoff drop the member with the larger rank (ties drop the earlier).

    Parameters
    ----------
    corr : ndarray of shape (n_features, n_features)
    cutoff : float
    exact : bool or None
        None picks caret's default, ``n_features < 100``.

    Returns
    -------
    dropped : ndarray of int, sorted

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[1.0, 0.99, 0.1], [0.99, 1.0, 0.6], [0.1, 0.6, 1.0]])
    >>> caret_find_correlation(C, 0.9)
    array([1])
    """
    x = np.abs(np.asarray(corr, dtype=np.float64))
    n = len(x)
    if n < 2:
        return np.zeros(0, dtype=int)
    if exact is None:
        exact = n < 100
    if not exact:
        # Dense ranks of the column means, as caret's as.numeric(as.factor(.)).
        _, rank = np.unique(x.mean(0), return_inverse=True)
        rows, cols = np.nonzero(np.triu(x, 1) > cutoff)
        drop = np.where(rank[cols] > rank[rows], cols, rows)
        return np.unique(drop)

    off = x.copy()
    np.fill_diagonal(off, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        order = np.argsort(-np.nanmean(off, 0), kind="stable")
    x = x[np.ix_(order, order)]
    x2 = off[np.ix_(order, order)]
    deleted = np.zeros(n, dtype=bool)

    def nanmean(a):
        a = a[~np.isnan(a)]
        return a.mean() if a.size else np.nan

    for i in range(n - 1):
        remaining = x2[~np.isnan(x2)]
        if not np.any(remaining > cutoff):
            break
        if deleted[i]:
            continue
        for j in range(i + 1, n):
            if not deleted[i] and not deleted[j] and x[i, j] > cutoff:
                mn1 = nanmean(x2[i, :])
                mn2 = nanmean(np.delete(x2, j, axis=0))
                k = i if mn1 > mn2 else j
                deleted[k] = True
                x2[k, :] = np.nan
                x2[:, k] = np.nan
    return np.sort(order[deleted])


class CorrelationFilter(_DropSelector):
    """Remove one column of every pair correlated above a threshold.

    Parameters
    ----------
    threshold : float, default=0.98
        Correlation above which a pair counts as redundant.
    method : {"maf", "caret"}, default="maf"
        ``"maf"``: the MAF paper's code -- repeatedly drop the first column
        whose *signed* correlation with another column exceeds ``threshold``
        (use 0.98).  ``"caret"``: R caret's ``findCorrelation`` on absolute
        correlations, dropping the member of each pair with the larger mean
        absolute correlation (the blog article this project grew from used 0.985); see
        :func:`caret_find_correlation`.
    exact : bool or None, default=None
        Only for ``"caret"``: its exact (iterative) or fast (one-shot) variant;
        None follows caret (exact below 100 columns).

    Attributes
    ----------
    correlation_ : ndarray of shape (n_features, n_features)
        Pearson correlations of the training data.  Constant columns are
        given correlation 0 with every other column (not NaN), so they are
        never dropped by this filter.
    dropped_ : ndarray of int
        Positions of the removed columns.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.preprocessing import CorrelationFilter
    >>> rng = np.random.RandomState(0)
    >>> a, b = rng.normal(size=(2, 100))
    >>> X = np.column_stack([a, a + 1e-3 * b, b])
    >>> CorrelationFilter(threshold=0.98).fit(X).dropped_
    array([0])
    """

    _parameter_constraints: dict = {
        "threshold": [Interval(Real, -1, 1, closed="both")],
        "method": [StrOptions({"maf", "caret"})],
        "exact": ["boolean", None],
    }

    def __init__(self, threshold=0.98, method="maf", exact=None):
        self.threshold = threshold
        self.method = method
        self.exact = exact

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None):
        """Compute correlations and choose the columns to drop.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        self.correlation_ = _abs_correlation(X, signed=True)
        if self.method == "maf":
            self.dropped_ = maf_correlation_filter(self.correlation_, self.threshold)
        else:
            self.dropped_ = caret_find_correlation(self.correlation_, self.threshold, self.exact)
        return self

    def transform(self, X: ArrayLike):
        """Keep the columns that survived the filter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric, like the training data.

        Returns
        -------
        X_kept : array-like of shape (n_samples, n_kept)
        """
        check_is_fitted(self)
        # SelectorMixin would pass strings or sparse input through; the filter
        # was fitted on numbers, so insist on them (errors name the problem).
        validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return super().transform(X)

