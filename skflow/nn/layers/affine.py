"""The MAF layer: an affine autoregressive transform and its fused kernel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ..made import MADE, autograd_records
from .._compat import tanh_backward_into
from .made_kernel import FusedMADELayer, MADEKernel

__all__ = ["AffineKernel", "MaskedAffineAutoregressive", "soft_clamp"]



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


class MaskedAffineAutoregressive(FusedMADELayer, nn.Module):
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

    def kernel_settings(self) -> tuple:
        return (self.log_scale_bound,)

    def inverse(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Sample direction, computing every hidden unit exactly once
        (:meth:`MADE.invert_in_one_pass`): about one network pass instead of
        the D passes of :meth:`inverse_naive`, with the same result.  It
        writes into buffers in place, so where autograd records (gradients
        enabled and ``u`` or a parameter requiring them) the differentiable
        :meth:`inverse_naive` runs instead.
        """
        if autograd_records(self, u, context):
            return self.inverse_naive(u, context)
        u_sorted = u.t()[torch.argsort(self.made.degrees)]

        def step(k, params):
            return params[0] + u_sorted[k] * torch.exp(soft_clamp(params[1], self.log_scale_bound))

        return self.made.invert_in_one_pass(step, u.shape[0], u, context)

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
            tanh_backward_into(g_alpha, saved.alpha_unit, g_t).neg_()
        return self.made_backward(state, saved.made, blocks, grad_p, grad_blocks, grad_x)

    def eval_prepare(self, blocks, order):
        d = self.d
        new_order, gather = self.eval_reorder(order, blocks[0].device)
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
        h, other = self.reordered(gather, h, other)
        p = view("made output", 2 * d, m)[1:]
        self.made_eval(layers, ctx_w, h, view, m, context, p)
        mu, neg_alpha = p[0::2], p[1::2]
        if self.bound is not None:
            neg_alpha.tanh_()
        neg_alpha.mul_(-(1.0 if self.bound is None else self.bound))
        log_det.add_(neg_alpha.sum(0))
        torch.sub(h[1:], mu, out=other[1:]).mul_(neg_alpha.exp_())
        return other, h


MaskedAffineAutoregressive.kernel_class = AffineKernel  # defined after the layer it serves
