"""Rules train_vae and evaluate_vae as plain functions (the scripts only unpack arguments)."""
from __future__ import annotations

import logging
import math
import os
import time

import torch

from dgm import data, io, training
from dgm.models import load_model
from dgm.tasks.common import finish_training, log_training_start, resume_path
from dgm.vae import VAE, VAEConfig, VAETrainer

MODEL_FILE_VERSION = 1
log = logging.getLogger("dgm")


def _binary_float(split: dict, name: str, device) -> torch.Tensor:
    return split[f"{name}_binary"].reshape(len(split[f"{name}_binary"]), -1).to(device=device, dtype=torch.float32)


def train_vae(
    *,
    splits_path: str,
    model_path: str,
    metrics_path: str,
    snapshots_path: str,
    sample_paths: dict[int, str],
    latent_dim: int,
    hidden_dim: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    snapshot_epochs: list[int],
    sample_mode: str = "mean",
    device: str = "auto",
    eval_batch_size: int = 1000,
    kill_after_epoch: int | None = None,
) -> list[dict]:
    """Train one VAE; write the model, per-epoch metrics, snapshots and sample grids."""
    dev = training.select_device(device)
    splits = data.load_splits(splits_path)
    meta = splits["meta"]
    options = dict(latent_dim=latent_dim, hidden_dim=hidden_dim, epochs=epochs, batch_size=batch_size, lr=lr,
                   seed=seed, snapshot_epochs=sorted(snapshot_epochs), sample_mode=sample_mode, data=meta)
    log_training_start("VAE", options, dev)

    training.seed_everything(seed)
    model = VAE(VAEConfig(latent_dim=latent_dim, hidden_dim=hidden_dim)).to(dev)
    trainer = VAETrainer(model, lr=lr, valid_x=_binary_float(splits, "valid", dev), eval_batch=eval_batch_size,
                         sample_mode=sample_mode)
    generator = torch.Generator(device=dev).manual_seed(seed)

    if meta["binarization"] == "static":
        train_data = _binary_float(splits, "train", dev)
        prepare = None
    else:
        train_data = splits["train_images"].reshape(meta["n_train"], -1).to(dev)  # uint8, (N, 784)

        def prepare(batch, g):  # a fresh Bernoulli draw for every minibatch
            return torch.bernoulli(batch.float().div_(255.0), generator=g)

    t0 = time.perf_counter()
    rows, snapshots = training.fit(
        trainer, train_data, epochs=epochs, batch_size=batch_size, generator=generator,
        checkpoint_path=resume_path(model_path), metrics_path=metrics_path,
        fingerprint=training.config_fingerprint(options), snapshot_epochs=set(snapshot_epochs),
        prepare_batch=prepare, device=dev, stop_after_epoch=kill_after_epoch,
    )
    finish_training(model, snapshots, sample_paths=sample_paths, nrow=4, label=f"z = {latent_dim}",
                    snapshots_path=snapshots_path, model_path=model_path, options=options, device=dev,
                    version=MODEL_FILE_VERSION)
    log.info("done in %.1f s; final validation -ELBO %.2f nats", time.perf_counter() - t0, rows[-1]["valid_nelbo"])
    return rows


def load_vae(model_path: str | os.PathLike, device="cpu") -> VAE:
    return load_model(model_path, device, expect=VAE)


@torch.inference_mode()
def evaluate_vae(*, model_path: str, splits_path: str, output_path: str, seed: int = 0, device: str = "auto",
                 batch_size: int = 1000) -> dict:
    """Test-set negative ELBO (one reparameterised sample per image) on the fixed binarised test set."""
    dev = training.select_device(device)
    model = load_vae(model_path, dev)
    splits = data.load_splits(splits_path)
    x = _binary_float(splits, "test", dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    parts = {"nelbo": [], "recon": [], "kl": []}
    for i in range(0, len(x), batch_size):
        terms = model(x[i : i + batch_size], g)
        for k in parts:
            parts[k].append(terms[k].double().cpu())
    values = {k: torch.cat(v) for k, v in parts.items()}
    n = len(x)
    result = {
        "model": "vae",
        "latent_dim": model.latent_dim,
        "n_test": n,
        "test_nelbo": values["nelbo"].mean().item(),
        "test_nelbo_stderr": (values["nelbo"].std() / math.sqrt(n)).item(),
        "test_recon": values["recon"].mean().item(),
        "test_kl": values["kl"].mean().item(),
        "test_nelbo_bpd": values["nelbo"].mean().item() / (784 * math.log(2)),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    io.write_json(result, output_path)
    return result


def report_section(inputs: dict[str, list[str]]) -> dict | None:
    """The VAE section of the report: per-run table and the seed's Fig. 1-3."""
    from dgm.tasks.report import (SEEDS_NOTE, by_setting, captioned_figures, curve_summary, model_records, read_json,
                                  seed_cell, seeds_label)

    if not inputs.get("vae_metrics"):
        return None
    runs = [{**read_json(test_path), **curve_summary(metrics_path, best="valid_nelbo")}
            for metrics_path, test_path in zip(inputs["vae_metrics"], inputs["vae_tests"])]
    rows = []
    for (latent,), col in by_setting(runs, "latent"):
        rows.append([latent, seeds_label(col["seed"]), seed_cell(col["epochs"]), seed_cell(col["train_nelbo"]),
                     seed_cell(col["valid_nelbo"]), seed_cell(col["best_valid"]),
                     seed_cell(col["test_nelbo"], errors=col["test_nelbo_stderr"]), seed_cell(col["test_recon"]),
                     seed_cell(col["test_kl"]), seed_cell(col["parameters"]), seed_cell(col["s_epoch"])])
    captions = {
        "vae_elbo": "Training and validation ELBO per epoch (nats per image), one panel per latent size (seed Fig. 1); "
                    "with several seeds the line is their mean and the band ± one SD.",
        "vae_samples": "Samples from the prior, decoded, at the configured epochs; the same prior draws at every "
                       "epoch (seed Fig. 2).",
        "vae_manifold": "The learned 2-D manifold: decoder means on a grid of prior quantiles (inverse normal CDF) "
                        "at the start, middle and end of training (seed Fig. 3).",
    }
    record = model_records(inputs, "vae")[0]
    h, opts = record["description"]["hidden_dim"], record["options"]
    return {
        "id": "vae",
        "title": "Variational auto-encoder",
        "paragraphs": [
            f"Bernoulli VAE with an MLP encoder 784-{h}-(mu, log sigma^2) and decoder z-{h}-784, standard normal "
            "prior, one reparameterised sample per image and closed-form KL (seed section 1); Adam with lr "
            f"{opts['lr']:g}, batch {opts['batch_size']}, {opts['epochs']} epochs. Negative ELBO in nats per image, "
            "lower is better; test values on the fixed-seed binarised test set.",
        ],
        "tables": [{
            "caption": f"VAE: negative ELBO (nats per image) at the last epoch; test ± one standard error over "
                       f"images ({SEEDS_NOTE})",
            "header": ["z", "seeds", "epochs", "train −ELBO", "valid −ELBO", "best valid −ELBO", "test −ELBO",
                       "test recon.", "test KL", "parameters", "s/epoch"],
            "rows": rows,
        }],
        "figures": captioned_figures(inputs.get("vae_figures", []), captions),
    }
