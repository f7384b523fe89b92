"""Fully connected GAN with the non-saturating generator loss.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661).
The architecture is the seed study's (§2.5): generator z -> 128 -> 256 -> 512 -> 1024 -> 784 with
LeakyReLU(0.2), batch norm on the three wider hidden layers and a tanh output; discriminator
784 -> 512 -> 256 -> 1 with LeakyReLU(0.2) and dropout 0.3. The discriminator returns logits
(the seed squashes with a sigmoid; the losses here use the equivalent, numerically stable
``binary_cross_entropy_with_logits``).

Pixels: real images enter every public method as floats in [0, 1] and are mapped to [-1, 1]
(the range of the generator's tanh) inside; ``sample`` and ``decode`` map back to [0, 1], so
evaluation code sees the same pixel range for every model.

Objectives (seed eqs. 43-44), both means over the batch, each drawing fresh noise:
    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
    L_G = -E_z[log D(G(z))]        (non-saturating, seed §2.4)
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dgm.config import ModelConfig
from dgm.training import Trainer, adam

# At the optimum of the game p_g = p_data, so the best discriminator outputs D = 1/2 everywhere
# (seed §2.3). Then L_D = -log(1/2) - log(1 - 1/2) = 2 log 2 = log 4 and L_G = -log(1/2) = log 2.
# (The seed's Fig. 5 caption writes L_G = log 1/2, a sign slip: a cross-entropy is never negative.)
# V(D, G) = -L_D = -log 4 is the seed's eq. 42.
EQUILIBRIUM_D_LOSS = math.log(4.0)
EQUILIBRIUM_G_LOSS = math.log(2.0)
# A discriminator "wins outright" when D(x) > 1 - DOMINANCE_TOL and D(G(z)) < DOMINANCE_TOL; for
# DOMINANCE_RUN evaluations in a row, the generator has no gradient left and the run has failed.
DOMINANCE_TOL = 0.01
DOMINANCE_RUN = 3

@dataclass(frozen=True)
class GANConfig(ModelConfig):
    latent_dim: int = 100  # size of z ~ N(0, I); seed §2.1 calls it d
    hidden_dim: int = 128  # generator's first hidden width h; it doubles three times to 8h = 1024
    data_dim: int = 784  # flattened 28x28 image
    negative_slope: float = 0.2  # LeakyReLU slope in both networks (seed §2.5: alpha = 0.2)
    dropout: float = 0.3  # dropout after each hidden layer of the discriminator (seed §2.5)

    KIND = "GAN"
    POSITIVE_INTS = ("latent_dim", "hidden_dim", "data_dim")
    UNIT_INTERVAL = ("negative_slope", "dropout")


def to_tanh_range(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1], (B, 784) or (B, 1, 28, 28) -> flat (B, 784) in [-1, 1]."""
    return x.flatten(1) * 2.0 - 1.0


