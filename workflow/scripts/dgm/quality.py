"""Sample quality: a small MNIST digit classifier, and the metrics that compare image sets in its
feature space through maintained libraries (``SampleMetrics``): FID and KID from torchmetrics,
precision/recall/density/coverage from prdc.

NOT INCEPTION FID. The features are the penultimate layer (128 units) of the CNN below, trained
on MNIST digits, not Inception-v3 pool3 (2048 units) trained on ImageNet (whose weights cannot be
downloaded on offline clusters). The values live on a different scale and must not be compared
with numbers reported elsewhere, nor across classifiers (different seeds or data give different
feature spaces). They compare the models of this pipeline with each other, embedded by the same
classifier.

Images are floats in [0, 1], shaped (N, 1, 28, 28) or (N, 784), for every function here.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from prdc import compute_prdc
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from dgm.config import ModelConfig
from dgm.training import Trainer, adam, batched_means, fit


@dataclass(frozen=True)
class ClassifierConfig(ModelConfig):
    channels1: int = 32  # filters of the first 3x3 convolution
    channels2: int = 64  # filters of the second 3x3 convolution
    hidden_dim: int = 128  # penultimate width: the FID feature dimension
    dropout: float = 0.5  # before the last layer; features are read before it, in eval mode
    num_classes: int = 10  # digits

    KIND = "classifier"
    POSITIVE_INTS = ("channels1", "channels2", "hidden_dim", "num_classes")
    UNIT_INTERVAL = ("dropout",)


class Classifier(nn.Module):
    """conv3x3(32)-pool-conv3x3(64)-pool-fc(128)-fc(10). A pool after each convolution (rather
    than one after both) quarters the second convolution's cost, which dominates on a CPU."""

    CONFIG = ClassifierConfig

    def __init__(self, config: ClassifierConfig | None = None, **kwargs):
        super().__init__()
        if config is not None and kwargs:
            raise ValueError(f"pass either a ClassifierConfig or keyword options, not both: {sorted(kwargs)}")
        self.config = c = config or ClassifierConfig.from_dict(kwargs)
        self.body = nn.Sequential(
            nn.Conv2d(1, c.channels1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, C1, 14, 14)
            nn.Conv2d(c.channels1, c.channels2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, C2, 7, 7)
            nn.Flatten(),
            nn.Linear(c.channels2 * 7 * 7, c.hidden_dim), nn.ReLU(),  # (B, H): the features
        )
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.hidden_dim, c.num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (B, H) for images in [0, 1]."""
        return self.body(x.reshape(-1, 1, 28, 28) * 2.0 - 1.0)  # centred pixels train faster

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, 10) logits

    def describe(self) -> dict:
        return {"class": "Classifier", **asdict(self.config)}


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class ClassifierTrainer(Trainer):
    """Adam on the cross-entropy of (images, labels) minibatches; the ``dgm.training.fit`` plug-in
    of the classifier. ``evaluate`` gives the validation ``loss`` and ``accuracy`` (eval mode,
    dropout off); without validation data, nothing. No snapshots."""

    n_samples, snapshot_weights = 0, False

    def __init__(self, model: Classifier, *, lr: float, valid: tuple[torch.Tensor, torch.Tensor] | None = None,
                 eval_batch: int = 1000):
        super().__init__(model, {"optimizer": adam(model.parameters(), lr=lr)})
        self.valid, self.eval_batch = valid, eval_batch

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator) -> dict:
        x, y = batch  # (b, 1, 28, 28) in [0, 1], (b,) digits
        self.model.train()
        logits = self.model(x)  # (b, 10)
        loss = F.cross_entropy(logits, y)
        self.optimizers["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["optimizer"].step()
        # Device tensors, read by fit once per epoch (no host sync per step on a GPU).
        return {"loss": loss.detach(), "accuracy": (logits.argmax(1) == y).double().mean()}

    @torch.inference_mode()
    def evaluate(self, generator: torch.Generator) -> dict:
        if self.valid is None:
            return {}
        self.model.eval()

        def terms(x, y):
            logits = self.model(x)
            return {"loss": F.cross_entropy(logits, y, reduction="none"), "accuracy": (logits.argmax(1) == y).double()}

        return batched_means(terms, self.valid, self.eval_batch)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, *, epochs: int, batch_size: int,
                     lr: float, generator: torch.Generator, device: torch.device | str = "cpu",
                     valid: tuple[torch.Tensor, torch.Tensor] | None = None, eval_batch: int = 1000,
                     config: ClassifierConfig | None = None, checkpoint_path=None, metrics_path=None,
                     fingerprint: str = "") -> tuple[Classifier, list[dict]]:
    """Train a ``Classifier`` with Adam through ``dgm.training.fit`` on images (N, 1, 28, 28) or
    (N, 784) in [0, 1] and integer labels (N,); returns it in eval mode on ``device`` and fit's
    per-epoch rows (epoch 0 = untrained): ``train_loss``, ``train_accuracy`` (mean training
    cross-entropy and accuracy on the dropout-perturbed batches), ``valid_loss`` and
    ``valid_accuracy`` on ``valid`` = (images, labels) when given, seconds.

    Deterministic given ``generator`` (on one device and torch build): a seed drawn from it
    initialises the weights and drives dropout inside ``torch.random.fork_rng``, so the caller's
    global RNG state is left as it was; the generator then orders the minibatches.
    ``checkpoint_path``, ``metrics_path`` and ``fingerprint`` are fit's (resume, CSV).
    """
    device = torch.device(device)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    x_all = images.reshape(-1, 1, 28, 28).to(device, torch.float32)  # (N, 1, 28, 28)
    y_all = labels.to(device, torch.long)  # (N,)
    if valid is not None:
        valid = (valid[0].reshape(-1, 1, 28, 28).to(device, torch.float32), valid[1].to(device, torch.long))
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        model = Classifier(config).to(device)
        trainer = ClassifierTrainer(model, lr=lr, valid=valid, eval_batch=eval_batch)
        rows, _ = fit(trainer, (x_all, y_all), epochs=epochs, batch_size=batch_size, generator=generator,
                      checkpoint_path=checkpoint_path, metrics_path=metrics_path, fingerprint=fingerprint,
                      device=device)
    return model.eval(), rows


@torch.inference_mode()
def _batched(fn: Callable, model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """fn(model, batch) over batches in eval mode (restoring the mode), concatenated on the CPU."""
    was_training, device = model.training, _device_of(model)
    model.eval()
    try:
        return torch.cat([fn(model, b.to(device, torch.float32)).cpu() for b in images.split(batch_size)])
    finally:
        model.train(was_training)


def predict(model: Classifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted digits (N,) for images in [0, 1]."""
    return _batched(lambda m, b: m(b).argmax(1), model, images, batch_size)


