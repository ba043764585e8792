"""One hand-written forward and backward pass for a whole MAF.

Autograd records every small operation of a flow (mask multiplies, soft
clamps, exponentials, batch statistics) as its own node, and on a CPU the
per-operation overhead, not the arithmetic, dominates a training step: a
10-layer MAF step at batch 100 spends a few percent of its time in matrix
products.  :class:`FlowFunction` computes the same mathematics as the module
code in ``transforms.py`` (which stays as the readable reference the tests
compare against) as a single autograd node, with about half the operations:

* the masks of every layer are applied in one ``_foreach_mul`` per step, and
  the gradients are masked in another;
* the soft clamp's ``1 / bound`` is folded into those masks (and into the
  log-scale biases), so the MADE emits ``raw / bound`` directly;
* batch-norm running averages are updated in one ``_foreach_lerp_``;
* intermediates are overwritten in place wherever the backward pass allows.

Only activations whose derivative is a function of their output (tanh, relu)
are fused; flows with other activations or other transforms use the modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

FUSED_ACTIVATIONS = frozenset({"tanh", "relu"})
_LOG_2PI = math.log(2 * math.pi)
_MIN_EVAL_ROWS = 256

_tanh_backward = torch.ops.aten.tanh_backward
_threshold_backward = torch.ops.aten.threshold_backward


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
    weight_scales: tuple  # mask * (1/bound on log-scale rows), one per linear layer
    bias_scale: torch.Tensor  # (2D,): 1 on shift outputs, 1/bound on log-scale outputs


@dataclass(frozen=True)
class BatchNormSpec:
    """Static description of one batch-norm layer for :class:`FlowFunction`."""

    eps: float
    momentum: float
    batch_statistics: bool
    running_mean: torch.Tensor
    running_var: torch.Tensor


def maf_spec(made, bound):
    """Build a :class:`MAFSpec` from a MADE's masks (cheap; no copies of weights)."""
    n_in = made.n_inputs
    scales = [layer.mask for layer in made.layers[:-1]]
    out_mask = made.layers[-1].mask
    bias_scale = torch.ones(out_mask.shape[0], dtype=out_mask.dtype, device=out_mask.device)
    if bound is not None:
        bias_scale[n_in:] = 1.0 / bound
        out_mask = out_mask * bias_scale[:, None]
    scales.append(out_mask)
    return MAFSpec(len(made.layers), made.activation, bound, tuple(scales), bias_scale)


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