def from_tanh_range(x: torch.Tensor) -> torch.Tensor:
    """Flat generator outputs (B, 784) in [-1, 1] -> images (B, 1, 28, 28) in [0, 1]."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0).view(-1, 1, 28, 28)


class Generator(nn.Module):
    """z (B, Z) -> pixels (B, 784) in [-1, 1]."""

    def __init__(self, c: GANConfig):
        super().__init__()
        h, act = c.hidden_dim, lambda: nn.LeakyReLU(c.negative_slope)
        self.net = nn.Sequential(
            nn.Linear(c.latent_dim, h), act(),  # no batch norm on the first layer (seed §2.5)
            nn.Linear(h, 2 * h), nn.BatchNorm1d(2 * h), act(),
            nn.Linear(2 * h, 4 * h), nn.BatchNorm1d(4 * h), act(),
            nn.Linear(4 * h, 8 * h), nn.BatchNorm1d(8 * h), act(),
            nn.Linear(8 * h, c.data_dim), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, 784)


class Discriminator(nn.Module):
    """Pixels (B, 784) in [-1, 1] -> logits (B,) of "x is real"."""

    def __init__(self, c: GANConfig):
        super().__init__()
        h, act = c.hidden_dim, lambda: nn.LeakyReLU(c.negative_slope)
        self.net = nn.Sequential(
            nn.Linear(c.data_dim, 4 * h), act(), nn.Dropout(c.dropout),
            nn.Linear(4 * h, 2 * h), act(), nn.Dropout(c.dropout),
            nn.Linear(2 * h, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B,)


class GAN(nn.Module):
    CONFIG = GANConfig
    PARTS = ("generator", "discriminator")  # trained apart: the report counts their parameters apart

    def __init__(self, config: GANConfig | None = None, **kwargs):
        super().__init__()
        if config is not None and kwargs:
            raise ValueError(f"pass either a GANConfig or keyword options, not both: {sorted(kwargs)}")
        self.config = config or GANConfig.from_dict(kwargs)
        self.latent_dim = self.config.latent_dim
        self.generator = Generator(self.config)
        self.discriminator = Discriminator(self.config)

    def _noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)  # (n, Z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B,) that images x in [0, 1] are real; sigmoid gives D(x)."""
        return self.discriminator(to_tanh_range(x))

    def discriminator_loss(self, x_real: torch.Tensor, generator: torch.Generator | None = None):
        """L_D on a real batch and as many fresh fakes; gradients reach only the discriminator.
        Returns the loss and floats ``d_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z))."""
        loss, stats = self._discriminator_loss(x_real, generator)
        return loss, {k: v.item() for k, v in stats.items()}

    def _discriminator_loss(self, x_real, generator):
        # discriminator_loss with its statistics as detached 0-dim tensors on the device (train_step's)
        real = to_tanh_range(x_real)  # (B, 784)
        with torch.no_grad():  # fakes are constants for D's update: no graph through G
            fake = self.generator(self._noise(real.shape[0], generator))  # (B, 784)
        logit_real = self.discriminator(real)  # (B,)
        logit_fake = self.discriminator(fake)  # (B,)
        # -log D(x) = BCE(logit, 1); -log(1 - D(G(z))) = BCE(logit, 0)
        loss = (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
        with torch.no_grad():
            return loss, {"d_loss": loss.detach(), "d_real": torch.sigmoid(logit_real).mean(),
                          "d_fake": torch.sigmoid(logit_fake).mean()}

    def generator_loss(self, batch_size: int, generator: torch.Generator | None = None):
        """Non-saturating L_G on fresh fakes. Backward also fills D's grads unless D is frozen.
        Returns the loss and floats ``g_loss`` and ``d_fake`` = mean D(G(z))."""
        loss, stats = self._generator_loss(batch_size, generator)
        return loss, {k: v.item() for k, v in stats.items()}

    def _generator_loss(self, batch_size, generator):
        # generator_loss with its statistics as detached 0-dim tensors on the device (train_step's)
        logit_fake = self.discriminator(self.generator(self._noise(batch_size, generator)))  # (B,)
        loss = F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake))
        with torch.no_grad():
            return loss, {"g_loss": loss.detach(), "d_fake": torch.sigmoid(logit_fake).mean()}

    def train_step(self, x_real: torch.Tensor, opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer,
                   generator: torch.Generator | None = None) -> dict:
        """One discriminator update, then one generator update (seed §2.5: objectives separated,
        fresh samples from G for each). D goes first so that G's step is taken against the
        discriminator that has just seen this batch. The caller sets train mode.

        Returns ``d_loss``, ``d_real``, ``d_fake`` (D's step, before its update) and ``g_loss`` (G's
        step, after D's update) as 0-dim tensors on the device: ``dgm.training.fit`` reads them once
        per epoch, so a GPU never waits for the host between steps.
        """
        opt_d.zero_grad(set_to_none=True)
        loss_d, stats = self._discriminator_loss(x_real, generator)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)  # D is a fixed critic here: skip its weight grads
        try:
            loss_g, stats_g = self._generator_loss(x_real.shape[0], generator)
            loss_g.backward()
        finally:
            self.discriminator.requires_grad_(True)
        opt_g.step()
        return {**stats, "g_loss": stats_g["g_loss"]}

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [0, 1] for given latents z (B, Z), batch norm in eval mode."""
        was_training = self.generator.training
        self.generator.eval()  # running statistics: a sample must not depend on its batch-mates
        try:
            return from_tanh_range(self.generator(z))
        finally:
            self.generator.train(was_training)

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [0, 1] from z ~ N(0, I)."""
        return self.decode(self._noise(n, generator))

    def describe(self) -> dict:
        return {"class": "GAN", **asdict(self.config)}


def dominated_epochs(d_real, d_fake, *, tol: float = DOMINANCE_TOL, run: int = DOMINANCE_RUN) -> list[int]:
    """Positions in the sequences of mean discriminator outputs on real (``d_real``) and generated
    (``d_fake``) images at which the discriminator has won outright, D(x) > 1 - tol and
    D(G(z)) < tol, for ``run`` consecutive evaluations up to and including that one. For a
    metrics.csv, whose rows start at epoch 0, the positions are the epochs."""
    if len(d_real) != len(d_fake):
        raise ValueError(f"d_real has {len(d_real)} values and d_fake {len(d_fake)}")
    if run < 1:
        raise ValueError(f"run must be at least 1, got {run}")
    out, streak = [], 0
    for i, (real, fake) in enumerate(zip(d_real, d_fake)):
        streak = streak + 1 if real > 1 - tol and fake < tol else 0
        if streak >= run:
            out.append(i)
    return out


