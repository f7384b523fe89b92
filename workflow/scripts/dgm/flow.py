"""RealNVP normalizing flow on dequantised MNIST pixels.

Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017
(arXiv:1605.08803); uniform dequantisation as in Theis, van den Oord & Bethge, "A note on the
evaluation of generative models", ICLR 2016 (arXiv:1511.01844) and Ho et al., "Flow++", ICML 2019
(arXiv:1902.00275, the seed study's reference [4]).

The architecture is the seed study's (course template ``nf.py``): 4 blocks, each an affine
coupling layer with a checkerboard mask followed by one with the inverted mask; every
conditioner is an MLP D -> H -> H -> 2D (H = 1024) whose last layer starts at zero, so each
coupling starts as the identity; the log-scale goes through ``tanh``. Half of each conditioner's
first-layer columns and last-layer rows never matter (they meet masked zeros); they are left out,
the same function at two thirds of the parameters and work (``AffineCoupling``).

Transforms follow bayesiains/nflows: ``forward(x)`` maps data towards noise and ``inverse(z)``
maps back; both return ``(outputs, logabsdet)`` with ``logabsdet`` of shape (B,), the log
|det Jacobian| of the map that was applied.

Bits per dimension of a discrete image
--------------------------------------
Pixels are integers x in {0, ..., 255}^D (D = 784). Any density p_v on the continuous cube
[0, 256)^D defines a discrete model P(x) = integral over u in [0, 1)^D of p_v(x + u) du (each
pixel value owns a bin of volume 1). With u ~ Uniform[0, 1)^D, Jensen's inequality gives

    log P(x) >= E_u[ log p_v(x + u) ],                                    (1)

and with K independent draws, log P(x) >= E[ log (1/K) sum_k p_v(x + u_k) ], a bound that
tightens as K grows (importance sampling with the uniform proposal, whose density is 1).

The bijection from v = x + u to the Gaussian variable z is, per pixel,

    y = v / 256 in [0, 1)                       log-det: -log 256
    p = alpha + (1 - 2 alpha) y in (0, 1)      log-det: +log(1 - 2 alpha)
    s = logit(p) = log p - log(1 - p)           log-det: -log p - log(1 - p)
    z = f(s), the 2 * n_blocks couplings        log-det: sum of log-scales of the free pixels

so log p_v(v) = log N(z; 0, I) + (sum of all the log-dets above). Written in terms of
y = (x + u) / 256 this is log p_v(v) = log p_y(y) - D log 256, the familiar correction. All of
these log-dets are counted, so the returned ``log_prob`` is (one draw of) the lower bound (1) in
nats and

    bpd = -log p_v(x + u) / (D ln 2) = -(log p_y(y) - D log 256) / (D ln 2)

is an upper bound on the negative log2-likelihood of the discrete image per pixel; a model that
knows nothing (uniform on the 256 levels) scores 8 bits/dim. The value of ``alpha`` changes the
model, not the validity of the bound.

``alpha`` defaults to 1e-5, the course template's value (it squeezes with p = y (1 - a) + a / 2,
i.e. our alpha = a / 2, and drops the constant log(1 - a) term; both differences are below
0.01 nats per image). The seed study's ~1.8 bits/dim was obtained with it. RealNVP itself used
0.05 for natural images; with MNIST's 0/255-saturated pixels a small alpha keeps the squeeze
close to the identity and only costs a longer logit range (|s| <= 11.5).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from dgm.config import ModelConfig
from dgm.distributions import log_standard_normal
from dgm.training import Trainer, adam, batched_means

N_LEVELS = 256  # 8-bit pixels: values 0..255, each owning a unit-width dequantisation bin


# --------------------------------------------------------------------------- transforms


class Transform(nn.Module):
    """Bijection with a tractable Jacobian (nflows interface), acting on (B, D) tensors."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class CompositeTransform(Transform):
    """Applies transforms in order; log-dets add up; the inverse runs them in reverse order."""

    def __init__(self, transforms: Iterable[Transform]):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x):
        total = x.new_zeros(x.shape[0])  # (B,)
        for t in self.transforms:
            x, logabsdet = t(x)
            total = total + logabsdet
        return x, total

    def inverse(self, z):
        total = z.new_zeros(z.shape[0])  # (B,)
        for t in reversed(self.transforms):
            z, logabsdet = t.inverse(z)
            total = total + logabsdet
        return z, total


