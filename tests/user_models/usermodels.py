"""A researcher's module, for the tests of external models: a small VAE, an exact density (independent
Bernoulli pixels), factories, and models that break the protocol one way each."""
import torch
import torch.nn.functional as F
from torch import nn


class TinyVAE(nn.Module):
    def __init__(self, latent_dim=2, hidden=8):
        super().__init__()
        self.latent_dim = latent_dim
        self.enc = nn.Linear(784, 2 * latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, 784))

    def encode(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        return mu, logvar

    def logits(self, z):
        return self.dec(z)

    def log_likelihood(self, x, z):
        logits = self.dec(z)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 28, 28)

    def sample(self, n, *, generator=None):
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self.decode(z)


class Pixels(nn.Module):
    """Independent Bernoulli pixels: log p(x) in closed form."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.linspace(-3, 3, 784, dtype=torch.float64))

    def log_prob(self, x, *, generator=None):
        x = x.double()
        return (x * F.logsigmoid(self.logits) + (1 - x) * F.logsigmoid(-self.logits)).sum(-1)

    def sample(self, n, *, generator=None):
        return torch.sigmoid(self.logits).float().expand(n, 784).reshape(n, 1, 28, 28).clone()


def build(latent_dim=2) -> TinyVAE:
    return TinyVAE(latent_dim)


def build_unannotated():
    return TinyVAE(2)


def build_raises():
    raise RuntimeError("no GPU here")


class FlatSamples(Pixels):
    def sample(self, n, *, generator=None):
        return torch.rand(n, 784, generator=generator)


class BrightSamples(Pixels):
    def sample(self, n, *, generator=None):
        return torch.full((n, 1, 28, 28), 2.0)


class NoisySamples(Pixels):
    def sample(self, n, *, generator=None):
        return torch.rand(n, 1, 28, 28)  # ignores the generator


class NaNDensity(Pixels):
    def log_prob(self, x, *, generator=None):
        return torch.full((len(x),), float("nan"))


class ContinuousDensity(Pixels):
    def log_prob(self, x, *, generator=None):
        return torch.full((len(x),), 500.0)  # a density over grey levels, not binarised pixels


class WrongLikelihood(TinyVAE):
    def log_likelihood(self, x, z):
        return super().log_likelihood(x, z).sum(-1)  # one value, not one per row


class Broken(nn.Module):
    def sample(self, n, *, generator=None):
        raise ValueError("not implemented yet")
