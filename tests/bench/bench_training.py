"""Training speed of every model: seconds per epoch, achieved GFLOP/s against the machine's matmul
speed on the same shapes, and the pipeline's loop against a plain DataLoader loop.

    .venv/bin/python tests/bench/bench_training.py [--quick] [--raw-dir ../shared/data/mnist-mini] [--device cuda]
                                                   [--only vae iwae gan flow estimator] [--epochs 3]

Rows: the training step of the VAE (z = 20, 784-500-20, batch 128, dynamic binarisation), the IWAE
(the same networks, k = 5), the GAN (the default 100-128-...-1024-784 generator and 784-512-256-1
discriminator, batch 64) and the RealNVP flow (8 couplings of 392-1024-1024-784, batch 128), each
through ``dgm.training.fit`` with its real trainer; and the likelihood estimator (importance sampling
with K samples per image through the z = 20 VAE, ``dgm.estimators.importance_sampled_log_px``).

Columns:

- ``s/10k``: seconds of training per epoch per 10,000 images (fit's ``train_seconds``; the best of
  ``--epochs`` epochs, the loops of one model taking turns epoch by epoch so that changing load from
  other processes hits them alike; the estimator: seconds per 10,000 images at ``--k``).
- ``GFLOP/s``: the step's FLOPs, counted analytically (2 in out per linear layer per row and
  matmul; a layer runs 3 matmuls in training -- forward, input gradient, weight gradient -- 2 when its
  input needs no gradient or its weights are frozen, 1 under no_grad), over that time.
- ``matmul``: GFLOP/s of a loop of plain ``torch.mm`` calls of exactly those shapes, timed in the same
  run: what this machine's BLAS gives these shapes, the ceiling for an MLP's step. ``%`` is the
  ratio: the rest is elementwise work, the optimiser, data and Python.
- ``plain s/10k``, ``x plain``: the same model trained the way pytorch/examples' vae/main.py and
  PyTorch-GAN's gan.py do it -- a torchvision-MNIST-style Dataset (a PIL image and ``ToTensor`` per
  sample) over the same uint8 images, a shuffling ``DataLoader`` (one worker and pinned memory on a
  GPU, as the VAE example), and ``.item()`` on the losses every step -- and how many times faster the
  pipeline's loop is. The estimator's plain loop is the textbook one: K samples per image at once
  in chunks, ``binary_cross_entropy_with_logits`` per row, ``logsumexp``.
- ``loader``: seconds per 10,000 images of that DataLoader alone, nothing done with its batches. The
  rest of ``plain s/10k`` is a step of the same model code (plus ``.item()`` and ``torch.bernoulli``),
  so ``x plain`` is a little over 1 + ``loader`` / ``s/10k``: a faster step speeds up both loops.
- ``examples s/10k``, ``x examples`` (the VAE): pytorch/examples' vae/main.py whole, not only its
  loop -- its own module (fc1, fc21, fc22, fc3, fc4 at the pipeline's widths, 784-500-20), sigmoid
  outputs, ``F.binary_cross_entropy(reduction="sum")`` plus the KL, default Adam, ``loss.item()``
  every step -- over the same DataLoader and binarised images: the script the pipeline replaces.
  The ``plain`` loop shares the pipeline's model code, so it times the loop alone.

The row ``- vae: matmuls+Adam`` (``MatmulsAndAdamTrainer``) runs only the VAE step's matmuls and its
Adam step through ``fit`` (with the minibatch gather and the binarisation): the least any exact step
of that model costs here, with ``x examples`` = pytorch/examples' time over it (its GFLOP/s column
counts the same FLOPs).

Variants (rows marked ``+``): the GAN's discriminator step with one pass over real and fake images
together (``torch.cat``; dropout draws independent masks per row either way); ``torch.compile`` of
the VAE's and the flow's loss (Inductor; on a CPU it needs a C++ compiler). A variant that fails
prints its error instead of times.

``--quick`` (a few minutes on two CPU cores) trains on 2,000 images (the flow on 512) for 3 epochs,
runs the estimator at K = 100 and leaves out the variants (``--variants`` brings them back).
Load from other processes distorts every time: the load average is printed with the table.
Asserts nothing; exits 0.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))
from dgm import data, estimators, training  # noqa: E402
from dgm.distributions import log_normal_diag, log_standard_normal  # noqa: E402
from dgm.flow import FlowConfig, FlowTrainer, RealNVP  # noqa: E402
from dgm.gan import GAN, GANConfig, GANTrainer  # noqa: E402
from dgm.iwae import IWAE, IWAEConfig  # noqa: E402
from dgm.vae import VAE, VAEConfig, VAETrainer  # noqa: E402


@dataclass(frozen=True)
class Layer:
    """A linear layer of the step on ``rows`` rows, ``times`` times: its matmuls are ``kinds``, f the
    forward (rows, in) @ (in, out), i the input gradient (rows, out) @ (out, in), w the weight gradient
    (out, rows) @ (rows, in)."""

    rows: int
    n_in: int
    n_out: int
    kinds: str = "fiw"
    times: int = 1

    @property
    def flops(self) -> float:
        return 2.0 * self.rows * self.n_in * self.n_out * len(self.kinds) * self.times


def flops(layers: list[Layer]) -> float:
    return sum(layer.flops for layer in layers)


def mlp(rows: int, widths: list[int], *, first: str = "fw", rest: str = "fiw") -> list[Layer]:
    """The layers of an MLP widths[0] -> ... -> widths[-1] on ``rows`` rows; by default its input needs
    no gradient (first layer: forward and weight gradient)."""
    return [Layer(rows, a, b, first if i == 0 else rest) for i, (a, b) in enumerate(zip(widths, widths[1:]))]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(layers: list[Layer], device: torch.device, min_seconds: float) -> float:
    """GFLOP/s of plain torch.mm calls with exactly the step's shapes and passes."""
    g = torch.Generator(device=device).manual_seed(0)
    ops = []
    for layer in layers:
        x = torch.randn(layer.rows, layer.n_in, generator=g, device=device)
        w = torch.randn(layer.n_out, layer.n_in, generator=g, device=device)
        y = torch.randn(layer.rows, layer.n_out, generator=g, device=device)
        operands = {"f": (x, w.t()), "i": (y, w), "w": (y.t(), x)}
        ops += [operands[kind] for kind in layer.kinds] * layer.times
    for a, b in ops:  # warm-up
        torch.mm(a, b)
    reps, elapsed = 0, 0.0
    sync(device)
    t0 = time.perf_counter()
    while elapsed < min_seconds or reps < 3:
        for a, b in ops:
            torch.mm(a, b)
        reps += 1
        sync(device)
        elapsed = time.perf_counter() - t0
    return flops(layers) * reps / elapsed / 1e9


