"""The MAF layer: an affine autoregressive transform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .._compat import tanh_backward_into
from .autoregressive import MaskedAutoregressive
from .elementwise import ElementwiseTransform

__all__ = ["AffineTransform", "MaskedAffineAutoregressive", "soft_clamp"]


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


class _AffineSaved(NamedTuple):
    alpha_unit: torch.Tensor  # alpha / bound = tanh(t / bound), (d, n)
    inv_scale: torch.Tensor  # exp(-alpha)
    u: torch.Tensor  # the output


class AffineTransform(ElementwiseTransform):
    """``u = (x - mu) * exp(-alpha)``, ``alpha = bound * tanh(t / bound)``.

    Parameters per coordinate: the shift ``mu``, then the raw log-scale ``t``.

    Parameters
    ----------
    log_scale_bound : float or None, default=5.0
        ``alpha`` is soft-clamped to ``(-bound, bound)``, so one layer can
        scale a coordinate by at most ``exp(bound)``; None leaves it free.
    """

    n_params = 2

    def __init__(self, log_scale_bound: float | None = 5.0):
        self.log_scale_bound = None if log_scale_bound is None else float(log_scale_bound)

    def settings(self):
        return (self.log_scale_bound,)

    def apply(self, x, p):
        mu, t = p.reshape(2, *x.shape)
        alpha = soft_clamp(t, self.log_scale_bound)
        return (x - mu) * torch.exp(-alpha), -alpha

    def invert(self, u, p):
        mu, t = p.reshape(2, *u.shape)
        return mu + u * torch.exp(soft_clamp(t, self.log_scale_bound))

    def forward_into(self, x, p, out, log_det, keep):
        d = x.shape[0]
        mu, alpha_unit = p[:d], p[d:]
        if self.log_scale_bound is None:
            bound = 1.0
        else:
            bound = self.log_scale_bound
            alpha_unit.mul_(1.0 / bound).tanh_()
        inv_scale = alpha_unit.mul(-bound).exp_()
        torch.sub(x, mu, out=out).mul_(inv_scale)
        log_det.add_(alpha_unit.sum(0), alpha=-bound)
        return _AffineSaved(alpha_unit, inv_scale, out) if keep else None

    def backward(self, saved, g, g_log_det, grad_p):
        d = g.shape[0]
        grad_x = g * saved.inv_scale  # = -dL/dmu; also the direct path to x
        g_mu, g_t = grad_p.split(d)
        torch.neg(grad_x, out=g_mu)
        # dL/dalpha = -(g * u) - dL/dlog_det; alpha = bound * tanh(t / bound).
        g_alpha = g * saved.u
        if g_log_det is not None:
            g_alpha.add_(g_log_det)
        if self.log_scale_bound is None:
            torch.neg(g_alpha, out=g_t)
        else:
            tanh_backward_into(g_alpha, saved.alpha_unit, g_t).neg_()
        return grad_x

    def eval_prepare(self, out_block, order, d):
        # Shift and log-scale of a feature side by side: (mu, t) row pairs;
        # the soft clamp's 1 / bound folded into the log-scale weights.
        rows = torch.stack([order, order + d], 1).reshape(-1)
        if self.log_scale_bound is not None:
            out_block = torch.cat([out_block[:, :d], out_block[:, d:] / self.log_scale_bound], 1)
        return out_block, rows

    def eval_into(self, x, p, out, log_det):
        mu, neg_alpha = p[0::2], p[1::2]
        if self.log_scale_bound is not None:
            neg_alpha.tanh_()
        neg_alpha.mul_(-(1.0 if self.log_scale_bound is None else self.log_scale_bound))
        log_det.add_(neg_alpha.sum(0))
        torch.sub(x, mu, out=out).mul_(neg_alpha.exp_())


class MaskedAffineAutoregressive(MaskedAutoregressive):
    """The MAF layer: ``u_i = (x_i - mu_i(x_<i, c)) * exp(-alpha_i(x_<i, c))``.

    A :class:`~skflow.nn.layers.autoregressive.MaskedAutoregressive` with an
    :class:`AffineTransform`.

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
        super().__init__(n_features, hidden_sizes, AffineTransform(log_scale_bound), order, activation,
                         degree_mode, generator, context_features)

    @property
    def log_scale_bound(self) -> float | None:
        return self.transform.log_scale_bound
