import copy
import math

import pytest
import torch

from dgm.distributions import COURSE_INTERPOLATION_STEPS, interpolate_latents
from dgm.gan import (
    EQUILIBRIUM_D_LOSS,
    EQUILIBRIUM_G_LOSS,
    GAN,
    GANConfig,
    dominated_epochs,
    from_tanh_range,
    make_optimizers,
    to_tanh_range,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def gan() -> GAN:
    torch.manual_seed(0)
    return GAN()


@pytest.fixture
def gan_no_dropout() -> GAN:
    """Full-size networks without dropout, so a loss on fixed data and noise is deterministic."""
    torch.manual_seed(0)
    return GAN(GANConfig(dropout=0.0))


@pytest.fixture
def real_batch() -> torch.Tensor:
    """32 'real' images in [0, 1]: bright strokes on a dark background, unlike G's initial noise."""
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 6:22, 12:16] = torch.rand(32, 1, 16, 4, generator=gen(1)) * 0.3 + 0.7
    return x


def test_config_defaults_follow_the_seed():
    c = GANConfig()
    assert (c.latent_dim, c.hidden_dim, c.negative_slope, c.dropout) == (100, 128, 0.2, 0.3)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="depth"):
        GANConfig.from_dict({"latent_dim": 10, "depth": 3})
    with pytest.raises(ValueError, match="depth"):
        GAN(depth=3)
    with pytest.raises(ValueError, match="latent_dim"):
        GANConfig(latent_dim=0)