# --------------------------------------------------------------------------- the plain DataLoader loop


class MNISTLike(torch.utils.data.Dataset):
    """What ``torchvision.datasets.MNIST`` does per item, over uint8 images already in memory: a PIL
    image, then the transform (``ToTensor``: float in [0, 1], (1, 28, 28))."""

    def __init__(self, images: torch.Tensor):
        from torchvision import transforms

        self.images, self.transform = images.reshape(-1, 28, 28), transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i].numpy(), mode="L")), 0


def plain_loader(images: torch.Tensor, batch_size: int, device: torch.device, drop_last: bool = False):
    """A shuffling DataLoader over MNISTLike, set up as pytorch/examples' VAE sets it up."""
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    return torch.utils.data.DataLoader(MNISTLike(images), batch_size=batch_size, shuffle=True,
                                       drop_last=drop_last, **kwargs)


def plain_epoch(step: Callable[[torch.Tensor], None], loader, device: torch.device) -> float:
    """Seconds of one epoch of ``step(batch)`` over ``loader``."""
    sync(device)
    t0 = time.perf_counter()
    for x, _ in loader:
        step(x.to(device))
    sync(device)
    return time.perf_counter() - t0


def plain_vae_step(model, opt) -> Callable:
    def step(x):  # pytorch/examples vae/main.py: loss.item() every step
        loss, stats = model.loss(torch.bernoulli(x.view(-1, 784)))  # stats: floats, one .item() per term
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


