"""One hand-written forward and backward pass for a whole MAF.

Autograd records every small operation of a flow (mask multiplies, soft
clamps, exponentials, batch statistics) as its own node, and on a CPU the
per-operation overhead, not the arithmetic, dominates a training step: a
10-layer MAF step at batch 100 spends a few percent of its time in matrix
products.  :class:`FlowFunction` computes the same mathematics as the module
code in ``transforms.py`` (which stays as the readable reference the tests
compare against) as a single autograd node, with far fewer operations:

* rows are columns: activations are stored transposed, ``(features, rows)``,
  so the shift and log-scale halves of a MADE's output, and every
  per-feature vector, are contiguous blocks rather than strided columns
  (elementwise kernels on strided columns run several times slower);
* biases ride inside the matrix products: each activation carries a row of
  ones and each layer's weight and bias are one ``(in + 1, out)`` block
  ``[W^T ; b]``, so no bias is broadcast-copied in the forward pass and no
  bias gradient summed in the backward pass (the block gradient's last row
  is it).  Activations of one step are views of one workspace whose rows of
  ones are written by one call;
* the masks are precomputed per block; with :class:`FlatParameters` all
  blocks of the flow lie in one stretch of one tensor whose masked entries
  are zero and stay zero (their gradients are masked, one multiply per
  step), so the weights are used as they are, with no masked copy per step
  (for the 257-D audio model a fresh 26 MB copy per step);
* batch-norm running averages are updated in one ``_foreach_lerp_``;
* intermediates are overwritten in place wherever the backward pass allows.

Only activations whose derivative is a function of their output (tanh, relu)
are fused; flows with other activations or other transforms use the modules.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

FUSED_ACTIVATIONS = frozenset({"tanh", "relu"})
_LOG_2PI = math.log(2 * math.pi)
_MIN_EVAL_ROWS = 256

_tanh_backward = torch.ops.aten.tanh_backward
_tanh_backward_out = torch.ops.aten.tanh_backward.grad_input
_threshold_backward = torch.ops.aten.threshold_backward


def _activation_(a, activation):
    return a.tanh_() if activation == "tanh" else a.relu_()


def _activation_backward(grad, out, activation):
    if activation == "tanh":
        return _tanh_backward(grad, out)
    return _threshold_backward(grad, out, 0)


@dataclass(frozen=True)
class MAFSpec:
    """Static description of one MAF layer for :class:`FlowFunction`."""

    n_layers: int  # linear layers of the MADE, output layer included
    activation: str
    bound: float | None
    # One (in + 1, out) 0/1 tensor per linear layer, the mask of its block
    # [W^T ; b]: [mask^T ; 1].
    masks: tuple


@dataclass(frozen=True)
class BatchNormSpec:
    """Static description of one batch-norm layer for :class:`FlowFunction`."""

    eps: float
    momentum: float
    batch_statistics: bool
    running_mean: torch.Tensor
    running_var: torch.Tensor


def maf_spec(made, bound):
    """Build a :class:`MAFSpec` from a MADE's masks."""
    masks = tuple(torch.cat([layer.mask.t(), layer.mask.new_ones(1, layer.mask.shape[0])], 0)
                  for layer in made.layers)
    return MAFSpec(len(made.layers), made.activation, bound, masks)


def _split(specs, params):
    """Group the flat parameter list by layer: MAF -> (weights, biases), BN -> (log_gamma, beta)."""
    groups, i = [], 0
    for spec in specs:
        if isinstance(spec, MAFSpec):
            k = spec.n_layers
            groups.append((params[i : i + k], params[i + k : i + 2 * k]))
            i += 2 * k
        else:
            groups.append((params[i], params[i + 1]))
            i += 2
    return groups


def _block(w, b):
    """A MADE layer's weight and bias as one ``(in + 1, out)`` block ``[W^T ; b]``."""
    return torch.cat([w.t(), b[None, :]], 0)


def _effective(specs, params):
    """The masked ``[W^T ; b]`` block of every MADE layer, and the batch-norm ``(log_gamma, beta)`` pairs."""
    weights, batch_norms = [], []
    for spec, group in zip(specs, _split(specs, params)):
        if isinstance(spec, MAFSpec):
            for w, b, mask in zip(*group, spec.masks):
                weights.append(_block(w, b).mul_(mask))
        else:
            batch_norms.append(group)
    return weights, batch_norms


