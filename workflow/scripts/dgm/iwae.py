"""Importance-weighted auto-encoder: the VAE's networks trained on the k-sample bound.

Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (arXiv:1509.00519).
Same Bernoulli MLP encoder and decoder and standard-normal prior as ``dgm.vae.VAE``; the training
objective is the importance-weighted bound

    L_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)],   z_1..z_k ~ q(z|x) (reparameterised),

which equals the ELBO for k = 1 and tightens towards log p(x) as k grows. The paper's one-layer
MNIST result: VAE -86.76 against IWAE(k = 5) -85.54 nats (test NLL with 5000 samples).

Every verb of the VAE is inherited (``encode``, ``log_likelihood``, ``sample``, ``decode``), so
the estimators, sample quality and figures treat the IWAE like any latent-variable model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dgm.distributions import gaussian_kl_standard_normal, log_normal_diag, log_standard_normal
from dgm.vae import VAE, VAEConfig, VAETrainer


@dataclass(frozen=True)
class IWAEConfig(VAEConfig):
    k: int = 5  # importance samples per image in the training bound (the paper's k = 5 and 50)

    KIND = "IWAE"
    POSITIVE_INTS = ("latent_dim", "hidden_dim", "data_dim", "k")


class IWAE(VAE):
    CONFIG = IWAEConfig
    OBJECTIVE = "niwae"  # VAE.loss minimises the mean -L_k; every other term is logged

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """Per-image terms (all (B,)): ``niwae`` = -L_k, and the ELBO's ``recon``, ``kl`` and
        ``nelbo`` estimated from the same k samples (the VAE's columns, so curves compare)."""
        x = x.flatten(1)  # (B, 784)
        mu, logvar = self.encode(x)  # (B, Z)
        k = self.config.k
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)  # (k, B, Z)
        z = mu + eps * (0.5 * logvar).exp()  # (k, B, Z)
        log_px_z = self.log_likelihood(x, z)  # (k, B)
        log_w = log_px_z + log_standard_normal(z) - log_normal_diag(z, mu, logvar)  # (k, B)
        niwae = -(torch.logsumexp(log_w, dim=0) - math.log(k))  # (B,)
        recon = -log_px_z.mean(0)  # (B,)
        kl = gaussian_kl_standard_normal(mu, logvar)  # (B,)
        return {"recon": recon, "kl": kl, "nelbo": recon + kl, "niwae": niwae}


IWAETrainer = VAETrainer  # Adam on model.loss: the objective lives in the model
