"""Outlier detection with a Masked Autoregressive Flow."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import OutlierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._unconditional import UnconditionalMAF

#: Share of new normal rows that ``contamination="auto"`` flags.
AUTO_FALSE_ALARM_RATE = 0.01


class MAFOutlierDetector(OutlierMixin, UnconditionalMAF):
    """Outlier detection by the log-density of a Masked Autoregressive Flow.

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
    n_flows : int, default=5
        Number of MAF layers (each one a MADE network).

    hidden_layer_sizes : tuple of int, default=(100, 100)
        Width of each hidden layer of every MADE.  Layers narrower than
        ``n_features - 1`` cannot carry every dependency and trigger a
        :class:`~skflow.nn.MADEWidthWarning`.

    activation : {"tanh", "relu", "elu", "gelu", "silu"}, default="tanh"
        Hidden-unit non-linearity.  The MAF paper used tanh for GAS and relu
        for its other UCI data sets.

    batch_norm : bool, default=False
        Follow each MAF layer by a batch-normalisation bijector, as the MAF
        paper did.  Its statistics are recomputed on the training set after
        fitting (on a random 1,048,576 of its rows when it has more), so
        scores do not depend on the last mini-batches.  See the user guide
        on hyper-parameters for when it helps.

    order : {"reverse", "identity", "random"} or list of permutations, default="reverse"
        Autoregressive order of each layer: "reverse" alternates the column
        order and its reverse (the MAF paper), "random" draws one permutation
        per layer, or give ``n_flows`` permutations of ``range(n_features)``.

    learning_rate : {"constant", "adaptive"}, default="constant"
        Learning-rate schedule (as in :class:`~sklearn.neural_network.MLPRegressor`).
        "constant" keeps ``learning_rate_init``.  "adaptive" halves the rate
        each time the validation log-likelihood (the training one without
        ``early_stopping``) has not improved by ``tol`` for
        ``max(1, n_iter_no_change // 3)`` epochs in a row; use it with a
        larger ``n_iter_no_change`` where the validation score is noisy.

    learning_rate_init : float, default=1e-3
        Initial Adam learning rate (for batches of 256 rows when
        ``batch_size="auto"``, see there).

    weight_decay : float, default=0.0
        L2 penalty on all weights (Adam's ``weight_decay``; the MAF paper's
        GAS settings use 1e-6).

    batch_size : int or "auto", default="auto"
        Mini-batch size; clipped to the number of training rows.  "auto"
        uses 256 rows, and on large data sets the largest batch up to 1024
        that still makes 1024 steps per epoch (``n_train // 1024``, so from
        262,144 training rows on), with the learning rate scaled by
        ``sqrt(batch_size_ / 256)`` (the square-root rule for Adam).  An
        integer is used as given, with ``learning_rate_init`` unscaled.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training rows).

    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, stop when their mean
        log-likelihood has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the best weights.  When False, training stops once
        the training loss stalls in the same way.

    validation_fraction : float, default=0.1
        Share of rows held out for early stopping (at least one row).

    n_iter_no_change : int or "auto", default="auto"
        Patience, in epochs.  "auto" waits 10 epochs and at least 100
        optimiser steps (on a few hundred rows an epoch is a single step).

    tol : float, default=1e-4
        Smallest improvement of the mean log-likelihood (nats) that counts.

    log_scale_bound : float or None, default=5.0
        The log-scale of each "affine" (and "affine_spline") layer is
        soft-clamped to ``(-bound, bound)`` with ``bound * tanh(a / bound)``,
        which keeps training stable on data with near-constant or duplicated
        columns.  None disables the bound.

    max_grad_norm : float or None, default=10.0
        Clip the global gradient norm at this value; None disables clipping.

    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
        Inputs and outputs are numpy arrays whatever the device.

    dtype : {"float32", "float64"}, default="float32"
        Precision of the torch model.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split and shuffling.  The
        global numpy and torch random states are never changed.  With an int,
        fitting on the CPU is reproducible (same machine, same torch thread
        count): the fit then keeps torch's thread count (one thread for
        small models) instead of choosing it by timing, since the rounding
        of the matrix products depends on it.

    verbose : int, default=0
        When > 0, print one line per epoch (train and validation
        log-likelihood, time) and progress lines for scoring or sampling more
        than 65,536 rows.

    warm_start : bool, default=False
        Continue training the fitted flow on the next call to ``fit``
        (the architecture parameters must be unchanged).

    init : {"gaussian_mixture", "gaussian", "identity"}, default="gaussian_mixture"
        Where training starts.  "gaussian" puts a dense lower-triangular
        affine layer first, set in closed form to whiten the full-covariance
        Gaussian of the training rows, its covariance shrunk towards a
        multiple of the identity by the amount with the best 5-fold
        cross-validated log-likelihood (``covariance_shrinkage_``); every MAF
        layer starts at the identity, so before the first step the model *is*
        that Gaussian.  With early stopping, training must then beat it on the
        validation rows by more than one standard error of the mean per-row
        gain, or the Gaussian is kept (refitted on all rows, an ensemble
        member's on its bootstrap sample; ``best_epoch_``
        is 0): on small data the model is never worse than a Gaussian.
        "gaussian_mixture" starts from the best classical mixture instead:
        after the same whitening layer, scikit-learn ``GaussianMixture``
        candidates (2, 4 or 8 components, full or diagonal covariances, fitted
        by EM; more components of a type only while they score better) and
        the single Gaussian are compared by 3-fold cross-validated
        log-likelihood on the training rows (at most 5,000 of them), and a
        winning mixture becomes the
        flow's base distribution (``start_mixture_``), so that before the
        first step the model *is* that mixture, kept unless training beats
        it as above; with a ``base`` other than "normal" it is "gaussian".
        "identity" starts every layer at the identity (a standard normal; the
        MAF paper's start).

    base : {"normal", "made_mog"}, default="normal"
        The base distribution.  "made_mog" is the MAF paper's MADE
        mixture of Gaussians ("MAF MoG"): each base variable given the
        earlier ones (and the context) is a mixture of ``n_components``
        Gaussians computed by a MADE of the same hidden sizes.  Sampling it
        takes one network pass per feature.

    n_components : int, default=10
        Mixture components per feature of the "made_mog" base.

    layer_type : {"affine", "spline", "affine_spline"}, default="affine"
        The autoregressive layers: "affine" (the MAF layer); "spline", a
        monotone rational-quadratic spline per feature (Durkan et al. 2019,
        "Neural Spline Flows") on ``[-tail_bound, tail_bound]`` with
        ``n_bins`` bins and the identity outside; or "affine_spline", the
        spline after an autoregressive shift and scale of each feature (the
        MAF layer's), which can move values from beyond ``tail_bound`` into
        the spline's interval.  Prefer "affine_spline" to "spline" on data
        with heavy-tailed columns.  The spline layers are more flexible, and
        slower per epoch, than "affine" (two to three times at 8 features).

    n_bins : int, default=8
        Bins of each spline (spline layers only).

    tail_bound : float, default=5.0
        Half-width of the interval the splines act on, in the units the
        layers see (spline layers only); outside it they are the identity.  With
        ``init="gaussian"`` those units are whitened; 5.0 also reaches the
        heavy tails that real columns have beyond 3 standard deviations.

    compile : bool, default=False
        Train through ``torch.compile`` of the reference modules instead of
        skflow's hand-written fused pass (compiling takes tens of seconds).
        Falls back to plain PyTorch with a warning where compilation is
        unavailable.

    n_estimators : int, default=1
        Number of flows.  With more than one, each is trained on a bootstrap
        sample of the training rows (all validated on the same held-out rows)
        and the model is their equal-weight mixture: ``score_samples`` is the
        log-mean-exp of their log-densities and ``sample`` draws each row from
        one of them.  The per-fit attributes ``n_iter_``, ``best_epoch_``,
        ``covariance_shrinkage_`` (arrays), ``loss_curve_`` and
        ``validation_scores_`` (lists) then hold one entry per flow, and
        ``best_validation_score_`` is the mixture's.

    n_jobs : int or None, default=None
        Number of processes that train the ``n_estimators`` flows in parallel
        (:class:`joblib.Parallel` semantics: None is 1 unless in a
        :func:`joblib.parallel_backend` context, -1 is every CPU).

    gaussian_weight : "auto" or float in [0, 1], default="auto"
        The model is the mixture ``w N(x) + (1 - w) flow(x)`` of the flow and
        the Gaussian of the training rows (its covariance shrunk as the
        Gaussian start's).  ``"auto"`` picks ``w`` among 0, 0.05, ..., 1 by
        the log-likelihood of the early-stopping validation rows, under the
        flow and the Gaussian fitted without them: the largest ``w`` within
        three standard errors of the best, so that the flow's detail must
        clearly pay on held-out rows before it shapes the scores; it is 0
        (the flow alone) without a Gaussian start (``init="gaussian"`` or
        ``"gaussian_mixture"``) and early stopping, with
        ``n_estimators > 1``, in a warm start, and when training did not beat
        the Gaussian start (the flow is then that Gaussian).  Unlike
        :class:`MAFDensity`, no floor: the flow's own tails rank far rows.
        A float fixes ``w`` (0: the flow alone).

    dequantize : bool, default=True
        Columns recorded on a grid (whole millimetres, integer counts, one
        decimal; :func:`skflow.preprocessing.grid_steps`, steps in
        ``grid_steps_``) get uniform noise of one grid step before training,
        so that the flow learns a density rather than spikes on the grid
        values.  Scores are then the density of that smoothed variable at
        ``x``: the probability of the grid cell around a grid value ``x`` is
        about ``exp(score_samples(x)) * prod(grid_steps_[grid_steps_ > 0])``
        (in the data's units).  False trains on the values as they are.

    fdr : float in (0, 1) or None, default=None
        With a float, :meth:`predict` flags rows by the Benjamini-Hochberg
        procedure on their conformal :meth:`p_values`, so that at most this
        share of the rows it flags in one call are normal, in expectation;
        None flags by ``offset_``.

    Attributes
    ----------
    offset_ : float
        Log-density threshold: ``decision_function = score_samples - offset_``.

    calibration_scores_ : ndarray of shape (n_calibration_rows,) or None
        Sorted log-densities (data units) of the rows held out for early
        stopping, or of the rows given to :meth:`calibrate`: the reference of
        :meth:`p_values`; None without early stopping.
    flow_ : skflow.nn.Flow
        The fitted torch module (in eval mode, on ``device_``).

    device_ : torch.device
        The device the model lives on.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when ``X`` has string column names.

    n_iter_ : int
        Number of epochs run (in total, over warm starts).

    best_epoch_ : int
        The epoch (counted as ``n_iter_`` is) whose weights the model kept:
        the best validation epoch with early stopping (0, the start, when none
        improved on it or, with ``init="gaussian"``, when the gain was not
        significant), else the last one.

    batch_size_ : int
        The mini-batch size the last fit used (see ``batch_size="auto"``).

    loss_curve_ : list of float
        Mean training negative log-likelihood per epoch (nats of the
        standardised rows the flow is trained on, see ``scale_``).

    validation_scores_ : list of float or None
        Mean validation log-likelihood per epoch (standardised rows, as
        ``loss_curve_``); None without early stopping.

    best_validation_score_ : float or None
        Best validation log-likelihood (standardised rows, as
        ``loss_curve_``); the restored weights reach it (when the Gaussian
        start is kept, its score).

    gaussian_weight_ : float
        The Gaussian's weight ``w`` in the fitted mixture (see
        ``gaussian_weight``); 0 means the flow alone.

    gaussian_mean_ : ndarray of shape (n_features,)
        The Gaussian's mean (only when ``gaussian_weight_ > 0``), of the
        standardised rows ``(X - location_) / scale_``.

    gaussian_covariance_ : ndarray of shape (n_features, n_features)
        The Gaussian's covariance (only when ``gaussian_weight_ > 0``), of
        the standardised rows.

    location_ : ndarray of shape (n_features,)
        The training rows' column means.  The flow models the standardised
        rows ``(X - location_) / scale_`` and every log-density includes the
        Jacobian ``-log(scale_).sum()``, so the model is the same in any
        units (``log p(cX) = log p(X) - n_features log c``).

    scale_ : ndarray of shape (n_features,)
        The training rows' column standard deviations (1 for a constant column).

    covariance_shrinkage_ : float
        With ``init="gaussian"`` or ``"gaussian_mixture"``: the share of the
        start's covariance moved onto a multiple of the identity, chosen by
        cross-validation.

    start_mixture_ : tuple of (int, str)
        With ``init="gaussian_mixture"``: the start's number of components
        and covariance type (``(1, "full")``: the single Gaussian).

    start_mixture_scores_ : dict
        With ``init="gaussian_mixture"``: each candidate's cross-validated
        mean log-likelihood (whitened training rows), by ``"components
        covariance_type"``; candidates not tried (too few rows per
        parameter, or more components after fewer did not help) are absent,
        and it is empty where the rows were too few for any choice.

    grid_steps_ : ndarray of shape (n_features,)
        The grid step of each column that was dequantised, 0 for the others.

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
    _gaussian_weight_floor = 0.0

    _parameter_constraints: dict = {
        **UnconditionalMAF._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "fdr": [Interval(Real, 0, 1, closed="neither"), None],
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
        n_iter_no_change="auto",
        tol=1e-4,
        log_scale_bound=5.0,
        max_grad_norm=10.0,
        device="auto",
        dtype="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
        compile=False,
        init="gaussian_mixture",
        base="normal",
        n_components=10,
        layer_type="affine",
        n_bins=8,
        tail_bound=5.0,
        n_estimators=1,
        n_jobs=None,
        gaussian_weight="auto",
        dequantize=True,
        fdr=None,
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
            dequantize=dequantize,
        )
        self.contamination = contamination
        self.fdr = fdr

    def _fit(self, X, groups=None):
        X, val_index = super()._fit(X, groups)
        if self.contamination == "auto":
            rows = X if val_index is None else X[val_index]
            self.offset_ = float(np.percentile(self._log_density(rows), 100 * AUTO_FALSE_ALARM_RATE))
        else:
            self.offset_ = float(np.percentile(self._log_density(X), 100 * self.contamination))
        self.offset_ -= self._log_scale()  # X is standardised: score_samples adds this Jacobian
        self.calibration_scores_ = None
        if val_index is not None:  # rows the flow did not train on: conformal calibration
            self.calibration_scores_ = np.sort(self._log_density(X[val_index]) - self._log_scale())
        return X, val_index

    def calibrate(self, X: ArrayLike):
        """Replace the calibration rows behind :meth:`p_values` by ``X``.

        Pass normal rows the model was not fitted on (and that look like the
        rows it will judge); their scores replace ``calibration_scores_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        self : object
        """
        scores = self.score_samples(X)
        if len(scores) == 0:
            raise ValueError("calibrate needs at least one row")
        self.calibration_scores_ = np.sort(scores)
        return self

    def p_values(self, X: ArrayLike) -> np.ndarray:
        """Conformal p-value of each row: small for outliers.

        ``p = (1 + #{calibration scores <= s}) / (n + 1)`` for a row of
        log-density ``s`` and the ``n`` calibration rows' scores
        (``calibration_scores_``: the early-stopping rows, which the flow
        did not train on, or those of :meth:`calibrate`).  If the
        calibration rows and a new normal row are exchangeable (drawn
        alike), ``P(p <= alpha) <= alpha`` for every ``alpha``, whatever
        the model: flagging ``p <= alpha`` has a false-alarm rate of at most
        ``alpha``.  (Early stopping chose the epoch on the same rows, which
        adds a slight dependence; :meth:`calibrate` with fresh rows removes
        it.)

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        p : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        calibration = self.calibration_scores_
        if calibration is None:
            raise ValueError("p_values needs calibration rows: fit with early_stopping=True, or call calibrate")
        scores = self.score_samples(X)
        return (1.0 + np.searchsorted(calibration, scores, side="right")) / (len(calibration) + 1.0)

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

        By ``offset_`` (``contamination``), or, with ``fdr`` set, by the
        Benjamini-Hochberg procedure on the rows' :meth:`p_values`: the
        rows of ``X`` flagged together then hold at most a share ``fdr`` of
        normal rows in expectation (the false discovery rate), under the
        exchangeability :meth:`p_values` assumes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 for outliers, +1 for inliers.
        """
        if self.fdr is None:
            return np.where(self.decision_function(X) < 0, -1, 1)
        p = self.p_values(X)
        n = len(p)
        labels = np.ones(n, dtype=int)
        if n == 0:
            return labels
        order = np.argsort(p, kind="stable")
        passed = np.flatnonzero(p[order] <= self.fdr * np.arange(1, n + 1) / n)
        if len(passed):
            labels[order[: passed[-1] + 1]] = -1
        return labels
