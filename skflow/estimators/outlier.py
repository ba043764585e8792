"""Outlier detection with a Masked Autoregressive Flow."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import OutlierMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._background import fitted_background
from ._conformal import ConformalOutlierMixin, calibration_rows, outlier_offset, sorted_calibration
from ._unconditional import UnconditionalMAF


class MAFOutlierDetector(ConformalOutlierMixin, OutlierMixin, UnconditionalMAF):
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
        optimistic): of the calibration rows (``calibration_fraction``),
        else of the early-stopping rows, else of the training rows.
    n_flows : int, default=5
        Number of MAF layers (each one a MADE network).

    hidden_layer_sizes : tuple of int, default=(100, 100)
        Width of each hidden layer of every MADE.  Layers narrower than
        ``n_features - 1`` cannot carry every dependency and trigger a
        :class:`~skflow.nn.MADEWidthWarning`.

    activation : {"auto", "tanh", "relu", "elu", "gelu", "silu"}, default="auto"
        Hidden-unit non-linearity.  "auto" is relu on more than 10,000
        rows and tanh on fewer (``activation_`` records the choice): the MAF
        paper used tanh for GAS and relu for its other UCI data sets.

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

    learning_rate : {"constant", "adaptive", "cosine"}, default="constant"
        Learning-rate schedule (as in :class:`~sklearn.neural_network.MLPRegressor`).
        "constant" keeps ``learning_rate_init``.  "adaptive" halves the rate
        each time the validation log-likelihood (the training one without
        ``early_stopping``) has not improved by ``tol`` for
        ``max(1, n_iter_no_change // 3)`` epochs in a row; use it with a
        larger ``n_iter_no_change`` where the validation score is noisy.
        "cosine" lowers it after every step along half a cosine to zero at
        the end of the budget: ``max_time`` where it is set, else the steps
        of ``max_iter`` epochs (early stopping may end training sooner).

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

    max_iter : int or "auto", default="auto"
        Maximum number of epochs (passes over the training rows).  "auto"
        allows 200 epochs, and more where those hold fewer than 2,000
        optimiser steps (small data: on a few hundred rows an epoch is a
        single step), so that early stopping, not the limit, ends training.

    max_time : float or None, default=None
        Seconds training may run: once they have passed, the epoch under
        way ends after its current step, is validated, and training stops
        (the best weights are kept as with early stopping).  Only training
        counts, not the start's closed-form fit before it nor what follows
        it (the mixture with the Gaussian, calibration), and a second run
        within the fit (a retry at a lower rate, or from a second start)
        has what is left.  A timed fit depends on the machine's speed, so
        ``random_state`` no longer fixes the model.  None: no time limit.

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

    average_decay : float in [0, 1) or None, default=0.999
        Polyak averaging: early stopping scores, keeps and returns an
        exponential moving average of the weights over the optimiser steps
        instead of the weights as trained (after step ``t`` the average
        moves towards them by ``1 - min(average_decay, (1 + t) / (10 +
        t))``, so that it spans about the last tenth of the steps until it
        spans about ``1 / (1 - average_decay)`` of them).  It smooths the
        step-to-step noise of the weights (see the user guide on
        hyper-parameters).  None (or 0): the weights as trained.

    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
        Inputs and outputs are numpy arrays whatever the device.

    dtype : {"float32", "float64"}, default="float32"
        Precision of the torch model.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split and shuffling.  The
        global numpy and torch random states are never changed.  With an int,
        fitting on the CPU is reproducible (same machine, same torch thread
        count): the fit then takes its thread count from the size of a step
        alone (one thread up to mid-sized models, else torch's count)
        instead of choosing it by timing, since the rounding of the matrix
        products depends on it.

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
        scikit-learn ``GaussianMixture`` candidates (2, 4 or 8 components;
        full covariances, diagonal ones along the columns, or diagonal ones
        along the axes of the whitened Gaussian; fitted by EM to the rows
        centred and scaled, or whitened; more components of a type only
        while they score better) and the single Gaussian are compared by
        3-fold cross-validated log-likelihood on the training rows (at most
        5,000 of them), and a winning mixture becomes the flow's base
        distribution (``start_mixture_``) behind a first layer that whitens
        (or, for diagonal components along the columns, centres and
        scales), so that before the
        first step the model *is* that mixture, kept unless training beats
        it as above; with a ``base`` other than "normal" it is "gaussian".
        On more than 3,000 rows the flow starts at the identity: with that
        many rows it learns the data's shape from there faster than from a
        mixture base.  The mixture start is then fitted to the same
        training rows and, if it scores the validation rows above the
        trained flow (columns that are linear functions of others, say),
        the flow is trained again from it and kept (``init_`` records the
        start of the flow kept: "identity" or "gaussian_mixture"; an
        ensemble's members, ``n_estimators > 1``, start at the identity).
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

    layer_type : {"auto", "affine", "spline", "affine_spline"}, default="auto"
        The autoregressive layers: "affine" (the MAF layer); "spline", a
        monotone rational-quadratic spline per feature (Durkan et al. 2019,
        "Neural Spline Flows") on ``[-tail_bound, tail_bound]`` with
        ``n_bins`` bins and the identity outside; or "affine_spline", the
        spline after an autoregressive shift and scale of each feature (the
        MAF layer's), which can move values from beyond ``tail_bound`` into
        the spline's interval.  Prefer "affine_spline" to "spline" on data
        with heavy-tailed columns.  The spline layers are more flexible, and
        slower per epoch, than "affine" (two to three times at 8 features).
        ``layer_type_`` records the choice of "auto": for data with at most
        10 features "spline" behind a Gaussian start's first layer, and
        "affine_spline" where the flow starts at the identity (values
        beyond ``tail_bound`` are left where they are by a spline alone,
        the shift and scale before it can bring them in); "affine" above
        10 features (the rule of the hyper-parameter guide, from
        ``benchmarks/small_data.py`` and ``benchmarks/large_data_rule.py``).

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
        flow and the Gaussian fitted without them: the largest ``w`` whose
        mean is within one standard error of the best ``w``'s (the standard
        error of that mean over the rows), so that the flow's detail
        must clearly pay on held-out rows before it shapes the scores.  A
        mixture start that training did not beat is weighed against the
        Gaussian in the same way.  ``w`` is 0 (the flow alone) without a
        Gaussian start (``init="gaussian"`` or ``"gaussian_mixture"``) and
        early stopping, with ``n_estimators > 1``, in a warm start, and when
        the model kept is the start's single Gaussian.  Unlike
        :class:`MAFDensity`, no floor and no defensive Student t: the flow's own
        tails rank far rows.
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

    calibration_fraction : float in [0, 0.5], default=0.1
        Share of the rows (whole groups when ``fit`` gets ``groups``) held
        out of training and of early stopping alike: their scores are the
        reference of :meth:`p_values` (``calibration_scores_``) and, with
        ``contamination="auto"``, set ``offset_``.  Rows that no choice of
        the fit has seen are what makes the p-values' guarantee exact.
        No rows are held out where fewer than one (or fewer than 3
        groups) would be, nor with 0: then :meth:`calibrate` before
        :meth:`p_values`.

    background : estimator or None, default=None
        A density of what else a row could be (the other words, not the
        training rows' word; the other machines), for likelihood-ratio
        scoring: ``score_samples`` becomes the flow's log-density minus the
        background's, which discounts what makes rows of any kind likely
        (silence, smooth or simple inputs) and keeps what makes them like
        the training rows.  Anything with
        ``fit`` and ``score_samples`` on the same columns: with
        ``X_background`` given to :meth:`fit` it is cloned and fitted to
        those rows, else it must be fitted already (in a grid search, wrap
        it in :class:`sklearn.frozen.FrozenEstimator` so that cloning keeps
        it fitted).  None: no background, unless ``X_background`` is given,
        then a :class:`~skflow.GaussianDensity` of those rows.

    Attributes
    ----------
    offset_ : float
        Score threshold: ``decision_function = score_samples - offset_``.

    calibration_scores_ : ndarray of shape (n_calibration_rows,) or None
        Sorted :meth:`score_samples` of the calibration rows
        (``calibration_fraction``), or of the rows given to
        :meth:`calibrate`: the reference of :meth:`p_values`; None when no
        rows were held out.

    background_ : estimator or None
        The fitted background of the likelihood ratio (the ``background``
        itself when it came fitted), or None.
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

    layer_type_ : str
        The layer type built (``layer_type``, or what "auto" chose).

    activation_ : str
        The hidden units' non-linearity (``activation``, or what "auto" chose).

    init_ : str
        The start made: ``init``, or "identity" where ``init="gaussian_mixture"``
        met more than 3,000 rows.

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
        and covariance type, "full", "diag" (along the columns) or
        "whitened_diag" (``(1, "full")``: the single Gaussian).

    start_mixture_scores_ : dict
        With ``init="gaussian_mixture"``: each candidate's cross-validated
        mean log-likelihood (training rows centred and scaled), by ``"components
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
    # days): a Gaussian-heavier mixture ranks them better (benchmarks/novelty.py).
    _gaussian_weight_caution = 1.0
    _weigh_a_kept_mixture_start = True
    _gaussian_weight_floor = 0.0
    _defensive_weight = 0.0

    _parameter_constraints: dict = {
        **UnconditionalMAF._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "fdr": [Interval(Real, 0, 1, closed="neither"), None],
        "background": [HasMethods(["fit", "score_samples"]), None],
        "calibration_fraction": [Interval(Real, 0, 0.5, closed="both")],
    }

    def __init__(
        self,
        *,
        contamination="auto",
        n_flows=5,
        hidden_layer_sizes=(100, 100),
        activation="auto",
        batch_norm=False,
        order="reverse",
        learning_rate="constant",
        learning_rate_init=1e-3,
        weight_decay=0.0,
        batch_size="auto",
        max_iter="auto",
        max_time=None,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        log_scale_bound=5.0,
        max_grad_norm=10.0,
        average_decay=0.999,
        device="auto",
        dtype="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
        compile=False,
        init="gaussian_mixture",
        base="normal",
        n_components=10,
        layer_type="auto",
        n_bins=8,
        tail_bound=5.0,
        n_estimators=1,
        n_jobs=None,
        gaussian_weight="auto",
        dequantize=True,
        fdr=None,
        background=None,
        calibration_fraction=0.1,
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
            max_time=max_time,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            log_scale_bound=log_scale_bound,
            max_grad_norm=max_grad_norm,
            average_decay=average_decay,
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
        self.background = background
        self.calibration_fraction = calibration_fraction

    @_fit_context(prefer_skip_nested_validation=False)  # the background's own fit validates its parameters
    def fit(self, X: ArrayLike, y: None = None, groups: ArrayLike | None = None, X_background: ArrayLike | None = None):
        """Fit the flow to ``X`` (and the background to ``X_background``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (normal, or mostly normal); at least 2.
        y : None
            Ignored, present for API consistency.
        groups : array-like of shape (n_samples,), default=None
            The source of each row; with early stopping, the validation rows
            are then whole groups (see :meth:`MAFDensity.fit`).
        X_background : array-like of shape (n_background, n_features), default=None
            Generic rows for the background of a likelihood ratio (see
            ``background``).  In a pipeline, pass rows already transformed
            by the steps before the detector.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit_keeping_state(self._fit, X, groups, False, X_background)

    def _fit(self, X, groups=None, partial=False, X_background=None):
        if partial and hasattr(self, "flow_"):  # partial_fit continues: the background stays
            background = self.background_
        else:  # before the flow: a bad background fails fast
            background = fitted_background(self.background, X_background, self.random_state)
        n_background = getattr(background, "n_features_in_", None)
        if n_background is not None and n_background != np.shape(X)[-1]:
            raise ValueError(f"the background scores {n_background} columns, X has {np.shape(X)[-1]}")
        Z, val_index, held = super()._fit(X, groups, partial, hold_out=self._calibration_rows)
        self.background_ = background
        scores = self._standardised_scores(Z)
        calibration = None if held is None else self._scores(held)  # as new rows are: not dequantised
        new_rows = calibration if calibration is not None else scores if val_index is None else scores[val_index]
        self.offset_ = outlier_offset(self.contamination, scores if calibration is None else np.r_[scores, calibration],
                                      new_rows)
        self.calibration_scores_ = None if calibration is None else sorted_calibration(calibration)
        return Z, val_index

    def _calibration_rows(self, n, groups):
        return calibration_rows(n, groups, self.calibration_fraction, self.random_state)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """:meth:`score_samples` of validated rows."""
        Z, outside = self._standardised(X)
        scores = self._standardised_scores(Z, X)
        scores[outside] = -np.inf
        return scores

    def _standardised_scores(self, Z: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """:meth:`score_samples` of rows already standardised, ``Z = (X - location_) / scale_``
        (``X``, for the background, is rebuilt from ``Z`` when not given)."""
        scores = self._log_density(Z) - self._log_scale()
        if getattr(self, "background_", None) is not None:  # (files saved before backgrounds existed)
            flow = scores
            scores = flow - self._background_log_density(Z * self.scale_ + self.location_ if X is None else X)
            scores[np.isneginf(flow)] = -np.inf
        return scores

    def _background_log_density(self, X: np.ndarray) -> np.ndarray:
        names = getattr(self.background_, "feature_names_in_", None)
        if names is not None:  # the background was fitted on a DataFrame: hand it one
            import pandas as pd

            X = pd.DataFrame(X, columns=names)
        return np.asarray(self.background_.score_samples(X), dtype=np.float64)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of each row (minus the background's, with a background).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,), dtype float64
            The flow's natural-log density of each row; with ``background_``,
            the log-likelihood ratio ``log p(x) - log p_background(x)``.
            Higher is more normal; ``-inf`` for rows beyond the model's
            range.
        """
        return self._scores(self._validated(X))

