"""Outlier detection on tables of categorical, integer and continuous columns."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._conformal import ConformalOutlierMixin, calibration_rows, outlier_offset, sorted_calibration
from .mixed import MixedDensity, _is_frame

__all__ = ["MixedOutlierDetector"]


class MixedOutlierDetector(ConformalOutlierMixin, OutlierMixin, BaseEstimator):
    """Outlier detection on tables with categorical, integer and continuous columns.

    The :class:`MAFOutlierDetector` of mixed tables: a :class:`MixedDensity`
    (the probability of a row's categories times the density of its
    numbers given them) is fitted to (mostly) normal rows, and rows with a
    low log-density are outliers -- an unusual category, an unusual
    combination of categories, or numbers unusual for the row's categories.
    A category not seen in ``fit`` makes a row score ``-inf``: it is as
    unusual as a row can be.  ``score_samples`` is that log-density
    (higher is more normal), ``decision_function = score_samples - offset_``
    (negative for outliers) and ``predict`` returns -1 for outliers and +1
    for inliers; :meth:`p_values` and ``fdr`` work as in
    :class:`MAFOutlierDetector`.

    Parameters
    ----------
    contamination : "auto" or float, default="auto"
        How ``offset_`` is set.  A float in (0, 0.5] is the expected share
        of outliers among the rows given to ``fit``: ``offset_`` is that
        percentile of their scores.  "auto" assumes clean training data and
        aims at a false-alarm rate of 1% on new normal rows: ``offset_`` is
        the 1st percentile of the calibration rows' scores (the training
        rows' where none were held out).
    column_types : "auto" or dict, default="auto"
        As in :class:`MixedDensity`.
    bounds : "auto", dict or None, default="auto"
        As in :class:`MixedDensity`.  Rows outside a bound score ``-inf``.
    point_masses : "auto", dict or None, default="auto"
        As in :class:`MixedDensity`.
    flow_params : dict, default=None
        As in :class:`MixedDensity`: parameters of the numeric part's flow.
    categorical_C : float, default=1.0
        As in :class:`MixedDensity`.
    fdr : float in (0, 1) or None, default=None
        With a float, :meth:`predict` flags rows by the Benjamini-Hochberg
        procedure on their :meth:`p_values`, so that at most this share of
        the rows it flags in one call are normal, in expectation; None
        flags by ``offset_``.
    calibration_fraction : float in [0, 0.5], default=0.1
        Share of the rows (whole groups when ``fit`` gets ``groups``) held
        out of the density's fit: their scores are the reference of
        :meth:`p_values` (``calibration_scores_``) and, with
        ``contamination="auto"``, set ``offset_``.  No rows are held out
        where fewer than one (or fewer than 3 groups) would be, nor with 0:
        then :meth:`calibrate` before :meth:`p_values`.
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split and the density's fit.

    Attributes
    ----------
    density_ : MixedDensity
        The density fitted to the rows not held out for calibration (its
        ``column_types_``, ``categories_`` and ``bounds_`` describe the
        columns).
    offset_ : float
        Score threshold: ``decision_function = score_samples - offset_``.
    calibration_scores_ : ndarray of shape (n_calibration_rows,) or None
        Sorted :meth:`score_samples` of the calibration rows, or of the rows
        given to :meth:`calibrate`; None when no rows were held out.
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    See Also
    --------
    MixedDensity : The density behind the scores.
    MAFOutlierDetector : The detector of numeric tables, with a background
        model and per-feature attributions.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skflow import MixedOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> colour = rng.choice(["red", "blue"], 400)
    >>> size = np.where(colour == "red", 2.0, 5.0) + rng.normal(0, 0.3, 400)
    >>> df = pd.DataFrame({"colour": colour, "size": size})
    >>> det = MixedOutlierDetector(flow_params={"n_flows": 2, "max_iter": 5}, random_state=0).fit(df)
    >>> det.predict(pd.DataFrame({"colour": ["red", "red", "green"], "size": [2.1, 5.0, 2.0]}))
    array([ 1, -1, -1])
    """

    _parameter_constraints: dict = {
        **MixedDensity._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "fdr": [Interval(Real, 0, 1, closed="neither"), None],
        "calibration_fraction": [Interval(Real, 0, 0.5, closed="both")],
    }

    def __init__(self, *, contamination="auto", column_types="auto", bounds="auto", point_masses="auto",
                 flow_params=None, categorical_C=1.0, fdr=None, calibration_fraction=0.1, random_state=None):
        self.contamination = contamination
        self.column_types = column_types
        self.bounds = bounds
        self.point_masses = point_masses
        self.flow_params = flow_params
        self.categorical_C = categorical_C
        self.fdr = fdr
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)  # the density validates its own parameters
    def fit(self, X: ArrayLike, y: None = None, groups: ArrayLike | None = None):
        """Fit the density to ``X`` less its calibration rows, then set ``offset_``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Training rows (normal, or mostly normal); at least 2.
        y : None
            Ignored, present for API consistency.
        groups : array-like of shape (n_samples,), default=None
            The source of each row: calibration rows are then whole groups.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        rows = X if _is_frame(X) else check_array(X, dtype="numeric", ensure_min_samples=2)
        n = len(rows)
        if groups is not None:
            groups = check_array(groups, ensure_2d=False, dtype=None)
            if len(groups) != n:
                raise ValueError(f"groups has {len(groups)} entries, X has {n} rows")
        held = calibration_rows(n, groups, self.calibration_fraction, self.random_state)
        training = np.arange(n) if held is None else np.setdiff1d(np.arange(n), held)
        density = MixedDensity(column_types=self.column_types, bounds=self.bounds, point_masses=self.point_masses,
                               flow_params=self.flow_params, categorical_C=self.categorical_C,
                               random_state=self.random_state)
        training_rows = _take(rows, training)
        self.density_ = density.fit(training_rows)
        self.n_features_in_ = density.n_features_in_
        if hasattr(density, "feature_names_in_"):
            self.feature_names_in_ = density.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        scores = density._log_density(training_rows, allow_unseen=True)
        calibration = None if held is None else density._log_density(_take(rows, held), allow_unseen=True)
        fitted = scores if calibration is None else np.r_[scores, calibration]
        self.offset_ = outlier_offset(self.contamination, fitted, scores if calibration is None else calibration)
        self.calibration_scores_ = None if calibration is None else sorted_calibration(calibration)
        return self

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of each row under the fitted :class:`MixedDensity`.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            In the units of :meth:`MixedDensity.score_samples`; higher is
            more normal; ``-inf`` for rows outside a bound or with a
            category not seen in ``fit``.
        """
        check_is_fitted(self)
        return self.density_._log_density(X, allow_unseen=True)


def _take(rows, positions):
    return rows.iloc[positions] if _is_frame(rows) else rows[positions]
