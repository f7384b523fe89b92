"""Tests for dgm.flow: invertibility, exact log-dets, the bits/dim bookkeeping, and the model verbs."""
import copy
import math

import numpy as np
import pytest
import torch

from conftest import synthetic_digits
from dgm import training
from dgm.flow import (
    AffineCoupling,
    CompositeTransform,
    FlowConfig,
    FlowTrainer,
    Logit,
    RealNVP,
    ScalarScale,
    checkerboard_mask,
    dequantize,
    preprocessing,
)

SMALL = dict(n_blocks=2, hidden_dim=16)
BATCH_SHAPES = [1, 3, 17]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def perturb_(module: torch.nn.Module, seed: int = 0, std: float = 0.3) -> torch.nn.Module:
    """Random non-zero weights everywhere (the zero-initialised couplings would be trivial)."""
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def unzero_(model: RealNVP, seed: int = 0, std: float = 0.02) -> RealNVP:
    """Random last layers on default-initialised hidden layers: couplings that are clearly not
    the identity (several nats of log-det) yet well conditioned, like a partly trained flow."""
    g = gen(seed)
    with torch.no_grad():
        for layer in model.flow.transforms:
            d, h = layer.data_dim, layer.hidden_dim
            for name, shape in (("net.4.weight", (2 * d, h)), ("net.4.bias", (2 * d,))):
                full = torch.randn(shape, generator=g) * std  # drawn in the course template's full-width layout
                layer.get_parameter(name).copy_(layer.gather_full_width(name, full))
    return model


def pixel_batch(b, d=784, seed=0):
    """(b, d) float integer pixels: the shared synthetic digits for d = 784, else uniform 0..255;
    pixels 0 and 1 are forced to 0 and 255 so both saturated ends are always exercised."""
    if d == 784:
        x = torch.from_numpy(synthetic_digits(b, seed)[0]).reshape(b, d).float()
    else:
        x = torch.randint(0, 256, (b, d), generator=gen(seed)).float()
    x[:, 0], x[:, 1] = 0.0, 255.0
    return x


def assert_round_trip(transform, x, atol=1e-4):
    z, ld_fwd = transform(x)
    x_back, ld_inv = transform.inverse(z)
    assert z.shape == x.shape and ld_fwd.shape == ld_inv.shape == (x.shape[0],)
    for t in (z, ld_fwd, x_back, ld_inv):
        assert torch.isfinite(t).all()
    assert (x_back - x).abs().max().item() < atol
    assert (ld_fwd + ld_inv).abs().max().item() < 1e-5 * max(1.0, ld_fwd.abs().max().item())


def jacobian_logdet(f, x_row):
    jac = torch.autograd.functional.jacobian(lambda r: f(r[None])[0][0], x_row)  # (D, D)
    return torch.linalg.slogdet(jac).logabsdet


# --------------------------------------------------------------------------- transforms


@pytest.mark.parametrize("b", BATCH_SHAPES)
def test_each_coupling_round_trips_with_cancelling_logdets(b):
    mask = checkerboard_mask(784)
    for m in (mask, 1 - mask):
        layer = perturb_(AffineCoupling(m, hidden_dim=32), seed=b)
        x = torch.randn(b, 784, generator=gen(b))
        assert_round_trip(layer, x)
        z, _ = layer(x)
        assert torch.equal(z[:, m.bool()], x[:, m.bool()])  # conditioning pixels pass through


@pytest.mark.parametrize("b", BATCH_SHAPES)
@pytest.mark.parametrize("alpha", [1e-5, 0.05])
def test_preprocessing_round_trips_on_dequantised_pixels(b, alpha):
    v = dequantize(pixel_batch(b), gen(1))
    assert ((v >= 0) & (v < 256)).all()
    assert_round_trip(preprocessing(alpha), v)


@pytest.mark.parametrize("b", BATCH_SHAPES)
def test_whole_flow_round_trips(b):
    torch.manual_seed(b)
    model = unzero_(RealNVP(learned_scale=True, **SMALL), seed=b)
    v = dequantize(pixel_batch(b), gen(2))
    s = model.preprocess(v)[0]
    z, logdet = model.flow(s)
    assert (z - s).abs().mean() > 0.1 and logdet.abs().mean() > 1.0  # not a near-identity flow
    assert_round_trip(model.flow, s)
    assert_round_trip(model.transform, v)  # pixel units: 1e-4 is a few float32 ulps at 255