def test_architecture_matches_the_seed(gan):
    widths = [m.out_features for m in gan.generator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 256, 512, 1024, 784]
    norms = [m.num_features for m in gan.generator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms == [256, 512, 1024]
    widths = [m.out_features for m in gan.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [512, 256, 1]
    drops = [m.p for m in gan.discriminator.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.3, 0.3]
    assert gan.describe() == {"class": "GAN", "latent_dim": 100, "hidden_dim": 128, "data_dim": 784,
                              "negative_slope": 0.2, "dropout": 0.3}


def test_generator_outputs_span_the_tanh_range(gan):
    out = gan.generator(torch.randn(64, 100, generator=gen(0)) * 3)  # (64, 784)
    assert out.shape == (64, 784)
    assert out.min() >= -1 and out.max() <= 1
    assert out.min() < -0.5 and out.max() > 0.5  # tanh, not a sigmoid squashed into [0, 1]


def test_discriminator_returns_unbounded_logits(gan, real_batch):
    gan.eval()
    logits = gan.discriminate(real_batch)
    assert logits.shape == (32,)
    with torch.no_grad():
        gan.discriminator.net[-1].weight.mul_(1000)  # large weights: logits far outside [0, 1]
    logits = gan.discriminate(real_batch)
    assert logits.min() < -1 or logits.max() > 2
    probs = torch.sigmoid(gan.discriminate(real_batch[:2] * 0.5))
    assert ((probs > 0) & (probs < 1)).all()


def test_pixel_range_mapping_round_trips():
    x = torch.rand(5, 1, 28, 28, generator=gen(0))
    t = to_tanh_range(x)
    assert t.shape == (5, 784)
    assert torch.equal(to_tanh_range(torch.tensor([[0.0, 0.5, 1.0]])), torch.tensor([[-1.0, 0.0, 1.0]]))
    assert torch.allclose(from_tanh_range(t), x, atol=1e-6)


def test_discriminator_loss_accepts_flat_and_image_batches(gan_no_dropout, real_batch):
    a, _ = gan_no_dropout.discriminator_loss(real_batch, gen(3))
    b, _ = gan_no_dropout.discriminator_loss(real_batch.flatten(1), gen(3))
    assert torch.equal(a, b)


def test_losses_equal_equilibrium_constants_when_d_is_a_coin(gan, real_batch):
    with torch.no_grad():  # zero last layer: logit 0, D = 1/2 for every input
        gan.discriminator.net[-1].weight.zero_()
        gan.discriminator.net[-1].bias.zero_()
    loss_d, stats_d = gan.discriminator_loss(real_batch, gen(0))
    loss_g, stats_g = gan.generator_loss(16, gen(0))
    assert loss_d.item() == pytest.approx(EQUILIBRIUM_D_LOSS, abs=1e-6)
    assert loss_g.item() == pytest.approx(EQUILIBRIUM_G_LOSS, abs=1e-6)
    assert EQUILIBRIUM_D_LOSS == pytest.approx(2 * EQUILIBRIUM_G_LOSS)
    assert stats_d["d_real"] == pytest.approx(0.5) and stats_d["d_fake"] == pytest.approx(0.5)
    assert stats_g["d_fake"] == pytest.approx(0.5)


def test_loss_dicts_hold_floats(gan, real_batch):
    _, stats_d = gan.discriminator_loss(real_batch, gen(0))
    _, stats_g = gan.generator_loss(8, gen(0))
    assert set(stats_d) == {"d_loss", "d_real", "d_fake"} and set(stats_g) == {"g_loss", "d_fake"}
    assert all(type(v) is float and math.isfinite(v) for v in {**stats_d, **stats_g}.values())


def test_discriminator_loss_does_not_reach_the_generator(gan, real_batch):
    loss, _ = gan.discriminator_loss(real_batch, gen(0))
    loss.backward()
    assert all(p.grad is None for p in gan.generator.parameters())
    assert all(p.grad is not None for p in gan.discriminator.parameters())


def test_dropout_is_active_in_training_mode_only(gan, real_batch):
    gan.train()
    assert not torch.equal(gan.discriminate(real_batch), gan.discriminate(real_batch))
    gan.eval()
    assert torch.equal(gan.discriminate(real_batch), gan.discriminate(real_batch))


def test_train_step_d_update_lowers_d_loss_on_a_fixed_batch(gan_no_dropout, real_batch):
    gan = gan_no_dropout
    opt_d, _ = make_optimizers(gan)
    frozen_g = torch.optim.SGD(gan.generator.parameters(), lr=0.0)  # isolate D's update
    before = gan.discriminator_loss(real_batch, gen(7))[0].item()
    stats = gan.train_step(real_batch, opt_d, frozen_g, gen(7))
    after = gan.discriminator_loss(real_batch, gen(7))[0].item()
    assert stats["d_loss"] == pytest.approx(before, rel=1e-5)  # train_step draws the D noise first
    assert after < before - 0.05


def test_train_step_g_update_lowers_g_loss_on_fixed_noise(gan_no_dropout, real_batch):
    gan = gan_no_dropout
    _, opt_g = make_optimizers(gan)
    frozen_d = torch.optim.SGD(gan.discriminator.parameters(), lr=0.0)
    d_before = copy.deepcopy(gan.discriminator.state_dict())
    before = gan.generator_loss(32, gen(8))[0].item()
    gan.train_step(real_batch, frozen_d, opt_g, gen(8))
    after = gan.generator_loss(32, gen(8))[0].item()
    assert after < before - 0.05
    assert all(torch.equal(v, gan.discriminator.state_dict()[k]) for k, v in d_before.items())


def test_train_step_gives_d_only_its_own_gradient(gan_no_dropout, real_batch):
    """After a step, D's grads are those of L_D alone: the G step neither adds to them nor runs
    first (a G-first order would change the noise D's step draws from the generator)."""
    reference = copy.deepcopy(gan_no_dropout)
    reference.discriminator_loss(real_batch, gen(5))[0].backward()
    opt_d, opt_g = make_optimizers(gan_no_dropout)
    gan_no_dropout.train_step(real_batch, opt_d, opt_g, gen(5))
    for p, q in zip(gan_no_dropout.discriminator.parameters(), reference.discriminator.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-7)
        assert p.requires_grad  # frozen only during the generator step


def test_sample_shape_range_and_determinism(gan):
    x = gan.sample(10, generator=gen(0))
    assert x.shape == (10, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1 and x.std() > 0
    assert torch.equal(x, gan.sample(10, generator=gen(0)))
    assert not torch.equal(x, gan.sample(10, generator=gen(1)))


@pytest.mark.parametrize("training", [True, False])
def test_sample_uses_running_stats_and_restores_mode(gan, training):
    gan.train(training)
    z = torch.randn(4, 100, generator=gen(0))
    one = gan.decode(z[:1])  # a batch of one would fail in train-mode batch norm
    assert torch.allclose(one, gan.decode(z)[:1], atol=1e-6)  # a sample does not depend on its batch
    assert gan.sample(1, generator=gen(0)).shape == (1, 1, 28, 28)
    assert gan.training is training and gan.generator.training is training


def test_generate_matches_sample_for_the_same_latents(gan):
    z = torch.randn(6, 100, generator=gen(4))
    assert torch.equal(gan.decode(z), gan.sample(6, generator=gen(4)))


@pytest.mark.parametrize("method", ["linear", "slerp", "cdf"])
@pytest.mark.parametrize("shape", [(100,), (1, 28, 28)])
def test_interpolation_endpoints_are_the_inputs(method, shape):
    z0, z1 = torch.randn(2, *shape, generator=gen(0))
    path = interpolate_latents(z0, z1, COURSE_INTERPOLATION_STEPS, method)
    assert COURSE_INTERPOLATION_STEPS == 9
    assert path.shape == (9, *shape) and path.dtype == z0.dtype
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.isfinite(path).all()
    assert not torch.allclose(path[4], z0) and not torch.allclose(path[4], z1)


def test_linear_interpolation_is_evenly_spaced():
    z0, z1 = torch.zeros(3), torch.tensor([1.0, 2.0, -4.0])
    path = interpolate_latents(z0, z1, 5, "linear")
    assert torch.allclose(path, torch.outer(torch.tensor([0, 0.25, 0.5, 0.75, 1.0]), z1))


def test_slerp_keeps_norm_of_equal_norm_endpoints():
    z0, z1 = torch.randn(2, 100, generator=gen(1))
    z1 = z1 * (z0.norm() / z1.norm())
    path = interpolate_latents(z0, z1, 9, "slerp")
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(9), rtol=1e-5)
    linear = interpolate_latents(z0, z1, 9, "linear")
    assert linear[4].norm() < 0.9 * z0.norm()  # the chord's midpoint shrinks: slerp is not linear
    # equal angular steps along the circle
    cos = torch.nn.functional.cosine_similarity(path[:-1], path[1:], dim=1)
    assert torch.allclose(cos, cos[0].expand(8), atol=1e-5)


def test_cdf_interpolation_is_linear_in_normal_cdf():
    z0, z1 = torch.randn(2, 50, generator=gen(2), dtype=torch.float64)
    path = interpolate_latents(z0, z1, 7, "cdf")
    u = torch.special.ndtr(path)
    steps = u[1:] - u[:-1]
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-9)
    far = interpolate_latents(torch.tensor([-40.0]), torch.tensor([40.0]), 5, "cdf")
    assert torch.isfinite(far).all()


def test_interpolation_rejects_bad_arguments():
    z = torch.ones(4)
    with pytest.raises(ValueError, match="method"):
        interpolate_latents(z, z, 9, "cubic")
    with pytest.raises(ValueError, match="steps"):
        interpolate_latents(z, z, 1)
    with pytest.raises(ValueError, match="shape"):
        interpolate_latents(z, torch.ones(5), 9)
    with pytest.raises(ValueError, match="antipodal"):
        interpolate_latents(z, -z, 9, "slerp")


def test_dominated_epochs_are_those_ending_a_run_of_outright_wins():
    real = [0.5, 0.995, 0.999, 1.0, 1.0, 0.7, 0.999, 0.999, 0.999]
    fake = [0.5, 0.005, 0.001, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0]
    assert dominated_epochs(real, fake) == [3, 4, 8]  # wins at 1-4 and 6-8; three in a row first at 3 and 8
    assert dominated_epochs(real, fake, run=1) == [1, 2, 3, 4, 6, 7, 8]
    assert dominated_epochs(real, fake, run=5) == []
    assert dominated_epochs(real, fake, tol=0.003, run=2) == [3, 4, 7, 8]  # 0.995 / 0.005 is no longer a win


def test_dominated_epochs_need_both_outputs_past_the_tolerance():
    assert dominated_epochs([1.0] * 4, [0.5] * 4, run=1) == []  # D(x) high but the fakes still fool it
    assert dominated_epochs([0.5] * 4, [0.0] * 4, run=1) == []
    assert dominated_epochs([0.99, 1.0], [0.0, 0.01], run=1) == []  # the bounds are strict
    assert dominated_epochs([], []) == []
    with pytest.raises(ValueError, match="2 values"):
        dominated_epochs([1.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="at least 1"):
        dominated_epochs([1.0], [0.0], run=0)
