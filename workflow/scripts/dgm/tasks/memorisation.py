"""Rule memorisation as a plain function: does a model that samples generalise, or copy its training
set? Its samples, the training split and the held-out test split are embedded by the digit
classifier of sample quality (``dgm.quality.features``: 128-d penultimate features, the same space
as FID), and ``dgm.memorisation``'s three checks compare samples with held-out images:
nearest-training-neighbour distances, the C_T data-copying test (Meehan et al. 2020) and
authenticity (Alaa et al. 2022). Nothing here switches on the model name: every model is sampled
through ``sample(n, generator=...)`` (``dgm.tasks.quality.draw_samples``).

memorisation.json holds the numbers, one verdict per check (a word of
``dgm.memorisation.VERDICTS``: the report's templates say what it means) and the classifier file's
sha256, so that numbers from different feature networks are never compared unawares.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from dgm import data, io, training
from dgm import memorisation as mem
from dgm.external import sha256
from dgm.models import from_checkpoint, load_model
from dgm.quality import features
from dgm.tasks.quality import draw_samples, gray_images, load_real_features, real_features

log = logging.getLogger("dgm")
CHECKS = ("nearest_neighbour", "data_copying", "authenticity")


def memorisation(*, model_path: str, classifier_path: str, splits_path: str, output_path: str, figure_path: str,
                 n_samples: int, seed: int = 0, batch_size: int = 1000, device: str = "auto", cells: int | None = None,
                 min_generated: int = 20, figure_pairs: int = 8, flag_z: float = mem.FLAG_Z,
                 features_path: str | None = None) -> dict:
    """The three checks on ``n_samples`` samples (drawn with ``seed``; the k-means cells of C_T are
    seeded with it too) of the model in ``model_path``, against the whole training split and the
    whole test split; memorisation.json at ``output_path`` and, at ``figure_path`` (PNG and its PDF
    twin), the ``figure_pairs`` samples nearest to the training set beside their nearest training
    images. ``cells`` and ``min_generated`` are C_T's k and its least number of samples in a cell;
    ``cells`` defaults to ``default_cells(n_samples)``. ``flag_z``: how many null standard
    deviations from held-out images flag a model. ``features_path``: the real splits' features
    written by train_classifier (``dgm.tasks.quality.real_features``); without it they are
    embedded here, in the same ``batch_size`` batches."""
    t0 = time.perf_counter()
    cells = default_cells(n_samples) if cells is None else cells
    dev = training.select_device(device)
    splits = data.load_splits(splits_path)
    ckpt = torch.load(model_path, map_location="cpu", weights_only=True)  # its description names an external model
    model, classifier = from_checkpoint(ckpt, dev, source=model_path), load_model(classifier_path, dev)
    description = ckpt["model"]
    images = draw_samples(model, n_samples, seed=seed, batch_size=batch_size)  # (m, 1, 28, 28) on the CPU
    t_sampled = time.perf_counter()
    train_images = gray_images(splits, "train")
    real = (load_real_features(features_path, splits) if features_path is not None
            else real_features(classifier, splits, batch_size, names=("train", "test")))
    gen, train, test = (x.to(dev) for x in (features(classifier, images, batch_size), real["train"], real["test"]))
    # (m | l | n, F)
    t_embedded = time.perf_counter()

    d_gen, nn_gen = mem.nearest_neighbours(gen, train)  # (m,)
    d_test, nn_test = mem.nearest_neighbours(test, train)  # (n,)
    distances = mem.distance_summary(d_gen, d_test)
    distances["verdict"] = mem.verdict_distances(distances, flag_z)

    copying = mem.data_copying_test(train, test, gen, cells=cells, min_generated=min_generated,
                                    generator=torch.Generator(device=dev).manual_seed(seed))
    copying["verdict"] = mem.verdict_c_t(copying, flag_z)

    a_gen = mem.authenticity(gen, train, neighbours=(d_gen, nn_gen))["authenticity"]
    a_test = mem.authenticity(test, train, neighbours=(d_test, nn_test))["authenticity"]
    z = mem.binomial_z(a_gen, len(gen), a_test, len(test))
    auth = {"authenticity": a_gen, "held_out_authenticity": a_test, "z": z,
            "verdict": mem.verdict_authenticity(z, flag_z)}
    t_checked = time.perf_counter()

    d_gen, nn_gen = d_gen.cpu(), nn_gen.cpu()
    closest = torch.argsort(d_gen, stable=True)[:figure_pairs]  # the samples nearest to the training set
    plot_nearest_training(images[closest], train_images[nn_gen[closest]], d_gen[closest], figure_path)
    result = {
        "model": description.get("name", description["class"]),  # an external model's name, else its class
        "description": description,
        "latent_dim": getattr(model, "latent_dim", None),
        "n_samples": n_samples,
        "sample_seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "feature_dim": gen.shape[1],
        "classifier_sha256": sha256(classifier_path),
        "flag_z": flag_z,
        "nearest_neighbour": distances,
        "data_copying": copying,
        "authenticity": auth,
        "closest": [{"sample": int(i), "train": int(nn_gen[i]), "distance": float(d_gen[i])} for i in closest.tolist()],
        "seconds": {"sampling": t_sampled - t0, "features": t_embedded - t_sampled, "checks": t_checked - t_embedded,
                    "total": time.perf_counter() - t0},
    }
    io.write_json(result, output_path)
    log.info("%s: %d samples vs %d training and %d held-out images (%.1f s): %s", result["model"], n_samples,
             len(train), len(test), result["seconds"]["total"], _shown(result))
    return result


def default_cells(n_samples: int) -> int:
    """C_T's number of cells: one per 200 samples, at most 50 (the paper's 50 cells for 10,000
    samples), at least 1. Fewer samples a cell and many cells fall below the 20 samples a cell
    needs to count wherever a model favours some digits: 2,000 samples of mnist-mini's GAN in 50
    cells leave 13 cells and 28 % of the held-out mass tested, in 10 cells 6 and 61 %."""
    return max(1, min(50, n_samples // 200))


def _shown(r: dict) -> str:
    """The checks of one result for a log line."""
    nn, ct, au = (r[k] for k in CHECKS)
    c_t = "–" if ct["C_T"] is None else f"{ct['C_T']:.2f} (z {ct['z']:.1f})"
    return (f"NN median ratio {nn['median_ratio']:.3f}, {nn['fraction_below_q01']:.3f} below the held-out 1st "
            f"percentile [{nn['verdict']}]; C_T {c_t} [{ct['verdict']}]; authenticity {au['authenticity']:.3f} "
            f"vs {au['held_out_authenticity']:.3f} held-out [{au['verdict']}]")


def plot_nearest_training(samples: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor,
                          path: str) -> None:
    """Samples (top row) above their nearest training images (bottom row), each pair titled with
    its feature distance; PNG at ``path`` and the PDF beside it."""
    from dgm.plotting import _save, plt

    n = len(samples)
    fig, axes = plt.subplots(2, max(n, 1), figsize=(1.1 * max(n, 1), 2.4), squeeze=False,
                             gridspec_kw={"hspace": 0.05, "wspace": 0.1})
    for j, ax in enumerate(axes.T):
        for row, image in zip(ax, (samples, neighbours)):
            row.set_axis_off()
            if j < n:
                row.imshow(1 - image[j].reshape(28, 28).float().cpu().numpy(), cmap="gray", vmin=0, vmax=1,
                           interpolation="nearest")
        if j < n:
            ax[0].set_title(f"$d$ = {float(distances[j]):.2f}", fontsize=8)
    axes[0, 0].text(-0.15, 0.5, "sample", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right")
    axes[1, 0].text(-0.15, 0.5, "nearest\ntraining", transform=axes[1, 0].transAxes, rotation=90, va="center",
                    ha="right")
    _save(fig, path)


# --------------------------------------------------------------------------- table

SUMMARY_HEADER = ["dataset", "model", "point", "latent", "seed", "n_samples", "n_train", "n_test",
                  "nn_median_ratio", "nn_fraction_below_q01", "nn_fraction_below_q05", "nn_verdict",
                  "c_t", "c_t_z", "c_t_cells_used", "c_t_test_share", "c_t_verdict",
                  "authenticity", "held_out_authenticity", "authenticity_verdict", "classifier_sha256"]


def summary_rows(paths: list[str]) -> list[dict]:
    """One row (the keys of ``SUMMARY_HEADER``) per memorisation.json, keyed by its run
    (``dgm.results.run_key``: dataset, model, sweep point, latent, seed); numbers as written,
    C_T's None where no cell had enough samples."""
    from dgm.results import run_key

    rows = []
    for path in paths:
        r = json.loads(Path(path).read_text())
        nn, ct, au = (r[k] for k in CHECKS)
        rows.append({**run_key(path), "n_samples": r["n_samples"], "n_train": r["n_train"], "n_test": r["n_test"],
                     "nn_median_ratio": nn["median_ratio"], "nn_fraction_below_q01": nn["fraction_below_q01"],
                     "nn_fraction_below_q05": nn["fraction_below_q05"], "nn_verdict": nn["verdict"],
                     "c_t": ct["C_T"], "c_t_z": ct["z"], "c_t_cells_used": ct["cells_used"],
                     "c_t_test_share": ct["test_share_used"], "c_t_verdict": ct["verdict"],
                     "authenticity": au["authenticity"], "held_out_authenticity": au["held_out_authenticity"],
                     "authenticity_verdict": au["verdict"], "classifier_sha256": r["classifier_sha256"]})
    return rows
