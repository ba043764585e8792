"""Probabilistic regression with a conditional Masked Autoregressive Flow."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ..nn.devices import DTYPES, private_random_state, seed_generator
from ._scaling import fit_standardisation, refuse_rows_beyond_reach, standardise
from ._base import BaseMAF
from ._linear_gaussian import LinearGaussianStart
from ._validation import check_n_samples, check_numeric_columns

# Rows of draws held at once by predict / predict_quantiles / sample.
_DRAW_ROWS = 1 << 16
# Ridge penalties of the Gaussian start (standardised scale), chosen by 5-fold CV.
class MAFRegressor(RegressorMixin, BaseMAF):
    """Probabilistic regressor: a conditional normalizing flow ``p(y | x)``.

    A Masked Autoregressive Flow models the targets given the features: the
    features enter each MADE as a context.  Both are standardised inside (and
    mapped back), as a ``TransformedTargetRegressor`` would.  Beyond a point
    prediction it gives the whole conditional distribution: ``log_prob(X, y)``
    (conditional log-density per row, in the targets' units), quantiles and
    intervals, and draws of ``y`` for each row of ``X``.  One target or
    several (modelled jointly).

    The default base is the MAF paper's MADE mixture of Gaussians
    (``base="made_mog"``): with one target it is a mixture density network
    under the flow, so ``y | x`` may be skewed or have several modes;
    ``predict`` then averages ``n_predict_samples`` draws per row and the
    quantiles are those of the draws (the same base noise for every row:
    repeated calls, and a row scored alone or with others, agree).
    With ``base="normal"``, one target and the affine MAF, ``y | x`` is
    Gaussian with a feature-dependent mean and scale, and ``predict`` and
    the quantiles are exact.  See the user guide for the measurements behind
    the default.

    Parameters
    ----------
    n_predict_samples : int, default=256
        Draws per row behind ``predict`` and the quantiles where they have
        no closed form (several targets).
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

    init : {"gaussian", "identity"}, default="gaussian"
        Where training starts.  "gaussian" puts a conditional affine layer
        first, set in closed form to the linear-Gaussian regression of the
        (standardised) targets on the (standardised) features: ridge
        coefficients (the penalty, ``ridge_penalty_``, of 1e-3 ... 1e4 with
        the highest 5-fold cross-validated likelihood), an intercept and the
        full covariance of the out-of-fold residuals.  Every MAF layer starts at the
        identity, so before the first step the model *is* that regression,
        and early stopping keeps it (refitted on all rows) unless training
        beats it on the validation rows by more than one standard error of
        the mean per-row gain.  "identity" starts at
        ``y | x ~ N(mean(y), cov(y))``.

    base : {"normal", "made_mog"}, default="made_mog"
        The base distribution.  "made_mog" is the MAF paper's MADE
        mixture of Gaussians ("MAF MoG"): each base variable given the
        earlier ones (and the context) is a mixture of ``n_components``
        Gaussians computed by a MADE of the same hidden sizes.  Sampling it
        takes one network pass per feature.

    n_components : int, default=10
        Mixture components per feature of the "made_mog" base.

    layer_type : {"auto", "affine", "spline", "affine_spline"}, default="affine"
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

    Attributes
    ----------
    n_targets_ : int
        Number of targets.

    ridge_penalty_ : float
        The ridge penalty of the Gaussian start (``init="gaussian"``).

    interval_scores_ : ndarray of shape (n_validation_rows,) or None
        With early stopping: the sorted conformal scores of the held-out
        rows behind :meth:`predict_interval`, ``|F(y | x) - 1/2|`` (with
        several targets the largest over the targets of their marginal
        CDFs' distance from 1/2); None without early stopping.
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

    See Also
    --------
    MAFClassifier : The conditional flow as a generative classifier.
    sklearn.linear_model.BayesianRidge : A linear-Gaussian regression with predictive spread.
    sklearn.ensemble.HistGradientBoostingRegressor : Quantile regression with ``loss="quantile"``.

    Notes
    -----
    ``score`` is R² of ``predict``, as for every scikit-learn regressor; the
    training objective (mean ``log p(y | x)`` of the standardised targets,
    nats) is in ``loss_curve_`` and ``validation_scores_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import MAFRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(500, 1))
    >>> y = X[:, 0] + 0.1 * (1 + X[:, 0] ** 2) * rng.normal(size=500)
    >>> reg = MAFRegressor(n_flows=2, hidden_layer_sizes=(32,), max_iter=30, random_state=0).fit(X, y)
    >>> reg.predict([[0.0], [1.5]]).shape
    (2,)
    >>> lower, upper = reg.predict_interval([[0.0], [1.5]], coverage=0.9)
    >>> bool(np.all(lower < upper))
    True
"""

    _parameter_constraints: dict = {
        **BaseMAF._parameter_constraints,
        "n_predict_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_predict_samples=256,
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
        init="gaussian",
        base="made_mog",
        n_components=10,
        layer_type="affine",
        n_bins=8,
        tail_bound=5.0,
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
        )
        self.n_predict_samples = n_predict_samples

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike):
        """Fit the conditional flow of ``y`` given ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features; at least 2 rows.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        Returns
        -------
        self : object
            The fitted regressor.
        """
        return self._fit_keeping_state(self._fit_targets, X, y)

    def _fit_targets(self, X, y):
        check_numeric_columns(X)
        warm = self._warm()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True, ensure_min_samples=2, reset=not warm)
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] == 0:
            raise ValueError("y has no target columns")
        if warm and y2.shape[1] != self.n_targets_:
            raise ValueError(f"warm_start=True needs the fitted model's {self.n_targets_} target(s), "
                             f"got {y2.shape[1]}")
        if not warm:  # a warm start keeps the scales the flow was trained in
            self._x_shift, self._x_scale = fit_standardisation(X)
            self._y_shift, self._y_scale = fit_standardisation(y2)
        self.n_targets_ = y2.shape[1]
        self._single_target = y.ndim == 1
        (targets, far_y), (features, far_x) = self._scaled_targets(y2), self._scaled_features(X)
        refuse_rows_beyond_reach(far_x | far_y, "X or y")
        _, val_index = self._train(targets, features,
                                   start=LinearGaussianStart() if self.init == "gaussian" else None)
        self.interval_scores_ = None
        if val_index is not None:
            # Split-conformal calibration on the held-out rows: how far each
            # one's model CDF values lie from the median (the farthest target's).
            cdf = self._cdf(features[val_index], targets[val_index])
            self.interval_scores_ = np.sort(np.abs(cdf - 0.5).max(axis=1))

    @torch.no_grad()
    def _cdf(self, context: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``(n_rows, n_targets)``: the model's conditional CDF of each
        (standardised) target, given the standardised features: exact for one
        target over a normal base with affine layers, else the share of
        ``n_predict_samples`` draws below it (each target's marginal)."""
        if self._closed_form():
            u, _ = self.flow_(self._to_tensor(targets), self._to_tensor(context))
            return ndtr(u.double().cpu().numpy()[:, :1])
        draws = self._draws(context, self.n_predict_samples, torch.Generator().manual_seed(0), common=True)
        y = (targets * self._y_scale + self._y_shift)[:, None, :]
        return (draws < y).mean(1) + 0.5 * (draws == y).mean(1)

    def _scaled_features(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised features and the rows beyond the model's range (see
        :func:`~skflow.estimators._scaling.standardise`)."""
        return standardise(X, self._x_shift, self._x_scale, self.dtype)

    def _scaled_targets(self, y2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return standardise(y2, self._y_shift, self._y_scale, self.dtype)

    # ------------------------------------------------------------ predict
    def _context(self, X) -> np.ndarray:
        context, far = self._scaled_features(self._validated(X))
        if far.any():
            raise ValueError(f"row {int(np.flatnonzero(far)[0])} of X lies too many standard deviations beyond "
                             "the training features for the model to predict there")
        return context

    def _closed_form(self) -> bool:
        # One target through monotone affine layers over a normal base: y | x is Gaussian.
        config = self._flow_config_
        return (self.n_targets_ == 1 and config.get("transform", "affine") == "affine"
                and config.get("base", "normal") == "normal")

    @torch.no_grad()
    def _inverse(self, u: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Targets (original units) from base points ``u``, one per row of ``context``."""
        out = self.flow_.inverse(self._to_tensor(u), self._to_tensor(context)).double().cpu().numpy()
        return out * self._y_scale + self._y_shift

    @torch.no_grad()
    def _draws(self, context: np.ndarray, n_draws: int, generator, common: bool = False) -> np.ndarray:
        """``(n_rows, n_draws, n_targets)`` draws of the targets, original units.

        With ``common`` every row uses the same noise (common random
        numbers): a row's draws do not depend on the rows around it, so
        averages over them are the same in any order or batch.
        """
        out = np.empty((len(context), n_draws, self.n_targets_))
        if n_draws == 0 or len(context) == 0:
            return out
        step = max(1, _DRAW_ROWS // n_draws)
        dtype = DTYPES[self.dtype]
        shared = self.flow_.base.draw_noise(n_draws, generator, dtype) if common else None
        for start in range(0, len(context), step):
            rows = context[start : start + step]
            block = self._to_tensor(np.repeat(rows, n_draws, axis=0))
            if common:
                noise = shared.repeat(len(rows), 1)
            else:
                noise = self.flow_.base.draw_noise(len(block), generator, dtype)
            draws = self.flow_.from_noise(noise, block).double().cpu().numpy()
            out[start : start + step] = (draws * self._y_scale + self._y_shift).reshape(-1, n_draws,
                                                                                       self.n_targets_)
        return out

    def _shape(self, a: np.ndarray) -> np.ndarray:
        """Drop the target axis (axis 1) of a single-target model fitted on a 1-D y."""
        return a[:, 0] if self._single_target else a

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Conditional mean of the targets, ``E[y | x]``.

        Exact for one target over a normal base (see the class notes);
        otherwise the mean of ``n_predict_samples`` draws per row (a fixed
        seed: repeated calls agree).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        context = self._context(X)
        if self._closed_form():
            mean = self._inverse(np.zeros((len(context), 1)), context)
        else:
            mean = self._draws(context, self.n_predict_samples, torch.Generator().manual_seed(0), common=True).mean(1)
        return self._shape(mean)

    def predict_quantiles(self, X: ArrayLike, quantiles=(0.05, 0.5, 0.95)) -> np.ndarray:
        """Conditional quantiles of each target.

        Exact for one target over a normal base (the flow is increasing, so
        the base's quantiles map to the targets'); otherwise marginal
        quantiles of ``n_predict_samples`` draws per row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in (0, 1), default=(0.05, 0.5, 0.95)

        Returns
        -------
        q : ndarray of shape (n_samples, n_quantiles) or (n_samples, n_targets, n_quantiles)
            One column per quantile (the target axis only for a 2-D ``y``).
        """
        q = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
        if q.ndim != 1 or not np.all((q > 0) & (q < 1)):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {quantiles!r}")
        context = self._context(X)
        if self._closed_form():
            out = np.stack([self._inverse(np.full((len(context), 1), ndtri(p)), context) for p in q], -1)
        else:
            draws = self._draws(context, self.n_predict_samples, torch.Generator().manual_seed(0), common=True)
            out = np.moveaxis(np.quantile(draws, q, axis=1), 0, -1)
        return self._shape(out)

    def predict_interval(self, X: ArrayLike, coverage: float = 0.9,
                         conformal: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Central prediction interval of each target.

        With early stopping, the interval is calibrated by split conformal
        prediction on the held-out validation rows (``interval_scores_``):
        each held-out row's score is how far its target's model CDF value
        ``F(y | x)`` lies from 1/2, and the interval is ``[F^{-1}(1/2 - q),
        F^{-1}(1/2 + q)]`` with ``q`` the ``ceil((n + 1) coverage)``-th
        smallest of the ``n`` scores (unbounded when that exceeds ``n``).
        If the held-out rows and new rows are exchangeable (drawn alike), a
        new row's target then falls inside with probability at least
        ``coverage``, however wrong the model's spread, up to the slight
        dependence early stopping adds by choosing the epoch on the same
        rows.  With several targets the intervals form a box that holds
        *every* target at once with that probability: a row's score is the
        largest over the targets of their marginal CDF values' distance from
        1/2, and each target's interval is its marginal ``[F_i^{-1}(1/2 -
        q), F_i^{-1}(1/2 + q)]``, so each is wider than that target's own
        interval of the same coverage.  Without early stopping, or with
        ``conformal=False``, each target's ends are the model's
        ``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` quantiles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        coverage : float in (0, 1), default=0.9
            Probability the interval holds.
        conformal : bool, default=True
            Use the conformal calibration where the fit made one.

        Returns
        -------
        lower, upper : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        if not isinstance(coverage, Real) or not 0 < coverage < 1:
            raise ValueError(f"coverage must lie strictly between 0 and 1, got {coverage!r}")
        check_is_fitted(self)
        scores = self.interval_scores_ if conformal else None
        if scores is None:
            q = self.predict_quantiles(X, [(1 - coverage) / 2, (1 + coverage) / 2])
            return q[..., 0], q[..., 1]
        rank = int(np.ceil((len(scores) + 1) * coverage))
        level = scores[rank - 1] if rank <= len(scores) else 0.5
        if level >= 0.5:  # too few held-out rows for this coverage: unbounded
            shape = self._shape(np.empty((len(self._context(X)), self.n_targets_))).shape
            return np.full(shape, -np.inf), np.full(shape, np.inf)
        q = self.predict_quantiles(X, [0.5 - level, 0.5 + level])
        return q[..., 0], q[..., 1]

    def sample(self, X: ArrayLike, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draws of the targets given each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        n_samples : int, default=1
            Draws per row.
        random_state : int, RandomState instance or None, default=None
            Seeds the base noise.

        Returns
        -------
        y : ndarray of shape (n_rows, n_samples) or (n_rows, n_samples, n_targets)
        """
        check_is_fitted(self)
        check_n_samples(n_samples)
        context = self._context(X)
        check_n_samples(len(context) * int(n_samples), self.n_targets_)
        draws = self._draws(context, int(n_samples), seed_generator(private_random_state(random_state)))
        return draws[..., 0] if self._single_target else draws

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """R² of ``predict(X)`` against ``y`` (scikit-learn's score for
        regressors; averaged over targets).  For the whole conditional
        distribution use ``log_prob(X, y).mean()``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        score : float
        """
        return float(r2_score(y, self.predict(X)))

    def log_prob(self, X: ArrayLike, y: ArrayLike) -> np.ndarray:
        """Conditional log-density ``log p(y | x)`` of each row, in the targets' units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        check_numeric_columns(X)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True, reset=False)
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] != self.n_targets_:
            raise ValueError(f"y has {y2.shape[1]} target column(s); the model was fitted on {self.n_targets_}")
        (targets, far_y), (features, far_x) = self._scaled_targets(y2), self._scaled_features(X)
        log_density = self._log_density(targets, features) - np.log(self._y_scale).sum()
        log_density[far_x | far_y] = -np.inf  # beyond the model's range: the density underflows
        return log_density
