"""Fitting rows streamed from disk (:class:`~skflow.ChunkedRows`).

:func:`measure_stream` makes one pass over the data before training: it
splits the chunks into training, early-stopping and held-out ones, and
gathers what a fit needs in memory -- the training rows' mean and
covariance (merged chunk by chunk), a sample of training rows (for the
start's mixture and shrinkage, the grid steps and batch-norm statistics)
and a bounded subset of the held-out chunks' rows.  :class:`StreamedRows`
is then what each epoch trains on: the training chunks in a new random
order, each read, dequantised, standardised and shuffled on its own.
After training, :func:`refit_batch_norm_streamed` sets batch-norm
statistics from every training row, one pass per batch-norm layer.

With ``ChunkedRows(distributed=True)`` each rank measures its own shard;
the moments are merged over the ranks and the in-memory rows gathered, so
that every rank holds the same rows to validate on and starts from the
same model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ._scaling import refuse_rows_beyond_reach, standardise

#: In-memory rows of a streamed fit: a sample of the training rows, and at
#: most this many of the early-stopping and of the held-out chunks' rows
#: (random subsets beyond).
SAMPLE_ROWS = 50_000
VALIDATION_ROWS = 100_000
HELD_ROWS = 100_000


@dataclass
class StreamMeasure:
    """What one pass over streamed rows found (every array in the data's units)."""

    train_chunks: np.ndarray
    n_train: int
    #: The smallest ``n_train`` of any rank (``n_train`` without ranks).
    n_train_min: int
    mean: np.ndarray
    covariance: np.ndarray
    sample: np.ndarray
    validation: np.ndarray | None
    held: np.ndarray | None


def _merge(a, b):
    """Chan et al.'s pairwise merge of ``(rows, mean, spread)`` moments, the
    spread a scatter matrix or per-column sums of squares."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if na == 0:
        return b
    n = na + nb
    delta = mb - ma
    cross = np.outer(delta, delta) if np.ndim(sa) == 2 else np.square(delta)
    return n, ma + delta * (nb / n), sa + sb + cross * (na * nb / n)


def _moments(block):
    mean = block.mean(0)
    centred = block - mean
    return len(block), mean, centred.T @ centred


def _subset(block, k, rng):
    return block if k >= len(block) else block[np.sort(rng.choice(len(block), k, replace=False))]


def _rows_from(source, chunks, sizes, limit, rng):
    """At most ``limit`` rows of ``chunks`` (a random subset, spread in proportion to their sizes), or None."""
    if len(chunks) == 0:
        return None
    total = int(sizes[chunks].sum())
    keep = [int(np.ceil(limit * sizes[c] / total)) for c in chunks]
    return np.concatenate([_subset(source.read(c), k, rng) for c, k in zip(chunks, keep)])[:limit]


def _split_chunks(n_chunks, rng, early_stopping, validation_fraction, hold_out):
    """(training, early-stopping, held-out) chunk positions."""
    held = hold_out(n_chunks, None) if hold_out is not None else None
    held = np.asarray([] if held is None else held, dtype=int)
    rest = rng.permutation(np.setdiff1d(np.arange(n_chunks), held))
    n_val = 0
    if early_stopping:
        if len(rest) < 2:
            raise ValueError(
                f"early stopping holds out whole chunks, and these rows make {n_chunks} chunk(s) "
                f"({len(held)} held out for calibration): use a smaller chunk_rows, or early_stopping=False")
        n_val = min(len(rest) - 1, max(1, int(round(validation_fraction * len(rest)))))
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.sort(held)


def measure_stream(source, rng, *, early_stopping, validation_fraction, hold_out=None) -> StreamMeasure:
    """One pass over ``source`` (a :class:`~skflow.ChunkedRows`): see the module docstring.

    ``hold_out(n_chunks, None)`` names chunks (positions, or None) to keep
    out of training and early stopping (an outlier detector's calibration
    rows).
    """
    if source.n_chunks == 0:
        raise ValueError("ChunkedRows holds no rows")
    sizes = np.asarray(source.chunk_sizes)
    train, val, held = _split_chunks(source.n_chunks, rng, early_stopping, validation_fraction, hold_out)
    n_train = int(sizes[train].sum())
    sample_rate = min(1.0, SAMPLE_ROWS / max(n_train, 1))
    moments = (0, np.zeros(source.n_features), np.zeros((source.n_features, source.n_features)))
    sample = []
    for c in train:
        block = source.read(c)
        moments = _merge(moments, _moments(block))
        sample.append(_subset(block, int(np.ceil(sample_rate * len(block))), rng))
    sample = np.concatenate(sample)[:SAMPLE_ROWS]
    validation = _rows_from(source, val, sizes, VALIDATION_ROWS, rng)
    held_rows = _rows_from(source, held, sizes, HELD_ROWS, rng)
    n_train_min = n_train
    if source.distributed:
        moments, n_train_min, sample, validation, held_rows = _over_ranks(
            moments, n_train, sample, validation, held_rows)
    n, mean, scatter = moments
    if n < 2:
        raise ValueError(f"the training chunks hold {n} row(s); a fit needs at least 2")
    return StreamMeasure(train_chunks=train, n_train=n, n_train_min=n_train_min, mean=mean,
                         covariance=scatter / n, sample=sample, validation=validation, held=held_rows)


def _over_ranks(moments, n_train, sample, validation, held):
    """Every rank's moments merged, the smallest training share, and the in-memory rows gathered (in rank order)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("ChunkedRows(distributed=True) needs torch.distributed's default process group: "
                           "call torch.distributed.init_process_group on every rank first")
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, (moments, n_train, sample, validation, held))
    merged = functools.reduce(_merge, (r[0] for r in everyone))

    def joined(i, limit):
        parts = [r[i] for r in everyone if r[i] is not None]
        return np.concatenate(parts)[: limit * len(everyone)] if parts else None

    return (merged, min(r[1] for r in everyone), joined(2, SAMPLE_ROWS), joined(3, VALIDATION_ROWS),
            joined(4, HELD_ROWS))


