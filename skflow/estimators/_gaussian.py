"""Closed-form Gaussians in numpy: batched log-densities and the
cross-validated covariance shrinkage of the Gaussian starts.

Numpy rather than torch: its small factorisations run in one thread, which
keeps them fast however busy the machine (torch's small ops under two busy
threads were measured 10-40x slower).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SHRINKAGES", "gaussian_log_pdfs", "select_shrinkage", "shrink_to_identity", "spectral_log_pdfs"]

#: Candidate shares of the covariance moved onto a multiple of the identity.
SHRINKAGES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
_FOLDS = 5


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


def select_shrinkage(x: np.ndarray, folds: int = _FOLDS) -> tuple[float, np.ndarray]:
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
