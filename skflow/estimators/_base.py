"""The part of MAFDensity and MAFOutlierDetector that they share.

It turns scikit-learn parameters into a flow (the :meth:`BaseMAF._make_flow`
hook, :func:`skflow.nn.build_maf` here), validates inputs, runs
:func:`skflow.nn.training.train_flow`, scores and samples, and pickles the
torch module's state as plain numpy arrays (which skops can store too).
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import GroupShuffleSplit, train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._version import __version__
from ..nn import FlowEnsemble, build_maf, layer_orders
from ..nn.devices import DTYPES, private_random_state, resolve_device, seed_generator
from ..nn.made import ACTIVATIONS
from ..nn.threads import intra_op_threads, threads_for_rows
from ..nn.training import TrainingConfig, batch_schedule, index_dtype, train_flow
from ._gaussian import select_shrinkage, shrink_to_identity
from ._saved_state import DamagedModelError, check_loaded_weights, check_saved_flow
from ._scaling import fit_standardisation, standardise

_SCORE_CHUNK = 65536
# Rows the cross-validated choice of the Gaussian start's shrinkage looks at.
_MAX_SELECTION_ROWS = 100_000

FLOW_PARAMETERS_DOC = """
    n_flows : int, default=5
        Number of MAF layers (each one a MADE network).

    hidden_layer_sizes : tuple of int, default=(100, 100)
        Width of each hidden layer of every MADE.  Layers narrower than
        ``n_features - 1`` cannot carry every dependency and trigger a
        :class:`~skflow.nn.MADEWidthWarning`.

    activation : {"tanh", "relu", "elu", "gelu", "silu"}, default="tanh"
        Hidden-unit non-linearity.  The MAF paper used tanh for GAS and relu
        for its other UCI data sets.

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

    learning_rate : {"constant", "adaptive"}, default="constant"
        Learning-rate schedule (as in :class:`~sklearn.neural_network.MLPRegressor`).
        "constant" keeps ``learning_rate_init``.  "adaptive" halves the rate
        each time the validation log-likelihood (the training one without
        ``early_stopping``) has not improved by ``tol`` for
        ``max(1, n_iter_no_change // 3)`` epochs in a row; use it with a
        larger ``n_iter_no_change`` where the validation score is noisy.

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

    max_iter : int, default=200
        Maximum number of epochs (passes over the training rows).

    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, stop when their mean
        log-likelihood has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the best weights.  When False, training stops once
        the training loss stalls in the same way.

    validation_fraction : float, default=0.1
        Share of rows held out for early stopping (at least one row).

    n_iter_no_change : int, default=10
        Patience, in epochs.

    tol : float, default=1e-4
        Smallest improvement of the mean log-likelihood (nats) that counts.

    log_scale_bound : float or None, default=5.0
        The log-scale of each "affine" (and "affine_spline") layer is
        soft-clamped to ``(-bound, bound)`` with ``bound * tanh(a / bound)``,
        which keeps training stable on data with near-constant or duplicated
        columns.  None disables the bound.

    max_grad_norm : float or None, default=10.0
        Clip the global gradient norm at this value; None disables clipping.

    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
        Inputs and outputs are numpy arrays whatever the device.

    dtype : {"float32", "float64"}, default="float32"
        Precision of the torch model.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split and shuffling.  The
        global numpy and torch random states are never changed.  With an int,
        fitting on the CPU is reproducible (same machine, same torch thread
        count): the fit then keeps torch's thread count (one thread for
        small models) instead of choosing it by timing, since the rounding
        of the matrix products depends on it.

    verbose : int, default=0
        When > 0, print one line per epoch (train and validation
        log-likelihood, time) and progress lines for scoring or sampling more
        than 65,536 rows.

    warm_start : bool, default=False
        Continue training the fitted flow on the next call to ``fit``
        (the architecture parameters must be unchanged).

