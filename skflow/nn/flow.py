"""A normalizing flow: layers over a base distribution, and the MAF builder."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

from .bases import GaussianMixtureBase, MADEMixture, StandardNormal
from .fused import FlatParameters, FlowFunction, ScoringPlan
from .layers import (AUTOREGRESSIVE_TRANSFORMS, BatchNormTransform, ConditionalGaussianAffine,
                     LowerTriangularAffine)
from .made import check_context
from .threads import intra_op_threads, threads_for_rows

__all__ = ["BASES", "Flow", "build_maf", "layer_orders"]

#: name -> factory(n_features, context_features, generator, n_components,
#: hidden_sizes, activation) of a base distribution: every base
#: ``build_maf(base=...)`` and the estimators' ``base`` know (a new one is
#: one entry).
BASES = {
    "normal": lambda n_features, context_features, generator, **_: StandardNormal(n_features),
    "made_mog": lambda n_features, context_features, generator, **options: MADEMixture(
        n_features, context_features=context_features, generator=generator, **options),
    # set by a start (skflow.estimators' init="gaussian_mixture"), not trained from this state
    "gaussian_mixture": lambda n_features, context_features, generator, n_components=2, **_: GaussianMixtureBase(
        n_features, n_components),
}


class Flow(nn.Module):
    """A chain of bijective layers over a base distribution.

    ``transforms[0]`` is applied to the data first; the last one's output is
    the base variable ``u``, whose density is ``base``.

    Parameters
    ----------
    transforms : sequence of nn.Module
        Each has ``forward(x[, context]) -> (u, log_abs_det)`` and
        ``inverse(u[, context]) -> x``; the context argument is passed only
        when there is one.  Layers with a ``fused_kernel`` method run in the
        fused pass (:mod:`skflow.nn.fused`).
    n_features : int
        Dimension of the data.
    base : nn.Module, optional
        The base distribution (:mod:`skflow.nn.bases`); a standard normal if None.
    context_features : int, default=0
        Width of the context ``c`` of a conditional flow ``p(x | c)``.

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

    def __init__(self, transforms: Sequence[nn.Module], n_features: int, base: nn.Module | None = None,
                 context_features: int = 0):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.base = StandardNormal(n_features) if base is None else base
        self.n_features = n_features
        self.context_features = context_features

    # ----------------------------------------------------------- segments
    def _kernels(self, n_rows: int) -> list:
        return [t.fused_kernel(n_rows) if hasattr(t, "fused_kernel") else None for t in self.transforms]

    def segments(self, n_rows: int = 2) -> list[tuple[tuple[int, ...], tuple | None]]:
        """Runs of consecutive layers: ``(layer indices, kernels)`` for a
        fused run, ``(layer indices, None)`` for layers without a kernel."""
        out = []
        for i, kernel in enumerate(self._kernels(n_rows)):
            if out and (out[-1][1] is None) == (kernel is None):
                out[-1][0].append(i)
                if kernel is not None:
                    out[-1][1].append(kernel)
            else:
                out.append(([i], None if kernel is None else [kernel]))
        return [(tuple(idx), None if ks is None else tuple(ks)) for idx, ks in out]

    def fusable(self) -> bool:
        """Whether every layer runs in the fused pass (one autograd node)."""
        kernels = self._kernels(2)
        return bool(kernels) and all(k is not None for k in kernels)

    def _check_context(self, context, n_rows):
        if self.context_features == 0:
            if context is not None:
                raise ValueError("this flow was built without context_features; got a context")
            return None
        return check_context(context, n_rows, self.context_features)

    @staticmethod
    def _call(layer, x, context):
        return layer(x) if context is None else layer(x, context)

    # -------------------------------------------------------------- passes
    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Map data to the base space; return ``(u, sum of log-dets)``.

        Each run of layers with kernels is one hand-written autograd node
        (:class:`~skflow.nn.fused.FlowFunction`); layers without one, and
        ``torch.compile`` tracing (which fuses the reference operations
        itself), go through their modules.
        """
        context = self._check_context(context, x.shape[0])
        if torch.compiler.is_compiling():
            return self.forward_reference(x, context)
        flats = self.__dict__.get("_flat_parameters") or {}
        log_det = None
        for layers, kernels in self.segments(x.shape[0]):
            if kernels is None:
                for i in layers:
                    x, ld = self._call(self.transforms[i], x, context)
                    log_det = ld if log_det is None else log_det + ld
                continue
            flat = flats.get(layers)
            if flat is not None:
                x, ld = FlowFunction.apply(x, context, kernels, flat, flat.tensor)
            else:
                x, ld = FlowFunction.apply(x, context, kernels, None, *[p for k in kernels for p in k.params])
            log_det = ld if log_det is None else log_det + ld
        return x, (x.new_zeros(x.shape[0]) if log_det is None else log_det)

    def forward_reference(self, x: torch.Tensor, context: torch.Tensor | None = None):
        """:meth:`forward` through autograd, layer by layer (the readable definition)."""
        context = self._check_context(context, x.shape[0])
        log_det = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, ld = self._call(t, x, context)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Map base samples back to data space."""
        context = self._check_context(context, u.shape[0])
        for t in reversed(self.transforms):
            u = t.inverse(u) if context is None else t.inverse(u, context)
        return u

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Log-density of each row of ``x`` (given the rows of ``context``).

        In eval mode without gradients (scoring), flows whose layers all
        have kernels take a dedicated path that prepares every layer once
        (kept while parameters and statistics are unchanged) and streams the
        rows through reused, cache-sized buffers.  Scoring fewer than
        :data:`~skflow.nn.threads.SMALL_CALL_ROWS` rows runs in one thread
        (the thread policy of every scoring and sampling call is here).
        """
        context = self._check_context(context, x.shape[0])
        if not self.training and not torch.is_grad_enabled() and not torch.compiler.is_compiling():
            with intra_op_threads(threads_for_rows(x.shape[0])):
                return self._score(x, context)
        u, log_det = self(x, context)
        return self.base.log_prob(u, context) + log_det

    def _score(self, x, context):
        """:meth:`log_prob` in eval mode without gradients."""
        kernels = self._kernels(x.shape[0])
        # Layers without kernels at the front (a conditional Gaussian start)
        # run as modules; the rest through the plan.
        first = next((i for i, k in enumerate(kernels) if k is not None), len(kernels))
        kernels = kernels[first:]
        if kernels and all(k is not None for k in kernels):
            log_det = 0.0
            for t in self.transforms[:first]:
                x, ld = self._call(t, x, context)
                log_det = log_det + ld
            plan = self.__dict__.get("_scoring_plan")
            if plan is None or not plan.matches(kernels):
                plan = ScoringPlan(kernels, self.n_features)
                # One assignment: a concurrent caller sees the old plan or the new one.
                self.__dict__["_scoring_plan"] = plan
            return plan.log_prob(x, self.base, context) + log_det
        u, log_det = self(x, context)
        return self.base.log_prob(u, context) + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               context: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` samples, one per row of ``context`` if given (call ``eval()`` first)."""
        p = next(self.parameters())
        # Noise is drawn on the CPU so a seed gives the same samples on any device.
        return self.from_noise(self.base.draw_noise(n, generator, p.dtype), context)

    @torch.no_grad()
    def from_noise(self, noise: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Samples from the rows of ``self.base.draw_noise(n, ...)`` (one per
        row of ``context`` if given); a noise row gives the same sample
        whatever rows come with it."""
        p = next(self.parameters())
        context = self._check_context(context, noise.shape[0])
        with intra_op_threads(threads_for_rows(noise.shape[0])):
            u = self.base.from_noise(noise, context)
            return self.inverse(u.to(p.device), context)

    # ----------------------------------------------------- flat parameters
    @contextlib.contextmanager
    def flat_parameters(self):
        """Within the block, train the tensors this yields instead of
        :meth:`parameters`: one flat tensor per fused run of layers (see
        :class:`~skflow.nn.fused.FlatParameters`), then the parameters of
        layers without kernels and of the base; yields None if no layer has
        a kernel."""
        fused = [(layers, kernels) for layers, kernels in self.segments(2) if kernels is not None]
        if not fused:
            yield None
            return
        flats = {layers: FlatParameters(kernels) for layers, kernels in fused}
        self.__dict__["_flat_parameters"] = flats
        try:
            in_flat = {id(p) for flat in flats.values() for p in flat.params}
            yield [flat.tensor for flat in flats.values()] + [
                p for p in self.parameters() if id(p) not in in_flat]
        finally:
            del self.__dict__["_flat_parameters"]
            self.__dict__.pop("_scoring_plan", None)
            for flat in flats.values():
                flat.release()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_scoring_plan", None)  # prepared weights; rebuilt on demand
        return state

    # -------------------------------------------------------- statistics
    def has_statistics(self) -> bool:
        """Whether any layer keeps data statistics (batch norm) for :meth:`refit_batch_norm`."""
        return any(hasattr(t, "set_statistics") for t in self.transforms)

    @torch.no_grad()
    def refit_batch_norm(self, x: torch.Tensor, chunk_size: int = 16384, overwrite: bool = False,
                         context: torch.Tensor | None = None) -> None:
        """Set every batch-norm layer's statistics to those of ``x``.

        Done after training (as in the MAF paper's code), it makes densities
        independent of the last mini-batches seen.  ``x`` is pushed through the
        flow once, layer by layer, in one buffer the size of ``x`` that each
        layer overwrites chunk by chunk (rows are independent in eval mode);
        the moments are accumulated in float64.  With ``overwrite`` that
        buffer is ``x`` itself (for a copy the caller no longer needs).
        """
        if not self.has_statistics() or not len(x):
            return
        context = self._check_context(context, x.shape[0])
        was_training = self.training
        self.eval()
        h = x
        for t in self.transforms:
            if hasattr(t, "set_statistics"):
                t.set_statistics(*_moments(h, chunk_size))
            # never overwrite the caller's data unless allowed
            out = torch.empty_like(x) if h is x and not overwrite else h
            for start in range(0, len(h), chunk_size):
                c = None if context is None else context[start : start + chunk_size]
                out[start : start + chunk_size] = self._call(t, h[start : start + chunk_size], c)[0]
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


def _gaussian_start_layers(gaussian_start, n_features: int, context_features: int) -> list:
    if gaussian_start in (False, None):
        return []
    if gaussian_start is True:
        return [LowerTriangularAffine(n_features)]
    if gaussian_start not in ("linear", "grouped"):
        raise ValueError(f"gaussian_start must be a bool, 'linear' or 'grouped', got {gaussian_start!r}")
    if not context_features:
        raise ValueError(f"gaussian_start={gaussian_start!r} needs context_features > 0")
    groups = 1 if gaussian_start == "linear" else context_features
    return [ConditionalGaussianAffine(n_features, context_features, groups)]


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
            if generator is None:
                generator = torch.Generator()
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
    batch_norm: bool = False,
    order="reverse",
    log_scale_bound: float | None = 5.0,
    degree_mode: str = "sequential",
    batch_norm_momentum: float = 0.05,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    transform: str = "affine",
    n_bins: int = 8,
    tail_bound: float = 5.0,
    base: str = "normal",
    n_components: int = 10,
    context_features: int = 0,
    gaussian_start: bool | str = False,
) -> Flow:
    """A Masked Autoregressive Flow (Papamakarios et al. 2017).

    Each of the ``n_flows`` autoregressive layers (``transform``, a name in
    :data:`skflow.nn.layers.AUTOREGRESSIVE_TRANSFORMS`; ``log_scale_bound``
    applies to "affine", ``n_bins`` and ``tail_bound`` to "spline", the
    rational-quadratic spline layer, and all three to "affine_spline", the
    spline after an autoregressive shift and scale) is followed by a batch-norm bijector when
    ``batch_norm`` is true, over the ``base`` distribution (a name in
    :data:`BASES`: "normal", or "made_mog", the MAF paper's MADE
    mixture of ``n_components`` Gaussians with the layers' hidden sizes and
    activation).  With ``context_features`` the flow is conditional,
    ``p(x | c)``.  Weights are drawn from ``generator`` (a generator with
    torch's default seed if None); the global torch RNG is not touched.
    Every layer starts as the identity, so an untrained flow is its base.
    With ``gaussian_start`` a :class:`~skflow.nn.LowerTriangularAffine`
    comes first (``flow.transforms[0]``); its ``set_gaussian(mean, cov)``
    makes the untrained flow exactly that Gaussian.  A conditional flow may
    start at a conditional Gaussian instead, with a
    :class:`~skflow.nn.ConditionalGaussianAffine` first:
    ``gaussian_start="linear"`` (mean linear in the context, one covariance;
    ``set_linear_gaussian``) or ``"grouped"`` (one Gaussian per column of a
    one-hot context; ``set_group_gaussians``).

    Examples
    --------
    >>> import torch
    >>> flow = build_maf(4, n_flows=3, hidden_sizes=(16, 16), generator=torch.Generator().manual_seed(0))
    >>> len(flow.transforms)  # three MAF layers (batch_norm=True adds one after each)
    3
    """
    if n_features < 1:
        raise ValueError("n_features must be >= 1")
    if transform not in AUTOREGRESSIVE_TRANSFORMS:
        raise ValueError(f"transform must be one of {sorted(AUTOREGRESSIVE_TRANSFORMS)}, got {transform!r}")
    if base not in BASES:
        raise ValueError(f"base must be one of {sorted(BASES)}, got {base!r}")
    if generator is None:
        generator = torch.Generator()
    layer_type = AUTOREGRESSIVE_TRANSFORMS[transform]
    offered = dict(log_scale_bound=log_scale_bound, n_bins=n_bins, tail_bound=tail_bound)
    options = {name: offered[name] for name in layer_type.options}
    make_layer = layer_type.make
    transforms = _gaussian_start_layers(gaussian_start, n_features, context_features)
    for layer_order in layer_orders(n_features, n_flows, order, generator):
        layer = make_layer(n_features, hidden_sizes, layer_order, activation, degree_mode, generator,
                           context_features, **options)
        layer.made.reset_parameters(generator)
        transforms.append(layer)
        if batch_norm:
            transforms.append(BatchNormTransform(n_features, momentum=batch_norm_momentum))
    base_distribution = BASES[base](n_features, context_features, generator, n_components=n_components,
                                    hidden_sizes=hidden_sizes, activation=activation)
    flow = Flow(transforms, n_features, base_distribution, context_features)
    return flow.to(dtype)
