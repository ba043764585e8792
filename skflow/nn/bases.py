"""Base distributions: the density of a flow's output ``u``.

A base has the reference methods ``log_prob(u, context=None)`` and
``sample(n, generator, dtype, context=None)``, and ``fused_log_prob_`` for
the streaming scoring pass of :mod:`skflow.nn.fused`, which holds ``u``
transposed (features x rows) with its features in a layer's autoregressive
order.  A base may have parameters (an ``nn.Module`` that trains with the
flow) and may use the context.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers.affine import soft_clamp
from .made import MADE

__all__ = ["BaseDistribution", "GaussianMixtureBase", "MADEMixture", "StandardNormal"]

_LOG_2PI = math.log(2 * math.pi)


class BaseDistribution(nn.Module):
    """What a flow needs of its base distribution; subclasses implement
    :meth:`log_prob` and :meth:`sample`, and may override
    :meth:`fused_log_prob_` with a faster form."""

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def log_prob(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Log-density of each row of ``u``."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32,
               context: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` draws on the CPU (so a seed gives the same noise on any device)."""
        return self.from_noise(self.draw_noise(n, generator, dtype), context)

    def draw_noise(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        """The randomness behind ``n`` draws, one row per draw (on the CPU).

        :meth:`from_noise` turns it into draws; a row of noise gives the same
        draw whatever rows come with it, so one noise block reused for every
        row of a context (common random numbers) makes averages over draws
        independent of row order.  This default draws standard normals.
        """
        return torch.randn(n, self.n_features, generator=generator, dtype=dtype)

    def from_noise(self, noise: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Draws from the rows of :meth:`draw_noise`'s output (given ``context``)."""
        raise NotImplementedError

    def fused_log_prob_(self, u_t: torch.Tensor, order: torch.Tensor, out: torch.Tensor,
                        context_t: torch.Tensor | None = None) -> None:
        """Add the log-density of the columns of ``u_t`` to ``out``.

        ``u_t`` is ``(features, rows)`` with row ``k`` holding feature
        ``order[k]``; ``context_t`` is ``(1 + c, rows)`` with a leading row
        of ones, or None.  This default puts the features back in their
        natural order and calls :meth:`log_prob`.
        """
        u = torch.empty_like(u_t)
        u[order] = u_t
        context = None if context_t is None else context_t[1:].t()
        out.add_(self.log_prob(u.t(), context))


class StandardNormal(BaseDistribution):
    """The standard normal ``N(0, I)`` in ``n_features`` dimensions.

    Examples
    --------
    >>> import torch
    >>> StandardNormal(2).log_prob(torch.zeros(1, 2))
    tensor([-1.8379])
    """

    def log_prob(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return -0.5 * (u.square().sum(-1) + self.n_features * _LOG_2PI)

    def from_noise(self, noise: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return noise

    def fused_log_prob_(self, u_t: torch.Tensor, order: torch.Tensor, out: torch.Tensor,
                        context_t: torch.Tensor | None = None) -> None:
        # The order of the features does not matter for this base.
        out.add_(u_t.square().sum(0), alpha=-0.5).sub_(0.5 * self.n_features * _LOG_2PI)


class MADEMixture(BaseDistribution):
    """The MAF paper's "MADE MoG" base: ``p(u) = prod_i p(u_i | u_<i, c)``,
    each factor a mixture of ``n_components`` Gaussians whose weights,
    means and log-scales a MADE computes from ``u_<i`` (and the context).

    Log-densities take one MADE pass (log-sum-exp over the components, the
    log-scales soft-clamped to ``(-log_scale_bound, log_scale_bound)``);
    sampling computes every hidden unit once (:meth:`MADE.invert_in_one_pass`).
    It starts near a standard normal (equal weights, means spread over the
    normal's quantiles, the variance made up to 1), its components apart so
    that training can separate them.

    Parameters
    ----------
    n_features : int
    n_components : int, default=10
    hidden_sizes : sequence of int, default=(100, 100)
    activation : str, default="tanh"
    context_features : int, default=0
    generator : torch.Generator, optional
        Source of the MADE's initial weights.
    log_scale_bound : float, default=5.0

    Examples
    --------
    >>> import torch
    >>> base = MADEMixture(2, n_components=3, hidden_sizes=(8,))
    >>> base.log_prob(torch.zeros(4, 2)).shape
    torch.Size([4])
    """

    def __init__(self, n_features: int, n_components: int = 10, hidden_sizes=(100, 100),
                 activation: str = "tanh", context_features: int = 0,
                 generator: torch.Generator | None = None, log_scale_bound: float = 5.0):
        super().__init__(n_features)
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = n_components
        self.log_scale_bound = log_scale_bound
        self.made = MADE(n_features, hidden_sizes, 3 * n_components, None, activation,
                         generator=generator, context_features=context_features)
        self.made.reset_parameters(generator)
        with torch.no_grad():  # bias rows: [logits | means | log-scales], n_features each
            k = n_components
            means = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(k) + 0.5) / k) * math.sqrt(0.5)
            log_scale = 0.5 * math.log(max(1.0 - float(means.square().mean()), 1e-3))
            bias = self.made.layers[-1].bias.view(3 * k, n_features)
            bias[k : 2 * k] = means[:, None]
            bias[2 * k :] = log_scale

    def _mixture(self, u, context):
        """Log-weights, means and log-scales, each ``(n, n_components, n_features)``."""
        out = self.made(u, context).view(u.shape[0], 3, self.n_components, self.n_features)
        return (out[:, 0].log_softmax(1), out[:, 1], soft_clamp(out[:, 2], self.log_scale_bound))

    def log_prob(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        log_w, mean, log_scale = self._mixture(u, context)
        z = (u[:, None, :] - mean) * torch.exp(-log_scale)
        log_normal = -0.5 * (z.square() + _LOG_2PI) - log_scale
        return torch.logsumexp(log_w + log_normal, dim=1).sum(-1)

    def draw_noise(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        # Per feature: a standard normal for the value, a uniform for the component.
        noise = torch.randn(n, self.n_features, generator=generator, dtype=dtype)
        uniform = torch.rand(n, self.n_features, generator=generator, dtype=torch.float64)
        return torch.cat([noise, uniform.to(dtype)], 1)

    @torch.no_grad()
    def from_noise(self, noise: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        # The network runs where its weights are, the draws are returned on the CPU.
        n, d, k = noise.shape[0], self.n_features, self.n_components
        like = self.made.layers[0].weight.new_empty(0)
        normal = noise[:, :d].to(like.device)
        uniform = noise[:, d:].double().to(like.device)
        rows = torch.arange(n, device=like.device)

        def step(position, params):  # params: (3K, n) = [logits | means | log-scales]
            i = self.made.order[position]  # the feature generated at this position
            # Inverse-CDF draw of the component from one uniform per row.
            cdf = params[:k].t().log_softmax(1).double().exp().cumsum(1)
            pick = torch.searchsorted(cdf, uniform[:, i : i + 1] * cdf[:, -1:]).clamp_(max=k - 1)[:, 0]
            mean = params[k : 2 * k].t()[rows, pick]
            scale = soft_clamp(params[2 * k :].t()[rows, pick], self.log_scale_bound).exp()
            return mean + scale * normal[:, i]

        return self.made.invert_in_one_pass(step, n, like, context).cpu()


class GaussianMixtureBase(BaseDistribution):
    """A mixture of ``n_components`` full-covariance Gaussians,
    ``p(u) = sum_k w_k N(u; mu_k, (P_k P_k^T)^{-1})``.

    Each component is held by its mean and the upper-triangular Cholesky
    factor ``P_k`` of its precision (scikit-learn's ``precisions_cholesky_``
    of ``covariance_type="full"``), the diagonal as its logarithm, so that
    every parameter value is a valid mixture; the weights are a softmax.
    :meth:`set_mixture` loads a fitted ``sklearn.mixture.GaussianMixture``,
    after which the base's log-density is that mixture's.  Built fresh, it
    is ``n_components`` copies of the standard normal.

    Parameters
    ----------
    n_features : int
    n_components : int, default=2

    Examples
    --------
    >>> import torch
    >>> base = GaussianMixtureBase(2, n_components=3)
    >>> base.log_prob(torch.zeros(1, 2)).detach()  # the standard normal until set
    tensor([-1.8379])
    """

    def __init__(self, n_features: int, n_components: int = 2):
        super().__init__(n_features)
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = int(n_components)
        k, d = self.n_components, n_features
        self.logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter(torch.zeros(k, d))
        self.log_diag = nn.Parameter(torch.zeros(k, d))
        self.off_diag = nn.Parameter(torch.zeros(k, d, d))  # strictly upper part used
        self.register_buffer("upper", torch.ones(d, d).triu(1))

    @torch.no_grad()
    def set_mixture(self, weights, means, precisions_cholesky) -> None:
        """Load mixture weights ``(K,)``, means ``(K, d)`` and upper-triangular
        precision Cholesky factors ``(K, d, d)`` (array-likes, float64)."""
        weights = torch.as_tensor(weights, dtype=torch.float64)
        factors = torch.as_tensor(precisions_cholesky, dtype=torch.float64)
        dtype = self.logits.dtype
        self.logits.copy_(weights.log().to(dtype))
        self.means.copy_(torch.as_tensor(means, dtype=torch.float64).to(dtype))
        self.log_diag.copy_(factors.diagonal(dim1=-2, dim2=-1).log().to(dtype))
        self.off_diag.copy_((factors * self.upper.double()).to(dtype))

    def _factors(self):
        return self.off_diag * self.upper + torch.diag_embed(self.log_diag.exp())

    def component_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """``log w_k + log N_k(u)`` of every row and component, ``(n, K)``."""
        factors = self._factors()  # (K, d, d)
        z = torch.einsum("nd,kde->nke", u, factors) - torch.einsum("kd,kde->ke", self.means, factors)
        log_normal = self.log_diag.sum(-1) - 0.5 * z.square().sum(-1) - 0.5 * self.n_features * _LOG_2PI
        return self.logits.log_softmax(0) + log_normal

    def log_prob(self, u: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return torch.logsumexp(self.component_log_prob(u), dim=1)

    def draw_noise(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        # A standard normal per feature, and a uniform that picks the component.
        noise = torch.randn(n, self.n_features, generator=generator, dtype=dtype)
        uniform = torch.rand(n, 1, generator=generator, dtype=torch.float64)
        return torch.cat([noise, uniform.to(dtype)], 1)

    @torch.no_grad()
    def from_noise(self, noise: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        d = self.n_features
        like = self.means
        normal = noise[:, :d].to(like.device, like.dtype)
        cdf = self.logits.double().softmax(0).cumsum(0)
        pick = torch.searchsorted(cdf, noise[:, d:].double().to(like.device) * cdf[-1]).clamp_(
            max=self.n_components - 1)[:, 0]
        # u = mu + P^{-T} z has covariance P^{-T} P^{-1} = (P P^T)^{-1}; one solve
        # per component (not a d x d factor gathered for every draw)
        lower = self._factors().transpose(-2, -1)
        u = torch.empty_like(normal)
        for k in range(self.n_components):
            rows = torch.nonzero(pick == k)[:, 0]
            if len(rows):
                u[rows] = torch.linalg.solve_triangular(lower[k], normal[rows].t(), upper=False).t()
        return (u + self.means[pick]).cpu()
