"""Rational-quadratic spline autoregressive layer (Durkan et al. 2019, "Neural Spline Flows").

Each coordinate passes through a monotone rational-quadratic spline of
``n_bins`` bins on ``[-tail_bound, tail_bound]`` whose bin widths, heights and
interior knot derivatives a MADE computes from the earlier coordinates (and
the context).  Outside the interval the layer is the identity with unit
slope (linear tails): far inputs pass through with a log-det of exactly 0,
so a flow that starts at a Gaussian keeps Gaussian tails there.

This first version has no fused kernel: it trains and scores through
autograd, as a step between the fused runs of the other layers, and samples
with one network pass per feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..made import MADE

__all__ = ["MaskedRQSplineAutoregressive", "rational_quadratic_spline"]

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(0 + shift) + MIN_DERIVATIVE == 1: a zero network output is the identity.
_DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(raw: torch.Tensor, bound: float, minimum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes (summing to ``2 bound``, each at least ``2 bound minimum``) and knot positions."""
    n_bins = raw.shape[-1]
    sizes = minimum + (1 - minimum * n_bins) * torch.softmax(raw, dim=-1)
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
    knots = 2 * bound * knots - bound
    # exact ends, whatever the rounding of the cumulative sum
    knots = torch.cat([knots.new_full(knots.shape[:-1] + (1,), -bound), knots[..., 1:-1],
                       knots.new_full(knots.shape[:-1] + (1,), bound)], dim=-1)
    return knots[..., 1:] - knots[..., :-1], knots


