"""A fixed reordering of the features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Permutation"]


class Permutation(nn.Module):
    """Reorders the features: ``u = x[:, perm]``; log-det is 0.

    MAF layers take an ``order`` themselves, which costs nothing; this layer is
    for flows that mix MAF with transforms that have no order of their own.
    It has no fused kernel, so a flow runs it as an autograd step between
    its fused segments.

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

    def forward(self, x, context=None):
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, u, context=None):
        return u[:, self.inv_perm]
