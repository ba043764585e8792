"""The fused driver (skflow.nn.fused) and its kernels against the reference modules."""

import copy
import contextlib
import pickle
import math

import pytest
import torch

from skflow.nn.training import train_flow
from skflow.nn import build_maf
from skflow.nn.fused import ScoringPlan
from skflow.nn.flow import Flow

from ._helpers import perturb as _perturb

D = 5


def _perturbed_flow(activation="tanh", bound=5.0, batch_norm=True, seed=1):
    """A float64 flow whose every parameter and statistic is away from its identity start."""
    gen = torch.Generator().manual_seed(seed)
    flow = build_maf(D, 3, (16, 12), activation, batch_norm, log_scale_bound=bound,
                     generator=gen, dtype=torch.float64)
    return _perturb(flow, gen, 0.3)


def _reference_log_prob(flow, x):
    """Log-density through the reference modules, one operation at a time."""
    u, log_det = flow.forward_reference(x)
    return (-0.5 * (u.square().sum(1) + x.shape[1] * math.log(2 * math.pi)) + log_det).detach()


def _run(flow, x, reference):
    flow.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    u, log_det = flow.forward_reference(x) if reference else flow(x)
    weights = torch.linspace(0, 1, x.shape[0], dtype=x.dtype)
    (0.3 * u.square().sum() + (log_det * weights).sum()).backward()
    return ([u.detach(), log_det.detach(), x.grad]
            + [p.grad for p in flow.parameters()] + [b.clone() for b in flow.buffers()])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("bound", [5.0, None])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_fused_pass_equals_reference(activation, bound, batch_norm, training):
    flow = _perturbed_flow(activation, bound, batch_norm).train(training)
    assert flow.fusable()
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    fused = _run(flow, x, reference=False)
    flow.load_state_dict(state)
    reference = _run(flow, x, reference=True)
    # values, log-dets, input and parameter gradients, updated running statistics
    for a, b in zip(fused, reference, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [1, 7, 300, 1000])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_scoring_plan_equals_reference_across_chunks(n, batch_norm):
    flow = _perturbed_flow(batch_norm=batch_norm).eval()
    x = torch.randn(n, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = _reference_log_prob(flow, x)
    kernels = flow._kernels(n)
    # a tiny chunk forces many chunks and a ragged last one
    got = ScoringPlan(kernels, x.shape[1]).log_prob(x, flow.base, chunk_bytes=256 * 16 * 8)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-10)
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x), expected, rtol=1e-12, atol=1e-10)


def test_non_fusable_activation_uses_the_reference_path():
    flow = build_maf(3, 2, (8,), activation="elu", generator=torch.Generator().manual_seed(0), batch_norm=True)
    assert not flow.fusable()
    x = torch.randn(10, 3)
    with torch.no_grad():
        lp = flow.eval().log_prob(x)
    assert torch.isfinite(lp).all()
    # only the MAF layers (elu) lose the fused pass; the batch-norm layers keep it
    assert [kernels is None for _, kernels in flow.segments()] == [True, False, True, False]
    with flow.flat_parameters() as params:
        n_flat = 2  # one flat tensor per fused run (each batch norm here)
        assert len(params) == n_flat + sum(len(list(t.parameters())) for t in flow.transforms[::2])
    flow = build_maf(3, 2, (8,), activation="elu", batch_norm=False)
    with flow.flat_parameters() as params:
        assert params is None


def _masked_weights_zeroed(flow):
    with torch.no_grad():
        for t in flow.transforms:
            if hasattr(t, "made"):
                for layer in t.made.layers:
                    layer.weight.mul_(layer.mask)
    return flow


