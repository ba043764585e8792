"""The classifier's start and early-stopping score: one Gaussian per class
(:class:`ClassGaussianStart`, its shrinkage chosen by cross-validated log
loss) and the held-out log loss (:class:`HeldOutLogLoss`)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp

from ._gaussian import FOLDS, MAX_SELECTION_ROWS, _gaussian_of, add_ridge, gaussian_log_pdfs, spectral_log_pdfs

# Shrinkage grid of the class-Gaussian start: alpha towards the pooled
# within-class covariance, beta of that towards a multiple of the identity.
_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
_BETAS = (0.0, 0.05, 0.2, 0.5, 0.9)
#: Above this many features, a class with no more rows than features makes
#: the start's grid search use the pooled covariance alone (alpha = 1).
_WIDE = 256


def _label_log_likelihood(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p(y | x)`` of each row's label from joint log-probabilities
    ``(n, ..., n_classes)`` (any axes between rows and classes are kept)."""
    index = labels.reshape(len(labels), *[1] * (joint.ndim - 1))
    with np.errstate(invalid="ignore"):  # -inf - -inf where no class has any density
        return np.take_along_axis(joint, index, axis=-1)[..., 0] - logsumexp(joint, axis=-1)


def _class_moments(x, labels, rows, n_classes):
    """Per-class means and (biased) covariances of ``x[rows]`` in float64, and the class counts."""
    means, covs, counts = [], [], []
    d = x.shape[1]
    for k in range(n_classes):
        own = rows[labels[rows] == k]
        if own.numel():
            mean, cov = _gaussian_of(x, own, ridge=False)
        else:
            mean, cov = torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64)
        means.append(mean)
        covs.append(cov)
        counts.append(float(own.numel()))
    return torch.stack(means), torch.stack(covs), torch.tensor(counts, dtype=torch.float64)


def _shrink(covs, counts, alpha, beta):
    """Class covariances ``(1 - alpha) cov_k + alpha pooled'`` with
    ``pooled' = (1 - beta) pooled + beta mean(diag(pooled)) I``.  One ridge
    for all classes: a column constant in every class (a pixel always off)
    then cancels in Bayes' rule instead of deciding it by the classes' ridges."""
    pooled = (counts[:, None, None] * covs).sum(0) / counts.sum()
    eye = torch.eye(pooled.shape[0], dtype=pooled.dtype)
    pooled = (1 - beta) * pooled + beta * pooled.diagonal().mean() * eye
    ridge = add_ridge(pooled) - pooled
    return (1 - alpha) * covs + alpha * pooled + ridge


