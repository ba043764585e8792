"""The fused driver: a run of layers with kernels as one autograd node.

Autograd records every small operation of a flow (mask multiplies, soft
clamps, exponentials, batch statistics) as its own node, and on a CPU the
per-operation overhead, not the arithmetic, dominates a training step: a
10-layer MAF step at batch 100 spends a few percent of its time in matrix
products.  :class:`FlowFunction` runs a run of consecutive layers that have
kernels (:mod:`skflow.nn.layers.kernel`) as a single autograd node, with far
fewer operations; the layer modules stay the readable reference the tests
compare against.  The driver knows no layer type:

* rows are columns: activations are stored transposed, ``(features, rows)``,
  so per-feature blocks (a MADE's shift and log-scale halves, say) are
  contiguous rather than strided columns (elementwise kernels on strided
  columns run several times slower);
* each activation carries a row of ones, so biases ride inside the matrix
  products; the activations of one step are views of one workspace, whose
  rows of ones are written by one call;
* parameters come as blocks (:meth:`LayerKernel.slots`); with
  :class:`FlatParameters` all blocks of a run lie in one tensor, the masked
  ones first, whose masked entries are zero and stay zero (one multiply of
  the gradient per step), so the weights are used as they are;
* per-layer log-det constants are summed once, running averages updated in
  one ``_foreach_lerp_`` per momentum.

Scoring (:class:`ScoringPlan`) prepares every layer once and streams rows
through cache-sized buffers; the flow keeps the plan while its parameters
and statistics are unchanged.
"""

from __future__ import annotations

import functools
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.autograd.function import once_differentiable

from ._compat import foreach_lerp_, foreach_mul_
from .threads import intra_op_threads

__all__ = ["FlatParameters", "FlowFunction", "ScoringPlan", "Workspace"]

_MIN_EVAL_ROWS = 256


def activation_sizes(kernels, d):
    """Rows of every activation of a forward pass: the input, then each kernel's."""
    return [d] + [s for k in kernels for s in k.activation_sizes(d)]


@functools.lru_cache(maxsize=64)
def _ones_rows(sizes, device):
    return torch.tensor([r - 1 for r in itertools.accumulate(w + 1 for w in sizes)], device=device)


def _new_workspace(sizes, n, like):
    """One tensor for all activations of a forward pass, rows of ones set."""
    buffer = like.new_empty(sum(sizes) + len(sizes), n)
    buffer.index_fill_(0, _ones_rows(tuple(sizes), like.device), 1.0)
    return buffer


def _views(buffer, sizes):
    """``(full, body)`` views of a workspace: per activation, ``full`` is its
    ``(width + 1, n)`` view ending in the row of ones that carries the
    biases, ``body`` the ``(width, n)`` view without it."""
    full = buffer.split([w + 1 for w in sizes])
    body = buffer.split([k for w in sizes for k in (w, 1)])[::2]
    return full, body


class Workspace:
    """The activation buffer of a training step, kept for the next one.

    A fresh multi-megabyte buffer per step comes from the C allocator as
    fresh pages, and the kernel faults them in on first touch, which costs a
    sizeable share of a step.  The buffer is lent to one forward pass at a time and
    returned by its backward pass; a forward pass while it is out (or of
    another shape) gets a fresh one.
    """

    def __init__(self):
        self.buffer = None
        self.lent = False

    def take(self, sizes, n, like):
        shape = (sum(sizes) + len(sizes), n)
        if self.lent:
            return _new_workspace(sizes, n, like)
        if self.buffer is None or self.buffer.shape != shape or self.buffer.dtype != like.dtype \
                or self.buffer.device != like.device:
            self.buffer = _new_workspace(sizes, n, like)
        self.lent = True
        return self.buffer

    def give_back(self, buffer):
        if buffer is self.buffer:
            self.lent = False


class ForwardState:
    """What the kernels of one forward pass share (see :meth:`LayerKernel.forward`)."""

    def __init__(self, workspace, sizes, log_det, context):
        full, body = _views(workspace, sizes)
        self._activations = zip(full, body)
        self.log_det = log_det
        #: ``(c + 1, n)``: the context, transposed, over a row of ones; or None
        self.context = context
        self._constants = []
        self._updates = {}

    def take(self):
        """The next activation ``(full, body)`` of the workspace."""
        return next(self._activations)

    def add_constant_log_det(self, values):
        """A log-det term that is the same for every row (summed with the others at the end)."""
        self._constants.append(values)

    def update_running(self, momentum, targets, values):
        """``target.lerp_(value, momentum)`` for each pair, done at the end of the pass."""
        pending = self._updates.setdefault(momentum, ([], []))
        pending[0].extend(targets)
        pending[1].extend(values)

    def finish(self):
        if self._constants:
            self.log_det.add_(torch.stack(self._constants).sum())
        for momentum, (targets, values) in self._updates.items():
            foreach_lerp_(targets, values, momentum)


