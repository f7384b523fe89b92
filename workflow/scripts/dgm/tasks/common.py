"""What the train_* tasks share: the training log line, the resume checkpoint and the files written
once training ends."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from dgm import io, plotting, training

log = logging.getLogger("dgm")


def log_training_start(name: str, options: dict, device: torch.device) -> None:
    """Log what is trained on which data and device; ``options["data"]`` is the splits' meta."""
    meta = options["data"]
    log.info("training %s on %s (%d train / %d validation images) on %s: %s",
             name, meta["dataset"], meta["n_train"], meta["n_valid"], device, _without_data(options))


def check_sample_epochs(sample_paths: dict[int, str], snapshot_epochs: list[int]) -> None:
    """Fail early where a sample grid asks for an epoch that has no snapshot."""
    missing = set(sample_paths) - set(snapshot_epochs)
    if missing:
        raise ValueError(f"sample grids asked for epochs {sorted(missing)} that are not snapshot epochs")


def resume_path(model_path: str | os.PathLike) -> Path:
    """The checkpoint a killed training job resumes from, beside its model file."""
    return Path(model_path).parent / ".resume.pt"


def finish_training(model: torch.nn.Module, snapshots: dict, *, sample_paths: dict[int, str], nrow: int,
                    label: str, snapshots_path: str, model_path: str, options: dict, device: torch.device,
                    version: int) -> None:
    """Write the sample grids (titled "<label>, epoch <e>"), the snapshots and the model file
    (weights on the CPU, trained for ``options["epochs"]``), then drop the resume checkpoint."""
    for epoch, path in sample_paths.items():
        plotting.save_grid(snapshots[epoch]["samples"], path, nrow=nrow, title=f"{label}, epoch {epoch}")
    io.torch_save(snapshots, snapshots_path)
    io.torch_save(
        {
            "version": version,
            "model": model.describe(),
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "epoch": options["epochs"],
            "options": _without_data(options),
            "data": options["data"],
            "device": str(device),
            "device_name": training.describe_device(device),
        },
        model_path,
    )
    resume_path(model_path).unlink(missing_ok=True)  # the job is complete: nothing left to resume


def _without_data(options: dict) -> dict:
    return {k: v for k, v in options.items() if k != "data"}


def plot_snapshot_grids(*, snapshots_path: str, epochs: list[int], output_path: str, suptitle: str) -> None:
    """The sample grids a training job kept at ``epochs``, side by side (seed Fig. 2, 4 and 8)."""
    snapshots = torch.load(snapshots_path, map_location="cpu", weights_only=True)
    missing = [e for e in epochs if e not in snapshots]
    if missing:
        raise ValueError(f"{snapshots_path} has no snapshot for epochs {missing}; it has {sorted(snapshots)}")
    plotting.save_grids_over_epochs({e: snapshots[e]["samples"] for e in epochs}, output_path, suptitle=suptitle)
