"""The torch layer on its own: masks, Jacobians, log-determinants, inverses."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from skflow.nn import (
    MADE,
    BatchNormTransform,
    MADEWidthWarning,
    MaskedAffineAutoregressive,
    Permutation,
    build_maf,
    input_degrees,
    layer_orders,
)

D = 5
ORDERS = [list(range(D)), list(range(D))[::-1], [2, 0, 4, 1, 3]]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _random_made(order, hidden, activation="tanh", degree_mode="sequential"):
    made = MADE(D, hidden, 2, order, activation, degree_mode, _gen()).double()
    made.reset_parameters(_gen(1), zero_output=False)
    return made


def _jac(fn, x):
    return jacobian(fn, x)  # (out, in)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("hidden", [(8,), (16, 16), (12, 7, 9)])
@pytest.mark.parametrize("degree_mode", ["sequential", "random"])
def test_made_jacobian_is_strictly_triangular_in_order(order, hidden, degree_mode):
    made = _random_made(order, hidden, degree_mode=degree_mode)
    x = torch.randn(D, generator=_gen(2), dtype=torch.float64)
    J = _jac(made, x)  # (2D, D)
    deg = input_degrees(order)
    allowed = deg[None, :] < deg[:, None]  # output i may see input k iff deg k < deg i
    for block in (J[:D], J[D:]):
        assert torch.all(block[~allowed] == 0)
        if degree_mode == "sequential":
            # Wide enough layers keep every permitted dependency.
            assert torch.all(block[allowed] != 0)


def test_narrow_hidden_layer_warns_and_loses_dependencies():
    with pytest.warns(MADEWidthWarning, match="smaller than the"):
        made = MADE(D, (2,), 2, None, "tanh", "sequential", _gen()).double()
    made.reset_parameters(_gen(1), zero_output=False)
    J = _jac(made, torch.randn(D, dtype=torch.float64))
    deg = input_degrees(range(D))
    allowed = deg[None, :] < deg[:, None]
    assert torch.all(J[:D][~allowed] == 0)
    assert torch.any(J[:D][allowed] == 0), "the narrow layer should drop some dependency"


def test_wide_enough_layer_does_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MADE(D, (D - 1,), 2)


def test_input_degrees_rejects_non_permutation():
    with pytest.raises(ValueError, match="permutation"):
        input_degrees([0, 0, 1])


@pytest.mark.parametrize("order", ORDERS)
def test_maf_layer_jacobian_triangular_and_logdet(order):
    layer = MaskedAffineAutoregressive(D, (16, 16), order, "tanh", 3.0, generator=_gen()).double()
    layer.made.reset_parameters(_gen(1), zero_output=False)
    x = torch.randn(D, generator=_gen(3), dtype=torch.float64)
    J = _jac(lambda v: layer(v[None])[0][0], x)
    perm = torch.as_tensor(order)
    Jp = J[perm][:, perm]  # rows and columns in autoregressive order
    assert torch.all(torch.triu(Jp, diagonal=1) == 0)
    _, logdet = layer(x[None])
    assert torch.allclose(logdet[0], torch.linalg.slogdet(J)[1], atol=1e-10)


def _flow64(batch_norm=True, order="reverse", n_flows=3):
    flow = build_maf(D, n_flows, (16, 16), "tanh", batch_norm, order, 3.0,
                     generator=_gen(), dtype=torch.float64)
    for t in flow.transforms:
        if isinstance(t, MaskedAffineAutoregressive):
            t.made.reset_parameters(_gen(7), zero_output=False)
        if isinstance(t, BatchNormTransform):
            with torch.no_grad():
                t.log_gamma.normal_(0, 0.3, generator=_gen(8))
                t.beta.normal_(0, 0.3, generator=_gen(9))
            t.set_statistics(torch.randn(D, dtype=torch.float64), torch.rand(D, dtype=torch.float64) + 0.5)
    return flow.eval()


@pytest.mark.parametrize("order", ["reverse", "random", "identity"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_flow_logdet_matches_autograd_slogdet(order, batch_norm):
    flow = _flow64(batch_norm, order)
    x = torch.randn(4, D, generator=_gen(4), dtype=torch.float64)
    _, logdet = flow(x)
    for row in range(4):
        J = _jac(lambda v: flow(v[None])[0][0], x[row])
        assert torch.allclose(logdet[row], torch.linalg.slogdet(J)[1], atol=1e-9)


def test_flow_log_prob_is_change_of_variables():
    flow = _flow64()
    x = torch.randn(6, D, generator=_gen(5), dtype=torch.float64)
    u, logdet = flow(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum(-1)
    assert torch.allclose(flow.log_prob(x), base + logdet)


def test_sample_inverse_forward_round_trip():
    flow = _flow64()
    u = torch.randn(50, D, generator=_gen(6), dtype=torch.float64)
    x = flow.inverse(u)
    u2, _ = flow(x)
    assert torch.allclose(u, u2, atol=1e-9)
    x2 = flow.sample(50, generator=_gen(6))
    assert torch.allclose(x2, x, atol=1e-12), "sample() must invert the same noise"


def test_batch_norm_inverse_and_logdet():
    bn = BatchNormTransform(D).double()
    bn.set_statistics(torch.arange(D, dtype=torch.float64), torch.linspace(0.5, 3, D, dtype=torch.float64))
    with torch.no_grad():
        bn.log_gamma.fill_(0.2)
        bn.beta.fill_(-0.1)
    bn.eval()
    x = torch.randn(7, D, dtype=torch.float64)
    u, logdet = bn(x)
    assert torch.allclose(bn.inverse(u), x)
    J = _jac(lambda v: bn(v[None])[0][0], x[0])
    assert torch.allclose(logdet[0], torch.linalg.slogdet(J)[1])


def test_batch_norm_train_mode_uses_batch_statistics_and_updates_running():
    bn = BatchNormTransform(2, momentum=0.5).double()
    x = torch.tensor([[0.0, 1.0], [2.0, 5.0]], dtype=torch.float64)
    u, _ = bn.train()(x)
    assert torch.allclose(u.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(bn.running_mean, torch.tensor([0.5, 1.5], dtype=torch.float64))
    assert torch.allclose(bn.running_var, torch.tensor([1.0, 2.5], dtype=torch.float64))


def test_fresh_flow_is_standard_normal():
    flow = build_maf(D, 4, (16, 16), generator=_gen(), dtype=torch.float64, batch_norm=True).eval()
    x = torch.randn(20, D, dtype=torch.float64)
    expected = -0.5 * (x.square().sum(-1) + D * math.log(2 * math.pi))
    assert torch.allclose(flow.log_prob(x), expected, atol=1e-12)


def test_eval_is_deterministic_and_batch_independent():
    flow = _flow64()
    x = torch.randn(30, D, dtype=torch.float64)
    full = flow.log_prob(x)
    assert torch.equal(full, flow.log_prob(x))
    parts = torch.cat([flow.log_prob(c) for c in x.split(7)])
    assert torch.allclose(full, parts, atol=1e-12)


def test_refit_batch_norm_sets_whole_data_statistics():
    flow = build_maf(3, 2, (8,), generator=_gen(), dtype=torch.float64, batch_norm=True)
    x = torch.randn(1000, 3, dtype=torch.float64) * 3 + 2
    flow.refit_batch_norm(x, chunk_size=128)
    bn = flow.transforms[1]
    assert torch.allclose(bn.running_mean, x.mean(0))
    assert torch.allclose(bn.running_var, x.var(0, unbiased=False))


def test_build_uses_private_generator_only():
    state = torch.get_rng_state()
    a = build_maf(4, 2, (8,), order="random", generator=_gen(3), batch_norm=True)
    b = build_maf(4, 2, (8,), order="random", generator=_gen(3), batch_norm=True)
    assert torch.equal(state, torch.get_rng_state())
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_layer_orders():
    assert layer_orders(3, 3) == [[0, 1, 2], [2, 1, 0], [0, 1, 2]]
    assert layer_orders(3, 2, "identity") == [[0, 1, 2]] * 2
    with pytest.raises(ValueError, match="needs 2 permutations"):
        layer_orders(3, 2, [[0, 1, 2]])
    with pytest.raises(ValueError, match="order must be"):
        layer_orders(3, 2, "sideways")


def test_permutation_layer():
    p = Permutation([2, 0, 1])
    x = torch.randn(4, 3)
    u, ld = p(x)
    assert torch.equal(u[:, 0], x[:, 2])
    assert torch.equal(p.inverse(u), x)
    assert torch.equal(ld, torch.zeros(4))


def test_one_dimensional_flow_works():
    flow = build_maf(1, 2, (4,), generator=_gen(), batch_norm=True).eval()
    x = torch.randn(10, 1)
    assert flow.log_prob(x).shape == (10,)
    assert flow.sample(3, _gen()).shape == (3, 1)


@pytest.mark.parametrize("degree_mode", ["sequential", "random"])
@pytest.mark.parametrize("hidden", [(16,), (16, 12), (9, 20, 7)])
@pytest.mark.parametrize("order", ORDERS)
def test_one_pass_sampling_equals_naive_d_pass(degree_mode, hidden, order):
    layer = MaskedAffineAutoregressive(D, hidden, order, "tanh", 3.0, degree_mode, _gen()).double()
    layer.made.reset_parameters(_gen(1), zero_output=False)
    u = torch.randn(64, D, generator=_gen(2), dtype=torch.float64)
    with torch.no_grad():
        fast, naive = layer.inverse(u), layer.inverse_naive(u)
        assert torch.allclose(fast, naive, atol=1e-12)
        assert torch.allclose(layer(fast)[0], u, atol=1e-10)


def test_one_pass_sampling_survives_state_dict_round_trip():
    a = MaskedAffineAutoregressive(D, (16,), None, degree_mode="random", generator=_gen(3)).double()
    a.made.reset_parameters(_gen(1), zero_output=False)
    b = MaskedAffineAutoregressive(D, (16,), None, degree_mode="random", generator=_gen(4)).double()
    b.load_state_dict(a.state_dict())
    u = torch.randn(8, D, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(b.inverse(u), a.inverse_naive(u), atol=1e-12)


def test_inverse_under_autograd_is_differentiable_and_the_same():
    layer = MaskedAffineAutoregressive(D, (16, 12), None, "tanh", 3.0, generator=_gen()).double()
    layer.made.reset_parameters(_gen(1), zero_output=False)
    u = torch.randn(16, D, generator=_gen(2), dtype=torch.float64, requires_grad=True)
    x = layer.inverse(u)
    x.square().sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all()
    assert all(p.grad is not None for p in layer.parameters())
    with torch.no_grad():
        assert torch.allclose(layer.inverse(u), x.detach(), atol=1e-12)