def test_composite_sums_logdets_and_inverts_in_reverse_order():
    a, b = ScalarScale(2.0), Logit(0.1)
    comp = CompositeTransform([a, b])
    y = torch.rand(4, 5, generator=gen()) / 2  # a(y) in [0, 1)
    z, ld = comp(y)
    z_ref, ld_b = b(a(y)[0])
    assert torch.allclose(z, z_ref) and torch.allclose(ld, a(y)[1] + ld_b)
    assert torch.allclose(comp.inverse(z)[0], y, atol=1e-6)


def test_masks_are_buffers_and_checkerboard():
    mask = checkerboard_mask(784).view(28, 28)
    assert mask[0, 0] == 1 and mask[0, 1] == 0 and mask[1, 0] == 0 and mask.sum() == 392
    assert checkerboard_mask(5).tolist() == [1, 0, 1, 0, 1]
    model = RealNVP(**SMALL)
    saved = [n for n in model.state_dict() if n not in dict(model.named_parameters())]
    assert len(saved) == 2 * SMALL["n_blocks"] and all(n.endswith(".mask") for n in saved)  # index buffers unsaved
    masks = [layer.mask for layer in model.flow.transforms]
    assert torch.equal(masks[0] + masks[1], torch.ones(784))  # block = mask, then 1 - mask
    assert all("mask" not in n for n, _ in model.named_parameters())


# --------------------------------------------------------------------------- exact log-dets


@pytest.mark.parametrize("learned_scale", [False, True])
def test_logdets_match_autograd_jacobian(learned_scale):
    """data_dim 16 (a 4x4 checkerboard), float64, random weights: log|det J| by brute force."""
    torch.manual_seed(0)
    model = perturb_(RealNVP(data_dim=16, n_blocks=2, hidden_dim=8, alpha=0.05,
                             learned_scale=learned_scale), std=0.5).double()
    v = dequantize(pixel_batch(3, d=16).double(), gen(3))
    s = model.preprocess(v)[0]
    pieces = [(model.preprocess, v), (model.transform, v), (model.flow, s)]
    pieces += [(layer, s) for layer in model.flow.transforms]
    for transform, inputs in pieces:
        _, logdet = transform(inputs)
        for i in range(inputs.shape[0]):
            expected = jacobian_logdet(transform, inputs[i])
            assert logdet[i].item() == pytest.approx(expected.item(), abs=1e-8, rel=1e-10)
            _, inv_logdet = transform.inverse(transform(inputs[i : i + 1])[0])
            assert inv_logdet.item() == pytest.approx(-expected.item(), abs=1e-8, rel=1e-10)


# --------------------------------------------------------------------------- gathered conditioners


class FullWidthCoupling(torch.nn.Module):
    """The course template's coupling, as dgm.flow computed it before the conditioners were gathered:
    an MLP D -> H -> H -> 2D of the masked image, its outputs on the conditioning pixels zeroed."""

    def __init__(self, mask, hidden_dim):
        super().__init__()
        d = mask.numel()
        self.register_buffer("mask", mask.float())
        self.net = torch.nn.Sequential(torch.nn.Linear(d, hidden_dim), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden_dim, hidden_dim), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden_dim, 2 * d))
        torch.nn.init.zeros_(self.net[-1].weight)
        torch.nn.init.zeros_(self.net[-1].bias)

    def _s_t(self, x):
        raw, shift = self.net(x * self.mask).chunk(2, dim=-1)
        return torch.tanh(raw) * (1 - self.mask), shift * (1 - self.mask)

    def forward(self, x):
        s, t = self._s_t(x)
        return x * s.exp() + t, s.sum(-1)

    def inverse(self, z):
        s, t = self._s_t(z)
        return (z - t) * (-s).exp(), -s.sum(-1)


def gathered_copy(full: FullWidthCoupling) -> AffineCoupling:
    """An AffineCoupling holding the live part of ``full``'s weights."""
    layer = AffineCoupling(full.mask, hidden_dim=full.net[0].out_features).to(full.net[0].weight.dtype)
    with torch.no_grad():
        for name, p in full.named_parameters():
            layer.get_parameter(name).copy_(layer.gather_full_width(name, p))
    return layer