def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of images whose predicted digit equals the label."""
    return (predict(model, images, batch_size) == labels.cpu()).double().mean().item()


def features(model: Classifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate-layer features (N, F) on the CPU, in eval mode (dropout off)."""
    return _batched(lambda m, b: m.features(b), model, images, batch_size)


class _Features(nn.Module):
    """The metrics' "feature extractor" when features are computed beforehand: the identity on
    (N, F) features, with the ``num_features`` torchmetrics asks for."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats


class SampleMetrics:
    """Sample-quality metrics of image sets against one real set, all in the classifier's features:

    - ``fid``: Fréchet distance of Gaussian fits (Heusel et al. 2017), torchmetrics'
      ``FrechetInceptionDistance`` on these features, in float64;
    - ``kid_mean`` ± ``kid_std``: kernel distance (Bińkowski et al. 2018), torchmetrics'
      ``KernelInceptionDistance``: the unbiased cubic-kernel MMD² averaged over ``kid_subsets``
      random subsets of ``kid_subset_size`` (fewer where a set is smaller: ``kid_subset_size`` in
      the result says how many), its SD over the subsets; the subsets are drawn from ``seed``;
    - ``precision``, ``recall`` (Kynkäänniemi et al. 2019), ``density``, ``coverage`` (Naeem et al.
      2020): ``prdc.compute_prdc`` with ``nearest_k`` neighbours in Euclidean feature distance.

    The real features are embedded and fitted once (``reset_real_features=False``).
    """

    def __init__(self, real: torch.Tensor, *, kid_subsets: int = 100, kid_subset_size: int = 1000,
                 nearest_k: int = 5, seed: int = 0):
        if real.ndim != 2 or len(real) < 2:
            raise ValueError(f"need real features shaped (N >= 2, F), got {tuple(real.shape)}")
        self.real = real.detach().cpu().double()  # (N, F)
        self.kid_subset_size, self.nearest_k, self.seed = kid_subset_size, nearest_k, seed
        extractor = _Features(real.shape[1])
        with warnings.catch_warnings():  # KID keeps every feature: 10,000 x 128 floats are no burden
            warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all")
            KernelInceptionDistance(feature=extractor)  # fail here, not after sampling, on a bad option
        self._fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False)
        self._fid.update(self.real, real=True)
        self._kid_options = {"feature": extractor, "subsets": kid_subsets, "reset_real_features": False}

    def fid(self, fake: torch.Tensor) -> float:
        self._fid.reset()
        self._fid.update(fake.detach().cpu().double(), real=False)
        return float(self._fid.compute())

    def kid(self, fake: torch.Tensor) -> dict:
        size = min(self.kid_subset_size, len(self.real), len(fake))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all")
            metric = KernelInceptionDistance(subset_size=size, **self._kid_options)
        metric.update(self.real, real=True)
        metric.update(fake.detach().cpu().double(), real=False)
        with torch.random.fork_rng(devices=[]):  # torchmetrics draws its subsets from the global RNG
            torch.manual_seed(self.seed)
            mean, std = metric.compute()
        return {"kid_mean": float(mean), "kid_std": float(std), "kid_subset_size": size}

    def prdc(self, fake: torch.Tensor) -> dict:
        if min(len(self.real), len(fake)) <= self.nearest_k:
            raise ValueError(f"quality.metrics.nearest_k = {self.nearest_k} needs more than that many images per set")
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
            out = compute_prdc(self.real.float().numpy(), fake.detach().cpu().float().numpy(), self.nearest_k)
        return {k: float(v) for k, v in out.items()}

    def __call__(self, fake: torch.Tensor) -> dict:
        """Every metric of the fake features (M, F) against the real ones."""
        return {"fid": self.fid(fake), **self.kid(fake), **self.prdc(fake)}


