"""Generative classification with a class-conditional Masked Autoregressive Flow."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..nn.devices import seed_generator
from ._base import (FLOW_ATTRIBUTES_DOC, BaseMAF, _gaussian_of, check_n_samples, check_numeric_columns,
                    flow_parameters_doc)

_INIT_DOC = """
    init : {"gaussian", "identity"}, default="gaussian"
        Where training starts.  "gaussian" puts a class-conditional affine
        layer first, set in closed form to one full-covariance Gaussian per
        class (each class's covariance shrunk towards the pooled within-class
        one, weight ``n_features`` against the class's row count, plus a ridge
        of 1e-6 of the mean variance), with every MAF layer at the identity:
        before the first step the classifier *is* that quadratic discriminant,
        and early stopping keeps it unless training improves the validation
        likelihood.  "identity" starts every layer at the identity."""


class MAFClassifier(ClassifierMixin, BaseMAF):
    __doc__ = f"""Classifier by Bayes' rule over a class-conditional normalizing flow.

    One Masked Autoregressive Flow models ``p(x | class)`` for every class
    at once: the class enters each MADE as a one-hot context.  Class priors
    come from the training labels (or ``priors``), and Bayes' rule gives
    ``predict_proba``.  As a generative model it also gives the density of
    ``x`` itself: ``score_samples(X) = log sum_k p(k) p(x | k)``.  Fit it on
    standardised features (e.g. after a ``StandardScaler`` in a Pipeline).

    Parameters
    ----------
    priors : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes, in the order of ``classes_``;
        None uses the class frequencies of the training labels.
    {flow_parameters_doc(_INIT_DOC)}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    class_prior_ : ndarray of shape (n_classes,)
        The prior probability of each class.
    {FLOW_ATTRIBUTES_DOC.strip()}

    See Also
    --------
    MAFDensity : The unconditional density estimator.
    MAFRegressor : A conditional flow of targets given features.
    sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis : One Gaussian per class.
    sklearn.naive_bayes.GaussianNB : Independent Gaussians per class.

    Notes
    -----
    ``score`` is the mean accuracy, as for every scikit-learn classifier;
    the training objective (mean ``log p(x | y)``, nats) is in
    ``loss_curve_`` and ``validation_scores_``.  Early stopping holds out a
    stratified ``validation_fraction`` of the rows.

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

    _parameter_constraints: dict = {**BaseMAF._parameter_constraints, "priors": ["array-like", None]}
    _gaussian_start = "grouped"

    def __init__(
        self,
        *,
        priors=None,
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
        )
        self.priors = priors

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
        self.class_prior_ = self._class_prior(np.bincount(labels, minlength=len(classes)) / len(labels))
        self.classes_ = classes
        self._train(X, self._one_hot(labels, X.dtype), stratify=labels)

    def _class_prior(self, frequencies: np.ndarray) -> np.ndarray:
        if self.priors is None:
            return frequencies
        priors = np.asarray(self.priors, dtype=np.float64)
        if priors.shape != frequencies.shape:
            raise ValueError(f"priors must have one entry per class ({len(frequencies)}), "
                             f"got shape {priors.shape}")
        if not np.all(np.isfinite(priors)) or (priors < 0).any() or not np.isclose(priors.sum(), 1.0):
            raise ValueError(f"priors must be non-negative and sum to 1, got {priors.tolist()}")
        return priors

    def _one_hot(self, labels: np.ndarray, dtype) -> np.ndarray:
        return np.eye(len(self.classes_) if hasattr(self, "classes_") else labels.max() + 1,
                     dtype=dtype)[labels]

    def _start_at_gaussian(self, flow, x_all, context, train_index) -> None:
        n_classes = context.shape[1]
        labels = context.argmax(1)
        rows_all = torch.arange(len(labels), device=labels.device)
        train = torch.zeros_like(labels, dtype=torch.bool)
        train[rows_all if train_index is None else train_index.long()] = True
        counts, means, covs = [], [], []
        for k in range(n_classes):
            rows = rows_all[(labels == k) & train]
            if not rows.numel():  # a class only in the validation rows
                rows = rows_all[labels == k]
            mean, cov = _gaussian_of(x_all, rows)
            counts.append(rows.numel())
            means.append(mean)
            covs.append(cov)
        counts = torch.tensor(counts, dtype=torch.float64)
        covs = torch.stack(covs)
        pooled = (counts[:, None, None] * covs).sum(0) / counts.sum()
        # A conjugate prior centred on the pooled covariance, worth n_features
        # rows: small classes get sane covariances, large ones their own.
        weight = float(x_all.shape[1])
        shrunk = (counts[:, None, None] * covs + weight * pooled) / (counts[:, None, None] + weight)
        flow.transforms[0].set_group_gaussians(torch.stack(means), shrunk)

    # ------------------------------------------------------------ predict
    def _joint_log_likelihood(self, X) -> np.ndarray:
        """``log p(k) + log p(x | k)`` for every row and class."""
        check_is_fitted(self)
        X = self._validated(X)
        n_classes = len(self.classes_)
        out = np.empty((X.shape[0], n_classes))
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        for k in range(n_classes):
            # One context row, broadcast over the rows by the flow.
            context = self._one_hot(np.array([k]), X.dtype)
            out[:, k] = self._log_density(X, context) + log_prior[k]
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
        """Log of the posterior class probabilities (Bayes' rule).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        joint = self._joint_log_likelihood(X)
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Posterior class probabilities (Bayes' rule).

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
        best = self._joint_log_likelihood(X).argmax(1)
        return self.classes_[best]

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
        check_n_samples(n_samples)
        rng = check_random_state(random_state)
        labels = rng.choice(len(self.classes_), size=int(n_samples), p=self.class_prior_)
        X = self._draw(int(n_samples), seed_generator(rng), self._one_hot(labels, self.dtype))
        return X, self.classes_[labels]