def _select_shrinkage(x, labels, n_classes) -> tuple[float, float]:
    """The ``(alpha, beta)`` of the grid whose class Gaussians (with the
    training frequencies as priors) give the lowest log loss in a
    ``FOLDS``-fold cross-validation over the rows ``x`` (closed form, no
    flow training; numpy, whose small factorisations run in one thread
    however busy the machine)."""
    n, d = x.shape
    fold = torch.arange(n) % FOLDS  # the rows come in random order
    counts = torch.bincount(labels, minlength=n_classes)
    if d > _WIDE and int(counts.min()) <= d:
        return 1.0, _select_pooled_shrinkage(x.numpy(), labels.numpy(), n_classes)
    grid = [(a, b) for a in _ALPHAS for b in _BETAS]
    loss = np.zeros(len(grid))
    # Candidates per batched factorisation, within about 64 MB of matrices.
    step = max(1, (1 << 23) // (n_classes * d * d))
    x_np, labels_np = x.numpy(), labels.numpy()
    for f in range(min(FOLDS, n)):
        fit, test = torch.nonzero(fold != f)[:, 0], (fold == f).numpy()
        if not len(fit) or not test.any():
            continue
        present = torch.bincount(labels[fit], minlength=n_classes) > 0
        means, covs, counts = _class_moments(x, labels, fit, n_classes)
        means[~present] = x[fit].mean(0)  # a class absent from this fold's fit rows
        log_prior = (counts.clamp(min=1) / counts.clamp(min=1).sum()).log().numpy()
        x_test, y_test = x_np[test], labels_np[test]
        for start in range(0, len(grid), step):
            shrunk = torch.stack([_shrink(covs, counts, a, b) for a, b in grid[start : start + step]]).numpy()
            joint = gaussian_log_pdfs(x_test, means.numpy(), shrunk) + log_prior  # (n_test, candidates, k)
            loss[start : start + step] -= _label_log_likelihood(joint, y_test).sum(0)
    best = int(np.nan_to_num(loss, nan=np.inf).argmin())
    return grid[best]


def _select_pooled_shrinkage(x: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """The ``beta`` of :data:`_BETAS` for ``alpha = 1`` (every class with the
    pooled covariance, shrunk by ``beta``), by the same cross-validated log
    loss, each fold from one thin SVD of its rows minus their class means:
    what wide data can afford (``d x d`` factorisations per candidate and
    class grow as ``d**3``; the SVD of ``m`` rows as ``m**2 d``)."""
    n = len(x)
    fold = np.arange(n) % FOLDS
    loss = np.zeros(len(_BETAS))
    for f in range(min(FOLDS, n)):
        fit, test = fold != f, fold == f
        if not fit.any() or not test.any():
            continue
        counts = np.bincount(labels[fit], minlength=n_classes).astype(float)
        means = np.stack([x[fit][labels[fit] == k].mean(0) if counts[k] else x[fit].mean(0)
                          for k in range(n_classes)])
        centred = x[fit] - means[labels[fit]]
        log_pdfs = spectral_log_pdfs(centred, x[test][:, None, :] - means[None], _BETAS)  # (n_test, k, betas)
        log_prior = np.log(np.maximum(counts, 1) / np.maximum(counts, 1).sum())
        joint = np.moveaxis(log_pdfs, -1, 1) + log_prior  # (n_test, betas, k)
        loss -= _label_log_likelihood(joint, labels[test]).sum(0)
    return float(_BETAS[int(np.nan_to_num(loss, nan=np.inf).argmin())])


class ClassGaussianStart:
    """The classifier's start: one full-covariance Gaussian per class, the
    class covariances shrunk towards the pooled one and that towards a
    multiple of the identity by the amounts with the lowest cross-validated
    log loss (``covariance_shrinkage_``)."""

    #: The first layer :func:`~skflow.nn.build_maf` makes for it.
    layer = "grouped"

    def __init__(self, labels: np.ndarray, n_classes: int):
        self.labels, self.n_classes = labels, n_classes

    def fit(self, flow, x_all, context, train_index) -> dict:
        labels = torch.as_tensor(self.labels, device=x_all.device)
        rows = torch.arange(len(labels), device=labels.device) if train_index is None else train_index.long()
        # Classes only in the validation rows start from all their rows.
        missing = [k for k in range(self.n_classes) if not bool((labels[rows] == k).any())]
        if missing:
            rows = torch.cat([rows, torch.nonzero(torch.isin(labels, torch.tensor(missing, device=labels.device)))[:, 0]])
        x = x_all[rows[:MAX_SELECTION_ROWS]].double().cpu()
        y = labels[rows[:MAX_SELECTION_ROWS]].cpu()
        shrinkage = _select_shrinkage(x, y, self.n_classes)
        means, covs, counts = _class_moments(x_all, labels, rows, self.n_classes)
        flow.transforms[0].set_group_gaussians(means, _shrink(covs, counts, *shrinkage))
        return {"covariance_shrinkage_": shrinkage}


class HeldOutLogLoss:
    """What the classifier's early stopping maximises: the held-out rows'
    mean ``log p(y | x)`` under the class priors (minus the log loss)."""

    def __init__(self, class_prior: np.ndarray):
        self.class_prior = class_prior

    def __call__(self, x_val, c_val) -> "_LabelLogLikelihood":
        """The score of a flow on the validation rows ``x_val`` (their one-hot labels ``c_val``)."""
        return _LabelLogLikelihood(x_val, c_val, self.class_prior)


class _LabelLogLikelihood:
    """``score(flow)``: the mean held-out ``log p(y | x)``; ``per_row(flow)``:
    each row's (what :func:`~skflow.estimators._fitting.fit_flow` weighs
    against the start's)."""

    def __init__(self, x_val, c_val, class_prior):
        self.x_val = x_val
        self.labels = c_val.argmax(1).cpu().numpy()
        with np.errstate(divide="ignore"):
            self.log_prior = np.log(class_prior)
        self.eye = torch.eye(c_val.shape[1], dtype=c_val.dtype, device=c_val.device)

    def per_row(self, flow) -> np.ndarray:
        was_training = flow.training
        flow.eval()
        with torch.no_grad():
            joint = torch.stack([flow.log_prob(self.x_val, self.eye[k]).double().cpu()
                                 for k in range(len(self.eye))], 1)
        flow.train(was_training)
        return _label_log_likelihood(joint.numpy() + self.log_prior, self.labels)

    def __call__(self, flow) -> float:
        return float(self.per_row(flow).mean())


#: Candidate shares of the class Gaussians in the classifier's class densities
#: once training beat them: at least 0.2, since a flow trained on a few hundred
#: rows can be confidently wrong on a row that its few validation rows never show.
CLASS_GAUSSIAN_WEIGHTS = (0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


def class_gaussians(x: torch.Tensor, labels: np.ndarray, rows, n_classes: int, shrinkage):
    """The start's class Gaussians of ``x[rows]`` (all rows for None), shrunk
    by ``shrinkage`` (``(alpha, beta)``): means ``(k, d)`` and covariances
    ``(k, d, d)``, float64 numpy."""
    labels = torch.as_tensor(labels)
    rows = torch.arange(len(labels)) if rows is None else torch.as_tensor(rows)
    means, covs, counts = _class_moments(x.double().cpu(), labels, rows, n_classes)
    return means.numpy(), _shrink(covs, counts, *shrinkage).numpy()


def best_class_gaussian_weight(flow_log_likelihood, gaussian_log_likelihood, labels, log_prior) -> float:
    """The weight ``w`` of :data:`CLASS_GAUSSIAN_WEIGHTS` whose class densities
    ``w G_k + (1 - w) flow_k`` give the held-out rows (their ``(n, k)`` class
    log-likelihoods under both, their labels) the lowest log loss; the
    largest such ``w`` on ties."""
    losses = []
    for w in CLASS_GAUSSIAN_WEIGHTS:
        with np.errstate(divide="ignore"):
            mixed = np.logaddexp(np.log(w) + gaussian_log_likelihood, np.log1p(-w) + flow_log_likelihood)
        losses.append(-float(np.nan_to_num(_label_log_likelihood(mixed + log_prior, labels), nan=-np.inf).mean()))
    losses = np.array(losses)
    return float(CLASS_GAUSSIAN_WEIGHTS[int(np.flatnonzero(losses <= losses.min() + 1e-12)[-1])])
