"""Log-densities and divergences the models and estimators share (all summed over the last axis),
and paths between latents of a standard-normal prior (the interpolation figures of every decoder model)."""
from __future__ import annotations

import inspect
import math

import torch

LOG_2PI = math.log(2 * math.pi)

# The course's interpolation figure: 7 intermediate points between two latents, i.e. 9 points
# counting both endpoints; pass this as ``steps`` to ``interpolate_latents``.
COURSE_INTERPOLATION_STEPS = 9

INTERPOLATION_METHODS = ("linear", "slerp", "cdf")


def gaussian_kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) summed over the last axis (seed eq. 15/25)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last axis."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last axis."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def _log_sigmoid_abs_sum_(s: torch.Tensor) -> torch.Tensor:
    """sum over the last axis of log sigmoid(|s|), overwriting s. sigmoid(|s|) lies in [1/2, 1], so
    this is stable for any s without ``log1p`` (behind ``logsigmoid``, ``softplus`` and the BCE
    losses), which this CPU build does not vectorise: about 2x faster (tests/bench/bench_training.py)."""
    return s.abs_().sigmoid_().log_().sum(-1)


def log_sigmoid_sum_(s: torch.Tensor) -> torch.Tensor:
    """sum over the last axis of log sigmoid(s), overwriting s: per element min(s, 0) + log sigmoid(|s|),
    equal to ``F.logsigmoid`` to float rounding. For binary x, log Bern(x; sigmoid(t)) = log sigmoid((2x - 1) t).
    """
    return s.clamp(max=0).sum(-1) + _log_sigmoid_abs_sum_(s)


