"""Generative classification with a class-conditional Masked Autoregressive Flow."""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..nn.devices import private_random_state, seed_generator
from ._base import BaseMAF
from ._class_gaussians import (
    ClassGaussianStart,
    HeldOutLogLoss,
    _label_log_likelihood,
    best_class_gaussian_weight,
    class_gaussians,
)
from ._gaussian import gaussian_log_pdfs
from ._validation import check_n_samples, check_numeric_columns, warn_if_few_rows

class MAFClassifier(ClassifierMixin, BaseMAF):
    """Classifier by Bayes' rule over a class-conditional normalizing flow.

    One Masked Autoregressive Flow models ``p(x | class)`` for every class
    at once: the class enters each MADE as a one-hot context.  Class priors
    come from the training labels (or ``priors``), and Bayes' rule gives
    ``predict_proba``.  As a generative model it also gives the density of
    ``x`` itself: ``score_samples(X) = log sum_k p(k) p(x | k)``.  Fit it on
    any units: the features are standardised inside (``location_``, ``scale_``).

    Parameters
    ----------
    priors : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes, in the order of ``classes_``;
        None uses the class frequencies of the training labels.

    calibrate : bool, default=True
        Temper the class likelihoods in ``predict_proba``:
        ``p(k | x) ∝ p(k) p(x | k) ** (1 / temperature_)``, with
        ``temperature_`` fitted to minimise the log loss of the rows held out
        for early stopping (1, exact Bayes' rule, where that does not lower
        it by 1e-3 nats, or without early stopping).  Class densities in many
        dimensions are overconfident; tempering corrects the probabilities
        and leaves the densities (``score_samples``,
        ``predict_joint_log_proba``) exact.
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
        Where training starts.  "gaussian" puts a class-conditional affine
        layer first, set in closed form to one full-covariance Gaussian per
        class, with every MAF layer at the identity: before the first step the
        classifier *is* that (regularised) quadratic discriminant, and early
        stopping keeps it unless training lowers the validation log loss.
        Each class's covariance is shrunk towards the pooled within-class one,
        and that towards a multiple of the identity, by the amounts (from a
        5 x 5 grid, see ``covariance_shrinkage_``) with the lowest 5-fold
        cross-validated log loss of those Gaussians on the training rows
        (closed form; at most 100,000 rows).  With more than 256 features and
        a class with no more rows than features, only ``alpha = 1`` (the
        pooled covariance, as in linear discriminant analysis) is tried.  "identity" starts every layer
        at the identity.

    base : {"normal", "made_mog"}, default="normal"
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
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    class_prior_ : ndarray of shape (n_classes,)
        The prior probability of each class.

    temperature_ : float
        The likelihood temperature of ``predict_proba`` (see ``calibrate``).

    gaussian_weight_ : float
        With ``init="gaussian"``, early stopping, and training that beat the
        start: each class's density is ``w G_k(x) + (1 - w) flow_k(x)``, the
        start's class Gaussian ``G_k`` (refitted on all rows) mixed in with
        ``w`` among 0.2, 0.3, 0.5, 0.7, 0.9, 1 by the held-out rows' log loss
        (the Gaussians fitted without them).  At least 0.2: a flow trained on
        a few hundred rows can be confidently wrong where its few validation
        rows do not look.  0 otherwise (the flow alone).

    class_means_, class_covariances_ : ndarray
        The mixed-in class Gaussians (standardised units), when
        ``gaussian_weight_ > 0``.

    covariance_shrinkage_ : tuple
        ``(alpha, beta)`` of the Gaussian start (``init="gaussian"``): class
        covariances ``(1 - alpha) S_k + alpha P'`` with
        ``P' = (1 - beta) P + beta mean(diag(P)) I`` (``S_k`` the class's,
        ``P`` the pooled covariance, both of the training rows).
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

    location_ : ndarray of shape (n_features,)
        The training rows' column means.  The flow models the standardised
        rows ``(X - location_) / scale_`` and every log-density includes the
        Jacobian ``-log(scale_).sum()``, so the model is the same in any
        units (``log p(cX) = log p(X) - n_features log c``).

    scale_ : ndarray of shape (n_features,)
        The training rows' column standard deviations (1 for a constant column).

    See Also
    --------
    MAFDensity : The unconditional density estimator.
    MAFRegressor : A conditional flow of targets given features.
    sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis : One Gaussian per class.
    sklearn.naive_bayes.GaussianNB : Independent Gaussians per class.

    Notes
    -----
    ``score`` is the mean accuracy, as for every scikit-learn classifier.
    Training maximises the likelihood ``log p(x | y)`` (``loss_curve_`` holds
    its negative mean, nats); early stopping holds out a stratified
    ``validation_fraction`` of the rows and watches what the classifier is
    for, their log loss: ``validation_scores_`` and
    ``best_validation_score_`` hold the mean held-out ``log p(y | x)`` (minus
    the log loss, before tempering).  Class densities can keep improving
    while their posteriors grow overconfident; on small data sets the
    restored best is often the Gaussian start itself.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skflow import MAFClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), MAFClassifier(n_flows=2, max_iter=20, random_state=0))
    >>> clf.fit(X, y).predict_proba(X[:2]).round(3)
    array([[1., 0., 0.],
           [1., 0., 0.]])
"""

    _parameter_constraints: dict = {**BaseMAF._parameter_constraints, "priors": ["array-like", None],
                                    "calibrate": ["boolean"]}

    def __init__(
        self,
        *,
        priors=None,
        calibrate=True,
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
        base="normal",
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
        self.priors = priors
        self.calibrate = calibrate

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike):
        """Fit the class-conditional flow to ``X`` given the labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows; at least 2.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self : object
            The fitted classifier.
        """
        return self._fit_keeping_state(self._fit_labels, X, y)

    def _fit_labels(self, X, y):
        check_numeric_columns(X)
        warm = self._warm()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2,
                             reset=not warm)
        check_classification_targets(y)
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in y; "
                             f"got one class: {classes[0]!r}")
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError("warm_start=True needs the classes of the fitted model "
                             f"{self.classes_.tolist()}, got {classes.tolist()}")
        self.classes_ = classes
        self.class_prior_ = self._class_prior(np.bincount(labels, minlength=len(classes)))
        warn_if_few_rows(*X.shape)
        X = self._fit_standardised(X, self._warm())
        start = ClassGaussianStart(labels, len(classes)) if self.init == "gaussian" else None
        _, val_index = self._train(X, self._one_hot(labels, X.dtype), start=start, stratify=labels,
                                   validation_score=HeldOutLogLoss(self.class_prior_))
        self._set_class_gaussian_mixture(X, labels, val_index, warm)
        self.temperature_ = 1.0
        if self.calibrate and val_index is not None:
            self.temperature_ = self._fit_temperature(X[val_index], labels[val_index])

    def _set_class_gaussian_mixture(self, X, labels, val_index, warm: bool) -> None:
        """With a Gaussian start that training beat: mix each class's flow
        density with the start's class Gaussian, ``w G_k + (1 - w) flow_k``,
        ``w`` (``gaussian_weight_``) by the held-out rows' log loss under the
        flow and the Gaussians fitted without them."""
        self.gaussian_weight_ = 0.0
        for name in ("class_means_", "class_covariances_"):
            self.__dict__.pop(name, None)
        if self.init != "gaussian" or val_index is None or self.best_epoch_ == 0 or warm:
            return
        x = torch.from_numpy(np.require(X, np.float64, ["W"]))
        n_classes = len(self.classes_)
        train = np.setdiff1d(np.arange(len(X)), val_index)
        means, covs = class_gaussians(x, labels, train, n_classes, self.covariance_shrinkage_)
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        weight = best_class_gaussian_weight(self._class_log_likelihood(X[val_index]),
                                            gaussian_log_pdfs(X[val_index].astype(np.float64), means, covs),
                                            labels[val_index], log_prior)
        if weight > 0:
            self.class_means_, self.class_covariances_ = class_gaussians(x, labels, None, n_classes,
                                                                         self.covariance_shrinkage_)
        self.gaussian_weight_ = weight

    def _fit_temperature(self, X, labels) -> float:
        """The temperature that minimises the log loss of the held-out rows."""
        log_likelihood = self._class_log_likelihood(X)
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)

        def loss(log_t):
            return -float(_label_log_likelihood(log_likelihood / np.exp(log_t) + log_prior, labels).mean())

        # Only ever soften: sharpening (T < 1) fitted to a few held-out rows overfits them.
        found = minimize_scalar(loss, bounds=(0.0, math.log(1e4)), method="bounded")
        # Keep exact Bayes' rule unless the held-out rows clearly ask otherwise.
        return float(np.exp(found.x)) if found.fun < loss(0.0) - 1e-3 else 1.0

    def _class_prior(self, counts: np.ndarray) -> np.ndarray:
        """``priors`` checked against the class counts of ``y``, or the class frequencies."""
        frequencies = counts / counts.sum()
        if self.priors is None:
            return frequencies
        priors = np.asarray(self.priors, dtype=np.float64)
        if priors.shape != frequencies.shape:
            raise ValueError(f"priors must have one entry per class ({len(frequencies)}), "
                             f"got shape {priors.shape}")
        if not np.all(np.isfinite(priors)) or (priors < 0).any() or not np.isclose(priors.sum(), 1.0):
            raise ValueError(f"priors must be non-negative and sum to 1, got {priors.tolist()}")
        impossible = np.flatnonzero((priors == 0) & (frequencies > 0))
        if impossible.size:
            raise ValueError(f"priors gives class {self.classes_[impossible[0]].item()!r} probability 0, but y holds "
                             f"{int(counts[impossible[0]])} rows of it; give it a "
                             "positive prior or drop those rows")
        return priors

    def _one_hot(self, labels: np.ndarray, dtype) -> np.ndarray:
        return np.eye(len(self.classes_), dtype=dtype)[labels]


    # ------------------------------------------------------------ predict
    def _class_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        """``log p(x | k)`` for every standardised row and class, up to the
        standardisation's Jacobian (the same for every class)."""
        out = np.empty((X.shape[0], len(self.classes_)))
        for k in range(len(self.classes_)):
            # One context row, broadcast over the rows by the flow.
            out[:, k] = self._log_density(X, self._one_hot(np.array([k]), X.dtype))
        weight = getattr(self, "gaussian_weight_", 0.0)
        if weight > 0:
            gaussian = gaussian_log_pdfs(X.astype(np.float64), self.class_means_, self.class_covariances_)
            with np.errstate(divide="ignore"):
                out = np.logaddexp(np.log(weight) + gaussian, np.log1p(-weight) + out)
        return out

    def _joint_log_likelihood(self, X, tempered=False) -> np.ndarray:
        """``log p(k) + log p(x | k)`` for every row and class (the likelihood
        divided by ``temperature_`` when ``tempered``)."""
        check_is_fitted(self)
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        temperature = self.temperature_ if tempered else 1.0
        Z, outside = self._standardised(self._validated(X))
        joint = (self._class_log_likelihood(Z) - self._log_scale()) / temperature + log_prior
        joint[outside] = -np.inf  # beyond every class's range: p(x | k) underflows for every k
        return joint

    def _posterior_log(self, joint: np.ndarray) -> np.ndarray:
        """Bayes' rule on joint log-probabilities; a row that no class gives
        a positive density (every entry -inf) keeps the class priors."""
        norm = logsumexp(joint, axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        nowhere = ~np.isfinite(norm[:, 0])
        out = np.empty_like(joint)
        out[~nowhere] = joint[~nowhere] - norm[~nowhere]
        out[nowhere] = log_prior
        return out

    def predict_joint_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Joint log-probability ``log p(x, k) = log p(k) + log p(x | k)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        joint_log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._joint_log_likelihood(X)

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log of the posterior class probabilities (Bayes' rule, tempered by ``temperature_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return self._posterior_log(self._joint_log_likelihood(X, tempered=True))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Posterior class probabilities (Bayes' rule, tempered by ``temperature_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns in the order of ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        best = self._posterior_log(self._joint_log_likelihood(X, tempered=True)).argmax(1)
        return self.classes_[best]

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (scikit-learn's score for
        classifiers); for probabilities use ``scoring="neg_log_loss"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        score : float
        """
        return float(accuracy_score(y, self.predict(X)))

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of each row under the model, ``log sum_k p(k) p(x | k)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        return logsumexp(self._joint_log_likelihood(X), axis=1)

    def sample(self, n_samples: int = 1, random_state=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows and their labels from the fitted model.

        A class is drawn from ``class_prior_`` for each row, then the row from
        the flow given that class.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the labels and the base noise.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        check_n_samples(n_samples, self.n_features_in_ + 1)
        rng = private_random_state(random_state)
        labels = rng.choice(len(self.classes_), size=int(n_samples), p=self.class_prior_)
        X = self._draw(int(n_samples), seed_generator(rng), self._one_hot(labels, self.dtype))
        return X * self.scale_ + self.location_, self.classes_[labels]
