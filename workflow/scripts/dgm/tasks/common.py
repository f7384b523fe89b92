"""What every model's training task shares: ``run_training`` loads the data, logs and seeds, fits the
model's trainer through ``training.fit`` (resume checkpoint, per-epoch CSV, snapshots) and writes the
files of a finished run; a model's task module brings only what is its own (``TrainingSetup``)."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from dgm import data, io, plotting, training

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


@dataclass
class TrainingSetup:
    """A model's own part of a training job, built once the data is loaded and the seed set."""

    trainer: training.Trainer  # holds the model, its optimisers and validation data
    train_data: torch.Tensor  # the training split as the trainer's batches come from it, on the device
    prepare_batch: Callable | None = None  # (batch, generator) -> what train_step takes (e.g. a fresh binarisation)
    drop_last: bool = False


def run_training(*, label: str, options: dict, setup: Callable[[dict, torch.device], TrainingSetup], seed: int,
                 snapshot_epochs: list[int], splits_path: str, model_path: str, metrics_path: str,
                 snapshots_path: str, sample_paths: dict[int, str], grid: tuple[int, str], version: int,
                 summary: Callable[[dict], str], device: str = "auto", kill_after_epoch: int | None = None
                 ) -> list[dict]:
    """One training job of any model: ``options`` (the settings that define the run) gain the seed,
    the snapshot epochs and the data's description; ``setup(splits, device)`` builds the model's
    trainer after the seed is set; the sample grids show ``grid`` = (images per row, title); the last
    log line adds ``summary(last row)``. Returns the per-epoch rows."""
    dev = training.select_device(device)
    splits = data.load_splits(splits_path)
    check_sample_epochs(sample_paths, snapshot_epochs)
    options = {**options, "seed": seed, "snapshot_epochs": sorted(snapshot_epochs), "data": splits["meta"]}
    log_training_start(label, options, dev)
    training.seed_everything(seed)
    run = setup(splits, dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    t0 = time.perf_counter()
    rows, snapshots = training.fit(
        run.trainer, run.train_data, epochs=options["epochs"], batch_size=options["batch_size"], generator=generator,
        checkpoint_path=resume_path(model_path), metrics_path=metrics_path,
        fingerprint=training.config_fingerprint(options), snapshot_epochs=set(snapshot_epochs),
        prepare_batch=run.prepare_batch, device=dev, stop_after_epoch=kill_after_epoch, drop_last=run.drop_last,
    )
    nrow, title = grid
    finish_training(run.trainer.model, snapshots, sample_paths=sample_paths, nrow=nrow, label=title,
                    snapshots_path=snapshots_path, model_path=model_path, options=options, device=dev,
                    version=version)
    log.info("done in %.1f s; %s", time.perf_counter() - t0, summary(rows[-1]))
    return rows


def _without_data(options: dict) -> dict:
    return {k: v for k, v in options.items() if k != "data"}


def plot_snapshot_grids(*, snapshots_path: str, epochs: list[int], output_path: str, suptitle: str) -> None:
    """The sample grids a training job kept at ``epochs``, side by side (seed Fig. 2, 4 and 8)."""
    snapshots = torch.load(snapshots_path, map_location="cpu", weights_only=True)
    missing = [e for e in epochs if e not in snapshots]
    if missing:
        raise ValueError(f"{snapshots_path} has no snapshot for epochs {missing}; it has {sorted(snapshots)}")
    plotting.save_grids_over_epochs({e: snapshots[e]["samples"] for e in epochs}, output_path, suptitle=suptitle)