class BackwardState:
    """What the kernels of one backward pass share (see :meth:`LayerKernel.backward`)."""

    def __init__(self, grad_log_det, context, grad_context):
        #: ``(n,)`` gradient of the loss at the per-row log-det, or None
        self.grad_log_det = grad_log_det
        #: its sum: the gradient at a per-layer constant log-det
        self.total_log_det = None if grad_log_det is None else grad_log_det.sum()
        self.context = context
        #: ``(c, n)`` accumulator of the gradient at the context, or None
        self.grad_context = grad_context
        #: whether the current kernel must return the gradient at its input
        self.need_input_grad = True


def _transposed_context(context, n, like):
    if context is None:
        return None
    c = like.new_empty(context.shape[1] + 1, n)
    c[:-1].copy_(context.t())
    c[-1].fill_(1.0)
    return c


def flow_forward(x, context, kernels, blocks, keep=False, workspace=None):
    """Data to the end of the run, transposed: ``x`` is ``(n, d)``; returns
    ``(u, log_det, saved, context)`` with ``u`` of shape ``(d, n)`` (a view of
    the workspace), ``saved`` per kernel (None entries unless ``keep``) and the
    context as the kernels saw it (``(c + 1, n)`` with a row of ones, or None)."""
    n, d = x.shape
    sizes = activation_sizes(kernels, d)
    if workspace is None:
        workspace = _new_workspace(sizes, n, x)
    state = ForwardState(workspace, sizes, x.new_zeros(n), _transposed_context(context, n, x))
    h = state.take()
    h[1].copy_(x.t())
    saved = []
    for kernel, kernel_blocks in zip(kernels, blocks):
        h, kept = kernel.forward(state, h, kernel_blocks, keep)
        saved.append(kept)
    state.finish()
    return h[1], state.log_det, saved, state.context


def _pack(kernels, params):
    """Every kernel's parameter blocks from the flat list of parameters."""
    out, i = [], 0
    for k in kernels:
        out.append(k.pack(params[i : i + len(k.params)]))
        i += len(k.params)
    return out


class FlatParameters:
    """The parameters of a run of kernels stored in one tensor, for the length of a fit.

    Every parameter becomes a view into :attr:`tensor`, so an optimiser over
    that single tensor (one Adam kernel, one gradient accumulation per step
    instead of one per parameter) trains the module in place, and
    ``state_dict`` / ``load_state_dict`` keep working.  The tensor holds
    every kernel's blocks, masked blocks first.  Masked entries are set to
    zero here (the flow's function does not depend on them) and the fused
    pass keeps them there by masking their gradients (with Adam, weight
    decay and clipping a zero gradient leaves a zero weight), so the blocks
    are the effective weights as they stand.  :meth:`release` gives every
    parameter its own contiguous storage back.
    """

    def __init__(self, kernels):
        self.kernels = tuple(kernels)
        self.params = [p for k in self.kernels for p in k.params]
        slots = [k.slots() for k in self.kernels]
        self._counts = [len(ks) for ks in slots]
        entries = [(ki, si, shape, mask) for ki, ks in enumerate(slots) for si, (shape, mask) in enumerate(ks)]
        masked = [e for e in entries if e[3] is not None]
        masks = [mask.reshape(-1) for *_, mask in masked]
        self.masked_size = sum(m.numel() for m in masks)
        self._entries = [(ki, si) for ki, si, *_ in masked] + [(ki, si) for ki, si, _, m in entries if m is None]
        self._shapes = [slots[ki][si][0] for ki, si in self._entries]
        like = self.params[0] if self.params else torch.empty(0)
        self.mask = torch.cat(masks) if masks else like.new_empty(0)
        with torch.no_grad():
            packed = [k.pack(k.params) for k in self.kernels]
            parts = [packed[ki][si].reshape(-1) for ki, si in self._entries]
            self.tensor = torch.cat(parts) if parts else like.new_empty(0)
            self.tensor[: self.masked_size].mul_(self.mask)
            self.tensor.requires_grad_()
        self.blocks = self.split(self.tensor.detach())
        self.grad_buffer = None
        self._grad_blocks = None
        self.workspace = Workspace()
        with torch.no_grad():
            for k, blocks in zip(self.kernels, self.blocks):
                for p, view in zip(k.params, k.param_views(blocks)):
                    p.data = view

    def split(self, flat):
        """Per kernel, its blocks as views of ``flat``."""
        out = [[None] * count for count in self._counts]
        parts = flat.split([s.numel() for s in self._shapes])
        for (ki, si), part, shape in zip(self._entries, parts, self._shapes):
            out[ki][si] = part.view(shape)
        return out

    def grad_split(self):
        """A gradient buffer and its per-kernel block views: the same
        buffer step after step, unless it is still held as ``.grad``
        (passes accumulating)."""
        if self._grad_blocks is not None and self.tensor.grad is not self.grad_buffer:
            return self.grad_buffer, self._grad_blocks
        buffer = torch.empty_like(self.tensor, requires_grad=False)
        views = self.split(buffer)
        if self._grad_blocks is None:
            self.grad_buffer, self._grad_blocks = buffer, views
        return buffer, views

    def deposit(self, buffer):
        """Make ``buffer`` (from :meth:`grad_split`) the flat tensor's gradient.

        Done here rather than by returning it to autograd: its gradient
        accumulation copies a returned tensor that anything else still
        references (this reused buffer), a parameter-sized copy per step
        (4 ms of a 50 ms step for the 257-D audio model).
        """
        if self.tensor.grad is None:
            self.tensor.grad = buffer
        else:
            self.tensor.grad.add_(buffer)

    def release(self):
        with torch.no_grad():
            for p in self.params:
                p.data = p.data.clone(memory_format=torch.contiguous_format)


