"""Elementwise transforms: what an autoregressive layer does with its MADE's outputs.

An autoregressive layer (:class:`~skflow.nn.layers.autoregressive.MaskedAutoregressive`)
is one skeleton: a MADE computes, for each coordinate ``x_i``, ``n_params``
numbers from the earlier coordinates (and the context), and a monotone
elementwise transform maps ``x_i`` with them.  The skeleton (network,
masks, fused passes, one-pass sampling) is shared; an
:class:`ElementwiseTransform` supplies only the map.  Zero parameters must
give the identity, so that an untrained layer (zero output layer) is the
identity.

Every method works on blocks: ``x`` of shape ``(d, n)`` (features by rows)
and parameters ``p`` of shape ``(n_params * d, n)`` whose row ``j * d + i``
holds parameter ``j`` of feature ``i``; :meth:`~ElementwiseTransform.apply`
and :meth:`~ElementwiseTransform.invert` also take one feature, ``x`` of
shape ``(n,)`` with ``p`` of shape ``(n_params, n)`` (sampling inverts one
feature at a time).  A transform implements

* :meth:`~ElementwiseTransform.apply` and :meth:`~ElementwiseTransform.invert`
  in differentiable torch operations (the reference path, sampling);

and may implement, for speed,

* :meth:`~ElementwiseTransform.forward_into` / :meth:`~ElementwiseTransform.backward`,
  the training pass with its gradients written out (the defaults run
  autograd through :meth:`~ElementwiseTransform.apply`);
* :meth:`~ElementwiseTransform.eval_prepare` / :meth:`~ElementwiseTransform.eval_into`,
  the scoring pass in a parameter layout of its choosing.
"""

from __future__ import annotations

import torch

__all__ = ["Composed", "ElementwiseTransform"]


class ElementwiseTransform:
    """A monotone map of each coordinate given its parameters (see the module docstring).

    Attributes
    ----------
    n_params : int
        Parameters per coordinate.
    """

    n_params: int

    def settings(self) -> tuple:
        """The transform's settings (part of the scoring plan's cache key)."""
        return ()

    def signature(self) -> tuple:
        return (type(self).__name__,) + tuple(self.settings())

    # -- reference path ----------------------------------------------------
    def apply(self, x: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, log |du/dx|)``, both ``(d, n)``, in differentiable operations."""
        raise NotImplementedError

    def invert(self, u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The ``x`` with ``apply(x, p)[0] == u``."""
        raise NotImplementedError

    # -- fused training pass -------------------------------------------------
    def forward_into(self, x, p, out, log_det, keep: bool):
        """Write ``u`` into ``out`` (``(d, n)``), add the rows' log-dets
        (summed over features) to ``log_det`` (``(n,)``); return what
        :meth:`backward` needs when ``keep``.  ``p`` is this transform's own
        (it may overwrite it)."""
        if not keep:
            u, ld = self.apply(x, p)
            out.copy_(u)
            log_det.add_(ld.sum(0))
            return None
        with torch.enable_grad():
            # copies: the driver reuses the buffers behind x and p in place
            x_leaf = x.detach().clone().requires_grad_(True)
            p_leaf = p.detach().clone().requires_grad_(True)
            u, ld = self.apply(x_leaf, p_leaf)
        out.copy_(u.detach())
        log_det.add_(ld.detach().sum(0))
        return x_leaf, p_leaf, u, ld

    def backward(self, saved, g: torch.Tensor, g_log_det: torch.Tensor | None, grad_p: torch.Tensor) -> torch.Tensor:
        """From ``g`` at ``u`` (``(d, n)``) and ``g_log_det`` at the rows'
        log-dets (``(n,)`` or None), write the gradient at ``p`` into
        ``grad_p`` and return the gradient at ``x``."""
        x_leaf, p_leaf, u, ld = saved
        g_ld = torch.zeros_like(ld) if g_log_det is None else g_log_det.expand_as(ld)
        g_x, g_p = torch.autograd.grad([u, ld], [x_leaf, p_leaf], [g, g_ld])
        grad_p.copy_(g_p)
        return g_x

    # -- fused scoring pass --------------------------------------------------
    def eval_prepare(self, out_block: torch.Tensor, order: torch.Tensor, d: int):
        """The MADE's last ``[W^T ; b]`` block as scoring should use it and
        the order of its output rows, for inputs held in ``order``.  By
        default parameter-major (row ``j d + k`` is parameter ``j`` of the
        ``k``-th feature of ``order``), the block unchanged."""
        rows = (order[None, :] + d * torch.arange(self.n_params)[:, None]).reshape(-1)
        return out_block, rows

    def eval_into(self, x, p, out, log_det) -> None:
        """Score: ``u`` into ``out`` and the rows' log-dets added to
        ``log_det``, from ``p`` laid out by :meth:`eval_prepare`."""
        self.forward_into(x, p, out, log_det, keep=False)


class Composed(ElementwiseTransform):
    """``u = outer(inner(x))``; the parameters are ``outer``'s, then ``inner``'s.

    Parameters
    ----------
    inner, outer : ElementwiseTransform
    """

    def __init__(self, inner: ElementwiseTransform, outer: ElementwiseTransform):
        self.inner = inner
        self.outer = outer
        self.n_params = inner.n_params + outer.n_params

    def settings(self):
        return self.inner.signature() + self.outer.signature()

    def _split(self, p, x):
        m = self.outer.n_params * (x.shape[0] if x.dim() == 2 else 1)  # (d, n) or one feature (n,)
        return p[:m], p[m:]

    def apply(self, x, p):
        p_outer, p_inner = self._split(p, x)
        z, ld_inner = self.inner.apply(x, p_inner)
        u, ld_outer = self.outer.apply(z, p_outer)
        return u, ld_inner + ld_outer

    def invert(self, u, p):
        p_outer, p_inner = self._split(p, u)
        return self.inner.invert(self.outer.invert(u, p_outer), p_inner)

    def forward_into(self, x, p, out, log_det, keep):
        p_outer, p_inner = self._split(p, x)
        z = torch.empty_like(x)
        inner = self.inner.forward_into(x, p_inner, z, log_det, keep)
        outer = self.outer.forward_into(z, p_outer, out, log_det, keep)
        return (inner, outer) if keep else None

    def backward(self, saved, g, g_log_det, grad_p):
        inner, outer = saved
        grad_outer, grad_inner = self._split(grad_p, g)
        g_z = self.outer.backward(outer, g, g_log_det, grad_outer)
        return self.inner.backward(inner, g_z, g_log_det, grad_inner)
