"""The rational-quadratic spline layer: exactness, tails, extremes, and the estimators' transform="spline"."""

import math

import numpy as np
import pytest
import torch

from skflow import MAFDensity
from skflow.nn import MaskedRQSplineAutoregressive, build_maf, rational_quadratic_spline
from skflow.nn.layers.spline import MIN_BIN_WIDTH, _knots

from ._helpers import joblib_round_trip

K = 8


def _params(n, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, K, generator=g, dtype=torch.float64),
            scale * torch.randn(n, K, generator=g, dtype=torch.float64),
            scale * torch.randn(n, K - 1, generator=g, dtype=torch.float64))


def _grid(n=4001, bound=3.0):
    # across the interval, at every knot of the parameters, and far outside
    return torch.linspace(-1.5 * bound, 1.5 * bound, n, dtype=torch.float64)


def test_strictly_monotone_with_identity_tails():
    x = _grid()
    w, h, d = (p[:1].expand(len(x), -1) for p in _params(1, scale=2.0))
    y, log_det = rational_quadratic_spline(x, w, h, d, tail_bound=3.0)
    assert torch.all(torch.diff(y) > 0)
    outside = x.abs() > 3.0
    assert torch.equal(y[outside], x[outside])
    assert torch.all(log_det[outside] == 0)
    # continuous at the bounds
    edge = rational_quadratic_spline(torch.tensor([-3.0, 3.0], dtype=torch.float64), w[:2], h[:2], d[:2], tail_bound=3.0)[0]
    torch.testing.assert_close(edge, torch.tensor([-3.0, 3.0], dtype=torch.float64))


def test_inverse_is_exact_across_the_bound_at_the_knots_and_far_outside():
    n = 3000
    w, h, d = _params(n)
    x = torch.cat([_grid(n - 1000), torch.tensor([-1e6, 1e6], dtype=torch.float64),
                   torch.zeros(998, dtype=torch.float64)])
    knots = _knots(w, 3.0, MIN_BIN_WIDTH, -1)
    x[n - 998:] = knots[n - 998:, 3]  # exactly on a knot
    y, log_det = rational_quadratic_spline(x, w, h, d)
    x_back, inverse_log_det = rational_quadratic_spline(y, w, h, d, inverse=True)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-8)
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=0, atol=1e-8)


def test_log_det_matches_the_derivative():
    w, h, d = _params(500, scale=1.5)
    x = torch.linspace(-2.99, 2.99, 500, dtype=torch.float64, requires_grad=True)
    y, log_det = rational_quadratic_spline(x, w, h, d)
    (dy,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_det.detach(), dy.log(), rtol=0, atol=1e-10)


def test_extreme_inputs_and_parameters_stay_finite():
    x = torch.tensor([-1e6, -3.0, -1.0, 0.0, 2.5, 3.0, 1e6], dtype=torch.float64, requires_grad=True)
    n = len(x)
    # one huge bin (the others at their minimum width and height) and derivatives at their minimum
    w = torch.full((n, K), -100.0, dtype=torch.float64)
    w[:, 0] = 100.0
    h = torch.full((n, K), -100.0, dtype=torch.float64)
    h[:, -1] = 100.0
    d = torch.full((n, K - 1), -100.0, dtype=torch.float64)
    for params in [(w, h, d), tuple(p.clone().requires_grad_(True) for p in (w, h, d))]:
        y, log_det = rational_quadratic_spline(x, *params)
        assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
        grads = torch.autograd.grad((y + log_det).sum(), [x, *[p for p in params if p.requires_grad]])
        assert all(torch.isfinite(g).all() for g in grads)
        back, _ = rational_quadratic_spline(y.detach(), *[p.detach() for p in params], inverse=True)
        assert torch.isfinite(back).all()


def _random_layer(d=4, context=0, seed=0, affine=False):
    layer = MaskedRQSplineAutoregressive(d, (32, 32), order=[2, 0, 3, 1], context_features=context,
                                         generator=torch.Generator().manual_seed(seed), affine=affine).double()
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        out = layer.made.layers[-1]
        out.weight.copy_(0.3 * torch.randn(out.weight.shape, generator=g, dtype=torch.float64))
        out.bias.copy_(0.3 * torch.randn(out.bias.shape, generator=g, dtype=torch.float64))
    return layer