class ScalarScale(Transform):
    """x -> scale * x elementwise; log-det D log|scale| for every row."""

    def __init__(self, scale: float):
        super().__init__()
        if scale == 0:
            raise ValueError("ScalarScale needs a non-zero scale")
        self.scale = float(scale)

    def _logabsdet(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_full((x.shape[0],), x.shape[1] * math.log(abs(self.scale)))

    def forward(self, x):
        return x * self.scale, self._logabsdet(x)

    def inverse(self, z):
        return z / self.scale, -self._logabsdet(z)


class Logit(Transform):
    """y in [0, 1] -> logit(alpha + (1 - 2 alpha) y): squeezes away from 0 and 1, then unbounds.

    log-det per pixel: log(1 - 2 alpha) - log p - log(1 - p) = log(1 - 2 alpha) + softplus(s) +
    softplus(-s) with s the output, which stays finite where p rounds to 0 or 1.
    """

    def __init__(self, alpha: float):
        super().__init__()
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"Logit alpha must lie in (0, 0.5), got {alpha!r}")
        self.alpha = float(alpha)

    def _logabsdet(self, s: torch.Tensor) -> torch.Tensor:
        per_pixel = F.softplus(s) + F.softplus(-s)  # = -log p - log(1 - p), (B, D)
        return per_pixel.sum(-1) + s.shape[1] * math.log1p(-2 * self.alpha)  # (B,)

    def forward(self, y):
        p = self.alpha + (1 - 2 * self.alpha) * y  # (B, D) in (0, 1)
        s = torch.log(p) - torch.log1p(-p)  # (B, D)
        return s, self._logabsdet(s)

    def inverse(self, s):
        y = (torch.sigmoid(s) - self.alpha) / (1 - 2 * self.alpha)  # (B, D)
        return y, -self._logabsdet(s)


def preprocessing(alpha: float) -> CompositeTransform:
    """Dequantised pixels v in [0, 256)^D -> logit space: divide by 256, then :class:`Logit`."""
    return CompositeTransform([ScalarScale(1.0 / N_LEVELS), Logit(alpha)])


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + u with u ~ Uniform[0, 1) of x's shape, dtype and device, drawn from ``generator``."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + u


def checkerboard_mask(data_dim: int) -> torch.Tensor:
    """(D,) float mask, 1 on the pixels a coupling conditions on.

    For a square image (D = s^2) the course's checkerboard, 1 where (row + col) is even; for
    any other D an alternating 1, 0, 1, ... pattern.
    """
    side = math.isqrt(data_dim)
    cpu = torch.device("cpu")  # also under a `with torch.device("meta")`: the couplings index with it
    if side * side == data_dim:
        rows, cols = torch.meshgrid(torch.arange(side, device=cpu), torch.arange(side, device=cpu), indexing="ij")
        return ((rows + cols) % 2 == 0).float().flatten()
    return (torch.arange(data_dim, device=cpu) % 2 == 0).float()


