"""The regressor's start: the ridge linear-Gaussian regression of the
targets on the features (:class:`LinearGaussianStart`), its penalty chosen
by cross-validation."""

from __future__ import annotations

import numpy as np
import torch

from ._gaussian import FOLDS, MAX_SELECTION_ROWS, add_ridge

_PENALTIES = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)


def _ridge_gaussian(c: np.ndarray, t: np.ndarray, penalty: float):
    """Ridge coefficients (the intercept unpenalised), intercept and residual
    covariance (plus 1e-6 of its mean variance) of ``t`` on ``c``, float64."""
    design = np.c_[c, np.ones(len(c))]
    gram = design.T @ design + penalty * np.diag(np.r_[np.ones(c.shape[1]), 0.0])
    beta = np.linalg.solve(gram, design.T @ t)
    residuals = t - design @ beta
    return beta[:-1], beta[-1], add_ridge(residuals.T @ residuals / len(t))


def _select_penalty(c: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """The penalty of ``_PENALTIES`` whose linear-Gaussian regression has the
    highest 5-fold cross-validated log-likelihood (closed form), and the
    covariance of its out-of-fold residuals (plus 1e-6 of its mean
    variance): an honest predictive spread, where the training residuals'
    is too narrow on small data."""
    fold = np.arange(len(c)) % FOLDS  # the rows come in random order
    best = None
    for penalty in _PENALTIES:
        total, residuals = 0.0, np.zeros_like(t)
        for f in range(min(FOLDS, len(c))):
            fit, test = fold != f, fold == f
            if not fit.any():
                continue
            coef, intercept, cov = _ridge_gaussian(c[fit], t[fit], penalty)
            residuals[test] = t[test] - c[test] @ coef - intercept
            chol = np.linalg.cholesky(cov)
            z = np.linalg.solve(chol, residuals[test].T)
            total -= 0.5 * np.square(z).sum() + test.sum() * np.log(np.diag(chol)).sum()
        if best is None or total > best[0]:
            best = (total, penalty, residuals)
    _, penalty, residuals = best
    return penalty, add_ridge(residuals.T @ residuals / len(t))


class LinearGaussianStart:
    """The regressor's start: the ridge linear-Gaussian regression of the
    targets on the features, its penalty chosen by cross-validation
    (``ridge_penalty_``)."""

    #: The first layer :func:`~skflow.nn.build_maf` makes for it.
    layer = "linear"

    def fit(self, flow, x_all, context, train_index) -> dict:
        rows = slice(None) if train_index is None else train_index.long()
        c = context[rows].double().cpu().numpy()
        t = x_all[rows].double().cpu().numpy()
        penalty, cov = _select_penalty(c[:MAX_SELECTION_ROWS], t[:MAX_SELECTION_ROWS])
        coef, intercept, _ = _ridge_gaussian(c, t, penalty)
        flow.transforms[0].set_linear_gaussian(*map(torch.from_numpy, (coef, intercept, cov)))
        return {"ridge_penalty_": penalty}