def _activation_sizes(specs, d):
    """Rows of every activation of a forward pass: the input, then each
    MADE's hidden layers and output, or each batch norm's output."""
    sizes = [d]
    for spec in specs:
        if isinstance(spec, MAFSpec):
            sizes += [m.shape[1] for m in spec.masks[:-1]]
        sizes.append(d)
    return sizes


def _new_workspace(sizes, n, like):
    """One tensor for all activations of a forward pass, rows of ones set."""
    key = (tuple(sizes), like.device)
    ones = _ONES_ROWS.get(key)
    if ones is None:
        ones = torch.tensor([r - 1 for r in itertools.accumulate(w + 1 for w in sizes)], device=like.device)
        _ONES_ROWS[key] = ones
    buffer = like.new_empty(sum(sizes) + len(sizes), n)
    buffer.index_fill_(0, ones, 1.0)
    return buffer


_ONES_ROWS: dict = {}


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
    fresh pages, and the kernel faults them in on first touch: measured
    ~1,500 minor page faults and 2-3 ms of system time per 8-D batch-1024
    step (of ~13 ms).  The buffer is lent to one forward pass at a time and
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


class FlatParameters:
    """A flow's parameters stored in one tensor, for the length of a fit.

    Every parameter becomes a view into :attr:`tensor`, so an optimiser over
    that single tensor (one Adam kernel, one gradient accumulation per step
    instead of one per parameter) trains the module in place, and
    ``state_dict`` / ``load_state_dict`` keep working.  Each MADE layer's
    weight and bias are laid out together as the block ``[W^T ; b]`` (the
    weight a transposed view, the bias the last row), and all blocks come
    first.  Masked entries are set to zero here (the flow's function does not
    depend on them) and the fused pass keeps them there by masking their
    gradients (with Adam, weight decay and clipping a zero gradient leaves a
    zero weight), so the blocks are the effective weights as they stand.
    :meth:`release` gives every parameter its own contiguous storage back.
    """

    def __init__(self, specs, params):
        self.params = list(params)
        groups = _split(specs, self.params)
        shapes, order = [], []  # [W^T ; b] blocks first, batch-norm vectors after
        masks = []
        for spec, group in zip(specs, groups):
            if isinstance(spec, MAFSpec):
                for w, b, mask in zip(*group, spec.masks):
                    shapes.append(mask.shape)
                    order.append((w, b))
                    masks.append(mask.reshape(-1))
        self.block_size = sum(m.numel() for m in masks)
        self.block_shapes = shapes
        self.mask = torch.cat(masks) if masks else self.params[0].new_empty(0)
        vectors = [p for spec, group in zip(specs, groups) if not isinstance(spec, MAFSpec) for p in group]
        self.vector_sizes = [v.numel() for v in vectors]
        with torch.no_grad():
            parts = [_block(w, b).reshape(-1) for w, b in order]
            self.tensor = torch.cat(parts + [v.reshape(-1) for v in vectors])
            self.tensor[: self.block_size].mul_(self.mask)
            self.tensor.requires_grad_()
        self.blocks, self.vectors = blocks, _ = self.split(self.tensor.detach())
        views = {}
        for (w, b), block in zip(order, blocks):
            views[id(w)], views[id(b)] = block[:-1].t(), block[-1]
        for v, view in zip(vectors, self.vectors):
            views[id(v)] = view
        self.grad_buffer = None
        self._grad_split = None
        self.workspace = Workspace()
        with torch.no_grad():
            for p in self.params:
                p.data = views[id(p)]

    def split(self, flat):
        """``([W^T ; b] blocks, batch-norm vectors)`` as views of ``flat``."""
        vectors = list(flat[self.block_size :].split(self.vector_sizes)) if self.vector_sizes else []
        return self._blocks(flat[: self.block_size]), vectors

    def _blocks(self, part):
        sizes = [s.numel() for s in self.block_shapes]
        return [c.view(s) for c, s in zip(part.split(sizes), self.block_shapes)]

    def effective(self):
        """The (masked) blocks and the batch-norm ``(log_gamma, beta)`` pairs."""
        blocks, vectors = self.blocks, self.vectors
        return blocks, [(vectors[i], vectors[i + 1]) for i in range(0, len(vectors), 2)]

    def grad_split(self):
        """A gradient buffer and its ``(blocks, vectors)`` views: the same
        buffer step after step, unless it is still held as ``.grad``
        (passes accumulating)."""
        if self._grad_split is not None and self.tensor.grad is not self.grad_buffer:
            return self.grad_buffer, self._grad_split
        buffer = torch.empty_like(self.tensor, requires_grad=False)
        views = self.split(buffer)
        if self._grad_split is None:
            self.grad_buffer, self._grad_split = buffer, views
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