def template_layout(layer: AffineCoupling, name: str, live: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``live`` scattered into the template's full-width shape, random numbers in the dead places."""
    d = layer.data_dim
    if name not in ("net.0.weight", "net.4.weight", "net.4.bias", "log_scale_factor"):
        return live  # no dead weights
    rows = {"net.0.weight": live.shape[0], "net.4.weight": 2 * d, "net.4.bias": 2 * d, "log_scale_factor": d}[name]
    full = torch.randn((rows, d) if name == "net.0.weight" else (rows, *live.shape[1:]), generator=gen(seed),
                       dtype=live.dtype)
    if name == "net.0.weight":
        full[:, layer.cond_idx] = live
    elif name == "log_scale_factor":
        full[layer.free_idx] = live
    else:
        full[torch.cat([layer.free_idx, d + layer.free_idx])] = live
    assert torch.equal(layer.gather_full_width(name, full), live)
    return full


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [784, 16, 15])
def test_gathered_coupling_is_the_full_width_coupling(d, dtype):
    """Same outputs, log-dets and gradients (inputs and live weights) as the template's coupling with
    the same weights, to 1e-5; the template's dead weights get no gradient at all. In float32 the
    weight gradients (sums over the batch of up to 784-term products) differ by summation order, a few
    1e-5 of their largest entry, so they are compared in float64."""
    mask = checkerboard_mask(d)
    for m in (mask, 1 - mask):
        full = perturb_(FullWidthCoupling(m, hidden_dim=32), seed=d, std=0.1).to(dtype)
        gathered = gathered_copy(full)
        for direction in ("forward", "inverse"):
            x_full = torch.randn(5, d, generator=gen(d), dtype=dtype).requires_grad_()
            x_gath = x_full.detach().clone().requires_grad_()
            out_full, ld_full = getattr(full, direction)(x_full)
            out_gath, ld_gath = getattr(gathered, direction)(x_gath)
            torch.testing.assert_close(out_gath, out_full, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ld_gath, ld_full, rtol=1e-5, atol=1e-5)
            assert torch.equal(out_gath[:, m.bool()], x_gath[:, m.bool()])  # conditioning pixels pass through
            full.zero_grad(), gathered.zero_grad()
            weights = torch.randn(out_full.shape, generator=gen(1))  # a generic upstream gradient
            ((out_full * weights).sum() + ld_full.sum()).backward()
            ((out_gath * weights).sum() + ld_gath.sum()).backward()
            torch.testing.assert_close(x_gath.grad, x_full.grad, rtol=1e-5, atol=1e-5)
            if dtype != torch.float64:
                continue
            for name, p in full.named_parameters():
                live = gathered.get_parameter(name).grad
                torch.testing.assert_close(live, gathered.gather_full_width(name, p.grad), rtol=1e-5, atol=1e-5)
                assert p.grad.abs().sum().item() == pytest.approx(live.abs().sum().item(), rel=1e-5)  # dead: zero


def test_seeded_coupling_has_the_templates_live_weights_and_draws():
    """Full-width layers created with the same init calls, then cut: the first layer's init bound uses
    fan-in D, and the global RNG is left where the template leaves it (dropout, later layers)."""
    mask = checkerboard_mask(784)
    torch.manual_seed(3)
    full = FullWidthCoupling(mask, hidden_dim=64)
    after_full = torch.get_rng_state()
    torch.manual_seed(3)
    gathered = AffineCoupling(mask, hidden_dim=64)
    assert torch.equal(torch.get_rng_state(), after_full)
    for name, p in full.named_parameters():
        assert torch.equal(gathered.get_parameter(name), gathered.gather_full_width(name, p.detach()))
    assert gathered.net[0].weight.shape == (64, 392) and gathered.net[-1].weight.shape == (784, 64)
    assert gathered.net[0].weight.abs().max().item() <= 1 / math.sqrt(784)  # kaiming-uniform bound of fan-in 784


