"""Layer types of a flow, one module each: the reference ``nn.Module`` and
its fused kernel (:mod:`skflow.nn.layers.kernel`).

``AUTOREGRESSIVE_TRANSFORMS`` is the registry :func:`skflow.nn.build_maf`
builds from: a new autoregressive layer type is one module here plus one
entry.
"""

from .affine import AffineKernel, MaskedAffineAutoregressive, soft_clamp
from .batch_norm import BatchNormKernel, BatchNormTransform
from .conditional_linear import ConditionalGaussianAffine
from .kernel import LayerKernel
from .linear import LowerTriangularAffine, LowerTriangularKernel
from .permutation import Permutation, PermutationKernel
from .spline import MaskedRQSplineAutoregressive, rational_quadratic_spline


def _affine(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
            log_scale_bound=5.0):
    return MaskedAffineAutoregressive(n_features, hidden_sizes, order, activation, log_scale_bound,
                                      degree_mode, generator, context_features)


def _spline(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
            n_bins=8, tail_bound=3.0):
    return MaskedRQSplineAutoregressive(n_features, hidden_sizes, order, activation, degree_mode, generator,
                                        context_features, n_bins, tail_bound)


def _affine_spline(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
                   n_bins=8, tail_bound=3.0, log_scale_bound=5.0):
    return MaskedRQSplineAutoregressive(n_features, hidden_sizes, order, activation, degree_mode, generator,
                                        context_features, n_bins, tail_bound, affine=True,
                                        log_scale_bound=log_scale_bound)


#: name -> factory(n_features, hidden_sizes, order, activation, degree_mode,
#: generator, context_features, **options) of an autoregressive layer whose
#: untrained state (zero MADE output layer) is the identity.
AUTOREGRESSIVE_TRANSFORMS = {"affine": _affine, "spline": _spline, "affine_spline": _affine_spline}

__all__ = [
    "AUTOREGRESSIVE_TRANSFORMS",
    "AffineKernel",
    "BatchNormKernel",
    "BatchNormTransform",
    "ConditionalGaussianAffine",
    "LayerKernel",
    "LowerTriangularAffine",
    "LowerTriangularKernel",
    "MaskedAffineAutoregressive",
    "MaskedRQSplineAutoregressive",
    "Permutation",
    "PermutationKernel",
    "rational_quadratic_spline",
    "soft_clamp",
]
