"""Checks on a fitted model's state as it comes out of a file.

skops refuses untrusted *types*, but the values of trusted types come from
the file as they are: an edited ``hidden_sizes`` of ``(100000, 100000)``
would make rebuilding the flow allocate tens of gigabytes before the saved
weights are even compared with it.  The rule here bounds every size in the
saved configuration by the sizes of the weights saved beside it (a layer of
the saved model is never larger than its largest weight array; sizes up to
1024 pass, as options a configuration records without using them do), so
what is built stays within a small multiple of what the file holds, and
names the field that is wrong.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from ..nn.devices import DTYPES


_SIZE_FLOOR = 1024


class DamagedModelError(ValueError):
    """A saved model's state is inconsistent: a damaged or edited file."""


def _walk(value, where):
    """Every leaf of a nested configuration, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{i}]")
    elif isinstance(value, np.ndarray):
        for i, item in enumerate(value.tolist() if value.ndim else [value.item()]):
            yield f"{where}[{i}]", item
    else:
        yield where, value


def check_saved_flow(config, flow_state) -> None:
    """Refuse a saved flow configuration that its saved weights cannot have come from.

    Parameters
    ----------
    config : dict
        The estimator's ``_flow_config_`` as loaded.
    flow_state : dict of str to array
        The flow's saved ``state_dict`` (numpy arrays, or tensors in older files).

    Raises
    ------
    DamagedModelError
        Naming the first field that is out of bounds or of the wrong type.
    """
    if not isinstance(config, dict):
        raise DamagedModelError(f"the saved flow configuration is a {type(config).__name__}, not a dict")
    if not isinstance(flow_state, dict) or not flow_state:
        raise DamagedModelError("the saved flow weights are missing")
    largest, count = 1, 0
    for key, array in flow_state.items():
        shape = getattr(array, "shape", None)
        if not isinstance(key, str) or shape is None:
            raise DamagedModelError(f"the saved flow weight {key!r} is not an array")
        dtype = np.dtype(str(array.dtype).replace("torch.", ""))
        if dtype.kind not in "biuf":
            raise DamagedModelError(f"the saved flow weight {key!r} has dtype {dtype}")
        if dtype.kind == "f" and not np.isfinite(np.asarray(array)).all():
            raise DamagedModelError(f"the saved flow weight {key!r} holds NaN or infinite values")
        largest = max([largest, *map(int, shape)])
        count += 1
    for where, value in _walk(config, ""):
        name = where.rsplit(".", 1)[-1]
        if name == "dtype":
            if value not in DTYPES:
                raise DamagedModelError(f"the saved flow has dtype {value!r}; expected one of {sorted(DTYPES)}")
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        elif isinstance(value, Integral):
            # Sizes no weight shows (a base's unused n_components) get a floor
            # that still bounds what rebuilding can allocate.
            bound = count if name == "n_flows" else max(largest, _SIZE_FLOOR)
            if not 0 <= value <= bound:
                raise DamagedModelError(f"the saved flow configuration has {where}={value}, which its "
                                        f"weights (largest dimension {largest}) cannot have come from")
        elif isinstance(value, Real):
            if not math.isfinite(value):
                raise DamagedModelError(f"the saved flow configuration has {where}={value}")
        else:
            raise DamagedModelError(f"the saved flow configuration has {where} of type {type(value).__name__}")


def check_loaded_weights(flow, flow_state) -> None:
    """Refuse saved weights whose names or shapes differ from the rebuilt flow's."""
    expected = flow.state_dict()
    if set(expected) != set(flow_state):
        missing, extra = sorted(set(expected) - set(flow_state)), sorted(set(flow_state) - set(expected))
        raise DamagedModelError(f"the saved flow weights do not match its configuration (missing: "
                                f"{missing[:3]}, unexpected: {extra[:3]})")
    for key, tensor in expected.items():
        if tuple(tensor.shape) != tuple(flow_state[key].shape):
            raise DamagedModelError(f"the saved flow weight {key!r} has shape {tuple(flow_state[key].shape)}, "
                                    f"its configuration gives {tuple(tensor.shape)}")
