"""The fit's optimiser and thread policy: same updates as torch's Adam, the
caller's thread count untouched, the tuner's choices, no slow first fit."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from skflow import MAFDensity
from skflow.nn import build_maf, train_flow
from skflow.nn.adam import Adam
from skflow.nn import threads
from skflow.nn.threads import ThreadTuner, intra_op_threads, threads_for_rows


def _adam_pair(weight_decay, fused):
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(50, generator=gen)
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt_ours = Adam([ours], lr=1e-2, weight_decay=weight_decay)
    opt_theirs = torch.optim.Adam([theirs], lr=1e-2, weight_decay=weight_decay,
                                  **({"fused": True} if fused else {"foreach": False}))
    for step in range(20):
        grad = torch.randn(50, generator=gen)
        if step == 10:  # the learning rate may change between steps
            opt_ours.lr = 5e-3
            opt_theirs.param_groups[0]["lr"] = 5e-3
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    return ours.detach(), theirs.detach(), opt_ours


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_is_torch_fused_adam_bit_for_bit(weight_decay):
    ours, theirs, _ = _adam_pair(weight_decay, fused=True)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_without_the_fused_kernel_computes_the_same_update(weight_decay, monkeypatch):
    monkeypatch.delattr(torch, "_fused_adam_")
    ours, theirs, opt = _adam_pair(weight_decay, fused=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert float(opt.state[next(iter(opt.state))]["step"]) == 20


def test_adam_skips_parameters_without_gradients():
    a, b = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad = torch.ones(3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3)) and not torch.equal(a.detach(), torch.ones(3))
    opt.zero_grad()
    assert a.grad is None


def test_a_first_fit_does_not_import_torch_dynamo():
    # torch.optim's optimisers import torch._dynamo on first use: 1.8 s of a
    # process's first fit.
    code = ("import sys, numpy as np; from skflow import MAFDensity; "
            "MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0)"
            ".fit(np.random.RandomState(0).normal(size=(100, 3))); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ threads
def test_intra_op_threads_restores_the_callers_count():
    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), intra_op_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before
    with intra_op_threads(before + 4):  # never raised above the caller's count
        assert torch.get_num_threads() == before


def test_small_calls_run_in_one_thread():
    assert threads_for_rows(10) == 1
    assert threads_for_rows(10**6) is None


def _feed(tuner, seconds_by_threads, steps):
    chosen = []
    for _ in range(steps):
        threads = tuner.current()
        tuner.record(seconds_by_threads[threads])
        chosen.append(threads)
    return chosen


@pytest.fixture(autouse=True)
def _forget_choices(monkeypatch):
    monkeypatch.setattr(threads, "_REMEMBERED", {})


def test_tuner_ladder_goes_down_from_the_callers_count():
    assert ThreadTuner(max_threads=6).ladder == [6, 3, 1]
    assert ThreadTuner(max_threads=1).ladder == [1]


def test_tuner_keeps_fewer_threads_only_when_they_are_faster():
    tuner = ThreadTuner(max_threads=4, probe_steps=2)
    _feed(tuner, {4: 2.1, 2: 1.9, 1: 1.85}, 20)
    assert tuner.current() == 2  # one thread was not 5 % faster than two
    assert [t for t, _ in tuner.history] == [4, 2, 1]

    busy = ThreadTuner(max_threads=2, probe_steps=3)
    steps = _feed(busy, {2: 5.0, 1: 1.0}, 20)
    assert busy.current() == 1
    assert steps.count(2) == 4  # the warm-up step and three probes

    idle = ThreadTuner(max_threads=2, probe_steps=3)
    steps = _feed(idle, {2: 1.0, 1: 5.0}, 20)
    assert idle.current() == 2
    assert steps.count(1) == 1  # dropped after one step 25 % slower


def test_tuner_probes_again_when_steps_slow_down():
    tuner = ThreadTuner(max_threads=2, probe_steps=2, reprobe_every=1000)
    _feed(tuner, {1: 2.0, 2: 1.0}, 10)
    assert tuner.current() == 2
    # another process takes a core: two threads become 4x slower, one 1.5x
    _feed(tuner, {1: 3.0, 2: 4.0}, 12)
    assert tuner.current() == 1
    assert len(tuner.history) == 4


def test_tuner_starts_from_the_last_choice_for_the_same_work():
    first = ThreadTuner(max_threads=2, probe_steps=2, work=1e8)
    _feed(first, {2: 5.0, 1: 1.0}, 10)
    assert first.current() == 1
    again = ThreadTuner(max_threads=2, probe_steps=2, work=1.1e8)
    assert _feed(again, {2: 5.0, 1: 1.0}, 10) == [1] * 10  # no probing
    other = ThreadTuner(max_threads=2, probe_steps=2, work=1e10)
    assert other.current() == 2  # another size probes afresh


def test_training_leaves_the_thread_count_as_it_was():
    flow = build_maf(3, 2, (64, 64), generator=torch.Generator().manual_seed(0), batch_norm=True)
    x = torch.randn(2048, 3, generator=torch.Generator().manual_seed(1))
    before = torch.get_num_threads()
    train_flow(flow, x, x[:100], batch_size=1024, max_epochs=3, generator=torch.Generator().manual_seed(0))
    assert torch.get_num_threads() == before
    X = x.numpy()
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    est.score_samples(X)
    est.sample(10, random_state=0)
    assert torch.get_num_threads() == before


def test_small_fits_do_not_depend_on_the_thread_count():
    # Below the one-thread size a fit runs in one thread whatever torch allows.
    X = np.random.RandomState(0).normal(size=(3000, 6)).astype(np.float32)
    before = torch.get_num_threads()
    scores = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            est = MAFDensity(n_flows=2, hidden_layer_sizes=(64, 64), batch_size=1024, max_iter=3,
                             init="identity", random_state=0).fit(X)
            scores.append(est.score_samples(X[:200]))
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(scores[0], scores[1])


def _large_fit(random_state, hidden=(256, 256)):
    # 5 x (256, 256) MADEs at batch 1024: above the seeded one-thread size, where
    # MKL's rounding depends on the thread count.
    X = np.random.RandomState(0).standard_t(3, size=(4096, 6)).astype(np.float32)
    est = MAFDensity(n_flows=5, hidden_layer_sizes=hidden, activation="relu", batch_size=1024, max_iter=2,
                     early_stopping=False, init="identity", layer_type="affine", random_state=random_state).fit(X)
    return est.score_samples(X[:500])


def test_a_seeded_large_fit_keeps_the_thread_count_and_is_reproducible(monkeypatch):
    import skflow.nn.training as training

    ladders = []

    class Recorder(training.ThreadTuner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            ladders.append(self.ladder)

    monkeypatch.setattr(training, "ThreadTuner", Recorder)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first, second = _large_fit(0), _large_fit(0)
        assert ladders == []  # torch's count, nothing timed
        _large_fit(None)
        assert ladders == [[2, 1]]  # without a seed the count is chosen by timing
        _large_fit(0, hidden=(100, 100))  # seeded and mid-sized: one thread, chosen by size alone
        assert ladders[-1] == [1]
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(first, second)


def _fit_in_worker(seed):
    X = np.random.RandomState(seed).normal(size=(300, 3))
    MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=seed).fit(X)
    return torch.get_num_threads()


def test_joblib_workers_keep_their_thread_budget():
    from joblib import Parallel, delayed

    # loky gives each of two workers on this machine cpu_count // 2 threads
    # (OMP_NUM_THREADS); the fit must neither exceed nor change it.
    counts = Parallel(n_jobs=2)(delayed(_fit_in_worker)(s) for s in range(2))
    budget = max(1, (os.cpu_count() or 1) // 2)
    assert all(c <= budget for c in counts)
