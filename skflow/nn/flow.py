"""A normalizing flow over a standard-normal base, and the MAF builder."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
from torch import nn

from ._fused import FlatParameters, FlowFunction, eval_log_prob
from .transforms import BatchNormTransform, MaskedAffineAutoregressive

__all__ = ["Flow", "build_maf", "layer_orders"]

_LOG_2PI = math.log(2 * math.pi)


class Flow(nn.Module):
    """A chain of bijective transforms over a standard normal base.

    ``transforms[0]`` is applied to the data first; the last one's output is
    the base variable ``u ~ N(0, I)``.

    Parameters
    ----------
    transforms : sequence of nn.Module
        Each has ``forward(x) -> (u, log_abs_det)`` and ``inverse(u) -> x``.
    n_features : int

    Examples
    --------
    >>> import torch
    >>> from skflow.nn import build_maf
    >>> flow = build_maf(2, n_flows=2, hidden_sizes=(8,)).eval()
    >>> flow.log_prob(torch.zeros(1, 2))  # an untrained flow is a standard normal
    tensor([-1.8379], grad_fn=<AddBackward0>)
    >>> flow.sample(3, torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2])
    """

    def __init__(self, transforms: Sequence[nn.Module], n_features: int):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.n_features = n_features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map data to the base space; return ``(u, sum of log-dets)``.

        Flows made only of MAF (tanh or relu) and batch-norm layers run as one
        hand-written autograd node (:mod:`skflow.nn._fused`); others, and
        ``torch.compile`` tracing (which fuses the reference operations
        itself), go through :meth:`forward_reference`.
        """
        specs = None if torch.compiler.is_compiling() else self._fused_specs(x.shape[0])
        if specs is None:
            return self.forward_reference(x)
        flat = self.__dict__.get("_flat_parameters")
        if flat is not None:
            return FlowFunction.apply(x, specs, flat, flat.tensor)
        return FlowFunction.apply(x, specs, None, *self.fused_parameters())

    def fused_parameters(self) -> list[torch.Tensor]:
        """Every parameter, in the order the fused pass takes them."""
        return [p for t in self.transforms for p in t.fused_parameters()]

    def fusable(self) -> bool:
        """Whether :meth:`forward` runs as one hand-written autograd node."""
        return self._fused_specs(2) is not None

    @contextlib.contextmanager
    def flat_parameters(self):
        """Within the block, train the single tensor this yields instead of
        :meth:`parameters` (see :class:`~skflow.nn._fused.FlatParameters`);
        yields None if the flow is not :meth:`fusable`."""
        if not self.fusable():
            yield None
            return
        flat = FlatParameters(self._fused_specs(2), self.fused_parameters())
        self.__dict__["_flat_parameters"] = flat
        try:
            yield flat.tensor
        finally:
            del self.__dict__["_flat_parameters"]
            self.__dict__.pop("_scoring_plan", None)
            flat.release()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_scoring_plan", None)  # prepared weights; rebuilt on demand
        return state

    def _fused_specs(self, n_rows: int):
        specs = []
        for t in self.transforms:
            if isinstance(t, MaskedAffineAutoregressive):
                spec = t.fused_spec()
            elif isinstance(t, BatchNormTransform):
                spec = t.fused_spec(n_rows)
            else:
                spec = None
            if spec is None:
                return None
            specs.append(spec)
        return tuple(specs) if specs else None

    def forward_reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` through autograd, layer by layer (the readable definition)."""
        log_det = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, ld = t(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """Map base samples back to data space."""
        for t in reversed(self.transforms):
            u = t.inverse(u)
        return u

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of each row of ``x``.

        In eval mode without gradients (scoring) fusable flows take a
        dedicated path that prepares every layer once and streams the rows
        through reused, cache-sized buffers.
        """
        if not self.training and not torch.is_grad_enabled() and not torch.compiler.is_compiling():
            specs = self._fused_specs(x.shape[0])
            if specs is not None:
                # Not while training on flat parameters: optimiser steps on
                # the flat tensor do not bump the parameters' own versions.
                flat = "_flat_parameters" in self.__dict__
                cache = None if flat else self.__dict__.setdefault("_scoring_plan", {})
                return eval_log_prob(x, specs, self.fused_parameters(), cache=cache)
        u, log_det = self(x)
        base = -0.5 * (u.square().sum(-1) + self.n_features * _LOG_2PI)
        return base + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` samples (call ``eval()`` first for a proper bijection)."""
        p = next(self.parameters())
        # Noise is drawn on the CPU so a seed gives the same samples on any device.
        u = torch.randn(n, self.n_features, generator=generator, dtype=p.dtype)
        return self.inverse(u.to(p.device))

    @torch.no_grad()
    def refit_batch_norm(self, x: torch.Tensor, chunk_size: int = 16384, overwrite: bool = False) -> None:
        """Set every batch-norm layer's statistics to those of ``x``.

        Done after training (as in the MAF paper's code), it makes densities
        independent of the last mini-batches seen.  ``x`` is pushed through the
        flow once, layer by layer, in one buffer the size of ``x`` that each
        layer overwrites chunk by chunk (rows are independent in eval mode);
        the moments are accumulated in float64.  With ``overwrite`` that
        buffer is ``x`` itself (for a copy the caller no longer needs).
        """
        if not any(isinstance(t, BatchNormTransform) for t in self.transforms) or not len(x):
            return
        was_training = self.training
        self.eval()
        h = x
        for t in self.transforms:
            if isinstance(t, BatchNormTransform):
                t.set_statistics(*_moments(h, chunk_size))
            # never overwrite the caller's data unless allowed
            out = torch.empty_like(x) if h is x and not overwrite else h
            for start in range(0, len(h), chunk_size):
                out[start : start + chunk_size] = t(h[start : start + chunk_size])[0]
            h = out
        self.train(was_training)


def _moments(x: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Column mean and (biased) variance in float64, two passes over chunks."""
    total = x.new_zeros(x.shape[1], dtype=torch.float64)
    for c in x.split(chunk_size):
        total += c.double().sum(0)
    mean = total / len(x)
    sq = torch.zeros_like(total)
    for c in x.split(chunk_size):
        sq += (c.double() - mean).square().sum(0)
    return mean, sq / len(x)


def layer_orders(n_features: int, n_flows: int, order="reverse", generator=None):
    """Autoregressive order of each MAF layer.

    ``"reverse"`` alternates the natural and the reversed order (the MAF
    paper), ``"identity"`` keeps the natural order everywhere, ``"random"``
    draws a permutation per layer; a sequence of ``n_flows`` permutations is
    used as given.

    Examples
    --------
    >>> layer_orders(3, 2)
    [[0, 1, 2], [2, 1, 0]]
    """
    natural = list(range(n_features))
    if isinstance(order, str):
        if order == "reverse":
            return [natural if k % 2 == 0 else natural[::-1] for k in range(n_flows)]
        if order == "identity":
            return [natural] * n_flows
        if order == "random":
            return [torch.randperm(n_features, generator=generator).tolist() for _ in range(n_flows)]
        raise ValueError(f"order must be 'reverse', 'identity', 'random' or a list, got {order!r}")
    orders = [list(o) for o in order]
    if len(orders) != n_flows:
        raise ValueError(f"an explicit order needs {n_flows} permutations, got {len(orders)}")
    return orders


def build_maf(
    n_features: int,
    n_flows: int = 5,
    hidden_sizes: Sequence[int] = (100, 100),
    activation: str = "tanh",
    batch_norm: bool = True,
    order="reverse",
    log_scale_bound: float | None = 5.0,
    degree_mode: str = "sequential",
    batch_norm_momentum: float = 0.05,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Flow:
    """A Masked Autoregressive Flow (Papamakarios et al. 2017).

    Each of the ``n_flows`` MAF layers is followed by a batch-norm bijector
    when ``batch_norm`` is true.  Weights are drawn from ``generator``; the
    global torch RNG is not touched.  Every layer starts as the identity, so
    an untrained flow is a standard normal.

    Examples
    --------
    >>> import torch
    >>> flow = build_maf(4, n_flows=3, hidden_sizes=(16, 16), generator=torch.Generator().manual_seed(0))
    >>> len(flow.transforms)  # MAF, batch norm, MAF, batch norm, MAF, batch norm
    6
    """
    if n_features < 1:
        raise ValueError("n_features must be >= 1")
    transforms = []
    for layer_order in layer_orders(n_features, n_flows, order, generator):
        maf = MaskedAffineAutoregressive(
            n_features, hidden_sizes, layer_order, activation, log_scale_bound,
            degree_mode, generator,
        )
        maf.made.reset_parameters(generator)
        transforms.append(maf)
        if batch_norm:
            transforms.append(BatchNormTransform(n_features, momentum=batch_norm_momentum))
    return Flow(transforms, n_features).to(dtype)
