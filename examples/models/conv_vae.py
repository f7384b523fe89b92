"""A small convolutional VAE for binarised MNIST, in plain PyTorch.

Encoder: two stride-2 convolutions (28 -> 14 -> 7) and linear heads for the Gaussian q(z|x).
Decoder: a linear layer back to a 7x7 feature map and two stride-2 transposed convolutions
(7 -> 14 -> 28) giving 784 Bernoulli logits. Prior: N(0, I). All log values are nats per image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvVAE(nn.Module):
    def __init__(self, latent_dim: int = 8, channels: int = 16):
        super().__init__()
        self.latent_dim = latent_dim
        self.channels = channels
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(),  # (B, 2c, 7, 7)
            nn.Flatten(),  # (B, 2c * 49)
        )
        self.enc_mu = nn.Linear(2 * c * 49, latent_dim)
        self.enc_logvar = nn.Linear(2 * c * 49, latent_dim)
        self.dec_in = nn.Sequential(nn.Linear(latent_dim, 2 * c * 49), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),  # (N, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # (N, 1, 28, 28) logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) for x (B, 784): mean and log-variance, (B, Z) each."""
        h = self.encoder(x.view(-1, 1, 28, 28))  # (B, 2c * 49)
        return self.enc_mu(h), self.enc_logvar(h)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits (N, 784) for latents z (N, Z)."""
        h = self.dec_in(z).view(-1, 2 * self.channels, 7, 7)  # (N, 2c, 7, 7)
        return self.decoder(h).flatten(1)  # (N, 784)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for x (B, 784) and z (..., B, Z) -> (..., B)."""
        lead = z.shape[:-1]  # (..., B)
        logits = self.logits(z.reshape(-1, self.latent_dim)).view(*lead, 784)  # (..., B, 784)
        x = x.to(logits.dtype).expand_as(logits)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means (B, 1, 28, 28) for latents z (B, Z)."""
        return torch.sigmoid(self.logits(z)).view(-1, 1, 28, 28)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [0, 1]: decoder means at z ~ N(0, I)."""
        param = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=param.device, dtype=param.dtype)  # (n, Z)
        return self.decode(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One-sample ELBO terms per image for x (B, 784): recon = -log p(x|z), kl, nelbo, each (B,)."""
        mu, logvar = self.encode(x)  # (B, Z)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # reparameterisation
        recon = -self.log_likelihood(x, z)  # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)  # KL(q(z|x) || N(0, I)), (B,)
        return {"recon": recon, "kl": kl, "nelbo": recon + kl}
