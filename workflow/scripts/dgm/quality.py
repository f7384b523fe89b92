"""Sample quality: a small MNIST digit classifier and the Fréchet distance in its feature space.

Fréchet Inception Distance: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge
to a Local Nash Equilibrium", NeurIPS 2017 (arXiv:1706.08500). Numerics follow pytorch-fid
(github.com/mseitzer/pytorch-fid, ``calculate_frechet_distance``).

NOT INCEPTION FID. ``classifier_fid`` embeds images with the penultimate layer (128 units) of the
CNN below, trained on MNIST digits, not with Inception-v3 pool3 (2048 units) trained on ImageNet.
Its values live on a different scale and must not be compared with FIDs reported elsewhere,
nor across classifiers (different seeds or data give different feature spaces). They compare the
models of this pipeline with each other, embedded by the same classifier.

Images are floats in [0, 1], shaped (N, 1, 28, 28) or (N, 784), for every function here.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from dgm.config import ModelConfig
from dgm.training import Trainer, batched_means, fit


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
        super().__init__(model, {"optimizer": torch.optim.Adam(model.parameters(), lr=lr)})
        self.valid, self.eval_batch = valid, eval_batch

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator) -> dict:
        x, y = batch  # (b, 1, 28, 28) in [0, 1], (b,) digits
        self.model.train()
        logits = self.model(x)  # (b, 10)
        loss = F.cross_entropy(logits, y)
        self.optimizers["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["optimizer"].step()
        return {"loss": loss.item(), "accuracy": (logits.argmax(1) == y).double().mean().item()}

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


def feature_statistics(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), in float64 (as pytorch-fid)."""
    f = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    f = f.astype(np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features shaped (N >= 2, F), got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, cov1, mu2, cov2, eps: float = 1e-6) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2):

        ||mu1 - mu2||^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2})

    in float64 with ``scipy.linalg.sqrtm``. As in pytorch-fid, if the product is singular or its
    root not finite, ``eps`` is added to both diagonals; unlike pytorch-fid it is then also kept
    in the trace terms, so the result is the exact distance of the regularised pair (pytorch-fid
    is off by -2 eps F there, which makes FID(a, a) negative). A numerically complex root with
    imaginary diagonal above 1e-3 raises ``ValueError``; smaller imaginary parts are dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise ValueError(f"shapes disagree: mu {mu1.shape}, {mu2.shape}; cov {cov1.shape}, {cov2.shape}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    if singular or not np.isfinite(covmean).all():
        offset = np.eye(cov1.shape[0]) * eps
        cov1, cov2 = cov1 + offset, cov2 + offset
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)

    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"matrix square root has imaginary part {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def classifier_fid(model: Classifier, images_a: torch.Tensor, images_b: torch.Tensor,
                   batch_size: int = 1000) -> float:
    """Fréchet distance between two image sets in ``model``'s feature space (NOT Inception FID:
    see the module docstring). Use thousands of images per set: the covariance is F x F = 128 x 128,
    and the estimate is biased upwards for small sets."""
    stats_a = feature_statistics(features(model, images_a, batch_size))
    stats_b = feature_statistics(features(model, images_b, batch_size))
    return frechet_distance(*stats_a, *stats_b)
