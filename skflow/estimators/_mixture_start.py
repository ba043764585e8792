"""The start of ``init="gaussian_mixture"``: the best classical mixture, then the flow.

scikit-learn ``GaussianMixture`` candidates (components and covariance
type) are compared with the single Gaussian of the training rows (its
covariance shrunk) by cross-validated log-likelihood: full and diagonal
covariances on the rows centred and scaled (as scikit-learn's mixture on
standardised data: diagonal components lie along the columns), and
diagonal covariances on the whitened rows.  A winning mixture becomes the
flow's base distribution (:class:`~skflow.nn.bases.GaussianMixtureBase`)
behind a first layer that whitens the Gaussian (a full mixture is carried
to the whitened rows exactly, an affine map of it being one) or, for a
diagonal mixture along the columns, centres and scales; the autoregressive
layers start at the identity, so that before the first step the model is
exactly that mixture.  Where the single Gaussian wins, the start is the
Gaussian start: the first layer whitens the Gaussian.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from ..nn.bases import GaussianMixtureBase, StandardNormal
from ..nn.layers.linear import whitening_matrix
from ._gaussian import _shrunk_gaussian, _significant_gain

__all__ = ["GaussianMixtureStart", "base_config", "fit_mixture", "select_mixture"]

#: Candidate mixtures: these numbers of components of each covariance type;
#: within a type, more components are tried only while they score better.
#: "diag" components lie along the columns (scaled), "whitened_diag" ones
#: along the axes of the whitened Gaussian.
COMPONENTS = (2, 4, 8)
COVARIANCE_TYPES = ("full", "diag", "whitened_diag")
#: Folds of the cross-validated choice (as in the benchmarks' GaussianMixture search).
MIXTURE_FOLDS = 3
#: Rows the cross-validated choice looks at, and that the chosen mixture is
#: fitted to (a random subset beyond each).
MAX_MIXTURE_SELECTION_ROWS = 5_000
MAX_MIXTURE_FIT_ROWS = 20_000
#: EM starts of the chosen mixture's final fit.
FINAL_EM_STARTS = 3
#: Nats per row by which a mixture must beat the single Gaussian.
MIN_MIXTURE_GAIN = 0.01
#: A candidate needs this many training rows per parameter of its components.
ROWS_PER_PARAMETER = 1.0


def _n_parameters(k: int, covariance_type: str, d: int) -> int:
    covariance = d * (d + 1) // 2 if covariance_type == "full" else d  # whitening shared: not counted
    return k * (d + covariance) + k - 1


def _mixture(k, covariance_type, random_state, init_params="k-means++", n_init=1):
    """The EM fit of every candidate (one k-means++ seeding keeps the choice
    cheap) and, with k-means starts, of the mixture kept."""
    covariance_type = "diag" if covariance_type == "whitened_diag" else covariance_type
    return GaussianMixture(k, covariance_type=covariance_type, random_state=random_state, max_iter=100,
                           reg_covar=1e-6, init_params=init_params, n_init=n_init)


def select_mixture(z: np.ndarray, whitened: tuple, random_state: int, folds: int = MIXTURE_FOLDS):
    """The best of the single Gaussian and the candidate mixtures
    (:data:`COMPONENTS` x :data:`COVARIANCE_TYPES`) by ``folds``-fold
    cross-validated mean log-likelihood of the rows ``z`` (float64, in
    random order); returns ``((components, covariance type), {candidate:
    score})``.  ``whitened`` is the pair of the same rows whitened and the
    log Jacobian of going from ``z`` to them, for the "whitened_diag"
    candidates (scored in the units of ``z``).  A mixture must beat the
    Gaussian by more than one standard error of the per-row held-out gain
    and by :data:`MIN_MIXTURE_GAIN`.  Within a covariance type, more
    components are tried only while they improve the score, and only with
    :data:`ROWS_PER_PARAMETER` training rows per parameter; with fewer than
    ``2 folds (d + 1)`` rows there is no choice (the Gaussian, no scores)."""
    n, d = z.shape
    if n < 2 * folds * (d + 1):
        return (1, "full"), {}
    fold = np.arange(n) % folds

    def held_out(k, covariance_type):  # each row's log-density under the mixture fitted without its fold
        rows, shift = whitened if covariance_type == "whitened_diag" else (z, 0.0)
        out = np.empty(n)
        for f in range(folds):
            fit, test = fold != f, fold == f
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                out[test] = _mixture(k, covariance_type, random_state).fit(rows[fit]).score_samples(rows[test])
        return out + shift

    gaussian = held_out(1, "full")
    rows = {(1, "full"): gaussian}
    for covariance_type in COVARIANCE_TYPES:
        best = gaussian.mean()
        for k in COMPONENTS:
            if n * (folds - 1) / folds < ROWS_PER_PARAMETER * _n_parameters(k, covariance_type, d):
                break
            rows[(k, covariance_type)] = held_out(k, covariance_type)
            if rows[(k, covariance_type)].mean() <= best:
                break
            best = rows[(k, covariance_type)].mean()
    scores = {candidate: float(r.mean()) for candidate, r in rows.items()}
    # A mixture must beat the Gaussian by more than one standard error of the
    # per-row gain, and by MIN_MIXTURE_GAIN: a near-copy of the Gaussian gains
    # a consistent trifle that is "significant" and worth nothing.
    winners = [c for c in rows if c == (1, "full")
               or (_significant_gain(rows[c] - gaussian) and scores[c] > scores[(1, "full")] + MIN_MIXTURE_GAIN)]
    return max(winners, key=scores.get), scores


def fit_mixture(choice: tuple, z: np.ndarray, whitened_rows: np.ndarray, random_state: int) -> GaussianMixture:
    """The mixture ``choice`` (from :func:`select_mixture`) fitted to the
    rows ``z``, or to ``whitened_rows`` (the same rows whitened) for a
    "whitened_diag" choice: the best of :data:`FINAL_EM_STARTS` k-means starts."""
    k, covariance_type = choice
    rows = whitened_rows if covariance_type == "whitened_diag" else z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _mixture(k, covariance_type, random_state, init_params="kmeans", n_init=FINAL_EM_STARTS).fit(rows)


def _full_precision_factors(model: GaussianMixture) -> np.ndarray:
    """``model``'s precision Cholesky factors as ``(K, d, d)`` upper-triangular matrices."""
    factors = model.precisions_cholesky_
    if model.covariance_type == "full":
        return factors
    if model.covariance_type == "diag":
        return np.stack([np.diag(f) for f in factors])
    raise ValueError(f"covariance type {model.covariance_type!r} is not a candidate")


