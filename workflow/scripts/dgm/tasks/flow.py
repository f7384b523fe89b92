"""Rules train_flow, evaluate_flow and the flow's figures as plain functions (the scripts only
unpack arguments). The flow models pixel values 0..255 (``*_images`` of the splits file), not the
binarised copies the VAE uses; its latent has the data's 784 dimensions."""
from __future__ import annotations

import logging
import os

import torch

from dgm.entry import training_settings
from dgm.flow import FlowConfig, FlowTrainer, RealNVP
from dgm.models import load_model
from dgm.seed_study import COURSE_TARGET_BPD, FLOW_VALID_BPD
from dgm.tasks.common import TrainingSetup, run_training

MODEL_FILE_VERSION = 1
log = logging.getLogger("dgm")


def _pixels(split: dict, name: str, device) -> torch.Tensor:
    images = split[f"{name}_images"]  # (N, 28, 28) uint8
    if images.dtype != torch.uint8:
        raise ValueError(f"{name}_images must be uint8 pixel values 0..255, got {images.dtype}")
    return images.reshape(len(images), -1).to(device)  # (N, 784) uint8


def train_flow(*, n_blocks: int, hidden_dim: int, alpha: float, learned_scale: bool, epochs: int, batch_size: int,
               lr: float, grad_clip: float | None, seed: int, eval_batch_size: int = 500, **job) -> list[dict]:
    """Train one RealNVP through ``run_training`` (``job``: its paths, snapshot epochs, device)."""
    flow_config = FlowConfig(n_blocks=n_blocks, hidden_dim=hidden_dim, alpha=alpha, learned_scale=learned_scale)
    options = dict(n_blocks=n_blocks, hidden_dim=hidden_dim, alpha=alpha, learned_scale=learned_scale, epochs=epochs,
                   batch_size=batch_size, lr=lr, grad_clip=grad_clip)

    def setup(splits: dict, dev) -> TrainingSetup:
        model = RealNVP(flow_config).to(dev)
        trainer = FlowTrainer(model, lr=lr, valid_x=_pixels(splits, "valid", dev), grad_clip=grad_clip,
                              eval_batch=eval_batch_size)
        return TrainingSetup(trainer, _pixels(splits, "train", dev))

    return run_training(label="RealNVP", options=options, setup=setup, seed=seed, grid=(4, "RealNVP"),
                        version=MODEL_FILE_VERSION, summary=lambda r: f"final validation {r['valid_bpd']:.4f} bits/dim",
                        **job)


def train(*, spec, cfg: dict, latent_dim: int, seed: int, device: str, **paths) -> list[dict]:
    """The training rule of the flow, from its config section ``flow:`` (its latent size is the data's)."""
    return train_flow(**paths, **training_settings(cfg), **{k: cfg[k] for k in ("n_blocks", "hidden_dim", "alpha",
                      "learned_scale", "grad_clip")}, seed=seed, device=device)


def load_flow(model_path: str | os.PathLike, device="cpu") -> RealNVP:
    return load_model(model_path, device, expect=RealNVP)


def report_section(inputs: dict[str, list[str]], spec=None) -> dict | None:
    """The flow section of the report: bits/dim (over the seeds) beside the seed's value, Fig. 7-9
    (text: report/sections/flow.rst.j2)."""
    from dgm import registry
    from dgm.formatting import by_setting, captioned_figures, latent_cell, seed_cell, seeds_label
    from dgm.results import curve_summary, model_records, read_json

    if not inputs.get("flow_metrics"):
        return None
    spec = spec or registry.get("flow")
    runs = [{**read_json(test_path), **curve_summary(metrics_path, best="valid_bpd")}
            for metrics_path, test_path in zip(inputs["flow_metrics"], inputs["flow_tests"])]
    rows = [{"setting": latent_cell(latent, point), "seeds": seeds_label(col["seed"]),
             "epochs": seed_cell(col["epochs"]),
             **{k: seed_cell(col[k], 3) for k in ("train_bpd", "valid_bpd", "best_valid")},
             "test_bpd": seed_cell(col["test_bpd"], 3, errors=col["test_bpd_stderr"]), "k": seed_cell(col["k"]),
             "test_nll": seed_cell(col["test_nll"], 1), "parameters": seed_cell(col["parameters"]),
             "s_epoch": seed_cell(col["s_epoch"], 1)}
            for (point, latent), col in by_setting(runs, "point", "latent")]
    record = model_records(inputs.get("models", []), "flow")[0]
    d, opts = record["description"], record["options"]
    return {
        "id": "flow",
        "data": {"long_title": spec.long_title, "n_blocks": d["n_blocks"], "hidden": d["hidden_dim"],
                 "learned_scale": d["learned_scale"], "alpha": d["alpha"], "lr": opts["lr"],
                 "batch_size": opts["batch_size"], "grad_clip": opts["grad_clip"], "seed_valid_bpd": FLOW_VALID_BPD,
                 "course_target_bpd": COURSE_TARGET_BPD, "runs": rows,
                 "swept": any(r["point"] for r in runs)},
        "figures": captioned_figures(inputs.get("flow_figures", []), {
            "flow_bpd": "flow_bpd", "flow_samples": "flow_samples", "flow_interpolation": "flow_interpolation"}),
    }
