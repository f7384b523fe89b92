"""Rules train_gan, plot_gan_curves and plot_gan_samples as plain
functions (the scripts only unpack arguments), and the GAN section of the report."""
from __future__ import annotations

import logging

import torch

from dgm import plotting
from dgm.entry import training_settings
from dgm.gan import EQUILIBRIUM_D_LOSS, EQUILIBRIUM_G_LOSS, GAN, GANConfig, GANTrainer, dominated_epochs
from dgm.results import metrics_by_latent
from dgm.tasks.common import TrainingSetup, run_training

MODEL_FILE_VERSION = 1
GRID_SAMPLES = 25  # 5 x 5 sample grids (seed Fig. 4)
log = logging.getLogger("dgm")


def _gray_float(split: dict, name: str, device) -> torch.Tensor:
    """Grey-level images of a split as floats in [0, 1], (N, 784): the GAN models intensities."""
    images = split[f"{name}_images"]
    return images.reshape(len(images), -1).to(device=device, dtype=torch.float32).div_(255.0)


def train_gan(*, latent_dim: int, hidden_dim: int, epochs: int, batch_size: int, lr: float,
              betas: tuple[float, float], seed: int, eval_batch_size: int = 1000, **job) -> list[dict]:
    """Train one GAN on the grey-level training split through ``run_training`` (``job``: its paths,
    snapshot epochs, device); snapshots hold weights and 25 samples."""
    options = dict(latent_dim=latent_dim, hidden_dim=hidden_dim, epochs=epochs, batch_size=batch_size, lr=lr,
                   betas=list(betas))

    def setup(splits: dict, dev) -> TrainingSetup:
        n_train = splits["meta"]["n_train"]
        if batch_size > n_train:
            raise ValueError(f"gan.batch_size={batch_size} exceeds the {n_train} training images")
        model = GAN(GANConfig(latent_dim=latent_dim, hidden_dim=hidden_dim)).to(dev)
        trainer = GANTrainer(model, lr=lr, betas=betas, valid_x=_gray_float(splits, "valid", dev),
                             n_samples=GRID_SAMPLES, eval_batch=eval_batch_size)

        def grey_levels(batch, g):  # in [0, 1]; the GAN maps them to tanh's [-1, 1] itself
            return batch.float().div_(255.0)

        train_data = splits["train_images"].reshape(n_train, -1).to(dev)  # uint8 (N, 784)
        # drop_last: a last batch of one would break batch norm in train mode
        return TrainingSetup(trainer, train_data, grey_levels, drop_last=True)

    def summary(last: dict) -> str:
        return (f"last epoch: L_D {last['train_d_loss']:.3f}, L_G {last['train_g_loss']:.3f}, "
                f"D(x) {last['train_d_real']:.3f}, D(G(z)) {last['train_d_fake']:.3f}")

    return run_training(label="GAN", options=options, setup=setup, seed=seed, grid=(5, f"z = {latent_dim}"),
                        version=MODEL_FILE_VERSION, summary=summary, **job)


def train(*, spec, cfg: dict, latent_dim: int, seed: int, device: str, **paths) -> list[dict]:
    """The training rule of the GAN, from its config section ``gan:``."""
    return train_gan(**paths, **training_settings(cfg), latent_dim=latent_dim, hidden_dim=cfg["hidden_dim"],
                     betas=cfg["betas"], seed=seed, device=device)


def plot_curves(*, metrics_paths: list[str], output_path: str) -> None:
    """Losses and discriminator outputs over training, one column per latent size, mean and band
    over the seeds (seed Fig. 5)."""
    curves = {f"z = {z}": frames for z, frames in metrics_by_latent(metrics_paths).items()}
    plotting.plot_gan_curves(curves, output_path, d_equilibrium=EQUILIBRIUM_D_LOSS, g_equilibrium=EQUILIBRIUM_G_LOSS)


def report_section(inputs: dict[str, list[str]], spec=None) -> dict | None:
    """The GAN section of the report: per-run table of the last epoch, the runs whose discriminator won
    outright (``dominated_epochs`` of each run's validation D(x) and D(G(z))), and the seed's Fig. 4-6
    (text: report/sections/gan.rst.j2)."""
    from dgm import registry
    from dgm.formatting import by_setting, captioned_figures, latent_cell, seed_cell, seeds_label
    from dgm.results import curve_summary, model_records, read_csv

    if not inputs.get("gan_metrics"):
        return None
    spec = spec or registry.get("gan")
    records = {(r["point"], r["latent"], r["seed"]): r for r in model_records(inputs.get("models", []), spec.name)}
    runs, dominated = [], []
    for metrics_path in inputs["gan_metrics"]:
        run = curve_summary(metrics_path)
        record = records[(run["point"], run["latent"], run["seed"])]
        runs.append({**run, "parameters": record["parameters"], "generator": record["parts"]["generator"]})
        curve = read_csv(metrics_path)
        won = dominated_epochs([r["valid_d_real"] for r in curve], [r["valid_d_fake"] for r in curve],
                               tol=GANTrainer.dominance_tol, run=GANTrainer.dominance_epochs)
        if won:
            title = f"{spec.title} [{run['point']}]" if run["point"] else spec.title
            dominated.append({"title": title, "latent": run["latent"], "seed": run["seed"],
                              "epochs": [curve[i]["epoch"] for i in won]})
    rows = []
    for (point, latent), col in by_setting(runs, "point", "latent"):
        rows.append({"latent": latent_cell(latent, point), "seeds": seeds_label(col["seed"]),
                     "epochs": seed_cell(col["epoch"]),
                     **{k: seed_cell(col[k], 3) for k in ("train_d_loss", "train_g_loss", "train_d_real",
                                                          "train_d_fake", "valid_d_real", "valid_d_fake")},
                     **{k: seed_cell(col[k]) for k in ("generator", "parameters", "s_epoch")}})
    first = next(iter(records.values()))
    d, opts = first["description"], first["options"]
    h = d["hidden_dim"]
    return {
        "id": "gan",
        "data": {
            "long_title": spec.long_title,
            "generator_widths": [h, 2 * h, 4 * h, 8 * h, d["data_dim"]],
            "discriminator_widths": [d["data_dim"], 4 * h, 2 * h, 1],
            "negative_slope": d["negative_slope"], "dropout": d["dropout"],
            "lr": opts["lr"], "betas": opts["betas"], "batch_size": opts["batch_size"],
            "equilibrium_d": EQUILIBRIUM_D_LOSS, "equilibrium_g": EQUILIBRIUM_G_LOSS,
            "dominated": sorted(dominated, key=lambda r: (r["latent"], r["seed"])),
            "dominance_tol": GANTrainer.dominance_tol, "dominance_run": GANTrainer.dominance_epochs,
            "runs": rows,
        },
        "figures": captioned_figures(inputs.get("gan_figures", []), {  # in the seed's order: Fig. 4, 5, 6
            "gan_samples": "gan_samples", "gan_curves": "gan_curves", "gan_interpolation": "gan_interpolation"}),
    }
