"""Base distributions: the density of a flow's output ``u``.

A base has the reference methods ``log_prob(u, context=None)`` and
``sample(n, generator, dtype, context=None)``, and ``fused_log_prob_`` for
the streaming scoring pass of :mod:`skflow.nn.fused`, which holds ``u``
transposed (features x rows) with its features in a layer's autoregressive
order.  A base may have parameters (an ``nn.Module`` that trains with the
flow) and may use the context.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BaseDistribution", "StandardNormal"]

_LOG_2PI = math.log(2 * math.pi)


class BaseDistribution(nn.Module):
    """What a flow needs of its base distribution; subclasses implement
    :meth:`log_prob` and :meth:`sample`, and may override
    :meth:`fused_log_prob_` with a faster form."""

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def log_prob(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Log-density of each row of ``u``."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32,
               context: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` draws on the CPU (so a seed gives the same noise on any device)."""
        raise NotImplementedError

    def fused_log_prob_(self, u_t: torch.Tensor, order: torch.Tensor, out: torch.Tensor,
                        context_t: torch.Tensor | None = None) -> None:
        """Add the log-density of the columns of ``u_t`` to ``out``.

        ``u_t`` is ``(features, rows)`` with row ``k`` holding feature
        ``order[k]``; ``context_t`` is ``(1 + c, rows)`` with a leading row
        of ones, or None.  This default puts the features back in their
        natural order and calls :meth:`log_prob`.
        """
        u = torch.empty_like(u_t)
        u[order] = u_t
        context = None if context_t is None else context_t[1:].t()
        out.add_(self.log_prob(u.t(), context))


class StandardNormal(BaseDistribution):
    """The standard normal ``N(0, I)`` in ``n_features`` dimensions.

    Examples
    --------
    >>> import torch
    >>> StandardNormal(2).log_prob(torch.zeros(1, 2))
    tensor([-1.8379])
    """

    def log_prob(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return -0.5 * (u.square().sum(-1) + self.n_features * _LOG_2PI)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32,
               context: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randn(n, self.n_features, generator=generator, dtype=dtype)

    def fused_log_prob_(self, u_t: torch.Tensor, order: torch.Tensor, out: torch.Tensor,
                        context_t: torch.Tensor | None = None) -> None:
        # The order of the features does not matter for this base.
        out.add_(u_t.square().sum(0), alpha=-0.5).sub_(0.5 * self.n_features * _LOG_2PI)
