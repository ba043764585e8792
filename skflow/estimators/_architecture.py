"""Values chosen from the data: the rules behind ``layer_type="auto"`` and the start of ``init="gaussian_mixture"``."""

from __future__ import annotations

from collections.abc import Set

#: ``layer_type="auto"`` uses spline layers for data with at most this many
#: features, affine layers above (benchmarks/small_data.py compares them).
AUTO_SPLINE_MAX_FEATURES = 10
#: ``init="gaussian_mixture"`` starts at the mixture on at most this many
#: rows, at the identity on more: with many rows the flow learns the data's
#: shape faster from the identity than from a mixture base
#: (benchmarks/large_data_rule.py, small_data.py --also init=identity).
MIXTURE_START_MAX_ROWS = 3_000
#: ``activation="auto"`` is relu on more than this many rows, tanh on fewer
#: (tanh was chosen on the small sets of benchmarks/small_data.py; relu won
#: on the larger ones of benchmarks/large_data_rule.py).
RELU_MIN_ROWS = 10_000


def resolve_init(init: str, n_rows: int) -> str:
    """The start a fit on ``n_rows`` rows makes for ``init``."""
    if init == "gaussian_mixture" and n_rows > MIXTURE_START_MAX_ROWS:
        return "identity"
    return init


def resolve_activation(activation: str, n_rows: int) -> str:
    """The hidden units' non-linearity for ``activation`` on ``n_rows`` rows:
    "auto" is relu on more than :data:`RELU_MIN_ROWS` rows, tanh on fewer."""
    if activation != "auto":
        return activation
    return "relu" if n_rows > RELU_MIN_ROWS else "tanh"


def resolve_layer_type(layer_type: str, n_features: int, start_layer=True) -> str:
    """The layer type a fit on ``n_features`` columns builds for ``layer_type``;
    ``start_layer``: whether the flow starts with a Gaussian start's first
    layer (False: every layer at the identity)."""
    if layer_type != "auto":
        return layer_type
    if n_features > AUTO_SPLINE_MAX_FEATURES:
        return "affine"
    # From the identity, values beyond the splines' interval stay in the
    # base's far tail (identity tails); the shift and scale before each
    # spline can bring them in.  A start that whitens and holds the shape in
    # its base leaves few such values.
    return "spline" if start_layer else "affine_spline"


class LayerTypeOptions(Set):
    """The accepted ``layer_type`` values: "auto" and every registered layer
    type, a live view (a type registered later is accepted)."""

    def __init__(self, registry):
        self.registry = registry

    def __contains__(self, value) -> bool:
        return value == "auto" or value in self.registry

    def __iter__(self):
        return iter(["auto", *self.registry])

    def __len__(self) -> int:
        return 1 + len(self.registry)

    @classmethod
    def _from_iterable(cls, values):  # set operations give plain sets
        return set(values)
