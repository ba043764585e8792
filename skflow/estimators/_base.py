"""What every estimator shares: :class:`BaseMAF`.

It turns scikit-learn parameters into a flow (the :meth:`BaseMAF._make_flow`
hook, :func:`skflow.nn.build_maf` here), validates inputs, runs
:func:`skflow.nn.training.train_flow`, scores and samples, and pickles the
torch module's state as plain numpy arrays (which skops can store too).
"""

from __future__ import annotations

import copy
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._version import __version__
from ..nn import AUTOREGRESSIVE_TRANSFORMS, BASES, build_maf, layer_orders
from ..nn.devices import DTYPES, private_random_state, resolve_device, seed_generator
from ..nn.made import ACTIVATIONS
from ..nn.training import TrainingConfig, batch_schedule
from ._architecture import LayerTypeOptions, resolve_activation, resolve_layer_type
from ._fitting import fit_flow
from ._mixture_start import base_config
from ._saved_state import DamagedModelError, check_loaded_weights, check_saved_flow
from ._scaling import fit_standardisation, refuse_rows_beyond_reach, standardise
from ._validation import check_numeric_columns, describe_stopping

_SCORE_CHUNK = 65536
#: The layout of a fitted estimator's pickled state; a file of another layout
#: is refused with a message instead of being patched up.
PICKLE_FORMAT = 1
#: ``n_iter_no_change="auto"`` waits at least this many optimiser steps
#: (besides 10 epochs): on a few hundred rows an epoch is one step.
MIN_PATIENCE_STEPS = 100
#: ``max_iter="auto"``: this many epochs, or more where they hold fewer than
#: ``AUTO_MIN_STEPS`` optimiser steps (on a few hundred rows an epoch is a
#: single step, and 200 steps stopped training that was still improving).
AUTO_MAX_EPOCHS = 200
AUTO_MIN_STEPS = 2000

# The architecture parameters, declared once.
_ARCHITECTURE_CONSTRAINTS: dict = {
    "n_flows": [Interval(Integral, 1, None, closed="left")],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"auto", *ACTIVATIONS})],
    "batch_norm": ["boolean"],
    "order": [StrOptions({"reverse", "identity", "random"}), "array-like"],
    "log_scale_bound": [Interval(Real, 0, None, closed="neither"), None],
    "dtype": [StrOptions(set(DTYPES))],
    "init": [StrOptions({"gaussian", "identity"})],
    # Live views of the registries: a registered layer type or base is accepted.
    "base": [StrOptions(BASES.keys())],
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "layer_type": [StrOptions(LayerTypeOptions(AUTOREGRESSIVE_TRANSFORMS))],
    "n_bins": [Interval(Integral, 2, None, closed="left")],
    "tail_bound": [Interval(Real, 0, None, closed="neither")],
}


