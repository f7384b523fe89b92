"""A mixture of K product-of-Bernoulli distributions over binarised MNIST: an exact density.

log p(x) = logsumexp_k [log pi_k + sum_d x_d log mu_kd + (1 - x_d) log(1 - mu_kd)], with
pi = softmax(logit_weights) and mu = sigmoid(logits), in nats per image, computed in float64.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class BernoulliMixture(nn.Module):
    def __init__(self, components: int = 20):
        super().__init__()
        self.components = components
        self.register_buffer("logit_weights", torch.zeros(components, dtype=torch.float64))  # (K,)
        self.register_buffer("logits", torch.zeros(components, 784, dtype=torch.float64))  # (K, 784)

    def log_prob(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact log p(x) (B,) in float64 for binary x (B, 784); no randomness (generator is unused)."""
        x = x.to(torch.float64)
        log_px_k = x @ F.logsigmoid(self.logits).T + (1 - x) @ F.logsigmoid(-self.logits).T  # (B, K)
        return torch.logsumexp(log_px_k + torch.log_softmax(self.logit_weights, 0), dim=-1)  # (B,)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [0, 1]: the pixel means of a component drawn from the weights."""
        k = torch.multinomial(torch.softmax(self.logit_weights, 0), n, replacement=True, generator=generator)  # (n,)
        return torch.sigmoid(self.logits[k]).float().view(n, 1, 28, 28)

    @staticmethod
    def closed_form_log_prob(x: np.ndarray, logit_weights: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """log p(x) (B,) in numpy float64, written independently of log_prob (the known answer to compare against).
        x (B, 784) in {0, 1}, logit_weights (K,), logits (K, 784)."""
        x = np.asarray(x, dtype=np.float64)
        log_pi = logit_weights - np.logaddexp.reduce(logit_weights)  # (K,)
        log_mu = -np.logaddexp(0.0, -logits)  # log sigmoid(l), (K, 784)
        log_1m_mu = -np.logaddexp(0.0, logits)  # log(1 - sigmoid(l)), (K, 784)
        joint = log_pi[None, :] + np.einsum("bd,kd->bk", x, log_mu) + np.einsum("bd,kd->bk", 1 - x, log_1m_mu)  # (B, K)
        top = joint.max(axis=1, keepdims=True)  # (B, 1)
        return (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))[:, 0]