{init}

    base : {"normal", "made_mog"}, default="{base_default}"
        The base distribution.  "made_mog" is the MAF paper's MADE
        mixture of Gaussians ("MAF MoG"): each base variable given the
        earlier ones (and the context) is a mixture of ``n_components``
        Gaussians computed by a MADE of the same hidden sizes.  Sampling it
        takes one network pass per feature.

    n_components : int, default=10
        Mixture components per feature of the "made_mog" base.

    layer_type : {"affine", "spline", "affine_spline"}, default="affine"
        The autoregressive layers: "affine" (the MAF layer); "spline", a
        monotone rational-quadratic spline per feature (Durkan et al. 2019,
        "Neural Spline Flows") on ``[-tail_bound, tail_bound]`` with
        ``n_bins`` bins and the identity outside; or "affine_spline", the
        spline after an autoregressive shift and scale of each feature (the
        MAF layer's), which can move values from beyond ``tail_bound`` into
        the spline's interval.  Prefer "affine_spline" to "spline" on data
        with heavy-tailed columns.  The spline layers are more flexible, and
        slower per epoch, than "affine" (two to three times at 8 features).

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
"""

INIT_DOC = """
    init : {"gaussian", "identity"}, default="gaussian"
        Where training starts.  "gaussian" puts a dense lower-triangular
        affine layer first, set in closed form to whiten the full-covariance
        Gaussian of the training rows, its covariance shrunk towards a
        multiple of the identity by the amount with the best 5-fold
        cross-validated log-likelihood (``covariance_shrinkage_``); every MAF
        layer starts at the identity, so before the first step the model *is*
        that Gaussian.  With early stopping, training must then beat it on the
        validation rows by more than one standard error of the mean per-row
        gain, or the Gaussian is kept (refitted on all rows, an ensemble
        member's on its bootstrap sample; ``best_epoch_``
        is 0): on small data the model is never worse than a Gaussian.
        "identity" starts every layer at the identity (a standard normal; the
        MAF paper's start)."""


def flow_parameters_doc(init_doc: str = INIT_DOC, base_default: str = "normal") -> str:
    """The shared parameter section of the docstrings, with an estimator's own
    ``init`` entry and ``base`` default."""
    doc = FLOW_PARAMETERS_DOC.replace("{init}", init_doc.strip("\n"))
    return doc.replace("{base_default}", base_default).strip()


FLOW_ATTRIBUTES_DOC = """
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
"""

SCALING_ATTRIBUTES_DOC = """
    location_ : ndarray of shape (n_features,)
        The training rows' column means.  The flow models the standardised
        rows ``(X - location_) / scale_`` and every log-density includes the
        Jacobian ``-log(scale_).sum()``, so the model is the same in any
        units (``log p(cX) = log p(X) - n_features log c``).

    scale_ : ndarray of shape (n_features,)
        The training rows' column standard deviations (1 for a constant column).
"""


_BATCH_NORM_REFIT_ROWS = 1 << 20
# The architecture parameters, declared once.
_ARCHITECTURE_CONSTRAINTS: dict = {
    "n_flows": [Interval(Integral, 1, None, closed="left")],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "batch_norm": ["boolean"],
    "order": [StrOptions({"reverse", "identity", "random"}), "array-like"],
    "log_scale_bound": [Interval(Real, 0, None, closed="neither"), None],
    "dtype": [StrOptions(set(DTYPES))],
    "init": [StrOptions({"gaussian", "identity"})],
    "base": [StrOptions({"normal", "made_mog"})],
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "layer_type": [StrOptions({"affine", "spline", "affine_spline"})],
    "n_bins": [Interval(Integral, 2, None, closed="left")],
    "tail_bound": [Interval(Real, 0, None, closed="neither")],
}


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


def _shrunk_gaussian(x, rows=None, shrinkage=None):
    """Mean (tensor) and covariance (numpy) of ``x[rows]``, the covariance
    shrunk towards a multiple of the identity by ``shrinkage`` (None: the
    amount with the best 5-fold cross-validated log-likelihood), and that
    amount."""
    mean, cov = _gaussian_of(x, rows, ridge=False)
    if shrinkage is None:
        sample = x if rows is None else x[rows[:_MAX_SELECTION_ROWS].long()]
        shrinkage, _ = select_shrinkage(sample[:_MAX_SELECTION_ROWS].double().cpu().numpy())
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


def _best_gaussian_weight(gaussian: np.ndarray, flow: np.ndarray, caution: float = 0.0) -> float:
    """The weight ``w`` in 0, 0.05, ..., 1 of ``w N + (1 - w) flow`` with the
    best mean log-likelihood of rows whose log-densities under each are given
    (the smallest such weight on ties).  With ``caution`` > 0: the largest
    ``w`` whose mean is within ``caution`` standard errors (of the rows'
    paired differences) of the best."""
    weights = np.linspace(0.0, 1.0, 21)
    with np.errstate(divide="ignore"):
        rows = np.array([np.logaddexp(np.log(w) + gaussian, np.log1p(-w) + flow) for w in weights])
    means = rows.mean(1)
    best = 0
    for i in range(1, len(weights)):
        if means[i] > means[best] + 1e-12:
            best = i
    if caution > 0 and rows.shape[1] > 1:
        for i in range(len(weights) - 1, best, -1):
            if not _significant_gain(rows[best] - rows[i], caution):
                return float(weights[i])
    return float(weights[best])


def _gaussian_log_pdf(X: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Log-density of each row of ``X`` under ``N(mean, cov)``."""
    from scipy.linalg import cholesky, solve_triangular

    chol = cholesky(cov, lower=True)
    z = solve_triangular(chol, (np.asarray(X, dtype=np.float64) - mean).T, lower=True)
    return (-0.5 * np.square(z).sum(0) - np.log(np.diag(chol)).sum()
            - 0.5 * len(mean) * np.log(2 * np.pi))


@torch.no_grad()
def _row_log_likelihood(flow, x, context=None, chunk_size=65536) -> np.ndarray:
    """Per-row log-density (float64 numpy) of ``x`` under ``flow`` in eval mode."""
    was_training = flow.training
    flow.eval()
    with intra_op_threads(threads_for_rows(x.shape[0])):
        out = np.concatenate([
            flow.log_prob(x[i : i + chunk_size], None if context is None else context[i : i + chunk_size])
            .double().cpu().numpy() for i in range(0, x.shape[0], chunk_size)])
    flow.train(was_training)
    return out


def add_ridge(cov):
    """``cov`` (a torch tensor or numpy array) plus 1e-6 of its mean variance
    on the diagonal: invertible, and a row's density hardly changes."""
    ridge = 1e-6 * float(cov.diagonal().mean()) + 1e-12
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype) if torch.is_tensor(cov) else np.eye(cov.shape[-1])
    return cov + ridge * eye


def check_numeric_columns(X) -> None:
    """A clear error naming the first non-numeric column of a DataFrame."""
    columns, dtypes = getattr(X, "columns", None), getattr(X, "dtypes", None)
    if columns is None or dtypes is None or not hasattr(dtypes, "__iter__"):
        return
    for name, dtype in zip(columns, dtypes):
        if getattr(dtype, "kind", "O") not in "biuf":
            raise ValueError(f"column {name!r} is not numeric ({dtype}); encode it first, e.g. with "
                             "OneHotEncoder or OrdinalEncoder in a Pipeline")


def check_n_samples(n_samples, values_per_draw: int = 0) -> None:
    """A clear error for a number of draws that is not a non-negative int, or
    whose result (``values_per_draw`` float64 values each, with the working
    copies sampling needs) would not fit in this machine's memory."""
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, Integral):
        raise TypeError(f"n_samples must be an int, got {n_samples!r}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    needed = 3 * 8 * int(n_samples) * max(1, values_per_draw)  # the result, a float32 chunk copy, labels
    available = _available_memory()
    if available is not None and needed > available:
        raise ValueError(f"n_samples={n_samples} needs about {needed / 2**30:.1f} GiB, more than the "
                         f"{available / 2**30:.1f} GiB of memory available; draw in smaller batches")


def _available_memory() -> int | None:
    """Bytes of memory available to this process (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


class FewRowsWarning(UserWarning):
    """A fit on fewer rows than a full-covariance Gaussian needs: the model is mostly guesswork."""


def warn_if_few_rows(n_rows: int, n_features: int) -> None:
    """Warn when ``n_rows`` cannot determine a Gaussian in ``n_features`` dimensions."""
    if n_rows < n_features + 2:
        warnings.warn(f"fitting on {n_rows} rows of {n_features} features: fewer than n_features + 2, so "
                      "even one Gaussian's covariance is not determined by the data; the model's "
                      "densities are mostly the shrinkage and the architecture's guesses", FewRowsWarning,
                      stacklevel=4)


def describe_stopping(est) -> str:
    """Where a fit stopped, in words (printed with ``verbose`` and by ``skflow fit``)."""
    run = est.n_iter_
    if not est.early_stopping:
        return f"trained {run} epochs (kept the last weights)"
    if est._fit_epochs < est.max_iter:
        head = f"stopped early at epoch {run}"
    else:
        head = f"reached max_iter={est.max_iter} epochs"
    if est.best_epoch_ == run:
        return f"{head}; the last epoch was the best on validation"
    if np.ndim(est.best_epoch_) == 0 and est.best_epoch_ == 0:
        start = "the Gaussian start" if est.init == "gaussian" else "the start"
        return f"{head}; no epoch beat {start} on validation, so {start} was kept"
    return f"{head}, best validation at epoch {est.best_epoch_} (restored)"


class BaseMAF(BaseEstimator):
    """What every skflow estimator shares: parameters, the fit loop, scoring, sampling, pickling."""

    _parameter_constraints: dict = {
        **_ARCHITECTURE_CONSTRAINTS,
        "learning_rate": [StrOptions({"adaptive", "constant"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "compile": ["boolean"],
    }

    def __init__(
        self,
        *,
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
        base="normal",
        n_components=10,
        layer_type="affine",
        n_bins=8,
        tail_bound=5.0,
    ):
        self.n_flows = n_flows
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_norm = batch_norm
        self.order = order
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.log_scale_bound = log_scale_bound
        self.max_grad_norm = max_grad_norm
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.compile = compile
        self.init = init
        self.base = base
        self.n_components = n_components
        self.layer_type = layer_type
        self.n_bins = n_bins
        self.tail_bound = tail_bound

    #: The parameters that define the flow's architecture (what ``_flow_config``
    #: records and a warm start must keep).
    _architecture_parameters = tuple(_ARCHITECTURE_CONSTRAINTS)

    # ------------------------------------------------------------------ fit
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or not all(
            isinstance(s, Integral) and s >= 1 for s in sizes.tolist()
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a non-empty sequence of "
                f"positive ints, got {self.hidden_layer_sizes!r}"
            )
        return tuple(int(s) for s in sizes)

    #: What ``init="gaussian"`` puts first (see :func:`skflow.nn.build_maf`).
    _gaussian_start = True

    def _flow_config(self, n_features: int, generator, context_features: int = 0) -> dict:
        order = self.order if isinstance(self.order, str) else [list(map(int, o)) for o in self.order]
        try:
            orders = layer_orders(n_features, self.n_flows, order, generator)
            for o in orders:
                if sorted(o) != list(range(n_features)):
                    raise ValueError(f"{o} is not a permutation of range({n_features})")
        except ValueError as exc:
            raise ValueError(f"invalid order parameter: {exc}") from None
        config = dict(
            n_features=n_features,
            n_flows=self.n_flows,
            hidden_sizes=self._hidden_sizes(),
            activation=self.activation,
            batch_norm=self.batch_norm,
            order=orders,
            log_scale_bound=None if self.log_scale_bound is None else float(self.log_scale_bound),
            dtype=self.dtype,
            gaussian_start=self._gaussian_start if self.init == "gaussian" else False,
        )
        if self.base != "normal":  # older models' configs name no base
            config.update(base=self.base, n_components=int(self.n_components))
        if self.layer_type != "affine":  # nor a layer type
            config.update(transform=self.layer_type, n_bins=int(self.n_bins),
                          tail_bound=float(self.tail_bound))
        if context_features:
            config["context_features"] = context_features
        return config

    def _make_flow(self, config: dict, generator: torch.Generator):
        """Build the (untrained) torch flow that ``config`` (from
        :meth:`_flow_config`) describes, its weights drawn from ``generator``.
        Estimators with another kind of flow override this and
        :meth:`_flow_config`."""
        config = dict(config)
        config["dtype"] = DTYPES[config["dtype"]]
        return build_maf(generator=generator, **config)

    def _to_tensor(self, X: np.ndarray, device=None) -> torch.Tensor:
        # torch wraps only writeable arrays with positive strides (not joblib
        # memmaps nor X[::-1]); np.require copies exactly when needed.
        X = np.require(X, dtype=self.dtype, requirements=["C", "W"])
        return torch.from_numpy(X).to(device or self.device_)

    def _warm(self) -> bool:
        return self.warm_start and hasattr(self, "flow_")

    def _fit_keeping_state(self, fit, *args):
        """``fit(*args)``; on any failure, restore the estimator as it was."""
        saved = dict(self.__dict__)
        try:
            fit(*args)
        except BaseException:
            # A failed fit must leave a previously fitted estimator as it was.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def _validation_split(self, n: int, rng, stratify):
        """Held-out and training row positions for early stopping."""
        n_val = min(n - 1, max(1, int(round(self.validation_fraction * n))))
        if stratify is not None:
            try:  # every class in both parts where the counts allow it
                train, val = train_test_split(np.arange(n), test_size=n_val, stratify=stratify,
                                              random_state=rng)
                return val, train
            except ValueError:
                pass
        perm = rng.permutation(n)
        return perm[:n_val].copy(), perm[n_val:]

    def _start_at_gaussian(self, flow, x_all, context, train_index) -> None:
        """Set the Gaussian start layer (``init="gaussian"``) from the training rows."""
        flow.transforms[0].set_gaussian(*_gaussian_of(x_all, train_index))

    def _kept_over_start(self, start: np.ndarray, trained: np.ndarray) -> None:
        """Called when training beat the Gaussian start significantly, with
        the validation rows' log-densities under each (a hook; nothing here)."""

    def _validation_score(self, x_val, c_val):
        """What early stopping watches (see :func:`~skflow.nn.train_flow`); None:
        the held-out mean log-likelihood."""
        return None

    def _train(self, X: np.ndarray, context: np.ndarray | None = None, stratify=None, split=None,
               refit_start: bool = True):
        """Train the flow on the validated rows ``X`` (given ``context``, a
        float array with one row per row of ``X``, for a conditional flow);
        set the fitted attributes; return the held-out row positions (or None).

        ``stratify`` (labels) keeps every class in both parts of the
        early-stopping split where the counts allow it.  ``split``, a pair
        ``(validation rows or None, training rows)``, replaces that split
        (the training rows may repeat: an ensemble member's bootstrap sample).
        A Gaussian start that training does not beat significantly is kept,
        refitted on every row of ``X`` with ``refit_start`` (else the
        training rows': an ensemble member keeps its bootstrap sample's).
        """
        warm = self._warm()
        context_features = 0 if context is None else context.shape[1]
        device = resolve_device(self.device)
        rng = private_random_state(self.random_state)
        generator = seed_generator(rng)
        n = X.shape[0]

        if warm:
            config = self._flow_config_
            new = self._flow_config(X.shape[1], generator, context_features)
            if {k: v for k, v in new.items() if k != "order"} != {
                k: v for k, v in config.items() if k != "order"
            }:
                names = ", ".join(n for n in self._architecture_parameters if n != "order")
                raise ValueError(
                    f"warm_start=True needs the same architecture ({names}) as the fitted "
                    "model; set warm_start=False to start afresh"
                )
            # Train a copy: an interrupted warm start must not damage the fitted model.
            flow = copy.deepcopy(self.flow_).to(device)
        else:
            config = self._flow_config(X.shape[1], generator, context_features)
            flow = self._make_flow(config, generator).to(device)

        # The data are held once (shared with X when dtypes match); training
        # indexes into them, only the validation rows are copied.
        x_all = self._to_tensor(X, device)
        c_all = None if context is None else self._to_tensor(context, device)
        x_val = c_val = None
        val_index = train_index = None
        n_train = n
        if split is not None or self.early_stopping:
            val_index, train_rows = split if split is not None else self._validation_split(n, rng, stratify)
            train_index = torch.from_numpy(train_rows).to(device=device, dtype=index_dtype(n))
            n_train = len(train_rows)
            del train_rows
        if val_index is not None:
            held_out = torch.from_numpy(val_index).to(device)
            x_val = x_all[held_out]
            c_val = None if c_all is None else c_all[held_out]

        validation_score = None if x_val is None else self._validation_score(x_val, c_val)
        start = None
        if not warm and config.get("gaussian_start"):
            with intra_op_threads(1):  # small factorisations and copies
                self._start_at_gaussian(flow, x_all, c_all, train_index)
            if x_val is not None and validation_score is None:
                start = (copy.deepcopy(flow.state_dict()), _row_log_likelihood(flow, x_val, c_val))
        batch_size, learning_rate = batch_schedule(self.batch_size, self.learning_rate_init, n_train)
        config_training = TrainingConfig(
            learning_rate=learning_rate,
            learning_rate_schedule=self.learning_rate,
            weight_decay=self.weight_decay,
            batch_size=batch_size,
            max_epochs=self.max_iter,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            max_grad_norm=self.max_grad_norm,
            compile=self.compile,
            # A seed asks for the same model each time: no timing-based thread count.
            tune_threads=self.random_state is None,
        )
        result = train_flow(flow, x_all, x_val, train_index=train_index, context=c_all, context_val=c_val,
                            validation_score=validation_score,
                            config=config_training, generator=generator, log=print if self.verbose else None)
        if flow.has_statistics():  # without batch norm, no copy of the data either
            if n > _BATCH_NORM_REFIT_ROWS:
                # A random subset, gathered once and overwritten layer by layer:
                # the statistics of a million rows are the full data's to about
                # 1e-3 standard deviations, for a fraction of the memory.
                rows = torch.randperm(n, generator=generator, dtype=index_dtype(n))[:_BATCH_NORM_REFIT_ROWS]
                rows = rows.sort().values.to(device)
                flow.refit_batch_norm(x_all[rows], overwrite=True,
                                      context=None if c_all is None else c_all[rows])
            else:
                flow.refit_batch_norm(x_all, context=c_all)
        if start is not None:
            trained = _row_log_likelihood(flow, x_val, c_val) if result.best_epoch > 0 else start[1]
            if result.best_epoch > 0 and _significant_gain(trained - start[1]):
                self._kept_over_start(start[1], trained)
            else:
                # No epoch beat the start, or the gain is within the noise of the
                # validation rows: keep the start (with refit_start, refitted on
                # every row, as the user's one Gaussian would be).
                flow.load_state_dict(start[0])
                if refit_start:
                    with intra_op_threads(1):
                        self._start_at_gaussian(flow, x_all, c_all, None)
                result.best_epoch = 0
                result.best_validation_score = float(start[1].mean())
        del x_val, c_val, train_index, start

        self.flow_ = flow
        self.device_ = device
        self.batch_size_ = batch_size
        self._flow_config_ = config
        previous_epochs = self.n_iter_ if warm else 0
        self.n_iter_ = result.n_epochs + previous_epochs
        self.best_epoch_ = (result.best_epoch if self.early_stopping else result.n_epochs) + previous_epochs
        previous = self.loss_curve_ if warm else []
        self.loss_curve_ = previous + result.loss_curve
        if self.early_stopping:
            prev_val = (self.validation_scores_ or []) if warm else []
            self.validation_scores_ = prev_val + result.validation_scores
            self.best_validation_score_ = result.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._fit_epochs = result.n_epochs
        if self.verbose:
            print(describe_stopping(self))
        return val_index

    # -------------------------------------------------------------- scoring
    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        check_numeric_columns(X)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _standardised(self, X: np.ndarray, what: str = "X") -> tuple[np.ndarray, np.ndarray]:
        """``(X - location_) / scale_`` in the model's dtype and the rows it
        cannot hold (see :func:`~skflow.estimators._scaling.standardise`).
        Models saved before the standardisation existed have no
        ``location_`` and see ``X`` unchanged."""
        location = getattr(self, "location_", None)
        if location is None:
            return np.require(X, dtype=self.dtype), np.zeros(X.shape[0], dtype=bool)
        # float64 rows stay float64 (the closed-form Gaussians use every digit;
        # the flow casts them as it always did); float32 rows stay float32.
        return standardise(X, location, self.scale_, np.promote_types(X.dtype, self.dtype))

    def _log_scale(self) -> float:
        """The log-Jacobian of the standardisation, ``log(scale_).sum()``."""
        scale = getattr(self, "scale_", None)
        return 0.0 if scale is None else float(np.log(scale).sum())

    def _progress(self, what: str, done: int, total: int, start: float) -> None:
        # Long calls report progress when verbose, once per chunk.
        if self.verbose and total > _SCORE_CHUNK:
            print(f"{what} {done:,} / {total:,} rows  {time.perf_counter() - start:6.1f}s")

    @torch.no_grad()
    def _log_density(self, X: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Log-density of each row of ``X`` (given the rows of ``context``), float64."""
        out = np.empty(X.shape[0], dtype=np.float64)
        began = time.perf_counter()
        with intra_op_threads(threads_for_rows(X.shape[0])):
            for start in range(0, X.shape[0], _SCORE_CHUNK):
                chunk = self._to_tensor(X[start : start + _SCORE_CHUNK])
                c = None if context is None else self._to_tensor(context[start : start + _SCORE_CHUNK])
                out[start : start + chunk.shape[0]] = self.flow_.log_prob(chunk, c).double().cpu().numpy()
                self._progress("scored", start + chunk.shape[0], X.shape[0], began)
        if np.isnan(out).any():
            raise FloatingPointError(
                "the model produced NaN log-densities; it was probably fitted on data "
                "of a very different scale. Refit on standardised data."
            )
        return out

    @torch.no_grad()
    def _draw(self, n: int, generator, context: np.ndarray | None = None) -> np.ndarray:
        """``n`` draws of the flow (one per row of ``context``), float64."""
        out = np.empty((n, self.flow_.n_features), dtype=np.float64)
        began = time.perf_counter()
        with intra_op_threads(threads_for_rows(n)):
            for start in range(0, n, _SCORE_CHUNK):
                m = min(_SCORE_CHUNK, n - start)
                c = None if context is None else self._to_tensor(context[start : start + m])
                out[start : start + m] = self.flow_.sample(m, generator, c).double().cpu().numpy()
                self._progress("sampled", start + m, n, began)
        return out

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = super().__getstate__()
        if "flow_" in state:
            state = dict(state)
            # Plain numpy arrays: a model fitted on CUDA loads on a CPU-only
            # machine, and skops.io can store the state without trusting torch.
            state["flow_"] = {k: v.detach().cpu().numpy() for k, v in self.flow_.state_dict().items()}
            state["device_"] = str(self.device_)
        state["_skflow_version"] = __version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved_version = state.pop("_skflow_version", None)
        if saved_version is not None and saved_version != __version__:
            warnings.warn(
                f"Trying to unpickle {type(self).__name__} from skflow {saved_version} "
                f"with skflow {__version__}; this might lead to breaking code or invalid "
                "results. Use at your own risk.",
                UserWarning,
                stacklevel=2,
            )
        # Models saved before the init parameter existed started at the identity.
        state.setdefault("init", "identity")
        state.setdefault("base", "normal")
        state.setdefault("n_components", 10)
        state.setdefault("layer_type", "affine")
        state.setdefault("n_bins", 8)
        state.setdefault("tail_bound", 3.0)
        flow_state = state.get("flow_")
        super().__setstate__(state)
        if flow_state is None:
            return
        check_saved_flow(getattr(self, "_flow_config_", None), flow_state)
        try:
            # The weights are overwritten at once; a private generator keeps the
            # global torch RNG untouched (unpickling and deepcopy must not move it).
            flow = self._make_flow(self._flow_config_, torch.Generator())
            check_loaded_weights(flow, flow_state)
            # Older pickles hold CPU tensors, newer ones numpy arrays.
            flow.load_state_dict({k: torch.as_tensor(v) for k, v in flow_state.items()})
            device = torch.device(state["device_"])
        except DamagedModelError:
            raise
        except Exception as exc:  # any field a consistent file cannot have
            raise DamagedModelError(f"the saved {type(self).__name__} cannot be rebuilt (a damaged or "
                                    f"edited file): {type(exc).__name__}: {exc}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            if self.device != "auto":
                warnings.warn(
                    f"this model was fitted on {device} but CUDA is not available; "
                    "it was loaded on the CPU",
                    UserWarning,
                    stacklevel=2,
                )
            device = torch.device("cpu")
        self.flow_ = flow.to(device).eval()
        self.device_ = device


ENSEMBLE_PARAMETERS_DOC = """
    n_estimators : int, default=1
        Number of flows.  With more than one, each is trained on a bootstrap
        sample of the training rows (all validated on the same held-out rows)
        and the model is their equal-weight mixture: ``score_samples`` is the
        log-mean-exp of their log-densities and ``sample`` draws each row from
        one of them.  The per-fit attributes ``n_iter_``, ``best_epoch_``,
        ``covariance_shrinkage_`` (arrays), ``loss_curve_`` and
        ``validation_scores_`` (lists) then hold one entry per flow, and
        ``best_validation_score_`` is the mixture's.

    n_jobs : int or None, default=None
        Number of processes that train the ``n_estimators`` flows in parallel
        (:class:`joblib.Parallel` semantics: None is 1 unless in a
        :func:`joblib.parallel_backend` context, -1 is every CPU).

    gaussian_weight : "auto" or float in [0, 1], default="auto"
        The model is the mixture ``w N(x) + (1 - w) flow(x)`` of the flow and
        the Gaussian of the training rows (its covariance shrunk as the
        Gaussian start's).  ``"auto"`` picks ``w`` among 0, 0.05, ..., 1 by the
        log-likelihood of the early-stopping validation rows, under the flow
        and the Gaussian fitted without them (MAFDensity: the best ``w``;
        MAFOutlierDetector: the largest ``w`` within three standard errors of
        the best, so that the flow's detail must clearly pay on held-out rows
        before it shapes the scores); it is 0 (the flow alone) without
        ``init="gaussian"`` and early stopping, with ``n_estimators > 1``, in a
        warm start, and when training did not beat the Gaussian start (the
        flow is then that Gaussian).  A float fixes ``w``.
"""

MIXTURE_ATTRIBUTES_DOC = """
    gaussian_weight_ : float
        The Gaussian's weight ``w`` in the fitted mixture (see
        ``gaussian_weight``); 0 means the flow alone.

    gaussian_mean_ : ndarray of shape (n_features,)
        The Gaussian's mean (only when ``gaussian_weight_ > 0``), of the
        standardised rows ``(X - location_) / scale_``.

    gaussian_covariance_ : ndarray of shape (n_features, n_features)
        The Gaussian's covariance (only when ``gaussian_weight_ > 0``), of
        the standardised rows.
"""


def _fit_member(template, X, split, seed):
    """One ensemble member: ``template``'s flow trained on ``split``'s rows."""
    member = clone(template).set_params(n_estimators=1, n_jobs=None, random_state=seed,
                                        warm_start=False, verbose=0, gaussian_weight=0.0)
    member._train(X, split=split, refit_start=False)
    return member


class UnconditionalMAF(BaseMAF):
    """A flow of ``X`` alone: fit(X), score_samples, sample (MAFDensity, MAFOutlierDetector)."""

    _parameter_constraints: dict = {
        **BaseMAF._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "gaussian_weight": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        *,
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
        base="normal",
        n_components=10,
        layer_type="affine",
        n_bins=8,
        tail_bound=5.0,
        n_estimators=1,
        n_jobs=None,
        gaussian_weight="auto",
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
            base=base,
            n_components=n_components,
            layer_type=layer_type,
            n_bins=n_bins,
            tail_bound=tail_bound,
        )
        self.n_estimators = n_estimators
        self.n_jobs = n_jobs
        self.gaussian_weight = gaussian_weight

    def __setstate__(self, state):
        # Models saved before ensembles existed had one flow.
        state = dict(state)
        state.setdefault("n_estimators", 1)
        state.setdefault("n_jobs", None)
        # ... and before the mixture with the Gaussian: the flow alone.
        state.setdefault("gaussian_weight", 0.0)
        if "flow_" in state:
            state.setdefault("gaussian_weight_", 0.0)
        super().__setstate__(state)

    def _make_flow(self, config: dict, generator: torch.Generator):
        if "members" in config:
            return FlowEnsemble([super(UnconditionalMAF, self)._make_flow(c, generator)
                                 for c in config["members"]])
        return super()._make_flow(config, generator)

    def _train_ensemble(self, X: np.ndarray, split=None):
        """Train ``n_estimators`` flows on bootstrap samples of the training
        rows of ``split`` (or of a random split); set the fitted attributes of
        their mixture; return the held-out row positions (or None)."""
        if self.warm_start:
            raise ValueError("warm_start=True is not supported with n_estimators > 1")
        rng = private_random_state(self.random_state)
        n = X.shape[0]
        if split is not None:
            val_index, train_rows = split
        elif self.early_stopping:
            val_index, train_rows = self._validation_split(n, rng, None)
        else:
            val_index, train_rows = None, np.arange(n)
        splits = [(val_index, np.sort(rng.choice(train_rows, len(train_rows), replace=True)))
                  for _ in range(self.n_estimators)]
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        members = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(self, X, split, int(seed)) for split, seed in zip(splits, seeds))
        device = resolve_device(self.device)
        self.flow_ = FlowEnsemble([m.flow_ for m in members]).to(device).eval()
        self.device_ = device
        self._flow_config_ = {"members": [m._flow_config_ for m in members]}
        self.batch_size_ = members[0].batch_size_
        self.n_iter_ = np.array([m.n_iter_ for m in members])
        self.best_epoch_ = np.array([m.best_epoch_ for m in members])
        self.loss_curve_ = [m.loss_curve_ for m in members]
        self.validation_scores_ = [m.validation_scores_ for m in members] if self.early_stopping else None
        self.best_validation_score_ = None
        if val_index is not None:
            self.best_validation_score_ = float(self._log_density(X[val_index]).mean())
        if self.init == "gaussian":
            self.covariance_shrinkage_ = np.array([m.covariance_shrinkage_ for m in members])
        self._fit_epochs = int(self.n_iter_.max())
        return val_index

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None, groups: ArrayLike | None = None):
        """Fit the flow to ``X`` by maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows; at least 2.
        y : None
            Ignored, present for API consistency.
        groups : array-like of shape (n_samples,), default=None
            The source of each row (a speaker, a recording day, a batch).
            With early stopping, the validation rows are then whole groups
            (about ``validation_fraction`` of them), so early stopping and the
            Gaussian start's significance test judge the flow on sources it
            was not trained on -- what matters when new data come from new
            sources.  In a pipeline, pass it as ``<step>__groups``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit_keeping_state(self._fit, X, groups)

    def _fit(self, X, groups=None):
        """Fit; return the validated, standardised ``X`` and the held-out row positions (or None)."""
        check_numeric_columns(X)
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=not self._warm()
        )
        warn_if_few_rows(*X.shape)
        if not self._warm():  # a warm start keeps the scales the flow was trained in
            self.location_, self.scale_ = fit_standardisation(X)
        X, outside = self._standardised(X)
        if outside.any():
            raise ValueError(f"row {int(np.flatnonzero(outside)[0])} of X lies too many standard deviations "
                             "beyond the rows the warm-started model was first fitted on; fit afresh "
                             "(warm_start=False)")
        split = None
        self.gaussian_weight_ = 0.0  # until this fit sets it (scoring inside the fit sees the flow alone)
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (X.shape[0],):
                raise ValueError(f"groups must hold one entry per row of X ({X.shape[0]}), "
                                 f"got shape {groups.shape}")
            if self.early_stopping:
                split = self._group_split(groups)
        if self.n_estimators > 1:
            val_index = self._train_ensemble(X, split)
        else:
            val_index = self._train(X, split=split)
        self._set_gaussian_mixture(X)
        return X, val_index

    #: ``gaussian_weight="auto"``: how many standard errors of validation
    #: log-likelihood the flow must gain before less weight goes to the
    #: Gaussian (0: the best weight; the outlier detector is cautious).
    _gaussian_weight_caution = 0.0

    def _kept_over_start(self, start: np.ndarray, trained: np.ndarray) -> None:
        self._mixing_rows = (start, trained)  # for the mixture with the Gaussian

    def _set_gaussian_mixture(self, X: np.ndarray) -> None:
        """Set ``gaussian_weight_`` (and the Gaussian's moments when it is positive)."""
        rows = self.__dict__.pop("_mixing_rows", None)
        weight = self.gaussian_weight
        if weight == "auto":
            weight = (0.0 if rows is None or self.n_estimators > 1
                      else _best_gaussian_weight(*rows, caution=self._gaussian_weight_caution))
        self.gaussian_weight_ = float(weight)
        for name in ("gaussian_mean_", "gaussian_covariance_"):
            self.__dict__.pop(name, None)
        if self.gaussian_weight_ == 0.0:
            return
        shrinkage = getattr(self, "covariance_shrinkage_", None)  # the start's, where there is one
        # torch wraps only writeable arrays (not read-only memmaps): np.require copies those.
        mean, cov, _ = _shrunk_gaussian(torch.from_numpy(np.require(X, np.float64, ["W"])), None,
                                        None if shrinkage is None or np.ndim(shrinkage) > 0 else float(shrinkage))
        self.gaussian_mean_ = mean.numpy()
        self.gaussian_covariance_ = add_ridge(cov)

    def _log_density(self, X: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        weight = getattr(self, "gaussian_weight_", 0.0)
        if weight == 0.0:
            return super()._log_density(X, context)
        gaussian = _gaussian_log_pdf(X, self.gaussian_mean_, self.gaussian_covariance_)
        if weight == 1.0:
            return gaussian
        flow = super()._log_density(X, context)
        return np.logaddexp(np.log(weight) + gaussian, np.log1p(-weight) + flow)

    def _draw(self, n: int, generator, context: np.ndarray | None = None) -> np.ndarray:
        weight = getattr(self, "gaussian_weight_", 0.0)
        if weight == 0.0:
            return super()._draw(n, generator, context)
        from_gaussian = (torch.rand(n, generator=generator, dtype=torch.float64) < weight).numpy()
        out = np.empty((n, self.n_features_in_))
        out[~from_gaussian] = super()._draw(int((~from_gaussian).sum()), generator, context)
        noise = torch.randn(int(from_gaussian.sum()), self.n_features_in_, generator=generator,
                            dtype=torch.float64).numpy()
        out[from_gaussian] = self.gaussian_mean_ + noise @ np.linalg.cholesky(self.gaussian_covariance_).T
        return out

    def _group_split(self, groups: np.ndarray):
        """(validation rows, training rows) with whole groups held out."""
        if len(np.unique(groups)) < 2:
            raise ValueError("groups needs at least two distinct values to hold one out for early stopping")
        splitter = GroupShuffleSplit(n_splits=1, test_size=self.validation_fraction,
                                     random_state=private_random_state(self.random_state).randint(2**31 - 1))
        train, val = next(splitter.split(np.zeros(len(groups)), groups=groups))
        return val, train

    def _start_at_gaussian(self, flow, x_all, context, train_index) -> None:
        """The Gaussian of the training rows, its covariance shrunk towards a
        multiple of the identity by the amount with the best 5-fold
        cross-validated log-likelihood (``covariance_shrinkage_``)."""
        mean, cov, self.covariance_shrinkage_ = _shrunk_gaussian(x_all, train_index)
        flow.transforms[0].set_gaussian(mean, torch.from_numpy(cov))

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of each row of ``X`` under the fitted flow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,), dtype float64
            Natural-log densities.  Rows far outside the float range of the
            model's dtype get ``-inf``.
        """
        Z, outside = self._standardised(self._validated(X))
        out = self._log_density(Z) - self._log_scale()
        out[outside] = -np.inf
        return out

    @torch.no_grad()
    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw samples from the fitted flow.

        Sampling inverts every MAF layer one dimension at a time, computing
        each hidden unit once: about one network pass per layer.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw; 0 gives an empty array.
        random_state : int, RandomState instance or None, default=None
            Seeds the base noise; the same seed gives the same samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), dtype float64
        """
        check_is_fitted(self)
        check_n_samples(n_samples, self.n_features_in_)
        draws = self._draw(int(n_samples), seed_generator(private_random_state(random_state)))
        location = getattr(self, "location_", None)
        return draws if location is None else draws * self.scale_ + location
