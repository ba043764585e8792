"""One full-covariance Gaussian as a density estimator (and the default background of a likelihood ratio)."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from ..nn.devices import private_random_state
from ._gaussian import _gaussian_log_pdf, _shrunk_gaussian
from ._scaling import fit_standardisation
from ._validation import check_n_samples, check_numeric_columns


class GaussianDensity(DensityMixin, BaseEstimator):
    """A full-covariance Gaussian whose covariance shrinkage is cross-validated.

    The columns are standardised, the covariance of the standardised rows is
    shrunk towards a multiple of the identity by the share (of 0 to 0.9)
    with the best 5-fold cross-validated log-likelihood (judged on a random
    100,000 of the rows where there are more) -- the Gaussian that
    :class:`MAFDensity` starts from -- and the density is reported in the
    data's units.  It is the background model :class:`MAFOutlierDetector`
    fits by default for a likelihood ratio: the generic shape of the data,
    without a flexible model's noise.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Seeds the assignment of rows to the folds that choose the shrinkage.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        The training rows' mean.
    covariance_ : ndarray of shape (n_features, n_features)
        The shrunk covariance, in the data's units.
    shrinkage_ : float
        The share of the standardised covariance moved onto the identity.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    MAFDensity : A flow that starts from this Gaussian.
    sklearn.mixture.GaussianMixture : With ``n_components=1``, the Gaussian
        with a fixed ridge on the covariance.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import GaussianDensity
    >>> X = np.random.RandomState(0).normal(size=(500, 2))
    >>> GaussianDensity(random_state=0).fit(X).score_samples([[0.0, 0.0]]).round(1)
    array([-1.8])
    """

    _parameter_constraints: dict = {"random_state": ["random_state"]}

    def __init__(self, random_state=None):
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None):
        """Fit the mean and the shrunk covariance of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows; at least 2.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        check_numeric_columns(X)
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        mean, scale = fit_standardisation(X)
        Z = (X - mean) / scale
        order = private_random_state(self.random_state).permutation(len(Z))  # the folds need random order
        _, covariance, self.shrinkage_ = _shrunk_gaussian(torch.from_numpy(Z[order]))
        self.mean_ = mean
        self.covariance_ = covariance * np.outer(scale, scale)
        return self

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        check_numeric_columns(X)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return _gaussian_log_pdf(X, self.mean_, self.covariance_)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Total log-likelihood of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        log_likelihood : float
        """
        return float(np.sum(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw rows from the fitted Gaussian.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        check_n_samples(n_samples, self.n_features_in_)
        noise = private_random_state(random_state).standard_normal((int(n_samples), self.n_features_in_))
        return self.mean_ + noise @ np.linalg.cholesky(self.covariance_).T