def flow_forward(x, specs, weights, batch_norms, keep=False, workspace=None):
    """Data to base space, transposed: ``x`` is ``(n, d)``; returns
    ``(u, log_det, saved)`` with ``u`` of shape ``(d, n)``, ``saved`` only
    if ``keep``.  ``weights``/``batch_norms`` as from :func:`_effective` or
    :meth:`FlatParameters.effective`; activations go into ``workspace``
    (from :class:`Workspace`) or a fresh buffer."""
    n, d = x.shape
    weights, batch_norms = iter(weights), iter(batch_norms)
    bns = [(spec, next(batch_norms)) for spec in specs if not isinstance(spec, MAFSpec)]
    gammas = iter(torch._foreach_exp([lg for _, (lg, _) in bns])) if bns else iter(())
    bns = iter(bns)

    log_det = x.new_zeros(n)
    saved = []
    bn_log_det, bn_stats = [], []
    sizes = _activation_sizes(specs, d)
    if workspace is None:
        workspace = _new_workspace(sizes, n, x)
    full, body = map(iter, _views(workspace, sizes))
    h, h_body = next(full), next(body)
    h_body.copy_(x.t())
    for spec in specs:
        if isinstance(spec, MAFSpec):
            ws = [next(weights) for _ in range(spec.n_layers)]
            inputs, hidden = [h], []
            for w in ws[:-1]:
                a, a_body = next(full), next(body)
                _activation_(torch.mm(w.t(), inputs[-1], out=a_body), spec.activation)
                inputs.append(a)
                hidden.append(a_body)
            p = torch.mm(ws[-1].t(), inputs[-1])
            mu, t = p[:d], p[d:]
            if spec.bound is None:
                bound = 1.0
            else:
                bound = spec.bound
                t.mul_(1.0 / bound).tanh_()
            inv_scale = t.mul(-bound).exp_()
            u, u_body = next(full), next(body)
            torch.sub(h_body, mu, out=u_body).mul_(inv_scale)
            log_det.add_(t.sum(0), alpha=-bound)
            if keep:
                saved.append((inputs, hidden, ws, t, inv_scale, u_body))
            h, h_body = u, u_body
        else:
            _, (log_gamma, beta) = next(bns)
            gamma = next(gammas)
            if spec.batch_statistics:
                # Two passes instead of torch.var_mean (slower on these shapes).
                mean = h_body.mean(1)
                centred = h_body - mean[:, None]
                var = centred.square().mean(1)
                bn_stats.append((spec, mean, var))
            else:
                mean, var = spec.running_mean, spec.running_var
                centred = h_body - mean[:, None]
            inv_std = (var + spec.eps).rsqrt_()
            x_hat = centred.mul_(inv_std[:, None])
            h, h_body = next(full), next(body)
            torch.addcmul(beta[:, None], x_hat, gamma[:, None], out=h_body)
            bn_log_det.append(log_gamma + inv_std.log())
            if keep:
                saved.append((x_hat, inv_std, gamma))
    if bn_log_det:
        # Every batch-norm layer adds the same constant to each row's log-det.
        log_det.add_(torch.stack(bn_log_det).sum())
    if bn_stats:
        momentum = bn_stats[0][0].momentum
        torch._foreach_lerp_([s.running_mean for s, _, _ in bn_stats], [m for _, m, _ in bn_stats], momentum)
        torch._foreach_lerp_([s.running_var for s, _, _ in bn_stats], [v for _, _, v in bn_stats], momentum)
    return h_body, log_det, saved