class AffineCoupling(Transform):
    """RealNVP affine coupling: masked pixels pass through, the others get z = x e^s(x_m) + t(x_m).

    Both s and t are read from an MLP of the masked input; s = tanh(raw) (times a learned
    per-pixel scale, initialised to 1, when ``learned_scale``) keeps e^s within [1/e, e] at
    start. The last layer is zero, so the layer starts as the identity with log-det 0.

    The course template's conditioner is D -> H -> H -> 2D on the masked image x * mask: its
    first layer's columns for the free pixels only ever see zeros, and its outputs for the
    conditioning pixels are multiplied by zero. Those weights never receive a gradient, so they
    are left out: the MLP reads the D_c conditioning pixels and writes s and t for the D_f free
    ones (D_c -> H -> H -> 2 D_f), which are scattered back. The full-width layers are created
    first, with the same initialisation calls, and cut down (``_keep``), so a seeded model has the
    template's live weights (the first layer's init bound uses fan-in D) and trains the same way.
    ``n_parameters_template`` counts the template's layers; model files written with them load
    (``_load_from_state_dict`` slices them).
    """

    def __init__(self, mask: torch.Tensor, hidden_dim: int = 1024, learned_scale: bool = False):
        super().__init__()
        d = mask.numel()
        self.register_buffer("mask", mask.reshape(d).clone().float())
        cond_idx = self.mask.nonzero().squeeze(1)  # (D_c,) pixels the coupling reads
        free_idx = (1 - self.mask).nonzero().squeeze(1)  # (D_f,) pixels it transforms
        # Fixed by the mask, so not saved: model files keep the keys they had.
        self.register_buffer("cond_idx", cond_idx, persistent=False)
        self.register_buffer("free_idx", free_idx, persistent=False)
        self._out_idx = torch.cat([free_idx, d + free_idx])  # rows of s, then of t, among the template's 2D
        self.data_dim, self.hidden_dim = d, hidden_dim
        first, middle, last = nn.Linear(d, hidden_dim), nn.Linear(hidden_dim, hidden_dim), nn.Linear(hidden_dim, 2 * d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(_keep(first, inputs=cond_idx), nn.ReLU(), middle, nn.ReLU(),
                                 _keep(last, outputs=self._out_idx))
        self.log_scale_factor = nn.Parameter(torch.ones(len(free_idx))) if learned_scale else None

    def _log_scale_and_shift(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s and t of the free pixels, (B, D_f) each, from the conditioning pixels of x."""
        raw_log_scale, shift = self.net(x.index_select(1, self.cond_idx)).chunk(2, dim=-1)  # (B, D_f) each
        log_scale = torch.tanh(raw_log_scale)
        if self.log_scale_factor is not None:
            log_scale = self.log_scale_factor * log_scale
        return log_scale, shift

    def forward(self, x):
        log_scale, shift = self._log_scale_and_shift(x)  # (B, D_f)
        z_free = x.index_select(1, self.free_idx) * log_scale.exp() + shift  # (B, D_f)
        return x.index_copy(1, self.free_idx, z_free), log_scale.sum(-1)  # conditioning pixels pass through

    def inverse(self, z):
        log_scale, shift = self._log_scale_and_shift(z)  # conditioning pixels of z equal those of x
        x_free = (z.index_select(1, self.free_idx) - shift) * (-log_scale).exp()  # (B, D_f)
        return z.index_copy(1, self.free_idx, x_free), -log_scale.sum(-1)

    @property
    def n_parameters_template(self) -> int:
        """Parameters of the course template's full-width coupling (D -> H -> H -> 2D, per-pixel scale)."""
        d, h = self.data_dim, self.hidden_dim
        return (d * h + h) + (h * h + h) + (h * 2 * d + 2 * d) + (d if self.log_scale_factor is not None else 0)

    def gather_full_width(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """The live part of a full-width (template layout) tensor of parameter ``name`` (relative to this
        coupling), e.g. from an old model file or its Adam state; any other tensor unchanged."""
        d = self.data_dim
        if name == "net.0.weight" and tensor.ndim == 2 and tensor.shape[1] == d:
            return tensor[:, self.cond_idx.to(tensor.device)]
        if name in ("net.4.weight", "net.4.bias") and tensor.shape[0] == 2 * d:
            return tensor[self._out_idx.to(tensor.device)]
        if name == "log_scale_factor" and tensor.shape[0] == d:
            return tensor[self.free_idx.to(tensor.device)]
        return tensor

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A state dict in the template's layout (written before the conditioners were gathered): keep the live part.
        for name in ("net.0.weight", "net.4.weight", "net.4.bias", "log_scale_factor"):
            if prefix + name in state_dict:
                state_dict[prefix + name] = self.gather_full_width(name, state_dict[prefix + name])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _keep(layer: nn.Linear, *, inputs: torch.Tensor | None = None, outputs: torch.Tensor | None = None) -> nn.Linear:
    """``layer`` cut down, in place, to the input columns ``inputs`` and the output rows ``outputs``."""
    with torch.no_grad():
        weight, bias = layer.weight, layer.bias
        if inputs is not None:
            weight = weight[:, inputs.to(weight.device)]
        if outputs is not None:
            weight, bias = weight[outputs.to(weight.device)], bias[outputs.to(bias.device)]
        layer.weight, layer.bias = nn.Parameter(weight.contiguous()), nn.Parameter(bias.contiguous())
    layer.out_features, layer.in_features = weight.shape
    return layer


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class FlowConfig(ModelConfig):
    n_blocks: int = 4  # blocks of two couplings (checkerboard mask, then its inverse)
    hidden_dim: int = 1024  # width of both hidden layers of every coupling's conditioner
    data_dim: int = 784  # flattened 28x28 image
    alpha: float = 1e-5  # logit squeeze (module docstring: course template's value)
    learned_scale: bool = False  # multiply tanh(log-scale) by a learned per-pixel factor

    KIND = "flow"
    POSITIVE_INTS = ("n_blocks", "hidden_dim", "data_dim")

    def check(self):
        if not isinstance(self.alpha, (int, float)) or not 0.0 < self.alpha < 0.5:
            raise ValueError(f"FlowConfig.alpha must lie in (0, 0.5), got {self.alpha!r}")
        if not isinstance(self.learned_scale, bool):
            raise ValueError(f"FlowConfig.learned_scale must be a bool, got {self.learned_scale!r}")


class RealNVP(nn.Module):
    """Flow density on dequantised 8-bit images; inputs hold pixel values 0..255.

    Images enter as (B, D) or (B, 1, s, s) tensors of integer pixel values (uint8 or float);
    they are flattened and cast to the model's dtype here.
    """

    def __init__(self, config: FlowConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or FlowConfig.from_dict(kwargs)
        c = self.config
        mask = checkerboard_mask(c.data_dim)
        couplings = []
        for _ in range(c.n_blocks):
            for m in (mask, 1 - mask):
                couplings.append(AffineCoupling(m, c.hidden_dim, c.learned_scale))
        # v in [0, 256)^D -> logit space -> z; a single composite so one call counts every log-det
        self.transform = CompositeTransform([preprocessing(c.alpha), CompositeTransform(couplings)])

    @property
    def preprocess(self) -> CompositeTransform:
        return self.transform.transforms[0]

    @property
    def flow(self) -> CompositeTransform:
        return self.transform.transforms[1]

    @property
    def data_dim(self) -> int:
        return self.config.data_dim

    @property
    def latent_dim(self) -> int:
        """A flow's latent has the data's dimension (results paths: flow/z784/...)."""
        return self.config.data_dim

    @property
    def image_shape(self) -> tuple[int, ...]:
        side = math.isqrt(self.data_dim)
        return (1, side, side) if side * side == self.data_dim else (self.data_dim,)

    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.flow.transforms[0].mask.dtype  # buffers follow .to(dtype)/.to(device)
        return x.flatten(1).to(dtype)  # (B, D)

    def log_prob_dequantized(self, v: torch.Tensor) -> torch.Tensor:
        """log p_v(v) in nats for continuous v in [0, 256)^D, (B, D) -> (B,)."""
        z, logabsdet = self.transform(v)  # (B, D), (B,)
        return log_standard_normal(z) + logabsdet

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """One-draw per-image terms (all (B,)): ``nll`` (nats), ``bpd``, ``log_pz``, ``logdet``."""
        v = dequantize(self._pixels(x), generator)  # (B, D)
        z, logdet = self.transform(v)  # (B, D), (B,)
        log_pz = log_standard_normal(z)  # (B,)
        nll = -(log_pz + logdet)
        return {"nll": nll, "bpd": nll / (self.data_dim * math.log(2)), "log_pz": log_pz, "logdet": logdet}

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Mean negative log-likelihood bound in nats per image (the course's objective), and
        the per-image terms averaged, ``bpd`` among them, as floats for logging."""
        loss, stats = self._loss(x, generator)
        return loss, {k: v.item() for k, v in stats.items()}

    def _loss(self, x: torch.Tensor, generator: torch.Generator | None = None):
        # loss's terms as detached 0-dim tensors on the device: the trainer reads them once per epoch
        terms = self(x, generator)
        return terms["nll"].mean(), {k: v.detach().mean() for k, v in terms.items()}

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) one-draw dequantisation lower bound on log P(x) of the discrete image, in nats."""
        return self.log_prob_dequantized(dequantize(self._pixels(x), generator))

    def bpd(self, x: torch.Tensor, generator: torch.Generator | None = None, k: int = 1) -> torch.Tensor:
        """(B,) bits/dim from the K-draw importance-sampled bound: -log mean_k p_v(x + u_k) / (D ln 2)."""
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        log_probs = torch.stack([self.log_prob(x, generator) for _ in range(k)])  # (K, B)
        log_px = torch.logsumexp(log_probs, dim=0) - math.log(k)  # (B,)
        return -log_px / (self.data_dim * math.log(2))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic latent of integer images: dequantise at bin centres (u = 1/2). (B, D)."""
        z, _ = self.transform(self._pixels(x) + 0.5)
        return z

    def decode_pixels(self, z: torch.Tensor, discretize: bool = True) -> torch.Tensor:
        """Pixel values (B, D) in [0, 255]: the bin floor(v) of v = f^-1(z), or v itself clamped."""
        v, _ = self.transform.inverse(z)  # (B, D), ~[0, 256)
        return (v.floor() if discretize else v).clamp(0, N_LEVELS - 1)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, *image_shape) in [0, 1] for latents z (B, D): decode_pixels / 255."""
        return self.decode_pixels(z).view(-1, *self.image_shape) / (N_LEVELS - 1)

    @torch.inference_mode()
    def sample_pixels(self, n: int, *, generator: torch.Generator | None = None,
                      discretize: bool = True) -> torch.Tensor:
        """n images (n, *image_shape) of pixel values in [0, 255] (integers unless not discretize)."""
        mask = self.flow.transforms[0].mask
        z = torch.randn(n, self.data_dim, generator=generator, device=mask.device, dtype=mask.dtype)
        return self.decode_pixels(z, discretize).view(n, *self.image_shape)

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, *image_shape), i.e. (n, 1, 28, 28), in [0, 1]: sample_pixels / 255."""
        return self.sample_pixels(n, generator=generator) / (N_LEVELS - 1)

    @torch.inference_mode()
    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> torch.Tensor:
        """Straight lines in z between encode(x_a) and encode(x_b) (each (B, ...) pixel images),
        decoded: (B, steps, *image_shape) in [0, 1]; the end points reproduce the inputs."""
        if steps < 2:
            raise ValueError(f"steps must be at least 2, got {steps!r}")
        z_a, z_b = self.encode(x_a), self.encode(x_b)  # (B, D) each
        w = torch.linspace(0, 1, steps, device=z_a.device, dtype=z_a.dtype).view(1, steps, 1)
        z = (1 - w) * z_a.unsqueeze(1) + w * z_b.unsqueeze(1)  # (B, steps, D)
        pixels = self.decode_pixels(z.flatten(0, 1))  # (B * steps, D)
        return pixels.view(z_a.shape[0], steps, *self.image_shape) / (N_LEVELS - 1)

    @property
    def n_parameters_template(self) -> int:
        """The course template's parameter count: full-width conditioners, dead weights included."""
        return sum(t.n_parameters_template for t in self.flow.transforms)

    def gather_full_width(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """The live part of a template-layout tensor of parameter ``name`` (``AffineCoupling.gather_full_width``)."""
        for prefix, module in self.named_modules():
            if isinstance(module, AffineCoupling) and name.startswith(prefix + "."):
                return module.gather_full_width(name[len(prefix) + 1 :], tensor)
        return tensor

    def describe(self) -> dict:
        """Config, ``n_parameters`` (the trained ones) and ``n_parameters_template`` (the course's count)."""
        n_params = sum(p.numel() for p in self.parameters())
        return {"class": "RealNVP", **asdict(self.config), "n_parameters": n_params,
                "n_parameters_template": self.n_parameters_template}

    @classmethod
    def from_description(cls, description: dict) -> "RealNVP":
        """An untrained flow from ``describe()``'s dict (its "class" key optional); the informational
        ``n_parameters`` and ``n_parameters_template`` are checked against the rebuilt network rather
        than passed on. A description without ``n_parameters_template`` was written with full-width
        conditioners: its ``n_parameters`` may be the template's count, and its weights are sliced
        when they load."""
        options = dict(description)
        if options.pop("class", "RealNVP") != "RealNVP":
            raise ValueError(f"not a RealNVP description: class {description['class']!r}")
        n_params = options.pop("n_parameters", None)
        n_template = options.pop("n_parameters_template", None)
        model = cls(FlowConfig.from_dict(options))
        built, template = sum(p.numel() for p in model.parameters()), model.n_parameters_template
        allowed = {built} if n_template is not None else {built, template}
        if n_params is not None and n_params not in allowed:
            raise ValueError(f"the description says {n_params} parameters but its options build {built} "
                             f"({template} in the course template's full-width layout)")
        if n_template is not None and n_template != template:
            raise ValueError(f"the description says {n_template} template parameters but its options give {template}")
        return model


# --------------------------------------------------------------------------- training


class FlowTrainer(Trainer):
    """Adam on the negative log-likelihood bound (nats per image) with gradient-norm clipping;
    the ``dgm.training.fit`` plug-in for the flow. Logs bits/dim and the pre-clipping gradient norm.
    Snapshots keep samples only (``Trainer.snapshot_weights``)."""

    snapshot_weights = False

    def __init__(self, model: RealNVP, *, lr: float, valid_x: torch.Tensor, grad_clip: float | None = None,
                 n_samples: int = 16, eval_batch: int = 500):
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
        if valid_x.ndim < 2 or valid_x[0].numel() != model.data_dim:
            raise ValueError(f"valid_x must hold images of {model.data_dim} pixels, got shape {tuple(valid_x.shape)}")
        super().__init__(model, {"optimizer": adam(model.parameters(), lr=lr)})
        self.grad_clip = grad_clip
        self.valid_x = valid_x  # (N, 784) pixel values 0..255 (uint8), on the model's device
        self.n_samples = n_samples
        self.eval_batch = eval_batch

    def train_step(self, x: torch.Tensor, generator: torch.Generator) -> dict:
        """One Adam step; statistics as 0-dim tensors on the device (``fit`` reads them once per epoch)."""
        self.model.train()
        loss, stats = self.model._loss(x, generator)  # fresh dequantisation noise from generator
        # A non-finite loss stops before the step spoils the weights where checking is free (the CPU);
        # on a GPU that would wait for every step, and fit catches it at the end of the epoch instead.
        if loss.device.type == "cpu" and not math.isfinite(stats["nll"].item()):
            raise FloatingPointError(f"the flow's training loss is {stats['nll'].item()}; lower flow.lr or set "
                                     "flow.grad_clip")
        self.optimizers["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.grad_clip if self.grad_clip is not None else math.inf  # inf: measure, don't clip
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizers["optimizer"].step()
        return {**stats, "grad_norm": grad_norm.detach()}

    def load_state_dict(self, state: dict) -> None:
        """Also a checkpoint written with full-width conditioners: its weights (``AffineCoupling``) and
        Adam moments are cut to the live part."""
        names = [name for name, _ in self.model.named_parameters()]
        for opt_state in (s for name, s in state.items() if name in self.optimizers):
            for index, moments in opt_state.get("state", {}).items():
                for key, value in moments.items():
                    if isinstance(value, torch.Tensor) and value.ndim > 0 and index < len(names):
                        moments[key] = self.model.gather_full_width(names[index], value)
        super().load_state_dict(state)

    @torch.inference_mode()
    def evaluate(self, generator: torch.Generator) -> dict:
        """Validation ``nll`` (nats per image) and ``bpd``, one dequantisation draw per image."""
        self.model.eval()
        return batched_means(lambda x: self.model(x, generator), self.valid_x, self.eval_batch, keys=("nll", "bpd"),
                             dtype=torch.float64)
