"""Figures of the study. Every function takes data (tensors, data frames) and an output path;
none reads results files by itself, so tests can call them on made-up inputs.

torch is imported only by the functions that make tensors: a figure job that reads CSV files
starts without it (``import torch`` alone takes ~2 s, most of such a job's time)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    import torch

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


def _save(fig, path: str | os.PathLike, *, vector: bool = True) -> None:
    """Write the figure to ``path`` (the PNG the HTML reports show) and, with ``vector``, the same
    figure beside it as a PDF for the LaTeX report; figure rules declare both outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    if vector and path.suffix != ".pdf":
        fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None, title: str | None = None,
              vector: bool = False) -> None:
    """A sample grid (black digits on white, as in the seed's figures); ``vector`` adds the PDF twin."""
    arr = tile(images, nrow)
    fig, ax = plt.subplots(figsize=(arr.shape[1] / 40, arr.shape[0] / 40 + (0.3 if title else 0)))
    ax.imshow(1 - arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    _save(fig, path, vector=vector)


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
    import torch

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


def seed_band(frames: list["pandas.DataFrame"], column: str) -> "pandas.DataFrame":
    """Per-epoch mean and sample SD of ``column`` over runs that differ only in their seed (SD 0
    for one run), over the trained epochs (epoch > 0) every run has."""
    import pandas as pd

    table = pd.concat([f.set_index("epoch")[column] for f in frames], axis=1, join="inner")
    table = table[table.index > 0]
    return pd.DataFrame({"mean": table.mean(axis=1), "sd": table.std(axis=1, ddof=1).fillna(0.0)})


def _plot_band(ax, frames, column: str, *, sign: float = 1.0, **style) -> None:
    """A line of the mean over seeds and, with several seeds, a band of ± one SD around it."""
    band = seed_band(frames, column) * [sign, 1.0]
    ax.plot(band.index, band["mean"], **style)
    if len(frames) > 1:
        ax.fill_between(band.index, band["mean"] - band["sd"], band["mean"] + band["sd"],
                        color=style.get("color"), alpha=0.25, linewidth=0)


def _seeds_title(title: str, frames: list) -> str:
    return title if len(frames) == 1 else f"{title} (mean ± SD over {len(frames)} seeds)"


def plot_elbo_curves(curves: dict[str, list["pandas.DataFrame"]], path: str | os.PathLike) -> None:
    """Train and validation ELBO per epoch, one panel per latent size (seed Fig. 1).

    ``curves`` maps a panel title (e.g. "z = 20") to the metrics frames of that setting's seeds,
    with columns epoch, train_nelbo and valid_nelbo (negative ELBO in nats); the plot shows the
    ELBO itself, the mean over seeds with a ± one SD band when there are several.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False, sharey=False)
    for ax, (title, frames) in zip(axes[0], curves.items()):
        _plot_band(ax, frames, "train_nelbo", sign=-1.0, label="train", marker=".", color="C0")
        _plot_band(ax, frames, "valid_nelbo", sign=-1.0, label="validation", marker=".", color="C1")
        ax.set_title(_seeds_title(title, frames))
        ax.set_xlabel("epoch")
        ax.set_ylabel("ELBO (nats per image)")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_estimator_sweep(sweeps: dict[str, "pandas.DataFrame"], path: str | os.PathLike, *,
                         references: dict[str, dict[str, float]] | None = None,
                         labels: dict[str, str] | None = None) -> None:
    """Mean log p(x) estimates against the number of samples K (log axis), one column per run.

    ``sweeps`` maps a column title to a long frame with columns estimator, k, repeat and log_px:
    each estimator but "elbo" is a line of the mean over repeats with a band of ± one SD; the
    "elbo" rows (mean over repeats) and ``references[title]`` ({label: value}, e.g. quadrature)
    are horizontal lines. ``labels`` renames estimators in the legend. The top row shows every
    value; the bottom row zooms in on the few nats between the ELBO and the best estimate, where
    a poor estimator's first points would squash the scale.
    """
    labels, references = labels or {}, references or {}
    fig, axes = plt.subplots(2, len(sweeps), figsize=(4.4 * len(sweeps), 6.0), squeeze=False, sharex="col",
                             constrained_layout=True)
    for col, (title, df) in enumerate(sweeps.items()):
        elbo = df.loc[df["estimator"] == "elbo", "log_px"].mean() if (df["estimator"] == "elbo").any() else None
        refs = references.get(title, {})
        lines = {name: est.groupby("k")["log_px"].agg(["mean", "std"]).fillna(0.0)
                 for name, est in df.groupby("estimator", sort=False) if name != "elbo"}
        for ax in axes[:, col]:
            for i, (name, stats) in enumerate(lines.items()):
                ax.plot(stats.index, stats["mean"], marker="o", ms=3, color=f"C{i}", label=labels.get(name, name))
                ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                color=f"C{i}", alpha=0.25, linewidth=0)
            if elbo is not None:
                ax.axhline(elbo, color="gray", ls="--", lw=1, label=labels.get("elbo", "ELBO"))
            for label, value in refs.items():
                ax.axhline(value, color="black", ls=":", lw=1.2, label=label)
            ax.set_xscale("log")
            ax.set_ylabel("mean log p(x) (nats)")
            ax.grid(alpha=0.3, which="both")
        extra = list(refs.values()) + ([elbo] if elbo is not None else [])
        top = max([s["mean"].max() for s in lines.values()] + extra)
        low = elbo if elbo is not None else min(s["mean"].iloc[-1] for s in lines.values())
        span = max(top - low, 1.0)
        axes[1, col].set_ylim(low - 0.5 * span, top + 0.25 * span)
        axes[0, col].set_title(title)
        axes[0, col].legend(fontsize=7)
        axes[1, col].set_title(f"{title}, near the top", fontsize=8)
        axes[1, col].set_xlabel("samples per image K")
    _save(fig, path)


def plot_bpd_curve(frames: list["pandas.DataFrame"], path: str | os.PathLike, *, reference: float | None = None,
                   reference_label: str = "") -> None:
    """Train and validation bits per dimension per epoch (seed Fig. 7), the mean over the seeds'
    metrics frames (columns epoch, train_bpd, valid_bpd) with a ± one SD band when there are
    several. ``reference`` draws a horizontal line (e.g. the seed's final value)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    _plot_band(ax, frames, "train_bpd", label="train", marker=".", color="C0")
    _plot_band(ax, frames, "valid_bpd", label="validation", marker=".", color="C1")
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label=reference_label or None)
    ax.set_title(_seeds_title("RealNVP", frames))
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per dimension")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_gan_curves(curves: dict[str, list["pandas.DataFrame"]], path: str | os.PathLike, *, d_equilibrium: float,
                    g_equilibrium: float) -> None:
    """GAN training curves, one column per latent size (seed Fig. 5).

    ``curves`` maps a column title to the metrics frames of that setting's seeds, with columns
    epoch, train_d_loss, train_g_loss, train_d_real and train_d_fake (mean over seeds, ± one SD
    band with several). Top: both losses with dashed reference lines at their values at the
    game's equilibrium; bottom: mean D(x) and D(G(z)) with the line D = 1/2.
    """
    fig, axes = plt.subplots(2, len(curves), figsize=(4.4 * len(curves), 5.6), squeeze=False, sharex="col")
    for col, (title, frames) in enumerate(curves.items()):
        top, bottom = axes[0, col], axes[1, col]
        _plot_band(top, frames, "train_d_loss", label=r"$\mathcal{L}_D$", color="C0")
        _plot_band(top, frames, "train_g_loss", label=r"$\mathcal{L}_G$", color="C1")
        top.axhline(d_equilibrium, color="C0", ls="--", lw=1, label=r"$\log 4$")
        top.axhline(g_equilibrium, color="C1", ls="--", lw=1, label=r"$\log 2$")
        top.set_title(_seeds_title(title, frames))
        top.set_ylabel("loss (nats)")
        _plot_band(bottom, frames, "train_d_real", label=r"mean $D(x)$", color="C2")
        _plot_band(bottom, frames, "train_d_fake", label=r"mean $D(G(z))$", color="C3")
        bottom.axhline(0.5, color="gray", ls="--", lw=1, label=r"$D = 1/2$")
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("epoch")
        bottom.set_ylabel("discriminator output")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    _save(fig, path)


