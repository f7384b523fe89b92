"""Tests for dgm.estimators: exact answers from a linear-Gaussian model, quadrature, the seed's KL."""
from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import logsumexp

from dgm import estimators as est
from dgm.distributions import log_standard_normal
from dgm.vae import VAE


def normal_logpdf(x, mean, sd):
    return -0.5 * math.log(2 * math.pi * sd**2) - (x - mean) ** 2 / (2 * sd**2)


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I); W has orthogonal columns so p(z|x) is diagonal.

    ``encode`` returns the exact posterior, optionally shifted by ``mu_shift`` and with its
    log-variance shifted by ``logvar_shift`` (a deliberately imperfect proposal).
    """

    def __init__(self, *, z_dim=2, x_dim=5, scales=(1.5, 0.7), noise=0.5, seed=0,
                 mu_shift=0.0, logvar_shift=0.0):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(x_dim, z_dim)))
        self.W = torch.tensor(q * np.asarray(scales[:z_dim]))  # (D, Z), float64
        self.b = torch.tensor(rng.normal(size=x_dim))  # (D,)
        self.noise, self.latent_dim = noise, z_dim
        self.mu_shift, self.logvar_shift = mu_shift, logvar_shift

    def posterior(self, x):
        c = (self.W**2).sum(0)  # (Z,) = diag(W^T W)
        var = 1.0 / (1.0 + c / self.noise**2)  # (Z,)
        mu = var * ((x - self.b) @ self.W) / self.noise**2  # (B, Z)
        return mu, var.log().expand_as(mu)

    def encode(self, x):
        mu, logvar = self.posterior(x)
        return mu + self.mu_shift, logvar + self.logvar_shift

    def log_likelihood(self, x, z):
        mean = z @ self.W.T + self.b  # (K, B, D)
        return normal_logpdf(x, mean, self.noise).sum(-1)  # (K, B)

    def exact_log_px(self, x):
        """log N(x; b, W W^T + s^2 I) from its eigenbasis: W's unit columns with eigenvalues
        |w_j|^2 + s^2, and s^2 on their complement (scipy loses ~1e-8 when ill-conditioned)."""
        norms = self.W.norm(dim=0)  # (Z,)
        q = self.W / norms  # (D, Z) orthonormal
        r = x - self.b  # (B, D)
        rq = r @ q  # (B, Z)
        perp = r - rq @ q.T  # (B, D), the part outside span(W)
        eig = norms**2 + self.noise**2
        d, z = self.W.shape
        return -0.5 * (d * math.log(2 * math.pi) + eig.log().sum() + (d - z) * math.log(self.noise**2)
                       + perp.pow(2).sum(-1) / self.noise**2 + (rq**2 / eig).sum(-1))

    def scipy_log_px(self, x):
        cov = self.W @ self.W.T + self.noise**2 * torch.eye(len(self.b), dtype=torch.float64)
        return torch.tensor(stats.multivariate_normal(self.b.numpy(), cov.numpy()).logpdf(x.numpy()))

    def sample(self, n, seed=1):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + self.noise * torch.randn(n, len(self.b), generator=g, dtype=torch.float64)


class SquaredMean:
    """1-D latent, x|z ~ N(z^2, s^2): the posterior has two modes at +-sqrt(x); q sits on one."""

    latent_dim = 1

    def __init__(self, noise=0.1):
        self.noise = noise

    def encode(self, x):
        mode = x.clamp_min(0.1).sqrt()  # q sits on the +sqrt(x) mode, with its Laplace width
        return mode, (self.noise / (2 * mode)).pow(2).log()

    def log_likelihood(self, x, z):
        return normal_logpdf(x, z**2, self.noise).sum(-1)


SEED_OFFSET = 0  # change to check that the statistical assertions do not hinge on one seed


def gen(seed):
    return torch.Generator().manual_seed(seed + SEED_OFFSET)


@pytest.fixture(scope="module")
def linear():
    model = LinearGaussian()
    x = model.sample(200)
    return model, x, model.exact_log_px(x)


class MomentMatchedProposal:
    """A VAE's decoder with q(z|x) = posterior mean and 1.5x posterior sd from a dense grid.

    An untrained encoder is a poor proposal (ESS ~ 1%), so IS would need far more samples
    than a unit test can afford; the estimator's correctness does not depend on q.
    """

    latent_dim = 2

    def __init__(self, vae, x):
        self.vae = vae
        u = torch.linspace(-5, 5, 201, dtype=torch.float64)
        z = torch.cartesian_prod(u, u)[:, None, :].expand(-1, len(x), -1)  # (P, B, 2)
        with torch.no_grad():
            w = torch.softmax(vae.log_likelihood(x, z) + log_standard_normal(z), 0)[..., None]
        self.mu = (w * z).sum(0)  # (B, 2)
        self.logvar = ((w * (z - self.mu) ** 2).sum(0) * 1.5**2).log()

    def encode(self, x):
        return self.mu, self.logvar

    def log_likelihood(self, x, z):
        return self.vae.log_likelihood(x, z)


@pytest.fixture(scope="module")
def binary_vae():
    """A small z=2 Bernoulli VAE with a sharpened decoder, and 4 images drawn from it."""
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden_dim=32, data_dim=64).double().eval()
    with torch.no_grad():
        vae.decoder[2].weight.mul_(4.0)
    g = gen(3)
    z = torch.randn(4, 2, generator=g, dtype=torch.float64)
    x = torch.bernoulli(torch.sigmoid(vae.logits(z)).detach(), generator=g)
    return vae, x


# --------------------------------------------------------------------------- linear-Gaussian model


def test_linear_gaussian_reference_matches_scipy(linear):
    model, x, exact = linear
    torch.testing.assert_close(exact, model.scipy_log_px(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [1, 7, 300])
def test_is_with_exact_posterior_is_exact_with_equal_weights(linear, k):
    model, x, exact = linear
    log_px, ess = est.importance_sampled_log_px(model, x, k=k, generator=gen(0), return_ess=True)
    torch.testing.assert_close(log_px, exact, rtol=0, atol=1e-10)
    torch.testing.assert_close(ess, torch.full_like(ess, k), rtol=1e-9, atol=0)


def test_is_with_imperfect_proposal_converges_from_below(linear):
    _, x, exact = linear
    model = LinearGaussian(mu_shift=0.4, logvar_shift=0.8)
    x, exact = x[:100], exact[:100]
    err = {k: est.importance_sampled_log_px(model, x, k=k, generator=gen(1)) - exact for k in (1, 10, 3000)}
    assert err[1].mean() < err[10].mean() < 0  # the IWAE bound tightens with K, from below
    assert err[3000].abs().max() < 0.15 and err[3000].abs().mean() < 0.04
    assert err[3000].abs().mean() < 0.2 * err[10].abs().mean()


def test_naive_mc_converges_but_worse_than_is(linear):
    model, x, exact = linear
    x, exact = x[:30], exact[:30]
    naive = {k: est.naive_mc_log_px(model, x, k=k, generator=gen(2)) - exact for k in (10, 10000)}
    assert naive[10000].abs().median() < 0.05
    assert naive[10000].abs().mean() < 0.2 * naive[10].abs().mean()
    imperfect = LinearGaussian(mu_shift=0.4, logvar_shift=0.8)
    is_err = est.importance_sampled_log_px(imperfect, x, k=10, generator=gen(2)) - exact
    assert is_err.abs().mean() < 0.7 * naive[10].abs().mean()


def test_elbo_matches_closed_form_and_is_below_is(linear):
    _, x, _ = linear
    x = x[:100]
    model = LinearGaussian(mu_shift=0.4, logvar_shift=0.8)
    mu, logvar = model.encode(x)
    var = logvar.exp()
    # closed forms: E_q[log p(x|z)] for a linear-Gaussian decoder, and KL(q || N(0, I))
    resid = x - mu @ model.W.T - model.b
    c = (model.W**2).sum(0)
    exp_ll = -0.5 * x.shape[1] * math.log(2 * math.pi * model.noise**2) - (
        resid.pow(2).sum(-1) + (c * var).sum(-1)) / (2 * model.noise**2)
    kl = 0.5 * (var + mu**2 - 1 - logvar).sum(-1)
    terms = est.elbo(model, x, generator=gen(3), k=4000, chunk_size=512)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-12, atol=0)
    assert (terms["recon"] + exp_ll).mean().abs() < 0.03  # 6 sd of the Monte Carlo error
    torch.testing.assert_close(terms["elbo"], -terms["recon"] - terms["kl"])
    one = est.elbo(model, x, generator=gen(3))["elbo"]  # the seed's one-sample estimate
    diff = one - (exp_ll - kl)
    assert diff.mean().abs() < 4 * diff.std() / math.sqrt(len(diff))
    iwae = est.importance_sampled_log_px(model, x, k=100, generator=gen(4))
    assert one.mean() < iwae.mean() - 0.3  # the gap is ~1 nat here


# --------------------------------------------------------------------------- chunking and seeds


@pytest.mark.parametrize("estimator", ["is", "naive", "elbo"])
def test_chunk_size_does_not_change_the_numbers(linear, estimator):
    _, x, _ = linear
    model = LinearGaussian(mu_shift=0.4, logvar_shift=0.8)
    x = x[:20]

    def run(chunk_size):
        kwargs = dict(k=300, generator=gen(5), chunk_size=chunk_size)
        if estimator == "elbo":
            return est.elbo(model, x, **kwargs)["elbo"]
        fn = est.importance_sampled_log_px if estimator == "is" else est.naive_mc_log_px
        return torch.stack(fn(model, x, return_ess=True, **kwargs))  # (log p(x), ESS)

    reference = run(None)
    for chunk_size in (1, 7, 128, 1000):
        torch.testing.assert_close(run(chunk_size), reference, rtol=1e-12, atol=1e-12)


def test_chunk_size_does_not_change_vae_numbers_float32():
    torch.manual_seed(0)
    vae = VAE(latent_dim=20, hidden_dim=64).eval()
    x = torch.bernoulli(torch.full((5, 784), 0.3), generator=gen(0))
    a = est.importance_sampled_log_px(vae, x, k=500, generator=gen(1), chunk_size=500)
    b = est.importance_sampled_log_px(vae, x, k=500, generator=gen(1), chunk_size=33)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert a.dtype == torch.float32 and a.shape == (5,)


def test_same_seed_same_output_different_seed_different_output(linear):
    model = LinearGaussian(mu_shift=0.4, logvar_shift=0.8)
    _, x, _ = linear
    for fn in (est.importance_sampled_log_px, est.naive_mc_log_px):
        a, b, c = (fn(model, x[:10], k=50, generator=gen(s)) for s in (7, 7, 8))
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)
    a, b, c = (est.elbo(model, x[:10], generator=gen(s))["elbo"] for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_generator_gives_the_same_draws_on_gpu():
    torch.manual_seed(0)
    vae = VAE(latent_dim=20, hidden_dim=64).double().eval()
    x = torch.bernoulli(torch.full((5, 784), 0.3, dtype=torch.float64), generator=gen(0))
    cpu = est.importance_sampled_log_px(vae, x, k=500, generator=gen(1))
    gpu = est.importance_sampled_log_px(vae.cuda(), x.cuda(), k=500, generator=gen(1))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-9)


def test_rejects_bad_k(linear):
    model, x, _ = linear
    with pytest.raises(ValueError, match="k must be"):
        est.importance_sampled_log_px(model, x, k=0, generator=gen(0))


# --------------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("z_dim", [1, 2])
def test_quadrature_is_exact_for_linear_gaussian(z_dim):
    model = LinearGaussian(z_dim=z_dim, mu_shift=1.0, logvar_shift=2.0)  # q only widens box 0
    x = model.sample(8)
    log_px = est.quadrature_log_px(model, x, tol=1e-9)
    torch.testing.assert_close(log_px, model.exact_log_px(x), rtol=0, atol=1e-8)


def test_quadrature_resolves_a_very_narrow_posterior():
    # posterior sd ~ 0.01 / 40 = 2.5e-4 while q points elsewhere and is wide
    model = LinearGaussian(scales=(40.0, 25.0), noise=0.01, mu_shift=0.5, logvar_shift=4.0)
    x = model.sample(8)
    log_px, info = est.quadrature_log_px(model, x, levels=4, tol=1e-9, return_info=True)
    torch.testing.assert_close(log_px, model.exact_log_px(x), rtol=0, atol=1e-10)
    assert (info["estimates"][0] - log_px).abs().max() > 1.0  # the first grid alone is wrong


def test_quadrature_finds_a_mode_q_misses():
    model = SquaredMean(noise=0.1)
    x = torch.tensor([[0.5], [1.3], [2.0], [-0.2]], dtype=torch.float64)

    def exact(xi):
        def f(z):
            return math.exp(stats.norm.logpdf(xi, z * z, 0.1) + stats.norm.logpdf(z))

        r = math.sqrt(max(xi, 0))
        return math.log(integrate.quad(f, -8, 8, points=[-r, r], limit=200, epsabs=0, epsrel=1e-12)[0])

    expected = torch.tensor([exact(v) for v in x[:, 0].tolist()], dtype=torch.float64)
    log_px, info = est.quadrature_log_px(model, x, tol=1e-9, return_info=True)
    torch.testing.assert_close(log_px, expected, rtol=0, atol=1e-8)
    assert info["points_per_dim"][-1] > 64  # two modes keep the box wide: needs more points
    # importance sampling from the one-mode q misses half of the mass: log 2 too low
    is_one_mode = est.importance_sampled_log_px(model, x[:3], k=2000, generator=gen(0))
    torch.testing.assert_close(is_one_mode, expected[:3] - math.log(2), rtol=0, atol=0.02)


def test_quadrature_rejects_large_latent_dim():
    with pytest.raises(ValueError, match="latent_dim=3"):
        est.quadrature_log_px(LinearGaussian(z_dim=3, scales=(1, 1, 1)), torch.zeros(2, 5))


def test_quadrature_agrees_with_large_k_importance_sampling_on_bernoulli_vae(binary_vae):
    vae, x = binary_vae
    quad, info = est.quadrature_log_px(vae, x, return_info=True)
    assert (info["error"] <= 1e-3).all()  # the resolution doubling converged
    proposal = MomentMatchedProposal(vae, x)
    iwae = est.importance_sampled_log_px(proposal, x, k=20000, generator=gen(0), chunk_size=5000)
    torch.testing.assert_close(iwae, quad, rtol=0, atol=0.02)


# --------------------------------------------------------------------------- ESS, units, batching


def test_effective_sample_size():
    k = 64
    assert est.effective_sample_size(torch.zeros(k)).item() == pytest.approx(k, rel=1e-12)
    assert est.effective_sample_size(torch.full((3, k), -700.0)).tolist() == pytest.approx([k] * 3)
    dominant = torch.cat([torch.zeros(1), torch.full((k - 1,), -50.0)]).double()
    assert est.effective_sample_size(dominant).item() == pytest.approx(1.0, abs=1e-18)
    two = torch.tensor([0.0, 0.0, -math.inf, -math.inf])
    assert est.effective_sample_size(two).item() == pytest.approx(2.0)


def test_nats_bpd_conversion():
    assert est.nats_to_bpd(784 * math.log(2)) == pytest.approx(1.0, rel=1e-15)
    assert est.nats_to_bpd(100.0, dim=10) == pytest.approx(10 / math.log(2), rel=1e-15)
    t = torch.tensor([80.0, 100.0], dtype=torch.float64)
    torch.testing.assert_close(est.bpd_to_nats(est.nats_to_bpd(t)), t, rtol=1e-15, atol=0)
    np.testing.assert_allclose(est.nats_to_bpd(np.array([784.0])), [1 / math.log(2)], rtol=1e-15)


def test_evaluate_in_batches_and_stderr():
    data = torch.arange(30.0).reshape(10, 3)
    seen = []

    def fn(x):
        seen.append(len(x))
        return x.sum(1)

    torch.testing.assert_close(est.evaluate_in_batches(fn, data, batch_size=4), data.sum(1))
    assert seen == [4, 4, 2]
    loader = [(data[:6], None), (data[6:], None)]  # what a DataLoader of (x, y) yields
    torch.testing.assert_close(est.evaluate_in_batches(fn, loader), data.sum(1))
    values = np.random.default_rng(0).normal(size=50)
    mean, stderr = est.mean_and_stderr(torch.tensor(values))
    assert mean == pytest.approx(values.mean()) and stderr == pytest.approx(stats.sem(values))
    assert math.isnan(est.mean_and_stderr([1.0])[1])


# --------------------------------------------------------------------------- seed section 1.5


@pytest.mark.parametrize("mu,sigma", [(0.0, 1.0), (0.3, 0.5), (-1.2, 2.0), (2.0, 1.0001)])
def test_kl_closed_form_against_integration_and_monte_carlo(mu, sigma):
    def f(x):
        return stats.norm.pdf(x, mu, sigma) * (stats.norm.logpdf(x, mu, sigma) - stats.norm.logpdf(x))

    ref = integrate.quad(f, mu - 30 * sigma, mu + 30 * sigma, epsabs=1e-14, limit=200)[0]
    closed = est.kl_gaussian_1d(mu, sigma)
    assert closed == pytest.approx(ref, rel=1e-9, abs=1e-13)
    mc, stderr = est.kl_gaussian_1d_monte_carlo(mu, sigma, 200_000, gen(0))
    assert abs(mc - closed) <= 4 * stderr + 1e-15


def _decimal_kl(mu, sigma):
    with localcontext() as ctx:
        ctx.prec = 60
        mu, sigma = Decimal(mu), Decimal(sigma)  # the exact binary values of the float inputs
        return float((sigma * sigma + mu * mu - 1) / 2 - sigma.ln())


def test_seed_kl_examples():
    rows = {r["example"]: r for r in est.seed_kl_examples(n=200_000)}
    assert set(rows) == {"Big", "Small", "Prior"}
    for row in rows.values():
        assert row["closed_form"] == pytest.approx(_decimal_kl(row["mu_q"], row["sigma_q"]), rel=1e-12, abs=0)
        assert abs(row["monte_carlo"] - row["closed_form"]) <= 4 * row["monte_carlo_stderr"] + 1e-300
    assert f"{rows['Big']['closed_form']:.1e}" == "1.0e+10"  # the seed's 1.0e10
    assert rows["Small"]["closed_form"] == pytest.approx(1.5e-10 - 1e-15 / 3, rel=1e-9)
    assert math.floor(rows["Small"]["closed_form"] * 1e12) == 149  # the seed's 1.49e-10, truncated
    assert rows["Prior"]["closed_form"] == 0.0


# --------------------------------------------------------------------------- Parzen windows


def test_parzen_matches_scipy():
    rng = np.random.default_rng(0)
    samples, test = rng.normal(size=(11, 4)), rng.normal(size=(7, 4))
    sigma = 0.7
    ref = [logsumexp([stats.multivariate_normal(s, sigma**2 * np.eye(4)).logpdf(t) for s in samples]) - math.log(11)
           for t in test]
    got = est.parzen_log_likelihood(torch.tensor(samples), torch.tensor(test), sigma, batch_size=3, sample_chunk=4)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    one_chunk = est.parzen_log_likelihood(torch.tensor(samples), torch.tensor(test), sigma)
    np.testing.assert_allclose(one_chunk.numpy(), ref, rtol=1e-12)


def test_select_parzen_sigma_picks_the_known_best():
    # each validation point is distance d from exactly one far-apart sample, so the mean ll is
    # -log n - log(2 pi sigma^2) - d^2 / (2 sigma^2) in 2-D, maximised at sigma = d / sqrt 2 = 0.5
    n, d = 5, 0.5 * math.sqrt(2)
    samples = torch.zeros(n, 2, dtype=torch.float64)
    samples[:, 0] = 100.0 * torch.arange(n)
    angle = torch.linspace(0, 3, n, dtype=torch.float64)
    valid = samples + d * torch.stack([angle.cos(), angle.sin()], 1)
    grid = [0.3, 0.4, 0.5, 0.6, 0.8]
    best, table = est.select_parzen_sigma(samples, valid, grid)
    assert best == 0.5
    expected = [-math.log(n) - math.log(2 * math.pi * s**2) - d**2 / (2 * s**2) for s in grid]
    np.testing.assert_allclose([m for _, m in table], expected, rtol=1e-9)  # |s|^2 ~ 1e5 cancels
    assert [s for s, _ in table] == grid
    np.testing.assert_allclose(est.DEFAULT_PARZEN_SIGMAS, np.logspace(-1, 0, 10))
