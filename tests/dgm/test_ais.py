"""Tests for annealed importance sampling, HMC and BDMC in dgm.estimators, and the observation models of
dgm.distributions: exact answers from a linear-Gaussian decoder, p(x|z) = N(Wz + b, s^2 I), z ~ N(0, I),
whose log p(x) = log N(x; b, W W^T + s^2 I) and posterior are known in closed form.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgm import estimators as est
from dgm.distributions import BernoulliObservation, GaussianObservation, differentiable
from dgm.vae import VAE


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Thousands of tiny tensor ops: one thread each, or the shared cores spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed):
    return torch.Generator().manual_seed(seed)


class LinearGaussian:
    """A linear decoder under Gaussian noise; W has orthogonal columns, so p(z|x) is diagonal."""

    def __init__(self, *, z_dim=2, x_dim=8, scales=(2.0, 1.5), noise=0.5, seed=0, dtype=torch.float64):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(x_dim, z_dim)))
        self.W = torch.tensor(q * np.asarray(scales[:z_dim]), dtype=dtype)  # (D, Z)
        self.b = torch.tensor(0.3 * rng.normal(size=x_dim), dtype=dtype)  # (D,)
        self.noise, self.latent_dim = noise, z_dim
        self.obs = GaussianObservation(self.decode, noise)

    def decode(self, z):
        return z @ self.W.T + self.b  # (B, D)

    def log_likelihood(self, x, z):
        return self.obs.log_likelihood(x, z)

    def posterior(self, x):
        var = 1.0 / (1.0 + (self.W**2).sum(0) / self.noise**2)  # (Z,)
        mu = var * ((x - self.b) @ self.W) / self.noise**2  # (B, Z)
        return mu, var.log().expand_as(mu)

    def exact_log_px(self, x):
        cov = self.W @ self.W.T + self.noise**2 * torch.eye(len(self.b), dtype=self.W.dtype)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def simulate(self, n, seed=1):
        return est.simulate_data(self.obs.sample, n, latent_dim=self.latent_dim, generator=gen(seed),
                                 dtype=self.W.dtype)


@pytest.fixture(scope="module")
def linear():
    model = LinearGaussian()
    x, z = model.simulate(24)
    return model, x, z, model.exact_log_px(x)


# --------------------------------------------------------------------------- observation models


def test_gaussian_observation_log_density_and_samples():
    model = LinearGaussian()
    z = torch.randn(5, 2, generator=gen(0), dtype=torch.float64)
    x = torch.randn(5, 8, generator=gen(1), dtype=torch.float64)
    expected = torch.distributions.Normal(model.decode(z), 0.5).log_prob(x).sum(-1)
    torch.testing.assert_close(model.obs.log_likelihood(x, z), expected, rtol=0, atol=1e-12)
    zk = torch.stack([z, 2 * z])  # (K, B, Z) as the importance samplers pass it
    torch.testing.assert_close(model.obs.log_likelihood(x, zk)[1], model.obs.log_likelihood(x, 2 * z))
    draws = model.obs.sample(z[:1].expand(20000, -1), gen(2))  # (n, D) around one mean
    torch.testing.assert_close(draws.mean(0), model.decode(z[:1])[0], rtol=0, atol=0.02)
    assert abs(draws.std(0).mean().item() - 0.5) < 0.01
    with pytest.raises(ValueError, match="sigma"):
        GaussianObservation(model.decode, 0.0)


def test_observation_models_reach_z_through_inference_mode_decoders():
    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(3, 12), torch.nn.Sigmoid())

        @torch.inference_mode()
        def decode(self, z):
            return self.net(z).view(-1, 1, 3, 4)  # images, as the models' decode gives them

    dec = Decoder()
    assert differentiable(torch.sin) is torch.sin
    z = torch.randn(4, 3, requires_grad=True)
    ll = GaussianObservation(dec.decode, 0.1).log_likelihood(torch.rand(4, 1, 3, 4), z)
    (grad,) = torch.autograd.grad(ll.sum(), z)
    assert ll.shape == (4,) and grad.abs().sum() > 0


def test_bernoulli_observation_matches_the_vae():
    torch.manual_seed(0)
    vae = VAE(latent_dim=3, hidden_dim=16, data_dim=20).double()
    obs = BernoulliObservation(vae.logits)
    x, z = est.simulate_data(obs.sample, 6, latent_dim=3, generator=gen(0), dtype=torch.float64)
    assert set(x.unique().tolist()) <= {0.0, 1.0} and x.shape == (6, 20) and z.shape == (6, 3)
    with torch.no_grad():
        torch.testing.assert_close(obs.log_likelihood(x, z), vae.log_likelihood(x, z), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- schedule and options


def test_schedules():
    for kind in est.AIS_SCHEDULES:
        for steps in (0, 1, 7, 1000):
            beta = est.ais_schedule(steps, kind)
            assert beta.shape == (steps + 2,) and beta[0] == 0 and beta[-1] == 1
            assert (beta.diff() > 0).all()
    sig = est.ais_schedule(100).diff()
    assert sig[0] < sig[50] / 10 and sig[-1] < sig[50] / 10  # dense near 0 and 1
    torch.testing.assert_close(est.ais_schedule(4, "linear"), torch.linspace(0, 1, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="schedule"):
        est.ais_schedule(3, "cosine")
    with pytest.raises(ValueError, match="steps"):
        est.ais_schedule(-1)


def test_options_are_checked(linear):
    model, x, _, _ = linear
    with pytest.raises(ValueError, match="leapfrogs"):
        est.ais_log_px(model.log_likelihood, x, steps=1, latent_dim=2, leapfrogs=3)
    with pytest.raises(ValueError, match="chains"):
        est.ais_log_px(model.log_likelihood, x, steps=1, latent_dim=2, chains=0)
    with pytest.raises(ValueError, match="schedule"):
        est.ais_log_px(model.log_likelihood, x, steps=1, latent_dim=2, schedule="cosine")
    with pytest.raises(ValueError, match="latent_dim"):
        est.ais_log_px(model.log_likelihood, x, steps=1)


# --------------------------------------------------------------------------- exact answers


def test_steps_zero_is_importance_sampling_with_the_same_draws(linear):
    model, x, _, _ = linear
    x, chains, seed = x[:5], 7, 3
    eps = torch.stack([torch.randn(chains, 2, generator=est.image_generator(seed, i), dtype=torch.float64)
                       for i in range(len(x))], 1)  # (C, B, Z): each image's first draw
    naive = torch.logsumexp(model.log_likelihood(x, eps), 0) - math.log(chains)
    got = est.ais_log_px(model.log_likelihood, x, steps=0, latent_dim=2, chains=chains, seed=seed)
    torch.testing.assert_close(got, naive, rtol=0, atol=1e-12)

    mu, logvar = model.posterior(x)
    mu, logvar = mu + 0.3, logvar + 0.5  # an imperfect q
    z = mu + (0.5 * logvar).exp() * eps
    log_w = (model.log_likelihood(x, z) + est.log_standard_normal(z) - est.log_normal_diag(z, mu, logvar))
    iwae = torch.logsumexp(log_w, 0) - math.log(chains)
    got = est.ais_log_px(model.log_likelihood, x, steps=0, encoder=lambda _: (mu, logvar), chains=chains, seed=seed)
    torch.testing.assert_close(got, iwae, rtol=0, atol=1e-12)


def test_ais_converges_to_the_exact_log_px(linear):
    model, x, _, exact = linear
    err = {}
    for steps in (0, 10, 500):
        log_px, info = est.ais_log_px(model.log_likelihood, x, steps=steps, latent_dim=2, chains=8, leapfrog=5,
                                      step_size=0.1, seed=0, return_info=True)
        err[steps] = log_px - exact
    # 8 chains of 500 steps: per-image error 0.1-0.17 nats over seeds (log weights spread ~0.4), mean ~0
    assert err[500].abs().mean() < 0.25 and err[500].abs().max() < 0.8 and err[500].mean().abs() < 0.1
    assert err[500].abs().mean() < err[10].abs().mean() / 3 < err[0].abs().mean() / 3
    assert err[0].mean() < err[10].mean() < 0  # few distributions: far below, as a lower bound is
    assert 0.5 < info["acceptance"].mean() < 0.9  # adapted toward 0.65
    assert info["z"].shape == (24, 8, 2) and info["log_weights"].shape == (24, 8)
    assert ((info["ess"] >= 1) & (info["ess"] <= 8 + 1e-9)).all()


def test_ais_weights_are_unbiased(linear):
    """E[w] = p(x) for any number of distributions (fixed step sizes): the mean weight of many chains."""
    model, x, _, exact = linear
    chains = 2000
    _, info = est.ais_log_px(model.log_likelihood, x[:4], steps=10, latent_dim=2, chains=chains, leapfrog=3,
                             step_size=0.15, adapt=False, seed=0, return_info=True)
    w = (info["log_weights"] - exact[:4, None]).exp()  # (B, chains), w / p(x)
    z_scores = (w.mean(1) - 1) / (w.std(1) / math.sqrt(chains))
    assert z_scores.abs().max() < 4.5, z_scores


def test_ais_with_the_exact_posterior_as_encoder_is_exact(linear):
    """With q = p(z|x), r(z) = log p(z) p(x|z) / q(z|x) = log p(x) at every z: every weight is exact."""
    model, x, _, exact = linear
    log_px, info = est.ais_log_px(model.log_likelihood, x, steps=20, encoder=model.posterior, chains=4,
                                  step_size=0.1, return_info=True)
    torch.testing.assert_close(log_px, exact, rtol=0, atol=1e-10)
    torch.testing.assert_close(info["log_weights"], exact[:, None].expand(-1, 4), rtol=0, atol=1e-10)


def test_bdmc_sandwiches_the_exact_log_px(linear):
    model, x, z, exact = linear
    kw = dict(chains=8, leapfrog=5, step_size=0.1, seed=0)
    few = est.bdmc(model.log_likelihood, x, z, steps=5, **kw)
    many = est.bdmc(model.log_likelihood, x, z, steps=400, **kw)
    for res in (few, many):  # bounds in expectation: over the images, within 3 standard errors
        lower, upper = res["lower"] - exact, res["upper"] - exact
        assert lower.mean() <= 3 * lower.std() / math.sqrt(len(x))
        assert upper.mean() >= -3 * upper.std() / math.sqrt(len(x))
        torch.testing.assert_close(res["gap"], res["upper"] - res["lower"])
        assert res["acceptance_forward"].shape == res["acceptance_reverse"].shape == (len(x),)
    assert many["gap"].mean().abs() < 0.3 and few["gap"].mean() > max(1.0, 4 * many["gap"].mean().abs())
    assert (many["lower"] - exact).abs().mean() < 0.3 and (many["upper"] - exact).abs().mean() < 0.3
    # the forward half is ais_log_px with the same arguments
    forward = est.ais_log_px(model.log_likelihood, x, steps=5, latent_dim=2, **kw)
    torch.testing.assert_close(few["lower"], forward, rtol=0, atol=0)


def test_bdmc_on_a_bernoulli_vae_agrees_with_quadrature():
    """A non-linear decoder: a z = 2 Bernoulli VAE (sharpened, untrained), whose log p(x) quadrature gets."""
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden_dim=32, data_dim=64).double().eval()
    with torch.no_grad():
        vae.decoder[2].weight.mul_(4.0)
    x, z = est.simulate_data(BernoulliObservation(vae.logits).sample, 8, latent_dim=2, generator=gen(3),
                             dtype=torch.float64)
    quad = est.quadrature_log_px(vae, x)
    res = est.bdmc(vae.log_likelihood, x, z, steps=200, chains=8, leapfrog=5, step_size=0.05, seed=0)
    for key in ("lower", "upper"):  # errors ~0.1 nats (0.45 at worst over seeds)
        err = res[key] - quad
        assert err.abs().mean() < 0.3 and err.mean().abs() < 0.2, (key, err)


@pytest.mark.parametrize("adapt", [False, True])
def test_hmc_leaves_the_posterior_invariant(linear, adapt):
    """Chains started exactly at the posterior stay there: mean and variance within Monte Carlo error."""
    model, x, _, _ = linear
    x, n = x[:3], 1500
    mu, logvar = model.posterior(x)  # (B, Z)
    sd = (0.5 * logvar).exp()
    z0 = mu[:, None] + sd[:, None] * torch.randn(3, n, 2, generator=gen(5), dtype=torch.float64)
    # a step of ~1.2 posterior sd: leapfrog alone would be visibly biased, so the accept step matters
    res = est.hmc_sample(model.log_likelihood, x, z0, transitions=15, leapfrog=3, step_size=0.35,
                         step_size_max=1.0, adapt=adapt, seed=1)
    z = res["z"]  # (B, n, Z)
    assert 0.3 < res["acceptance"].mean() < 0.95
    assert not torch.equal(z, z0)
    mean_z = (z.mean(1) - mu) / (sd / math.sqrt(n))
    var_z = (z.var(1) / sd**2 - 1) / math.sqrt(2 / (n - 1))
    assert mean_z.abs().max() < 4.5 and var_z.abs().max() < 4.5, (mean_z, var_z)


# --------------------------------------------------------------------------- seeds, batching, devices


def test_same_seed_same_numbers_different_seed_different(linear):
    model, x, _, _ = linear
    run = [est.ais_log_px(model.log_likelihood, x[:6], steps=20, latent_dim=2, chains=4, step_size=0.1, seed=s)
           for s in (4, 4, 5)]
    assert torch.equal(run[0], run[1]) and not torch.allclose(run[0], run[2])


def test_images_per_batch_and_slicing_do_not_change_the_numbers(linear):
    model, x, z, _ = linear
    kw = dict(steps=30, chains=4, leapfrog=3, step_size=0.1, seed=2)
    ref, info = est.ais_log_px(model.log_likelihood, x, latent_dim=2, images_per_batch=24, return_info=True, **kw)
    for per_batch in (1, 5):
        got, got_info = est.ais_log_px(model.log_likelihood, x, latent_dim=2, images_per_batch=per_batch,
                                       return_info=True, **kw)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(got_info["step_size"], info["step_size"], rtol=0, atol=1e-12)
    part = est.ais_log_px(model.log_likelihood, x[7:12], latent_dim=2, indices=range(7, 12), **kw)
    torch.testing.assert_close(part, ref[7:12], rtol=0, atol=1e-12)
    b1 = est.bdmc(model.log_likelihood, x[:6], z[:6], images_per_batch=6, **kw)
    b2 = est.bdmc(model.log_likelihood, x[:6], z[:6], images_per_batch=4, **kw)
    for key in ("lower", "upper"):
        torch.testing.assert_close(b1[key], b2[key], rtol=0, atol=1e-12)


def test_float32_vae_with_and_without_encoder():
    torch.manual_seed(0)
    vae = VAE(latent_dim=4, hidden_dim=32, data_dim=50).eval()
    x = torch.bernoulli(torch.full((6, 50), 0.3), generator=gen(0))
    with torch.inference_mode():  # inference tensors in, as a test-set loop would hand them over
        x = x.clone()
    kw = dict(steps=20, chains=4, leapfrog=3, seed=0)
    prior = est.ais_log_px(vae.log_likelihood, x, latent_dim=4, **kw)
    enc, info = est.ais_log_px(vae.log_likelihood, x, encoder=vae.encode, return_info=True, **kw)
    assert prior.dtype == enc.dtype == torch.float32 and torch.isfinite(prior).all() and torch.isfinite(enc).all()
    assert info["z"].dtype == torch.float32
    assert all(p.grad is None for p in vae.parameters())  # gradients reach z only
    torch.testing.assert_close(est.ais_log_px(vae.log_likelihood, x, latent_dim=4, images_per_batch=2, **kw), prior,
                               rtol=1e-5, atol=1e-4)


def test_choose_sigma_finds_the_true_noise():
    model = LinearGaussian(noise=0.3, x_dim=12)
    x, _ = model.simulate(40, seed=7)
    grid = [0.1, 0.2, 0.3, 0.45, 0.7]
    res = est.choose_sigma(model.decode, x, grid, latent_dim=2, steps=100, chains=4, leapfrog=3, step_size=0.1)
    assert res["sigma_grid"] == grid and len(res["scores"]) == 5 and res["log_px"].shape == (5, 40)
    assert res["sigma"] == 0.3, res["scores"]
    exact = model.exact_log_px(x).mean().item()
    assert exact - 0.5 < res["scores"][2] < exact + 0.05, (res["scores"], exact)  # a lower bound, near


def test_seconds_per_image_is_positive(linear):
    model, x, _, _ = linear
    seconds = est.ais_seconds_per_image(model.log_likelihood, x[:2], steps=5, latent_dim=2, chains=2, leapfrog=2)
    assert 0 < seconds < 60


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ais_on_cuda_matches_the_cpu():
    cpu_model = LinearGaussian()
    x, z = cpu_model.simulate(8)
    gpu_model = LinearGaussian()
    gpu_model.W, gpu_model.b = cpu_model.W.cuda(), cpu_model.b.cuda()
    kw = dict(steps=50, chains=4, leapfrog=3, step_size=0.1, seed=0)
    cpu = est.bdmc(cpu_model.log_likelihood, x, z, **kw)
    gpu = est.bdmc(gpu_model.log_likelihood, x.cuda(), z.cuda(), **kw)
    assert gpu["lower"].device.type == "cuda"
    for key in ("lower", "upper"):  # the same draws (CPU generators); float64 arithmetic agrees closely
        torch.testing.assert_close(gpu[key].cpu(), cpu[key], rtol=0, atol=1e-6)
