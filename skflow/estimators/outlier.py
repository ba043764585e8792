"""Outlier detection with a Masked Autoregressive Flow."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import OutlierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._docs import ENSEMBLE_PARAMETERS_DOC, FLOW_ATTRIBUTES_DOC, MIXTURE_ATTRIBUTES_DOC, SCALING_ATTRIBUTES_DOC, flow_parameters_doc
from ._unconditional import UnconditionalMAF

#: Share of new normal rows that ``contamination="auto"`` flags.
AUTO_FALSE_ALARM_RATE = 0.01


class MAFOutlierDetector(OutlierMixin, UnconditionalMAF):
    __doc__ = f"""Outlier detection by the log-density of a Masked Autoregressive Flow.

    The flow is fitted to (mostly) normal rows; rows with a low log-density
    under it are outliers.  Follows scikit-learn's outlier conventions:
    ``score_samples`` is the log-density (higher is more normal),
    ``decision_function = score_samples - offset_`` (negative for outliers)
    and ``predict`` returns -1 for outliers and +1 for inliers.

    Parameters
    ----------
    contamination : "auto" or float, default="auto"
        How ``offset_``, the log-density threshold, is set.  A float in
        (0, 0.5] is the expected share of outliers in the training data:
        ``offset_`` is that percentile of the training rows' scores, so that
        share of them is flagged.  "auto" assumes clean training data and
        aims at a false-alarm rate of 1% on *new* normal rows: ``offset_`` is
        the 1st percentile of the scores of the rows held out for early
        stopping, which the flow did not train on (training scores are
        optimistic).  Without early stopping, "auto" uses the training rows.
    {flow_parameters_doc()}

    {ENSEMBLE_PARAMETERS_DOC.strip()}

    Attributes
    ----------
    offset_ : float
        Log-density threshold: ``decision_function = score_samples - offset_``.
    {FLOW_ATTRIBUTES_DOC.strip()}

    {MIXTURE_ATTRIBUTES_DOC.strip()}

    {SCALING_ATTRIBUTES_DOC.strip()}

    covariance_shrinkage_ : float
        With ``init="gaussian"``: the share of the start's covariance moved
        onto a multiple of the identity, chosen by cross-validation.

    See Also
    --------
    MAFDensity : The same model as a density estimator.
    sklearn.ensemble.IsolationForest
    sklearn.neighbors.LocalOutlierFactor

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import MAFOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 2))
    >>> det = MAFOutlierDetector(contamination=0.05, n_flows=2, hidden_layer_sizes=(16,),
    ...                          max_iter=5, random_state=0).fit(X)
    >>> det.predict([[0.0, 0.0], [8.0, 8.0]])
    array([ 1, -1])
    """

    # New rows often come from sources the training rows did not (speakers,
    # days): a Gaussian-heavier mixture ranks them better (benchmarks/small_data.py).
    _gaussian_weight_caution = 3.0

    _parameter_constraints: dict = {
        **UnconditionalMAF._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
    }

    def __init__(
        self,
        *,
        contamination="auto",
        n_flows=5,
        hidden_layer_sizes=(100, 100),
        activation="tanh",
        batch_norm=False,
        order="reverse",
        learning_rate="constant",
        learning_rate_init=1e-3,
        weight_decay=0.0,
        batch_size="auto",
        max_iter=200,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        log_scale_bound=5.0,
        max_grad_norm=10.0,
        device="auto",
        dtype="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
        compile=False,
        init="gaussian",
        base="normal",
        n_components=10,
        layer_type="affine",
        n_bins=8,
        tail_bound=5.0,
        n_estimators=1,
        n_jobs=None,
        gaussian_weight="auto",
    ):
        super().__init__(
            n_flows=n_flows,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            batch_norm=batch_norm,
            order=order,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            log_scale_bound=log_scale_bound,
            max_grad_norm=max_grad_norm,
            device=device,
            dtype=dtype,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            compile=compile,
            init=init,
            base=base,
            n_components=n_components,
            layer_type=layer_type,
            n_bins=n_bins,
            tail_bound=tail_bound,
            n_estimators=n_estimators,
            n_jobs=n_jobs,
            gaussian_weight=gaussian_weight,
        )
        self.contamination = contamination

    def _fit(self, X, groups=None):
        X, val_index = super()._fit(X, groups)
        if self.contamination == "auto":
            rows = X if val_index is None else X[val_index]
            self.offset_ = float(np.percentile(self._log_density(rows), 100 * AUTO_FALSE_ALARM_RATE))
        else:
            self.offset_ = float(np.percentile(self._log_density(X), 100 * self.contamination))
        self.offset_ -= self._log_scale()  # X is standardised: score_samples adds this Jacobian
        return X, val_index

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Shifted log-density: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        check_is_fitted(self)
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Label rows as inliers (+1) or outliers (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, else +1.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)