def flow_forward(x, specs, params, keep=False):
    """Data to base space; returns ``(u, log_det, saved)`` (``saved`` only if ``keep``)."""
    groups = _split(specs, params)
    maf = [(s, g) for s, g in zip(specs, groups) if isinstance(s, MAFSpec)]
    bns = [(s, g) for s, g in zip(specs, groups) if not isinstance(s, MAFSpec)]
    # Effective weights and biases of every MADE in one call each.
    all_w = [w for _, (ws, _) in maf for w in ws]
    all_scale = [sc for s, _ in maf for sc in s.weight_scales]
    eff_w = iter(torch._foreach_mul(all_w, all_scale))
    out_b = torch._foreach_mul([bs[-1] for _, (_, bs) in maf], [s.bias_scale for s, _ in maf])
    out_b = iter(out_b)
    gammas = iter(torch._foreach_exp([g[0] for _, g in bns])) if bns else iter(())

    n = x.shape[0]
    log_det = x.new_zeros(n)
    saved = []
    bn_inv_std, bn_stats = [], []
    h = x
    for spec, group in zip(specs, groups):
        if isinstance(spec, MAFSpec):
            _, biases = group
            ws = [next(eff_w) for _ in range(spec.n_layers)]
            inputs = [h]
            a = h
            for w, b in zip(ws[:-1], biases[:-1]):
                a = torch.addmm(b, a, w.t())
                a = a.tanh_() if spec.activation == "tanh" else a.relu_()
                inputs.append(a)
            p = torch.addmm(next(out_b), a, ws[-1].t())
            d = h.shape[1]
            mu, t = p[:, :d], p[:, d:]
            if spec.bound is None:
                bound = 1.0
            else:
                t.tanh_()
                bound = spec.bound
            inv_scale = t.mul(-bound).exp_()
            u = (h - mu).mul_(inv_scale)
            log_det.add_(t.sum(1), alpha=-bound)
            if keep:
                saved.append((inputs, ws, t, inv_scale, u))
            h = u
        else:
            log_gamma, beta = group
            gamma = next(gammas)
            if spec.batch_statistics:
                # Two passes instead of torch.var_mean, whose column-wise
                # reduction over a few columns is several times slower.
                mean = h.mean(0)
                centred = h - mean
                var = centred.square().mean(0)
                bn_stats.append((spec, mean, var))
            else:
                mean, var = spec.running_mean, spec.running_var
                centred = h - mean
            inv_std = (var + spec.eps).rsqrt_()
            x_hat = centred.mul_(inv_std)
            h = torch.addcmul(beta, x_hat, gamma)
            bn_inv_std.append((log_gamma, inv_std))
            if keep:
                saved.append((x_hat, inv_std, gamma))
    if bn_inv_std:
        # Every batch-norm layer adds the same constant to each row's log-det.
        terms = [lg + s.log() for lg, s in bn_inv_std]
        log_det.add_(torch.stack(terms).sum())
    if bn_stats:
        torch._foreach_lerp_([s.running_mean for s, _, _ in bn_stats], [m for _, m, _ in bn_stats],
                             bn_stats[0][0].momentum)
        torch._foreach_lerp_([s.running_var for s, _, _ in bn_stats], [v for _, _, v in bn_stats],
                             bn_stats[0][0].momentum)
    return h, log_det, saved


class FlatParameters:
    """A flow's parameters stored in one tensor, for the length of a fit.

    Every parameter becomes a view into :attr:`tensor`, so an optimiser over
    that single tensor (one Adam kernel, one gradient accumulation per step
    instead of one per parameter) trains the module in place, and
    ``state_dict`` / ``load_state_dict`` keep working.  :meth:`release` gives
    every parameter its own storage back.
    """

    def __init__(self, params):
        self.params = list(params)
        self.tensor = torch.cat([p.detach().reshape(-1) for p in self.params]).requires_grad_()
        self.views = self.split(self.tensor.detach())
        self.grad_buffer = None
        self._grad_views = None
        with torch.no_grad():
            for p, view in zip(self.params, self.views):
                p.data = view

    def split(self, flat):
        """Views of ``flat`` shaped like the parameters."""
        return [c.view(p.shape) for c, p in zip(flat.split([p.numel() for p in self.params]), self.params)]

    def grad_views(self):
        """Views of a gradient buffer allocated once and reused every step."""
        # A buffer still held as .grad (accumulating backward passes) must not
        # be overwritten.
        if self._grad_views is None or self.tensor.grad is self.grad_buffer:
            self.grad_buffer = torch.empty_like(self.tensor, requires_grad=False)
            self._grad_views = self.split(self.grad_buffer)
        return self._grad_views

    def release(self):
        with torch.no_grad():
            for p in self.params:
                p.data = p.data.clone()


