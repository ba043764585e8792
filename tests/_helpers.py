"""Helpers shared by the torch-layer tests."""

import torch


def perturb(module, gen, weight_noise):
    """Move every parameter and batch-norm statistic away from its identity start."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(weight_noise * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, b in module.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                b.add_(0.2 * torch.rand(b.shape, generator=gen, dtype=b.dtype))
    return module


def joblib_round_trip(obj):
    """``obj`` dumped with joblib and loaded back (in memory)."""
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return joblib.load(buffer)
