import math

import pytest
import torch

from dgm import distributions as D
from dgm import vae as V


def test_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.5, 0.7]], dtype=torch.float64)
    closed = D.gaussian_kl_standard_normal(mu, logvar)
    z = mu + torch.randn(200_000, 3, generator=g, dtype=torch.float64) * (0.5 * logvar).exp()
    mc = (D.log_normal_diag(z, mu, logvar) - D.log_standard_normal(z)).mean()
    assert closed.item() == pytest.approx(mc.item(), abs=0.02)
    assert D.gaussian_kl_standard_normal(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def test_kl_exact_one_dimensional_value():
    # (sigma^2 + mu^2 - 1)/2 - log sigma with mu = 1, sigma = 2: (4 + 1 - 1)/2 - log 2
    kl = D.gaussian_kl_standard_normal(torch.tensor([[1.0]]), torch.tensor([[math.log(4.0)]]))
    assert kl.item() == pytest.approx(2 - math.log(2), rel=1e-6)


def test_log_densities_exact():
    z = torch.tensor([[0.0, 0.0]])
    assert D.log_standard_normal(z).item() == pytest.approx(-math.log(2 * math.pi))
    assert D.log_normal_diag(torch.tensor([[1.0]]), torch.tensor([[1.0]]), torch.tensor([[0.0]])).item() == \
        pytest.approx(-0.5 * math.log(2 * math.pi))


def test_bernoulli_log_likelihood_exact():
    x = torch.tensor([[1.0, 0.0, 1.0]])
    logits = torch.tensor([[0.0, 0.0, 100.0]])  # p = 0.5, 0.5, ~1
    assert D.bernoulli_log_likelihood(x, logits).item() == pytest.approx(2 * math.log(0.5), abs=1e-6)


def test_bernoulli_log_likelihood_gradient_is_bce_bitwise_and_value_to_rounding():
    """The training path's fast forward keeps BCE-with-logits' gradient bit for bit (so training is
    unchanged) and its value to float rounding, for binary and grey targets and broadcast latents."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 64, 784, generator=g) * 6).requires_grad_()
    reference = logits.detach().clone().requires_grad_()
    for x in (torch.bernoulli(torch.full((64, 784), 0.3), generator=g), torch.rand(64, 784, generator=g)):
        weights = torch.randn(3, 64, generator=g)
        fast = D.bernoulli_log_likelihood(x, logits)  # (3, 64)
        bce = -torch.nn.functional.binary_cross_entropy_with_logits(
            reference, x.expand_as(reference), reduction="none").sum(-1)
        torch.testing.assert_close(fast, bce, rtol=1e-6, atol=1e-3)
        (fast * weights).sum().backward()
        (bce * weights).sum().backward()
        assert torch.equal(logits.grad, reference.grad)
        logits.grad = reference.grad = None


def test_bernoulli_log_likelihood_gradients_in_both_arguments_and_second_order():
    x = torch.rand(3, 5, dtype=torch.float64, requires_grad=True)
    logits = (torch.randn(2, 3, 5, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(D.bernoulli_log_likelihood, (x, logits))
    assert torch.autograd.gradgradcheck(D.bernoulli_log_likelihood, (x, logits))


def test_evaluation_log_likelihood_equals_the_training_formula():
    """Without autograd VAE.log_likelihood takes its in-place path: the same numbers, also for huge logits."""
    model = V.VAE(V.VAEConfig(latent_dim=3, hidden_dim=16))
    with torch.no_grad():
        model.decoder[2].weight.mul_(200.0)  # logits up to a few hundred: no overflow, no -inf
    x = torch.bernoulli(torch.full((5, 784), 0.3), generator=torch.Generator().manual_seed(0))
    z = torch.randn(7, 5, 3, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        fast = model.log_likelihood(x, z)  # (7, 5)
        logits = model.logits(z)
    assert logits.abs().max() > 100
    reference = D.bernoulli_log_likelihood(x.double(), logits.double())
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast.double(), reference, rtol=1e-6, atol=1e-3)
    trained = model.log_likelihood(x, z)  # autograd on: the BCE path, differentiable
    trained.sum().backward()
    torch.testing.assert_close(trained.detach(), fast, rtol=1e-6, atol=1e-3)


def test_elbo_of_a_known_tiny_case():
    # Zero weights: q(z|x) = N(0, I) so KL = 0; decoder logits = bias b for every z, so
    # -log p(x|z) = sum_i BCE(b_i, x_i) exactly, whatever z is drawn.
    model = V.VAE(V.VAEConfig(latent_dim=2, hidden_dim=3, data_dim=4))
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    b = torch.tensor([0.0, 1.0, -2.0, 3.0])
    model.decoder[2].bias.data = b.clone()
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    terms = model(x, torch.Generator().manual_seed(0))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(b, x[0], reduction="sum")
    assert terms["kl"].item() == 0.0
    assert terms["recon"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["nelbo"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_shapes_and_sample_range():
    model = V.VAE(latent_dim=5, hidden_dim=8)
    x = torch.bernoulli(torch.full((6, 784), 0.3))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 5)
    assert model.log_likelihood(x, torch.randn(7, 6, 5)).shape == (7, 6)
    for mode in ("mean", "bernoulli"):
        s = model.sample(9, generator=torch.Generator().manual_seed(1), mode=mode)
        assert s.shape == (9, 1, 28, 28) and s.min() >= 0 and s.max() <= 1
    assert set(model.sample(3, generator=torch.Generator(), mode="bernoulli").unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="'median'"):
        model.sample(2, mode="median")


def test_fixed_generator_gives_same_output():
    model = V.VAE(latent_dim=3, hidden_dim=8)
    x = torch.bernoulli(torch.full((4, 784), 0.5), generator=torch.Generator().manual_seed(0))
    a = model(x, torch.Generator().manual_seed(7))["nelbo"]
    b = model(x, torch.Generator().manual_seed(7))["nelbo"]
    c = model(x, torch.Generator().manual_seed(8))["nelbo"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="latent_size"):
        V.VAE(latent_size=3)
    with pytest.raises(ValueError, match="latent_dim"):
        V.VAEConfig(latent_dim=0)


def test_trainer_step_lowers_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = V.VAE(latent_dim=2, hidden_dim=32)
    x = torch.bernoulli(torch.full((64, 784), 0.2), generator=torch.Generator().manual_seed(0))
    trainer = V.VAETrainer(model, lr=1e-2, valid_x=x)
    before = trainer.evaluate(torch.Generator().manual_seed(0))["nelbo"]
    for _ in range(20):
        trainer.train_step(x, torch.Generator().manual_seed(1))
    after = trainer.evaluate(torch.Generator().manual_seed(0))["nelbo"]
    assert after < before - 10