def save_interpolations(rows_by_method: dict[str, torch.Tensor], path: str | os.PathLike, *,
                        suptitle: str = "") -> None:
    """Latent interpolations side by side, one panel per method (seed Fig. 6). Each entry is
    (rows, steps, 1, H, W) in [0, 1]: one interpolation per row, endpoints in the first and
    last column."""
    methods = list(rows_by_method)
    n_rows, n_steps = next(iter(rows_by_method.values())).shape[:2]
    fig, axes = plt.subplots(1, len(methods), figsize=(0.45 * n_steps * len(methods) + 0.4, 0.45 * n_rows + 0.7),
                             squeeze=False)
    for ax, method in zip(axes[0], methods):
        rows = rows_by_method[method]
        ax.imshow(1 - tile(rows.flatten(0, 1), nrow=rows.shape[1]), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(method)
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    _save(fig, path)


def plot_sample_size_bias(curves: dict[str, list[dict]], path: str | os.PathLike,
                          fd_inf: dict[str, float] | None = None) -> None:
    """FID and KID of each run's first n samples against n (log axis), one line per run
    (``curves``: label -> [{"n", "fid", "kid_mean", "kid_std"}]); KID with ± its SD over subsets.
    FID's bias shrinks as n grows, KID's estimate is unbiased at every n (Bińkowski et al. 2018).
    ``fd_inf`` (label -> FD∞, FID read at 1/n = 0, which a log axis cannot place) draws a dashed
    line across the FID panel in the run's colour."""
    fd_inf = {label: v for label, v in (fd_inf or {}).items() if v is not None and label in curves}
    fig, (ax_fid, ax_kid) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    for i, (label, points) in enumerate(curves.items()):
        n = [p["n"] for p in points]
        ax_fid.plot(n, [p["fid"] for p in points], marker="o", color=f"C{i}", label=label)
        if label in fd_inf:
            ax_fid.axhline(fd_inf[label], color=f"C{i}", linestyle="--", linewidth=0.8)
        ax_kid.errorbar(n, [p["kid_mean"] for p in points], yerr=[p["kid_std"] for p in points], marker="o",
                        color=f"C{i}", capsize=3, label=label)
    for ax, name in ((ax_fid, "FID"), (ax_kid, "KID (± SD over subsets)")):
        ax.set_xscale("log")
        ax.set_xlabel("samples n")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax_fid.set_title("FID against sample size" + (" (dashed: FD∞)" if fd_inf else ""))
    ax_kid.set_title("KID against sample size")
    ax_kid.legend(fontsize=7)
    _save(fig, path)


def plot_latent_gap(table: "pandas.DataFrame", path: str | os.PathLike, *, k: int, title: str = "") -> None:
    """The seed's §1.4b claim measured: importance-sampled and naive Monte Carlo log p(x) at ``k``
    samples per image against the latent size (left), and their gap (right, log scale), with error
    bars of ± one SD over repeats. ``table`` has one row per latent size: latent, importance,
    importance_sd, naive, naive_sd, gap, gap_sd."""
    table = table.sort_values("latent")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4), constrained_layout=True)
    for i, (name, label) in enumerate((("importance", "importance sampling from q(z|x)"),
                                       ("naive", "naive Monte Carlo from p(z)"))):
        left.errorbar(table["latent"], table[name], yerr=table[f"{name}_sd"], marker="o", ms=4, capsize=3,
                      color=f"C{i}", label=label)
    left.set_ylabel(f"mean log p(x) at K = {k} (nats)")
    right.errorbar(table["latent"], table["gap"], yerr=table["gap_sd"], marker="o", ms=4, capsize=3, color="C3")
    right.set_yscale("log")
    right.set_ylabel("importance sampling − naive MC (nats)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(list(table["latent"]), [str(z) for z in table["latent"]])
        ax.set_xlabel("latent size")
        ax.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def _panels(n: int, *, width: float):
    """A grid of n panels, three a row."""
    cols = min(n, 3)
    return plt.subplots(math.ceil(n / cols), cols, figsize=(width * cols, 2.8 * math.ceil(n / cols)), squeeze=False,
                        constrained_layout=True)


def _label_panel(ax, title: str, xlabel: str) -> None:
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)


