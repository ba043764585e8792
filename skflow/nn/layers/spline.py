"""Rational-quadratic spline autoregressive layer (Durkan et al. 2019, "Neural Spline Flows").

Each coordinate passes through a monotone rational-quadratic spline of
``n_bins`` bins on ``[-tail_bound, tail_bound]`` whose bin widths, heights and
interior knot derivatives a MADE computes from the earlier coordinates (and
the context).  Outside the interval the layer is the identity with unit
slope (linear tails): far inputs pass through with a log-det of exactly 0,
so a flow that starts at a Gaussian keeps Gaussian tails there.

With ``affine=True`` the MADE also gives each coordinate a shift and a
log-scale, applied before the spline as in the MAF layer:
``u_i = s_i((x_i - mu_i) exp(-alpha_i))``.  The affine part can bring a
heavy-tailed coordinate into the spline's interval; a spline alone leaves
everything beyond ``tail_bound`` where it is.  Zero network outputs are
still the identity.

The layer is the shared autoregressive skeleton
(:class:`~skflow.nn.layers.autoregressive.MaskedAutoregressive`) with a
:class:`SplineTransform`, whose fused pass writes the spline's derivatives
out by hand.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .affine import AffineTransform
from .autoregressive import MaskedAutoregressive
from .elementwise import Composed, ElementwiseTransform

__all__ = ["MaskedRQSplineAutoregressive", "SplineTransform", "rational_quadratic_spline"]

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(0 + shift) + MIN_DERIVATIVE == 1: a zero network output is the identity.
_DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(raw: torch.Tensor, bound: float, minimum: float, dim: int) -> torch.Tensor:
    """The ``K + 1`` knot positions along ``dim`` (bins of sizes summing to
    ``2 bound``, each at least ``2 bound minimum``)."""
    n_bins = raw.shape[dim]
    softmax = torch.softmax(raw, dim=dim)
    sizes = minimum + (1 - minimum * n_bins) * softmax
    inner = torch.cumsum(sizes.narrow(dim, 0, n_bins - 1), dim=dim).mul_(2 * bound).sub_(bound)
    # exact ends, whatever the rounding of the cumulative sum
    end = inner.narrow(dim, 0, 1)
    return torch.cat([torch.full_like(end, -bound), inner, torch.full_like(end, bound)], dim=dim)


def _bins(x, raw_widths, raw_heights, raw_derivatives, bound, inverse, dim):
    """The bin of each value of ``x`` (clamped to the interval, bins axis
    inserted at ``dim``): its knots ``(x_k, x_k1, y_k, y_k1, d_k, d_k1)``."""
    cum_widths = _knots(raw_widths, bound, MIN_BIN_WIDTH, dim)
    cum_heights = _knots(raw_heights, bound, MIN_BIN_HEIGHT, dim)
    interior = MIN_DERIVATIVE + F.softplus(raw_derivatives + _DERIVATIVE_SHIFT)
    one = torch.ones_like(interior.narrow(dim, 0, 1))
    derivatives = torch.cat([one, interior, one], dim=dim)

    # The bin of each value: how many interior knots lie at or below it.
    knots = cum_heights if inverse else cum_widths
    n_bins = knots.shape[dim] - 1
    index = (x >= knots.narrow(dim, 1, n_bins - 1)).sum(dim, keepdim=True).clamp_(max=n_bins - 1)
    # Both ends of the bin in the three tables, in one gather (one scatter backwards).
    table = torch.cat([cum_widths, cum_heights, derivatives], dim=dim)
    shape = [1] * table.dim()
    shape[dim] = 6
    offsets = torch.tensor([0, 1, n_bins + 1, n_bins + 2, 2 * n_bins + 2, 2 * n_bins + 3],
                           device=index.device).view(shape)
    return table.gather(dim, index + offsets).split(1, dim=dim)


def _log_derivative(theta, slope, d_k, d_k1, one_minus, denominator):
    """``log`` of the spline's slope at the bin position ``theta``."""
    numerator = slope.square() * (d_k1 * theta.square() + 2 * slope * one_minus + d_k * (1 - theta).square())
    return (numerator / denominator.square()).log()


def _forward_in_bin(x, x_k, x_k1, y_k, y_k1, d_k, d_k1):
    """The spline and its log-derivative at ``x`` inside the bin."""
    w_k, h_k = x_k1 - x_k, y_k1 - y_k
    slope = h_k / w_k
    theta = (x - x_k) / w_k
    one_minus = theta * (1 - theta)
    denominator = slope + (d_k + d_k1 - 2 * slope) * one_minus
    outputs = y_k + h_k * (slope * theta.square() + d_k * one_minus) / denominator
    return outputs, _log_derivative(theta, slope, d_k, d_k1, one_minus, denominator)


