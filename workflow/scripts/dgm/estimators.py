"""Log-likelihood estimators for the latent-variable and sample-only models.

Latent-variable models (the VAE) follow the protocol of ``dgm.vae``: ``latent_dim``,
``encode(x) -> (mu, logvar)`` (the Gaussian proposal q(z|x), each (B, Z)) and
``log_likelihood(x, z) -> log p(x|z)`` for x (B, D), z (K, B, Z) -> (K, B); the prior is N(0, I).

- ``elbo``: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (closed-form KL).
- ``importance_sampled_log_px``: the K-sample importance-weighted bound of Burda, Grosse &
  Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (arXiv:1509.00519).
- ``naive_mc_log_px``: the seed's eq. (4), log (1/K) sum_k p(x|z_k) with z_k ~ p(z).
- ``quadrature_log_px``: near-exact log p(x) for Z <= 2 on an adaptively refined grid.
- ``ais_log_px``, ``bdmc``, ``choose_sigma``: annealed importance sampling with HMC for any decoder model,
  its check by bidirectional Monte Carlo, and the noise of a Gaussian observation model (Wu, Burda,
  Salakhutdinov & Grosse, "On the Quantitative Analysis of Decoder-Based Generative Models", ICLR 2017);
  they draw from per-image streams (see their section), not from a caller's generator.
- ``parzen_log_likelihood``: the Gaussian Parzen-window estimate of Goodfellow et al.,
  "Generative Adversarial Nets", NeurIPS 2014 (after Breuleux et al. 2011), for sample-only models.
- ``kl_gaussian_1d`` and ``seed_kl_examples``: the seed's section 1.5.

Randomness: every draw takes an explicit ``torch.Generator``. Noise is drawn on the generator's
device in fixed blocks of ``NOISE_BLOCK`` samples and then moved to the data's device, so a
result depends on (seed, K, the images in the batch) but not on ``chunk_size``; a CPU generator
gives the same draws whether the model runs on the CPU or a GPU; and the first K draws are
shared by every larger K (nested estimates). Estimators never change the model's train/eval mode.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from dgm.config import ModelConfig
from dgm.distributions import (
    GaussianObservation,
    gaussian_kl_standard_normal,
    log_normal_diag,
    log_standard_normal,
)

NOISE_BLOCK = 128  # samples per random draw; fixed so that results do not depend on chunk_size
ROWS_PER_CHUNK = 2**14  # default chunk: samples x images per decoder call (~0.2 GB at D=784, H=500)
DEFAULT_PARZEN_SIGMAS = tuple(np.logspace(-1, 0, 10).tolist())  # Goodfellow et al.'s MNIST grid
LN2 = math.log(2.0)


# --------------------------------------------------------------------------- sampling machinery


class _NoiseStream:
    """Standard-normal draws of shape ``(n, *shape)``, taken in any pieces, drawn in fixed blocks."""

    def __init__(self, shape, *, generator: torch.Generator, like: torch.Tensor):
        self.shape, self.generator, self.like = tuple(shape), generator, like
        self.buffer = like.new_empty((0, *self.shape))

    def take(self, n: int) -> torch.Tensor:
        have, blocks = self.buffer.shape[0], [self.buffer]
        while have < n:
            blocks.append(torch.randn(
                (NOISE_BLOCK, *self.shape), generator=self.generator,
                device=self.generator.device, dtype=self.like.dtype,
            ).to(self.like.device))
            have += NOISE_BLOCK
        pool = torch.cat(blocks) if len(blocks) > 1 else blocks[0]
        out, self.buffer = pool[:n], pool[n:]
        return out


def _chunks(k: int, batch: int, chunk_size: int | None):
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if chunk_size is None:
        chunk_size = max(1, ROWS_PER_CHUNK // max(batch, 1))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    for start in range(0, k, chunk_size):
        yield min(chunk_size, k - start)


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1) if x.dim() > 2 else x  # (B, D)


def _streamed_log_mean_exp(log_w_chunks, k: int, *, return_ess: bool):
    """log (1/K) sum exp(log_w) over chunks (c, B), and optionally the ESS.

    Keeps the running maximum m and s_p = sum exp(p (log_w - m)) for p = 1, 2, rescaled when m
    grows, so both results are as precise as a one-shot logsumexp: log mean = m + log s_1 - log K,
    ESS = s_1^2 / s_2.
    """
    m = shift = s1 = s2 = None
    for log_w in log_w_chunks:  # (c, B)
        m = log_w.amax(0) if m is None else torch.maximum(m, log_w.amax(0))  # (B,) running max
        new_shift = torch.where(m > -math.inf, m, torch.zeros_like(m))  # 0 while all weights are 0
        w = (log_w - new_shift).exp()  # (c, B), <= 1
        if shift is None:
            s1, s2 = w.sum(0), w.pow(2).sum(0)
        else:
            scale = (shift - new_shift).exp()  # (B,), <= 1 wherever s1 > 0
            s1 = torch.where(s1 > 0, s1 * scale, s1) + w.sum(0)
            s2 = torch.where(s2 > 0, s2 * scale.pow(2), s2) + w.pow(2).sum(0)
        shift = new_shift
    log_px = shift + s1.log() - math.log(k)
    return (log_px, s1.pow(2) / s2) if return_ess else log_px


# --------------------------------------------------------------------------- latent-variable models


@torch.inference_mode()
def elbo(model, x: torch.Tensor, *, generator: torch.Generator, k: int = 1,
         chunk_size: int | None = None) -> dict[str, torch.Tensor]:
    """Per-image ELBO terms (each (B,)): ``elbo`` = -recon - kl, ``recon`` = -E_q log p(x|z)
    estimated with ``k`` draws (the seed's one sample by default), ``kl`` in closed form."""
    x = _as_batch(x)  # (B, D)
    mu, logvar = model.encode(x)  # (B, Z)
    sigma = (0.5 * logvar).exp()
    noise = _NoiseStream(mu.shape, generator=generator, like=mu)
    recon = torch.zeros(x.shape[0], dtype=mu.dtype, device=mu.device)
    for c in _chunks(k, x.shape[0], chunk_size):
        z = mu + sigma * noise.take(c)  # (c, B, Z)
        recon -= model.log_likelihood(x, z).sum(0)
    recon /= k
    kl = gaussian_kl_standard_normal(mu, logvar)  # (B,)
    return {"elbo": -recon - kl, "recon": recon, "kl": kl}


@torch.inference_mode()
def importance_sampled_log_px(model, x: torch.Tensor, *, k: int, generator: torch.Generator,
                              chunk_size: int | None = None, return_ess: bool = False):
    """IWAE estimate log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x); (B,).

    A stochastic lower bound on log p(x) in expectation that tightens as K grows. With
    ``return_ess`` also returns the effective sample size of the normalised weights (B,).
    """
    x = _as_batch(x)  # (B, D)
    mu, logvar = model.encode(x)  # (B, Z)
    sigma = (0.5 * logvar).exp()
    noise = _NoiseStream(mu.shape, generator=generator, like=mu)

    def log_weights():
        for c in _chunks(k, x.shape[0], chunk_size):
            z = mu + sigma * noise.take(c)  # (c, B, Z)
            yield model.log_likelihood(x, z) + log_standard_normal(z) - log_normal_diag(z, mu, logvar)

    return _streamed_log_mean_exp(log_weights(), k, return_ess=return_ess)


@torch.inference_mode()
def naive_mc_log_px(model, x: torch.Tensor, *, k: int, generator: torch.Generator,
                    chunk_size: int | None = None, return_ess: bool = False):
    """Seed eq. (4): log (1/K) sum_k p(x|z_k), z_k ~ p(z); (B,). Needs K exponential in Z."""
    x = _as_batch(x)  # (B, D)
    like = x.new_empty((), dtype=x.dtype if x.is_floating_point() else torch.get_default_dtype())
    noise = _NoiseStream((x.shape[0], model.latent_dim), generator=generator, like=like)
    log_weights = (model.log_likelihood(x, noise.take(c)) for c in _chunks(k, x.shape[0], chunk_size))
    return _streamed_log_mean_exp(log_weights, k, return_ess=return_ess)


def _grid_log_joint(model, x, lo, hi, n: int, chunk_size: int | None):
    """log p(x, z) on the n^Z midpoint grid of the per-image boxes [lo, hi] (B, Z).

    Returns log_joint (P, B), the integer grid coordinates ij (P, Z) and the cell sides h (B, Z).
    """
    index = torch.arange(n, device=lo.device, dtype=lo.dtype)
    ij = torch.cartesian_prod(*[index] * lo.shape[1]).reshape(-1, lo.shape[1])  # (P, Z)
    h = (hi - lo) / n  # (B, Z)
    log_joint, start = [], 0
    for c in _chunks(ij.shape[0], x.shape[0], chunk_size):
        z = lo + (ij[start:start + c, None, :] + 0.5) * h  # (c, B, Z)
        log_joint.append(model.log_likelihood(x, z) + log_standard_normal(z))  # (c, B)
        start += c
    return torch.cat(log_joint), ij, h


@torch.inference_mode()
def quadrature_log_px(model, x: torch.Tensor, *, points_per_dim: int = 64, levels: int = 3,
                      tol: float = 1e-3, max_points_per_dim: int | None = None,
                      prior_box: float = 6.0, q_box: float = 10.0, threshold: float = 30.0,
                      chunk_size: int | None = None, return_info: bool = False):
    """Near-exact log p(x) = log int p(x|z) p(z) dz for latent_dim 1 or 2, by the midpoint rule.

    Why a refined box and not a fixed grid (e.g. in the prior's inverse-CDF space): a trained
    Z=2 VAE's posterior can be 100x narrower than the prior, so any fixed grid fine enough to
    resolve it everywhere is huge. Instead, per image:

    1. Box: a ``points_per_dim``^Z grid on the hull of [-prior_box, prior_box]^Z and q's
       mu +- q_box * sigma (q only widens the box, it is never trusted alone). For ``levels`` - 1
       rounds the box shrinks to the bounding box of the grid points whose log p(x, z) is within
       ``threshold`` nats of the maximum, widened by one cell; the excluded region carries at
       most exp(-threshold) of the peak per grid point. Several modes stay inside one box.
    2. Resolution: on the final box, double the points per dimension until successive
       estimates agree within ``tol`` nats for every image, or ``max_points_per_dim`` (default
       16384 for Z=1, 512 for Z=2) is reached. For a smooth integrand the midpoint rule is
       exponentially accurate once cells are below the posterior width (error ~
       exp(-2 pi^2 sigma^2 / h^2)); a ReLU decoder's log p(x|z) has kinks, which makes it
       O(h^2), and several modes keep the box wide. Either way the last change bounds the
       error of the coarser estimate, so the returned finer one is within ``tol``.

    A mode narrower than a first-level cell and far from every first-level point can be missed.
    ``return_info`` adds a dict: ``estimates`` (stages, B), ``points_per_dim`` per stage and
    ``error`` (B,), the last change, which the caller should check against ``tol``.
    """
    z_dim = model.latent_dim
    if z_dim not in (1, 2):
        raise ValueError(f"quadrature_log_px needs latent_dim 1 or 2, got latent_dim={z_dim}")
    if points_per_dim < 2 or levels < 1:
        raise ValueError(f"need points_per_dim >= 2 and levels >= 1, got {points_per_dim}, {levels}")
    max_points_per_dim = max_points_per_dim or {1: 2**14, 2: 512}[z_dim]
    x = _as_batch(x)  # (B, D)
    mu, logvar = model.encode(x)  # (B, Z), only used to widen the first box
    sigma = (0.5 * logvar).exp()
    lo = torch.minimum(mu - q_box * sigma, torch.full_like(mu, -prior_box))  # (B, Z)
    hi = torch.maximum(mu + q_box * sigma, torch.full_like(mu, prior_box))
    n, estimates, sizes = points_per_dim, [], []
    for level in range(levels):
        log_joint, ij, h = _grid_log_joint(model, x, lo, hi, n, chunk_size)  # (P, B)
        estimates.append(torch.logsumexp(log_joint, 0) + h.log().sum(-1))  # (B,)
        sizes.append(n)
        if level < levels - 1:  # shrink to the points that carry mass, plus one cell each side
            keep = log_joint >= log_joint.amax(0) - threshold  # (P, B)
            kept = torch.where(keep[..., None], ij[:, None, :], torch.nan)  # (P, B, Z)
            first = torch.nan_to_num(kept, nan=float(n)).amin(0)  # (B, Z)
            last = torch.nan_to_num(kept, nan=-1.0).amax(0)
            lo, hi = lo + (first - 1) * h, lo + (last + 2) * h
    error = torch.full_like(estimates[-1], math.inf)
    while 2 * n <= max_points_per_dim:
        n *= 2
        log_joint, _, h = _grid_log_joint(model, x, lo, hi, n, chunk_size)
        estimates.append(torch.logsumexp(log_joint, 0) + h.log().sum(-1))
        sizes.append(n)
        error = (estimates[-1] - estimates[-2]).abs()
        if bool((error <= tol).all()):
            break
    if not return_info:
        return estimates[-1]
    return estimates[-1], {"estimates": torch.stack(estimates), "points_per_dim": sizes, "error": error}


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """(sum w)^2 / sum w^2 over the last axis, computed from log weights; in [1, K]."""
    log_w = log_w - log_w.amax(-1, keepdim=True)  # the scale cancels; keeps float32 exact-ish
    return torch.exp(2 * torch.logsumexp(log_w, -1) - torch.logsumexp(2 * log_w, -1))


# --------------------------------------------------------------------------- units and batching


def nats_to_bpd(nll_nats, dim: int = 784):
    """Negative log-likelihood in nats per image -> bits per dimension, nll / (dim ln 2)."""
    return nll_nats / (dim * LN2)


def bpd_to_nats(bpd, dim: int = 784):
    """Bits per dimension -> nats per image, bpd * dim ln 2."""
    return bpd * (dim * LN2)


def evaluate_in_batches(fn: Callable[[torch.Tensor], torch.Tensor], data, *, batch_size: int = 100,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Apply a per-image estimator ``fn(x) -> (B,)`` to a data set batch by batch.

    ``data`` is a tensor (N, ...) or an iterable of batches (tensors, or tuples whose first item
    is the images, as a DataLoader yields). Returns the concatenated values (N,) on the CPU.
    With a random estimator the values depend on ``batch_size``: keep it fixed with the seed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(data, torch.Tensor):
        batches: Iterable = data.split(batch_size)
    else:
        batches = data
    out = []
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        out.append(fn(batch).detach().cpu())
    return torch.cat(out)


def mean_and_stderr(values) -> tuple[float, float]:
    """Mean and standard error (sample std with ddof=1 over sqrt n); stderr is nan for n < 2."""
    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    v = v.ravel()
    if v.size == 0:
        raise ValueError("mean_and_stderr needs at least one value")
    stderr = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), stderr


# --------------------------------------------------------------------------- seed section 1.5


def _x_minus_log1p_x(d: np.ndarray) -> np.ndarray:
    """d - log(1 + d) to ~1e-13 relative: a series for |d| < 1e-2, where the direct form cancels."""
    series = sum((-1) ** j * d**j / j for j in range(2, 10))  # truncation < d^8 / 5 relative
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = d - np.log1p(d)
    return np.where(np.abs(d) < 1e-2, series, direct)


def kl_gaussian_1d(mu_q, sigma_q):
    """KL(N(mu_q, sigma_q^2) || N(0, 1)) = (sigma_q^2 + mu_q^2 - 1)/2 - log sigma_q  (seed eq. 15).

    Evaluated in float64 as mu^2/2 + d^2/2 + (d - log1p(d)) with d = sigma_q - 1, which keeps
    full relative precision when q is close to the prior (the seed's "Small" example).
    Accepts floats or arrays; returns a float for scalar input.
    """
    mu = np.asarray(mu_q, dtype=np.float64)
    sigma = np.asarray(sigma_q, dtype=np.float64)
    if np.any(sigma <= 0):
        raise ValueError(f"sigma_q must be positive, got {sigma_q!r}")
    d = sigma - 1.0  # exact in floating point for sigma in [0.5, 2] (Sterbenz)
    kl = 0.5 * mu**2 + 0.5 * d**2 + _x_minus_log1p_x(d)
    return float(kl) if kl.ndim == 0 else kl


def kl_gaussian_1d_monte_carlo(mu_q: float, sigma_q: float, n: int, generator: torch.Generator
                               ) -> tuple[float, float]:
    """Monte Carlo E_q[log q(x) - log p(x)] with n draws from q, in float64: (estimate, stderr)."""
    eps = torch.randn(n, generator=generator, dtype=torch.float64, device=generator.device)
    x = mu_q + sigma_q * eps  # x ~ q
    # log q(x) - log p(x) with log sqrt(2 pi) cancelled and (x - mu)/sigma = eps exactly
    terms = -math.log(sigma_q) - 0.5 * eps**2 + 0.5 * x**2
    return terms.mean().item(), (terms.std() / math.sqrt(n)).item()


SEED_KL_EXAMPLES = (  # (name, mu_q, sigma_q, value printed in the seed)
    ("Big", 1e5, 1 + 1e5, 1.0e10),
    ("Small", 1e-5, 1 + 1e-5, 1.49e-10),
    ("Prior", 0.0, 1.0, 0.0),
)


def seed_kl_examples(*, n: int = 1_000_000, generator: torch.Generator | None = None) -> list[dict]:
    """Rows reproducing the seed's section 1.5a: closed form, Monte Carlo (with stderr), seed value.

    The closed form of "Small" is 1.5e-10 - 1e-15/3 = 1.4999967e-10: the seed's 1.49e-10 is
    that number truncated. Its Monte Carlo stderr (~1e-8 at n = 1e6) dwarfs the value: plain
    MC cannot resolve a KL that small, which is why the closed form is used in the ELBO.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    rows = []
    for name, mu_q, sigma_q, seed_value in SEED_KL_EXAMPLES:
        mc, mc_stderr = kl_gaussian_1d_monte_carlo(mu_q, sigma_q, n, generator)
        rows.append({"example": name, "mu_q": mu_q, "sigma_q": sigma_q, "seed": seed_value,
                     "closed_form": kl_gaussian_1d(mu_q, sigma_q),
                     "monte_carlo": mc, "monte_carlo_stderr": mc_stderr, "n": n})
    return rows


# --------------------------------------------------------------------------- Parzen windows


@torch.inference_mode()
def _parzen_multi(samples: torch.Tensor, test: torch.Tensor, sigmas, *, batch_size: int,
                  sample_chunk: int) -> torch.Tensor:
    """Parzen log-likelihood for every sigma at once, (S, N_test); distances computed once."""
    samples, test = samples.flatten(1), test.flatten(1).to(samples.device, samples.dtype)
    n, dim = samples.shape
    if test.shape[1] != dim:
        raise ValueError(f"samples have {dim} dimensions but test points have {test.shape[1]}")
    sig = torch.as_tensor(sigmas, dtype=samples.dtype, device=samples.device).reshape(-1, 1, 1)
    if torch.any(sig <= 0):
        raise ValueError(f"Parzen sigmas must be positive, got {sigmas!r}")
    s_sq = samples.pow(2).sum(-1)  # (n,)
    out = []
    for t in test.split(batch_size):  # (bt, D)
        t_sq = t.pow(2).sum(-1)
        lse = None
        for s, ssq in zip(samples.split(sample_chunk), s_sq.split(sample_chunk)):
            sq_dist = (t_sq[:, None] + ssq[None, :] - 2 * t @ s.T).clamp_min(0)  # (bt, c)
            a = torch.logsumexp(-sq_dist / (2 * sig**2), -1)  # (S, bt)
            lse = a if lse is None else torch.logaddexp(lse, a)
        out.append(lse)
    lse = torch.cat(out, -1)  # (S, N_test)
    return lse - math.log(n) - 0.5 * dim * torch.log(2 * math.pi * sig[:, :, 0] ** 2)


def parzen_log_likelihood(samples: torch.Tensor, test: torch.Tensor, sigma: float, *,
                          batch_size: int = 100, sample_chunk: int = 10_000) -> torch.Tensor:
    """log (1/n) sum_i N(x; s_i, sigma^2 I) for each test point x (N_test,), from samples (n, ...).

    Computed in the samples' dtype and device, in blocks of ``batch_size`` test points by
    ``sample_chunk`` samples with a running logsumexp (memory ~ batch_size * sample_chunk
    floats per sigma). Squared distances use |x|^2 + |s|^2 - 2 x.s, so in float32 at D=784
    they carry ~1e-5 absolute error (~5e-4 nats at sigma = 0.1); pass float64 to avoid it.
    """
    return _parzen_multi(samples, test, [sigma], batch_size=batch_size, sample_chunk=sample_chunk)[0]


def select_parzen_sigma(samples: torch.Tensor, valid: torch.Tensor, sigmas=DEFAULT_PARZEN_SIGMAS, *,
                        batch_size: int = 100, sample_chunk: int = 10_000
                        ) -> tuple[float, list[tuple[float, float]]]:
    """The sigma with the highest mean validation log-likelihood, and the table [(sigma, mean ll)]."""
    sigmas = [float(s) for s in sigmas]
    if not sigmas:
        raise ValueError("select_parzen_sigma needs at least one sigma")
    ll = _parzen_multi(samples, valid, sigmas, batch_size=batch_size, sample_chunk=sample_chunk)
    means = ll.mean(-1).tolist()
    table = list(zip(sigmas, means))
    return max(table, key=lambda row: row[1])[0], table


# --------------------------------------------------------------------------- annealed importance sampling
#
# Wu, Burda, Salakhutdinov & Grosse, "On the Quantitative Analysis of Decoder-Based Generative
# Models", ICLR 2017 (arXiv:1611.04273): AIS (Neal 2001) with HMC transitions (Neal 2011) along the
# geometric path from an initial distribution pi_0 to the unnormalised posterior p(z) p(x|z),
#     f_beta(z) = pi_0(z)^(1 - beta) (p(z) p(x|z))^beta = pi_0(z) exp(beta r(z)),
#     r(z) = log p(z) + log p(x|z) - log pi_0(z),
# with pi_0 the prior (r = log p(x|z)) or an encoder's q(z|x) ("AIS + encoder"), and its check on
# simulated data, bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015, arXiv:1511.02543).
#
# Models are reached through a callable log p(x|z) (x (R, D), z (R, Z) -> (R,), differentiable in z),
# the standard-normal prior and optionally an encoder x -> (mu, logvar). Chains of all images of a
# batch run as one (images * chains, Z) tensor, row b * chains + c.
#
# Randomness: image i draws from its own torch.Generator, seeded from (seed, stream, i) by
# ``image_generator``: first its initial noise (chains, Z), then, per block of ``AIS_NOISE_BLOCK``
# transitions, momenta (block, chains, Z) and uniforms (block, chains). The draws of an image do not
# depend on its batch-mates, so neither does its estimate: ``images_per_batch`` changes memory and
# speed, not the numbers. Generators live on ``rng_device`` (the CPU by default: the same draws on a
# GPU) and noise moves to the data's device.

AIS_NOISE_BLOCK = 32  # transitions per draw from an image's stream; fixed, so batching cannot change draws
AIS_SCHEDULES = ("sigmoid", "linear")
SIGMOID_SCHEDULE_DELTA = 4.0  # Wu et al.'s sigmoid schedule spans sigmoid([-4, 4])
AIS_STREAMS = {"forward": 0, "reverse": 1, "hmc": 2}  # one independent stream per use of a seed


@dataclass(frozen=True)
class AISOptions(ModelConfig):
    """How AIS, BDMC and ``hmc_sample`` run; the paper's protocol is the default but for the length."""

    chains: int = 16  # independent chains per image (Wu et al.: 16)
    leapfrog: int = 10  # leapfrog steps per HMC transition (Wu et al.: 10)
    schedule: str = "sigmoid"  # the beta schedule, one of AIS_SCHEDULES
    step_size: float = 0.01  # every chain's first leapfrog step size (Wu et al.'s code: 0.01)
    adapt: bool = True  # adapt each chain's step size toward target_acceptance (False: fixed)
    target_acceptance: float = 0.65  # optimal HMC acceptance rate (Beskos et al., Bernoulli 2013)
    step_size_factor: float = 1.02  # multiply by it when a chain accepts above target, divide when below
    acceptance_smoothing: float = 0.9  # weight of the past in each chain's moving-average acceptance
    step_size_min: float = 1e-4  # clamp of the adapted step size
    step_size_max: float = 0.5
    images_per_batch: int = 100  # memory ~ images_per_batch * chains rows through the decoder
    rng_device: str = "cpu"  # device of the per-image generators (a CPU gives the same draws everywhere)

    KIND = "AIS"
    POSITIVE_INTS = ("chains", "leapfrog", "images_per_batch")

    def check(self) -> None:
        if self.schedule not in AIS_SCHEDULES:
            raise ValueError(f"AISOptions.schedule must be one of {AIS_SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.step_size_min <= self.step_size <= self.step_size_max:
            raise ValueError("AISOptions needs 0 < step_size_min <= step_size <= step_size_max, got "
                             f"{self.step_size_min!r}, {self.step_size!r}, {self.step_size_max!r}")
        if not 0 < self.target_acceptance < 1 or not 0 <= self.acceptance_smoothing < 1:
            raise ValueError("AISOptions.target_acceptance must be in (0, 1) and acceptance_smoothing in [0, 1), "
                             f"got {self.target_acceptance!r}, {self.acceptance_smoothing!r}")
        if not self.step_size_factor >= 1:
            raise ValueError(f"AISOptions.step_size_factor must be >= 1, got {self.step_size_factor!r}")


def ais_schedule(steps: int, kind: str = "sigmoid", *, delta: float = SIGMOID_SCHEDULE_DELTA) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < beta_1 < ... < beta_steps < beta_{steps+1} = 1, float64 (steps + 2,).

    ``steps`` counts the intermediate distributions, i.e. the HMC transitions. ``sigmoid`` (Wu et al.
    sec. 6.2): sigmoid of ``steps + 2`` evenly spaced points on [-delta, delta], rescaled to [0, 1],
    which puts more distributions near 0 and 1, where the path changes fastest; ``linear``: evenly spaced.
    """
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if kind not in AIS_SCHEDULES:
        raise ValueError(f"unknown AIS schedule {kind!r}; use one of {AIS_SCHEDULES}")
    t = torch.linspace(0.0, 1.0, steps + 2, dtype=torch.float64)
    if kind == "sigmoid":
        s = torch.sigmoid(delta * (2 * t - 1))
        t = (s - s[0]) / (s[-1] - s[0])
    t[0], t[-1] = 0.0, 1.0
    return t


def image_generator(seed: int, index: int, stream: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """The random stream of image ``index`` under ``seed``: independent across (seed, stream, index)."""
    state = np.random.SeedSequence((int(seed), int(stream), int(index))).generate_state(2, np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))


class _ImageNoise:
    """The per-image streams of one batch: initial noise, then momenta and log-uniforms per transition."""

    def __init__(self, generators: list[torch.Generator], chains: int, z_dim: int, like: torch.Tensor):
        self.generators, self.chains, self.z_dim, self.like = generators, chains, z_dim, like
        self.momenta = self.log_u = None
        self.used = AIS_NOISE_BLOCK

    def _draw(self, fn, shape) -> torch.Tensor:
        parts = [fn(shape, generator=g, device=g.device, dtype=self.like.dtype) for g in self.generators]
        return torch.stack(parts, 1).to(self.like.device)  # (..., B, ...)

    def initial(self) -> torch.Tensor:
        eps = self._draw(torch.randn, (self.chains, self.z_dim))  # (C, B, Z)
        return eps.transpose(0, 1).reshape(-1, self.z_dim)  # (B*C, Z)

    def transition(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.used == AIS_NOISE_BLOCK:
            n = AIS_NOISE_BLOCK
            self.momenta = self._draw(torch.randn, (n, self.chains, self.z_dim)).reshape(n, -1, self.z_dim)
            u = self._draw(torch.rand, (n, self.chains)).reshape(n, -1)  # (n, B*C) in [0, 1)
            self.log_u = (1 - u).log()  # in (-inf, 0]: never -inf, so a rejected-for-sure move stays rejected
            self.used = 0
        t, self.used = self.used, self.used + 1
        return self.momenta[t], self.log_u[t]  # (B*C, Z), (B*C,)


class _GeometricPath:
    """log f_beta(z) = log pi_0(z) + beta r(z) for the rows of one batch (see the section comment).

    ``ratio(z)`` gives r and its gradient (one decoder pass forward and back); ``base`` gives
    log pi_0 up to a constant and its gradient, in closed form.
    """

    def __init__(self, log_likelihood, x: torch.Tensor, mu: torch.Tensor | None = None,
                 logvar: torch.Tensor | None = None):
        self.log_likelihood, self.x, self.mu, self.logvar = log_likelihood, x, mu, logvar  # x (R, D), mu (R, Z)
        self.inv_var = None if logvar is None else (-logvar).exp()

    def base(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mu is None:
            return -0.5 * z.pow(2).sum(-1), -z
        d = z - self.mu  # (R, Z)
        return -0.5 * (d.pow(2) * self.inv_var).sum(-1), -d * self.inv_var

    def ratio(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            ll = self.log_likelihood(self.x, zg)  # (R,)
            if not ll.requires_grad:
                raise ValueError("log_likelihood is not differentiable in z (a decoder under torch.inference_mode?"
                                 " wrap it with dgm.distributions.differentiable)")
            (grad,) = torch.autograd.grad(ll.sum(), zg)  # rows are independent: d sum / dz_r = d ll_r / dz_r
        ll = ll.detach()
        if self.mu is None:
            return ll, grad
        r = ll + log_standard_normal(z) - log_normal_diag(z, self.mu, self.logvar)
        return r, grad - z + (z - self.mu) * self.inv_var


def _hmc_transition(path: _GeometricPath, z, r, grad_r, beta: float, step, leapfrog: int, momentum, log_u):
    """One HMC transition leaving f_beta invariant, for every row at once; step (R, 1) per chain.

    Returns the new (z, r, grad_r) and each row's acceptance probability min(1, exp(-dH)).
    """
    def log_f(z, r):
        return path.base(z)[0] + beta * r  # (R,)

    def grad_log_f(z, grad_r):
        return path.base(z)[1] + beta * grad_r  # (R, Z)

    p = momentum + 0.5 * step * grad_log_f(z, grad_r)  # half step
    z_new = z
    for i in range(leapfrog):
        z_new = z_new + step * p
        r_new, grad_new = path.ratio(z_new)
        p = p + (step if i < leapfrog - 1 else 0.5 * step) * grad_log_f(z_new, grad_new)
    log_accept = (log_f(z_new, r_new) - 0.5 * p.pow(2).sum(-1)) - (log_f(z, r) - 0.5 * momentum.pow(2).sum(-1))
    log_accept = torch.where(log_accept.isnan(), -math.inf, log_accept)  # a diverged trajectory is rejected
    accept = log_u <= log_accept  # (R,), probability min(1, exp(log_accept))
    z = torch.where(accept[:, None], z_new, z)
    r = torch.where(accept, r_new, r)
    grad_r = torch.where(accept[:, None], grad_new, grad_r)
    return z, r, grad_r, log_accept.clamp(max=0).exp()


def _anneal(path: _GeometricPath, z: torch.Tensor, betas: list[float], noise: _ImageNoise, opt: AISOptions):
    """Run AIS along ``betas`` (increasing: forward; decreasing: reverse) from rows z (R, Z).

    log w = sum_t (beta_t - beta_{t-1}) r(z_{t-1}), accumulated in float64, with an HMC transition
    leaving f_{beta_t} invariant after every increment but the last. Step sizes adapt per chain:
    times ``step_size_factor`` while the chain's moving-average acceptance probability is above
    target, divided by it below, clamped. The adaptation uses the chain's own past, so strictly the
    weights are unbiased only for fixed step sizes (``adapt=False``); Wu et al.'s code adapts the same way.
    Returns log w (R,), the final z, each row's mean acceptance probability and final step size (R,).
    """
    r, grad_r = path.ratio(z)
    log_w = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
    step = torch.full((z.shape[0], 1), opt.step_size, dtype=z.dtype, device=z.device)
    smoothed = torch.full((z.shape[0],), opt.target_acceptance, dtype=z.dtype, device=z.device)
    accepted = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for t in range(1, len(betas)):
        log_w += (betas[t] - betas[t - 1]) * r.double()
        if t == len(betas) - 1:
            break
        momentum, log_u = noise.transition()
        z, r, grad_r, prob = _hmc_transition(path, z, r, grad_r, betas[t], step, opt.leapfrog, momentum, log_u)
        accepted += prob
        if opt.adapt:
            smoothed = opt.acceptance_smoothing * smoothed + (1 - opt.acceptance_smoothing) * prob
            factor = torch.where(smoothed > opt.target_acceptance, opt.step_size_factor, 1 / opt.step_size_factor)
            step = (step * factor[:, None]).clamp(opt.step_size_min, opt.step_size_max)
    return log_w, z, accepted / max(len(betas) - 2, 1), step[:, 0]


def _ais_batches(n: int, indices, opt: AISOptions):
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    if len(indices) != n:
        raise ValueError(f"indices has {len(indices)} entries for {n} images")
    for start in range(0, n, opt.images_per_batch):
        yield slice(start, min(start + opt.images_per_batch, n)), indices[start:start + opt.images_per_batch]


def _prepare(x: torch.Tensor) -> torch.Tensor:
    x = _as_batch(x)  # (N, D)
    x = x if x.is_floating_point() else x.to(torch.get_default_dtype())
    return x.clone() if x.is_inference() else x  # inference tensors cannot be saved for backward


def _run_ais(log_likelihood, x, *, betas: list[float], latent_dim, encoder, seed, indices, stream: str,
             opt: AISOptions, z_start: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Annealing over all images in batches; z_start (N, Z) or (N, chains, Z) replaces the initial draw."""
    with torch.inference_mode(False):
        x = _prepare(x)
        out: dict[str, list] = {"log_w": [], "acceptance": [], "step_size": [], "z": []}
        for rows, idx in _ais_batches(x.shape[0], indices, opt):
            xb = x[rows].repeat_interleave(opt.chains, 0)  # (B*C, D)
            gens = [image_generator(seed, i, AIS_STREAMS[stream], opt.rng_device) for i in idx]
            mu = logvar = None
            if encoder is not None:
                with torch.no_grad():
                    mu, logvar = (t.detach().clone().repeat_interleave(opt.chains, 0) for t in encoder(x[rows]))
            z_dim = mu.shape[-1] if mu is not None else latent_dim
            if z_dim is None:
                raise ValueError("latent_dim is needed without an encoder")
            noise = _ImageNoise(gens, opt.chains, z_dim, like=xb)
            if z_start is not None:
                zb = z_start[rows].to(xb.device, xb.dtype)
                z = (zb[:, None, :].expand(-1, opt.chains, -1) if zb.dim() == 2 else zb).reshape(-1, z_dim)
            else:
                eps = noise.initial()  # (B*C, Z)
                z = eps if mu is None else mu + (0.5 * logvar).exp() * eps
            path = _GeometricPath(log_likelihood, xb, mu, logvar)
            log_w, z, acc, step = _anneal(path, z, betas, noise, opt)
            out["log_w"].append(log_w.view(-1, opt.chains))
            out["acceptance"].append(acc.view(-1, opt.chains).mean(1))
            out["step_size"].append(step.view(-1, opt.chains))
            out["z"].append(z.detach().view(-1, opt.chains, z_dim))
        return {k: torch.cat(v) for k, v in out.items()}


def _log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(log_w, -1) - math.log(log_w.shape[-1])


def ais_log_px(log_likelihood: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, *,
               steps: int, latent_dim: int | None = None, encoder=None, seed: int = 0, indices=None,
               return_info: bool = False, **options):
    """AIS estimate of log p(x) per image (N,), from ``chains`` chains over ``steps`` intermediate
    distributions (Wu et al., ICLR 2017); a stochastic lower bound of log p(x) in expectation.

    ``log_likelihood(x, z)``: log p(x|z) for x (R, D), z (R, Z) -> (R,), differentiable in z (a model's
    ``log_likelihood``, or a ``dgm.distributions.GaussianObservation``'s); the prior is N(0, I).
    ``encoder``: x -> (mu, logvar) of q(z|x), e.g. ``model.encode``: then AIS starts from q and
    anneals along q^(1-beta) (p(z) p(x|z))^beta ("AIS + encoder"); without it, from the prior
    (``latent_dim`` needed). ``steps=0`` is plain importance sampling from the initial distribution
    with ``chains`` samples: naive Monte Carlo from the prior, or the IWAE estimate from q.

    ``seed`` and the images' ``indices`` (default 0..N-1; pass their positions in the data set when
    calling on a slice) fix every draw: the same seed gives the same numbers, however the images
    are batched. ``options``: the fields of ``AISOptions`` (chains, leapfrog, schedule, step sizes and
    their adaptation, images_per_batch, rng_device); an unknown one raises ValueError.
    Runs on the device of x (and of the model), in x's floating dtype; log weights sum in float64.

    With ``return_info`` also a dict: ``log_weights`` (N, chains), ``ess`` (N,) of the chains'
    weights, ``acceptance`` (N,) the mean HMC acceptance probability, ``step_size`` (N, chains) at
    the end, ``z`` (N, chains, Z) the final states (approximate posterior samples).
    """
    opt = AISOptions.from_dict(options)
    betas = ais_schedule(steps, opt.schedule).tolist()
    res = _run_ais(log_likelihood, x, betas=betas, latent_dim=latent_dim, encoder=encoder, seed=seed,
                   indices=indices, stream="forward", opt=opt)
    dtype = _prepare(x).dtype
    log_px = _log_mean_exp(res["log_w"]).to(dtype)
    if not return_info:
        return log_px
    return log_px, {"log_weights": res["log_w"], "ess": effective_sample_size(res["log_w"]),
                    "acceptance": res["acceptance"], "step_size": res["step_size"], "z": res["z"]}


def hmc_sample(log_likelihood, x: torch.Tensor, z: torch.Tensor, *, transitions: int, beta: float = 1.0,
               encoder=None, seed: int = 0, indices=None, **options) -> dict[str, torch.Tensor]:
    """Run HMC on f_beta (beta = 1: the posterior p(z|x)) from z (N, chains, Z) for ``transitions`` steps.

    The transitions AIS uses, at a fixed beta: ``z`` (N, chains, Z) final states, ``acceptance`` (N,),
    ``step_size`` (N, chains). Options as ``ais_log_px``; ``chains`` is taken from z.
    """
    if not isinstance(transitions, int) or transitions < 0:
        raise ValueError(f"transitions must be a non-negative integer, got {transitions!r}")
    if z.dim() != 3:
        raise ValueError(f"z must be (images, chains, latent_dim), got shape {tuple(z.shape)}")
    opt = AISOptions.from_dict({**options, "chains": z.shape[1]})
    res = _run_ais(log_likelihood, x, betas=[float(beta)] * (transitions + 2), latent_dim=z.shape[-1],
                   encoder=encoder, seed=seed, indices=indices, stream="hmc", opt=opt, z_start=z)
    return {k: res[k] for k in ("z", "acceptance", "step_size")}


# --------------------------------------------------------------------------- bidirectional Monte Carlo


@torch.no_grad()
def simulate_data(sample_observation, n: int, *, latent_dim: int, generator: torch.Generator,
                  device: str | torch.device | None = None, dtype: torch.dtype = torch.float32):
    """(x, z) with z ~ N(0, I) (n, Z) and x ~ p(x|z) = ``sample_observation(z, generator)`` (n, D).

    z is an exact sample of p(z|x): what reverse AIS starts from in ``bdmc``. ``sample_observation``
    is an observation model's sampler, e.g. ``GaussianObservation(decode, sigma).sample`` or
    ``BernoulliObservation(model.logits).sample``. z is drawn on the generator's device, then moved.
    """
    z = torch.randn(n, latent_dim, generator=generator, device=generator.device, dtype=dtype)
    z = z.to(device) if device is not None else z
    x = sample_observation(z, generator)
    return _as_batch(x), z


def bdmc(log_likelihood, x: torch.Tensor, z: torch.Tensor, *, steps: int, encoder=None, seed: int = 0,
         indices=None, **options) -> dict[str, torch.Tensor]:
    """Bidirectional Monte Carlo on simulated data (Grosse et al. 2015; Wu et al. sec. 5): a stochastic
    lower and upper bound of log p(x) per image, which sandwich the truth.

    ``x`` (N, D) was drawn from the model given ``z`` (N, Z) (``simulate_data``), so z is an exact
    posterior sample. Forward AIS (beta 0 -> 1, from the prior or ``encoder``'s q) gives ``lower``:
    E[log mean w] <= log p(x); it equals ``ais_log_px`` with the same arguments. Reverse AIS starts
    every chain at z and anneals beta 1 -> 0 along the same path; its weights estimate 1/p(x)
    unbiasedly, so ``upper`` = -log mean w_rev >= log p(x) in expectation. ``gap`` = upper - lower
    bounds the error of either on this kind of data. Also ``acceptance_forward``/``_reverse`` (N,)
    and ``log_weights_forward``/``_reverse`` (N, chains). Options as ``ais_log_px``.
    """
    opt = AISOptions.from_dict(options)
    betas = ais_schedule(steps, opt.schedule).tolist()
    common = dict(latent_dim=z.shape[-1], encoder=encoder, seed=seed, indices=indices, opt=opt)
    fwd = _run_ais(log_likelihood, x, betas=betas, stream="forward", **common)
    rev = _run_ais(log_likelihood, x, betas=betas[::-1], stream="reverse", z_start=z, **common)
    dtype = _prepare(x).dtype
    lower, upper = _log_mean_exp(fwd["log_w"]).to(dtype), (-_log_mean_exp(rev["log_w"])).to(dtype)
    return {"lower": lower, "upper": upper, "gap": upper - lower,
            "acceptance_forward": fwd["acceptance"], "acceptance_reverse": rev["acceptance"],
            "log_weights_forward": fwd["log_w"], "log_weights_reverse": rev["log_w"]}


# --------------------------------------------------------------------------- Gaussian observation noise


def choose_sigma(decode, x: torch.Tensor, sigma_grid, *, latent_dim: int, steps: int, seed: int = 0,
                 indices=None, **options) -> dict:
    """The observation noise sigma of ``GaussianObservation(decode, sigma)`` with the highest mean AIS
    log-likelihood on validation images x (Wu et al. sec. 6.1 choose it on validation data).

    Every grid point uses the same seed (common random numbers). ``steps=0`` scores by importance
    sampling from the prior with ``chains`` samples. Returns ``sigma_grid`` (list), ``scores`` (mean
    log p(x) per grid point), ``sigma`` (the winner) and ``log_px`` (grid, N).
    """
    grid = [float(s) for s in sigma_grid]
    if not grid:
        raise ValueError("choose_sigma needs at least one sigma")
    log_px = torch.stack([
        ais_log_px(GaussianObservation(decode, s).log_likelihood, x, steps=steps, latent_dim=latent_dim,
                   seed=seed, indices=indices, **options)
        for s in grid])  # (S, N)
    scores = log_px.double().mean(-1).tolist()
    return {"sigma_grid": grid, "scores": scores, "sigma": grid[int(np.argmax(scores))], "log_px": log_px}


# --------------------------------------------------------------------------- cost


def ais_seconds_per_image(log_likelihood, x: torch.Tensor, *, steps: int = 100, latent_dim: int | None = None,
                          encoder=None, **options) -> float:
    """Wall-clock seconds of AIS per image per 1,000 intermediate distributions, measured on x.

    For sizing a run: the cost is linear in steps and in leapfrog, and roughly in images * chains
    until the device is busy. A 2-step warm-up runs first (CUDA initialisation, allocator).
    """
    if steps < 1:
        raise ValueError(f"steps must be positive to measure a cost per step, got {steps!r}")
    ais_log_px(log_likelihood, x[:1], steps=2, latent_dim=latent_dim, encoder=encoder, **options)
    sync = torch.cuda.synchronize if _as_batch(x).is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    ais_log_px(log_likelihood, x, steps=steps, latent_dim=latent_dim, encoder=encoder, **options)
    sync()
    return (time.perf_counter() - start) / x.shape[0] / (steps / 1000)
