"""The pluggable core: layers without kernels, base distributions, the context input."""

import math
import threading

import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from skflow.nn import MADE, BaseDistribution, Flow, MaskedAffineAutoregressive, build_maf, train_flow
from skflow.nn import fused
from skflow.nn.adam import Adam
from skflow.nn.fused import ScoringPlan

from ._helpers import perturb

D, C = 4, 3


def _perturb(module, seed=0, noise=0.3):
    return perturb(module, torch.Generator().manual_seed(seed), noise)


class ToyScale(nn.Module):
    """Elementwise ``u = x * exp(s) + t``: a layer type the driver has no kernel for."""

    def __init__(self, d):
        super().__init__()
        self.s = nn.Parameter(torch.zeros(d))
        self.t = nn.Parameter(torch.zeros(d))

    def forward(self, x, context=None):
        return x * self.s.exp() + self.t, self.s.sum().expand(x.shape[0])

    def inverse(self, u, context=None):
        return (u - self.t) * (-self.s).exp()


def _toy_flow(context_features=0, batch_norm=True):
    maf = build_maf(D, 4, (12, 10), "tanh", batch_norm, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64, context_features=context_features)
    layers = list(maf.transforms)
    layers.insert(len(layers) // 2, ToyScale(D).double())
    return _perturb(Flow(layers, D, context_features=context_features))


def _grads(flow, x, context, reference):
    flow.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    if context is not None:
        context = context.clone().requires_grad_()
    u, log_det = flow.forward_reference(x, context) if reference else flow(x, context)
    weights = torch.linspace(0, 1, x.shape[0], dtype=x.dtype)
    (0.3 * u.square().sum() + (log_det * weights).sum()).backward()
    out = [u.detach(), log_det.detach(), x.grad] + [p.grad for p in flow.parameters()]
    return out + ([context.grad] if context is not None else []) + [b.clone() for b in flow.buffers()]


def _same(flow, x, context=None):
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    fused_run = _grads(flow, x, context, reference=False)
    flow.load_state_dict(state)
    reference = _grads(flow, x, context, reference=True)
    for a, b in zip(fused_run, reference, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("training", [True, False])
def test_layer_without_kernel_runs_between_fused_segments(training, monkeypatch):
    flow = _toy_flow().train(training)
    segments = flow.segments()
    assert [kernels is None for _, kernels in segments] == [False, True, False]
    assert not flow.fusable()
    calls = []
    apply = fused.FlowFunction.apply
    monkeypatch.setattr(fused.FlowFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _same(flow, x)
    assert len(calls) == 2  # the MAF and batch-norm layers on either side stay fused


def test_layer_without_kernel_trains_with_flat_segments():
    flow = _toy_flow(batch_norm=False)
    x = torch.randn(300, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with flow.flat_parameters() as params:
        assert len(params) == 2 + 2  # two fused runs, the toy layer's two parameters
    toy = flow.transforms[len(flow.transforms) // 2]
    before = toy.s.detach().clone()
    result = train_flow(flow, x[:250], x[250:], batch_size=50, max_epochs=3, learning_rate=1e-2,
                        generator=torch.Generator().manual_seed(0))
    assert not torch.equal(toy.s.detach(), before)
    assert result.n_epochs == 3 and all(math.isfinite(s) for s in result.validation_scores)
    flow.eval()
    with torch.no_grad():
        expected = flow.base.log_prob(flow.forward_reference(x)[0]) + flow.forward_reference(x)[1]
        assert torch.allclose(flow.log_prob(x), expected, rtol=1e-12, atol=1e-10)


class ShiftedNormal(BaseDistribution):
    """N(m, I) with a trainable mean: the order of the features matters."""

    def __init__(self, d):
        super().__init__(d)
        self.mean = nn.Parameter(torch.linspace(-1, 1, d))

    def log_prob(self, u, context=None):
        return -0.5 * ((u - self.mean).square().sum(-1) + self.n_features * math.log(2 * math.pi))

    def sample(self, n, generator=None, dtype=torch.float32, context=None):
        return torch.randn(n, self.n_features, generator=generator, dtype=dtype) + self.mean.detach().cpu()


def test_a_base_distribution_object_serves_reference_and_fused_scoring():
    maf = build_maf(D, 3, (12,), batch_norm=True, order="random", generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    from skflow.nn import Permutation

    # a last permutation moves no rows in scoring: the base must follow the recorded order
    layers = list(maf.transforms) + [Permutation([3, 1, 0, 2]).double()]
    flow = _perturb(Flow(layers, D, base=ShiftedNormal(D).double())).eval()
    assert flow.fusable()
    x = torch.randn(300, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    u, log_det = flow.forward_reference(x)
    expected = (flow.base.log_prob(u) + log_det).detach()
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x), expected, rtol=1e-12, atol=1e-10)
    flow.train()
    lp = flow.log_prob(x)  # training path: gradients reach the base's parameter
    lp.sum().backward()
    assert flow.base.mean.grad is not None and flow.base.mean.grad.abs().sum() > 0


# ---------------------------------------------------------------- context
def test_made_with_context_is_autoregressive_in_x_and_free_in_c():
    made = MADE(D, (16, 16), 2, order=[2, 0, 3, 1], context_features=C,
                generator=torch.Generator().manual_seed(0)).double()
    made.reset_parameters(torch.Generator().manual_seed(1), zero_output=False)
    x = torch.randn(D, dtype=torch.float64)
    c = torch.randn(C, dtype=torch.float64)
    jx = jacobian(lambda v: made(v[None], c[None])[0], x)  # (2D, D)
    jc = jacobian(lambda v: made(x[None], v[None])[0], c)  # (2D, C)
    degrees = made.degrees
    for j in range(2):
        block = jx[j * D:(j + 1) * D]
        allowed = degrees[None, :] < degrees[:, None]  # output i may see inputs of lower degree
        assert torch.all(block[~allowed] == 0)
        assert torch.all(block[allowed] != 0)
    assert torch.all(jc != 0)  # every output sees every context column


def _context_flow(batch_norm=True, wide=False):
    hidden = (150, 130) if wide else (12, 10)
    d = 70 if wide else D
    flow = build_maf(d, 3, hidden, "tanh", batch_norm, "random", generator=torch.Generator().manual_seed(5),
                     dtype=torch.float64, context_features=C)
    return _perturb(flow, noise=0.05 if wide else 0.3), d


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_fused_pass_with_context_equals_reference(batch_norm, training):
    flow, d = _context_flow(batch_norm)
    flow.train(training)
    gen = torch.Generator().manual_seed(6)
    _same(flow, torch.randn(50, d, generator=gen, dtype=torch.float64),
          torch.randn(50, C, generator=gen, dtype=torch.float64))


@pytest.mark.parametrize("wide", [False, True])
def test_scoring_with_context_equals_reference(wide):
    flow, d = _context_flow(wide=wide)
    flow.eval()
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(700, d, generator=gen, dtype=torch.float64)
    c = torch.randn(700, C, generator=gen, dtype=torch.float64)
    u, log_det = flow.forward_reference(x, c)
    expected = (flow.base.log_prob(u) + log_det).detach()
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x, c), expected, rtol=1e-12, atol=1e-9)
        got = ScoringPlan(flow._kernels(len(x)), x.shape[1]).log_prob(x, flow.base, c, chunk_bytes=256 * 200 * 8)
        assert torch.allclose(got, expected, rtol=1e-12, atol=1e-9)
        # the density depends on the context
        assert not torch.allclose(flow.log_prob(x, c + 1.0), expected)


def test_sampling_with_context_inverts_the_flow():
    flow, d = _context_flow()
    flow.eval()
    gen = torch.Generator().manual_seed(8)
    c = torch.randn(30, C, generator=gen, dtype=torch.float64)
    x = flow.sample(30, torch.Generator().manual_seed(0), context=c)
    u, _ = flow.forward_reference(x, c)
    noise = flow.base.sample(30, torch.Generator().manual_seed(0), torch.float64)
    assert torch.allclose(u, noise, atol=1e-9)
    layer = flow.transforms[0]
    with torch.no_grad():
        assert torch.allclose(layer.inverse(noise, c), layer.inverse_naive(noise, c), atol=1e-10)
    one_row = flow.sample(5, torch.Generator().manual_seed(0), context=c[0])  # broadcast
    assert one_row.shape == (5, d)


def test_context_errors_are_clear():
    flow, d = _context_flow()
    x = torch.randn(5, d, dtype=torch.float64)
    with pytest.raises(ValueError, match="needs a context of 3"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        flow.log_prob(x, torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="rows"):
        flow.log_prob(x, torch.zeros(4, 3, dtype=torch.float64))
    plain = build_maf(2, 1, (4,), batch_norm=True)
    with pytest.raises(ValueError, match="without context"):
        plain.log_prob(torch.zeros(1, 2), torch.zeros(1, 1))


def test_affine_layer_with_context_trains():
    gen = torch.Generator().manual_seed(9)
    c = torch.randn(2000, 1, generator=gen)
    x = c * 2.0 + 0.1 * torch.randn(2000, 2, generator=gen)  # x depends strongly on c
    flow = build_maf(2, 2, (16,), batch_norm=False, generator=torch.Generator().manual_seed(0),
                     context_features=1)
    with flow.flat_parameters() as params:
        assert len(params) == 1
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    for _ in range(300):
        loss = -flow.log_prob(x, c).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    flow.eval()
    with torch.no_grad():
        assert flow.log_prob(x, c).mean() > 1.0  # the unconditional spread would give < -2


def test_layer_modules_accept_a_context_argument():
    layer = MaskedAffineAutoregressive(3, (8,), context_features=2)
    u, ld = layer(torch.randn(4, 3), torch.randn(4, 2))
    assert u.shape == (4, 3) and ld.shape == (4,)


# ---------------------------------------------------------------- defects
def test_fused_pass_applies_each_batch_norm_layers_own_momentum():
    flow = build_maf(D, 2, (8,), generator=torch.Generator().manual_seed(0), dtype=torch.float64, batch_norm=True)
    flow.transforms[1].momentum, flow.transforms[3].momentum = 0.05, 0.5
    flow = _perturb(flow).train()
    x = 3.0 * torch.randn(64, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    flow(x)
    fused_var = flow.transforms[3].running_var.clone()
    flow.load_state_dict(state)
    flow.forward_reference(x)
    assert torch.allclose(fused_var, flow.transforms[3].running_var, rtol=1e-12)


def test_scoring_plan_sees_edits_through_data():
    flow = _perturb(build_maf(D, 2, (8,), generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64, batch_norm=True)).eval()
    x = torch.randn(20, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        first = flow.log_prob(x)
    flow.transforms[0].made.layers[-1].bias.data += 0.5  # bypasses autograd's version counter
    flow.transforms[1].running_mean.data += 0.5
    u, log_det = flow.forward_reference(x)
    with torch.no_grad():
        got = flow.log_prob(x)
    assert not torch.allclose(got, first)
    assert torch.allclose(got, (flow.base.log_prob(u) + log_det).detach(), rtol=1e-12, atol=1e-10)


def test_first_scoring_calls_from_many_threads_agree():
    flow = _perturb(build_maf(D, 3, (16,), generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64, batch_norm=True)).eval()
    x = torch.randn(500, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u, log_det = flow.forward_reference(x)
    expected = (flow.base.log_prob(u) + log_det).detach()
    for _ in range(5):
        flow.__dict__.pop("_scoring_plan", None)  # cold cache: every thread may build the plan
        barrier = threading.Barrier(8)
        results, errors = [], []

        def score():
            try:
                barrier.wait()
                with torch.no_grad():
                    results.append(flow.log_prob(x))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=score) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(torch.allclose(r, expected, rtol=1e-12, atol=1e-10) for r in results)


def test_workspace_index_cache_is_bounded():
    x = torch.randn(3, 2)
    for width in range(1, 100):
        flow = build_maf(2, 1, (width,), batch_norm=True)
        flow(x)
    assert fused._ones_rows.cache_info().currsize <= fused._ones_rows.cache_info().maxsize


def test_building_does_not_touch_the_global_torch_rng():
    state = torch.get_rng_state()
    build_maf(3, 2, (8,), order="random", batch_norm=True)
    assert torch.equal(state, torch.get_rng_state())


def test_a_fit_leaves_no_reference_cycle_holding_the_optimiser():
    import gc

    flow = build_maf(D, 2, (8,), generator=torch.Generator().manual_seed(0), batch_norm=True)
    x = torch.randn(200, D, generator=torch.Generator().manual_seed(1))
    # torch's first Adam in a process leaves a traceback cycle of its own behind
    torch.optim.Adam([torch.zeros(2, requires_grad=True)], fused=True)
    gc.collect()
    gc.disable()
    try:
        train_flow(flow, x[:150], x[150:], batch_size=50, max_epochs=2, generator=torch.Generator().manual_seed(0))
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # freed by reference counting at once, not left for the cycle collector
        # (which let the optimiser state and gradients outlive the fit)
        assert not any(isinstance(o, (torch.optim.Optimizer, Adam)) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_train_flow_fits_a_conditional_flow_with_early_stopping():
    gen = torch.Generator().manual_seed(10)
    c = torch.randn(3000, 1, generator=gen)
    x = torch.cat([c, -c], 1) * 2.0 + 0.1 * torch.randn(3000, 2, generator=gen)
    flow = build_maf(2, 2, (16,), batch_norm=True, generator=torch.Generator().manual_seed(0),
                     context_features=1)
    result = train_flow(flow, x[:2500], x[2500:], context=c[:2500], context_val=c[2500:],
                        batch_size=100, max_epochs=15, learning_rate=3e-3,
                        generator=torch.Generator().manual_seed(0))
    assert result.best_validation_score > 1.0  # far above the unconditional spread (< -2)
    with torch.no_grad():
        assert flow.log_prob(x[2500:], c[2500:]).mean() > flow.log_prob(x[2500:], -c[2500:]).mean() + 5
    with pytest.raises(ValueError, match="context_val"):
        train_flow(flow, x[:2500], x[2500:], context=c[:2500], max_epochs=1)


@pytest.mark.parametrize("training", [True, False])
def test_permutation_layers_run_in_the_fused_pass(training):
    from skflow.nn import Permutation

    maf = build_maf(D, 2, (12,), batch_norm=True, order="identity", generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    layers = list(maf.transforms)
    layers.insert(2, Permutation([2, 0, 3, 1]).double())
    flow = _perturb(Flow(layers, D)).train(training)
    assert flow.fusable() and len(flow.segments()) == 1
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _same(flow, x)
    flow.eval()
    u, log_det = flow.forward_reference(x)
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x), (flow.base.log_prob(u) + log_det).detach(), rtol=1e-12, atol=1e-10)


# ------------------------------------------------------- Gaussian start
def _gaussian_data(n=400, seed=11):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(D, D, generator=gen, dtype=torch.float64)
    return torch.randn(n, D, generator=gen, dtype=torch.float64) @ a.t() + torch.arange(D, dtype=torch.float64)


def test_gaussian_start_scores_the_fitted_gaussian_exactly():
    from scipy.stats import multivariate_normal

    x = _gaussian_data()
    mean, cov = x.mean(0), torch.cov(x.t(), correction=0)
    flow = build_maf(D, 3, (16,), batch_norm=False, generator=torch.Generator().manual_seed(0),
                     dtype=torch.float64, gaussian_start=True).eval()
    flow.transforms[0].set_gaussian(mean, cov)
    expected = multivariate_normal(mean.numpy(), cov.numpy()).logpdf(x.numpy())
    with torch.no_grad():
        fused_scores = flow.log_prob(x).numpy()  # the fused scoring plan
    reference = (flow.base.log_prob(flow.forward_reference(x)[0]) + flow.forward_reference(x)[1]).detach()
    assert flow.fusable()
    assert abs(fused_scores - expected).max() < 1e-8
    assert abs(reference.numpy() - expected).max() < 1e-8
    # sampling inverts it
    draws = flow.sample(20000, torch.Generator().manual_seed(0))
    assert torch.allclose(draws.mean(0), mean, atol=0.15 * cov.diagonal().sqrt().max())


@pytest.mark.parametrize("training", [True, False])
def test_lower_triangular_layer_fused_equals_reference(training):
    flow = build_maf(D, 2, (12,), batch_norm=True, generator=torch.Generator().manual_seed(0),
                     dtype=torch.float64, gaussian_start=True)
    flow = _perturb(flow).train(training)
    assert flow.fusable() and len(flow.segments()) == 1
    _same(flow, torch.randn(50, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64))


def test_lower_triangular_layer_trains_with_flat_parameters():
    x = _gaussian_data(600).float()
    flow = build_maf(D, 1, (8,), batch_norm=False, generator=torch.Generator().manual_seed(0), gaussian_start=True)
    from skflow.nn.training import mean_log_prob

    layer = flow.transforms[0]
    initial = mean_log_prob(flow, x[500:])
    result = train_flow(flow, x[:500], x[500:], batch_size=50, max_epochs=30, learning_rate=1e-2,
                        generator=torch.Generator().manual_seed(0))
    assert torch.all(layer.weight[layer.mask == 0] == 0)  # the upper part stays masked out
    assert result.best_validation_score > initial + 1.0  # the dense layer learns the correlations
    assert layer.log_diag.abs().sum() > 0


def _averaging_run(decay, x_val=None, epochs=6):
    from skflow.nn import build_maf, train_flow

    flow = build_maf(3, n_flows=2, hidden_sizes=(8,), generator=torch.Generator().manual_seed(0),
                     dtype=torch.float64)
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 + 1
    trained = []  # the weights after each epoch (one step each: batch = every row), as the log sees them
    log = lambda msg: trained.append({k: v.clone() for k, v in flow.state_dict().items()})  # noqa: E731
    result = train_flow(flow, x, x_val, max_epochs=epochs, batch_size=40, n_iter_no_change=10**6, tol=-1e9,
                        learning_rate=0.05, shuffle=False, average_decay=decay, log=log)
    return flow, trained, result


def test_weight_averaging_returns_the_moving_average_of_the_trained_weights():
    from skflow.nn import build_maf

    _, trained, _ = _averaging_run(None)  # averaging does not change the trained weights
    flow, averaged, _ = _averaging_run(0.9)

    expected = {k: v.clone() for k, v in build_maf(3, n_flows=2, hidden_sizes=(8,),
                                                    generator=torch.Generator().manual_seed(0),
                                                    dtype=torch.float64).state_dict().items()}
    for t, weights in enumerate(trained, start=1):
        w = 1 - min(0.9, (1 + t) / (10 + t))
        expected = {k: expected[k] + w * (weights[k] - expected[k]) if v.is_floating_point() else v
                    for k, v in expected.items()}
    moved = 0
    for k, v in flow.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-12, atol=1e-12)
        moved += not torch.equal(v, trained[-1][k])
    assert moved  # the average, not the last weights
    for k, v in averaged[-1].items():  # the last epoch's log line ran with the averaged weights in place
        torch.testing.assert_close(v, expected[k], rtol=1e-12, atol=1e-12)


def test_weight_averaging_with_decay_0_is_training_without_it():
    x_val = torch.randn(10, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    plain, _, plain_result = _averaging_run(None, x_val)
    averaged, _, averaged_result = _averaging_run(0.0, x_val)
    assert plain_result.validation_scores == averaged_result.validation_scores
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(averaged.state_dict()[k], v, rtol=0, atol=0)


def test_average_decay_reaches_training_through_the_estimator():
    import numpy as np

    from skflow import MAFDensity

    X = np.random.RandomState(0).normal(size=(300, 2)) ** 2
    common = dict(n_flows=2, hidden_layer_sizes=(8,), max_iter=20, random_state=0, init="identity")
    plain = MAFDensity(**common, average_decay=None).fit(X).score_samples(X)
    np.testing.assert_array_equal(MAFDensity(**common, average_decay=0.0).fit(X).score_samples(X), plain)
    assert not np.allclose(MAFDensity(**common).fit(X).score_samples(X), plain)  # the default averages


def _logged_rates(**settings):
    """The learning rate each epoch's progress line shows, and the result, of a small train_flow."""
    torch.manual_seed(0)
    x = torch.randn(400, 2)
    flow = build_maf(2, n_flows=1, hidden_sizes=(8,), generator=torch.Generator().manual_seed(0))
    lines = []
    result = train_flow(flow, x[:300], x[300:], batch_size=50, generator=torch.Generator().manual_seed(0),
                        log=lines.append, n_iter_no_change=100, **settings)
    return [float(line.split(" lr ")[1].split()[0]) for line in lines], result


def test_cosine_schedule_falls_to_zero_over_the_steps_allowed():
    rates, result = _logged_rates(max_epochs=4, learning_rate=1e-2, learning_rate_schedule="cosine")
    steps = 4 * 6  # 300 rows in batches of 50
    # the rate of each epoch's last step (step k * 6 - 1 of 24, counted from 0)
    expected = [1e-2 * 0.5 * (1 + math.cos(math.pi * (6 * k - 1) / steps)) for k in range(1, 5)]
    assert result.n_epochs == 4
    for shown, rate in zip(rates, expected):
        assert shown == float(f"{rate:.1e}")
    assert rates[0] > rates[1] > rates[2] > rates[3] < 1e-4


def test_max_seconds_stops_training_after_a_step_and_validates_it():
    rates, result = _logged_rates(max_epochs=50, max_seconds=1e-9)
    assert result.out_of_time and result.n_epochs == 1 and len(result.validation_scores) == 1
    _, untimed = _logged_rates(max_epochs=2)
    assert not untimed.out_of_time and untimed.n_epochs == 2
    with pytest.raises(ValueError, match="max_seconds"):
        _logged_rates(max_seconds=0.0)
    with pytest.raises(ValueError, match="cosine"):
        _logged_rates(learning_rate_schedule="linear")