def rational_quadratic_spline(
    inputs: torch.Tensor,
    raw_widths: torch.Tensor,
    raw_heights: torch.Tensor,
    raw_derivatives: torch.Tensor,
    tail_bound: float = 5.0,
    inverse: bool = False,
    dim: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise monotone rational-quadratic spline with identity tails.

    Parameters
    ----------
    inputs : Tensor of shape (...)
    raw_widths, raw_heights : Tensor
        Unnormalised bin widths and heights (a softmax, then a minimum of
        1e-3 of the interval per bin): the shape of ``inputs`` with the
        ``K`` bins inserted at ``dim``.
    raw_derivatives : Tensor
        Unconstrained interior knot derivatives, ``K - 1`` of them at ``dim``
        (a shifted softplus plus 1e-3, so that 0 gives slope 1); the two
        boundary derivatives are 1, matching the identity tails.
    tail_bound : float
        The spline lives on ``[-tail_bound, tail_bound]``.
    inverse : bool
        Evaluate the inverse (the stable root of the quadratic).
    dim : int, default=-1
        The bins' axis of the parameters.  With the bins outermost
        (``dim=0``, each bin a contiguous slice) the reductions over bins
        run several times faster on a CPU than over a short last axis.

    Returns
    -------
    outputs : Tensor of shape (...)
    log_abs_det : Tensor of shape (...)
        ``log |d outputs / d inputs|``; exactly 0 outside the interval.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([-6.0, 0.3, 6.0])
    >>> zeros = torch.zeros(3, 4)
    >>> y, ld = rational_quadratic_spline(x, zeros, zeros, torch.zeros(3, 3))
    >>> y  # zero parameters: the identity
    tensor([-6.0000,  0.3000,  6.0000])
    >>> bool(ld.abs().max() < 1e-6)  # log-det 0 (to float32 rounding inside the interval)
    True
    """
    bound = float(tail_bound)
    dim = dim % raw_widths.dim()
    inside = (inputs >= -bound) & (inputs <= bound)
    # Evaluated on clamped inputs everywhere (no NaN to mask), then replaced outside.
    x = inputs.clamp(-bound, bound).unsqueeze(dim)
    x_k, x_k1, y_k, y_k1, d_k, d_k1 = _bins(x, raw_widths, raw_heights, raw_derivatives, bound, inverse, dim)
    if not inverse:
        outputs, log_det = _forward_in_bin(x, x_k, x_k1, y_k, y_k1, d_k, d_k1)
    else:
        w_k, h_k = x_k1 - x_k, y_k1 - y_k
        slope = h_k / w_k
        curvature = d_k + d_k1 - 2 * slope
        dy = x - y_k
        a = dy * curvature + h_k * (slope - d_k)
        b = h_k * d_k - dy * curvature
        c = -slope * dy
        discriminant = (b.square() - 4 * a * c).clamp(min=0)
        theta = (2 * c) / (-b - discriminant.sqrt())  # the root in [0, 1], in its stable form
        outputs = theta * w_k + x_k
        one_minus = theta * (1 - theta)
        log_det = -_log_derivative(theta, slope, d_k, d_k1, one_minus, slope + curvature * one_minus)
    zero = torch.zeros((), dtype=inputs.dtype, device=inputs.device)
    return (torch.where(inside, outputs.squeeze(dim), inputs),
            torch.where(inside, log_det.squeeze(dim), zero))


class SplineTransform(ElementwiseTransform):
    """A monotone rational-quadratic spline of ``n_bins`` bins on
    ``[-tail_bound, tail_bound]``, the identity outside
    (:func:`rational_quadratic_spline`).

    Parameters per coordinate: ``n_bins`` raw widths, ``n_bins`` raw
    heights, ``n_bins - 1`` raw interior derivatives.  Its fused pass keeps
    the bin each value fell in, the bin's knots and the softmaxes, and the
    backward pass applies the spline's derivatives written out (checked
    against autograd through :meth:`apply`).

    Parameters
    ----------
    n_bins : int, default=8
    tail_bound : float, default=5.0
    """

    def __init__(self, n_bins: int = 8, tail_bound: float = 5.0):
        if int(n_bins) < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        if not tail_bound > 0:
            raise ValueError(f"tail_bound must be > 0, got {tail_bound}")
        self.n_bins = int(n_bins)
        self.tail_bound = float(tail_bound)
        self.n_params = 3 * self.n_bins - 1

    def settings(self):
        return (self.n_bins, self.tail_bound)

    def _parts(self, p, shape):
        k = self.n_bins
        params = p.reshape(3 * k - 1, *shape)  # bins first: each bin a contiguous slice
        return params[:k], params[k : 2 * k], params[2 * k :]

    def apply(self, x, p):
        return rational_quadratic_spline(x, *self._parts(p, x.shape), self.tail_bound, dim=0)

    def invert(self, u, p):
        return rational_quadratic_spline(u, *self._parts(p, u.shape), self.tail_bound, inverse=True, dim=0)[0]

    def forward_into(self, x, p, out, log_det, keep):
        y, ld, saved = _spline_of_block(x, p, self.n_bins, self.tail_bound, keep)
        out.copy_(y)
        log_det.add_(ld.sum(0))
        return saved

    def backward(self, saved, g, g_log_det, grad_p):
        return _spline_of_block_backward(saved, g, g_log_det, self.n_bins, self.tail_bound,
                                         grad_p.view(self.n_params, *g.shape))[0]


class MaskedRQSplineAutoregressive(MaskedAutoregressive):
    """Autoregressive rational-quadratic spline layer: ``u_i = s_i(x_i; x_<i, c)``.

    A :class:`~skflow.nn.layers.autoregressive.MaskedAutoregressive` with a
    :class:`SplineTransform` (after an
    :class:`~skflow.nn.layers.affine.AffineTransform` with ``affine=True``).

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
    tail_bound : float, default=5.0
        The splines act on ``[-tail_bound, tail_bound]``; the identity outside.
    affine : bool, default=False
        Shift and scale each coordinate (by the MADE, from the earlier
        coordinates) before its spline: ``u_i = s_i((x_i - mu_i) exp(-alpha_i))``.
    log_scale_bound : float or None, default=5.0
        ``alpha`` is soft-clamped to ``(-bound, bound)`` ("affine" only).

    Examples
    --------
    >>> import torch
    >>> layer = MaskedRQSplineAutoregressive(3, (16,))
    >>> x = torch.randn(5, 3)
    >>> u, log_det = layer(x)  # a zero output layer: the identity
    >>> torch.allclose(u, x, atol=1e-5), bool(log_det.abs().max() < 1e-5)
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
        tail_bound: float = 5.0,
        affine: bool = False,
        log_scale_bound: float | None = 5.0,
    ):
        transform = SplineTransform(n_bins, tail_bound)
        if affine:
            transform = Composed(AffineTransform(log_scale_bound), transform)
        super().__init__(n_features, hidden_sizes, transform, order, activation, degree_mode, generator,
                         context_features)

    @property
    def _spline(self) -> SplineTransform:
        return self.transform.outer if self.affine else self.transform

    @property
    def affine(self) -> bool:
        return isinstance(self.transform, Composed)

    @property
    def n_bins(self) -> int:
        return self._spline.n_bins

    @property
    def tail_bound(self) -> float:
        return self._spline.tail_bound