class FlowFunction(torch.autograd.Function):
    """A MAF (MAF and batch-norm layers, any interleaving) as one autograd node.

    ``FlowFunction.apply(x, specs, flat, *params)`` returns ``(u, log_det)``;
    ``params`` are, layer by layer, the MADE weights then biases (MAF) or
    ``log_gamma, beta`` (batch norm).  With a :class:`FlatParameters` as
    ``flat``, ``params`` is its single tensor and its gradient comes back as
    one tensor too.  Batch-norm layers in training mode update their running
    averages as a side effect, as ``nn.BatchNorm`` does.
    """

    @staticmethod
    def forward(ctx, x, specs, flat, *params):
        needs_grad = any(ctx.needs_input_grad)
        u, log_det, saved = flow_forward(x, specs, params if flat is None else flat.views,
                                         keep=needs_grad)
        if needs_grad:
            ctx.specs = specs
            ctx.saved = saved
            ctx.n_rows = x.shape[0]
            ctx.flat = flat
        ctx.set_materialize_grads(False)
        return u, log_det

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_u, grad_log_det):
        specs, saved = ctx.specs, ctx.saved
        n = ctx.n_rows
        g = grad_u
        total_ld = grad_log_det.sum() if grad_log_det is not None else None
        grads = []  # per layer, in reverse
        flat = ctx.flat
        # With flat parameters every gradient is written straight into its
        # slice of one reused buffer.
        slots = flat.grad_views() if flat is not None else None
        pos = len(slots) if slots is not None else 0

        def slot(i):
            return None if slots is None else slots[i]

        for depth, (spec, item) in enumerate(zip(reversed(specs), reversed(saved))):
            first = depth == len(specs) - 1
            if isinstance(spec, MAFSpec):
                inputs, ws, t, inv_scale, u = item
                d = u.shape[1]
                if g is None:
                    g = u.new_zeros(u.shape)
                grad_x = g * inv_scale  # = -d/dmu; also the direct path to x
                gp = torch.empty(n, 2 * d, dtype=u.dtype, device=u.device)
                torch.neg(grad_x, out=gp[:, :d])
                # dL/dalpha = -(g * u) - dL/dlog_det; alpha = bound * t, t = tanh(pre).
                ga = g * u
                if grad_log_det is not None:
                    ga.add_(grad_log_det[:, None])
                bound = 1.0 if spec.bound is None else spec.bound
                if spec.bound is not None:
                    ga = _tanh_backward(ga, t)
                torch.mul(ga, -bound, out=gp[:, d:])
                grad_w, grad_b = [None] * spec.n_layers, [None] * spec.n_layers
                pos -= 2 * spec.n_layers
                grad = gp
                for k in range(spec.n_layers - 1, -1, -1):
                    grad_w[k] = torch.mm(grad.t(), inputs[k], out=slot(pos + k))
                    grad_b[k] = torch.sum(grad, 0, out=slot(pos + spec.n_layers + k))
                    if k > 0:
                        grad = _activation_backward(grad @ ws[k], inputs[k], spec.activation)
                    elif not first or ctx.needs_input_grad[0]:
                        grad_x = grad_x.addmm_(grad, ws[0])
                grads.append(("maf", spec, grad_w, grad_b))
                g = grad_x
            else:
                x_hat, inv_std, gamma = item
                if g is None:
                    g = x_hat.new_zeros(x_hat.shape)
                pos -= 2
                grad_beta = torch.sum(g, 0, out=slot(pos + 1))
                grad_log_gamma = torch.sum(g * x_hat, 0, out=slot(pos)).mul_(gamma)
                if total_ld is not None:
                    grad_log_gamma.add_(total_ld)
                gx = g * gamma
                if spec.batch_statistics:
                    # Through the batch mean and variance (the log-det's
                    # -0.5 log var term included): with c = dL/dlog_gamma / n,
                    # dx = inv_std * (gx - mean(gx) - x_hat * c).
                    gx.sub_(gx.mean(0)).addcmul_(x_hat, grad_log_gamma, value=-1.0 / n)
                g = gx.mul_(inv_std)
                grads.append(("bn", grad_log_gamma, grad_beta))
        grads.reverse()
        # Mask (and scale) the weight gradients of every MADE in one call each.
        maf_grads = [item for item in grads if item[0] == "maf"]
        if maf_grads:
            flat_w = [gw for _, _, gws, _ in maf_grads for gw in gws]
            torch._foreach_mul_(flat_w, [sc for _, s, _, _ in maf_grads for sc in s.weight_scales])
            torch._foreach_mul_([gbs[-1] for _, _, _, gbs in maf_grads], [s.bias_scale for _, s, _, _ in maf_grads])
        grad_input = g if ctx.needs_input_grad[0] else None
        if flat is not None:
            return grad_input, None, None, flat.grad_buffer
        out = []
        for item in grads:
            if item[0] == "maf":
                out += [*item[2], *item[3]]
            else:
                out += [item[1], item[2]]
        return (grad_input, None, None, *out)


