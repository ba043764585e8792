"""Bijective layers of a flow.

Every transform maps data towards noise in ``forward`` and returns the
log-absolute-determinant of that map's Jacobian, so a flow's log-density is a
single forward pass.  ``inverse`` maps noise back to data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._fused import FUSED_ACTIVATIONS, BatchNormSpec, maf_spec
from .made import MADE

__all__ = ["BatchNormTransform", "MaskedAffineAutoregressive", "Permutation", "soft_clamp"]


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
    """The MAF layer: ``u_i = (x_i - mu_i(x_<i)) * exp(-alpha_i(x_<i))``.

    Density direction (``forward``) costs one MADE pass; sampling
    (``inverse``) costs D passes, one per dimension in the autoregressive
    order.

    Parameters
    ----------
    n_features : int
    hidden_sizes : sequence of int
    order : sequence of int, optional
        Autoregressive order (a permutation of ``range(n_features)``).
    activation : str
    log_scale_bound : float or None
        ``alpha`` is soft-clamped to ``(-bound, bound)``, so one layer can
        scale a coordinate by at most ``exp(bound)``; None leaves it free.
    degree_mode : {"sequential", "random"}
    generator : torch.Generator, optional

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
    ):
        super().__init__()
        self.made = MADE(
            n_features, hidden_sizes, 2, order, activation, degree_mode, generator
        )
        self.log_scale_bound = log_scale_bound

    def _shift_log_scale(self, x):
        params = self.made(x)
        mu, raw = params.chunk(2, dim=-1)
        return mu, soft_clamp(raw, self.log_scale_bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, alpha = self._shift_log_scale(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)

    def fused_parameters(self) -> list[torch.Tensor]:
        """Parameters in the order :class:`~skflow.nn._fused.FlowFunction` takes them."""
        layers = self.made.layers
        return [layer.weight for layer in layers] + [layer.bias for layer in layers]

    def fused_spec(self):
        """Static description for the fused flow pass, or None if not fusable."""
        made = self.made
        if made.activation not in FUSED_ACTIVATIONS:
            return None
        masks = tuple(layer.mask for layer in made.layers)
        key = (self.log_scale_bound, masks[0].device, masks[0].dtype,
               tuple((m.data_ptr(), m._version) for m in masks))
        cached = self.__dict__.get("_fused_cache")
        if cached is None or cached[0] != key:
            cached = (key, maf_spec(made, self.log_scale_bound))
            self.__dict__["_fused_cache"] = cached
        return cached[1]

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """Sample direction, computing every hidden unit exactly once.

        A hidden unit of degree ``m`` depends only on the inputs of degree
        ``<= m``.  With units sorted by degree, the input of degree ``k`` is
        produced from the prefix of last-layer units of degree ``< k``, and
        producing it makes the units of degree ``k`` computable, layer by
        layer.  The total work is about one network pass instead of the D
        passes of :meth:`inverse_naive`, with the same result.  It writes
        into buffers in place, so where autograd records (gradients enabled
        and ``u`` or a parameter requiring them) the differentiable
        :meth:`inverse_naive` runs instead.
        """
        if torch.is_grad_enabled() and (u.requires_grad or any(p.requires_grad for p in self.parameters())):
            return self.inverse_naive(u)
        made = self.made
        n_in = made.n_inputs
        order = torch.argsort(made.degrees)  # position k-1 holds the input of degree k
        weights, biases, counts = [], [], []
        prev_perm = order
        grid = torch.arange(n_in + 1, device=u.device)
        for layer in made.layers[:-1]:
            perm = torch.argsort(layer.degrees, stable=True)
            weights.append(layer.masked_weight()[perm][:, prev_perm])
            biases.append(layer.bias[perm])
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
                    torch.addmm(b[lo:hi, None], w[lo:hi, :available], inp[:available], out=out)
                    out.copy_(made._act(out))
                available = hi
            params = torch.addmm(b_out[k - 1][:, None], w_out[k - 1, :, :available], hidden[-1][:available])
            alpha = soft_clamp(params[1], self.log_scale_bound)
            torch.addcmul(params[0], u_sorted[k - 1], torch.exp(alpha), out=x_sorted[k - 1])
        x = torch.empty_like(u)
        x[:, order] = x_sorted.t()
        return x

    def inverse_naive(self, u: torch.Tensor) -> torch.Tensor:
        """Reference sample direction: D full passes of the network."""
        # Each pass fixes one more coordinate in the order: after pass k the
        # first k+1 coordinates in that order are exact and never change again.
        x = torch.zeros_like(u)
        for _ in range(self.made.n_inputs):
            mu, alpha = self._shift_log_scale(x)
            x = u * torch.exp(alpha) + mu
        return x


class BatchNormTransform(nn.Module):
    """Batch normalisation as a bijector (Dinh et al. 2017; MAF paper).

    ``u = (x - m) / sqrt(v + eps) * exp(log_gamma) + beta``.  In training mode
    ``m, v`` are the batch statistics and the running averages are updated; in
    eval mode the running averages are used, which makes the layer an exact
    bijection whose inverse is :meth:`inverse`.

    Parameters
    ----------
    n_features : int
    momentum : float
        Weight of the new batch in the running averages.
    eps : float

    Examples
    --------
    >>> import torch
    >>> bn = BatchNormTransform(2).eval()
    >>> x = torch.randn(4, 2)
    >>> torch.allclose(bn.inverse(bn(x)[0]), x, atol=1e-6)
    True
    """

    def __init__(self, n_features: int, momentum: float = 0.05, eps: float = 1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(n_features))
        self.beta = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("running_mean", torch.zeros(n_features))
        # 1 - eps (not 0) makes an untrained layer exactly the identity.
        self.register_buffer("running_var", torch.full((n_features,), 1.0 - eps))

    def fused_parameters(self) -> list[torch.Tensor]:
        """Parameters in the order :class:`~skflow.nn._fused.FlowFunction` takes them."""
        return [self.log_gamma, self.beta]

    def fused_spec(self, n_rows: int) -> BatchNormSpec:
        """Static description for the fused flow pass."""
        return BatchNormSpec(self.eps, self.momentum, self.training and n_rows > 1,
                             self.running_mean, self.running_var)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and x.shape[0] > 1:
            mean = x.mean(0)
            var = x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = torch.exp(self.log_gamma) * torch.rsqrt(var + self.eps)
        u = (x - mean) * scale + self.beta
        return u, torch.log(scale).sum().expand(x.shape[0])

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        scale = torch.exp(self.log_gamma) * torch.rsqrt(self.running_var + self.eps)
        return (u - self.beta) / scale + self.running_mean

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        """Replace the running statistics, e.g. by those of a whole data set."""
        self.running_mean.copy_(mean)
        self.running_var.copy_(var)


class Permutation(nn.Module):
    """Reorders the features: ``u = x[:, perm]``; log-det is 0.

    MAF layers take an ``order`` themselves, which costs nothing; this layer is
    for flows that mix MAF with transforms that have no order of their own.

    Examples
    --------
    >>> import torch
    >>> Permutation([1, 0])(torch.tensor([[1.0, 2.0]]))[0]
    tensor([[2., 1.]])
    """

    def __init__(self, perm: Sequence[int]):
        super().__init__()
        perm = torch.as_tensor(list(perm), dtype=torch.long)
        if sorted(perm.tolist()) != list(range(perm.numel())):
            raise ValueError(f"perm must be a permutation of range({perm.numel()})")
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def forward(self, x):
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, u):
        return u[:, self.inv_perm]