@functools.lru_cache(maxsize=64)
def _block_constants(n_bins: int, bound: float, dtype: torch.dtype, device: torch.device):
    """What :func:`_spline_of_block` writes into every block: the inner
    knots' offsets and the factors of their softmax sums ``(2, K - 1, 1, 1)``
    and ``(2, 1, 1, 1)`` (knots of x, of y), the three tables' first and
    last entries ``(3, 1, 1)`` each, and the offsets of a bin's six ends in
    the flattened tables ``(6, 1, 1)``."""
    k = n_bins
    # inner knot j = -bound + 2 bound (j minimum + (1 - K minimum) (softmax_0 + ... + softmax_{j-1}))
    j = torch.arange(1, k, dtype=torch.float64)
    offsets = torch.stack([-bound + 2 * bound * MIN_BIN_WIDTH * j, -bound + 2 * bound * MIN_BIN_HEIGHT * j])
    factors = torch.tensor([2 * bound * (1 - MIN_BIN_WIDTH * k), 2 * bound * (1 - MIN_BIN_HEIGHT * k)],
                           dtype=torch.float64)
    first = torch.tensor([-bound, -bound, 1.0], dtype=torch.float64)
    last = torch.tensor([bound, bound, 1.0], dtype=torch.float64)
    ends = torch.tensor([0, 1, k + 1, k + 2, 2 * k + 2, 2 * k + 3], device=device)
    as_block = dict(dtype=dtype, device=device)
    return (offsets.view(2, k - 1, 1, 1).to(**as_block), factors.view(2, 1, 1, 1).to(**as_block),
            first.view(3, 1, 1).to(**as_block), last.view(3, 1, 1).to(**as_block), ends.view(6, 1, 1))