def test_model_file_with_full_width_conditioners_loads(tmp_path):
    """A model file written before the conditioners were gathered: its n_parameters is the template's
    count and its layers are full width; it loads (sliced) into the same function."""
    from dgm import io
    from dgm.models import load_model

    model = unzero_(RealNVP(learned_scale=True, **SMALL), seed=4)
    with torch.no_grad():
        for layer in model.flow.transforms:
            layer.log_scale_factor.uniform_(0.5, 1.5, generator=gen(5))
    old_state = dict(model.state_dict())
    for prefix, layer in model.named_modules():
        if isinstance(layer, AffineCoupling):
            for name, p in layer.named_parameters():
                old_state[f"{prefix}.{name}"] = template_layout(layer, name, p.detach())
    info = model.describe()
    old_info = {k: v for k, v in info.items() if k != "n_parameters_template"}
    old_info["n_parameters"] = info["n_parameters_template"]
    io.torch_save({"version": 1, "model": old_info, "state_dict": old_state}, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt", expect=RealNVP)
    x = pixel_batch(3)
    assert torch.equal(loaded.log_prob(x, gen(6)), model.log_prob(x, gen(6)))
    assert loaded.describe() == info
    with pytest.raises(ValueError, match="template"):
        RealNVP.from_description({**info, "n_parameters_template": 1})
    with pytest.raises(ValueError, match="full-width"):  # a new file must give the live count
        RealNVP.from_description({**info, "n_parameters": info["n_parameters_template"]})


def test_resume_checkpoint_with_full_width_adam_state_loads():
    trainer = _trainer()
    x = pixel_batch(16).to(torch.uint8)
    trainer.train_step(x, gen(0))
    state = copy.deepcopy(trainer.state_dict())  # as a checkpoint holds it: no tensor shared with the trainer
    reference = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    old = {"model": dict(state["model"]), "optimizer": {**state["optimizer"], "state": {}}}
    names = [n for n, _ in trainer.model.named_parameters()]
    for i, moments in state["optimizer"]["state"].items():
        prefix, _, name = names[i].rpartition(".net.") if ".net." in names[i] else (None, None, None)
        layer = trainer.model.get_submodule(prefix) if prefix else None
        full = (lambda t: template_layout(layer, "net." + name, t)) if layer is not None else (lambda t: t)
        old["optimizer"]["state"][i] = {k: full(v) if v.ndim else v for k, v in moments.items()}
        old["model"][names[i]] = full(state["model"][names[i]])
    fresh = _trainer(seed=9)
    fresh.load_state_dict(old)
    assert all(torch.equal(fresh.model.state_dict()[k], v) for k, v in reference.items())
    after_old, after_new = fresh.train_step(x, gen(1)), trainer.train_step(x, gen(1))
    assert torch.equal(after_old["nll"], after_new["nll"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.parameters(), trainer.model.parameters()))


def full_width_twin(model: RealNVP) -> RealNVP:
    """``model`` as the flow was before its conditioners were gathered: every coupling replaced by the
    course template's full-width one holding the same live weights (random numbers where it is dead)."""
    twin = copy.deepcopy(model)
    for i, layer in enumerate(model.flow.transforms):
        full = FullWidthCoupling(layer.mask, layer.hidden_dim).to(layer.mask.device, layer.net[0].weight.dtype)
        with torch.no_grad():
            for name, p in full.named_parameters():
                p.copy_(template_layout(layer, name, layer.get_parameter(name).detach(), seed=i))
        twin.flow.transforms[i] = full
    return twin


def test_gathered_flow_trains_as_the_full_width_flow():
    """Two epochs of the smoke config's flow (4 blocks, hidden 64, lr 1e-3, gradient clipping at 5,
    batch 128; 32 steps): the gathered conditioners with the fused Adam of ``training.adam`` give the
    bits/dim of the code before them -- full-width conditioners, torch's default Adam -- to 1e-4 at
    every epoch. In float64, where the two agree to 1e-12: in float32 the rounding of two equal
    computations already puts these two runs 1e-3 bits/dim apart, and the smoke run's (126 steps)
    0.05 apart, as it does the same code under two CPU instruction sets."""
    images = torch.from_numpy(synthetic_digits(2304, seed=7)[0]).reshape(2304, 784)
    torch.manual_seed(0)
    gathered = RealNVP(n_blocks=4, hidden_dim=64).double()
    curves = {}
    for name, model in (("gathered", gathered), ("full width", full_width_twin(gathered))):
        trainer = FlowTrainer(model, lr=1e-3, valid_x=images[:256], grad_clip=5.0)
        if name == "full width":
            trainer.optimizers["optimizer"] = torch.optim.Adam(model.parameters(), lr=1e-3)
        rows, _ = training.fit(trainer, images[256:], epochs=2, batch_size=128, generator=gen(0),
                               checkpoint_path=None, metrics_path=None)
        curves[name] = [row["valid_bpd"] for row in rows]
    assert curves["gathered"][-1] < curves["gathered"][0] - 10  # it trained: about 18.5 -> 5.6 bits/dim
    assert curves["gathered"] == pytest.approx(curves["full width"], abs=1e-4, rel=0)


# --------------------------------------------------------------------------- bits per dimension


@pytest.mark.parametrize("alpha", [1e-5, 0.05])
def test_identity_flow_bpd_is_the_preprocessing_closed_form(alpha):
    """At initialisation every coupling is the identity, so log p_v(v) is the standard normal
    log density of s = logit(alpha + (1 - 2 alpha) v / 256) plus the scale and logit log-dets."""
    model = RealNVP(alpha=alpha, **SMALL)
    x = pixel_batch(5)
    u = torch.rand(x.shape, generator=gen(7)).double().numpy()  # the noise model.bpd will draw
    v = x.double().numpy() + u
    p = alpha + (1 - 2 * alpha) * v / 256
    s = np.log(p) - np.log1p(-p)
    log_normal = -0.5 * (np.log(2 * np.pi) + s**2)
    log_det = -np.log(256) + np.log(1 - 2 * alpha) - np.log(p) - np.log1p(-p)
    log_pv = (log_normal + log_det).sum(axis=1)  # (B,)
    bpd_hand = -log_pv / (784 * np.log(2))

    got = model.bpd(x, gen(7)).detach().numpy()
    np.testing.assert_allclose(got, bpd_hand, rtol=1e-5)
    np.testing.assert_allclose(model.log_prob(x, gen(7)).detach().numpy(), log_pv, rtol=1e-5)
    loss, logs = model.loss(x, gen(7))
    assert loss.item() == pytest.approx(-log_pv.mean(), rel=1e-5)
    assert logs["bpd"] == pytest.approx(bpd_hand.mean(), rel=1e-5)
    assert set(logs) >= {"bpd", "nll"} and all(isinstance(val, float) for val in logs.values())


def test_bpd_with_k_samples_is_log_mean_exp_of_the_draws():
    model = unzero_(RealNVP(**SMALL))
    x = pixel_batch(4)
    g = gen(11)
    draws = torch.stack([model.log_prob(x, g) for _ in range(3)])  # (3, B)
    expected = -(torch.logsumexp(draws, 0) - math.log(3)) / (784 * math.log(2))
    got = model.bpd(x, gen(11), k=3)
    assert torch.allclose(got, expected)
    assert (got <= -draws.mean(0) / (784 * math.log(2)) + 1e-6).all()  # Jensen: never looser
    with pytest.raises(ValueError):
        model.bpd(x, k=0)


def test_inputs_accept_images_and_uint8():
    model = unzero_(RealNVP(**SMALL))
    x = pixel_batch(3)
    ref = model.log_prob(x, gen(5))
    assert torch.allclose(model.log_prob(x.view(3, 1, 28, 28), gen(5)), ref)
    assert torch.allclose(model.log_prob(x.to(torch.uint8), gen(5)), ref)


# --------------------------------------------------------------------------- model verbs


def test_sampling_shapes_ranges_and_determinism():
    model = unzero_(RealNVP(**SMALL))
    pixels = model.sample_pixels(6, generator=gen(4))
    assert pixels.shape == (6, 1, 28, 28)
    assert torch.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 255
    assert torch.equal(pixels, pixels.round())
    images = model.sample(6, generator=gen(4))
    assert images.shape == (6, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, pixels / 255)
    assert torch.equal(model.sample(6, generator=gen(4)), images)
    assert not torch.equal(model.sample(6, generator=gen(5)), images)
    continuous = model.sample_pixels(6, generator=gen(4), discretize=False)
    assert torch.equal(continuous.floor().clamp(0, 255), pixels)
    assert model.sample_pixels(2, generator=gen(0)).requires_grad is False


def test_fixed_generator_gives_same_log_prob():
    model = unzero_(RealNVP(**SMALL))
    x = pixel_batch(4)
    assert torch.equal(model.log_prob(x, gen(3)), model.log_prob(x, gen(3)))
    assert not torch.equal(model.log_prob(x, gen(3)), model.log_prob(x, gen(4)))


def test_interpolation_endpoints_reproduce_the_inputs():
    model = unzero_(RealNVP(**SMALL))
    x_a, x_b = pixel_batch(2, seed=1), pixel_batch(2, seed=2)
    path = model.interpolate(x_a.view(2, 1, 28, 28), x_b, steps=5)
    assert path.shape == (2, 5, 1, 28, 28) and path.min() >= 0 and path.max() <= 1
    assert torch.equal(path[:, 0].flatten(1), x_a / 255)
    assert torch.equal(path[:, -1].flatten(1), x_b / 255)
    with pytest.raises(ValueError):
        model.interpolate(x_a, x_b, steps=1)


def test_one_adam_step_lowers_the_loss():
    torch.manual_seed(0)
    model = RealNVP(**SMALL)
    x = pixel_batch(32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before, _ = model.loss(x, gen(9))
    opt.zero_grad()
    before.backward()
    opt.step()
    after, _ = model.loss(x, gen(9))  # same noise draw: only the parameters changed
    assert torch.isfinite(before) and after.item() < before.item()


def test_config_validation_and_describe():
    with pytest.raises(ValueError, match="hidden_size"):
        FlowConfig.from_dict({"hidden_size": 3})
    with pytest.raises(ValueError, match="hidden_size"):
        RealNVP(hidden_size=3)
    for bad in ({"alpha": 0.0}, {"alpha": 0.5}, {"n_blocks": 0}, {"hidden_dim": 2.5}):
        with pytest.raises(ValueError):
            FlowConfig.from_dict(bad)
    assert FlowConfig() == FlowConfig(n_blocks=4, hidden_dim=1024, data_dim=784, alpha=1e-5)
    info = RealNVP(**SMALL).describe()
    assert info["class"] == "RealNVP" and info["n_blocks"] == 2 and info["hidden_dim"] == 16
    per_coupling = 784 * 16 + 16 + 16 * 16 + 16 + 16 * 1568 + 1568
    assert info["n_parameters_template"] == 2 * 2 * per_coupling
    live = 392 * 16 + 16 + 16 * 16 + 16 + 16 * 784 + 784  # the conditioners' live weights
    assert info["n_parameters"] == 2 * 2 * live == sum(p.numel() for p in RealNVP(**SMALL).parameters())
    scaled = RealNVP(learned_scale=True, **SMALL).describe()  # + a per-pixel factor: 784 in the template, 392 live
    assert scaled["n_parameters_template"] == 2 * 2 * (per_coupling + 784)
    assert scaled["n_parameters"] == 2 * 2 * (live + 392)


def test_full_size_parameter_count():
    """The course flow: 8 couplings of 784 -> 1024 -> 1024 -> 1568, ~27.7M parameters, of which
    ~18.0M are live (392 -> 1024 -> 1024 -> 784)."""
    per_coupling = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 1568 + 1568
    live = 392 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 784 + 784
    with torch.device("meta"):
        model = RealNVP()
    info = model.describe()
    assert info["n_parameters_template"] == 8 * per_coupling == 27_685_120
    assert info["n_parameters"] == 8 * live == 18_045_056


def test_from_description_rebuilds_describe_and_checks_the_parameter_count():
    model = RealNVP(alpha=0.01, learned_scale=True, **SMALL)
    info = model.describe()
    rebuilt = RealNVP.from_description(info)
    assert rebuilt.config == model.config and rebuilt.latent_dim == 784
    assert RealNVP.from_description({k: v for k, v in info.items() if k != "class"}).config == model.config
    with pytest.raises(ValueError, match="parameters"):
        RealNVP.from_description({**info, "n_parameters": 1})
    with pytest.raises(ValueError, match="VAE"):
        RealNVP.from_description({**info, "class": "VAE"})
    with pytest.raises(ValueError, match="hidden_size"):
        RealNVP.from_description({**info, "hidden_size": 3})


# --------------------------------------------------------------------------- trainer


def _trainer(grad_clip=None, lr=1e-3, n_valid=40, seed=0):
    torch.manual_seed(seed)
    model = RealNVP(**SMALL)
    valid = pixel_batch(n_valid, seed=3).to(torch.uint8)
    return FlowTrainer(model, lr=lr, valid_x=valid, grad_clip=grad_clip, eval_batch=16)


def test_trainer_step_lowers_the_validation_bpd_and_reports_bits():
    trainer = _trainer(lr=1e-3)
    x = pixel_batch(64, seed=1).to(torch.uint8)
    before = trainer.evaluate(gen(0))
    stats = [trainer.train_step(x, gen(i)) for i in range(15)]
    after = trainer.evaluate(gen(0))
    assert set(stats[0]) >= {"nll", "bpd", "grad_norm"}
    assert all(v.ndim == 0 and not v.requires_grad for v in stats[0].values())  # device tensors: fit reads them
    assert stats[0]["bpd"].item() == pytest.approx(stats[0]["nll"].item() / (784 * math.log(2)))
    assert after["bpd"] < before["bpd"] - 0.5
    assert set(before) == {"nll", "bpd"} and before["bpd"] == pytest.approx(before["nll"] / (784 * math.log(2)))


def test_trainer_evaluate_is_the_mean_over_all_validation_images():
    trainer = _trainer()
    unzero_(trainer.model)
    got = trainer.evaluate(gen(5))["bpd"]  # in batches of 16 over 40 images
    expected = trainer.model(trainer.valid_x, gen(5))["bpd"].double().mean().item()  # one batch, same draws
    assert got == pytest.approx(expected, rel=1e-6)


def test_trainer_clips_the_gradient_norm():
    trainer = _trainer(grad_clip=0.5)
    stats = {k: v.item() for k, v in trainer.train_step(pixel_batch(32).to(torch.uint8), gen(1)).items()}
    assert stats["grad_norm"] > 0.5  # the untrained flow's gradients are large: clipping is active
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.model.parameters()]))
    assert clipped.item() == pytest.approx(0.5, rel=1e-4)
    unclipped = _trainer(grad_clip=None)
    stats_none = unclipped.train_step(pixel_batch(32).to(torch.uint8), gen(1))
    assert stats_none["grad_norm"].item() == pytest.approx(stats["grad_norm"], rel=1e-5)  # same init, same batch
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in unclipped.model.parameters()]))
    assert total.item() == pytest.approx(stats["grad_norm"], rel=1e-4)


