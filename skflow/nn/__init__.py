"""Pure-PyTorch normalizing-flow building blocks (no scikit-learn inside).

``layers`` holds the layer types (the autoregressive skeleton with its
elementwise transforms, and the other layers, each a reference module and a
fused kernel), ``bases`` the base distributions, ``made`` the masked networks,
``flow`` the :class:`Flow` and :func:`build_maf`, ``fused`` the driver that
runs layers with kernels as one autograd node, ``training`` the fit loop.

>>> import torch
>>> from skflow.nn import build_maf
>>> flow = build_maf(3, n_flows=2, hidden_sizes=(16,), generator=torch.Generator().manual_seed(0))
>>> flow.log_prob(torch.zeros(1, 3)).shape
torch.Size([1])
"""

from .bases import BaseDistribution, MADEMixture, StandardNormal
from .ensemble import FlowEnsemble
from .flow import BASES, Flow, build_maf, layer_orders
from .layers import (
    AUTOREGRESSIVE_TRANSFORMS,
    AffineTransform,
    BatchNormTransform,
    Composed,
    ConditionalGaussianAffine,
    ElementwiseTransform,
    LayerKernel,
    LowerTriangularAffine,
    MaskedAffineAutoregressive,
    MaskedAutoregressive,
    MaskedRQSplineAutoregressive,
    Permutation,
    SplineTransform,
    rational_quadratic_spline,
    register_layer_type,
    soft_clamp,
)
from .made import MADE, MADEWidthWarning, MaskedLinear, hidden_degrees, input_degrees
from .training import TrainingConfig, TrainingDivergedError, TrainingResult, train_flow

__all__ = [
    "AUTOREGRESSIVE_TRANSFORMS",
    "AffineTransform",
    "BASES",
    "BaseDistribution",
    "MADE",
    "MADEMixture",
    "BatchNormTransform",
    "Composed",
    "ConditionalGaussianAffine",
    "ElementwiseTransform",
    "Flow",
    "FlowEnsemble",
    "LayerKernel",
    "LowerTriangularAffine",
    "MADEWidthWarning",
    "MaskedAffineAutoregressive",
    "MaskedAutoregressive",
    "MaskedRQSplineAutoregressive",
    "MaskedLinear",
    "Permutation",
    "SplineTransform",
    "StandardNormal",
    "TrainingConfig",
    "TrainingDivergedError",
    "TrainingResult",
    "build_maf",
    "hidden_degrees",
    "input_degrees",
    "layer_orders",
    "rational_quadratic_spline",
    "register_layer_type",
    "soft_clamp",
    "train_flow",
]
