"""Sample quality: a small MNIST digit classifier, and the metrics that compare image sets in its
feature space through maintained libraries (``SampleMetrics``): FID and KID from torchmetrics,
precision/recall/density/coverage from prdc.

NOT INCEPTION FID. The features are the penultimate layer (128 units) of the CNN below, trained
on MNIST digits, not Inception-v3 pool3 (2048 units) trained on ImageNet (whose weights cannot be
downloaded on offline clusters). The values live on a different scale and must not be compared
with numbers reported elsewhere, nor across classifiers (different seeds or data give different
feature spaces). They compare the models of this pipeline with each other, embedded by the same
classifier.

Each value can carry a bootstrap standard error and 95% interval (``SampleMetrics.uncertainty``,
``ResampledMetrics``: why and which bootstrap in the comment above them), and FID against n its
extrapolation to infinitely many samples, FD∞ (``fd_infinity``).

Images are floats in [0, 1], shaped (N, 1, 28, 28) or (N, 784), for every function here.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dgm.config import ModelConfig
from dgm.training import Trainer, adam, batched_means, device_of, fit


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
    was_training, device = model.training, device_of(model)
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


# ---------------------------------------------------------------------------- FD∞

def fd_infinity(n: list[int], fid: list[float]) -> tuple[float | None, float | None]:
    """FD∞ (Chong & Forsyth, CVPR 2020): FID's bias is linear in 1/n to first order, so the
    least-squares line of FID against 1/n read at 1/n = 0 is the FID of infinitely many samples.
    Returns (intercept, its standard error from the fit's residuals); the error is None with two
    sizes (no residual left), both None with fewer than two distinct sizes. The sizes here are the
    first n of one set of samples, so the points' errors are correlated and the error is a rough one."""
    if len(set(n)) < 2 or len(n) != len(fid):
        return None, None
    x = 1.0 / torch.tensor(n, dtype=torch.float64)  # (m,)
    y = torch.tensor(fid, dtype=torch.float64)  # (m,)
    design = torch.stack([torch.ones_like(x), x], dim=1)  # (m, 2)
    gram_inv = torch.linalg.inv(design.T @ design)  # (2, 2)
    coef = gram_inv @ design.T @ y  # (2,): intercept, slope
    if len(n) == 2:
        return float(coef[0]), None
    residual_var = float(((y - design @ coef) ** 2).sum()) / (len(n) - 2)
    return float(coef[0]), math.sqrt(residual_var * float(gram_inv[0, 0]))


# ---------------------------------------------------------------------------- bootstrap
#
# Why a bootstrap: FID (a matrix square root of two sample covariances), KID's subset average and
# the k-NN measures have no usable closed-form variance, while a bootstrap only recomputes them.
# Which: the nonparametric bootstrap over both sets (samples and reference images resampled with
# replacement, independently), because both are finite random draws and both move the number.
# Intervals are normal ones, value ± 1.96 SE, because B = 50 resamples estimate an SD well but not
# 2.5% quantiles. FID's is also corrected for its bias (the resamples' mean less the original sets'
# value): at finite n FID is too large, often by more than its SE in 128 dimensions, and an
# uncorrected interval then misses the distance at infinite n (95% -> 28% in the test's
# simulation). The k-NN measures' is not: their resamples' shift comes from resampling itself (a
# resample holds ~63% of the distinct images), not from a bias of the estimate, which also makes
# their SE too large (x1.1-x2.5 against fresh draws in a Gaussian simulation): their intervals err
# wide. Copies of one image in a resample are one image: its k-NN radius leaves out itself and its
# copies (a point drawn k + 1 times would otherwise get radius 0, prdc issue #7's failure), and the
# unbiased kernel sums skip pairs of copies.
#
# Cost: Gram matrices of the sets in float32 blocks of ``chunk`` rows, serving the distances and
# KID's kernel alike (the FID moments centred first, eigenvalues in float64); memory O(chunk x N +
# B x N), never N x N. At 10,000 x 128 features and B = 50: 3.9 s and 0.4 GB on two CPU threads,
# against 8.9 s for the values themselves.

BOOTSTRAP_LEVEL = 0.95  # the intervals' nominal coverage
BOOTSTRAP_STREAM = 1  # the bootstrap's tag in its generator's seed sequence
_Z = NormalDist().inv_cdf(0.5 + BOOTSTRAP_LEVEL / 2)  # 1.96


def resample_counts(n: int, b: int, generator: torch.Generator) -> torch.Tensor:
    """How often each of n items is drawn in each of b resamples of n with replacement: (b, n) float64."""
    idx = torch.randint(n, (b, n), generator=generator)
    return torch.zeros(b, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(b, n, dtype=torch.float64))


def frechet_distance(mu1, cov1, mu2, cov2) -> torch.Tensor:
    """||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)) over leading batch dimensions. The
    eigenvalues of cov1 cov2 are those of the symmetric cov1^(1/2) cov2 cov1^(1/2): two symmetric
    eigendecompositions, several times faster than torchmetrics' general one, the same value."""
    vals, vecs = torch.linalg.eigh(cov1)
    root = (vecs * vals.clamp_min(0).sqrt()[..., None, :]) @ vecs.mT  # cov1^(1/2)
    trace_root = torch.linalg.eigvalsh(root @ cov2 @ root).clamp_min(0).sqrt().sum(-1)
    trace = cov1.diagonal(dim1=-2, dim2=-1).sum(-1) + cov2.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (mu1 - mu2).square().sum(-1) + trace - 2 * trace_root


def weighted_moments(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, F) and unbiased covariance (B, F, F), float64, of the resamples of x (N, F) that take
    row i w[b, i] times (w: (B, N) counts). Sums of squares in float32 after centring on the column
    means, one resample at a time (no (B, N, F) copy)."""
    n, centre = w.sum(1, keepdim=True), x.double().mean(0)  # (B, 1) draws per resample
    xc = (x.double() - centre).float()  # (N, F)
    mu_c = w @ xc.double() / n  # (B, F), the resamples' means less the centre
    second = torch.stack([(xc * wb.float()[:, None]).T @ xc for wb in w]).double()  # (B, F, F)
    n = n[:, :, None]  # (B, 1, 1)
    return mu_c + centre, (second - n * mu_c[:, :, None] * mu_c[:, None, :]) / (n - 1)


def resample_radii(nn_dist: torch.Tensor, nn_idx: torch.Tensor, w: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's k-NN radius in each resample (B, N): the distance at which the draws of the other
    points (not its own copies) reach k, from its L nearest neighbours (nn_dist, nn_idx: (N, L),
    ascending); -1 for a point not drawn, so that nothing falls in its ball. Where the L neighbours
    hold fewer than k draws (odds below 1e-15 per point at L = 4k + 40), the last one's distance."""
    below = torch.cat([(wb[:, nn_idx].cumsum(2) < k).sum(2) for wb in w.float().split(10)])  # (B, N)
    radii = nn_dist.T.gather(0, below.clamp_max_(nn_idx.shape[1] - 1))  # (B, N): the k-th draw's distance
    return radii.masked_fill_(w == 0, -1.0)


def _distances(gram: torch.Tensor, sq_rows: torch.Tensor, sq_cols: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (c, N) from a Gram block and the squared norms of its rows and columns:
    one formula for every block, so that equal distances (identical sets) compare equal."""
    return (sq_rows[:, None] + sq_cols[None, :] - 2 * gram).clamp_min_(0).sqrt_()


RESAMPLED = ("fid", "kid", "precision", "recall", "density", "coverage")  # what ResampledMetrics computes


class ResampledMetrics:
    """FID, KID's unbiased MMD² over all pairs, precision, recall, density and coverage (each (B,))
    of the resamples that take real row i wr[b, i] times and fake row j wf[b, j] times; a row of
    ones gives the values of the original sets (prdc's, and the MMD² that KID's subsets average).
    ``chunk`` rows of a Gram matrix and ``max_pairs`` (real, fake) pairs x B resamples at a time
    bound the memory."""

    def __init__(self, real: torch.Tensor, fake: torch.Tensor, wr: torch.Tensor, wf: torch.Tensor, *,
                 nearest_k: int, chunk: int = 1024, max_pairs: int = 250_000):
        self.real, self.fake, self.wr, self.wf = real.float(), fake.float(), wr, wf
        self.k, self.chunk, self.max_pairs = nearest_k, chunk, max_pairs
        self.dim = real.shape[1]

    def _kernel_sum(self, gram: torch.Tensor, w_rows: torch.Tensor, w_cols: torch.Tensor) -> torch.Tensor:
        """sum_ij w_rows[b, i] k(x_i, y_j) w_cols[b, j] over one Gram block, KID's kernel
        k(x, y) = (x.y / F + 1)^3: (B,)."""
        kernel = (gram / self.dim + 1.0).pow_(3)  # (c, N)
        return ((w_rows.float() @ kernel).double() * w_cols).sum(1)

    def _within(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One set against itself: the kernel's mean over pairs of draws of different images (B,),
        and each point's L nearest other points (distances, indices: (N, L))."""
        n, sqnorm = len(x), x.square().sum(1)  # (N,) float32, as in _pairwise: ties stay ties
        size = min(n - 1, 4 * self.k + 40)
        total = torch.zeros(len(w), dtype=torch.float64)
        nn_dist, nn_idx = [], []
        for start in range(0, n, self.chunk):
            rows = torch.arange(start, min(start + self.chunk, n))
            gram = x[rows] @ x.T  # (c, N)
            total += self._kernel_sum(gram, w[:, rows], w)
            self_kernel = (gram.diagonal(start).double() / self.dim + 1.0) ** 3  # (c,) k(x_i, x_i)
            total -= (w[:, rows].square() * self_kernel).sum(1)  # pairs of copies of one image
            dist = _distances(gram, sqnorm[rows], sqnorm)
            dist[torch.arange(len(rows)), rows] = math.inf  # not its own neighbour
            d, i = dist.topk(size, dim=1, largest=False)  # (c, L) ascending
            nn_dist.append(d)
            nn_idx.append(i)
        return total / (w.sum(1) ** 2 - w.square().sum(1)), torch.cat(nn_dist), torch.cat(nn_idx)

    def compute(self, names=RESAMPLED) -> dict[str, torch.Tensor]:
        """The measures among ``names`` (all by default): FID alone needs only the sets' moments, the
        others share the passes over the Gram blocks."""
        out = {}
        if "fid" in names:
            out["fid"] = frechet_distance(*weighted_moments(self.real, self.wr), *weighted_moments(self.fake, self.wf))
        return out | self._pairwise() if set(names) - {"fid"} else out

    def _pairwise(self) -> dict[str, torch.Tensor]:
        real, fake, wr, wf, k = self.real, self.fake, self.wr, self.wf, self.k
        nr, nf, b = len(real), len(fake), len(wr)
        k_rr, *nn_r = self._within(real, wr)
        k_ff, *nn_f = self._within(fake, wf)
        radius_r, radius_f = resample_radii(*nn_r, wr, k), resample_radii(*nn_f, wf, k)  # (B, Nr), (B, Nf)
        reach_r, reach_f = radius_r.amax(0), radius_f.amax(0)  # no resample's ball is larger
        k_rf = torch.zeros(b, dtype=torch.float64)
        precise = torch.zeros(b, nf)  # balls of drawn reals that hold fake j
        density = torch.zeros(b, nf)  # ... counted with their draws
        covered = torch.zeros(b, nr)  # drawn fakes in real i's ball
        recalled = torch.zeros(b, nr)  # balls of drawn fakes that hold real i
        sq_r, sq_f = real.square().sum(1), fake.square().sum(1)
        for start in range(0, nr, self.chunk):
            rows = slice(start, start + self.chunk)
            gram = real[rows] @ fake.T  # (c, Nf)
            k_rf += self._kernel_sum(gram, wr[:, rows], wf)
            dist = _distances(gram, sq_r[rows], sq_f)
            i, j = ((dist < reach_r[rows, None]) | (dist < reach_f[None, :])).nonzero(as_tuple=True)  # pairs to check
            d, i = dist[i, j], i + start
            for s in range(0, len(d), self.max_pairs):
                ii, jj, dd = i[s:s + self.max_pairs], j[s:s + self.max_pairs], d[s:s + self.max_pairs]
                in_real = (dd < radius_r[:, ii]).float()  # (B, P): fake jj in drawn real ii's ball
                precise.index_add_(1, jj, in_real)
                density.index_add_(1, jj, in_real * wr[:, ii].float())
                covered.index_add_(1, ii, in_real * (wf[:, jj] > 0))
                recalled.index_add_(1, ii, (dd < radius_f[:, jj]).float())  # real ii in drawn fake jj's ball
        return {
            "kid": k_rr + k_ff - 2 * k_rf / (wr.sum(1) * wf.sum(1)),
            "precision": (wf * (precise > 0)).sum(1) / wf.sum(1),
            "recall": (wr * (recalled > 0)).sum(1) / wr.sum(1),
            "density": (wf * density.double()).sum(1) / (k * wf.sum(1)),
            "coverage": (wr * (covered > 0)).sum(1) / wr.sum(1),
        }


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
      2020): ``prdc.compute_prdc`` with ``nearest_k`` neighbours in Euclidean feature distance;
    - with ``bootstrap`` = B > 0, each of these with a standard error ``<name>_se`` and a 95%
      interval ``<name>_ci`` from B resamples of both sets (``uncertainty``; ``kid`` for KID).

    The real features are embedded and fitted once (``reset_real_features=False``).
    """

    def __init__(self, real: torch.Tensor, *, kid_subsets: int = 100, kid_subset_size: int = 1000,
                 nearest_k: int = 5, bootstrap: int = 0, seed: int = 0):
        if real.ndim != 2 or len(real) < 2:
            raise ValueError(f"need real features shaped (N >= 2, F), got {tuple(real.shape)}")
        if bootstrap < 0 or bootstrap == 1:
            raise ValueError(f"quality.metrics.bootstrap = {bootstrap}: 0 (no errors) or at least 2 resamples")
        self.real = real.detach().cpu().double()  # (N, F)
        self.kid_subset_size, self.nearest_k, self.seed = kid_subset_size, nearest_k, seed
        self.kid_subsets, self.bootstrap = kid_subsets, bootstrap
        # torchmetrics and prdc load here, not with this module: importing them costs seconds (torchvision,
        # scipy.signal, sklearn) that the jobs using only the classifier and its features need not pay
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

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
        from torchmetrics.image.kid import KernelInceptionDistance  # loaded by __init__: a lookup

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
        from prdc import compute_prdc

        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
            out = compute_prdc(self.real.float().numpy(), fake.detach().cpu().float().numpy(), self.nearest_k)
        return {k: float(v) for k, v in out.items()}

    def uncertainty(self, fake: torch.Tensor, values: dict) -> dict:
        """Standard errors and 95% intervals of ``values`` (this object's metrics of ``fake``, all or
        some: fid, kid_mean with kid_std, precision, recall, density, coverage) from
        ``bootstrap`` resamples of the real and the fake features, drawn from a generator of their
        own (``seed``'s bootstrap stream: the same resamples of the real set for every model):

        - FID: SE of the resamples' FIDs; interval FID - bias ± 1.96 SE, for the distance at
          infinite n (bias: their mean minus the original sets' value);
        - KID: SE from the resamples' MMD² over all pairs (what KID's subsets average) and KID's
          own subset noise, sqrt(SE² + kid_std² / kid_subsets); interval KID ± 1.96 SE;
        - precision, recall, density, coverage: SE of the resamples' values; interval value ± 1.96
          SE. No bias correction: a resample holds about 63% of the distinct images, which moves
          these k-NN measures without being a bias of the estimate, and makes their SE too large
          (x1.1 to x2.5 in a Gaussian simulation): these intervals err wide.

        Intervals are cut at the measure's range (FID, density >= 0; proportions in [0, 1])."""
        fake = fake.detach().cpu().double()
        g = bootstrap_generator(self.seed)
        nr, nf = len(self.real), len(fake)
        ones = torch.ones(1, nr, dtype=torch.float64), torch.ones(1, nf, dtype=torch.float64)
        wr = torch.cat([ones[0], resample_counts(nr, self.bootstrap, g)])  # row 0: the original sets
        wf = torch.cat([ones[1], resample_counts(nf, self.bootstrap, g)])
        names = [m for m in RESAMPLED if (m if m != "kid" else "kid_mean") in values]
        reps = ResampledMetrics(self.real, fake, wr, wf, nearest_k=self.nearest_k).compute(names)
        out = {"bootstrap": self.bootstrap}
        if "fid" in values:
            fid = reps["fid"]
            out |= _interval("fid", values["fid"], fid[1:].std(), bias=fid[1:].mean() - fid[0], low=0.0)
        if "kid_mean" in values:
            kid_var = reps["kid"][1:].var() + values["kid_std"] ** 2 / self.kid_subsets
            out |= _interval("kid", values["kid_mean"], kid_var.sqrt())
        for name, high in (("precision", 1.0), ("recall", 1.0), ("density", None), ("coverage", 1.0)):
            if name in values:
                out |= _interval(name, values[name], reps[name][1:].std(), low=0.0, high=high)
        return out

    def __call__(self, fake: torch.Tensor) -> dict:
        """Every metric of the fake features (M, F) against the real ones, with their errors when
        ``bootstrap`` > 0."""
        values = {"fid": self.fid(fake), **self.kid(fake), **self.prdc(fake)}
        return values | self.uncertainty(fake, values) if self.bootstrap else values


def bootstrap_generator(seed: int) -> torch.Generator:
    """The bootstrap's own CPU generator under ``seed``: a stream apart from KID's subsets (the
    global RNG seeded with ``seed`` itself) and from sampling."""
    state = np.random.SeedSequence((int(seed), BOOTSTRAP_STREAM)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _interval(name: str, value: float, se, *, bias=0.0, low: float | None = None,
              high: float | None = None) -> dict:
    """{name_se, name_ci}: the normal interval (value - bias) ± z SE, cut to [low, high] (a single
    point where it lies wholly outside); None where the SE is not finite (a degenerate set)."""
    se, bias = float(se), float(bias)
    if not (math.isfinite(se) and math.isfinite(bias)):
        return {f"{name}_se": None, f"{name}_ci": None}
    lo, hi = value - bias - _Z * se, value - bias + _Z * se
    if low is not None:
        lo, hi = max(lo, low), max(hi, low)
    if high is not None:
        lo, hi = min(lo, high), min(hi, high)
    return {f"{name}_se": se, f"{name}_ci": [lo, hi]}