class FlowFunction(torch.autograd.Function):
    """A run of layers with kernels as one autograd node.

    ``FlowFunction.apply(x, context, kernels, flat, *params)`` returns
    ``(u, log_det)``; ``params`` are the kernels' parameters in order
    (``kernel.params``).  With a :class:`FlatParameters` as ``flat``,
    ``params`` is its single tensor, whose ``.grad`` the backward pass sets
    (or adds to) itself (:meth:`FlatParameters.deposit`; tensor hooks on it
    do not run).  Layers with running statistics in training mode update
    them as a side effect, as ``nn.BatchNorm`` does.  ``u`` is a transposed
    view (rows are its columns in memory).
    """

    @staticmethod
    def forward(ctx, x, context, kernels, flat, *params):
        blocks = _pack(kernels, params) if flat is None else flat.blocks
        needs_grad = any(ctx.needs_input_grad)
        workspace = None
        if flat is not None and needs_grad:
            workspace = flat.workspace.take(activation_sizes(kernels, x.shape[1]), x.shape[0], x)
        u, log_det, saved, context_t = flow_forward(x, context, kernels, blocks, needs_grad, workspace)
        if needs_grad:
            ctx.kernels, ctx.blocks, ctx.saved = kernels, blocks, saved
            ctx.flat, ctx.workspace, ctx.context_t = flat, workspace, context_t
            ctx.shape = (x.shape[1], x.shape[0])
        ctx.set_materialize_grads(False)
        # The caller's u must outlive the reused workspace.
        return (u.t() if workspace is None else u.t().clone()), log_det

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_u, grad_log_det):
        kernels, blocks, saved, flat = ctx.kernels, ctx.blocks, ctx.saved, ctx.flat
        g = None if grad_u is None else grad_u.t().contiguous()
        context_t = ctx.context_t
        grad_context = None
        if ctx.needs_input_grad[1]:
            grad_context = context_t.new_zeros(context_t.shape[0] - 1, context_t.shape[1])
        state = BackwardState(grad_log_det, context_t, grad_context)
        # Every block gradient is written straight into its slot: of one
        # reused buffer with flat parameters, of fresh tensors without.
        if flat is not None:
            buffer, grad_blocks = flat.grad_split()
        else:
            like = next(t for t in (grad_u, grad_log_det) if t is not None)
            grad_blocks = [[like.new_empty(shape) for shape, _ in k.slots()] for k in kernels]
        if g is None:
            g = grad_log_det.new_zeros(ctx.shape)
        for i in range(len(kernels) - 1, -1, -1):
            state.need_input_grad = i > 0 or ctx.needs_input_grad[0]
            g = kernels[i].backward(state, saved[i], g, blocks[i], grad_blocks[i])
        grad_input = g.t() if ctx.needs_input_grad[0] else None
        grad_ctx = None if grad_context is None else grad_context.t()
        if flat is not None:
            ctx.saved = None
            flat.workspace.give_back(ctx.workspace)
            buffer[: flat.masked_size].mul_(flat.mask)
            flat.deposit(buffer)
            return grad_input, grad_ctx, None, None, None
        masked = [(gb, m) for k, kgb in zip(kernels, grad_blocks) for gb, (_, m) in zip(kgb, k.slots())
                  if m is not None]
        if masked:
            foreach_mul_([gb for gb, _ in masked], [m for _, m in masked])
        out = [p for k, kgb in zip(kernels, grad_blocks) for p in k.unpack_grads(kgb)]
        return (grad_input, grad_ctx, None, None, *out)