class BaseMAF(BaseEstimator):
    """What every skflow estimator shares: parameters, the fit loop, scoring, sampling, pickling."""

    _parameter_constraints: dict = {
        **_ARCHITECTURE_CONSTRAINTS,
        "learning_rate": [StrOptions({"adaptive", "constant", "cosine"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "average_decay": [Interval(Real, 0, 1, closed="left"), None],
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
        self.max_time = max_time
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.log_scale_bound = log_scale_bound
        self.max_grad_norm = max_grad_norm
        self.average_decay = average_decay
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

    def _flow_config(self, n_features: int, generator, context_features: int = 0,
                     start_layer=False, n_rows: int = 0) -> dict:
        """The architecture of the flow to build (what a warm start must
        keep); ``start_layer``: the Gaussian start's first layer (the
        ``gaussian_start`` of :func:`~skflow.nn.build_maf`), False for none;
        ``n_rows``: the rows of the fit (for ``activation="auto"``)."""
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
            activation=resolve_activation(self.activation, n_rows),
            batch_norm=self.batch_norm,
            order=orders,
            log_scale_bound=None if self.log_scale_bound is None else float(self.log_scale_bound),
            dtype=self.dtype,
            gaussian_start=start_layer,
        )
        if self.base != "normal":  # older models' configs name no base
            config.update(base=self.base, n_components=int(self.n_components))
        layer_type = resolve_layer_type(self.layer_type, n_features, bool(start_layer))
        if layer_type != "affine":  # nor a layer type
            config.update(transform=layer_type, n_bins=int(self.n_bins), tail_bound=float(self.tail_bound))
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

    def _continuing(self, partial: bool = False) -> bool:
        """Whether this fit continues the fitted flow: a warm start, or any ``partial_fit`` after the first."""
        return self._warm() or (partial and hasattr(self, "flow_"))

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

    def _train(self, X: np.ndarray, context: np.ndarray | None = None, *, start=None, stratify=None,
               split=None, refit_start: bool = True, validation_score=None, partial: bool = False,
               stream=None, rival: float | None = None, afresh: bool = False,
               time_left: float | None = None):
        """Train the flow on the validated, standardised rows ``X`` (given
        ``context``, one row per row of ``X``, for a conditional flow) with
        :func:`~skflow.estimators._fitting.fit_flow`; set the fitted
        attributes; return the :class:`~skflow.estimators._fitting.FitResult`
        and the held-out row positions (or None).

        ``start`` is the Gaussian start (a strategy object; None: every layer
        at the identity), applied unless this is a warm start.  ``stratify``
        (labels) keeps every class in both parts of the early-stopping split
        where the counts allow it.  ``split``, a pair ``(validation rows or
        None, training rows)``, replaces that split (the training rows may
        repeat: an ensemble member's bootstrap sample).  ``refit_start`` and
        ``validation_score`` go to ``fit_flow``.  ``partial``: one epoch on
        every row of ``X``, no early stopping, continuing the fitted flow (and
        its optimiser, where this estimator kept it) if there is one.
        ``stream`` (a :class:`~skflow.estimators._streamed.StreamedRows`)
        is what epochs train on, the training rows of ``X`` a sample of it.
        ``rival`` goes to ``fit_flow``: where the start does not score above
        it on the validation rows, nothing is trained or set and the result
        is None.  ``afresh``: a new flow even where ``warm_start`` would
        continue the fitted one (a second start within one fit).
        ``time_left``: the seconds training may run, in place of ``max_time``
        (what a second start has left of it).
        """
        warm = not afresh and self._continuing(partial)
        context_features = 0 if context is None else context.shape[1]
        device = resolve_device(self.device)
        rng = private_random_state(self.random_state)
        generator = seed_generator(rng)
        n = X.shape[0]
        start_layer = False if start is None else start.layer

        n_rows = n if stream is None else stream.n_total
        if warm:
            config = self._flow_config_
            new = self._flow_config(X.shape[1], generator, context_features, start_layer, n_rows)
            if self.activation == "auto":  # the rows of a continued fit do not change the units
                new["activation"] = config["activation"]
            new.update(base_config(self.flow_))  # a base the start chose stays
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
            config = self._flow_config(X.shape[1], generator, context_features, start_layer, n_rows)
            flow = self._make_flow(config, generator).to(device)

        # The data are held once (shared with X when dtypes match); training
        # indexes into them, only the validation rows are copied.
        x_all = self._to_tensor(X, device)
        c_all = None if context is None else self._to_tensor(context, device)
        val_index = train_rows = None
        if not partial and (split is not None or self.early_stopping):
            val_index, train_rows = split if split is not None else self._validation_split(n, rng, stratify)
        n_train = n if train_rows is None else len(train_rows)
        # A step's batch is every rank's together: the schedule sees all ranks' rows,
        # and each rank takes its share of the batch.
        batch_size, learning_rate = batch_schedule(self.batch_size, self.learning_rate_init,
                                                   n_train if stream is None else stream.n_total)
        world = 1 if stream is None else stream.world
        data_parallel = stream is not None and stream.source.distributed
        training = TrainingConfig(
            learning_rate=learning_rate,
            learning_rate_schedule=self.learning_rate,
            weight_decay=self.weight_decay,
            batch_size=max(1, round(batch_size / world)),
            max_epochs=1 if partial else AUTO_MAX_EPOCHS if self.max_iter == "auto" else self.max_iter,
            max_seconds=self.max_time if time_left is None else time_left,
            min_steps=AUTO_MIN_STEPS if self.max_iter == "auto" and not partial else 0,
            n_iter_no_change=10 if self.n_iter_no_change == "auto" else self.n_iter_no_change,
            min_steps_no_change=MIN_PATIENCE_STEPS if self.n_iter_no_change == "auto" else 0,
            tol=self.tol,
            max_grad_norm=self.max_grad_norm,
            average_decay=None if partial else self.average_decay,
            compile=self.compile,
            # A seed asks for the same model each time, and ranks must compute alike:
            # no timing-based thread count.
            tune_threads=self.random_state is None and not data_parallel,
            data_parallel=data_parallel,
        )
        result = fit_flow(flow, x_all, c_all, training=training, generator=generator,
                          validation_rows=val_index, training_rows=train_rows,
                          start=None if warm else start, refit_start=refit_start,
                          validation_score=validation_score, log=print if self.verbose else None,
                          optimizer_moments=self.__dict__.get("_optimizer_moments") if warm and partial else None,
                          rows=stream, rival=rival)
        del train_rows
        if result is None:
            return None, val_index
        # Only partial_fit resumes Adam; a fit starts it afresh (and drops what it had).
        self.__dict__.pop("_optimizer_moments", None)
        if partial:
            self._optimizer_moments = result.optimizer_moments

        self.flow_ = result.flow
        self.device_ = device
        self.layer_type_ = config.get("transform", "affine")
        self.activation_ = config["activation"]
        self.batch_size_ = result.batch_size * world
        # A start may choose the base (init="gaussian_mixture"): the file must rebuild it.
        self._flow_config_ = {**config, **base_config(result.flow)}
        if not warm:  # what an earlier fit's start chose goes with it
            for name in ("covariance_shrinkage_", "start_mixture_", "start_mixture_scores_"):
                self.__dict__.pop(name, None)
        for name, value in result.start_attributes.items():
            setattr(self, name, value)
        previous_epochs = self.n_iter_ if warm else 0
        self.n_iter_ = result.n_epochs + previous_epochs
        self.best_epoch_ = (result.best_epoch if self.early_stopping and not partial
                            else result.n_epochs) + previous_epochs
        previous = self.loss_curve_ if warm else []
        self.loss_curve_ = previous + result.loss_curve
        if self.early_stopping and not partial:
            prev_val = (self.validation_scores_ or []) if warm else []
            self.validation_scores_ = prev_val + result.validation_scores
            self.best_validation_score_ = result.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._fit_epochs, self._fit_epoch_limit = result.n_epochs, result.max_epochs
        self._fit_out_of_time = result.out_of_time
        if self.verbose:
            print(describe_stopping(self))
        return result, val_index

    # -------------------------------------------------------------- scoring
    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        check_numeric_columns(X)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _standardised(self, X: np.ndarray, what: str = "X") -> tuple[np.ndarray, np.ndarray]:
        """``(X - location_) / scale_`` in the model's dtype and the rows it
        cannot hold (see :func:`~skflow.estimators._scaling.standardise`)."""
        # float64 rows stay float64 (the closed-form Gaussians use every digit;
        # the flow casts them as it always did); float32 rows stay float32.
        return standardise(X, self.location_, self.scale_, np.promote_types(X.dtype, self.dtype),
                           model_dtype=self.dtype)

    def _fit_standardised(self, X: np.ndarray, continuing: bool = False) -> np.ndarray:
        """The training rows ``X`` standardised: ``location_`` and ``scale_``
        fitted to them (a continued fit keeps the scales the flow was trained
        in), rows the model cannot hold refused."""
        if not continuing:
            self.location_, self.scale_ = fit_standardisation(X)
        Z, outside = self._standardised(X)
        refuse_rows_beyond_reach(outside)
        return Z

    def _log_scale(self) -> float:
        """The log-Jacobian of the standardisation, ``log(scale_).sum()``."""
        return float(np.log(self.scale_).sum())

    def _progress(self, what: str, done: int, total: int, start: float) -> None:
        # Long calls report progress when verbose, once per chunk.
        if self.verbose and total > _SCORE_CHUNK:
            print(f"{what} {done:,} / {total:,} rows  {time.perf_counter() - start:6.1f}s")

    @torch.no_grad()
    def _log_density(self, X: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Log-density of each row of ``X`` (given the rows of ``context``), float64."""
        out = np.empty(X.shape[0], dtype=np.float64)
        began = time.perf_counter()
        for start in range(0, X.shape[0], _SCORE_CHUNK):
            chunk = self._to_tensor(X[start : start + _SCORE_CHUNK])
            c = None if context is None else self._to_tensor(context[start : start + _SCORE_CHUNK])
            out[start : start + chunk.shape[0]] = self.flow_.log_prob(chunk, c).double().cpu().numpy()
            self._progress("scored", start + chunk.shape[0], X.shape[0], began)
        if np.isnan(out).any():
            raise FloatingPointError(
                "the model produced NaN log-densities (a numerical failure inside the flow); "
                "please report it with the data's shape and the estimator's parameters"
            )
        return out

    @torch.no_grad()
    def _draw(self, n: int, generator, context: np.ndarray | None = None) -> np.ndarray:
        """``n`` draws of the flow (one per row of ``context``), float64."""
        out = np.empty((n, self.flow_.n_features), dtype=np.float64)
        began = time.perf_counter()
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
        # Adam's moments (torch tensors) are not saved: a loaded model's next
        # partial_fit starts the optimiser afresh.
        state.pop("_optimizer_moments", None)
        state["_skflow_version"] = __version__
        state["_skflow_format"] = PICKLE_FORMAT
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
        saved_format = state.pop("_skflow_format", None)
        if "flow_" in state and saved_format != PICKLE_FORMAT:
            raise DamagedModelError(
                f"this {type(self).__name__} was saved in file format {saved_format or 'of a pre-release'} "
                f"skflow; this skflow reads format {PICKLE_FORMAT}: fit it again and save it")
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
