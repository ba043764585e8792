"""Masked linear layers and MADE (Germain et al. 2015).

Every unit carries a *degree*.  An input's degree is its position in the
autoregressive order (1..D).  A hidden unit of degree ``k`` may only see inputs
of degree ``<= k``, and an output of degree ``d`` only hidden units of degree
``< d``.  Output ``d`` therefore depends on inputs ``1..d-1`` alone, which is
what makes the Jacobian of an autoregressive transform triangular.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "MADE",
    "MADEWidthWarning",
    "MaskedLinear",
    "hidden_degrees",
    "check_context",
    "input_degrees",
]

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
}


class MADEWidthWarning(UserWarning):
    """A hidden layer is too narrow to carry every autoregressive dependency."""


def input_degrees(order: Sequence[int]) -> torch.Tensor:
    """Degrees of the inputs for a given autoregressive order.

    Parameters
    ----------
    order : sequence of int
        A permutation of ``range(D)``; ``order[0]`` is the feature generated
        first.

    Returns
    -------
    degrees : LongTensor of shape (D,)
        ``degrees[order[k]] == k + 1``.

    Examples
    --------
    >>> input_degrees([2, 0, 1]).tolist()
    [2, 3, 1]
    """
    order = torch.as_tensor(list(order), dtype=torch.long)
    n = order.numel()
    if n == 0 or sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of range({n}), got {order.tolist()}")
    degrees = torch.empty(n, dtype=torch.long)
    degrees[order] = torch.arange(1, n + 1)
    return degrees


def hidden_degrees(
    n_inputs: int,
    width: int,
    previous_min: int = 1,
    mode: str = "sequential",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Degrees of one hidden layer.

    ``sequential`` cycles through ``previous_min..D-1`` so every degree is
    represented as evenly as the width allows (the MAF paper's choice);
    ``random`` draws them uniformly (the original MADE paper).

    Examples
    --------
    >>> hidden_degrees(4, 5).tolist()
    [1, 2, 3, 1, 2]
    """
    # With a context (previous_min 0), a single input needs only degree-0 units.
    top = max(n_inputs - 1, min(previous_min, 1))
    low = min(previous_min, top)
    if mode == "sequential":
        return torch.arange(width) % (top - low + 1) + low
    if mode == "random":
        return torch.randint(low, top + 1, (width,), generator=generator)
    raise ValueError(f"hidden degree mode must be 'sequential' or 'random', got {mode!r}")


def check_context(context: torch.Tensor | None, n_rows: int, width: int) -> torch.Tensor:
    """``context`` as an ``(n_rows, width)`` tensor (one row is broadcast), or a clear ValueError."""
    if context is None:
        raise ValueError(f"this model is conditional: it needs a context of {width} features")
    if context.dim() == 1:
        context = context[None]
    if context.dim() != 2 or context.shape[1] != width:
        raise ValueError(f"context must have shape (n, {width}), got {tuple(context.shape)}")
    if context.shape[0] != n_rows:
        if context.shape[0] != 1:
            raise ValueError(f"context has {context.shape[0]} rows for {n_rows} inputs")
        context = context.expand(n_rows, -1)
    return context


