"""A Gaussian mixture of a table's numbers and category codes, conditioned exactly on the codes.

A member of :class:`~skflow.estimators.MixedDensity`'s numeric part that
needs no training: the mixture start of :mod:`._mixture_start` (chosen by
cross-validated likelihood among the single Gaussian and mixtures of full
or diagonal components) fitted to the numeric columns beside the dummy codes
of the categories, each code spread uniformly over a cell of width one (as
a one-hot column is seen by a flow), then conditioned on the codes.  The
conditional of a Gaussian mixture is one: at codes ``c``, component ``k``
has the weight ``pi_k N(c; m_k^c, S_k^cc)`` (normalised over ``k``) and the
Gaussian of the numbers given ``c`` under component ``k``.  For every ``c``
it is a normalised density of the numbers, so the mixed table's
likelihood stays exact; a component can follow one category (its codes'
Gaussian is then narrow around that category's cell) or span several.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import logsumexp

from ..nn.layers.linear import whitening_matrix
from ._gaussian import add_ridge
from ._mixture_start import fit_mixture, select_mixture

__all__ = ["ConditionalGaussianMixture"]


def _dummy_columns(sizes) -> np.ndarray:
    """Columns of the one-hot blocks of ``sizes`` that are kept: all but each block's first."""
    starts = np.cumsum([0, *sizes[:-1]])
    return np.concatenate([np.arange(s + 1, s + size) for s, size in zip(starts, sizes)]).astype(np.int64)


def _gaussian_log_pdf(x, mean, chol):
    """``log N(x; mean, chol chol^T)`` of each row of ``x``."""
    if x.shape[1] == 0:
        return np.zeros(len(x))
    white = solve_triangular(chol, (x - mean).T, lower=True)
    return -0.5 * (white**2).sum(0) - np.log(np.diag(chol)).sum() - 0.5 * x.shape[1] * np.log(2 * np.pi)


class ConditionalGaussianMixture:
    """The numeric columns ``z`` given the one-hot codes of the categories
    (blocks of ``sizes`` columns), as described in the module docstring.

    ``fit(context, z)``, ``log_prob(context, z)`` and ``sample(context,
    n_samples=1, random_state)`` follow :class:`~skflow.MAFRegressor`'s.
    """

    #: ``init`` and ``base`` of a member, as a flow member reports them.
    init = "gaussian_mixture"
    base = "conditioned"
    best_validation_score_ = None

    def __init__(self, sizes, random_state: int = 0):
        self.sizes = [int(s) for s in sizes]
        self.random_state = int(random_state)

    def fit(self, context: np.ndarray, z: np.ndarray):
        rng = np.random.RandomState(self.random_state)
        self.keep_ = _dummy_columns(self.sizes)
        codes = context[:, self.keep_] + rng.uniform(-0.5, 0.5, size=(len(z), len(self.keep_)))
        joint = np.hstack([z, codes])
        self.mean_ = joint.mean(0)
        self.scale_ = joint.std(0)
        self.scale_[~(self.scale_ > 0)] = 1.0
        x = (joint - self.mean_) / self.scale_
        whitening = whitening_matrix(torch.from_numpy(add_ridge(np.atleast_2d(np.cov(x.T, bias=True))))).numpy()
        x_white = x @ whitening.T
        shift = float(np.log(np.diag(whitening)).sum())
        order = rng.permutation(len(x))
        (k, covariance_type), _ = select_mixture(x[order], (x_white[order], shift), self.random_state)
        model = fit_mixture((k, covariance_type), x, x_white, self.random_state)
        means, covariances = model.means_, model.covariances_
        if model.covariance_type == "diag":
            covariances = np.stack([np.diag(v) for v in covariances])
        if covariance_type == "whitened_diag":  # back to x: x = W^-1 x_white
            back = np.linalg.inv(whitening)
            means, covariances = means @ back.T, back @ covariances @ back.T
        self.choice_ = (int(k), covariance_type)
        self._condition(model.weights_, means, covariances, z.shape[1])
        return self

    def _condition(self, weights, means, covariances, dz):
        """Per component: the codes' Gaussian, and the numbers' regression on the codes with its residual Gaussian."""
        self.log_weights_ = np.log(weights)
        self.code_means_ = means[:, dz:]
        self.code_chols_ = np.stack([np.linalg.cholesky(c[dz:, dz:]) for c in covariances])
        self.slopes_ = np.stack([cho_solve((l, True), c[dz:, :dz]).T for l, c in zip(self.code_chols_, covariances)])
        self.number_means_ = means[:, :dz]
        self.number_chols_ = np.stack([np.linalg.cholesky(c[:dz, :dz] - a @ c[dz:, :dz])
                                       for a, c in zip(self.slopes_, covariances)])

    def _codes(self, context):
        """The codes of ``context``, standardised as in ``fit`` (they follow the numbers in the joint)."""
        dz = self.number_means_.shape[1]
        return (context[:, self.keep_] - self.mean_[dz:]) / self.scale_[dz:]

    def _components(self, context):
        """Each row's log component weights given its codes ``(K, n)`` and conditional means ``(K, n, dz)``."""
        c = self._codes(context)
        log_w = np.stack([lw + _gaussian_log_pdf(c, m, l) for lw, m, l in
                          zip(self.log_weights_, self.code_means_, self.code_chols_)])
        log_w -= logsumexp(log_w, axis=0)
        means = np.stack([m + (c - mc) @ a.T for m, mc, a in zip(self.number_means_, self.code_means_, self.slopes_)])
        return log_w, means

    def log_prob(self, context: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``log p(z | codes)`` of each row, in ``z``'s units."""
        dz = z.shape[1]
        zs = (z - self.mean_[:dz]) / self.scale_[:dz]
        log_w, means = self._components(context)
        per_component = np.stack([_gaussian_log_pdf(zs - m, 0.0, l) for m, l in zip(means, self.number_chols_)])
        return logsumexp(log_w + per_component, axis=0) - np.log(self.scale_[:dz]).sum()

    def sample(self, context: np.ndarray, n_samples: int = 1, random_state=None) -> np.ndarray:
        """``n_samples`` draws of ``z`` per row of ``context``: ``(n, n_samples, dz)``."""
        rng = np.random.RandomState(random_state)
        dz = self.number_means_.shape[1]
        log_w, means = self._components(context)
        n = len(context)
        out = np.empty((n, n_samples, dz))
        below = np.cumsum(np.exp(log_w).T, 1)[:, :-1]  # each row's component weights, summed
        for s in range(n_samples):
            pick = (rng.uniform(size=(n, 1)) > below).sum(1)
            noise = rng.standard_normal((n, dz))
            draws = np.einsum("nij,nj->ni", self.number_chols_[pick], noise) + means[pick, np.arange(n)]
            out[:, s] = draws * self.scale_[:dz] + self.mean_[:dz]
        return out