class _BernoulliLogLikelihood(torch.autograd.Function):
    """log Bern(x; sigmoid(t)) = x t - softplus(t) summed over the last axis, for x in [0, 1].

    softplus(t) = max(t, 0) - log sigmoid(|t|), computed without ``log1p`` (``_log_sigmoid_abs_sum_``).
    The gradient in t is written as ``binary_cross_entropy_with_logits`` writes it, (sigmoid(t) - x)
    times the incoming gradient, so training gradients are bitwise those of the BCE form.
    """

    @staticmethod
    def forward(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        # The helper takes |.| in place: a plain copy, not logits.abs(), spares a second pass of abs.
        return (x * logits).sub_(logits.clamp(min=0)).sum(-1) + _log_sigmoid_abs_sum_(logits.clone())

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, logits = ctx.saved_tensors
        grad = grad.unsqueeze(-1)  # (..., 1) against (..., D)
        grad_x = (logits * grad).sum_to_size(x.shape) if ctx.needs_input_grad[0] else None
        grad_logits = (torch.sigmoid(logits) - x) * -grad if ctx.needs_input_grad[1] else None
        return grad_x, grad_logits


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bern(x; sigmoid(logits)) summed over the last axis, stable for any logits: x (B, D) in [0, 1]
    against logits (..., B, D) -> (..., B). Differentiable in both, twice too."""
    return _BernoulliLogLikelihood.apply(x, logits)


def bernoulli_draw(probs: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """x ~ Bern(probs) as 0/1 in probs' dtype: one uniform per element, drawn on the generator's device,
    compared with p. On a CPU these are torch.bernoulli's draws bit for bit, and the generator ends in
    the same state (tested); one ``torch.rand`` is about 2x faster than torch.bernoulli there."""
    device = generator.device if generator is not None else probs.device
    u = torch.rand(probs.shape, generator=generator, device=device, dtype=probs.dtype).to(probs.device)
    return (u < probs).to(probs.dtype)


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "linear") -> torch.Tensor:
    """``steps`` equally spaced points from z0 to z1, both endpoints included: (steps, *z0.shape).

    ``steps`` counts the endpoints: the course's "7 steps between two points" is ``steps=9``
    (``COURSE_INTERPOLATION_STEPS``). Row 0 is exactly z0 and row ``steps - 1`` exactly z1.
    Works for any latent shape (vectors for the VAE and GAN, images for the flow).

    Methods, for a standard-normal prior:
      - ``linear``: (1 - t) z0 + t z1. Midpoints have smaller norm than typical prior samples.
      - ``slerp``: along the great circle (White 2016, arXiv:1609.04468); keeps the norm when
        |z0| = |z1|. Antipodal endpoints have no unique circle and raise ``ValueError``.
      - ``cdf``: the seed's §2.7: linear in u = Phi(z) on the unit cube, mapped back with
        Phi^-1, so every point is a plausible N(0, I) draw coordinate-wise.
    Computed in float64 and returned in z0's dtype and device.
    """
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"unknown interpolation method {method!r}; use one of {INTERPOLATION_METHODS}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps counts both endpoints and must be an integer >= 2, got {steps!r}")
    if z0.shape != z1.shape:
        raise ValueError(f"endpoints differ in shape: {tuple(z0.shape)} vs {tuple(z1.shape)}")
    a, b = z0.detach().double().flatten(), z1.detach().double().flatten()  # (D,)
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64, device=a.device)[:, None]  # (S, 1)

    if method == "linear":
        path = (1 - t) * a + t * b  # (S, D)
    elif method == "slerp":
        norms = a.norm() * b.norm()
        if norms == 0:
            raise ValueError("slerp needs non-zero endpoints")
        omega = torch.arccos((a @ b / norms).clamp(-1.0, 1.0))
        if math.sin(omega) < 1e-7:
            if omega > 1.0:
                raise ValueError("slerp is undefined for antipodal endpoints")
            path = (1 - t) * a + t * b  # same direction: the great circle degenerates to the chord
        else:
            path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    else:  # cdf
        # Clamp keeps Phi^-1 finite where Phi(z) rounds to 0 or 1 (|z| > ~8.3 in float64).
        u0, u1 = (torch.special.ndtr(v).clamp(1e-300, 1 - 1e-16) for v in (a, b))
        path = torch.special.ndtri((1 - t) * u0 + t * u1)  # (S, D)

    path[0], path[-1] = a, b  # exact endpoints, whatever the rounding above
    return path.view(steps, *z0.shape).to(z0.dtype)


# --------------------------------------------------------------------------- observation models p(x|z)


def differentiable(fn):
    """``fn`` without torch's grad-mode decorators (``inference_mode``, ``no_grad``), so that gradients
    reach z: the models' ``decode`` verbs run under ``inference_mode``, but HMC needs d log p(x|z) / dz.

    Unwraps only torch's context decorators (which set ``__wrapped__``) and keeps a bound method bound;
    any other callable is returned as it is.
    """
    func = getattr(fn, "__func__", fn)
    inner = inspect.unwrap(func, stop=lambda f: getattr(getattr(f, "__code__", None), "co_name", "")
                           != "decorate_context")
    if inner is func:
        return fn
    owner = getattr(fn, "__self__", None)
    return inner.__get__(owner) if owner is not None else inner


def _flat_decode(decode, z: torch.Tensor) -> torch.Tensor:
    """decode(z) for z (..., Z), flattened to (..., D): decoders take 2-d batches (batch norm)."""
    lead = z.shape[:-1]
    return decode(z.reshape(-1, z.shape[-1])).reshape(*lead, -1)


class GaussianObservation:
    """p(x|z) = N(x; decode(z), sigma^2 I): an observation model for any decoder of grey levels.

    The GAN has no likelihood of its own; Wu et al., "On the Quantitative Analysis of Decoder-Based
    Generative Models" (ICLR 2017) give it one by adding isotropic Gaussian noise to the decoder's
    output, with sigma chosen on validation data (``dgm.estimators.choose_sigma``). ``decode`` maps
    latents (B, Z) to images in [0, 1] of any shape (B, ...); it is made differentiable in z with
    ``differentiable`` (a model's ``decode`` runs under ``inference_mode``).
    """

    def __init__(self, decode, sigma: float):
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}")
        self.decode, self.sigma = differentiable(decode), float(sigma)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; decode(z), sigma^2 I) for x (B, D) (or images (B, ...)) and z (..., B, Z) -> (..., B)."""
        mean = _flat_decode(self.decode, z)  # (..., B, D)
        x = x.flatten(1) if x.dim() > 2 else x  # (B, D)
        sq = (x - mean).pow(2).sum(-1)  # (..., B)
        return -0.5 * (sq / self.sigma**2 + x.shape[-1] * (LOG_2PI + 2 * math.log(self.sigma)))

    @torch.no_grad()
    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ N(decode(z), sigma^2 I), (B, D) for z (B, Z); noise drawn on the generator's device.

        Not clipped to [0, 1]: simulated data must come from the model whose likelihood is evaluated.
        """
        mean = _flat_decode(self.decode, z)  # (B, D)
        device = generator.device if generator is not None else mean.device
        noise = torch.randn(mean.shape, generator=generator, device=device, dtype=mean.dtype)
        return mean + self.sigma * noise.to(mean.device)


class BernoulliObservation:
    """p(x|z) = prod_i Bern(x_i; sigmoid(logits(z)_i)): binarised pixels from a decoder's logits.

    For the VAE family ``BernoulliObservation(model.logits)``: ``log_likelihood`` equals the model's
    own, and ``sample`` draws the binary images that bidirectional Monte Carlo simulates.
    """

    def __init__(self, logits):
        self.logits = logits

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for binary x (B, D) and z (..., B, Z) -> (..., B)."""
        x = x.flatten(1) if x.dim() > 2 else x
        return bernoulli_log_likelihood(x, _flat_decode(self.logits, z))

    @torch.no_grad()
    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Binary x (B, D) for z (B, Z); uniforms drawn on the generator's device."""
        return bernoulli_draw(torch.sigmoid(_flat_decode(self.logits, z)), generator=generator)  # (B, D)