def make_optimizers(gan: GAN, *, lr: float = 5e-4, betas: tuple[float, float] = (0.9, 0.999)):
    """(opt_d, opt_g): one Adam per network with the seed's fixed lr 5e-4 (§2.5). The seed does
    not state Adam's betas, so torch's defaults are kept rather than DCGAN's (0.5, 0.999)."""
    opt_d = adam(gan.discriminator.parameters(), lr=lr, betas=betas)
    opt_g = adam(gan.generator.parameters(), lr=lr, betas=betas)
    return opt_d, opt_g


class GANTrainer(Trainer):
    """One discriminator and one generator Adam step per minibatch; the ``dgm.training.fit``
    plug-in for the GAN (a ``dgm.training.Trainer``).

    Training rows (prefixed ``train_`` by ``fit``) average ``GAN.train_step``'s ``d_loss``,
    ``g_loss``, ``d_real`` = mean D(x) and ``d_fake`` = mean D(G(z)) over the epoch, in train mode
    (dropout on, batch statistics). ``evaluate`` gives the same four quantities in eval mode on
    the held-out validation images against fakes from a *fixed* noise draw, so the ``valid_``
    columns move only because the networks do; it never draws from the training stream.
    """

    def __init__(self, model: GAN, *, lr: float, betas: tuple[float, float], valid_x: torch.Tensor,
                 n_samples: int = 25, eval_batch: int = 1000, eval_seed: int = 1, snapshot_seed: int = 0):
        opt_d, opt_g = make_optimizers(model, lr=lr, betas=tuple(betas))
        super().__init__(model, {"opt_d": opt_d, "opt_g": opt_g})
        self.valid_x = valid_x  # (N, 784) floats in [0, 1] on the model's device
        self.n_samples, self.eval_batch = n_samples, eval_batch
        self.eval_seed, self.snapshot_seed = eval_seed, snapshot_seed

    def train_step(self, x: torch.Tensor, generator: torch.Generator) -> dict:
        self.model.train()
        return self.model.train_step(x, self.optimizers["opt_d"], self.optimizers["opt_g"], generator)

    @torch.inference_mode()
    def evaluate(self, generator: torch.Generator) -> dict:
        was_training = self.model.training
        self.model.eval()
        g = torch.Generator(device=generator.device).manual_seed(self.eval_seed)
        sums = {}  # float64 sums on the device, read once
        for x in self.valid_x.split(self.eval_batch):  # (b, 784)
            logit_real = self.model.discriminate(x)  # (b,)
            logit_fake = self.model.discriminate(self.model.sample(len(x), generator=g))  # (b,)
            bce = F.binary_cross_entropy_with_logits
            batch = {"d_loss": (bce(logit_real, torch.ones_like(logit_real), reduction="sum")
                                + bce(logit_fake, torch.zeros_like(logit_fake), reduction="sum")),
                     "g_loss": bce(logit_fake, torch.ones_like(logit_fake), reduction="sum"),
                     "d_real": torch.sigmoid(logit_real).sum(), "d_fake": torch.sigmoid(logit_fake).sum()}
            sums = {k: sums.get(k, 0.0) + v.double() for k, v in batch.items()}
        self.model.train(was_training)
        values = torch.stack(list(sums.values())).tolist()
        out = {k: v / len(self.valid_x) for k, v in zip(sums, values)}
        self._warn_if_dominated(out)
        return out

    dominance_epochs: int = DOMINANCE_RUN  # consecutive evaluations won outright before a warning
    dominance_tol: float = DOMINANCE_TOL

    def _warn_if_dominated(self, metrics: dict) -> None:
        """Log a warning when the discriminator has won outright for ``dominance_epochs`` evaluations
        in a row (``dominated_epochs``): the generator then gets no gradient and its samples stop
        improving (a failed run). Once per such streak."""
        self._outputs = getattr(self, "_outputs", []) + [(metrics["d_real"], metrics["d_fake"])]
        d_real, d_fake = zip(*self._outputs)
        dominated = dominated_epochs(d_real, d_fake, tol=self.dominance_tol, run=self.dominance_epochs)
        last = len(self._outputs) - 1
        if dominated and dominated[-1] == last and last - 1 not in dominated:
            logging.getLogger("dgm").warning(
                "the discriminator has won outright for %d evaluations in a row (validation D(x) = %.4f, "
                "D(G(z)) = %.2g): the generator has stopped learning; look at gan.lr", self.dominance_epochs,
                metrics["d_real"], metrics["d_fake"])
