"""Device and dtype handling shared by the estimators."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable device.

    Raises
    ------
    ValueError
        If a CUDA device is asked for and is not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def seed_generator(rng) -> torch.Generator:
    """A private CPU torch generator seeded from a numpy ``RandomState``."""
    return torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))


def private_random_state(random_state):
    """``check_random_state``, except that None gives a fresh, OS-seeded
    ``RandomState`` instead of numpy's global one, so an unseeded call never
    advances the global random state."""
    import numpy as np
    from sklearn.utils import check_random_state

    return np.random.RandomState() if random_state is None else check_random_state(random_state)
