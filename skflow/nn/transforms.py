"""Bijective layers of a flow.

Every transform maps data towards noise in ``forward`` and returns the
log-absolute-determinant of that map's Jacobian, so a flow's log-density is a
single forward pass.  ``inverse`` maps noise back to data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .made import MADE

__all__ = ["BatchNormTransform", "MaskedAffineAutoregressive", "Permutation", "soft_clamp"]


def soft_clamp(x: torch.Tensor, bound: float | None) -> torch.Tensor:
    """Smoothly limit ``x`` to ``(-bound, bound)``; identity near zero."""
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

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
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
