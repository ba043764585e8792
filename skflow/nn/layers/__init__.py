"""Layer types of a flow, one module each: the reference ``nn.Module`` and
its fused kernel (:mod:`skflow.nn.layers.kernel`).

``AUTOREGRESSIVE_TRANSFORMS`` is the registry :func:`skflow.nn.build_maf`
builds from and the estimators' ``layer_type`` accepts: a new autoregressive
layer type is one module plus one :func:`register_layer_type` call.
"""

from dataclasses import dataclass
from typing import Callable

from .affine import AffineTransform, MaskedAffineAutoregressive, soft_clamp
from .autoregressive import AutoregressiveKernel, MaskedAutoregressive
from .batch_norm import BatchNormKernel, BatchNormTransform
from .conditional_linear import ConditionalGaussianAffine
from .kernel import LayerKernel
from .linear import LowerTriangularAffine, LowerTriangularKernel
from .permutation import Permutation, PermutationKernel
from .elementwise import Composed, ElementwiseTransform
from .spline import MaskedRQSplineAutoregressive, SplineTransform, rational_quadratic_spline


def _affine(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
            log_scale_bound=5.0):
    return MaskedAffineAutoregressive(n_features, hidden_sizes, order, activation, log_scale_bound,
                                      degree_mode, generator, context_features)


def _spline(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
            n_bins=8, tail_bound=5.0):
    return MaskedRQSplineAutoregressive(n_features, hidden_sizes, order, activation, degree_mode, generator,
                                        context_features, n_bins, tail_bound)


def _affine_spline(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
                   n_bins=8, tail_bound=5.0, log_scale_bound=5.0):
    return MaskedRQSplineAutoregressive(n_features, hidden_sizes, order, activation, degree_mode, generator,
                                        context_features, n_bins, tail_bound, affine=True,
                                        log_scale_bound=log_scale_bound)


@dataclass(frozen=True)
class LayerType:
    """An autoregressive layer type: ``make(n_features, hidden_sizes, order,
    activation, degree_mode, generator, context_features, **options)`` builds
    one layer whose untrained state (zero MADE output layer) is the
    identity; ``options`` names the :func:`~skflow.nn.build_maf` options it
    takes (of ``log_scale_bound``, ``n_bins``, ``tail_bound``)."""

    make: Callable
    options: tuple[str, ...] = ()


#: name -> :class:`LayerType`: every layer type ``build_maf(transform=...)``
#: and the estimators' ``layer_type`` know.
AUTOREGRESSIVE_TRANSFORMS: dict[str, LayerType] = {
    "affine": LayerType(_affine, ("log_scale_bound",)),
    "spline": LayerType(_spline, ("n_bins", "tail_bound")),
    "affine_spline": LayerType(_affine_spline, ("n_bins", "tail_bound", "log_scale_bound")),
}


def register_layer_type(name: str, make: Callable, options=()) -> None:
    """Make ``name`` a layer type of :func:`~skflow.nn.build_maf` and of the
    estimators' ``layer_type`` (see :class:`LayerType`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a layer type needs a non-empty name, got {name!r}")
    AUTOREGRESSIVE_TRANSFORMS[name] = LayerType(make, tuple(options))

__all__ = [
    "AUTOREGRESSIVE_TRANSFORMS",
    "AffineTransform",
    "AutoregressiveKernel",
    "BatchNormKernel",
    "BatchNormTransform",
    "Composed",
    "ConditionalGaussianAffine",
    "ElementwiseTransform",
    "LayerKernel",
    "LayerType",
    "LowerTriangularAffine",
    "LowerTriangularKernel",
    "MaskedAffineAutoregressive",
    "MaskedAutoregressive",
    "MaskedRQSplineAutoregressive",
    "Permutation",
    "PermutationKernel",
    "SplineTransform",
    "rational_quadratic_spline",
    "register_layer_type",
    "soft_clamp",
]