@torch.no_grad()
def eval_log_prob(x, specs, params, chunk_bytes=1 << 23):
    """Log-density of each row of ``x`` with every layer in eval mode.

    Scoring has no backward pass, so everything is prepared once per call
    (masked weights, batch norm reduced to ``x * scale + shift``, its
    log-det to a constant) and the rows go through in chunks whose
    activations stay in the CPU cache, written into buffers reused from chunk
    to chunk: a fresh tens-of-megabytes buffer per layer costs more in page
    faults than the matrix product that fills it.
    """
    n, d = x.shape
    if 0 < n < _MIN_EVAL_ROWS:
        # Matrix-product kernels are chosen by the number of rows, and float32
        # results differ in the last bits between kernels; a fixed minimum row
        # count makes a row's score the same whether it comes alone or with
        # others (scikit-learn's subset-invariance check).
        padded = x.new_zeros(_MIN_EVAL_ROWS, d)
        padded[:n] = x
        return eval_log_prob(padded, specs, params, chunk_bytes)[:n]
    out = x.new_empty(n)
    if n == 0:
        return out
    plan = []
    const = -0.5 * d * _LOG_2PI
    for spec, group in zip(specs, _split(specs, params)):
        if isinstance(spec, MAFSpec):
            weights, biases = group
            w_t = [(w * sc).t() for w, sc in zip(weights, spec.weight_scales)]
            b = list(biases[:-1]) + [biases[-1] * spec.bias_scale]
            plan.append((spec, w_t, b))
        else:
            log_gamma, beta = group
            inv_std = (spec.running_var + spec.eps).rsqrt()
            scale = log_gamma.exp() * inv_std
            plan.append((spec, scale, beta - spec.running_mean * scale))
            const += float((log_gamma + inv_std.log()).sum())
    # One buffer per (depth in the MADE, width), shared by all MAF layers.
    shapes = {(k, w.shape[1]) for spec, w_t, _ in plan if isinstance(spec, MAFSpec)
              for k, w in enumerate(w_t)}
    widest = max((width for _, width in shapes), default=d)
    rows = min(n, max(256, chunk_bytes // (widest * x.element_size())))
    buffers = {key: x.new_empty(rows, key[1]) for key in shapes}
    # Each layer's output overwrites its input in place (elementwise, row by
    # row), except for the first, whose input is the caller's x.
    work = x.new_empty(rows, d)
    for start in range(0, n, rows):
        h = x[start : start + rows]
        m = h.shape[0]
        log_det = out[start : start + m]
        log_det.fill_(const)
        for spec, first, second in plan:
            dest = work[:m]
            if isinstance(spec, MAFSpec):
                a = h
                for k, (w, b) in enumerate(zip(first[:-1], second[:-1])):
                    a = torch.addmm(b, a, w, out=buffers[k, w.shape[1]][:m])
                    a = a.tanh_() if spec.activation == "tanh" else a.relu_()
                p = torch.addmm(second[-1], a, first[-1], out=buffers[len(first) - 1, 2 * d][:m])
                mu, t = p[:, :d], p[:, d:]
                if spec.bound is not None:
                    t.tanh_()
                t.mul_(-(1.0 if spec.bound is None else spec.bound))  # -alpha
                log_det.add_(t.sum(1))
                torch.sub(h, mu, out=dest).mul_(t.exp_())
            else:
                torch.addcmul(second, h, first, out=dest)
            h = dest
        log_det.add_(h.square().sum(1), alpha=-0.5)
    return out