def _finish_panels(fig, axes, n: int, path, *, title: str, legend_size: int) -> None:
    """Blank the unused panels, a legend in the first, the title, and save."""
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=legend_size)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_sweep(summary: "pandas.DataFrame", path: str | os.PathLike, *, parameter: str, metrics: list[str],
               group: str = "latent", title: str = "") -> None:
    """Each metric against a swept ``parameter`` (a column of ``summary``, the runs table over seeds:
    ``<metric>`` means and ``<metric>_sd`` SDs), one line per value of ``group``, error bars ± one SD
    over seeds."""
    fig, axes = _panels(len(metrics), width=3.6)
    numeric = summary[parameter].map(lambda v: isinstance(v, (int, float))).all()
    for ax, metric in zip(axes.flat, metrics):
        for i, (value, part) in enumerate(summary.groupby(group, sort=True)):
            part = part.sort_values(parameter) if numeric else part
            x = part[parameter] if numeric else part[parameter].astype(str)
            sd = part.get(f"{metric}_sd")
            ax.errorbar(x, part[metric], yerr=None if sd is None else sd.fillna(0.0), marker="o", ms=4, capsize=3,
                        color=f"C{i}", label=f"{group} {value}")
        _label_panel(ax, metric, parameter)
    _finish_panels(fig, axes, len(metrics), path, title=title, legend_size=7)