class FlowFunction(torch.autograd.Function):
    """A MAF (MAF and batch-norm layers, any interleaving) as one autograd node.

    ``FlowFunction.apply(x, specs, flat, *params)`` returns ``(u, log_det)``;
    ``params`` are, layer by layer, the MADE weights then biases (MAF) or
    ``log_gamma, beta`` (batch norm).  With a :class:`FlatParameters` as
    ``flat``, ``params`` is its single tensor, whose ``.grad`` the backward
    pass sets (or adds to) itself (:meth:`FlatParameters.deposit`; tensor
    hooks on it do not run).  Batch-norm layers in training mode update their running
    averages as a side effect, as ``nn.BatchNorm`` does.  ``u`` is a
    transposed view (rows are its columns in memory).
    """

    @staticmethod
    def forward(ctx, x, specs, flat, *params):
        weights, batch_norms = _effective(specs, params) if flat is None else flat.effective()
        needs_grad = any(ctx.needs_input_grad)
        workspace = None
        if flat is not None and needs_grad:
            workspace = flat.workspace.take(_activation_sizes(specs, x.shape[1]), x.shape[0], x)
        u, log_det, saved = flow_forward(x, specs, weights, batch_norms, keep=needs_grad, workspace=workspace)
        if needs_grad:
            ctx.specs = specs
            ctx.saved = saved
            ctx.flat = flat
            ctx.workspace = workspace
        ctx.set_materialize_grads(False)
        # The caller's u must outlive the reused workspace.
        return (u.t() if workspace is None else u.t().clone()), log_det

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_u, grad_log_det):
        specs, saved, flat = ctx.specs, ctx.saved, ctx.flat
        g = None if grad_u is None else grad_u.t().contiguous()
        total_ld = grad_log_det.sum() if grad_log_det is not None else None
        # With flat parameters every gradient is written straight into its
        # slice of one reused buffer.
        if flat is not None:
            buffer, (block_slots, vector_slots) = flat.grad_split()
        else:
            block_slots = [None] * sum(s.n_layers for s in specs if isinstance(s, MAFSpec))
            vector_slots = [None] * (2 * sum(not isinstance(s, MAFSpec) for s in specs))
        block_grads, vector_grads = list(block_slots), list(vector_slots)
        bi, vi = len(block_slots), len(vector_slots)
        for depth, (spec, item) in enumerate(zip(reversed(specs), reversed(saved))):
            first = depth == len(specs) - 1
            if isinstance(spec, MAFSpec):
                inputs, hidden, ws, t, inv_scale, u = item
                d, n = t.shape
                if g is None:
                    g = u.new_zeros(u.shape)
                grad_x = g * inv_scale  # = -d/dmu; also the direct path to x
                gp = u.new_empty(2 * d, n)
                g_mu, g_t = gp.split(d)
                torch.neg(grad_x, out=g_mu)
                # dL/dalpha = -(g * u) - dL/dlog_det; alpha = bound * tanh(pre / bound).
                ga = g * u
                if grad_log_det is not None:
                    ga.add_(grad_log_det)
                if spec.bound is None:
                    torch.neg(ga, out=g_t)
                else:
                    _tanh_backward_out(ga, t, grad_input=g_t).neg_()
                bi -= spec.n_layers
                grad = gp
                for k in range(spec.n_layers - 1, -1, -1):
                    # The block's gradient, bias row included (the inputs' ones row).
                    block_grads[bi + k] = torch.mm(inputs[k], grad.t(), out=block_slots[bi + k])
                    if k > 0:
                        grad = _activation_backward(torch.mm(ws[k][:-1], grad), hidden[k - 1], spec.activation)
                    elif not first or ctx.needs_input_grad[0]:
                        grad_x = grad_x.addmm_(ws[0][:-1], grad)
                g = grad_x
            else:
                x_hat, inv_std, gamma = item
                if g is None:
                    g = x_hat.new_zeros(x_hat.shape)
                vi -= 2
                n = x_hat.shape[1]
                vector_grads[vi + 1] = torch.sum(g, 1, out=vector_slots[vi + 1])
                grad_log_gamma = torch.sum(g * x_hat, 1, out=vector_slots[vi]).mul_(gamma)
                if total_ld is not None:
                    grad_log_gamma.add_(total_ld)
                vector_grads[vi] = grad_log_gamma
                gx = g * gamma[:, None]
                if spec.batch_statistics:
                    # Through the batch mean and variance (the log-det's
                    # -0.5 log var term included): with c = dL/dlog_gamma / n,
                    # dx = inv_std * (gx - mean(gx) - x_hat * c).
                    gx.sub_(gx.mean(1, keepdim=True)).addcmul_(x_hat, grad_log_gamma[:, None], value=-1.0 / n)
                g = gx.mul_(inv_std[:, None])
        grad_input = g.t() if ctx.needs_input_grad[0] else None
        if flat is not None:
            ctx.saved = None
            flat.workspace.give_back(ctx.workspace)
            buffer[: flat.block_size].mul_(flat.mask)
            flat.deposit(buffer)
            return grad_input, None, None, None
        # Per-parameter gradients: mask each block's gradient, then split it.
        masks = [m for s in specs if isinstance(s, MAFSpec) for m in s.masks]
        torch._foreach_mul_(block_grads, masks)
        blocks, vectors = iter(block_grads), iter(vector_grads)
        out = []
        for spec in specs:
            if isinstance(spec, MAFSpec):
                layer = [next(blocks) for _ in range(spec.n_layers)]
                out += [gb[:-1].t() for gb in layer] + [gb[-1] for gb in layer]
            else:
                out += [next(vectors), next(vectors)]
        return (grad_input, None, None, *out)