class ScoringPlan:
    """Every layer prepared once for scoring (block-sparse products, batch
    norm reduced to ``x * scale + shift`` with a constant log-det, ...),
    with a snapshot of what it was prepared from: :meth:`matches` compares
    the current parameters and statistics with that snapshot by value, so a
    kept plan cannot go stale whatever changed them (optimiser steps,
    ``.data`` edits, ``load_state_dict``)."""

    @torch.no_grad()
    def __init__(self, kernels, d):
        self.kernels = tuple(kernels)
        self.d = d
        self.signature = tuple(k.signature() for k in self.kernels)
        self.snapshot = [t.detach().clone() for k in self.kernels for t in k.plan_tensors()]
        order = torch.arange(d)  # the feature held at each row position
        self.steps, self.const, self.buffers = [], 0.0, {}
        for kernel in self.kernels:
            step, order, const = kernel.eval_prepare(kernel.pack(kernel.params), order)
            self.steps.append(step)
            self.const += const
            self.buffers.update(kernel.eval_buffers(step))
        self.order = order

    def matches(self, kernels) -> bool:
        """Whether the plan is still exact for ``kernels``."""
        if tuple(k.signature() for k in kernels) != self.signature:
            return False
        current = [t for k in kernels for t in k.plan_tensors()]
        return len(current) == len(self.snapshot) and all(
            a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
            for a, b in zip(current, self.snapshot)
        )

    @torch.no_grad()
    def log_prob(self, x, base, context=None, chunk_bytes=1 << 22):
        """Log-density of each row of ``x``.

        The rows go through, transposed, in chunks whose activations stay in
        the CPU cache, written into buffers reused from chunk to chunk (with
        their rows of ones written once): a fresh buffer per layer costs
        more in page faults than the matrix product that fills it.
        """
        n, d = x.shape
        if 0 < n < _MIN_EVAL_ROWS:
            # Matrix-product kernels are chosen by the problem size, and float32
            # results differ in the last bits between kernels; a fixed minimum row
            # count makes a row's score the same whether it comes alone or with
            # others (scikit-learn's subset-invariance check).
            padded = x.new_zeros(_MIN_EVAL_ROWS, d)
            padded[:n] = x
            if context is not None:
                context = torch.cat([context, context[:1].expand(_MIN_EVAL_ROWS - n, -1)])
            return self.log_prob(padded, base, context, chunk_bytes)[:n]
        out = x.new_empty(n)
        if n == 0:
            return out
        buffers = dict(self.buffers, h0=d, h1=d)
        if context is not None:
            buffers["context"] = context.shape[1]
        widest = max(buffers.values())
        rows = min(n, max(_MIN_EVAL_ROWS, chunk_bytes // ((widest + 1) * x.element_size())))
        starts = range(0, n, rows)
        workers = min(torch.get_num_threads(), len(starts)) if x.device.type == "cpu" else 1
        if workers < 2:
            self._score_chunks(iter(starts), x, base, context, out, rows, buffers)
            return out
        # Each worker scores whole chunks in one thread, taking the next chunk
        # when it is done.  The products of one chunk split over threads wait
        # at every product for the slowest thread, and on a shared machine one
        # core is now and then much slower (the same 8-D scoring ran at 115k
        # and 230k rows/s minutes apart on a 2-core VM); whole chunks per
        # worker let the faster core take more of them.  A chunk's result does
        # not depend on which worker scores it.
        lock = threading.Lock()
        shared = iter(starts)

        def take():
            while True:
                with lock:
                    start = next(shared, None)
                if start is None:
                    return
                yield start

        def work():
            # torch.no_grad() holds for the thread that entered it only.
            with torch.no_grad(), intra_op_threads(1):
                self._score_chunks(take(), x, base, context, out, rows, buffers)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(work) for _ in range(workers)]:
                future.result()
        return out

    def _score_chunks(self, starts, x, base, context, out, rows, buffers):
        """Score the chunks of ``rows`` rows beginning at each of ``starts`` into ``out``."""
        d = x.shape[1]
        storage = {key: x.new_empty((width + 1) * rows) for key, width in buffers.items()}
        views = {}

        def view(key, width, m):
            # (width + 1, m) over the first elements of the storage; ones row set once per m.
            if (key, m) not in views:
                v = storage[key][: (width + 1) * m].view(width + 1, m)
                v[0].fill_(1.0)
                views[key, m] = v
            return views[key, m]

        order = self.order.to(x.device)
        for start in starts:
            chunk = x[start : start + rows]
            m = chunk.shape[0]
            log_det = out[start : start + m]
            log_det.fill_(self.const)
            h, other = view("h0", d, m), view("h1", d, m)
            h[1:].copy_(chunk.t())
            c = None
            if context is not None:
                c = view("context", context.shape[1], m)
                c[1:].copy_(context[start : start + m].t())
            for kernel, step in zip(self.kernels, self.steps):
                h, other = kernel.eval_step(step, h, other, log_det, view, m, c)
            base.fused_log_prob_(h[1:], order, log_det, c)
