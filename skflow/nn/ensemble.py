"""An equal-weight mixture of flows (a bagged ensemble)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FlowEnsemble"]


class FlowEnsemble(nn.Module):
    """Equal-weight mixture of flows: ``p(x) = mean_k p_k(x)``.

    The log-density is the log-mean-exp of the members' log-densities;
    sampling draws each row's member uniformly, then samples that member.

    Parameters
    ----------
    flows : sequence of Flow
        The members, all over the same number of features.

    Examples
    --------
    >>> import torch
    >>> from skflow.nn import FlowEnsemble, build_maf
    >>> members = [build_maf(2, n_flows=1, hidden_sizes=(8,)) for _ in range(3)]
    >>> ensemble = FlowEnsemble(members).eval()
    >>> ensemble.log_prob(torch.zeros(1, 2)).shape
    torch.Size([1])
    >>> ensemble.sample(5, torch.Generator().manual_seed(0)).shape
    torch.Size([5, 2])
    """

    def __init__(self, flows: Sequence[nn.Module]):
        super().__init__()
        flows = list(flows)
        if not flows:
            raise ValueError("a FlowEnsemble needs at least one flow")
        widths = {f.n_features for f in flows}
        if len(widths) != 1:
            raise ValueError(f"the flows model different numbers of features: {sorted(widths)}")
        self.members = nn.ModuleList(flows)
        self.n_features = flows[0].n_features
        self.context_features = getattr(flows[0], "context_features", 0)

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Log-density of each row: log-mean-exp over the members."""
        stacked = torch.stack([f.log_prob(x, context) for f in self.members])
        return torch.logsumexp(stacked, dim=0) - math.log(len(self.members))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               context: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` draws: each row from a member chosen uniformly (by ``generator``)."""
        device = next(self.parameters()).device
        dtype = next(self.parameters()).dtype
        which = torch.randint(len(self.members), (n,), generator=generator)
        out = torch.empty(n, self.n_features, dtype=dtype, device=device)
        for k, flow in enumerate(self.members):
            rows = torch.nonzero(which == k)[:, 0]
            if rows.numel():
                ctx = None if context is None else context[rows.to(context.device)]
                out[rows.to(device)] = flow.sample(rows.numel(), generator, ctx)
        return out

    def has_statistics(self) -> bool:
        return any(f.has_statistics() for f in self.members)