_BLOCK_ROWS = 64


def _sorted_by(counts):
    return torch.sort(counts, stable=True).indices


def _block_sparse(w_t, mask, rows, cols, block_rows=_BLOCK_ROWS):
    """One MADE layer prepared for scoring, as row blocks ``(start, stop,
    prefix, weight)``: ``[b | W]`` with its rows and columns permuted (by
    ``rows`` and ``cols``, bias column first) so that each row's unmasked
    inputs are a prefix of the columns, and each block's product uses only
    the ``prefix`` columns its rows need.  A MADE's masks are about half
    zeros; with units sorted by degree they are a staircase, and the blocks
    skip most of the zero half (wide layers; narrow ones stay one block).
    ``w_t`` is the masked ``[W^T ; b]`` block; ``mask``, ``rows`` and
    ``cols`` are on the CPU."""
    perm = torch.cat([torch.tensor([w_t.shape[0] - 1]), cols])  # bias first
    w = w_t[perm.to(w_t.device)][:, rows.to(w_t.device)].t().contiguous()
    used = mask[perm][:, rows].t() != 0
    last = torch.where(used, torch.arange(1, used.shape[1] + 1), 0).amax(1)
    step = block_rows if len(rows) >= 2 * block_rows else len(rows)
    blocks = []
    for start in range(0, len(rows), step):
        stop = min(start + step, len(rows))
        prefix = int(last[start:stop].max())
        blocks.append((start, stop, prefix, w[start:stop, :prefix]))
    return blocks


def _scoring_plan(specs, weights, batch_norms, d):
    """Per layer, what :func:`eval_log_prob` runs.  Inside each MAF layer
    the features are held in its autoregressive order (by degree), so
    between layers with different orders the features are re-ordered by
    one gather (the batch-norm vectors follow the order they meet)."""
    weights, batch_norms = iter(weights), iter(batch_norms)
    plan = []
    const = -0.5 * d * _LOG_2PI
    order = torch.arange(d)  # the feature held at each position
    for spec in specs:
        if isinstance(spec, MAFSpec):
            ws = [next(weights) for _ in range(spec.n_layers)]
            masks = [m.cpu() for m in spec.masks]
            # Features by degree: how many last-layer hidden units their shifts see.
            new_order = _sorted_by((masks[-1][:-1, :d] != 0).sum(0))
            gather = None
            if not torch.equal(new_order, order):
                gather = torch.argsort(order)[new_order].to(ws[0].device)
            order, cols, layers = new_order, new_order, []
            for w_t, mask in zip(ws[:-1], masks[:-1]):
                rows = _sorted_by((mask[:-1] != 0).sum(0))  # hidden units by degree
                layers.append(_block_sparse(w_t, mask, rows, cols))
                cols = rows
            # Shift and log-scale of a feature side by side: (mu, t) row pairs;
            # the soft clamp's 1 / bound folded into the log-scale weights.
            rows = torch.stack([order, order + d], 1).reshape(-1)
            out = ws[-1] if spec.bound is None else torch.cat([ws[-1][:, :d], ws[-1][:, d:] / spec.bound], 1)
            layers.append(_block_sparse(out, masks[-1], rows, cols))
            plan.append((spec, gather, layers))
        else:
            log_gamma, beta = next(batch_norms)
            inv_std = (spec.running_var + spec.eps).rsqrt()
            scale = log_gamma.exp() * inv_std
            shift = beta - spec.running_mean * scale
            idx = order.to(scale.device)
            plan.append((spec, scale[idx][:, None], shift[idx][:, None]))
            const += float((log_gamma + inv_std.log()).sum())
    return plan, const


def _plan_key(specs, params):
    """What a scoring plan depends on: the parameters and batch-norm
    statistics (storage, shape and in-place version, as autograd tracks
    changes) and the masks (the cached :class:`MAFSpec` objects)."""
    tensors = list(params) + [t for s in specs if not isinstance(s, MAFSpec) for t in (s.running_mean, s.running_var)]
    key = tuple((t.data_ptr(), t.shape, t.stride(), t._version, t.dtype) for t in tensors)
    key += tuple(id(s) for s in specs if isinstance(s, MAFSpec))
    # Held with the key, the storages (and specs) cannot be freed and their
    # addresses reused by other tensors while the plan is cached.
    return key, ([t.untyped_storage() for t in tensors], [s for s in specs if isinstance(s, MAFSpec)])


