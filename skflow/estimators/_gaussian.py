"""Closed-form Gaussians: moments, ridge, log-densities, the
cross-validated covariance shrinkage of the Gaussian starts, and the rules
that weigh a trained flow against its Gaussian start.

Numpy rather than torch: its small factorisations run in one thread, which
keeps them fast however busy the machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import solve_triangular

__all__ = ["SHRINKAGES", "gaussian_log_pdfs", "select_shrinkage", "shrink_to_identity", "spectral_log_pdfs"]

#: Candidate shares of the covariance moved onto a multiple of the identity.
#: Rows the cross-validated choice of the Gaussian start's shrinkage looks at.
MAX_SELECTION_ROWS = 100_000

SHRINKAGES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
#: Folds of every cross-validated choice of a start (shrinkage, penalty).
FOLDS = 5


def gaussian_log_pdfs(x, means, covs):
    """``(n, ...)`` log-densities of the rows of ``x`` under ``N(means[...], covs[...])``,
    batched over the leading axes of ``covs`` (numpy, float64); -inf where a
    covariance is not positive definite."""
    d = covs.shape[-1]
    try:
        chol, ok = np.linalg.cholesky(covs), np.ones(covs.shape[:-2], dtype=bool)
    except np.linalg.LinAlgError:  # one at a time, marking the failures
        flat = covs.reshape(-1, d, d)
        chol, ok = np.empty_like(flat), np.ones(len(flat), dtype=bool)
        for i, c in enumerate(flat):
            try:
                chol[i] = np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                chol[i], ok[i] = np.eye(d), False
        chol, ok = chol.reshape(covs.shape), ok.reshape(covs.shape[:-2])
    # (k, d, n), contiguous: numpy's stacked matmul takes BLAS only for contiguous operands
    diff = np.ascontiguousarray(np.moveaxis(x[:, None, :] - means.reshape(-1, d)[None], 0, -1))
    z = np.linalg.inv(chol) @ diff  # inverse + product: faster than a batched LU solve
    log_pdf = -0.5 * np.square(z).sum(-2) - np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)[..., None]
    log_pdf = np.where(ok[..., None], log_pdf - 0.5 * d * math.log(2 * math.pi), -np.inf)
    return np.moveaxis(log_pdf, -1, 0)


def shrink_to_identity(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    """``(1 - s) cov + s mean(diag(cov)) I`` plus 1e-6 of the mean variance
    (so that it is invertible even at ``s = 0``)."""
    d = cov.shape[-1]
    scale = float(np.mean(np.diagonal(cov, axis1=-2, axis2=-1)))
    eye = np.eye(d)
    return (1.0 - shrinkage) * cov + (shrinkage * scale + 1e-6 * scale + 1e-12) * eye


def select_shrinkage(x: np.ndarray, folds: int = FOLDS) -> tuple[float, np.ndarray]:
    """The shrinkage of :data:`SHRINKAGES` whose Gaussian has the highest
    ``folds``-fold cross-validated log-likelihood on the rows ``x`` (float64,
    in random order), and the mean held-out log-likelihood of each candidate.

    Each fold factorises its rows once (a thin SVD of the centred rows:
    ``m x d`` with ``min(m, d)`` singular values), and every candidate's
    covariance ``(1 - s) S + c I`` shares those eigenvectors, so all
    candidates cost one factorisation, of the ``m x m`` form when there are
    fewer rows than columns.
    """
    n, d = x.shape
    fold = np.arange(n) % folds
    total = np.zeros(len(SHRINKAGES))
    for f in range(min(folds, n)):
        fit, test = fold != f, fold == f
        if fit.sum() < 2 or not test.any():
            continue
        mean = x[fit].mean(0)
        total += spectral_log_pdfs(x[fit] - mean, x[test] - mean, SHRINKAGES).sum(0)
    scores = total / n
    best = int(np.nan_to_num(scores, nan=-np.inf).argmax())
    return SHRINKAGES[best], scores


def spectral_log_pdfs(centred: np.ndarray, diffs: np.ndarray, shrinkages) -> np.ndarray:
    """Log-densities of ``diffs`` (rows minus a mean; any leading axes) under
    ``N(0, shrink_to_identity(S, s))`` for each ``s`` of ``shrinkages``, where
    ``S = centred.T @ centred / len(centred)`` (the rows a covariance is made
    of, each minus its own mean); shape ``diffs.shape[:-1] + (len(shrinkages),)``.

    One thin SVD of ``centred`` gives every candidate: they share its
    eigenvectors, and outside their span the covariance is a multiple of
    the identity.
    """
    m, d = centred.shape
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    eig = np.square(singular) / m  # the covariance's eigenvalues in the span of vt
    scale = eig.sum() / d  # mean variance: the trace over d
    along = np.square(diffs @ vt.T)  # (..., r)
    rest = np.maximum(np.square(diffs).sum(-1) - along.sum(-1), 0.0)  # outside the span of the rows
    out = np.empty(diffs.shape[:-1] + (len(shrinkages),))
    for i, s in enumerate(shrinkages):
        c = s * scale + 1e-6 * scale + 1e-12
        spectrum = (1.0 - s) * eig + c
        log_det = np.log(spectrum).sum() + (d - len(eig)) * math.log(c)
        out[..., i] = (-0.5 * ((along / spectrum).sum(-1) + rest / c) - 0.5 * log_det
                       - 0.5 * d * math.log(2 * math.pi))
    return out


def _gaussian_of(x, rows=None, chunk_size=65536, ridge=True):
    """Mean and covariance (float64; with ``ridge``, plus 1e-6 of the mean variance) of ``x[rows]``."""
    n = x.shape[0] if rows is None else rows.numel()

    def chunks():  # float64 on the CPU, a chunk at a time: no copy of all rows
        for start in range(0, n, chunk_size):
            idx = slice(start, start + chunk_size) if rows is None else rows[start : start + chunk_size]
            yield x[idx].double().cpu()

    # Two passes (mean, then centred products), as the batch-norm refit does.
    mean = sum(c.sum(0) for c in chunks()) / n
    cov = sum(d.t() @ d for d in (c - mean for c in chunks())) / n
    return mean, (add_ridge(cov) if ridge else cov)


def _shrunk_gaussian(x, rows=None, shrinkage=None, moments=None):
    """Mean (tensor) and covariance (numpy) of ``x[rows]``, the covariance
    shrunk towards a multiple of the identity by ``shrinkage`` (None: the
    amount with the best 5-fold cross-validated log-likelihood), and that
    amount.  ``moments``, a mean and covariance (float64 numpy) of rows
    that ``x[rows]`` samples (data streamed from disk), replace those of
    ``x[rows]``; the shrinkage is still chosen on ``x[rows]``."""
    if moments is None:
        mean, cov = _gaussian_of(x, rows, ridge=False)
    else:
        mean, cov = torch.as_tensor(moments[0], dtype=torch.float64), torch.as_tensor(moments[1], dtype=torch.float64)
    if shrinkage is None:
        sample = x if rows is None else x[rows[:MAX_SELECTION_ROWS].long()]
        shrinkage, _ = select_shrinkage(sample[:MAX_SELECTION_ROWS].double().cpu().numpy())
    return mean, shrink_to_identity(cov.numpy(), shrinkage), shrinkage


#: Training must beat the Gaussian start on the validation rows by this many
#: standard errors of the mean per-row gain, or the start is kept.
_KEEP_TRAINED_Z = 1.0


def _significant_gain(gain: np.ndarray, z: float = _KEEP_TRAINED_Z) -> bool:
    """Whether per-row log-likelihood gains are above zero by more than ``z``
    standard errors."""
    n = len(gain)
    if n < 2:
        return bool(gain.mean() > 0)
    return bool(gain.mean() > z * gain.std(ddof=1) / np.sqrt(n))


#: The density estimators mix this share of a multivariate Student t with
#: DEFENSIVE_DF degrees of freedom (location and scatter: the mixed-in
#: Gaussian's mean and covariance) into their density.  A Gaussian's
#: log-density falls with the square of a row's Mahalanobis distance, so a
#: data-entry error across a thin direction of the data (a share that should
#: sum to one with others) can score thousands of nats below the rest; the
#: t's falls with its logarithm, and no row can fall more than
#: -log(DEFENSIVE_WEIGHT), 6.9 nats, below the t, for at most
#: -log(1 - DEFENSIVE_WEIGHT), 0.001 nats, on the typical row.
DEFENSIVE_WEIGHT = 1e-3
#: Two degrees of freedom: tails as heavy as a finite mean allows, and draws
#: by a closed form (a chi-square of 2 degrees is -2 log U).
DEFENSIVE_DF = 2


def gaussian_and_t_log_pdfs(X: np.ndarray, mean: np.ndarray, cov: np.ndarray, df: float = DEFENSIVE_DF,
                            chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Log-density of each row of ``X`` under ``N(mean, cov)`` and under the
    multivariate Student t with location ``mean``, scatter ``cov`` and ``df``
    degrees of freedom.  Both are functions of a row's Mahalanobis distance
    and of ``log det cov``: one factorisation and one triangular solve per
    row give the two."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    factor = np.linalg.cholesky(cov)
    half_log_det = np.log(np.diag(factor)).sum()
    squared = np.empty(len(X))  # squared Mahalanobis distances
    for i in range(0, len(X), chunk):
        squared[i : i + chunk] = np.square(solve_triangular(factor, (X[i : i + chunk] - mean).T, lower=True)).sum(0)
    gaussian = -0.5 * squared - half_log_det - 0.5 * d * math.log(2 * math.pi)
    t_constant = (math.lgamma((df + d) / 2) - math.lgamma(df / 2) - 0.5 * d * math.log(df * math.pi)
                  - half_log_det)
    return gaussian, t_constant - 0.5 * (df + d) * np.log1p(squared / df)


def defended(log_density: np.ndarray, t_log_density: np.ndarray) -> np.ndarray:
    """``log((1 - e) p(x) + e t(x))`` from ``log p(x)`` and ``log t(x)``: the
    density mixed with the defensive Student t (``e`` = :data:`DEFENSIVE_WEIGHT`)."""
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log1p(-DEFENSIVE_WEIGHT) + log_density, math.log(DEFENSIVE_WEIGHT) + t_log_density)


def student_t_draws(standard_normal: np.ndarray, uniform: np.ndarray, mean: np.ndarray,
                    factor: np.ndarray) -> np.ndarray:
    """Draws of the defensive Student t from ``(n, d)`` standard normal and
    ``(n,)`` uniform (0, 1] numbers: ``mean + L g / sqrt(chi2 / df)``, with
    ``factor`` the lower Cholesky factor ``L`` of the scatter."""
    chi2 = -2.0 * np.log(uniform)  # a chi-square of DEFENSIVE_DF = 2 degrees of freedom
    return mean + (standard_normal @ factor.T) / np.sqrt(chi2 / DEFENSIVE_DF)[:, None]


#: The smallest weight "auto" gives the Gaussian: a defensive share that
#: bounds how far below the Gaussian any row can fall (by -log(0.01), 4.6
#: nats) for at most -log(0.99), 0.01 nats, on the typical row.
GAUSSIAN_WEIGHT_FLOOR = 0.01


def _best_gaussian_weight(gaussian: np.ndarray, flow: np.ndarray, caution: float = 0.0,
                          floor: float = GAUSSIAN_WEIGHT_FLOOR) -> float:
    """The weight ``w`` in ``floor``, 0.05, 0.1, ..., 1 of ``w N + (1 - w) flow`` with the
    best mean log-likelihood of rows whose log-densities under each are given
    (the smallest such weight on ties).  With ``caution`` > 0: the largest
    ``w`` whose mean is within ``caution`` standard errors of the best mean
    (the standard error of that mean over the rows: the one-standard-error
    rule of model selection, with ``caution`` of them)."""
    weights = np.r_[floor, np.linspace(0.05, 1.0, 20)]
    with np.errstate(divide="ignore"):
        rows = np.array([np.logaddexp(np.log(w) + gaussian, np.log1p(-w) + flow) for w in weights])
    means = rows.mean(1)
    best = 0
    for i in range(1, len(weights)):
        if means[i] > means[best] + 1e-12:
            best = i
    if caution > 0 and rows.shape[1] > 1:
        # Not the paired differences' error: a small weight costs every row
        # the same few hundredths of a nat, a "significant" loss that changes
        # no row's rank.  What counts is a loss against the spread of the
        # held-out rows' own log-likelihoods.
        within = means[best] - caution * rows[best].std(ddof=1) / np.sqrt(rows.shape[1])
        for i in range(len(weights) - 1, best, -1):
            if means[i] >= within:
                return float(weights[i])
    return float(weights[best])


def _gaussian_log_pdf(X: np.ndarray, mean: np.ndarray, cov: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Log-density of each row of ``X`` under ``N(mean, cov)`` (:func:`gaussian_log_pdfs`
    a chunk of rows at a time)."""
    X = np.asarray(X, dtype=np.float64)
    return np.concatenate([gaussian_log_pdfs(X[i : i + chunk], mean[None], cov[None])[:, 0]
                           for i in range(0, len(X), chunk)] or [np.empty(0)])


def add_ridge(cov):
    """``cov`` (a torch tensor or numpy array) plus 1e-6 of its mean variance
    on the diagonal: invertible, and a row's density hardly changes."""
    ridge = 1e-6 * float(cov.diagonal().mean()) + 1e-12
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype) if torch.is_tensor(cov) else np.eye(cov.shape[-1])
    return cov + ridge * eye
