"""The maximum-likelihood fit loop for a :class:`~skflow.nn.Flow` (pure torch).

Kept apart from the estimators so that it can be read, tested and tuned on its
own: mini-batches from a tensor that lives on the device, Adam, optional
gradient clipping, early stopping on held-out log-likelihood with the best
weights restored, and a guard that never lets a diverged model escape.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .adam import Adam
from .threads import ThreadTuner

__all__ = ["TrainingConfig", "TrainingDivergedError", "TrainingResult", "batch_schedule", "mean_log_prob", "train_flow"]


class TrainingDivergedError(FloatingPointError, ValueError):
    """The log-likelihood was never finite, so no usable model exists."""


@dataclass
class TrainingResult:
    """What :func:`train_flow` reports: per-epoch training losses and
    validation scores (nats), the best validation score and the epoch that
    reached it (0: the initial weights), the epochs run, and whether
    training stopped on a non-finite loss."""

    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    best_validation_score: float | None = None
    n_epochs: int = 0
    best_epoch: int = 0
    diverged: bool = False
    #: Whether ``max_seconds`` ended training (the last epoch then ran in part).
    out_of_time: bool = False
    #: The epoch limit the run had (``max_epochs``, or more for ``min_steps``).
    max_epochs: int = 0
    #: The optimiser's moments at the end (``Adam.moments``), to resume training with.
    optimizer_moments: list | None = None


_BATCH_NORM_STAT_ROWS = 50_000


#: Below this many rows, validation skips the scoring plan: a plan is prepared
#: for each set of weights, which costs more than the fused forward pass over
#: a small validation set.
_PLAN_MIN_ROWS = 2048


@torch.no_grad()
def mean_log_prob(flow, x: torch.Tensor, chunk_size: int = 65536, context: torch.Tensor | None = None) -> float:
    """Mean log-density of ``x`` (given the rows of ``context``) under ``flow`` in eval mode, in float64."""
    was_training = flow.training
    flow.eval()
    if x.shape[0] < _PLAN_MIN_ROWS:
        u, log_det = flow(x, context)
        total = (flow.base.log_prob(u, context) + log_det).double().sum().item()
    else:
        contexts = itertools.repeat(None) if context is None else context.split(chunk_size)
        total = sum(flow.log_prob(c, ctx).double().sum().item() for c, ctx in zip(x.split(chunk_size), contexts))
    flow.train(was_training)
    return total / x.shape[0]


def index_dtype(n_rows: int) -> torch.dtype:
    """Dtype for row indices: int32 (half the memory of int64) where it fits."""
    return torch.int32 if n_rows < 2**31 else torch.int64


def _snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


#: Denormals build up over many epochs, and a flush reads every parameter and
#: moment three times (about a fifth of an epoch of the 257-D model at 1,200
#: rows), so it runs every few epochs.
FLUSH_DENORMALS_EVERY = 10


@torch.no_grad()
def flush_denormals(params, optimizer) -> None:
    """Set float denormals in the parameters and their optimiser state to 0.

    Weight decay is the only gradient of a weight that the data never reach
    (a dead relu unit's inputs): Adam walks it to about 1e-37 and its moments
    into denormals, on which a CPU computes many times slower.  Values below
    the smallest normal float change nothing else.
    """
    for p in params:
        state = optimizer.state.get(p, {})
        for t in [p, *(v for v in state.values() if torch.is_tensor(v) and v.shape == p.shape)]:
            if t.is_floating_point():
                t.masked_fill_(t.abs() < torch.finfo(t.dtype).tiny, 0.0)


#: Steps smaller than this (batch rows x parameters; a 30-D MAF(5) of 100-unit
#: layers at batch 256 is 24 M) run in one thread without timing: more threads
#: gain little there when the machine is idle and lose much when it is busy,
#: and probing costs a small fit more than it can gain.
_ONE_THREAD_WORK = 2**25
#: A seeded fit (no timing) runs in one thread up to this much work: its
#: thread count must be chosen from the work alone, and a team of threads
#: on a machine whose other cores are busy waits for each busy core at every
#: parallel region (benchmarks/contention.py times it).  Above it, the
#: products are large enough that the caller's count pays.
_SEEDED_ONE_THREAD_WORK = 2**28

_AUTO_BATCH = 256  # "auto" batches: at least this many rows,
_AUTO_MAX_BATCH = 1024  # at most this many,
_AUTO_STEPS = 1024  # and no fewer steps per epoch than this, where the data allow


def batch_schedule(batch_size, learning_rate_init, n_train):
    """The mini-batch size and Adam learning rate a fit on ``n_train`` rows uses.

    An integer ``batch_size`` is used as given (clipped to ``n_train``) with
    ``learning_rate_init``.  ``"auto"`` grows the batch from 256 rows up to
    1024 while an epoch keeps at least 1024 steps, and scales the rate by the
    square root of the growth (Malladi et al., 2022: the square-root scaling
    rule for Adam keeps the update noise comparable).

    Examples
    --------
    >>> batch_schedule("auto", 1e-3, 10_000)
    (256, 0.001)
    >>> batch_schedule(100, 1e-3, 50)
    (50, 0.001)
    """
    if batch_size != "auto":
        return min(batch_size, n_train), learning_rate_init
    grown = min(_AUTO_MAX_BATCH, max(_AUTO_BATCH, n_train // _AUTO_STEPS))
    return min(grown, n_train), learning_rate_init * math.sqrt(grown / _AUTO_BATCH)


@dataclass(frozen=True)
class TrainingConfig:
    """How :func:`train_flow` trains (see there for each field)."""

    learning_rate: float = 1e-3
    learning_rate_schedule: str = "constant"
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 200
    #: Allow at least this many optimiser steps: where an epoch has few
    #: steps (small data), ``max_epochs`` is raised to hold them.
    min_steps: int = 0
    n_iter_no_change: int = 10
    #: Patience is at least this many optimiser steps (epochs of one batch
    #: on small data would otherwise stop training after a handful of steps).
    min_steps_no_change: int = 0
    tol: float = 1e-4
    max_grad_norm: float | None = None
    compile: bool = False
    tune_threads: bool = True
    #: Stop once training has run this many seconds (checked after each
    #: step; the epoch under way ends there and is validated); None: no limit.
    max_seconds: float | None = None
    #: Visit the training rows in a new random order each epoch (else in their order).
    shuffle: bool = True
    #: Polyak averaging: validate, keep and return an exponential moving
    #: average of the weights, updated after every step with this decay (at
    #: step ``t``, ``min(decay, (1 + t) / (10 + t))``); None: the weights as
    #: trained.
    average_decay: float | None = None
    #: Train one model with every rank of torch.distributed's default process
    #: group: parameters broadcast from rank 0 at the start, gradients (and
    #: the scores early stopping watches) averaged over the ranks each step.
    data_parallel: bool = False

    def __post_init__(self):
        if self.learning_rate_schedule not in ("constant", "adaptive", "cosine"):
            raise ValueError("learning_rate_schedule must be 'constant', 'adaptive' or 'cosine', "
                             f"got {self.learning_rate_schedule!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive or None, got {self.max_seconds!r}")
        if self.max_seconds is not None and self.data_parallel:
            # each rank's clock would end its epoch after a different step
            raise ValueError("max_seconds cannot limit data-parallel training: set max_epochs instead")
        if self.average_decay is not None and not 0 <= self.average_decay < 1:
            raise ValueError(f"average_decay must be in [0, 1) or None, got {self.average_decay!r}")


def train_flow(
    flow,
    x_train: torch.Tensor,
    x_val: torch.Tensor | None = None,
    *,
    train_index: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    context_val: torch.Tensor | None = None,
    validation_score: Callable | None = None,
    config: TrainingConfig | None = None,
    generator: torch.Generator | None = None,
    log: Callable[[str], None] | None = None,
    optimizer_moments: list | None = None,
    rows=None,
    **settings,
) -> TrainingResult:
    """Fit ``flow`` by maximum likelihood on ``x_train``.

    The settings are the fields of :class:`TrainingConfig`, given as
    ``config`` or as keywords (``learning_rate=1e-3, batch_size=256, ...``).

    With ``x_val`` training stops once the validation log-likelihood has not
    improved by ``tol`` for ``n_iter_no_change`` epochs and the best weights
    are restored; without it, the training loss plays that role (weights are
    kept as they end).  If a loss becomes non-finite, training stops, the last
    finite weights are restored and a ``RuntimeWarning`` is issued; if none
    were ever finite, :class:`TrainingDivergedError` is raised.

    ``train_index`` restricts training to those rows of ``x_train`` without
    copying them (the estimators hold the data once and index into it).

    ``rows`` replaces them as what an epoch trains on: an object with
    ``n_rows`` and ``batches(batch_size, generator)``, an iterator over one
    epoch's ``(batch, batch_context)`` tensors (data streamed from disk,
    :class:`~skflow.estimators._streamed.StreamedRows`); the rows
    ``x_train[train_index]`` then serve batch-norm statistics only.

    ``data_parallel=True`` trains with every rank of ``torch.distributed``'s
    default process group (initialised by the caller): each rank passes its
    own rows (the same number of batches per epoch on every rank) and the
    same validation rows; parameters start as rank 0's and each step
    averages the ranks' gradients, so every rank holds the same model, the
    one a single process would train on batches made of every rank's batch
    (to float rounding).

    A conditional flow (``context_features > 0``) takes ``context``, one
    row per row of ``x_train`` (batched with them), and ``context_val`` for
    ``x_val``.

    ``validation_score(flow) -> float`` (higher is better) replaces the mean
    validation log-likelihood as what early stopping watches, e.g. a
    classifier's held-out log loss; the flow is in training mode when it is
    called, with batch-norm statistics refitted.

    ``learning_rate_schedule="adaptive"`` halves the learning rate each time
    the monitored score (validation, else training log-likelihood) has not
    improved by ``tol`` for ``max(1, n_iter_no_change // 3)`` epochs in a row.
    ``"cosine"`` lowers it after every step along half a cosine, from
    ``learning_rate`` to zero at the end of the budget: the fraction of
    ``max_seconds`` spent where that is set, else of the steps that
    ``max_epochs`` (or ``min_steps``) allow.  Early stopping may end
    training before the rate reaches zero.

    ``max_seconds`` ends training once it has run that long (the epoch
    under way stops after its current step, and is validated); the
    result's ``out_of_time`` says so.  A timed run depends on the machine's
    speed: the same seed then need not give the same flow.

    ``tune_threads=True`` chooses the CPU thread count by timing the steps
    (:class:`~skflow.nn.threads.ThreadTuner`): fastest, also beside busy
    processes, but the choice depends on timing and MKL's rounding on the
    count, so two runs can differ in the last digits and then more.
    ``False`` fixes it from the step's size alone (one thread up to
    batch rows x parameters of 2**28, else torch's current count): a fixed
    seed then gives the same flow on the same machine, and a small fit never
    waits for a team of threads behind busy cores.

    ``optimizer_moments`` (a previous result's ``optimizer_moments``)
    resumes Adam where that call left it: calls on consecutive chunks of
    rows then take the steps one call on all of them would, in the same
    order (``shuffle=False``), to float rounding.

    ``compile=True`` runs the training loss through ``torch.compile`` of the
    reference modules instead of the hand-written fused pass.  If
    compilation fails (e.g. no C++ compiler), training continues uncompiled
    with a warning.

    The flow is left in eval mode.
    """
    if config is None:
        config = TrainingConfig(**settings)
    elif settings:
        raise TypeError("give the training settings as config or as keywords, not both")
    # The fused pass trains one flat tensor per fused run of layers (one
    # optimiser kernel per step); torch.compile traces the reference modules.
    use_flat = (not config.compile and hasattr(flow, "flat_parameters")
                and all(p.requires_grad for p in flow.parameters()))
    with flow.flat_parameters() if use_flat else contextlib.nullcontext() as flat:
        params = flat if flat is not None else [p for p in flow.parameters() if p.requires_grad]
        if rows is None:
            rows = _RowsInMemory(x_train, train_index, context, config.shuffle)
        loop = _FitLoop(flow, params, x_train, x_val, train_index, config, generator, log,
                        context, context_val, validation_score, rows)
        if optimizer_moments is not None:
            loop.optimizer.load_moments(optimizer_moments)
        result = loop.run()
        result.optimizer_moments = loop.optimizer.moments()
        return result


def _negative_log_likelihood(flow, batch, context=None):
    return -flow.log_prob(batch, context).mean()


class _RowsInMemory:
    """The training rows of one tensor (its rows ``train_index``), batched
    in a new random order each epoch (in their order without ``shuffle``)."""

    def __init__(self, x, train_index, context, shuffle):
        self.x, self.train_index, self.context, self.shuffle = x, train_index, context, shuffle
        self.n_rows = x.shape[0] if train_index is None else train_index.numel()

    def batches(self, batch_size, generator):
        dtype, device = index_dtype(self.n_rows), self.x.device
        if self.shuffle:
            perm = torch.randperm(self.n_rows, generator=generator, dtype=dtype).to(device)
        else:
            perm = torch.arange(self.n_rows, dtype=dtype, device=device)
        for idx in torch.tensor_split(perm, max(1, self.n_rows // batch_size)):
            if self.train_index is not None:
                idx = self.train_index[idx]  # per batch: no second epoch-sized index array
            yield self.x[idx], (None if self.context is None else self.context[idx])


def _distributed():
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("data-parallel training needs torch.distributed's default process group: "
                           "call torch.distributed.init_process_group first (torchrun does not do it for you)")
    return dist


def _average_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over the ranks (in place), the same on every rank."""
    dist = _distributed()
    dist.all_reduce(values)
    return values.div_(dist.get_world_size())


class _FitLoop:
    """One call of :func:`train_flow`: epochs, validation, early stopping."""

    def __init__(self, flow, params, x_train, x_val, train_index, config, generator, log,
                 context=None, context_val=None, validation_score=None, rows=None):
        self.flow, self.params, self.config = flow, params, config
        self.x_train, self.x_val, self.train_index = x_train, x_val, train_index
        self.epochs_run = 0
        if (context is None) != (context_val is None) and x_val is not None:
            raise ValueError("give context_val with context (and the other way round)")
        if context is not None and context.shape[0] != x_train.shape[0]:
            raise ValueError(f"context has {context.shape[0]} rows, x_train {x_train.shape[0]}")
        self.context, self.context_val = context, context_val
        self.validation_score = validation_score
        self.generator, self.log = generator, log
        self.rows = rows
        self.n = rows.n_rows
        self.optimizer = Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.stat_rows = self._statistics_rows()
        self.average = None if config.average_decay is None else [p.detach().clone() for p in params]
        self.steps = 0
        self.result = TrainingResult()
        self.began = time.perf_counter()  # the clock of max_seconds and the progress lines (reset in _run)
        self.step_budget = 1  # the steps the cosine schedule spans without max_seconds (set in _run)

    def _statistics_rows(self):
        # Validation must score the model as score_samples will: with batch-norm
        # statistics of the training data, not the noisy running averages (those
        # made early stopping pick poor epochs on heavy-tailed data).
        if self.x_val is None or not self.flow.has_statistics():
            return None
        rows = self.train_index
        n = self.x_train.shape[0] if rows is None else rows.numel()
        if n > _BATCH_NORM_STAT_ROWS:
            pick = torch.randperm(n, generator=self.generator, dtype=index_dtype(n))
            pick = pick[:_BATCH_NORM_STAT_ROWS].to(self.x_train.device)
            rows = pick if rows is None else rows[pick]
        if rows is None:
            return self.x_train, self.context
        return self.x_train[rows], (None if self.context is None else self.context[rows])

    def validate(self) -> float:
        if self.stat_rows is not None:
            x, context = self.stat_rows
            self.flow.refit_batch_norm(x, context=context)
        if self.validation_score is not None:
            score = float(self.validation_score(self.flow))
        else:
            score = mean_log_prob(self.flow, self.x_val, context=self.context_val)
        if self.config.data_parallel:  # equal on every rank up to rounding; made exactly equal
            # (on the data's device: NCCL reduces CUDA tensors only)
            score = _average_over_ranks(torch.tensor([score], dtype=torch.float64, device=self.x_train.device)).item()
        return score

    def run(self) -> TrainingResult:
        # The thread count is chosen by timing the steps (see skflow.nn.threads);
        # on a GPU the CPU's threads only launch kernels.
        self.tuner = None
        if self.x_train.device.type == "cpu":
            work = self.config.batch_size * sum(p.numel() for p in self.params)
            if work < _ONE_THREAD_WORK or (not self.config.tune_threads and work < _SEEDED_ONE_THREAD_WORK):
                self.tuner = ThreadTuner(max_threads=1)  # one candidate: nothing timed
            elif self.config.tune_threads:
                self.tuner = ThreadTuner(work=work)
        try:
            return self._run()
        finally:
            if self.tuner is not None:
                self.tuner.close()

    def _run(self) -> TrainingResult:
        flow, config, result = self.flow, self.config, self.result
        flow.train()
        if config.data_parallel:
            dist = _distributed()
            with torch.no_grad():
                for tensor in flow.state_dict().values():  # every rank starts from rank 0's model
                    dist.broadcast(tensor, src=0)
        best_state = _snapshot(flow)
        best = -math.inf
        if self.x_val is not None:
            best = self.validate()
            if not math.isfinite(best):
                raise TrainingDivergedError(
                    "the initial validation log-likelihood is not finite: the data are too "
                    "large for the model's dtype; standardise them (e.g. StandardScaler) "
                    "or use dtype='float64'"
                )
        steps_per_epoch = max(1, self.n // config.batch_size)
        patience = max(config.n_iter_no_change, -(-config.min_steps_no_change // steps_per_epoch))
        result.max_epochs = max_epochs = max(config.max_epochs, -(-config.min_steps // steps_per_epoch))
        self.step_budget = max_epochs * steps_per_epoch
        lr_patience = max(1, patience // 3)
        stale = lr_stale = 0
        self.began = time.perf_counter()
        # A module-level function, not a bound method: one stored on self is a
        # reference cycle that kept the optimiser state and gradients alive after
        # the fit until the garbage collector ran (~100 MB for the 257-D model).
        self.loss_fn = torch.compile(_negative_log_likelihood, dynamic=False) if config.compile \
            else _negative_log_likelihood
        for epoch in range(max_epochs):
            train_loss = self.epoch()
            if not math.isfinite(train_loss):
                result.diverged = True
                break
            result.loss_curve.append(train_loss)
            result.n_epochs = epoch + 1
            with self._averaged_weights():
                if self.x_val is not None:
                    score = self.validate()
                    if not math.isfinite(score):
                        result.diverged = True
                        break
                    result.validation_scores.append(score)
                else:
                    score = -train_loss
                improved = score > best + config.tol
                if improved or self.x_val is None:
                    best_state = _snapshot(flow)
                lr = self.optimizer.lr
                if self.log is not None:  # (the weights the line scores are in the flow while it runs)
                    msg = f"epoch {epoch + 1:4d}  train log-lik {-train_loss:10.4f}"
                    if self.x_val is not None:
                        msg += f"  valid log-lik {score:10.4f}"
                    self.log(msg + f"  lr {lr:.1e}  {time.perf_counter() - self.began:7.1f}s")
            if improved:
                best, stale, lr_stale = score, 0, 0
                result.best_epoch = epoch + 1
            else:
                stale += 1
                lr_stale += 1
            if config.learning_rate_schedule == "adaptive" and lr_stale >= lr_patience:
                self.optimizer.lr *= 0.5
                lr_stale = 0
            if stale >= patience:
                break
            if self._out_of_time():
                result.out_of_time = True
                break
        self._finish(best_state, best)
        return result

    def epoch(self) -> float:
        """One pass over the training rows; the mean training loss."""
        device = self.x_train.device
        epoch_loss = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        for batch, batch_context in self.rows.batches(self.config.batch_size, self.generator):
            with contextlib.nullcontext() if self.tuner is None else self.tuner.step(batch.shape[0]):
                loss = self._step(batch, batch_context)
            epoch_loss += loss * batch.shape[0]
            seen += batch.shape[0]
            if self._out_of_time():
                break
        self.epochs_run += 1
        if self.epochs_run % FLUSH_DENORMALS_EVERY == 0:
            flush_denormals(self.params, self.optimizer)
        epoch_loss /= max(seen, 1)
        if self.config.data_parallel:  # what stops training without validation rows: the same on every rank
            _average_over_ranks(epoch_loss)
        # One host sync per epoch, not per step.
        return epoch_loss.item()

    def _step(self, batch, context) -> torch.Tensor:
        """One optimiser step on ``batch``; its loss (detached)."""
        try:
            loss = self.loss_fn(self.flow, batch, context)
        except Exception as exc:  # torch.compile failures come in many types
            if self.loss_fn is _negative_log_likelihood:
                raise
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); "
                          "training without compilation", RuntimeWarning, stacklevel=5)
            self.loss_fn = _negative_log_likelihood
            loss = self.loss_fn(self.flow, batch, context)
        if self.config.learning_rate_schedule == "cosine":
            self.optimizer.lr = self.config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * self._spent()))
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.data_parallel:
            self._average_gradients()
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.steps += 1
        if self.average is not None:
            weight = 1.0 - min(self.config.average_decay, (1 + self.steps) / (10 + self.steps))
            with torch.no_grad():
                for average, p in zip(self.average, self.params):
                    average.lerp_(p.detach(), weight)
        return loss.detach()

    def _spent(self) -> float:
        """The fraction of the budget spent: of ``max_seconds`` where set, else of the steps allowed."""
        if self.config.max_seconds is not None:
            return min(1.0, (time.perf_counter() - self.began) / self.config.max_seconds)
        return min(1.0, self.steps / self.step_budget)

    def _out_of_time(self) -> bool:
        """Whether training has run its ``max_seconds``."""
        return self.config.max_seconds is not None and time.perf_counter() - self.began >= self.config.max_seconds

    @contextlib.contextmanager
    def _averaged_weights(self):
        """The averaged weights in the flow for the block (without averaging, the weights as they are)."""
        if self.average is None:
            yield
            return
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.params]
            for p, average in zip(self.params, self.average):
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, weights in zip(self.params, trained):
                    p.copy_(weights)

    def _average_gradients(self) -> None:
        """Every parameter's gradient averaged over the ranks, in one all-reduce:
        each costs a round trip, whatever its size."""
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in self.params]
        if len(grads) == 1:
            _average_over_ranks(grads[0])
        else:
            flat = _average_over_ranks(torch.cat([g.reshape(-1) for g in grads]))
            grads = [part.view_as(g) for part, g in zip(flat.split([g.numel() for g in grads]), grads)]
        for p, g in zip(self.params, grads):
            p.grad = g

    def _finish(self, best_state, best):
        result, flow = self.result, self.flow
        if result.diverged:
            if not result.loss_curve and self.x_val is None:
                raise TrainingDivergedError(
                    "the training log-likelihood was never finite: the data are too large "
                    "for the model's dtype, or learning_rate_init is too high; standardise "
                    "the data (e.g. StandardScaler) or use dtype='float64'"
                )
            warnings.warn(
                f"training diverged (non-finite log-likelihood) in epoch {result.n_epochs + 1}; "
                "stopped and restored the last finite weights. Consider a lower "
                "learning_rate_init, a smaller log_scale_bound or max_grad_norm, or "
                "standardised data.",
                RuntimeWarning,
                stacklevel=4,
            )
        if self.x_val is not None or result.diverged or self.average is not None:
            flow.load_state_dict(best_state)
        if self.x_val is not None:
            result.best_validation_score = best
        flow.eval()
