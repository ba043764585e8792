"""One fit of a flow, from prepared tensors to a :class:`FitResult`.

An estimator's ``fit`` validates and standardises its data, builds the flow
and a :class:`~skflow.nn.training.TrainingConfig`, picks its start (a
strategy object: :class:`GaussianStart`, or the classifier's and the
regressor's own) and calls :func:`fit_flow`.  What the fit found comes back
in the result; the estimator copies it into its fitted attributes.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..nn.threads import intra_op_threads
from ..nn.training import TrainingConfig, index_dtype, train_flow
from ._gaussian import _shrunk_gaussian, _significant_gain

#: Batch-norm statistics are recomputed on at most this many rows (a random subset).
BATCH_NORM_REFIT_ROWS = 1 << 20


class GaussianStart:
    """The start of ``init="gaussian"`` for a flow of ``X`` alone: the training
    rows' Gaussian, its covariance shrunk towards a multiple of the identity
    by the amount with the best 5-fold cross-validated log-likelihood.
    ``moments`` (mean, covariance) of rows streamed from disk replace those
    of the rows given to :meth:`fit`, a sample of them."""

    #: The first layer :func:`~skflow.nn.build_maf` makes for it (``gaussian_start``).
    layer = True

    def __init__(self, moments=None):
        self.moments = moments

    def fit(self, flow, x: torch.Tensor, context, rows) -> dict:
        """Set ``flow``'s first layer from the rows ``x[rows]`` (all rows for
        None); return the fitted attributes this start chose."""
        mean, cov, shrinkage = _shrunk_gaussian(x, rows, moments=self.moments)
        flow.transforms[0].set_gaussian(mean, torch.from_numpy(cov))
        return {"covariance_shrinkage_": shrinkage}


@dataclass
class FitResult:
    """What one :func:`fit_flow` produced."""

    flow: torch.nn.Module
    batch_size: int
    n_epochs: int
    best_epoch: int
    loss_curve: list
    validation_scores: list
    best_validation_score: float | None
    #: The epochs training could have run (with a retry, both runs').
    max_epochs: int = 0
    #: Fitted attributes the start chose (e.g. ``covariance_shrinkage_``).
    start_attributes: dict = field(default_factory=dict)
    #: With a start and early stopping: the validation rows' log-densities
    #: under the start and under the model kept (the trained flow, or the
    #: start again where training did not beat it).
    held_out: tuple[np.ndarray, np.ndarray] | None = None
    #: Adam's moments at the end (for ``partial_fit`` to resume from).
    optimizer_moments: list | None = None
    #: Whether the time budget (``max_seconds``) ended training.
    out_of_time: bool = False


#: A fit collapsed when its best held-out mean log-likelihood stayed below the
#: start's and its worst fell this many nats per row below it.
COLLAPSE_NATS = 1.0


def _collapsed(result, start_score: float) -> bool:
    """Whether training never beat the start and its validation score fell far below it."""
    return (result.best_epoch == 0 and bool(result.validation_scores)
            and min(result.validation_scores) < start_score - COLLAPSE_NATS)


def _after(first, second):
    """The :class:`~skflow.nn.training.TrainingResult` of ``second`` run after ``first``
    (epochs counted on; the second's best epoch, if it has one, after the first's)."""
    second.loss_curve = first.loss_curve + second.loss_curve
    second.validation_scores = first.validation_scores + second.validation_scores
    if second.best_epoch > 0:
        second.best_epoch += first.n_epochs
    second.n_epochs += first.n_epochs
    second.max_epochs += first.max_epochs
    return second


@torch.no_grad()
def row_log_likelihood(flow, x, context=None, chunk_size=65536) -> np.ndarray:
    """Per-row log-density (float64 numpy) of ``x`` under ``flow`` in eval mode."""
    was_training = flow.training
    flow.eval()
    out = np.concatenate([
        flow.log_prob(x[i : i + chunk_size], None if context is None else context[i : i + chunk_size])
        .double().cpu().numpy() for i in range(0, x.shape[0], chunk_size)])
    flow.train(was_training)
    return out


def fit_flow(flow, x: torch.Tensor, context: torch.Tensor | None = None, *, training: TrainingConfig,
             generator: torch.Generator, validation_rows: np.ndarray | None = None,
             training_rows: np.ndarray | None = None, start=None, refit_start: bool = True,
             validation_score=None, log=None, optimizer_moments=None, rows=None,
             rival: float | None = None) -> FitResult | None:
    """Train ``flow`` on the rows of ``x`` (given ``context``) and return what it found.

    Parameters
    ----------
    flow : skflow.nn.Flow
        The flow to train, on the device of ``x``.
    x, context : tensor
        Every row (``context``: one row per row of ``x``, or None).
    training : TrainingConfig
    generator : torch.Generator
        Drives mini-batches and the batch-norm subset.
    validation_rows, training_rows : ndarray of int or None
        The held-out rows (None: no early stopping) and the rows trained on
        (None: every row; they may repeat, as a bootstrap sample does).
    start : object with ``fit(flow, x, context, rows) -> dict`` or None
        Sets the flow's first layer in closed form before training (a
        Gaussian start).  With validation rows, training must then beat it
        by more than one standard error of the per-row gain (of the
        log-likelihood, or of what ``validation_score`` gives per row), or
        the start is kept, refitted on every row when ``refit_start``.
    validation_score : callable or None
        ``f(x_val, c_val)`` returning what early stopping maximises for a
        flow (see :func:`~skflow.nn.train_flow`), optionally with a
        ``per_row(flow)`` method of each row's score; None: the held-out
        mean log-likelihood.
    log : callable or None
        Receives one progress line per epoch.
    optimizer_moments : list or None
        Resume Adam from a previous result's ``optimizer_moments``.
    rows : object or None
        What each epoch trains on in place of ``x[training_rows]`` (rows
        streamed from disk, see :func:`~skflow.nn.train_flow`); the start
        and batch-norm statistics then use ``x[training_rows]``, a sample.
    """
    device = x.device
    n = x.shape[0]
    train_index = x_val = c_val = None
    if training_rows is not None:
        train_index = torch.from_numpy(training_rows).to(device=device, dtype=index_dtype(n))
    if validation_rows is not None:
        held_out = torch.from_numpy(validation_rows).to(device)
        x_val = x[held_out]
        c_val = None if context is None else context[held_out]
    score = None if x_val is None or validation_score is None else validation_score(x_val, c_val)

    # Each validation row's score, to weigh training against the start: its
    # log-likelihood, or what the validation score has per row (a label's).
    rows_of = None
    if x_val is not None:
        rows_of = ((lambda f: row_log_likelihood(f, x_val, c_val)) if score is None
                   else getattr(score, "per_row", None))
    start_attributes, kept_start = {}, None
    if start is not None:
        with intra_op_threads(1):  # small factorisations and copies
            start_attributes = start.fit(flow, x, context, train_index)
        if rows_of is not None:
            kept_start = (copy.deepcopy(flow.state_dict()), rows_of(flow))
            if rival is not None:
                above = float(kept_start[1].mean()) > rival
                if log is not None:
                    log(f"the start scores {kept_start[1].mean():.4f} on validation, "
                        + (f"above {rival:.4f}: training from it" if above
                           else f"not above {rival:.4f}: nothing trained from it"))
                if not above:
                    return None
    began = time.perf_counter()
    result = train_flow(flow, x, x_val, train_index=train_index, context=context, context_val=c_val,
                        validation_score=score, config=training, generator=generator, log=log,
                        optimizer_moments=optimizer_moments, rows=rows)
    seconds_left = None if training.max_seconds is None else training.max_seconds - (time.perf_counter() - began)
    if kept_start is not None and _collapsed(result, float(kept_start[1].mean())) \
            and (seconds_left is None or seconds_left > 0):
        # The held-out score fell far below the start's and never came
        # back: the rate was too large for this start.  Once more from the
        # start at a tenth of it; the better of the two is kept.
        if log is not None:
            log(f"validation score fell from {kept_start[1].mean():.4f} (the start) to "
                f"{min(result.validation_scores):.4f}: training again from the start at a tenth of the rate")
        flow.load_state_dict(kept_start[0])
        retry = train_flow(flow, x, x_val, train_index=train_index, context=context, context_val=c_val,
                           validation_score=score,
                           config=dataclasses.replace(training, learning_rate=training.learning_rate / 10,
                                                      max_seconds=seconds_left),
                           generator=generator, log=log, rows=rows)
        result = _after(result, retry)
    if flow.has_statistics():  # without batch norm, no copy of the data either
        if n > BATCH_NORM_REFIT_ROWS:
            # A random subset, gathered once and overwritten layer by layer:
            # the statistics of a million rows are the full data's to about
            # 1e-3 standard deviations, for a fraction of the memory.
            rows = torch.randperm(n, generator=generator, dtype=index_dtype(n))[:BATCH_NORM_REFIT_ROWS]
            rows = rows.sort().values.to(device)
            flow.refit_batch_norm(x[rows], overwrite=True, context=None if context is None else context[rows])
        else:
            flow.refit_batch_norm(x, context=context)
    held_out = None
    if kept_start is not None:
        trained = rows_of(flow) if result.best_epoch > 0 else kept_start[1]
        if result.best_epoch > 0 and _significant_gain(trained - kept_start[1]):
            held_out = (kept_start[1], trained)
        else:
            # No epoch beat the start, or the gain is within the noise of the
            # validation rows: keep the start (with refit_start, refitted on
            # every row, as the user's one Gaussian would be).
            flow.load_state_dict(kept_start[0])
            if refit_start:
                with intra_op_threads(1):
                    start_attributes = start.fit(flow, x, context, None)
            result.best_epoch = 0
            result.best_validation_score = float(kept_start[1].mean())
            held_out = (kept_start[1], kept_start[1])
    return FitResult(flow=flow, batch_size=training.batch_size, n_epochs=result.n_epochs,
                     best_epoch=result.best_epoch, loss_curve=result.loss_curve,
                     validation_scores=result.validation_scores,
                     best_validation_score=result.best_validation_score, max_epochs=result.max_epochs,
                     start_attributes=start_attributes, held_out=held_out,
                     optimizer_moments=result.optimizer_moments, out_of_time=result.out_of_time)