def plot_study_curves(curves: dict[str, list[tuple[str, "pandas.DataFrame"]]], path: str | os.PathLike, *,
                      columns: list[str], title: str = "") -> None:
    """Two studies' training curves in one figure: one panel per column, one line per run, solid for
    the new study and dashed for the baseline. ``curves`` maps "baseline"/"new" to [(run label, frame)]."""
    fig, axes = _panels(len(columns), width=3.8)
    labels = sorted({label for runs in curves.values() for label, _ in runs})
    color = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for ax, column in zip(axes.flat, columns):
        for study, style in (("baseline", "--"), ("new", "-")):
            for label, frame in curves.get(study, []):
                if column in frame:
                    ax.plot(frame["epoch"], frame[column], ls=style, color=color[label], lw=1.2,
                            label=f"{study}: {label}")
        _label_panel(ax, column, "epoch")
    _finish_panels(fig, axes, len(columns), path, title=title, legend_size=6)


def plot_ais_sweep(sweep: "pandas.DataFrame", path: str | os.PathLike, *, title: str = "") -> None:
    """Mean AIS log p(x) ± one standard error over images against the number of intermediate
    distributions (symlog axis, so that 0 — importance sampling from the start — is on it), one
    line per latent size; ``sweep`` has columns latent, steps, log_px, log_px_stderr."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4), constrained_layout=True)
    for i, (latent, part) in enumerate(sweep.groupby("latent", sort=True)):
        part = part.sort_values("steps")
        ax.errorbar(part["steps"], part["log_px"], yerr=part["log_px_stderr"], marker="o", ms=4, capsize=3,
                    color=f"C{i}", label=f"z = {latent}")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("intermediate distributions (0: importance sampling from the start)")
    ax.set_ylabel("mean log p(x) (nats)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)