@functools.lru_cache(maxsize=64)
def _running_sums(n_bins: int, dtype: torch.dtype, device: torch.device):
    """Matrices of the softmax's running sums over the ``K - 1`` inner bins:
    ``(K - 1, K - 1)`` lower-triangular ones (the cumulative sums, forwards)
    and ``(K, K - 1)`` upper-triangular ones over a row of zeros (the sums
    from each bin on, backwards): one small matrix product each, in place
    of ``torch.cumsum`` along the block's middle axis (docs/benchmarks.md
    compares the two)."""
    lower = torch.ones(n_bins - 1, n_bins - 1, dtype=dtype, device=device).tril_()
    upper = torch.zeros(n_bins, n_bins - 1, dtype=dtype, device=device)
    upper[:-1] = lower.t()
    return lower, upper


def _spline_of_block(x, p, n_bins, tail_bound, keep=True):
    """The spline of ``x`` (``(d, n)``) with network outputs ``p`` (``(P d, n)``, output ``j`` of
    feature ``i`` in row ``j d + i``): outputs and log-dets, ``(d, n)`` each, and (with
    ``keep``) what :func:`_spline_of_block_backward` needs.

    :func:`rational_quadratic_spline` in the fewest tensor operations: on a
    few hundred rows each operation costs more in dispatch than in
    arithmetic.  Widths and heights go through one softmax and one
    cumulative sum; the knots, heights and derivatives are written into one
    table that a single gather reads a bin's six ends from.
    """
    k, bound = n_bins, float(tail_bound)
    d, n = x.shape
    offsets, factors, first, last, gather_offsets = _block_constants(k, bound, x.dtype, x.device)
    params = p.view(3 * k - 1, d, n)  # bins first: each bin a contiguous slice
    softmax = torch.softmax(params[: 2 * k].view(2, k, d, n), dim=1)
    table = x.new_empty(3, k + 1, d, n)  # knots of x, knots of y, derivatives
    table[:, 0] = first
    table[:, k] = last
    lower, _ = _running_sums(k, x.dtype, x.device)
    running = torch.matmul(lower, softmax[:, : k - 1].reshape(2, k - 1, d * n)).view(2, k - 1, d, n)
    torch.addcmul(offsets, factors, running, out=table[:2, 1:k])
    raw_d = params[2 * k :]
    torch.add(F.softplus(raw_d + _DERIVATIVE_SHIFT), MIN_DERIVATIVE, out=table[2, 1:k])
    x_in = x.clamp(-bound, bound)
    inside = x.abs() <= bound
    # the bin: how many inner knots lie at or below the value (at most K - 1)
    index = (x_in >= table[0, 1:k]).sum(0, keepdim=True) + gather_offsets
    x_k, x_k1, y_k, y_k1, d_k, d_k1 = table.view(3 * (k + 1), d, n).gather(0, index)
    w, h = x_k1 - x_k, y_k1 - y_k
    slope = h / w
    theta = (x_in - x_k).div_(w)
    theta2 = theta * theta
    tau = theta - theta2  # theta (1 - theta)
    curvature = torch.add(d_k, d_k1).sub_(slope, alpha=2)
    denominator = torch.addcmul(slope, curvature, tau)
    ratio = torch.addcmul(d_k * tau, slope, theta2).div_(denominator)  # (y - y_k) / h
    y = torch.addcmul(y_k, h, ratio)
    one_minus = 1 - theta
    q = torch.addcmul(d_k1 * theta2, slope, tau, value=2).addcmul_(d_k, one_minus * one_minus)
    # log-derivative = log(slope^2 q / denominator^2)
    log_det = (slope / denominator).square_().mul_(q).log_()
    y = torch.where(inside, y, x)
    log_det = torch.where(inside, log_det, 0.0)
    if not keep:
        return y, log_det, None
    return y, log_det, (inside, index, softmax, raw_d, w, h, slope, theta, theta2, tau, one_minus, curvature,
                        denominator, ratio, q, d_k, d_k1)


