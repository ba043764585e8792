"""The MAF layer: an affine autoregressive transform and its fused kernel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ..made import MADE
from .kernel import FUSED_ACTIVATIONS
from .made_kernel import MADEKernel

__all__ = ["AffineKernel", "MaskedAffineAutoregressive", "soft_clamp"]

_tanh_backward_out = torch.ops.aten.tanh_backward.grad_input


def soft_clamp(x: torch.Tensor, bound: float | None) -> torch.Tensor:
    """Smoothly limit ``x`` to ``(-bound, bound)``; identity near zero.

    Examples
    --------
    >>> import torch
    >>> soft_clamp(torch.tensor([0.01, 100.0]), 5.0)
    tensor([0.0100, 5.0000])
    """
    if bound is None:
        return x
    return bound * torch.tanh(x / bound)


class MaskedAffineAutoregressive(nn.Module):
    """The MAF layer: ``u_i = (x_i - mu_i(x_<i, c)) * exp(-alpha_i(x_<i, c))``.

    Density direction (``forward``) costs one MADE pass; sampling
    (``inverse``) inverts one dimension at a time but computes every hidden
    unit once.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    hidden_sizes : sequence of int
        Hidden-layer widths of the MADE.
    order : sequence of int, optional
        Autoregressive order (a permutation of ``range(n_features)``).
    activation : str
        Hidden-unit non-linearity of the MADE.
    log_scale_bound : float or None
        ``alpha`` is soft-clamped to ``(-bound, bound)``, so one layer can
        scale a coordinate by at most ``exp(bound)``; None leaves it free.
    degree_mode : {"sequential", "random"}
        How hidden-unit degrees are assigned.
    generator : torch.Generator, optional
        Source of randomness for random degrees.
    context_features : int, default=0
        Width of the optional context ``c`` that every shift and log-scale
        may depend on.

    Examples
    --------
    >>> import torch
    >>> layer = MaskedAffineAutoregressive(3, (8,))
    >>> u, log_det = layer(torch.randn(5, 3))
    >>> torch.allclose(layer.inverse(u), layer.inverse_naive(u))
    True
    """

    def __init__(
        self,
        n_features: int,
        hidden_sizes: Sequence[int],
        order: Sequence[int] | None = None,
        activation: str = "tanh",
        log_scale_bound: float | None = 5.0,
        degree_mode: str = "sequential",
        generator: torch.Generator | None = None,
        context_features: int = 0,
    ):
        super().__init__()
        self.made = MADE(n_features, hidden_sizes, 2, order, activation, degree_mode, generator,
                         context_features)
        self.log_scale_bound = log_scale_bound

    def _shift_log_scale(self, x, context=None):
        params = self.made(x, context)
        mu, raw = params.chunk(2, dim=-1)
        return mu, soft_clamp(raw, self.log_scale_bound)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, alpha = self._shift_log_scale(x, context)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)

    def fused_kernel(self, n_rows: int = 2):
        """This layer's :class:`AffineKernel`, or None if its activation has no fused form."""
        made = self.made
        if made.activation not in FUSED_ACTIVATIONS:
            return None
        masks = tuple(layer.mask for layer in made.layers)
        key = (self.log_scale_bound, masks[0].device, masks[0].dtype,
               tuple((m.data_ptr(), m._version) for m in masks))
        cached = self.__dict__.get("_kernel_cache")
        if cached is None or cached[0] != key:
            cached = (key, AffineKernel(self))
            self.__dict__["_kernel_cache"] = cached
        return cached[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_kernel_cache", None)
        return state

    def inverse(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Sample direction, computing every hidden unit exactly once.

        A hidden unit of degree ``m`` depends only on the inputs of degree
        ``<= m`` (and the context).  With units sorted by degree, the input
        of degree ``k`` is produced from the prefix of last-layer units of
        degree ``< k``, and producing it makes the units of degree ``k``
        computable, layer by layer.  The total work is about one network
        pass instead of the D passes of :meth:`inverse_naive`, with the same
        result.  It writes into buffers in place, so where autograd records
        (gradients enabled and ``u`` or a parameter requiring them) the
        differentiable :meth:`inverse_naive` runs instead.
        """
        made = self.made
        if torch.is_grad_enabled() and (
            u.requires_grad or (context is not None and context.requires_grad)
            or any(p.requires_grad for p in self.parameters())
        ):
            return self.inverse_naive(u, context)
        n_in = made.n_inputs
        order = torch.argsort(made.degrees)  # position k-1 holds the input of degree k
        weights, biases, counts = [], [], []
        prev_perm = order
        grid = torch.arange(n_in + 1, device=u.device)
        for i, layer in enumerate(made.layers[:-1]):
            perm = torch.argsort(layer.degrees, stable=True)
            w = layer.masked_weight()[perm]
            bias = layer.bias[perm][:, None]
            if i == 0 and made.context_features:
                # The context's share of the first layer joins its bias, for all units at once.
                c = made.check_context(context, u.shape[0])
                bias = torch.addmm(bias, w[:, n_in:], c.t())
                w = w[:, :n_in]
            weights.append(w[:, prev_perm])
            biases.append(bias)
            # counts[l][m]: how many units of layer l have degree <= m
            counts.append(torch.searchsorted(layer.degrees[perm], grid, right=True).tolist())
            prev_perm = perm
        last = made.layers[-1]
        w_out = last.masked_weight()[:, prev_perm]
        rows = torch.stack([order, order + n_in], dim=1)  # (D, 2): shift and log-scale rows
        w_out, b_out = w_out[rows], last.bias[rows]  # (D, 2, H), (D, 2)

        # Rows are columns here (features x rows): each newly computable block
        # of units, and each generated input, is a contiguous block of rows.
        n = u.shape[0]
        u_sorted = u.t()[order]
        x_sorted = u.new_empty(n_in, n)
        hidden = [u.new_empty(w.shape[0], n) for w in weights]
        for k in range(1, n_in + 1):
            available = k - 1  # inputs of degree <= k - 1 are known
            for h, (w, b, count) in enumerate(zip(weights, biases, counts)):
                lo, hi = (count[k - 2] if k >= 2 else 0), count[k - 1]
                if hi > lo:
                    inp = x_sorted if h == 0 else hidden[h - 1]
                    out = hidden[h][lo:hi]
                    torch.addmm(b[lo:hi], w[lo:hi, :available], inp[:available], out=out)
                    out.copy_(made._act(out))
                available = hi
            params = torch.addmm(b_out[k - 1][:, None], w_out[k - 1, :, :available], hidden[-1][:available])
            alpha = soft_clamp(params[1], self.log_scale_bound)
            torch.addcmul(params[0], u_sorted[k - 1], torch.exp(alpha), out=x_sorted[k - 1])
        x = torch.empty_like(u)
        x[:, order] = x_sorted.t()
        return x

    def inverse_naive(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Reference sample direction: D full passes of the network."""
        # Each pass fixes one more coordinate in the order: after pass k the
        # first k+1 coordinates in that order are exact and never change again.
        x = torch.zeros_like(u)
        for _ in range(self.made.n_inputs):
            mu, alpha = self._shift_log_scale(x, context)
            x = u * torch.exp(alpha) + mu
        return x


class _AffineSaved(NamedTuple):
    made: tuple  # what MADEKernel.made_backward needs
    alpha_unit: torch.Tensor  # alpha / bound = tanh(pre-activation / bound), (d, n)
    inv_scale: torch.Tensor  # exp(-alpha)
    u: torch.Tensor  # the layer's output body


class AffineKernel(MADEKernel):
    """The fused pass of :class:`MaskedAffineAutoregressive`.

    Forward: ``(mu, t) = MADE(x)``, ``alpha = bound * tanh(t / bound)``,
    ``u = (x - mu) * exp(-alpha)``, log-det ``-sum(alpha)``.
    """

    def __init__(self, layer: MaskedAffineAutoregressive):
        super().__init__(layer.made)
        self.bound = layer.log_scale_bound

    def signature(self):
        return super().signature() + (self.bound,)

    def activation_sizes(self, d):
        return self.hidden_sizes() + [d]

    def forward(self, state, h, blocks, keep):
        d = self.d
        p, made_saved = self.made_forward(state, h, blocks)
        mu, alpha_unit = p[:d], p[d:]
        if self.bound is None:
            bound = 1.0
        else:
            bound = self.bound
            alpha_unit.mul_(1.0 / bound).tanh_()
        inv_scale = alpha_unit.mul(-bound).exp_()
        u = state.take()
        torch.sub(h[1], mu, out=u[1]).mul_(inv_scale)
        state.log_det.add_(alpha_unit.sum(0), alpha=-bound)
        return u, (_AffineSaved(made_saved, alpha_unit, inv_scale, u[1]) if keep else None)

    def backward(self, state, saved, g, blocks, grad_blocks):
        d, n = saved.alpha_unit.shape
        u = saved.u
        grad_x = g * saved.inv_scale  # = -d/dmu; also the direct path to x
        grad_p = u.new_empty(2 * d, n)
        g_mu, g_t = grad_p.split(d)
        torch.neg(grad_x, out=g_mu)
        # dL/dalpha = -(g * u) - dL/dlog_det; alpha = bound * tanh(pre / bound).
        g_alpha = g * u
        if state.grad_log_det is not None:
            g_alpha.add_(state.grad_log_det)
        if self.bound is None:
            torch.neg(g_alpha, out=g_t)
        else:
            _tanh_backward_out(g_alpha, saved.alpha_unit, grad_input=g_t).neg_()
        return self.made_backward(state, saved.made, blocks, grad_p, grad_blocks, grad_x)

    def eval_prepare(self, blocks, order):
        d = self.d
        new_order = self.eval_order()
        gather = None
        if not torch.equal(new_order, order):
            gather = torch.argsort(order)[new_order].to(blocks[0].device)
        # Shift and log-scale of a feature side by side: (mu, t) row pairs;
        # the soft clamp's 1 / bound folded into the log-scale weights.
        rows = torch.stack([new_order, new_order + d], 1).reshape(-1)
        out = blocks[-1]
        if self.bound is not None:
            out = torch.cat([out[:, :d], out[:, d:] / self.bound], 1)
        layers, ctx_w = self.made_eval_prepare(blocks, new_order, out, rows)
        return (gather, layers, ctx_w), new_order, 0.0

    def eval_buffers(self, step):
        _, layers, ctx_w = step
        return self.made_eval_buffers(layers, ctx_w) + [("made output", 2 * self.d)]

    def eval_step(self, step, h, other, log_det, view, m, context):
        gather, layers, ctx_w = step
        d = self.d
        if gather is not None:
            torch.index_select(h[1:], 0, gather, out=other[1:])
            h, other = other, h
        p = view("made output", 2 * d, m)[1:]
        self.made_eval(layers, ctx_w, h, view, m, context, p)
        mu, neg_alpha = p[0::2], p[1::2]
        if self.bound is not None:
            neg_alpha.tanh_()
        neg_alpha.mul_(-(1.0 if self.bound is None else self.bound))
        log_det.add_(neg_alpha.sum(0))
        torch.sub(h[1:], mu, out=other[1:]).mul_(neg_alpha.exp_())
        return other, h
