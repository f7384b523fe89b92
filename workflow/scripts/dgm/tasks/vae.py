"""Training and test-set ELBO of the VAE family (every registered latent-variable model built from
``dgm.vae.VAE``: the VAE and the IWAE) as plain functions, and their report section."""
from __future__ import annotations

import logging
import math
import os

import torch

from dgm import data, estimators, io, registry, training
from dgm.entry import training_settings
from dgm.models import build_model, load_model
from dgm.tasks.common import TrainingSetup, run_training
from dgm.vae import VAE, VAETrainer

MODEL_FILE_VERSION = 1
log = logging.getLogger("dgm")


def _binary_float(split: dict, name: str, device) -> torch.Tensor:
    return split[f"{name}_binary"].reshape(len(split[f"{name}_binary"]), -1).to(device=device, dtype=torch.float32)


def train_vae(*, latent_dim: int, hidden_dim: int, epochs: int, batch_size: int, lr: float, seed: int,
              sample_mode: str = "mean", eval_batch_size: int = 1000, model_class: str = "VAE",
              model_options: dict | None = None, **job) -> list[dict]:
    """Train one model of the VAE family (``model_class``, with its further ``model_options`` such
    as the IWAE's k) through ``run_training`` (``job``: its paths, snapshot epochs, device)."""
    model_options = dict(model_options or {})
    options = dict(latent_dim=latent_dim, hidden_dim=hidden_dim, **model_options, epochs=epochs,
                   batch_size=batch_size, lr=lr, sample_mode=sample_mode)

    def setup(splits: dict, dev) -> TrainingSetup:
        description = {"class": model_class, "latent_dim": latent_dim, "hidden_dim": hidden_dim, **model_options}
        model = build_model(description).to(dev)
        if not isinstance(model, VAE):
            raise ValueError(f"{model_class} is not a model of the VAE family (dgm.vae.VAE)")
        trainer = VAETrainer(model, lr=lr, valid_x=_binary_float(splits, "valid", dev), eval_batch=eval_batch_size,
                             sample_mode=sample_mode)
        if splits["meta"]["binarization"] == "static":
            return TrainingSetup(trainer, _binary_float(splits, "train", dev))

        train_data = splits["train_images"].reshape(len(splits["train_images"]), -1).to(dev)  # uint8, (N, 784)
        return TrainingSetup(trainer, train_data, data.binarize_batch)  # a fresh draw for every minibatch

    return run_training(label=model_class, options=options, setup=setup, seed=seed, grid=(4, f"z = {latent_dim}"),
                        version=MODEL_FILE_VERSION, **job,
                        summary=lambda r: f"final validation -ELBO {r['valid_nelbo']:.2f} nats")


def train(*, spec: registry.ModelSpec, cfg: dict, latent_dim: int, seed: int, device: str, **paths) -> list[dict]:
    """The training rule of a VAE-family model: its config section ``cfg`` (``vae:``, ``iwae:``)
    gives the training settings and the options of its config dataclass beyond the latent size."""
    fields = spec.model_type().CONFIG.__dataclass_fields__
    extra = {k: cfg[k] for k in fields if k in cfg and k not in ("latent_dim", "hidden_dim")}
    return train_vae(**paths, **training_settings(cfg), latent_dim=latent_dim, hidden_dim=cfg["hidden_dim"], seed=seed,
                     sample_mode=cfg["sample_mode"], device=device, model_class=spec.model_class,
                     model_options=extra)


def load_vae(model_path: str | os.PathLike, device="cpu") -> VAE:
    """A VAE-family model (VAE, IWAE) from its model file."""
    model = load_model(model_path, device)
    if not isinstance(model, VAE):
        raise ValueError(f"{model_path} holds a {type(model).__name__}, not a model of the VAE family")
    return model


@torch.inference_mode()
def evaluate_vae(*, model_path: str, splits_path: str, output_path: str, seed: int = 0, device: str = "auto",
                 batch_size: int = 1000, per_image_path: str | None = None) -> dict:
    """Test-set negative ELBO (one reparameterised sample per image) on the fixed binarised test set,
    of any latent-variable model: a VAE-family model through its own ``forward``, any other through
    its verbs (``dgm.estimators.elbo``)."""
    from dgm.tasks.likelihood import load_latent_model

    dev = training.select_device(device)
    model = load_latent_model(model_path, dev)
    splits = data.load_splits(splits_path)
    x = _binary_float(splits, "test", dev)
    g = torch.Generator(device=dev).manual_seed(seed)

    def terms(batch):
        if isinstance(model, VAE):
            return model(batch, g)
        t = estimators.elbo(model, batch, generator=g)
        return {"nelbo": -t["elbo"], "recon": t["recon"], "kl": t["kl"]}

    parts = {"nelbo": [], "recon": [], "kl": []}
    for i in range(0, len(x), batch_size):
        batch_terms = terms(x[i : i + batch_size])
        for k in parts:
            parts[k].append(batch_terms[k].double().cpu())
    values = {k: torch.cat(v) for k, v in parts.items()}
    n = len(x)
    result = {
        "model": registry.spec_of(model).name,
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
    if per_image_path:  # the ELBO terms of every test image, for paired comparisons
        io.write_arrays(per_image_path, {"image": torch.arange(n), **values})
    return result


def report_section(inputs: dict[str, list[str]], spec: registry.ModelSpec | None = None) -> dict | None:
    """The section of one VAE-family model (the VAE by default): per-run table and the seed's Fig. 1-3
    (text: report/sections/vae.rst.j2)."""
    from dgm.formatting import by_setting, captioned_figures, latent_cell, seed_cell, seeds_label
    from dgm.results import curve_summary, model_records, read_json

    spec = spec or registry.get("vae")
    name = spec.name
    if not inputs.get(f"{name}_metrics"):
        return None
    runs = [{**read_json(test_path), **curve_summary(metrics_path, best="valid_nelbo")}
            for metrics_path, test_path in zip(inputs[f"{name}_metrics"], inputs[f"{name}_tests"])]
    rows = []
    for (point, latent), col in by_setting(runs, "point", "latent"):
        rows.append({"latent": latent_cell(latent, point), "seeds": seeds_label(col["seed"]),
                     **{k: seed_cell(col[k]) for k in ("epochs", "train_nelbo", "valid_nelbo", "best_valid")},
                     "test_nelbo": seed_cell(col["test_nelbo"], errors=col["test_nelbo_stderr"]),
                     **{k: seed_cell(col[k]) for k in ("test_recon", "test_kl", "parameters", "s_epoch")}})
    record = model_records(inputs.get("models", []), name)[0]
    d, opts = record["description"], record["options"]
    # The figure rules are shared by the family (vae.smk): their captions are the VAE's, for this model.
    kinds = {f"{name}_elbo": "vae_elbo", f"{name}_samples": "vae_samples", f"{name}_manifold": "vae_manifold",
             f"{name}_interpolation": "interpolation"}
    return {
        "id": name,
        "template": "vae",
        "data": {"model": name, "model_title": spec.title, "long_title": spec.long_title, "hidden": d["hidden_dim"],
                 "k": d.get("k"), "lr": opts["lr"], "batch_size": opts["batch_size"], "epochs": opts["epochs"],
                 "runs": rows},
        "figures": captioned_figures(inputs.get(f"{name}_figures", []), kinds, wildcards={"model": name}),
    }
