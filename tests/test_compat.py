"""The private torch calls and their public fallbacks compute the same thing."""

import numpy as np
import pytest
import torch

import skflow.nn._compat as compat
from skflow import MAFDensity

PRIVATE = ["_TANH_BACKWARD", "_TANH_BACKWARD_OUT", "_THRESHOLD_BACKWARD", "_FUSED_ADAM", "_FOREACH_LERP",
           "_FOREACH_MUL"]


def _inputs():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(5, 7, generator=g, dtype=torch.float64),
            torch.randn(5, 7, generator=g, dtype=torch.float64).tanh())


def _all_ops():
    grad, out = _inputs()
    into = torch.empty_like(grad)
    targets, values = [torch.ones(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)], [
        torch.full((3,), 3.0, dtype=torch.float64), torch.full((2,), -1.0, dtype=torch.float64)]
    compat.foreach_lerp_(targets, values, 0.25)
    tensors = [torch.arange(3.0), torch.arange(2.0)]
    compat.foreach_mul_(tensors, [torch.tensor([0.0, 1.0, 1.0]), torch.tensor([2.0, 0.0])])
    p, grad_p = torch.ones(4), torch.arange(4.0)
    m, v, step = torch.zeros(4), torch.zeros(4), torch.tensor(1.0)
    used = compat.fused_adam_(p, grad_p, m, v, step, lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8)
    return dict(tanh=compat.tanh_backward(grad, out), tanh_into=compat.tanh_backward_into(grad, out, into),
                relu=compat.relu_backward(grad, out.relu()), lerp=targets, mul=tensors, adam_used=used)


def test_fallbacks_match_the_private_calls(monkeypatch):
    private = _all_ops()
    for name in PRIVATE:
        monkeypatch.setattr(compat, name, None)
    public = _all_ops()
    grad, out = _inputs()
    np.testing.assert_allclose(public["tanh"], grad * (1 - out**2), rtol=1e-15)
    for key in ("tanh", "tanh_into", "relu"):
        np.testing.assert_allclose(public[key], private[key], rtol=1e-14, atol=1e-15)
    for a, b in zip(public["lerp"] + public["mul"], private["lerp"] + private["mul"]):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    assert public["adam_used"] is False  # the caller's own Adam update runs instead


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_private_and_public_fits_agree(monkeypatch, activation):
    # The fused training pass (tanh/relu backward, masked gradients, batch-norm
    # running statistics, Adam) without any private call: the same model.
    X = np.random.RandomState(0).normal(size=(300, 3))
    params = dict(n_flows=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype="float64",
                  init="identity", batch_norm=True, activation=activation)
    with_private = MAFDensity(**params).fit(X).score_samples(X)
    for name in PRIVATE:
        monkeypatch.setattr(compat, name, None)
    without = MAFDensity(**params).fit(X).score_samples(X)
    np.testing.assert_allclose(without, with_private, rtol=1e-9, atol=1e-9)
