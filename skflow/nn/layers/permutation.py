"""A fixed reordering of the features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .kernel import LayerKernel

__all__ = ["Permutation", "PermutationKernel"]


class Permutation(nn.Module):
    """Reorders the features: ``u = x[:, perm]``; log-det is 0.

    MAF layers take an ``order`` themselves, which costs nothing; this layer is
    for flows that mix MAF with transforms that have no order of their own.
    In the fused pass it is one row gather in training and free in scoring
    (only the scoring plan's record of the feature order changes).

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

    def fused_kernel(self, n_rows: int = 2) -> PermutationKernel:
        return PermutationKernel(self)

    def forward(self, x, context=None):
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, u, context=None):
        return u[:, self.inv_perm]


class PermutationKernel(LayerKernel):
    """The fused pass of :class:`Permutation` (no parameters)."""

    def __init__(self, layer: Permutation):
        self.params = []
        self.perm, self.inv_perm = layer.perm, layer.inv_perm

    def slots(self):
        return []

    def pack(self, params):
        return []

    def param_views(self, blocks):
        return []

    def unpack_grads(self, block_grads):
        return []

    def signature(self):
        return ("permutation", self.perm.numel())

    def plan_tensors(self):
        return [self.perm]

    def activation_sizes(self, d):
        return [d]

    def forward(self, state, h, blocks, keep):
        out = state.take()
        torch.index_select(h[1], 0, self.perm, out=out[1])  # u_j = x_perm[j]
        return out, (() if keep else None)

    def backward(self, state, saved, g, blocks, grad_blocks):
        return g.index_select(0, self.inv_perm)

    def eval_prepare(self, blocks, order):
        # Row k holds old feature order[k], which is new feature inv_perm[order[k]]:
        # the rows stay where they are.
        return None, self.inv_perm.cpu()[order], 0.0

    def eval_step(self, step, h, other, log_det, view, m, context):
        return h, other
