"""Bernoulli variational auto-encoder with an MLP encoder and decoder.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (arXiv:1312.6114).
The architecture is the seed study's: encoder 784 -> 500 -> (mu, log sigma^2), decoder
z -> 500 -> 784 Bernoulli logits, standard-normal prior, closed-form Gaussian KL.

Interface shared by the latent-variable estimators (``dgm.estimators``):
``encode(x) -> (mu, logvar)``, ``log_likelihood(x, z) -> log p(x|z)`` summed over pixels,
``latent_dim``; by every model: ``sample(n, generator=...)`` returning images in [0, 1]; and by every
decoder model: ``decode(z)``, images in [0, 1] (``logits(z)`` gives the Bernoulli logits behind them).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from dgm.config import ModelConfig
from dgm.distributions import bernoulli_log_likelihood, gaussian_kl_standard_normal, log_sigmoid_sum_
from dgm.training import Trainer, adam, batched_means


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
    latent_dim: int = 20  # size of z; the seed study uses 2 and 20
    hidden_dim: int = 500  # width of the single hidden layer on both sides
    data_dim: int = 784  # flattened 28x28 image

    KIND = "VAE"
    POSITIVE_INTS = ("latent_dim", "hidden_dim", "data_dim")


class VAE(nn.Module):
    CONFIG = VAEConfig  # the options dataclass; a subclass (dgm.iwae.IWAE) swaps in its own
    OBJECTIVE = "nelbo"  # the per-image term of ``forward`` that training minimises (the IWAE's: "niwae")

    def __init__(self, config: VAEConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or self.CONFIG.from_dict(kwargs)
        c = self.config
        self.latent_dim = c.latent_dim
        self.encoder = nn.Sequential(nn.Linear(c.data_dim, c.hidden_dim), nn.ReLU())
        self.enc_mu = nn.Linear(c.hidden_dim, c.latent_dim)
        self.enc_logvar = nn.Linear(c.hidden_dim, c.latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(c.latent_dim, c.hidden_dim), nn.ReLU(), nn.Linear(c.hidden_dim, c.data_dim)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)  # (B, H)
        return self.enc_mu(h), self.enc_logvar(h)  # (B, Z) each

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (..., 784) Bernoulli logits

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for binary x (B, 784) and z (..., B, Z) -> (..., B)."""
        logits = self.logits(z)  # (..., B, 784)
        if torch.is_grad_enabled():
            return bernoulli_log_likelihood(x, logits)
        # Evaluation, the estimators' hot path (K x B rows): for binary x, log sigmoid((2x - 1) logits)
        # in place on the fresh logits, sparing (K, B, 784) copies (tests/bench/bench_likelihood.py)
        return log_sigmoid_sum_(logits.mul_(2 * x - 1))  # (..., B)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """One-sample ELBO terms per image: ``recon`` = -log p(x|z), ``kl``, ``nelbo`` (all (B,))."""
        x = x.flatten(1)  # (B, 784)
        mu, logvar = self.encode(x)  # (B, Z)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # reparameterisation: gradients flow through mu, sigma
        recon = -self.log_likelihood(x, z)  # (B,)
        kl = gaussian_kl_standard_normal(mu, logvar)  # (B,)
        return {"recon": recon, "kl": kl, "nelbo": recon + kl}

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Mean training objective in nats per image (the negative ELBO; the IWAE's -L_k), and the
        mean of every per-image term as floats for logging."""
        loss, stats = self._loss(x, generator)
        return loss, {k: v.item() for k, v in stats.items()}

    def _loss(self, x: torch.Tensor, generator: torch.Generator | None = None):
        # loss's terms as detached 0-dim tensors on the device: the trainer reads them once per epoch
        terms = self(x, generator)
        return terms[self.OBJECTIVE].mean(), {k: v.detach().mean() for k, v in terms.items()}

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator | None = None, mode: str = "mean") -> torch.Tensor:
        """n images (n, 1, 28, 28) in [0, 1] from z ~ p(z): decoder means, or Bernoulli draws."""
        if mode not in ("mean", "bernoulli"):
            raise ValueError(f"unknown sample mode {mode!r}; use 'mean' or 'bernoulli'")
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        probs = torch.sigmoid(self.logits(z))  # (n, 784)
        if mode == "bernoulli":
            probs = torch.bernoulli(probs, generator=generator)
        return probs.view(n, 1, 28, 28)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means for latents z (B, Z), as images (B, 1, 28, 28) in [0, 1]: manifold, interpolation."""
        return torch.sigmoid(self.logits(z)).view(-1, 1, 28, 28)

    def describe(self) -> dict:
        return {"class": type(self).__name__, **asdict(self.config)}


class VAETrainer(Trainer):
    """Adam on ``model.loss`` (the negative ELBO; the IWAE's bound for the IWAE); the
    ``dgm.training.fit`` plug-in of the VAE family. Snapshots keep the weights and prior samples
    decoded by ``sample_mode``."""

    def __init__(self, model: VAE, *, lr: float, valid_x: torch.Tensor, n_samples: int = 16, eval_batch: int = 1000,
                 sample_mode: str = "mean"):
        super().__init__(model, {"optimizer": adam(model.parameters(), lr=lr)})
        self.sample_mode = sample_mode
        self.valid_x = valid_x  # (N, 784) float {0, 1}, fixed-seed binarised, on the model's device
        self.n_samples = n_samples
        self.eval_batch = eval_batch

    def train_step(self, x: torch.Tensor, generator: torch.Generator) -> dict:
        """One Adam step; statistics as 0-dim tensors on the device (``fit`` reads them once per epoch)."""
        self.model.train()
        loss, stats = self.model._loss(x, generator)
        self.optimizers["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["optimizer"].step()
        return stats

    @torch.inference_mode()
    def evaluate(self, generator: torch.Generator) -> dict:
        self.model.eval()
        return batched_means(lambda x: self.model(x, generator), self.valid_x, self.eval_batch)

    def snapshot_samples(self, generator: torch.Generator) -> torch.Tensor:
        return self.model.sample(self.n_samples, generator=generator, mode=self.sample_mode)
