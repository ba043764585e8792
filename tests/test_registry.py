"""A new layer type or base is one module plus one registration."""

import numpy as np
import pytest
import torch

from skflow import MAFClassifier, MAFDensity
from skflow.nn import BASES, StandardNormal, build_maf
from skflow.nn.layers import (
    AUTOREGRESSIVE_TRANSFORMS,
    ElementwiseTransform,
    MaskedAffineAutoregressive,
    MaskedAutoregressive,
    register_layer_type,
)

from ._helpers import joblib_round_trip


def _toy_affine(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
                log_scale_bound=5.0):
    # A toy layer type: the affine layer with its log-scale clamped ten times tighter.
    return MaskedAffineAutoregressive(n_features, hidden_sizes, order, activation, log_scale_bound / 10,
                                      degree_mode, generator, context_features)


@pytest.fixture
def toys():
    register_layer_type("toy", _toy_affine, options=("log_scale_bound",))
    BASES["toy_normal"] = lambda n_features, context_features, generator, **_: StandardNormal(n_features)
    yield
    del AUTOREGRESSIVE_TRANSFORMS["toy"], BASES["toy_normal"]


def test_a_registered_layer_type_and_base_work_in_every_estimator(toys):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, layer_type="toy", base="toy_normal",
                     random_state=0).fit(X)
    bound = [layer for layer in est.flow_.transforms if isinstance(layer, MaskedAffineAutoregressive)][0]
    assert bound.log_scale_bound == pytest.approx(0.5)  # the toy's own factory built the layers
    np.testing.assert_array_equal(joblib_round_trip(est).score_samples(X), est.score_samples(X))
    clf = MAFClassifier(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, layer_type="toy", random_state=0)
    assert clf.fit(X, (X[:, 0] > 0).astype(int)).score(X, (X[:, 0] > 0).astype(int)) > 0.5


def test_an_unregistered_name_is_refused_with_the_registered_ones():
    with pytest.raises(ValueError, match="'affine_spline'"):
        MAFDensity(layer_type="toy").fit(np.random.RandomState(0).normal(size=(20, 2)))


class _ToyScale(ElementwiseTransform):
    """A toy elementwise transform, u = x exp(tanh(t)) + b: only ``apply``
    and ``invert`` written; the fused pass runs autograd through ``apply``."""

    n_params = 2

    def apply(self, x, p):
        b, t = p.reshape(2, *x.shape)
        s = torch.tanh(t)
        return x * torch.exp(s) + b, s

    def invert(self, u, p):
        b, t = p.reshape(2, *u.shape)
        return (u - b) * torch.exp(-torch.tanh(t))


def _toy_layer(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features):
    return MaskedAutoregressive(n_features, hidden_sizes, _ToyScale(), order, activation, degree_mode, generator,
                                context_features)


@pytest.fixture
def toy_transform():
    register_layer_type("toy_scale", _toy_layer)
    yield
    del AUTOREGRESSIVE_TRANSFORMS["toy_scale"]


@pytest.mark.parametrize("context_features", [0, 2])
def test_a_new_elementwise_transform_runs_in_the_fused_pass_exactly(toy_transform, context_features):
    from ._helpers import perturb

    gen = torch.Generator().manual_seed(1)
    flow = build_maf(4, 2, (16, 12), transform="toy_scale", context_features=context_features, generator=gen,
                     dtype=torch.float64)
    flow = perturb(flow, gen, 0.3).train()
    assert flow.fusable()
    x = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    c = torch.randn(64, context_features, generator=gen, dtype=torch.float64) if context_features else None

    def run(reference):
        flow.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_()
        u, log_det = flow.forward_reference(xg, c) if reference else flow(xg, c)
        (0.3 * u.square().sum() + (log_det * torch.linspace(0, 1, 64, dtype=x.dtype)).sum()).backward()
        return [u.detach(), log_det.detach(), xg.grad] + [p.grad.clone() for p in flow.parameters()]

    for a, b in zip(run(False), run(True), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # the log-det is the Jacobian's, the one-pass inverse inverts, the scoring plan agrees
    layer = flow.transforms[0]
    z = x[0].clone()
    ctx = None if c is None else c[:1]
    jac = torch.autograd.functional.jacobian(lambda v: layer(v[None], ctx)[0][0], z)
    torch.testing.assert_close(layer(z[None], ctx)[1][0], torch.slogdet(jac)[1], rtol=0, atol=1e-10)
    flow.eval()
    with torch.no_grad():
        u, log_det = flow.forward_reference(x, c)
        torch.testing.assert_close(layer.inverse(layer(x, c)[0], c), x, rtol=0, atol=1e-10)
        torch.testing.assert_close(flow.log_prob(x, c), flow.base.log_prob(u, c) + log_det, rtol=1e-12, atol=1e-10)


def test_a_new_elementwise_transform_is_a_layer_type_of_the_estimators(toy_transform):
    X = np.random.RandomState(0).normal(size=(300, 3)) * [1.0, 2.0, 0.5]
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=3, layer_type="toy_scale", random_state=0).fit(X)
    assert np.isfinite(est.score_samples(X)).all()
    np.testing.assert_array_equal(joblib_round_trip(est).score_samples(X), est.score_samples(X))
    assert est.sample(4, random_state=0).shape == (4, 3)