def _bin_of(knots: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Index of the bin holding each value (values inside ``[knots[0], knots[-1]]``)."""
    n_bins = knots.shape[-1] - 1
    index = torch.sum(values[..., None] >= knots[..., 1:-1], dim=-1)
    return index.clamp(0, n_bins - 1)[..., None]


def rational_quadratic_spline(
    inputs: torch.Tensor,
    raw_widths: torch.Tensor,
    raw_heights: torch.Tensor,
    raw_derivatives: torch.Tensor,
    tail_bound: float = 3.0,
    inverse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise monotone rational-quadratic spline with identity tails.

    Parameters
    ----------
    inputs : Tensor of shape (...)
    raw_widths, raw_heights : Tensor of shape (..., K)
        Unnormalised bin widths and heights (a softmax, then a minimum of
        1e-3 of the interval per bin).
    raw_derivatives : Tensor of shape (..., K - 1)
        Unconstrained interior knot derivatives (a shifted softplus plus
        1e-3, so that 0 gives slope 1); the two boundary derivatives are 1,
        matching the identity tails.
    tail_bound : float
        The spline lives on ``[-tail_bound, tail_bound]``.
    inverse : bool
        Evaluate the inverse (the stable root of the quadratic).

    Returns
    -------
    outputs : Tensor of shape (...)
    log_abs_det : Tensor of shape (...)
        ``log |d outputs / d inputs|``; exactly 0 outside the interval.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([-5.0, 0.3, 5.0])
    >>> zeros = torch.zeros(3, 4)
    >>> y, ld = rational_quadratic_spline(x, zeros, zeros, torch.zeros(3, 3))
    >>> y, ld  # zero parameters: the identity
    (tensor([-5.0000,  0.3000,  5.0000]), tensor([0., 0., 0.]))
    """
    bound = float(tail_bound)
    inside = (inputs >= -bound) & (inputs <= bound)
    # Evaluated on clamped inputs everywhere (no NaN to mask), then replaced outside.
    x = inputs.clamp(-bound, bound)
    widths, cum_widths = _knots(raw_widths, bound, MIN_BIN_WIDTH)
    heights, cum_heights = _knots(raw_heights, bound, MIN_BIN_HEIGHT)
    interior = MIN_DERIVATIVE + F.softplus(raw_derivatives + _DERIVATIVE_SHIFT)
    derivatives = F.pad(interior, (1, 1), value=1.0)

    index = _bin_of(cum_heights if inverse else cum_widths, x)

    def pick(t):
        return t.gather(-1, index)[..., 0]

    x_k, w_k = pick(cum_widths), pick(widths)
    y_k, h_k = pick(cum_heights), pick(heights)
    d_k, d_k1 = pick(derivatives), pick(derivatives[..., 1:])
    slope = h_k / w_k
    curvature = d_k + d_k1 - 2 * slope

    if inverse:
        dy = x - y_k
        a = dy * curvature + h_k * (slope - d_k)
        b = h_k * d_k - dy * curvature
        c = -slope * dy
        discriminant = (b.square() - 4 * a * c).clamp(min=0)
        theta = (2 * c) / (-b - discriminant.sqrt())  # the root in [0, 1], in its stable form
        outputs = theta * w_k + x_k
    else:
        theta = (x - x_k) / w_k
        one_minus = theta * (1 - theta)
        outputs = y_k + h_k * (slope * theta.square() + d_k * one_minus) / (slope + curvature * one_minus)
    one_minus = theta * (1 - theta)
    denominator = slope + curvature * one_minus
    numerator = slope.square() * (d_k1 * theta.square() + 2 * slope * one_minus + d_k * (1 - theta).square())
    log_det = numerator.log() - 2 * denominator.log()
    if inverse:
        log_det = -log_det
    zero = torch.zeros((), dtype=inputs.dtype, device=inputs.device)
    return torch.where(inside, outputs, inputs), torch.where(inside, log_det, zero)


class MaskedRQSplineAutoregressive(nn.Module):
    """Autoregressive rational-quadratic spline layer: ``u_i = s_i(x_i; x_<i, c)``.

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
    degree_mode : {"sequential", "random"}
        How hidden-unit degrees are assigned.
    generator : torch.Generator, optional
        Source of randomness for random degrees.
    context_features : int, default=0
        Width of the optional context.
    n_bins : int, default=8
        Spline bins per coordinate.
    tail_bound : float, default=3.0
        The splines act on ``[-tail_bound, tail_bound]``; the identity outside.

    Examples
    --------
    >>> import torch
    >>> layer = MaskedRQSplineAutoregressive(3, (16,))
    >>> x = torch.randn(5, 3)
    >>> u, log_det = layer(x)  # a zero output layer: the identity
    >>> torch.allclose(u, x), bool(log_det.abs().max() < 1e-5)
    (True, True)
    """

    def __init__(
        self,
        n_features: int,
        hidden_sizes: Sequence[int],
        order: Sequence[int] | None = None,
        activation: str = "tanh",
        degree_mode: str = "sequential",
        generator: torch.Generator | None = None,
        context_features: int = 0,
        n_bins: int = 8,
        tail_bound: float = 3.0,
    ):
        super().__init__()
        if int(n_bins) < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        if not tail_bound > 0:
            raise ValueError(f"tail_bound must be > 0, got {tail_bound}")
        self.n_bins = int(n_bins)
        self.tail_bound = float(tail_bound)
        self.made = MADE(n_features, hidden_sizes, 3 * self.n_bins - 1, order, activation, degree_mode,
                         generator, context_features)

    def _spline_parameters(self, x, context=None):
        params = self.made(x, context)
        n, d, k = x.shape[0], self.made.n_inputs, self.n_bins
        params = params.view(n, 3 * k - 1, d).transpose(1, 2)  # (n, d, 3K - 1)
        return params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        u, log_det = rational_quadratic_spline(x, *self._spline_parameters(x, context), self.tail_bound)
        return u, log_det.sum(-1)

    def inverse(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Sample direction: one network pass per feature."""
        # After pass k the first k coordinates in the autoregressive order are
        # exact and never change again.
        x = torch.zeros_like(u)
        for _ in range(self.made.n_inputs):
            x, _ = rational_quadratic_spline(u, *self._spline_parameters(x, context), self.tail_bound,
                                             inverse=True)
        return x