def test_trainer_rejects_bad_options_and_a_non_finite_loss():
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="grad_clip"):
            _trainer(grad_clip=bad)
    with pytest.raises(ValueError, match="784 pixels"):
        FlowTrainer(RealNVP(**SMALL), lr=1e-3, valid_x=torch.zeros(4, 10))
    trainer = _trainer()
    with torch.no_grad():
        trainer.model.flow.transforms[0].net[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="flow.lr"):
        trainer.train_step(pixel_batch(4), gen(0))


def test_trainer_snapshot_is_samples_only_and_leaves_the_training_stream_alone():
    trainer = _trainer()
    unzero_(trainer.model)
    g = gen(42)
    state = g.get_state()
    snap = trainer.snapshot(g)
    assert set(snap) == {"samples"} and snap["samples"].shape == (16, 1, 28, 28)
    assert 0 <= snap["samples"].min() and snap["samples"].max() <= 1
    assert torch.equal(g.get_state(), state)
    assert torch.equal(trainer.snapshot(gen(7))["samples"], snap["samples"])  # same prior draws every epoch


def test_fit_with_the_flow_trainer_resumes_to_the_same_result(tmp_path):
    data = torch.from_numpy(synthetic_digits(96, seed=4)[0]).reshape(96, 784)  # uint8

    def run(folder, epochs, init_seed=0, gen_seed=0):
        trainer = _trainer(grad_clip=1.0, seed=init_seed)
        return training.fit(trainer, data, epochs=epochs, batch_size=32, generator=gen(gen_seed),
                            checkpoint_path=tmp_path / folder / "ckpt.pt", metrics_path=tmp_path / folder / "m.csv",
                            fingerprint="f", snapshot_epochs={0, 3})

    full, full_snaps = run("a", 3)
    run("b", 2)  # interrupted after 2 epochs
    resumed, snaps = run("b", 3, init_seed=123, gen_seed=99)  # resume overwrites init and RNG state
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)
    assert [r["epoch"] for r in full] == [0, 1, 2, 3] and {"train_bpd", "valid_bpd", "train_grad_norm"} <= set(full[1])
    assert torch.equal(snaps[3]["samples"], full_snaps[3]["samples"])
