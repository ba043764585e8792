"""Every private torch call skflow makes, each with a public fallback.

A few of torch's private functions (underscore names and ``aten`` ops) make
the fused training pass faster: one kernel instead of several, results
written in place.  They may change or vanish between torch releases, so
each is looked up here once; where one is missing (or refuses its inputs)
the fallback computes the same values with public operations.
``tests/test_compat.py`` runs both paths against each other.
"""

from __future__ import annotations

import torch

__all__ = ["foreach_lerp_", "foreach_mul_", "fused_adam_", "relu_backward", "tanh_backward",
           "tanh_backward_into"]


def _aten(name: str, overload: str | None = None):
    try:
        op = getattr(torch.ops.aten, name)
        return getattr(op, overload) if overload else op
    except (AttributeError, RuntimeError):
        return None


_TANH_BACKWARD = _aten("tanh_backward")
_TANH_BACKWARD_OUT = _aten("tanh_backward", "grad_input")
_THRESHOLD_BACKWARD = _aten("threshold_backward")
_FUSED_ADAM = getattr(torch, "_fused_adam_", None)
_FOREACH_LERP = getattr(torch, "_foreach_lerp_", None)
_FOREACH_MUL = getattr(torch, "_foreach_mul_", None)


def tanh_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad * (1 - out**2)``: the gradient through ``out = tanh(x)``."""
    if _TANH_BACKWARD is not None:
        return _TANH_BACKWARD(grad, out)
    return grad * (1 - out * out)


def tanh_backward_into(grad: torch.Tensor, out: torch.Tensor, grad_input: torch.Tensor) -> torch.Tensor:
    """:func:`tanh_backward` written into ``grad_input`` (returned)."""
    if _TANH_BACKWARD_OUT is not None:
        return _TANH_BACKWARD_OUT(grad, out, grad_input=grad_input)
    return torch.mul(grad, 1 - out * out, out=grad_input)


def relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad`` where ``out > 0``, else 0: the gradient through ``out = relu(x)``."""
    if _THRESHOLD_BACKWARD is not None:
        return _THRESHOLD_BACKWARD(grad, out, 0)
    return torch.where(out > 0, grad, torch.zeros((), dtype=grad.dtype, device=grad.device))


def foreach_lerp_(targets: list, values: list, weight: float) -> None:
    """``t.lerp_(v, weight)`` for each pair, in one kernel where torch offers it."""
    if _FOREACH_LERP is not None:
        _FOREACH_LERP(targets, values, weight)
        return
    for t, v in zip(targets, values):
        t.lerp_(v, weight)


def foreach_mul_(tensors: list, others: list) -> None:
    """``t.mul_(o)`` for each pair, in one kernel where torch offers it."""
    if _FOREACH_MUL is not None:
        _FOREACH_MUL(tensors, others)
        return
    for t, o in zip(tensors, others):
        t.mul_(o)


def fused_adam_(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, weight_decay, eps) -> bool:
    """One Adam step of ``param`` in torch's fused kernel; False (nothing done)
    where the kernel is missing or refuses these tensors, so the caller runs
    its own update."""
    if _FUSED_ADAM is None or param.device.type not in ("cpu", "cuda"):
        return False
    try:
        _FUSED_ADAM([param], [grad], [exp_avg], [exp_avg_sq], [], [step], lr=lr, beta1=beta1, beta2=beta2,
                    weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    return True
