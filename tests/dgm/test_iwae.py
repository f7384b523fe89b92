import math

import pytest
import torch

from dgm import registry
from dgm.distributions import log_normal_diag, log_standard_normal
from dgm.iwae import IWAE, IWAEConfig
from dgm.models import build_model
from dgm.vae import VAE, VAEConfig


def binary_batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 784), 0.3), generator=g)


def tiny(k):
    torch.manual_seed(0)
    return IWAE(IWAEConfig(latent_dim=3, hidden_dim=16, k=k))


def test_k1_bound_is_the_vae_elbo():
    """With one importance sample L_1 is the ELBO: the same number the VAE gives on the same draw."""
    iwae = tiny(1)
    vae = VAE(VAEConfig(latent_dim=3, hidden_dim=16))
    vae.load_state_dict(iwae.state_dict())
    x = binary_batch()
    terms = iwae(x, torch.Generator().manual_seed(1))
    ref = vae(x, torch.Generator().manual_seed(1))
    # -L_1 = -[log p(x|z) + log p(z) - log q(z|x)]: the one-sample ELBO with a Monte-Carlo KL term.
    mu, logvar = vae.encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    z = mu + eps * (0.5 * logvar).exp()
    log_w = vae.log_likelihood(x, z) + log_standard_normal(z) - log_normal_diag(z, mu, logvar)
    torch.testing.assert_close(terms["niwae"], -log_w)
    torch.testing.assert_close(terms["recon"], ref["recon"])
    torch.testing.assert_close(terms["kl"], ref["kl"])


def test_bound_is_the_log_mean_of_the_k_weights():
    """-L_k = -log (1/k) sum_i w_i for the k reparameterised draws the model makes, and by Jensen it is
    never above the mean of the k one-sample bounds."""
    k = 5
    model = tiny(k)
    x = binary_batch()
    terms = model(x, torch.Generator().manual_seed(2))
    mu, logvar = model.encode(x)
    eps = torch.randn((k, *mu.shape), generator=torch.Generator().manual_seed(2))
    z = mu + eps * (0.5 * logvar).exp()
    log_w = model.log_likelihood(x, z) + log_standard_normal(z) - log_normal_diag(z, mu, logvar)  # (k, B)
    expected = -(torch.logsumexp(log_w, 0) - math.log(k))
    torch.testing.assert_close(terms["niwae"], expected)
    assert torch.all(terms["niwae"] <= -log_w.mean(0) + 1e-5)


def test_loss_is_the_bound_and_has_gradients():
    model = tiny(3)
    loss, stats = model.loss(binary_batch(), torch.Generator().manual_seed(0))
    loss.backward()
    assert set(stats) == {"recon", "kl", "nelbo", "niwae"} and math.isfinite(loss.item())
    assert stats["niwae"] == pytest.approx(loss.item())
    assert all(p.grad is not None for p in model.parameters())


def test_registered_with_the_vae_capabilities_and_rebuilt_from_its_description():
    spec = registry.get("iwae")
    assert spec.latent_variable and spec.decoder and spec.sampler and not spec.density and spec.data == "binary"
    model = tiny(7)
    rebuilt = build_model(model.describe())
    assert type(rebuilt) is IWAE and rebuilt.config == model.config and rebuilt.config.k == 7
    assert rebuilt.decode(torch.zeros(2, 3)).shape == (2, 1, 28, 28)


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k"):
        IWAEConfig.from_dict({"k": 0})