def autograd_records(module: nn.Module, *tensors: torch.Tensor | None) -> bool:
    """Whether autograd would record an operation of ``module`` on ``tensors``."""
    return torch.is_grad_enabled() and (
        any(t is not None and t.requires_grad for t in tensors)
        or any(p.requires_grad for p in module.parameters())
    )


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask.

    Parameters
    ----------
    mask : Tensor of shape (out_features, in_features)
        Connectivity; stored as a buffer so it follows ``.to(device)`` and
        ``state_dict`` but is never trained.

    Examples
    --------
    >>> import torch
    >>> layer = MaskedLinear(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    >>> layer(torch.ones(3, 2)).shape
    torch.Size([3, 2])
    """

    def __init__(self, mask: torch.Tensor, bias: bool = True):
        out_features, in_features = mask.shape
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def reset_parameters(self) -> None:
        # nn.Linear would draw from the global RNG here; MADE.reset_parameters
        # initialises from a private generator instead.
        with torch.no_grad():
            self.weight.zero_()
            if self.bias is not None:
                self.bias.zero_()

    def masked_weight(self) -> torch.Tensor:
        """The effective weight, ``weight * mask``."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


class MADE(nn.Module):
    """Masked autoencoder: ``n_outputs_per_input`` outputs for each input.

    Parameters
    ----------
    n_inputs : int
        Dimension D.
    hidden_sizes : sequence of int
        Width of each hidden layer.  A layer narrower than ``D - 1`` cannot
        represent every degree and silently loses dependencies; this emits a
        :class:`MADEWidthWarning`.
    n_outputs_per_input : int
        Output ``j * D + i`` is the ``j``-th parameter of input ``i``.
    order : sequence of int, optional
        Autoregressive order, a permutation of ``range(D)``; identity if None.
    activation : {"tanh", "relu", "elu", "gelu", "silu"}
    degree_mode : {"sequential", "random"}
    generator : torch.Generator, optional
        Source of randomness for random degrees.
    context_features : int, default=0
        Width of an optional context (conditioning) input ``c``.  Its columns
        feed every unit of the first hidden layer, and hidden degrees then
        start at 0 (units that see the context alone), so every output,
        the first feature's included, may depend on all of ``c`` while
        staying autoregressive in ``x``.

    Examples
    --------
    >>> import torch
    >>> made = MADE(3, (8, 8), n_outputs_per_input=2)
    >>> made(torch.zeros(4, 3)).shape
    torch.Size([4, 6])
    """

    def __init__(
        self,
        n_inputs: int,
        hidden_sizes: Sequence[int],
        n_outputs_per_input: int = 2,
        order: Sequence[int] | None = None,
        activation: str = "tanh",
        degree_mode: str = "sequential",
        generator: torch.Generator | None = None,
        context_features: int = 0,
    ):
        super().__init__()
        if context_features < 0:
            raise ValueError(f"context_features must be >= 0, got {context_features}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        if not hidden_sizes:
            raise ValueError("MADE needs at least one hidden layer")
        self.n_inputs = n_inputs
        self.n_outputs_per_input = n_outputs_per_input
        self.context_features = context_features
        self.activation = activation
        self._act = ACTIVATIONS[activation]
        order = list(range(n_inputs)) if order is None else list(order)
        self.order = order
        in_deg = input_degrees(order)
        self.register_buffer("degrees", in_deg)

        # Degrees run 1..D-1, and from 0 with a context: one unit more.
        needed = n_inputs if context_features else n_inputs - 1
        narrow = [w for w in hidden_sizes if w < needed]
        if narrow:
            warnings.warn(
                f"MADE hidden layer width(s) {narrow} are smaller than the {needed} degrees "
                "they must carry; some autoregressive dependencies cannot be represented. "
                "Use hidden layers at least as wide as the number of features.",
                MADEWidthWarning,
                stacklevel=2,
            )

        layers = []
        prev = in_deg
        for width in hidden_sizes:
            # With a context, hidden units of degree 0 see only the context, so
            # that the first feature's outputs (degree 1) can depend on it too.
            low = 0 if context_features else int(prev.min())
            deg = hidden_degrees(n_inputs, width, low, degree_mode, generator)
            mask = deg[:, None] >= prev[None, :]
            if not layers and context_features:
                # Context columns come after the inputs and reach every first-layer unit.
                mask = torch.cat([mask, mask.new_ones(width, context_features)], 1)
            layer = MaskedLinear(mask)
            layer.register_buffer("degrees", deg)
            layers.append(layer)
            prev = deg
        out_deg = in_deg.repeat(n_outputs_per_input)
        layers.append(MaskedLinear(out_deg[:, None] > prev[None, :]))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.cat([x, self.check_context(context, x.shape[0])], -1) if self.context_features else x
        if not self.context_features and context is not None:
            raise ValueError("this MADE was built without context_features; got a context")
        for layer in self.layers[:-1]:
            h = self._act(layer(h))
        return self.layers[-1](h)

    @torch.no_grad()
    def invert_in_one_pass(self, step, n_rows: int, like: torch.Tensor,
                           context: torch.Tensor | None = None) -> torch.Tensor:
        """Generate the inputs one at a time, computing every hidden unit once.

        A hidden unit of degree ``m`` depends only on the inputs of degree
        ``<= m`` (and the context).  With units sorted by degree, the input
        of degree ``k`` follows from the last-layer units of degree ``< k``,
        and once it is known the units of degree ``k`` are computable, layer
        by layer: about one network pass in all instead of one per input.

        Parameters
        ----------
        step : callable
            ``step(k, params)`` returns the ``k``-th input in the
            autoregressive order (a ``(n_rows,)`` tensor) from that input's
            network outputs ``params``, ``(n_outputs_per_input, n_rows)``.
        n_rows : int
        like : Tensor
            Dtype and device of the result.
        context : Tensor of shape (n_rows, context_features), optional

        Returns
        -------
        x : Tensor of shape (n_rows, n_inputs)
        """
        n_in = self.n_inputs
        order = torch.argsort(self.degrees)  # position k-1 holds the input of degree k
        weights, biases, counts = [], [], []
        prev_perm = order
        grid = torch.arange(n_in + 1, device=like.device)
        for i, layer in enumerate(self.layers[:-1]):
            perm = torch.argsort(layer.degrees, stable=True)
            w = layer.masked_weight()[perm].to(like.dtype)
            bias = layer.bias[perm][:, None].to(like.dtype)
            if i == 0 and self.context_features:
                # The context's share of the first layer joins its bias, for all units at once.
                c = self.check_context(context, n_rows).to(like.dtype)
                bias = torch.addmm(bias, w[:, n_in:], c.t())
                w = w[:, :n_in]
            weights.append(w[:, prev_perm])
            biases.append(bias)
            # counts[l][m]: how many units of layer l have degree <= m
            counts.append(torch.searchsorted(layer.degrees[perm], grid, right=True).tolist())
            prev_perm = perm
        last = self.layers[-1]
        # rows[k]: the outputs of the input of degree k + 1 (output j of input i is row j * D + i)
        rows = order[:, None] + n_in * torch.arange(self.n_outputs_per_input, device=order.device)
        w_out = last.masked_weight()[:, prev_perm].to(like.dtype)[rows]
        b_out = last.bias.to(like.dtype)[rows]

        # Rows are columns here (features x rows): each newly computable block
        # of units, and each generated input, is a contiguous block of rows.
        x_sorted = like.new_empty(n_in, n_rows)
        hidden = [like.new_empty(w.shape[0], n_rows) for w in weights]
        for k in range(1, n_in + 1):
            available = k - 1  # inputs of degree <= k - 1 are known
            for h, (w, b, count) in enumerate(zip(weights, biases, counts)):
                lo, hi = (count[k - 2] if k >= 2 else 0), count[k - 1]
                if hi > lo:
                    inp = x_sorted if h == 0 else hidden[h - 1]
                    out = hidden[h][lo:hi]
                    torch.addmm(b[lo:hi], w[lo:hi, :available], inp[:available], out=out)
                    out.copy_(self._act(out))
                available = hi
            params = torch.addmm(b_out[k - 1][:, None], w_out[k - 1, :, :available], hidden[-1][:available])
            x_sorted[k - 1] = step(k - 1, params)
        x = like.new_empty(n_rows, n_in)
        x[:, order] = x_sorted.t()
        return x

    def check_context(self, context: torch.Tensor | None, n_rows: int) -> torch.Tensor:
        """``context`` as an ``(n_rows, context_features)`` tensor, or a clear error."""
        return check_context(context, n_rows, self.context_features)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None, zero_output=True):
        """Glorot-style uniform init drawn from ``generator`` (no global RNG).

        The fan-in counts only unmasked connections so masked layers keep a
        sensible activation scale.  With ``zero_output`` the last layer starts
        at zero, which makes the affine transform built on top the identity.
        """
        for layer in self.layers:
            fan_in = layer.mask.sum(1).clamp(min=1).mean().item()
            bound = math.sqrt(3.0 / fan_in)
            layer.weight.uniform_(-bound, bound, generator=generator)
            # Masked entries start (and, with masked gradients, stay) exactly 0.
            # Left non-zero, weight decay alone drives them towards 0 through
            # Adam, whose second moments then sink into float32 denormals, and
            # denormal arithmetic made late epochs over twice as slow.
            layer.weight.mul_(layer.mask)
            layer.bias.zero_()
        if zero_output:
            self.layers[-1].weight.zero_()