def _spline_of_block_backward(saved, g, g_log_det, n_bins, tail_bound, grad_p=None):
    """Gradients at the inputs ``(d, n)`` and at the network outputs ``(P d, n)``
    of :func:`_spline_of_block`, from ``g`` at the outputs and ``g_log_det``
    (``(n,)`` or None) at the rows' log-dets summed over features.  The
    outputs' gradient goes into ``grad_p`` (``(P, d, n)``) when given."""
    (inside, index, softmax, raw_d, w, h, slope, theta, theta2, tau, one_minus, curvature, denominator, ratio,
     q, d_k, d_k1) = saved
    k, bound = n_bins, float(tail_bound)
    d, n = g.shape
    # The six ends' gradients, written where the scatter reads them:
    # (x_k, x_k1, y_k, y_k1, d_k, d_k1).
    ends = g.new_empty(6, d, n)
    g_w, g_h, g_dk, g_dk1 = ends[1], ends[3], ends[4], ends[5]
    inv_d = denominator.reciprocal()
    g_y = torch.where(inside, g, 0.0)
    # y = y_k + h ratio(theta, slope, d_k, d_k1): partial derivatives (slope held)
    scale = torch.mul(g_y, h).mul_(inv_d)
    lean = 1 - 2 * theta
    g_theta = torch.addcmul(d_k, ratio, curvature, value=-1).mul_(lean).addcmul_(slope, theta, value=2).mul_(scale)
    one_minus_2tau = 1 - 2 * tau
    g_slope = torch.addcmul(theta2, ratio, one_minus_2tau, value=-1).mul_(scale)
    scaled_tau = scale * tau
    torch.mul(scaled_tau, ratio, out=g_dk1).neg_()
    torch.add(scaled_tau, g_dk1, out=g_dk)  # scale tau (1 - ratio)
    torch.mul(g_y, ratio, out=g_h)
    if g_log_det is not None:
        # log-det = 2 log slope + log q - 2 log denominator
        g_l = torch.where(inside, g_log_det, 0.0)
        inv_q = g_l / q
        two_over_d = torch.mul(g_l, inv_d).mul_(2)
        dq_dtheta = torch.mul(d_k1, theta).addcmul_(slope, lean).addcmul_(d_k, one_minus, value=-1)
        g_theta.addcmul_(inv_q, dq_dtheta, value=2).addcmul_(two_over_d, curvature * lean, value=-1)
        g_slope.addcdiv_(g_l, slope, value=2).addcmul_(tau, inv_q, value=2).addcmul_(two_over_d, one_minus_2tau,
                                                                                   value=-1)
        two_over_d_tau = two_over_d.mul_(tau)
        g_dk.addcmul_(one_minus * one_minus, inv_q).sub_(two_over_d_tau)
        g_dk1.addcmul_(theta2, inv_q).sub_(two_over_d_tau)
    # slope = h / w, theta = (x - x_k) / w, w = x_k1 - x_k, h = y_k1 - y_k
    g_h.addcdiv_(g_slope, w)
    g_x = g_theta.div_(w)
    torch.mul(g_slope, slope, out=g_w).div_(w).neg_().addcmul_(g_x, theta, value=-1)
    torch.add(g_x, g_w, out=ends[0]).neg_()
    torch.sub(g_y, g_h, out=ends[2])
    table = ends.new_zeros(3 * (k + 1), d, n).scatter_add_(0, index, ends).view(3, k + 1, d, n)
    if grad_p is None:
        grad_p = g.new_empty((3 * k - 1,) + g.shape)
    # inner knot j = factor (softmax_0 + ... + softmax_{j-1}) + offset:
    # softmax_i gets the sum of the gradients of the knots after it, times the factor
    _, upper = _running_sums(k, g.dtype, g.device)
    sizes = torch.matmul(upper, table[:2, 1:k].reshape(2, k - 1, d * n)).view(2, k, d, n).mul_(softmax)
    torch.addcmul(sizes, softmax, sizes.sum(1, keepdim=True), value=-1,
                  out=grad_p[: 2 * k].view(2, k, d, n)).mul_(_block_constants(k, bound, g.dtype, g.device)[1])
    torch.mul(table[2, 1:k], torch.sigmoid(raw_d + _DERIVATIVE_SHIFT), out=grad_p[2 * k :])
    return torch.where(inside, g_x, g), grad_p.view(-1, g.shape[1])
