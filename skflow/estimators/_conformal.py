"""Conformal p-values and the Benjamini-Hochberg procedure, shared by the outlier detectors."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils.validation import check_is_fitted

from ..nn.devices import private_random_state

#: Share of new normal rows that ``contamination="auto"`` flags.
AUTO_FALSE_ALARM_RATE = 0.01


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


def calibration_rows(n: int, groups, fraction: float, random_state) -> np.ndarray | None:
    """Positions of ``fraction`` of ``n`` rows (whole groups where ``groups``
    are given) to hold out of training for calibration, or None when fewer
    than one row (or 3 groups) would be, or fewer than 2 would remain."""
    n_held = int(fraction * n)
    if n_held < 1 or n - n_held < 2:
        return None
    rng = np.random.RandomState(private_random_state(random_state).randint(2**31 - 1) ^ 0x5EED)
    if groups is None:
        return np.sort(rng.permutation(n)[:n_held])
    groups = np.asarray(groups)
    if len(np.unique(groups)) < 3:
        return None
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=rng)
    return np.sort(next(splitter.split(np.zeros(n), groups=groups))[1])


def outlier_offset(contamination, fitted_scores: np.ndarray, new_scores: np.ndarray) -> float:
    """The score threshold of ``contamination``: a float flags that share of
    ``fitted_scores`` (every row given to ``fit``); "auto" flags
    ``AUTO_FALSE_ALARM_RATE`` of ``new_scores`` (rows the model was not
    trained on, where there are any)."""
    scores, rate = (new_scores, AUTO_FALSE_ALARM_RATE) if contamination == "auto" else (fitted_scores, contamination)
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    if len(finite) == 0:
        raise ValueError("every row scored -inf (outside the model's range): no threshold can be set")
    # rows at -inf (outside a bound, an unseen category) would make the interpolated
    # percentile NaN; at the lowest finite score they leave it finite and stay flagged
    return float(np.percentile(np.maximum(scores, finite.min()), 100 * rate))


class ConformalOutlierMixin:
    """``calibrate``, ``p_values``, ``decision_function`` and ``predict`` of an
    outlier detector, from its ``score_samples`` (higher: more normal),
    ``offset_``, ``calibration_scores_`` and ``fdr``."""

    def calibrate(self, X):
        """Replace the calibration rows behind :meth:`p_values` by ``X``.

        Pass normal rows (clips, for a detector of clips) the model was not
        fitted on, and that look like those it will judge; their scores
        replace ``calibration_scores_``.

        Parameters
        ----------
        X : what :meth:`score_samples` takes

        Returns
        -------
        self : object
        """
        self.calibration_scores_ = sorted_calibration(self.score_samples(X))
        return self

    def p_values(self, X) -> np.ndarray:
        """Conformal p-value of each row: small for outliers.

        ``p = (1 + #{calibration scores <= s}) / (n + 1)`` for a row of
        score ``s`` (:meth:`score_samples`) and the ``n`` calibration rows'
        scores (``calibration_scores_``: rows ``fit`` held out of everything
        it chose, or those of :meth:`calibrate`).  If the calibration rows
        and a new normal row are exchangeable (drawn alike),
        ``P(p <= alpha) <= alpha`` for every ``alpha``, whatever the model:
        flagging ``p <= alpha`` has a false-alarm rate of at most ``alpha``.
        With ``n`` calibration rows the smallest p-value is ``1 / (n + 1)``.

        Parameters
        ----------
        X : what :meth:`score_samples` takes

        Returns
        -------
        p : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if self.calibration_scores_ is None:
            raise ValueError("p_values needs calibration scores: fit with calibration_fraction > 0 (and enough "
                             "rows, or clips), or call calibrate")
        return conformal_p_values(self.calibration_scores_, self.score_samples(X))

    def decision_function(self, X) -> np.ndarray:
        """Shifted score: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : what :meth:`score_samples` takes

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        check_is_fitted(self)
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """Label rows as inliers (+1) or outliers (-1).

        By ``offset_`` (``contamination``), or, with ``fdr`` set, by the
        Benjamini-Hochberg procedure on the rows' :meth:`p_values`: the
        rows of ``X`` flagged together then hold at most a share ``fdr`` of
        normal rows in expectation (the false discovery rate), under the
        exchangeability :meth:`p_values` assumes.

        Parameters
        ----------
        X : what :meth:`score_samples` takes

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 for outliers, +1 for inliers.
        """
        if self.fdr is None:
            return np.where(self.decision_function(X) < 0, -1, 1)
        return benjamini_hochberg(self.p_values(X), self.fdr)
