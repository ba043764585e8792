"""An affine layer driven by a context, to start a conditional flow at a
conditional Gaussian: one Gaussian per class, or a linear-Gaussian regression."""

from __future__ import annotations

import torch
from torch import nn

from .linear import whitening_matrix

__all__ = ["ConditionalGaussianAffine"]

# Rows per chunk of the batched triangular solves of the grouped inverse
# (each row holds a d x d matrix there).
_SOLVE_ELEMENTS = 1 << 22


class ConditionalGaussianAffine(nn.Module):
    """``u = W(c) (x - A c - b)`` with lower-triangular ``W(c)``.

    The shift is linear in the context ``c``.  With ``n_groups=1`` the
    whitening matrix ``W = tril(weight, -1) + diag(exp(log_diag))`` is shared
    (a linear-Gaussian regression of ``x`` on ``c``); with
    ``n_groups=context_features`` it is ``W(c) = sum_g c_g W_g`` (one
    Gaussian per class when ``c`` is one-hot; context rows must then be
    non-negative with a positive sum).  The log-det is the sum of the log
    of ``W(c)``'s diagonal; the inverse is a triangular solve.

    It starts as the identity; :meth:`set_linear_gaussian` and
    :meth:`set_group_gaussians` set it in closed form, so that a flow whose
    other layers are the identity has exactly that conditional Gaussian's
    density.  The arithmetic runs in float64 whatever the module's dtype, so
    a row's result does not depend on the rows scored with it.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    context_features : int
        Dimension of ``c``.
    n_groups : int, default=1
        1 (shared whitening) or ``context_features`` (one whitening per
        context column).

    Examples
    --------
    >>> import torch
    >>> layer = ConditionalGaussianAffine(2, 3, n_groups=3)
    >>> c = torch.eye(3)[[0, 2]]
    >>> x = torch.randn(2, 2)
    >>> torch.allclose(layer.inverse(layer(x, c)[0], c), x)
    True
    """

    def __init__(self, n_features: int, context_features: int, n_groups: int = 1):
        super().__init__()
        if context_features < 1:
            raise ValueError(f"context_features must be >= 1, got {context_features}")
        if n_groups not in (1, context_features):
            raise ValueError(f"n_groups must be 1 or context_features={context_features}, got {n_groups}")
        self.n_features, self.context_features, self.n_groups = n_features, context_features, n_groups
        self.weight = nn.Parameter(torch.zeros(n_groups, n_features, n_features))
        self.log_diag = nn.Parameter(torch.zeros(n_groups, n_features))
        self.shift_weight = nn.Parameter(torch.zeros(context_features, n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("mask", torch.ones(n_features, n_features).tril(-1))

    def matrices(self) -> torch.Tensor:
        """The ``(n_groups, d, d)`` whitening matrices ``W_g`` (float64)."""
        return self.weight.double() * self.mask.double() + torch.diag_embed(self.log_diag.double().exp())

    def _mean(self, context: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias.double(), context, self.shift_weight.double())

    def forward(self, x: torch.Tensor, context: torch.Tensor):
        c = context.double()
        z = x.double() - self._mean(c)
        w = self.matrices()
        if self.n_groups == 1:
            u = z @ w[0].t()
            log_det = self.log_diag.double().sum().expand(x.shape[0])
        else:
            u = torch.einsum("ngi,ng->ni", torch.einsum("nj,gij->ngi", z, w), c)
            log_det = (c @ self.log_diag.double().exp()).log().sum(1)
        return u.to(x.dtype), log_det.to(x.dtype)

    def inverse(self, u: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        c = context.double()
        w = self.matrices()
        if self.n_groups == 1:
            z = torch.linalg.solve_triangular(w[0], u.double().t(), upper=False).t()
        else:
            d = self.n_features
            chunks = []
            step = max(1, _SOLVE_ELEMENTS // (d * d))
            for start in range(0, u.shape[0], step):
                w_c = torch.einsum("ng,gij->nij", c[start : start + step], w)
                rhs = u[start : start + step].double()[..., None]
                chunks.append(torch.linalg.solve_triangular(w_c, rhs, upper=False)[..., 0])
            z = torch.cat(chunks) if chunks else u.double()
        return (z + self._mean(c)).to(u.dtype)

    @torch.no_grad()
    def _set_whitening(self, whiteners: torch.Tensor) -> None:
        dtype = self.weight.dtype
        self.weight.copy_((whiteners * self.mask.double().cpu()).to(dtype))
        self.log_diag.copy_(whiteners.diagonal(dim1=-2, dim2=-1).log().to(dtype))

    @torch.no_grad()
    def set_linear_gaussian(self, coef: torch.Tensor, intercept: torch.Tensor, cov: torch.Tensor) -> None:
        """Make the layer whiten ``x | c ~ N(c @ coef + intercept, cov)``.

        ``coef`` is ``(context_features, n_features)``; needs ``n_groups=1``.
        """
        if self.n_groups != 1:
            raise ValueError("set_linear_gaussian needs n_groups=1")
        self._set_whitening(whitening_matrix(cov)[None])
        self.shift_weight.copy_(coef.to(self.shift_weight))
        self.bias.copy_(intercept.to(self.bias))

    @torch.no_grad()
    def set_group_gaussians(self, means: torch.Tensor, covs: torch.Tensor) -> None:
        """Make the layer whiten ``x | c = e_g ~ N(means[g], covs[g])``.

        ``means`` is ``(n_groups, n_features)``, ``covs`` ``(n_groups, d, d)``,
        each positive definite; needs ``n_groups=context_features``.
        """
        if self.n_groups != self.context_features:
            raise ValueError("set_group_gaussians needs n_groups=context_features")
        self._set_whitening(whitening_matrix(covs))
        self.shift_weight.copy_(means.to(self.shift_weight))
        self.bias.zero_()