@pytest.mark.parametrize("affine", [False, True])
def test_layer_is_autoregressive_and_its_log_det_is_the_jacobian(affine):
    layer = _random_layer(affine=affine)
    x = torch.randn(4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda z: layer(z[None])[0][0], x)
    order = [2, 0, 3, 1]
    permuted = jac[order][:, order]  # in the autoregressive order: lower triangular
    assert torch.all(permuted.triu(1) == 0)
    torch.testing.assert_close(layer(x[None])[1][0], torch.slogdet(jac)[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("affine", [False, True])
def test_layer_inverse_with_a_context(affine):
    layer = _random_layer(context=2, affine=affine)
    x = 2 * torch.randn(50, 4, dtype=torch.float64)
    c = torch.randn(50, 2, dtype=torch.float64)
    with torch.no_grad():
        u, _ = layer(x, c)
        torch.testing.assert_close(layer.inverse(u, c), x, rtol=0, atol=1e-8)


@pytest.mark.parametrize("affine", [False, True])
def test_one_pass_sampling_equals_the_naive_inverse(affine):
    layer = _random_layer(context=2, affine=affine)
    u = 2 * torch.randn(300, 4, dtype=torch.float64)
    c = torch.randn(300, 2, dtype=torch.float64)
    with torch.no_grad():
        fast = layer.inverse(u, c)
        torch.testing.assert_close(fast, layer.inverse_naive(u, c), rtol=0, atol=1e-10)
        torch.testing.assert_close(layer(fast, c)[0], u, rtol=0, atol=1e-8)
    # Where autograd records, the differentiable reference runs.
    u.requires_grad_(True)
    layer.inverse(u, c).sum().backward()
    assert torch.isfinite(u.grad).all()


@pytest.mark.parametrize("transform", ["spline", "affine_spline"])
def test_untrained_spline_flow_is_its_base(transform):
    flow = build_maf(3, n_flows=2, hidden_sizes=(8,), transform=transform, batch_norm=False,
                     dtype=torch.float64).eval()
    x = torch.randn(10, 3, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(-1)
    torch.testing.assert_close(flow.log_prob(x), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="n_bins"):
        MaskedRQSplineAutoregressive(3, (8,), n_bins=1)


@pytest.mark.parametrize("layer_type", ["spline", "affine_spline"])
def test_estimator_with_splines_beats_the_gaussian_and_round_trips(layer_type):
    from sklearn.datasets import make_moons
    from sklearn.mixture import GaussianMixture

    X, _ = make_moons(1200, noise=0.05, random_state=0)
    X_test, _ = make_moons(600, noise=0.05, random_state=1)
    est = MAFDensity(layer_type=layer_type, n_bins=6, n_flows=2, hidden_layer_sizes=(32, 32), max_iter=40,
                     random_state=0).fit(X)
    gaussian = GaussianMixture(1, random_state=0).fit(X).score(X_test)
    assert est.score(X_test) > gaussian + 0.5
    assert est.sample(5, random_state=0).shape == (5, 2)
    loaded = joblib_round_trip(est)
    np.testing.assert_array_equal(loaded.score_samples(X_test), est.score_samples(X_test))
    np.testing.assert_array_equal(loaded.sample(5, random_state=1), est.sample(5, random_state=1))


def _perturbed_spline_flow(batch_norm, context_features=0, transform="spline"):
    from ._helpers import perturb

    gen = torch.Generator().manual_seed(1)
    flow = build_maf(4, 3, (16, 12), batch_norm=batch_norm, transform=transform, n_bins=5, tail_bound=2.0,
                     context_features=context_features, generator=gen, dtype=torch.float64)
    return perturb(flow, gen, 0.3)


def _pass(flow, x, c, reference):
    flow.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    c = None if c is None else c.clone().requires_grad_()
    u, log_det = flow.forward_reference(x, c) if reference else flow(x, c)
    weights = torch.linspace(0, 1, x.shape[0], dtype=x.dtype)
    (0.3 * u.square().sum() + (log_det * weights).sum()).backward()
    grads = [x.grad] + ([] if c is None else [c.grad])
    return [u.detach(), log_det.detach()] + grads + [p.grad for p in flow.parameters()]


@pytest.mark.parametrize("transform", ["spline", "affine_spline"])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("context_features", [0, 2])
def test_fused_spline_pass_equals_the_reference_modules(batch_norm, context_features, transform):
    flow = _perturbed_spline_flow(batch_norm, context_features, transform).train()
    assert flow.fusable()
    gen = torch.Generator().manual_seed(2)
    x = 2 * torch.randn(64, 4, generator=gen, dtype=torch.float64)  # across the bound and beyond
    c = torch.randn(64, context_features, generator=gen, dtype=torch.float64) if context_features else None
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    fused = _pass(flow, x, c, reference=False)
    flow.load_state_dict(state)
    reference = _pass(flow, x, c, reference=True)
    # values, log-dets, input (and context) and parameter gradients
    for a, b in zip(fused, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("transform", ["spline", "affine_spline"])
@pytest.mark.parametrize("n", [1, 300, 1000])
def test_fused_spline_scoring_equals_the_reference_across_chunks(n, transform):
    from skflow.nn.fused import ScoringPlan

    flow = _perturbed_spline_flow(batch_norm=True, context_features=2, transform=transform).eval()
    gen = torch.Generator().manual_seed(3)
    x = 2 * torch.randn(n, 4, generator=gen, dtype=torch.float64)
    c = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        u, log_det = flow.forward_reference(x, c)
        expected = flow.base.log_prob(u, c) + log_det
        got = ScoringPlan(flow._kernels(n), x.shape[1]).log_prob(x, flow.base, c, chunk_bytes=256 * 16 * 8)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(flow.log_prob(x, c), expected, rtol=1e-12, atol=1e-10)


def test_affine_part_brings_far_values_into_the_interval():
    layer = _random_layer(affine=True)
    k, d = layer.n_bins, 4
    with torch.no_grad():  # shift 10, log-scale log 4 for every coordinate; splines the identity
        out = layer.made.layers[-1]
        out.weight.zero_()
        out.bias.zero_()
        out.bias[(3 * k - 1) * d : 3 * k * d] = 10.0
        out.bias[3 * k * d :] = 5.0 * math.atanh(math.log(4.0) / 5.0)  # through the soft clamp
    x = torch.tensor([[30.0, 10.0, -2.0, 14.0]], dtype=torch.float64)
    u, log_det = layer(x)
    torch.testing.assert_close(u, (x - 10.0) / 4.0, rtol=0, atol=1e-12)
    torch.testing.assert_close(log_det, torch.tensor([-4 * math.log(4.0)], dtype=torch.float64))