def test_flat_parameters_zero_masked_weights_without_changing_the_flow():
    flow = _perturbed_flow().eval()  # masked weights away from 0
    x = torch.randn(32, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        before = flow.log_prob(x)
    with flow.flat_parameters():
        layers = [layer for t in flow.transforms if hasattr(t, "made") for layer in t.made.layers]
        assert all(torch.all(layer.weight[layer.mask == 0] == 0) for layer in layers)
        with torch.no_grad():
            assert torch.allclose(flow.log_prob(x), before, rtol=1e-12, atol=1e-12)


def test_flat_parameters_alias_train_and_release():
    flow = _masked_weights_zeroed(_perturbed_flow()).train()
    x = torch.randn(32, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    u, ld = flow(x)
    (u.square().sum() + ld.sum()).backward()
    expected = {name: p.grad.clone() for name, p in flow.named_parameters()}
    flow.load_state_dict(state)
    flow.zero_grad(set_to_none=True)
    with flow.flat_parameters() as (flat,):
        u, ld = flow(x)
        (u.square().sum() + ld.sum()).backward()
        for name, p in flow.named_parameters():
            # each parameter's gradient sits where the parameter sits in the flat tensor
            assert p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
            grad = flat.grad.as_strided(p.shape, p.stride(), p.storage_offset())
            assert torch.equal(grad, expected[name]), name
        assert all(p.grad is None for p in flow.parameters())
        with torch.no_grad():
            flat.add_(1.0)  # an optimiser step on the flat tensor moves the module
    for name, p in flow.named_parameters():
        assert torch.allclose(p, state[name] + 1.0)
        # own storage again: pickles hold each parameter once, not the whole buffer
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()


def test_flat_gradient_buffer_is_not_overwritten_while_held():
    flow = _perturbed_flow().train()
    x = torch.randn(16, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with flow.flat_parameters() as (flat,):
        flow(x)[0].sum().backward()
        first = flat.grad.clone()
        flow(x)[0].sum().backward()  # accumulates: must equal twice the first
        assert torch.allclose(flat.grad, 2 * first)


def test_training_with_flat_parameters_equals_per_parameter_training(monkeypatch):
    x = torch.randn(600, D, generator=torch.Generator().manual_seed(6))

    def fit():
        flow = build_maf(D, 2, (16, 16), generator=torch.Generator().manual_seed(0), batch_norm=True)
        result = train_flow(flow, x[:500], x[500:], batch_size=50, max_epochs=3,
                            generator=torch.Generator().manual_seed(0))
        return flow, result

    flat_flow, flat_result = fit()

    @contextlib.contextmanager
    def no_flat(self):
        yield None

    monkeypatch.setattr(Flow, "flat_parameters", no_flat)
    flow, result = fit()
    # Same arithmetic; the vectorised Adam kernel may round a tail element
    # differently over one long tensor than over many short ones (float32).
    assert flat_result.validation_scores == pytest.approx(result.validation_scores, abs=1e-5)
    for a, b in zip(flat_flow.state_dict().values(), flow.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("schedule, expected", [
    ("adaptive", [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3]),
    ("constant", [1e-2] * 6),
])
def test_learning_rate_schedule(schedule, expected):
    # tol so large that no epoch counts as an improvement: the rate halves every
    # n_iter_no_change // 3 = 2 stale epochs, and training stops after 6.
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    flow = build_maf(3, 1, (8,), generator=torch.Generator().manual_seed(0), batch_norm=True)
    lines = []
    train_flow(flow, x[:150], x[150:], learning_rate=1e-2, learning_rate_schedule=schedule,
               n_iter_no_change=6, tol=1e9, max_epochs=50, batch_size=50,
               generator=torch.Generator().manual_seed(0), log=lines.append)
    rates = [float(line.split(" lr ")[1].split()[0]) for line in lines]
    assert rates == pytest.approx(expected)


def test_unknown_learning_rate_schedule_is_rejected():
    flow = build_maf(2, 1, (4,), batch_norm=True)
    with pytest.raises(ValueError, match="learning_rate_schedule"):
        train_flow(flow, torch.randn(20, 2), learning_rate_schedule="linear")


def test_masked_weights_start_at_zero():
    flow = build_maf(4, 2, (10, 10), generator=torch.Generator().manual_seed(0), batch_norm=True)
    for t in flow.transforms[::2]:
        for layer in t.made.layers:
            assert torch.all(layer.weight[layer.mask == 0] == 0)


def test_flush_denormals_zeroes_parameters_and_adam_state():
    from skflow.nn.training import flush_denormals

    # Weight decay alone (no data gradient) drives Adam's moments into denormals.
    w = torch.full((10,), 0.1, requires_grad=True)
    opt = torch.optim.Adam([w], lr=1e-3, weight_decay=1e-6)
    for _ in range(2000):
        w.grad = torch.zeros_like(w)
        opt.step()
    tiny = torch.finfo(torch.float32).tiny
    m = opt.state[w]["exp_avg"]
    assert ((m.abs() < tiny) & (m != 0)).any()
    flush_denormals([w], opt)
    for t in (w.detach(), m, opt.state[w]["exp_avg_sq"]):
        assert not ((t.abs() < tiny) & (t != 0)).any()


def test_refit_batch_norm_overwrite_gives_the_same_statistics():
    flow = _perturbed_flow().eval()
    x = torch.randn(500, D, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    flow.refit_batch_norm(x, chunk_size=128)
    expected = {k: v.clone() for k, v in flow.state_dict().items()}
    scratch = x.clone()
    flow.refit_batch_norm(scratch, chunk_size=128, overwrite=True)
    for k, v in flow.state_dict().items():
        assert torch.equal(v, expected[k])
    assert not torch.equal(scratch, x)  # the copy was used as the buffer


def test_estimator_passes_the_learning_rate_schedule(capsys):
    from skflow import MAFDensity

    X = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)).numpy()
    MAFDensity(n_flows=1, hidden_layer_sizes=(8,), learning_rate="adaptive", learning_rate_init=1e-2,
               tol=1e9, n_iter_no_change=6, random_state=0, verbose=1).fit(X)
    rates = [float(line.split(" lr ")[1].split()[0])
             for line in capsys.readouterr().out.splitlines() if " lr " in line]
    assert rates == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3])


@pytest.mark.parametrize("order", ["reverse", "random"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_block_sparse_scoring_of_wide_layers_equals_reference(order, batch_norm):
    # wide enough (>= 128 units) for the scoring pass to split every product into row blocks
    gen = torch.Generator().manual_seed(7)
    d = 70
    flow = build_maf(d, 3, (150, 130), "tanh", batch_norm, order, generator=gen, dtype=torch.float64)
    flow = _perturb(flow, gen, 0.05).eval()
    x = torch.randn(300, d, generator=gen, dtype=torch.float64)
    expected = _reference_log_prob(flow, x)
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x), expected, rtol=1e-12, atol=1e-9)


def test_scoring_plan_cache_follows_parameter_and_statistic_changes():
    flow = _perturbed_flow().eval()
    x = torch.randn(50, D, generator=torch.Generator().manual_seed(8), dtype=torch.float64)

    def check():
        expected = _reference_log_prob(flow, x)
        with torch.no_grad():
            got = flow.log_prob(x)
        assert torch.allclose(got, expected, rtol=1e-12, atol=1e-10)
        return got

    first = check()
    assert torch.equal(check(), first)  # served from the cache
    assert "_scoring_plan" not in pickle.loads(pickle.dumps(flow)).__dict__
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    with torch.no_grad():
        flow.transforms[0].made.layers[1].bias.add_(0.5)  # in place, as an optimiser step
    assert not torch.allclose(check(), first)
    flow.load_state_dict(state)
    assert torch.equal(check(), first)
    with torch.no_grad():
        flow.transforms[1].running_var.mul_(2.0)  # batch-norm statistics
    assert not torch.allclose(check(), first)


def test_reused_workspace_keeps_interleaved_passes_apart():
    flow = _perturbed_flow().train()
    gen = torch.Generator().manual_seed(9)
    x1 = torch.randn(40, D, generator=gen, dtype=torch.float64)
    x2 = torch.randn(40, D, generator=gen, dtype=torch.float64)
    state = {k: v.clone() for k, v in flow.state_dict().items()}

    def loss(x):
        u, ld = flow(x)
        return u.square().sum() + ld.sum(), u

    with flow.flat_parameters() as (flat,):
        expected = []
        for x in (x1, x2, x1):
            flow.load_state_dict(state)  # same batch-norm statistics for every pass
            l, u = loss(x)
            l.backward()
            expected.append((flat.grad.clone(), u.detach().clone()))
            flat.grad = None
        flow.load_state_dict(state)
        l1, u1 = loss(x1)  # takes the reused buffer
        l2, u2 = loss(x2)  # while it is out: a fresh one
        (l1 + l2).backward()
        assert torch.allclose(flat.grad, expected[0][0] + expected[1][0], rtol=1e-10, atol=1e-10)
        assert torch.equal(u1.detach(), expected[0][1]) and torch.equal(u2.detach(), expected[1][1])
        flat.grad = None
        flow.load_state_dict(state)
        l3, u3 = loss(x1)  # the buffer is back: reused
        assert torch.equal(u1.detach(), expected[0][1])  # earlier outputs are copies
        l3.backward()
        assert torch.allclose(flat.grad, expected[2][0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_float32_scoring_is_as_accurate_as_the_reference(activation):
    # Scoring folds tanh's affine parts into the products (one sigmoid pass per
    # hidden layer); in float32 that must stay as close to the float64 density
    # as the layer-by-layer float32 reference is.
    gen = torch.Generator().manual_seed(11)
    d = 12
    flow64 = build_maf(d, 4, (64, 64), activation, False, "reverse", generator=gen, dtype=torch.float64)
    flow64 = _perturb(flow64, gen, 0.05).eval()
    flow32 = copy.deepcopy(flow64).float()
    x = torch.randn(3000, d, generator=gen, dtype=torch.float64)
    exact = _reference_log_prob(flow64, x)
    reference32 = _reference_log_prob(flow32, x.float()).double()
    with torch.no_grad():
        fused32 = flow32.log_prob(x.float()).double()
    scale = (reference32 - exact).abs().max()
    assert (fused32 - exact).abs().max() <= 3 * scale + 1e-5


@contextlib.contextmanager
def _torch_threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunks_scored_by_workers_equal_one_thread_in_order(dtype):
    # With several threads, whole chunks go to one-thread workers (the next
    # free one takes the next chunk): each row's score must not depend on it.
    flow = _perturbed_flow(batch_norm=True).eval().to(dtype)
    x = torch.randn(5000, D, generator=torch.Generator().manual_seed(4), dtype=dtype)
    kernels = flow._kernels(len(x))
    with _torch_threads(1):
        serial = ScoringPlan(kernels, x.shape[1]).log_prob(x, flow.base, chunk_bytes=256 * 16 * 8)
    with _torch_threads(3):
        parallel = ScoringPlan(kernels, x.shape[1]).log_prob(x, flow.base, chunk_bytes=256 * 16 * 8)
        assert torch.get_num_threads() == 3  # the caller's count is left alone
    assert torch.equal(parallel, serial)


def test_an_error_in_a_scoring_worker_reaches_the_caller():
    flow = _perturbed_flow().eval()
    x = torch.randn(2000, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    class Broken(type(flow.base)):
        def fused_log_prob_(self, *args, **kwargs):
            raise RuntimeError("broken base")

    base = copy.deepcopy(flow.base)
    base.__class__ = Broken
    with _torch_threads(2), pytest.raises(RuntimeError, match="broken base"):
        ScoringPlan(flow._kernels(len(x)), x.shape[1]).log_prob(x, base, chunk_bytes=256 * 16 * 8)