@torch.no_grad()
def refit_batch_norm_streamed(flow, rows: "StreamedRows") -> None:
    """Every batch-norm layer's statistics from all training rows of
    ``rows`` (merged over the ranks), in one pass over the chunks per layer:
    each chunk is pushed through the layers before it."""
    if not flow.has_statistics():
        return
    was_training = flow.training
    flow.eval()
    transforms = list(flow.transforms)
    for position, layer in enumerate(transforms):
        if not hasattr(layer, "set_statistics"):
            continue
        moments = None
        for c in rows.chunks:
            h = rows.standardised(rows.source.read(int(c)))
            for t in transforms[:position]:
                h = flow._call(t, h, None)[0]
            h = h.double().cpu().numpy()
            block = (len(h), h.mean(0), np.square(h - h.mean(0)).sum(0))
            moments = block if moments is None else _merge(moments, block)
        if rows.source.distributed:
            import torch.distributed as dist

            everyone = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, moments)
            moments = functools.reduce(_merge, everyone)
        n, mean, squares = moments
        like = layer.running_mean
        layer.set_statistics(torch.as_tensor(mean, dtype=like.dtype, device=like.device),
                             torch.as_tensor(squares / n, dtype=like.dtype, device=like.device))
    flow.train(was_training)


class StreamedRows:
    """One epoch's training batches from the training chunks of a
    :class:`~skflow.ChunkedRows` (see :func:`skflow.nn.train_flow`'s
    ``rows``): chunks in a new random order, each read, dequantised with
    fresh uniform noise of ``grid_steps``, standardised, moved to
    ``device`` in ``dtype`` and cut into shuffled batches.

    With ranks, every rank stops an epoch after the same number of batches
    (the smallest rank's count), so their steps pair up.  ``n_rows`` is
    this rank's share (the smallest rank's), ``n_total`` every rank's
    training rows and ``world`` the number of ranks: a step's batch is the
    ranks' batches together."""

    def __init__(self, source, chunks, n_rows, *, location, scale, grid_steps, dtype, device, noise_seed,
                 n_total=None, world=1):
        self.source, self.chunks, self.n_rows = source, chunks, n_rows
        self.n_total = n_rows if n_total is None else n_total
        self.world = world
        self.location, self.scale, self.grid_steps = location, scale, grid_steps
        self.dtype, self.device = dtype, device
        self.noise = np.random.RandomState(noise_seed)
        self._steps = None

    def _steps_per_epoch(self, batch_size):
        sizes = np.asarray(self.source.chunk_sizes)[self.chunks]
        steps = int(np.maximum(1, sizes // batch_size).sum())
        if self.source.distributed:
            import torch.distributed as dist

            count = torch.tensor([steps], dtype=torch.int64, device=self.device)  # NCCL: CUDA tensors
            dist.all_reduce(count, op=dist.ReduceOp.MIN)
            steps = int(count.item())
        return steps

    def standardised(self, block):
        """A chunk's rows dequantised and standardised, as a tensor on the device."""
        if self.grid_steps.any():
            block = block + self.noise.uniform(-0.5, 0.5, size=block.shape) * self.grid_steps
        z, outside = standardise(block, self.location, self.scale, self.dtype)
        refuse_rows_beyond_reach(outside)
        return torch.from_numpy(z).to(self.device)

    def batches(self, batch_size, generator):
        if self._steps is None:
            self._steps = self._steps_per_epoch(batch_size)
        left = self._steps
        for position in torch.randperm(len(self.chunks), generator=generator).tolist():
            x = self.standardised(self.source.read(int(self.chunks[position])))
            perm = torch.randperm(len(x), generator=generator).to(self.device)
            for idx in torch.tensor_split(perm, max(1, len(x) // batch_size)):
                if left == 0:
                    return
                left -= 1
                yield x[idx], None
