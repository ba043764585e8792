"""A dense lower-triangular affine layer, e.g. to start a flow at a fitted Gaussian."""

from __future__ import annotations

import torch
from torch import nn

from .kernel import LayerKernel, block

__all__ = ["LowerTriangularAffine", "LowerTriangularKernel", "whitening_matrix"]


def whitening_matrix(cov: torch.Tensor) -> torch.Tensor:
    """``L^{-1}`` for ``cov = L L^T`` (float64 Cholesky, batched over leading
    axes): lower-triangular, positive diagonal, and ``L^{-1} (x - mean)`` is
    white for ``x ~ N(mean, cov)``."""
    cov = cov.double().cpu()
    chol = torch.linalg.cholesky(cov)
    eye = torch.eye(cov.shape[-1], dtype=torch.float64).expand_as(cov)
    return torch.linalg.solve_triangular(chol, eye, upper=False)


class LowerTriangularAffine(nn.Module):
    """``u = W x + b`` with ``W`` lower-triangular with a positive diagonal.

    ``W = tril(weight, -1) + diag(exp(log_diag))``, so the log-det is
    ``sum(log_diag)`` for every row and the inverse is a triangular solve.
    It starts as the identity; :meth:`set_gaussian` makes it whiten a
    Gaussian, so that a flow whose other layers are the identity has exactly
    that Gaussian's density.  A context is accepted and ignored.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.

    Examples
    --------
    >>> import torch
    >>> layer = LowerTriangularAffine(2)
    >>> layer.set_gaussian(torch.tensor([1.0, 2.0]), torch.tensor([[4.0, 1.0], [1.0, 2.0]]))
    >>> x = torch.randn(3, 2)
    >>> torch.allclose(layer.inverse(layer(x)[0]), x, atol=1e-5)
    True
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_features, n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.log_diag = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("mask", torch.ones(n_features, n_features).tril(-1))

    def matrix(self) -> torch.Tensor:
        """The effective ``W``."""
        return self.weight * self.mask + torch.diag(self.log_diag.exp())

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None):
        return x @ self.matrix().t() + self.bias, self.log_diag.sum().expand(x.shape[0])

    def inverse(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        w = self.matrix()
        return torch.linalg.solve_triangular(w, (u - self.bias).t(), upper=False).t()

    @torch.no_grad()
    def set_gaussian(self, mean: torch.Tensor, cov: torch.Tensor) -> None:
        """Whiten ``N(mean, cov)``: ``W = L^{-1}`` for ``cov = L L^T``, ``b = -W mean``.

        Computed in float64; ``cov`` must be positive definite (add a ridge
        for singular data).
        """
        dtype = self.weight.dtype
        mean = mean.double().cpu()
        w = whitening_matrix(cov)
        self.weight.copy_((w * self.mask.double().cpu()).to(dtype))
        self.log_diag.copy_(w.diagonal().log().to(dtype))
        self.bias.copy_((-(w @ mean)).to(dtype))

    def fused_kernel(self, n_rows: int = 2) -> LowerTriangularKernel:
        return LowerTriangularKernel(self)


class LowerTriangularKernel(LayerKernel):
    """The fused pass of :class:`LowerTriangularAffine`: the strictly lower
    part and the bias are one masked ``[W^T ; b]`` block (one matrix product),
    the diagonal ``exp(log_diag)`` a vector; the log-det a per-layer constant."""

    def __init__(self, layer: LowerTriangularAffine):
        self.params = [layer.weight, layer.bias, layer.log_diag]
        self.block_mask = block(layer.mask, layer.mask.new_ones(layer.mask.shape[0]))
        self.d = layer.mask.shape[0]

    def slots(self):
        return [(self.block_mask.shape, self.block_mask), (torch.Size([self.d]), None)]

    def pack(self, params):
        weight, bias, log_diag = params
        return [block(weight, bias).mul_(self.block_mask), log_diag]

    def param_views(self, blocks):
        return [blocks[0][:-1].t(), blocks[0][-1], blocks[1]]

    def unpack_grads(self, block_grads):
        return [block_grads[0][:-1].t(), block_grads[0][-1], block_grads[1]]

    def signature(self):
        return ("lower_triangular", self.d)

    def activation_sizes(self, d):
        return [d]

    def forward(self, state, h, blocks, keep):
        blk, log_diag = blocks
        diag = log_diag.exp()
        out = state.take()
        torch.mm(blk.t(), h[0], out=out[1]).addcmul_(diag[:, None], h[1])
        state.add_constant_log_det(log_diag)
        return out, ((h, diag) if keep else None)

    def backward(self, state, saved, g, blocks, grad_blocks):
        (h_full, h_body), diag = saved
        blk = blocks[0]
        torch.mm(h_full, g.t(), out=grad_blocks[0])
        grad_log_diag = torch.sum(g * h_body, 1, out=grad_blocks[1]).mul_(diag)
        if state.total_log_det is not None:
            grad_log_diag.add_(state.total_log_det)
        return torch.mm(blk[:-1], g).addcmul_(diag[:, None], g)

    def eval_prepare(self, blocks, order):
        blk, log_diag = blocks
        w = blk[:-1].t() + torch.diag(log_diag.exp())
        idx = order.to(w.device)
        # Outputs keep the order the inputs arrive in.
        step = (w[idx][:, idx].contiguous(), blk[-1][idx][:, None].contiguous())
        return step, order, float(log_diag.sum())

    def eval_step(self, step, h, other, log_det, view, m, context):
        w, b = step
        torch.addmm(b, w, h[1:], out=other[1:])
        return other, h
