"""Adam for the handful of flat tensors a fit trains.

``torch.optim.Optimizer`` imports ``torch._dynamo`` the first time one is
built, which took 1.8 s of a process's first ``fit`` (a 300-row fit takes
0.3-0.5 s).  This optimiser calls the same fused kernel that
``torch.optim.Adam(fused=True)`` runs, so the updates are bit-identical to
it, without that import; where the kernel is missing (other devices, other
torch builds) it computes the same update with plain tensor arithmetic.
"""

from __future__ import annotations

import math

import torch

from ._compat import fused_adam_

__all__ = ["Adam"]


class Adam:
    """Adam (Kingma and Ba, 2015) with L2 weight decay added to the gradient.

    The update of ``torch.optim.Adam(params, lr, betas, eps, weight_decay)``
    with its defaults (no AMSGrad, not maximising).  ``lr`` may be changed
    between steps.  ``state[p]`` holds the moments of parameter ``p``
    (``"exp_avg"``, ``"exp_avg_sq"``) and its ``"step"`` count.

    Parameters
    ----------
    params : iterable of Tensor
        The tensors to train; those without ``requires_grad`` are left out.
    lr : float, default=1e-3
        Learning rate.
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates of the first and second moment estimates.
    eps : float, default=1e-8
        Added to the second moment's square root in the denominator.
    weight_decay : float, default=0.0
        L2 penalty: ``weight_decay * p`` is added to each gradient.

    Examples
    --------
    >>> import torch
    >>> w = torch.ones(3, requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> w.sum().backward()
    >>> opt.step()
    >>> w.detach()
    tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.state = {}
        for p in self.params:
            self.state[p] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }

    def moments(self) -> list:
        """Copies of each parameter's ``(step, exp_avg, exp_avg_sq)``, in order:
        what :meth:`load_moments` takes to resume on the same tensors' successors."""
        return [tuple(self.state[p][k].clone() for k in ("step", "exp_avg", "exp_avg_sq")) for p in self.params]

    def load_moments(self, moments: list) -> None:
        """Continue from :meth:`moments` of an optimiser of tensors of the same shapes."""
        if len(moments) != len(self.params) or any(
                m[1].shape != p.shape for m, p in zip(moments, self.params)):
            raise ValueError("the saved optimiser moments do not match these parameters")
        for p, (step, exp_avg, exp_avg_sq) in zip(self.params, moments):
            state = self.state[p]
            state["step"].copy_(step)
            state["exp_avg"].copy_(exp_avg)
            state["exp_avg_sq"].copy_(exp_avg_sq)

    def zero_grad(self) -> None:
        """Drop the gradients (``grad = None``, as ``set_to_none=True`` does)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        for p in self.params:
            if p.grad is not None:
                self._update(p, p.grad, self.state[p])

    def _update(self, p, grad, state) -> None:
        beta1, beta2 = self.betas
        step = state["step"]
        step += 1
        if fused_adam_(p, grad, state["exp_avg"], state["exp_avg_sq"], step, lr=self.lr, beta1=beta1,
                       beta2=beta2, weight_decay=self.weight_decay, eps=self.eps):
            return
        t = float(step)
        if self.weight_decay:
            grad = grad.add(p, alpha=self.weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.sqrt().div_(math.sqrt(1 - beta2**t)).add_(self.eps)
        p.addcdiv_(exp_avg, denom, value=-self.lr / (1 - beta1**t))