class GaussianMixtureStart:
    """The start of ``init="gaussian_mixture"`` for a flow of ``X`` alone (see
    the module docstring); ``random_state`` seeds the mixtures' EM;
    ``moments`` (mean, covariance) of rows streamed from disk replace the
    Gaussian of the rows given to :meth:`fit`, a sample of them.  The first
    :meth:`fit` chooses the mixture by cross-validation (``choice``); a later
    one (the refit on every row of a start that training did not beat) fits
    that same choice, the one the validation rows judged."""

    #: The first layer :func:`~skflow.nn.build_maf` makes for it (``gaussian_start``).
    layer = True

    def __init__(self, random_state: int, moments=None):
        self.random_state = int(random_state)
        self.moments = moments
        self.choice, self.scores = None, {}

    def fit(self, flow, x: torch.Tensor, context, rows) -> dict:
        """Set ``flow``'s first layer and base from the rows ``x[rows]`` (all
        rows for None); return the fitted attributes this start chose."""
        mean, cov, shrinkage = _shrunk_gaussian(x, rows, moments=self.moments)
        first = flow.transforms[0]
        first.set_gaussian(mean, torch.from_numpy(cov))
        sample = x if rows is None else x[rows]
        if sample.shape[0] > MAX_MIXTURE_FIT_ROWS:
            pick = torch.randperm(sample.shape[0], generator=torch.Generator().manual_seed(self.random_state))
            sample = sample[pick[:MAX_MIXTURE_FIT_ROWS].to(sample.device)]
        # Diagonal mixtures on the columns' own axes follow structure along
        # the columns (a column on a grid, say), as scikit-learn's
        # GaussianMixture does on standardised data; on the whitened axes
        # they keep the correlations of the whole.  Both are candidates.
        scale = np.sqrt(np.diag(cov))
        centred = sample.double().cpu().numpy() - mean.double().numpy()
        z = centred / scale
        whitening = whitening_matrix(torch.from_numpy(cov)).numpy()
        z_white = centred @ whitening.T
        # log Jacobian from the scaled rows to the whitened ones
        shift = float(np.log(np.diag(whitening)).sum() + np.log(scale).sum())
        # folds in random order, on at most MAX_MIXTURE_SELECTION_ROWS rows
        order = np.random.RandomState(self.random_state).permutation(len(z))[:MAX_MIXTURE_SELECTION_ROWS]
        if self.choice is None:
            self.choice, self.scores = select_mixture(z[order], (z_white[order], shift), self.random_state)
        (k, covariance_type), scores = self.choice, self.scores
        like = first.weight
        d = z.shape[1]
        if k == 1:
            flow.base = StandardNormal(d)
        else:
            if covariance_type == "diag":
                first.set_gaussian(mean, torch.from_numpy(np.diag(scale**2)))
            model = fit_mixture(self.choice, z, z_white, self.random_state)
            means, factors = model.means_, _full_precision_factors(model)
            if covariance_type == "full":
                # An affine map of a full mixture is one: carried to the whitened
                # rows the first layer gives (z_white = A z, A lower triangular).
                a = whitening * scale
                means, factors = means @ a.T, np.linalg.solve(a.T, factors)
            base = GaussianMixtureBase(d, k).to(device=like.device, dtype=like.dtype)
            base.set_mixture(model.weights_, means, factors)
            flow.base = base
        return {"covariance_shrinkage_": shrinkage, "start_mixture_": (k, covariance_type),
                "start_mixture_scores_": {f"{kk} {ct}": s for (kk, ct), s in scores.items()}}


def base_config(flow) -> dict:
    """The :func:`~skflow.nn.build_maf` options that rebuild ``flow``'s base
    where a start chose it (a Gaussian mixture); empty otherwise."""
    base = getattr(flow, "base", None)
    if isinstance(base, GaussianMixtureBase):
        return {"base": "gaussian_mixture", "n_components": base.n_components}
    return {}