class ExamplesVAE(torch.nn.Module):
    """pytorch/examples' vae/main.py model, at the pipeline's widths."""

    def __init__(self, hidden: int = 500, latent: int = 20):
        super().__init__()
        self.fc1, self.fc3 = torch.nn.Linear(784, hidden), torch.nn.Linear(latent, hidden)
        self.fc21, self.fc22 = torch.nn.Linear(hidden, latent), torch.nn.Linear(hidden, latent)
        self.fc4 = torch.nn.Linear(hidden, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def examples_vae_step(device: torch.device) -> Callable:
    model = ExamplesVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x):  # vae/main.py's train(): its loss_function, loss.item() every step
        x = torch.bernoulli(x.view(-1, 784))
        opt.zero_grad()
        recon, mu, logvar = model(x)
        loss = (F.binary_cross_entropy(recon, x, reduction="sum")
                - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
        loss.backward()
        loss.item()
        opt.step()
    return step


def plain_gan_step(gan: GAN, opt_d, opt_g) -> Callable:
    def step(x):  # PyTorch-GAN gan.py: both losses printed with .item() every batch
        opt_d.zero_grad()
        loss_d, _ = gan.discriminator_loss(x)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        gan.discriminator.requires_grad_(False)
        loss_g, _ = gan.generator_loss(len(x))
        loss_g.backward()
        gan.discriminator.requires_grad_(True)
        opt_g.step()
    return step


def plain_flow_step(model: RealNVP, opt, grad_clip: float) -> Callable:
    def step(x):
        loss, _ = model.loss((x * 255).round())  # ToTensor's [0, 1] back to pixel values
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip).item()
        opt.step()
    return step


# --------------------------------------------------------------------------- variants


