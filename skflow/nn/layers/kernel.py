"""The protocol between a layer type and the fused driver (:mod:`skflow.nn.fused`).

A layer module takes part in the fused pass by returning a :class:`LayerKernel`
from ``fused_kernel(n_rows)`` (None where it cannot, e.g. an activation the
kernel does not know).  Layers without a kernel still work: the driver runs
them as ordinary autograd segments between fused segments.

The driver holds activations transposed, ``(features, rows)``; in the
training pass each activation is a ``(width + 1, rows)`` block whose last row
is ones (it carries the biases through the matrix products), in the scoring
pass the ones row comes first.  A kernel provides, for one layer:

* parameter layout: :meth:`slots` (shape and 0/1 mask of every parameter
  block), :meth:`pack` / :meth:`param_views` / :meth:`unpack_grads` between
  the module's parameters and those blocks;
* training: :meth:`activation_sizes`, :meth:`forward`, :meth:`backward`;
* scoring: :meth:`eval_prepare`, :meth:`eval_buffers`, :meth:`eval_step`;
* cache keys: :meth:`signature`, :meth:`plan_tensors`.

The one-pass inverse (sampling) lives on the layer module itself
(``inverse(u, context)``), which needs no driver.
"""

from __future__ import annotations

import torch

from .._compat import relu_backward, tanh_backward

__all__ = ["LayerKernel", "activation_", "activation_backward", "block"]

FUSED_ACTIVATIONS = frozenset({"tanh", "relu"})



def activation_(a: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply a fused activation in place."""
    if activation == "tanh":
        # tanh(a) = 2 sigmoid(2a) - 1: torch's vectorised sigmoid is several
        # times faster than its tanh (benchmarks/roofline.py prints both
        # rates), and the two agree to a few float32 ulps.
        return a.mul_(2.0).sigmoid_().lerp_(a.new_ones(()), -1.0)
    return a.relu_()


def activation_backward(grad: torch.Tensor, out: torch.Tensor, activation: str) -> torch.Tensor:
    """Gradient through a fused activation, from its output (tanh, relu)."""
    if activation == "tanh":
        return tanh_backward(grad, out)
    return relu_backward(grad, out)


def block(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A linear layer's weight and bias as one ``(in + 1, out)`` block ``[W^T ; b]``."""
    return torch.cat([w.t(), b[None, :]], 0)


class LayerKernel:
    """The fused pieces of one layer (see the module docstring).

    Attributes
    ----------
    params : list of Tensor
        The module's parameters, in the order :meth:`pack` reads them.
    """

    params: list

    # -- parameter layout ------------------------------------------------
    def slots(self) -> list[tuple[torch.Size, torch.Tensor | None]]:
        """``(shape, mask)`` of every parameter block; ``mask`` is a 0/1
        tensor of that shape (the driver keeps masked entries at zero) or None."""
        raise NotImplementedError

    def pack(self, params) -> list[torch.Tensor]:
        """The parameter blocks from the parameters (masked entries zeroed; new tensors)."""
        raise NotImplementedError

    def param_views(self, blocks) -> list[torch.Tensor]:
        """Each parameter as a view of ``blocks`` (same order as :attr:`params`)."""
        raise NotImplementedError

    def unpack_grads(self, block_grads) -> list[torch.Tensor]:
        """Each parameter's gradient from the (masked) block gradients."""
        raise NotImplementedError

    # -- training pass ---------------------------------------------------
    def activation_sizes(self, d: int) -> list[int]:
        """Rows of every activation :meth:`forward` takes from the workspace, its output last."""
        raise NotImplementedError

    def forward(self, state, h, blocks, keep: bool):
        """Map the activation ``h = (full, body)`` forwards.  Takes its
        activations from ``state.take()``, adds its log-det to
        ``state.log_det`` (or a per-layer constant by
        ``state.add_constant_log_det``); returns ``(output activation,
        saved)`` where ``saved`` (only when ``keep``) is what
        :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, state, saved, g, blocks, grad_blocks) -> torch.Tensor:
        """Given ``g``, the loss gradient at this layer's output (``(d, n)``),
        write the block gradients into ``grad_blocks`` and return the
        gradient at its input (the driver sets ``state.need_input_grad``)."""
        raise NotImplementedError

    # -- scoring ---------------------------------------------------------
    def eval_prepare(self, blocks, order: torch.Tensor):
        """Prepare for scoring.  ``order`` (CPU) is the feature held at each
        row position on entry; returns ``(step, order on exit, constant
        log-det)``."""
        raise NotImplementedError

    def eval_buffers(self, step) -> list[tuple[object, int]]:
        """``(key, width)`` of the scratch activations :meth:`eval_step` uses
        (shared between layers by key)."""
        return []

    def eval_step(self, step, h, other, log_det, view, m, context):
        """Score one chunk of ``m`` rows: ``h`` holds the input (ones row
        first), ``other`` a free buffer of the same shape; add the log-det
        to ``log_det``; return ``(output, free buffer)``.  ``view(key,
        width, m)`` gives a scratch activation; ``context`` is the chunk's
        ``(1 + c, m)`` context or None."""
        raise NotImplementedError

    # -- cache keys ------------------------------------------------------
    def signature(self) -> tuple:
        """Everything static the prepared scoring plan depends on."""
        raise NotImplementedError

    def plan_tensors(self) -> list[torch.Tensor]:
        """Every tensor the prepared scoring plan depends on."""
        return list(self.params)
