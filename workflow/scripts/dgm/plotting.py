"""Figures of the study. Every function takes data (tensors, data frames) and an output path;
none reads results files by itself, so tests can call them on made-up inputs."""
from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "font.size": 9})


def tile(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(n, 1, H, W) images in [0, 1] -> one (rows*H', cols*W') array with white padding."""
    images = images.detach().float().cpu().clamp(0, 1)
    n, _, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    out = np.ones((ncol * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = images[i, 0].numpy()
    return out


def _save(fig, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None, title: str | None = None) -> None:
    """A sample grid as a PNG/PDF (black digits on white, as in the seed's figures)."""
    arr = tile(images, nrow)
    fig, ax = plt.subplots(figsize=(arr.shape[1] / 40, arr.shape[0] / 40 + (0.3 if title else 0)))
    ax.imshow(1 - arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    _save(fig, path)


def save_grids_over_epochs(grids: dict[int, torch.Tensor], path: str | os.PathLike, *, suptitle: str = "") -> None:
    """Several sample grids side by side, one per epoch (seed Fig. 2, 4, 8)."""
    epochs = sorted(grids)
    fig, axes = plt.subplots(1, len(epochs), figsize=(2.2 * len(epochs), 2.5), squeeze=False)
    for ax, epoch in zip(axes[0], epochs):
        ax.imshow(1 - tile(grids[epoch]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"epoch {epoch}")
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    _save(fig, path)


def manifold_latents(n: int = 20, *, eps: float = 0.05) -> torch.Tensor:
    """An n x n grid of 2-D latents at equal prior quantiles: z = Phi^-1(u), u in [eps, 1-eps]."""
    u = torch.linspace(eps, 1 - eps, n, dtype=torch.float64)
    z1 = torch.distributions.Normal(0.0, 1.0).icdf(u)
    # Rows go top to bottom from high to low z2, so the picture reads like a plot's axes.
    zz2, zz1 = torch.meshgrid(z1.flip(0), z1, indexing="ij")
    return torch.stack([zz1.reshape(-1), zz2.reshape(-1)], dim=1).float()  # (n*n, 2)


def save_manifolds(images_by_epoch: dict[int, torch.Tensor], n: int, path: str | os.PathLike) -> None:
    """Decoded 2-D manifolds at several epochs (seed Fig. 3); each entry is (n*n, 1, 28, 28)."""
    epochs = sorted(images_by_epoch)
    fig, axes = plt.subplots(1, len(epochs), figsize=(4 * len(epochs), 4.3), squeeze=False)
    for ax, epoch in zip(axes[0], epochs):
        ax.imshow(1 - tile(images_by_epoch[epoch], nrow=n, pad=0), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"epoch {epoch}")
        ax.set_axis_off()
    _save(fig, path)


def plot_elbo_curves(curves: dict[str, "pandas.DataFrame"], path: str | os.PathLike) -> None:
    """Train and validation ELBO per epoch, one panel per run (seed Fig. 1).

    ``curves`` maps a panel title (e.g. "z = 20") to a metrics frame with columns epoch,
    train_nelbo and valid_nelbo (negative ELBO in nats); the plot shows the ELBO itself.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False, sharey=False)
    for ax, (title, df) in zip(axes[0], curves.items()):
        trained = df[df["epoch"] > 0]
        ax.plot(trained["epoch"], -trained["train_nelbo"], label="train", marker=".")
        ax.plot(df["epoch"][df["epoch"] > 0], -df["valid_nelbo"][df["epoch"] > 0], label="validation", marker=".")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("ELBO (nats per image)")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)