class JointDiscriminatorTrainer(GANTrainer):
    """The GAN's discriminator step with one pass over real and fake images together."""

    def train_step(self, x, generator):
        gan, opt_d, opt_g = self.model, self.optimizers["opt_d"], self.optimizers["opt_g"]
        gan.train()
        opt_d.zero_grad(set_to_none=True)
        real = x.flatten(1) * 2.0 - 1.0  # (B, 784)
        with torch.no_grad():
            fake = gan.generator(gan._noise(len(real), generator))  # (B, 784)
        logit_real, logit_fake = gan.discriminator(torch.cat([real, fake])).chunk(2)  # (B,) each
        loss_d = (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                  + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        gan.discriminator.requires_grad_(False)
        loss_g, stats_g = gan._generator_loss(len(real), generator)
        loss_g.backward()
        gan.discriminator.requires_grad_(True)
        opt_g.step()
        with torch.no_grad():
            return {"d_loss": loss_d.detach(), "d_real": torch.sigmoid(logit_real).mean(),
                    "d_fake": torch.sigmoid(logit_fake).mean(), "g_loss": stats_g["g_loss"]}


class MatmulsAndAdamTrainer(VAETrainer):
    """A floor for any exact training step of its model: only the step's matmuls -- every linear layer's
    forward, input gradient (but the first layer's) and weight gradient, on the batch and on activations
    and gradients of the right shapes -- and the fused Adam step; ``fit`` adds the minibatch gather and
    the dynamic binarisation, as for the real step. What a step must add to this (ReLUs, the likelihood,
    the KL, bias gradients, autograd) is the difference to its row."""

    def __init__(self, model, *, batch_size: int = 128, **options):
        super().__init__(model, **options)
        self.linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        device = next(model.parameters()).device
        g = torch.Generator(device=device).manual_seed(0)
        rand = lambda *shape: torch.randn(shape, generator=g, device=device)  # noqa: E731
        self.inputs = [None] + [rand(batch_size, m.in_features) for m in self.linears[1:]]  # the first: the batch
        self.output_grads = [rand(batch_size, m.out_features) for m in self.linears]
        for p in model.parameters():
            p.grad = torch.zeros_like(p)

    @torch.no_grad()
    def train_step(self, x, generator):
        for i, (layer, g) in enumerate(zip(self.linears, self.output_grads)):
            inputs, g = (x if i == 0 else self.inputs[i][: len(x)]), g[: len(x)]
            torch.addmm(layer.bias, inputs, layer.weight.t())
            if i:
                g.mm(layer.weight)
            torch.mm(g.t(), inputs, out=layer.weight.grad)
        self.optimizers["optimizer"].step()
        return {}

    def evaluate(self, generator):
        return {}  # the weights follow made-up gradients: nothing to validate (fit times training alone)


def compile_loss(model) -> None:
    """torch.compile the model's training loss (``_loss``, what the trainers call)."""
    model._loss = torch.compile(model._loss)


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    name: str
    build: Callable[[], tuple]  # -> (trainer, prepare_batch or None, plain step or None)
    batch_size: int
    layers: list[Layer]
    images: int  # training images this case uses
    drop_last: bool = False
    notes: list[str] = field(default_factory=list)
    examples: Callable[[], Callable] | None = None  # -> the reference script's own step (the VAE)


def cases(args, valid_binary, valid_gray, valid_pixels) -> list[Case]:
    vae_layers = lambda rows, samples=1: (  # noqa: E731  encoder, mu and logvar, decoder on every sample
        mlp(rows, [784, 500]) + [Layer(rows, 500, 20)] * 2 + mlp(rows * samples, [20, 500, 784], first="fiw"))
    gan_c = GANConfig()
    h = gan_c.hidden_dim
    g_widths, d_widths = [gan_c.latent_dim, h, 2 * h, 4 * h, 8 * h, 784], [784, 4 * h, 2 * h, 1]
    gan_layers = (mlp(64, g_widths, first="f", rest="f") + mlp(2 * 64, d_widths)  # D step: fakes under no_grad
                  + mlp(64, g_widths) + mlp(64, d_widths, first="fi", rest="fi"))  # G step: D frozen
    flow_c = FlowConfig()
    coupling = [392, flow_c.hidden_dim, flow_c.hidden_dim, 784]  # the live part of 784-1024-1024-1568
    flow_layers = mlp(128, coupling) + mlp(128, coupling, first="fiw") * (2 * flow_c.n_blocks - 1)
    binarise = data.binarize_batch
    gray = lambda b, g: b.float().div_(255.0)  # noqa: E731

    def vae(cls, config, compiled=False, trainer_cls=VAETrainer):
        def build():
            model = cls(config).to(args.device)
            trainer = trainer_cls(model, lr=1e-3, valid_x=valid_binary)
            if trainer_cls is not VAETrainer:
                return trainer, binarise, None
            plain_model = cls(config).to(args.device)
            plain = plain_vae_step(plain_model, torch.optim.Adam(plain_model.parameters(), lr=1e-3))
            if compiled:
                compile_loss(model)
                plain = None
            return trainer, binarise, plain
        return build

    def gan(trainer_cls=GANTrainer, plain=True):
        def build():
            model = GAN(gan_c).to(args.device)
            trainer = trainer_cls(model, lr=2e-4, betas=(0.5, 0.999), valid_x=valid_gray)
            step = None
            if plain:
                plain_model = GAN(gan_c).to(args.device)
                opt = dict(lr=2e-4, betas=(0.5, 0.999))
                step = plain_gan_step(plain_model, torch.optim.Adam(plain_model.discriminator.parameters(), **opt),
                                      torch.optim.Adam(plain_model.generator.parameters(), **opt))
            return trainer, gray, step
        return build

    def flow(compiled=False):
        def build():
            model = RealNVP(flow_c).to(args.device)
            trainer = FlowTrainer(model, lr=1e-3, valid_x=valid_pixels, grad_clip=5.0)
            plain_model = RealNVP(flow_c).to(args.device)
            plain = plain_flow_step(plain_model, torch.optim.Adam(plain_model.parameters(), lr=1e-3), 5.0)
            if compiled:
                compile_loss(model)
                plain = None
            return trainer, None, plain
        return build

    n, n_flow = args.images, args.flow_images
    groups = [
        [Case("vae z=20", vae(VAE, VAEConfig(latent_dim=20)), 128, vae_layers(128), n,
              examples=lambda: examples_vae_step(args.device)),
         Case("- vae: matmuls+Adam", vae(VAE, VAEConfig(latent_dim=20), trainer_cls=MatmulsAndAdamTrainer), 128,
              vae_layers(128), n)],
        [Case("iwae z=20 k=5", vae(IWAE, IWAEConfig(latent_dim=20, k=5)), 128, vae_layers(128, 5), n)],
        [Case("gan", gan(), 64, gan_layers, n, drop_last=True)],
        [Case("flow", flow(), 128, flow_layers, n_flow)],
    ]
    if args.variants:
        groups[0].append(Case("+ vae, torch.compile", vae(VAE, VAEConfig(latent_dim=20), compiled=True), 128,
                              vae_layers(128), n))
        groups[2].append(Case("+ gan, joint D pass", gan(JointDiscriminatorTrainer, plain=False), 64, gan_layers, n,
                              drop_last=True))
        groups[3].append(Case("+ flow, torch.compile", flow(compiled=True), 128, flow_layers, n_flow))
    return groups


ROWS = ("vae", "iwae", "gan", "flow", "estimator")  # the groups ``cases`` returns, in order, then the estimator


def run_group(group: list[Case], train: torch.Tensor, args) -> list[dict]:
    """One model's rows: its pipeline loop, plain loop and variants take turns, an epoch each, so that
    load from other processes changing over the run hits them alike; the best epoch of each counts."""
    runners = []  # (case name, "pipeline" or "plain", one epoch -> seconds)
    errors: dict[str, Exception] = {}  # a variant that does not work here, e.g. torch.compile without a compiler
    for case in group:
        torch.manual_seed(0)
        try:
            trainer, prepare, plain_step = case.build()
        except Exception as e:
            errors[case.name] = e
            continue
        x = train[: case.images]
        g = torch.Generator(device=args.device).manual_seed(0)

        def pipeline_epoch(trainer=trainer, x=x, g=g, prepare=prepare, case=case):
            rows, _ = training.fit(trainer, x, epochs=1, batch_size=case.batch_size, generator=g,
                                   checkpoint_path=None, metrics_path=None, prepare_batch=prepare,
                                   device=args.device, drop_last=case.drop_last)
            return rows[-1]["train_seconds"]  # the epoch's training, without fit's validation pass
        runners.append((case.name, "pipeline", pipeline_epoch))
        if plain_step is not None:
            loader = plain_loader(x.cpu(), case.batch_size, args.device, case.drop_last)
            runners.append((case.name, "plain", lambda step=plain_step, loader=loader: plain_epoch(step, loader,
                                                                                                   args.device)))
            runners.append((case.name, "loader", lambda loader=loader: plain_epoch(lambda x: None, loader,
                                                                                     args.device)))
        if case.examples is not None:
            loader = plain_loader(x.cpu(), case.batch_size, args.device, case.drop_last)
            runners.append((case.name, "examples", lambda step=case.examples(), loader=loader: plain_epoch(
                step, loader, args.device)))
    best: dict[tuple[str, str], float] = {}
    matmul = {case.name: 0.0 for case in group}  # the best GFLOP/s of the plain matmuls, measured in turn too
    for _ in range(args.epochs):
        for name, what, run in runners:
            if name in errors:
                continue
            try:
                best[name, what] = min(best.get((name, what), math.inf), run())
            except Exception as e:
                errors[name] = e
        for case in group:
            matmul[case.name] = max(matmul[case.name], matmul_gflops(case.layers, args.device, args.matmul_seconds))
    results = []
    for case in group:
        if case.name in errors:
            e = errors[case.name]
            results.append({"name": case.name, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"})
            continue
        n = case.images
        seconds = best[case.name, "pipeline"]
        n_steps = n // case.batch_size if case.drop_last else math.ceil(n / case.batch_size)
        step_flops = flops(case.layers)
        result = {"name": case.name, "batch": case.batch_size, "s10k": seconds * 10_000 / n,
                  "gflop_step": step_flops / 1e9, "gflops": step_flops * n_steps / seconds / 1e9,
                  "matmul": matmul[case.name]}
        for what in ("plain", "loader", "examples"):
            if (case.name, what) in best:
                result[f"{what}_s10k"] = best[case.name, what] * 10_000 / n
        results.append(result)
    examples = [r["examples_s10k"] for r in results if "examples_s10k" in r]
    for r in results:  # the reference script is the model's, so every row of the group is set against it
        if examples and "error" not in r:
            r.setdefault("examples_s10k", examples[0])
    return results


def run_estimator(test_binary: torch.Tensor, args) -> dict:
    """Importance sampling at K through a z = 20 VAE: the pipeline's estimator and the textbook loop."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=20)).to(args.device).eval()
    x = test_binary[: args.estimator_images]
    batch = 100

    def pipeline():
        for i, b in enumerate(x.split(batch)):
            estimators.importance_sampled_log_px(model, b, k=args.k, generator=torch.Generator(
                device=args.device).manual_seed(i), chunk_size=max(1, 16384 // len(b)))

    @torch.inference_mode()
    def plain():
        for i, b in enumerate(x.split(batch)):
            g = torch.Generator(device=args.device).manual_seed(i)
            mu, logvar = model.encode(b)
            chunks = []
            for k in range(0, args.k, max(1, 16384 // len(b))):
                kk = min(args.k - k, max(1, 16384 // len(b)))
                z = mu + torch.randn((kk, *mu.shape), generator=g, device=mu.device) * (0.5 * logvar).exp()
                logits = model.logits(z)  # (kk, B, 784)
                log_px_z = -F.binary_cross_entropy_with_logits(logits, b.expand_as(logits), reduction="none").sum(-1)
                chunks.append(log_px_z + log_standard_normal(z) - log_normal_diag(z, mu, logvar))
            torch.logsumexp(torch.cat(chunks), 0)

    # One batch of images: the encoder once, the decoder on K samples per image in chunks of `chunk` samples.
    chunk = min(args.k, max(1, 16384 // batch))
    full, rest = divmod(args.k, chunk)
    decoder = lambda samples, times: [Layer(samples * batch, 20, 500, "f", times),  # noqa: E731
                                      Layer(samples * batch, 500, 784, "f", times)]
    per_batch = [Layer(batch, 784, 500, "f"), Layer(batch, 500, 20, "f"), Layer(batch, 500, 20, "f")]
    per_batch += decoder(chunk, full) + (decoder(rest, 1) if rest else [])

    times, matmul = {"pipeline": math.inf, "plain": math.inf}, 0.0
    for _ in range(args.epochs):  # taking turns, as run_group's loops
        for name, fn in (("pipeline", pipeline), ("plain", plain)):
            sync(args.device)
            t0 = time.perf_counter()
            fn()
            sync(args.device)
            times[name] = min(times[name], time.perf_counter() - t0)
        matmul = max(matmul, matmul_gflops(per_batch, args.device, args.matmul_seconds))
    n_batches = len(x) / batch
    return {"name": f"IS estimator K={args.k}", "batch": batch, "s10k": times["pipeline"] * 10_000 / len(x),
            "gflop_step": flops(per_batch) / 1e9, "gflops": flops(per_batch) * n_batches / times["pipeline"] / 1e9,
            "matmul": matmul,
            "plain_s10k": times["plain"] * 10_000 / len(x)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", help="folder with the MNIST IDX files (default: random images; speed is the same)")
    ap.add_argument("--quick", action="store_true", help="fewer images and a smaller K: a few minutes on two cores")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs of each loop; the best one counts")
    ap.add_argument("--images", type=int, help="training images of the VAE, IWAE and GAN [10,000; quick: 2,000]")
    ap.add_argument("--flow-images", type=int, help="training images of the flow [2,560; quick: 512]")
    ap.add_argument("--k", type=int, help="importance samples per image in the estimator row [1000; quick: 100]")
    ap.add_argument("--estimator-images", type=int, default=200)
    ap.add_argument("--matmul-seconds", type=float, help="time each matmul loop this long [1; quick: 0.5]")
    ap.add_argument("--only", nargs="+", choices=ROWS, help=f"time only these rows' models (default: all of {ROWS})")
    ap.add_argument("--variants", action=argparse.BooleanOptionalAction,
                    help="the joint-D and torch.compile rows (compiling takes minutes) [yes; quick: no]")
    args = ap.parse_args()
    defaults = dict(images=2_000, flow_images=512, k=100, matmul_seconds=0.5, variants=False) if args.quick else \
        dict(images=10_000, flow_images=2_560, k=1000, matmul_seconds=1.0, variants=True)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    torch.set_num_threads(args.threads)
    args.device = training.select_device(args.device)

    if args.raw_dir:
        raw = data.load_raw(data.find_raw_files(args.raw_dir))
        train, test = raw["train_images"].reshape(-1, 784), raw["test_images"].reshape(-1, 784)
    else:
        g = torch.Generator().manual_seed(0)
        train = torch.randint(0, 256, (max(args.images, args.flow_images), 784), generator=g, dtype=torch.uint8)
        test = torch.randint(0, 256, (args.estimator_images, 784), generator=g, dtype=torch.uint8)
    train = train[: max(args.images, args.flow_images)].to(args.device)
    valid = train[:64]
    valid_binary = torch.bernoulli(valid.float() / 255, generator=torch.Generator(args.device).manual_seed(1))
    test_binary = torch.bernoulli(test.float().to(args.device) / 255,
                                  generator=torch.Generator(args.device).manual_seed(2))

    big = 2048 if args.device.type == "cpu" else 8192
    peak = matmul_gflops([Layer(big, big, big, "f")], args.device, args.matmul_seconds)
    results = []
    for name, group in zip(ROWS, cases(args, valid_binary, valid.float() / 255, valid)):
        if args.only and name not in args.only:
            continue
        print(f"running {', '.join(case.name for case in group)} ...", file=sys.stderr, flush=True)
        results += run_group(group, train, args)
    if not args.only or "estimator" in args.only:
        print("running the IS estimator ...", file=sys.stderr, flush=True)
        results.append(run_estimator(test_binary, args))

    where = training.describe_device(args.device)
    print(f"\n{where}; best of {args.epochs} epochs; {args.images} training images ({args.flow_images} for the "
          f"flow); load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} at the end")
    print(f"plain {big}x{big}x{big} matmul: {peak:.1f} GFLOP/s")
    header = (f"{'':24} {'batch':>5} {'s/10k':>8} {'GFLOP/step':>10} {'GFLOP/s':>8} {'matmul':>8} {'%':>4} "
              f"{'plain s/10k':>11} {'x plain':>7} {'loader':>6} {'examples s/10k':>14} {'x examples':>10}")
    print(header)
    print("-" * len(header))
    for r in results:
        if "error" in r:
            print(f"{r['name']:24} failed: {r['error']}")
            continue
        plain = (f"{r['plain_s10k']:>11.2f} {r['plain_s10k'] / r['s10k']:>7.2f}" if "plain_s10k" in r
                 else f"{'':>11} {'':>7}")
        plain += f" {r['loader_s10k']:>6.2f}" if "loader_s10k" in r else f" {'':>6}"
        if "examples_s10k" in r:
            plain += f" {r['examples_s10k']:>14.2f} {r['examples_s10k'] / r['s10k']:>10.2f}"
        print(f"{r['name']:24} {r['batch']:>5} {r['s10k']:>8.2f} {r['gflop_step']:>10.3f} {r['gflops']:>8.1f} "
              f"{r['matmul']:>8.1f} {100 * r['gflops'] / r['matmul']:>4.0f} {plain}")
    print("s/10k: seconds per epoch per 10,000 images (the estimator: per 10,000 test images at its K); "
          "x plain: the DataLoader loop's time over the pipeline's; loader: that DataLoader's epoch alone; "
          "x examples: pytorch/examples' VAE script's")


if __name__ == "__main__":
    main()
