"""Pure-PyTorch normalizing-flow building blocks (no scikit-learn inside).

>>> import torch
>>> from skflow.nn import build_maf
>>> flow = build_maf(3, n_flows=2, hidden_sizes=(16,), generator=torch.Generator().manual_seed(0))
>>> flow.log_prob(torch.zeros(1, 3)).shape
torch.Size([1])
"""

from .flow import Flow, build_maf, layer_orders
from .made import MADE, MADEWidthWarning, MaskedLinear, hidden_degrees, input_degrees
from .transforms import BatchNormTransform, MaskedAffineAutoregressive, Permutation, soft_clamp

__all__ = [
    "MADE",
    "BatchNormTransform",
    "Flow",
    "MADEWidthWarning",
    "MaskedAffineAutoregressive",
    "MaskedLinear",
    "Permutation",
    "build_maf",
    "hidden_degrees",
    "input_degrees",
    "layer_orders",
    "soft_clamp",
]
