"""Batch normalisation as a bijector, and its fused kernel."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .kernel import LayerKernel

__all__ = ["BatchNormKernel", "BatchNormTransform"]


class BatchNormTransform(nn.Module):
    """Batch normalisation as a bijector (Dinh et al. 2017; MAF paper).

    ``u = (x - m) / sqrt(v + eps) * exp(log_gamma) + beta``.  In training mode
    ``m, v`` are the batch statistics and the running averages are updated; in
    eval mode the running averages are used, which makes the layer an exact
    bijection whose inverse is :meth:`inverse`.  A context is accepted and
    ignored.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    momentum : float
        Weight of the new batch in the running averages.
    eps : float
        Added to the variance.

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

    def fused_kernel(self, n_rows: int = 2) -> BatchNormKernel:
        """This layer's kernel for a pass over ``n_rows`` rows."""
        return BatchNormKernel(self, self.training and n_rows > 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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

    def inverse(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        scale = torch.exp(self.log_gamma) * torch.rsqrt(self.running_var + self.eps)
        return (u - self.beta) / scale + self.running_mean

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        """Replace the running statistics, e.g. by those of a whole data set."""
        self.running_mean.copy_(mean)
        self.running_var.copy_(var)


class _BatchNormSaved(NamedTuple):
    x_hat: torch.Tensor  # the normalised input, (d, n)
    inv_std: torch.Tensor
    gamma: torch.Tensor  # exp(log_gamma)


class BatchNormKernel(LayerKernel):
    """The fused pass of :class:`BatchNormTransform`: its log-det is one
    constant per layer, its running averages are updated by the driver in
    one call per momentum."""

    def __init__(self, layer: BatchNormTransform, batch_statistics: bool):
        self.params = [layer.log_gamma, layer.beta]
        self.eps = layer.eps
        self.momentum = layer.momentum
        self.batch_statistics = batch_statistics
        self.running_mean = layer.running_mean
        self.running_var = layer.running_var

    def slots(self):
        return [(p.shape, None) for p in self.params]

    def pack(self, params):
        return list(params)

    def param_views(self, blocks):
        return list(blocks)

    def unpack_grads(self, block_grads):
        return list(block_grads)

    def signature(self):
        return ("batch_norm", self.eps, self.batch_statistics)

    def plan_tensors(self):
        return self.params + [self.running_mean, self.running_var]

    def activation_sizes(self, d):
        return [d]

    def forward(self, state, h, blocks, keep):
        log_gamma, beta = blocks
        gamma = log_gamma.exp()
        body = h[1]
        if self.batch_statistics:
            # Two passes instead of torch.var_mean (slower on these shapes).
            mean = body.mean(1)
            centred = body - mean[:, None]
            var = centred.square().mean(1)
            state.update_running(self.momentum, (self.running_mean, self.running_var), (mean, var))
        else:
            mean, var = self.running_mean, self.running_var
            centred = body - mean[:, None]
        inv_std = (var + self.eps).rsqrt_()
        x_hat = centred.mul_(inv_std[:, None])
        out = state.take()
        torch.addcmul(beta[:, None], x_hat, gamma[:, None], out=out[1])
        state.add_constant_log_det(log_gamma + inv_std.log())
        return out, (_BatchNormSaved(x_hat, inv_std, gamma) if keep else None)

    def backward(self, state, saved, g, blocks, grad_blocks):
        x_hat, inv_std, gamma = saved
        n = x_hat.shape[1]
        torch.sum(g, 1, out=grad_blocks[1])
        grad_log_gamma = torch.sum(g * x_hat, 1, out=grad_blocks[0]).mul_(gamma)
        if state.total_log_det is not None:
            grad_log_gamma.add_(state.total_log_det)
        gx = g * gamma[:, None]
        if self.batch_statistics:
            # Through the batch mean and variance (the log-det's
            # -0.5 log var term included): with c = dL/dlog_gamma / n,
            # dx = inv_std * (gx - mean(gx) - x_hat * c).
            gx.sub_(gx.mean(1, keepdim=True)).addcmul_(x_hat, grad_log_gamma[:, None], value=-1.0 / n)
        return gx.mul_(inv_std[:, None])

    def eval_prepare(self, blocks, order):
        log_gamma, beta = blocks
        inv_std = (self.running_var + self.eps).rsqrt()
        scale = log_gamma.exp() * inv_std
        shift = beta - self.running_mean * scale
        idx = order.to(scale.device)
        return (scale[idx][:, None], shift[idx][:, None]), order, float((log_gamma + inv_std.log()).sum())

    def eval_step(self, step, h, other, log_det, view, m, context):
        scale, shift = step
        torch.addcmul(shift, h[1:], scale, out=other[1:])
        return other, h
