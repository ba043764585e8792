"""Architecture values chosen from the data: the rule behind ``layer_type="auto"``."""

from __future__ import annotations

from collections.abc import Set

#: ``layer_type="auto"`` uses spline layers for data with at most this many
#: features, affine layers above (benchmarks/small_data.py compares them).
AUTO_SPLINE_MAX_FEATURES = 10


def resolve_layer_type(layer_type: str, n_features: int) -> str:
    """The layer type a fit on ``n_features`` columns builds for ``layer_type``."""
    if layer_type != "auto":
        return layer_type
    return "spline" if n_features <= AUTO_SPLINE_MAX_FEATURES else "affine"


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