@torch.no_grad()
def eval_log_prob(x, specs, params, chunk_bytes=1 << 22, cache=None):
    """Log-density of each row of ``x`` with every layer in eval mode.

    Scoring has no backward pass, so everything is prepared once per call
    (block-sparse ``[b | W]`` products, see :func:`_block_sparse`; batch
    norm reduced to ``x * scale + shift``, its log-det to a constant) and
    the rows go through, transposed, in chunks whose activations stay in
    the CPU cache, written into buffers reused from chunk to chunk (with
    their rows of ones written once): a fresh buffer per layer costs more
    in page faults than the matrix product that fills it.  ``cache``, a
    dict owned by the caller, keeps the prepared plan between calls with
    unchanged parameters (preparing costs milliseconds: many small calls).
    """
    n, d = x.shape
    if 0 < n < _MIN_EVAL_ROWS:
        # Matrix-product kernels are chosen by the problem size, and float32
        # results differ in the last bits between kernels; a fixed minimum row
        # count makes a row's score the same whether it comes alone or with
        # others (scikit-learn's subset-invariance check).
        padded = x.new_zeros(_MIN_EVAL_ROWS, d)
        padded[:n] = x
        return eval_log_prob(padded, specs, params, chunk_bytes, cache)[:n]
    out = x.new_empty(n)
    if n == 0:
        return out
    key, held = _plan_key(specs, params) if cache is not None else (None, None)
    if cache is not None and cache.get("key") == key:
        plan, const = cache["plan"]
    else:
        plan, const = _scoring_plan(specs, *_effective(specs, params), d)
        if cache is not None:
            cache.clear()
            cache.update(key=key, held=held, plan=(plan, const))
    widths = {(k, layer[-1][1]) for spec, _, layers in plan if isinstance(spec, MAFSpec)
              for k, layer in enumerate(layers[:-1])}
    widest = max([width for _, width in widths] + [2 * d])
    rows = min(n, max(_MIN_EVAL_ROWS, chunk_bytes // ((widest + 1) * x.element_size())))
    # One buffer per (depth in the MADE, width), shared by all MAF layers,
    # two for the layers' outputs in turn, one for the MADE's output.
    storage = {key: x.new_empty((key[1] + 1) * rows) for key in widths}
    storage["h0"], storage["h1"] = x.new_empty((d + 1) * rows), x.new_empty((d + 1) * rows)
    p_storage = x.new_empty(2 * d * rows)
    views = {}

    def view(key, width, m):
        # (width + 1, m) over the first elements of the storage; ones row set once per m.
        if (key, m) not in views:
            v = storage[key][: (width + 1) * m].view(width + 1, m)
            v[0].fill_(1.0)
            views[key, m] = v
        return views[key, m]

    for start in range(0, n, rows):
        chunk = x[start : start + rows]
        m = chunk.shape[0]
        log_det = out[start : start + m]
        log_det.fill_(const)
        h, other = view("h0", d, m), view("h1", d, m)
        h[1:].copy_(chunk.t())
        p = p_storage[: 2 * d * m].view(2 * d, m)
        for spec, *step in plan:
            if isinstance(spec, MAFSpec):
                gather, layers = step
                if gather is not None:
                    torch.index_select(h[1:], 0, gather, out=other[1:])
                    h, other = other, h
                a = h
                for k, blocks in enumerate(layers[:-1]):
                    width = blocks[-1][1]
                    dest = view((k, width), width, m)
                    for r0, r1, prefix, w in blocks:
                        torch.mm(w, a[:prefix], out=dest[1 + r0 : 1 + r1])
                    _activation_(dest[1:], spec.activation)
                    a = dest
                for r0, r1, prefix, w in layers[-1]:
                    torch.mm(w, a[:prefix], out=p[r0:r1])
                mu, t = p[0::2], p[1::2]
                if spec.bound is not None:
                    t.tanh_()
                t.mul_(-(1.0 if spec.bound is None else spec.bound))  # -alpha
                log_det.add_(t.sum(0))
                torch.sub(h[1:], mu, out=other[1:]).mul_(t.exp_())
            else:
                scale, shift = step
                torch.addcmul(shift, h[1:], scale, out=other[1:])
            h, other = other, h
        log_det.add_(h[1:].square().sum(0), alpha=-0.5)
    return out
