"""The MADE mixture-of-Gaussians base (the MAF paper's MAF MoG)."""

import joblib
import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from skflow import MAFDensity, MAFRegressor
from skflow.nn import MADEMixture, build_maf


def _random_base(n_features=3, n_components=4, context_features=0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    base = MADEMixture(n_features, n_components, (16, 16), context_features=context_features,
                       generator=gen).double()
    with torch.no_grad():
        for layer in base.made.layers:
            layer.weight.copy_(0.3 * torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64) * layer.mask)
            layer.bias.copy_(0.3 * torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64))
    return base


def test_log_density_is_a_product_of_one_dimensional_mixtures():
    base = _random_base(context_features=2)
    u = torch.randn(6, 3, dtype=torch.float64)
    c = torch.randn(6, 2, dtype=torch.float64)
    with torch.no_grad():
        out = base.made(u, c).numpy().reshape(6, 3, 4, 3)  # (row, [logit|mean|log-scale], component, feature)
        got = base.log_prob(u, c).numpy()
    bound = base.log_scale_bound
    want = np.zeros(6)
    for i in range(3):
        logits, means = out[:, 0, :, i], out[:, 1, :, i]
        log_scales = bound * np.tanh(out[:, 2, :, i] / bound)
        log_w = logits - logsumexp(logits, axis=1, keepdims=True)
        want += logsumexp(log_w + norm(means, np.exp(log_scales)).logpdf(u.numpy()[:, i : i + 1]), axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_mixture_parameters_are_autoregressive():
    base = _random_base(n_features=4)
    u = torch.randn(4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: base.made(v[None])[0].view(3, 4, 4), u)  # (3, K, D_out, D_in)
    dependence = jac.abs().sum((0, 1))  # (output feature, input feature)
    assert torch.all(dependence.triu() == 0)  # feature i sees only features < i
    assert torch.all(dependence[torch.ones(4, 4).tril(-1).bool()] != 0)  # and all of them


def test_samples_match_a_known_mixture():
    base = MADEMixture(2, n_components=2, hidden_sizes=(8,)).double()
    with torch.no_grad():
        for layer in base.made.layers:
            layer.weight.zero_()
        bias = base.made.layers[-1].bias.view(3, 2, 2)  # [logit|mean|log-scale], component, feature
        bias[0] = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0]])  # weights 1/4, 3/4 for feature 0
        bias[1] = torch.tensor([[-2.0, 1.0], [2.0, 1.0]])
        # Raw log-scales whose soft clamp gives log 0.5 and log 0.2.
        bound = base.log_scale_bound
        bias[2] = bound * torch.atanh(torch.log(torch.tensor([[0.5, 0.2], [0.5, 0.2]])) / bound)
    draws = base.sample(200_000, torch.Generator().manual_seed(0), torch.float64).numpy()
    # Feature 0: 1/4 N(-2, 0.25) + 3/4 N(2, 0.25); feature 1: N(1, 0.04).
    np.testing.assert_allclose(draws[:, 0].mean(), 0.25 * -2 + 0.75 * 2, atol=0.02)
    np.testing.assert_allclose(draws[:, 0].var(), 0.25 + 0.25 * 4 + 0.75 * 4 - 1.0, atol=0.03)
    np.testing.assert_allclose(np.mean(draws[:, 0] < 0), 0.25, atol=0.005)
    np.testing.assert_allclose([draws[:, 1].mean(), draws[:, 1].std()], [1.0, 0.2], atol=0.005)
    # The same seed gives the same draws.
    again = base.sample(10, torch.Generator().manual_seed(0), torch.float64).numpy()
    np.testing.assert_array_equal(again, base.sample(10, torch.Generator().manual_seed(0), torch.float64).numpy())


def test_one_pass_sampling_equals_one_network_pass_per_feature():
    base = _random_base(n_features=4, context_features=2)
    noise = base.draw_noise(500, torch.Generator().manual_seed(0), torch.float64)
    c = torch.randn(500, 2, dtype=torch.float64)
    got = base.from_noise(noise, c)
    # The reference: D full passes, each fixing the next feature in the order.
    k, rows = base.n_components, torch.arange(500)
    u = torch.zeros(500, 4, dtype=torch.float64)
    with torch.no_grad():
        for i in base.made.order:
            log_w, mean, log_scale = base._mixture(u, c)
            cdf = log_w[:, :, i].exp().cumsum(1)
            pick = torch.searchsorted(cdf, noise[:, 4 + i : 5 + i] * cdf[:, -1:]).clamp_(max=k - 1)[:, 0]
            u[:, i] = mean[rows, pick, i] + log_scale[rows, pick, i].exp() * noise[:, i]
    torch.testing.assert_close(got, u, rtol=0, atol=1e-10)


def test_samples_follow_the_density_in_a_flow():
    flow = build_maf(2, n_flows=1, hidden_sizes=(16,), base="made_mog", n_components=3, batch_norm=False,
                     dtype=torch.float64, generator=torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    x = flow.sample(4000, torch.Generator().manual_seed(0))
    # Importance check: E_p[1 / p(x)] over a box equals its area where p has its mass inside.
    with torch.no_grad():
        log_p = flow.log_prob(x)
    assert torch.isfinite(log_p).all()
    # The sample's mean log-density is the flow's negative entropy; a second
    # sample agrees with it (a broken sampler drifts far from the density).
    y = flow.sample(4000, torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert abs(float(log_p.mean() - flow.log_prob(y).mean())) < 0.1


def test_starts_near_a_standard_normal():
    base = MADEMixture(3, n_components=10, hidden_sizes=(16,))
    draws = base.sample(100_000, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(draws.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(draws.var(0), 1.0, atol=0.03)


def test_estimator_with_a_mixture_base_round_trips(tmp_path):
    X = np.random.RandomState(0).normal(size=(300, 3))
    est = MAFDensity(base="made_mog", n_components=3, n_flows=1, hidden_layer_sizes=(8,), max_iter=3,
                     random_state=0).fit(X)
    joblib.dump(est, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(5, random_state=0), est.sample(5, random_state=0))


def test_a_two_mode_conditional_needs_the_mixture_base():
    rng = np.random.RandomState(0)
    x = rng.uniform(0.5, 2, size=(3000, 1))
    y = np.where(rng.rand(3000) < 0.5, -1, 1) * x[:, 0] + 0.1 * rng.normal(size=3000)
    train, test = slice(0, 2500), slice(2500, None)
    normal = MAFRegressor(n_flows=2, hidden_layer_sizes=(32, 32), base="normal", random_state=0).fit(
        x[train], y[train])
    mixture = MAFRegressor(n_flows=2, hidden_layer_sizes=(32, 32), base="made_mog", n_components=5,
                           random_state=0).fit(x[train], y[train])
    gain = mixture.log_prob(x[test], y[test]).mean() - normal.log_prob(x[test], y[test]).mean()
    assert gain > 0.5, gain
    # Its draws have both modes; the conditional mean (by draws) sits between them.
    draws = mixture.sample(np.array([[1.5]]), 2000, random_state=0)[0]
    assert 0.3 < np.mean(draws > 0) < 0.7
    assert abs(mixture.predict(np.array([[1.5]]))[0]) < 0.3


def test_invalid_components():
    with pytest.raises(ValueError, match="n_components"):
        MADEMixture(2, n_components=0)
