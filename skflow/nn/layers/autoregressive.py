"""The autoregressive layer skeleton: a MADE and a pluggable elementwise transform."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..made import MADE, autograd_records
from .elementwise import ElementwiseTransform
from .made_kernel import FusedMADELayer, MADEKernel

__all__ = ["AutoregressiveKernel", "MaskedAutoregressive"]


class MaskedAutoregressive(FusedMADELayer, nn.Module):
    """An autoregressive layer ``u_i = f(x_i; theta_i(x_<i, c))``.

    A MADE computes each coordinate's parameters ``theta_i`` from the
    earlier coordinates in ``order`` (and the context ``c``); ``transform``
    maps the coordinate with them.  Density direction (``forward``) costs
    one network pass; sampling (``inverse``) inverts one coordinate at a
    time but computes every hidden unit once.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    hidden_sizes : sequence of int
        Hidden-layer widths of the MADE.
    transform : ElementwiseTransform
        The elementwise map (:mod:`skflow.nn.layers.elementwise`).
    order : sequence of int, optional
        Autoregressive order (a permutation of ``range(n_features)``).
    activation : str, default="tanh"
        Hidden-unit non-linearity of the MADE.
    degree_mode : {"sequential", "random"}, default="sequential"
        How hidden-unit degrees are assigned.
    generator : torch.Generator, optional
        Source of randomness for random degrees.
    context_features : int, default=0
        Width of the optional context.
    """

    def __init__(
        self,
        n_features: int,
        hidden_sizes: Sequence[int],
        transform: ElementwiseTransform,
        order: Sequence[int] | None = None,
        activation: str = "tanh",
        degree_mode: str = "sequential",
        generator: torch.Generator | None = None,
        context_features: int = 0,
    ):
        super().__init__()
        if not isinstance(transform, ElementwiseTransform):
            raise TypeError(f"transform must be an ElementwiseTransform, got {type(transform).__name__}")
        self.transform = transform
        self.made = MADE(n_features, hidden_sizes, transform.n_params, order, activation, degree_mode,
                         generator, context_features)

    def _params(self, x, context=None):
        return self.made(x, context).t()  # (n_params * d, n): output j of feature i in row j d + i

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        u, log_det = self.transform.apply(x.t(), self._params(x, context))
        return u.t(), log_det.sum(0)

    def kernel_settings(self) -> tuple:
        return self.transform.signature()

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

        def step(k, params):  # params: (n_params, n), one feature's block
            return self.transform.invert(u_sorted[k], params)

        return self.made.invert_in_one_pass(step, u.shape[0], u, context)

    def inverse_naive(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Reference sample direction: one network pass per feature."""
        # After pass k the first k coordinates in the autoregressive order are
        # exact and never change again.
        x = torch.zeros_like(u)
        for _ in range(self.made.n_inputs):
            x = self.transform.invert(u.t(), self._params(x, context)).t()
        return x


class AutoregressiveKernel(MADEKernel):
    """The fused pass of :class:`MaskedAutoregressive`: the MADE by hand
    (:class:`MADEKernel`), then the transform's fused methods."""

    def __init__(self, layer: MaskedAutoregressive):
        super().__init__(layer.made)
        self.transform = layer.transform
        self.n_params = layer.transform.n_params

    def signature(self):
        return super().signature() + self.transform.signature()

    def activation_sizes(self, d):
        return self.hidden_sizes() + [d]

    def forward(self, state, h, blocks, keep):
        p, made_saved = self.made_forward(state, h, blocks)
        u = state.take()
        saved = self.transform.forward_into(h[1], p, u[1], state.log_det, keep)
        return u, ((made_saved, saved) if keep else None)

    def backward(self, state, saved, g, blocks, grad_blocks):
        made_saved, transform_saved = saved
        grad_p = g.new_empty(self.n_params * self.d, g.shape[1])
        grad_x = self.transform.backward(transform_saved, g, state.grad_log_det, grad_p)
        return self.made_backward(state, made_saved, blocks, grad_p, grad_blocks, grad_x)

    def eval_prepare(self, blocks, order):
        new_order, gather = self.eval_reorder(order, blocks[0].device)
        out_block, rows = self.transform.eval_prepare(blocks[-1], new_order, self.d)
        layers, ctx_w = self.made_eval_prepare(blocks, new_order, out_block, rows)
        return (gather, layers, ctx_w), new_order, 0.0

    def eval_buffers(self, step):
        _, layers, ctx_w = step
        width = self.n_params * self.d
        return self.made_eval_buffers(layers, ctx_w) + [(("made output", width), width)]

    def eval_step(self, step, h, other, log_det, view, m, context):
        gather, layers, ctx_w = step
        h, other = self.reordered(gather, h, other)
        width = self.n_params * self.d
        p = view(("made output", width), width, m)[1:]
        self.made_eval(layers, ctx_w, h, view, m, context, p)
        self.transform.eval_into(h[1:], p, other[1:], log_det)
        return other, h


MaskedAutoregressive.kernel_class = AutoregressiveKernel  # defined after the layer it serves
