"""What every workflow entry script does first: send its output to the rule's log file, and for
the torch jobs claim a GPU before torch loads."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dgm.io import write_json  # noqa: F401  (re-exported for the scripts)


def start_log(path: str | os.PathLike | None) -> logging.Logger:
    """Redirect stdout/stderr (tqdm writes there) and the 'dgm' logger to ``path``, line-buffered."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "w", buffering=1)
        sys.stdout = sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    sys.excepthook = _report_error
    return logging.getLogger("dgm")


def _report_error(exc_type, exc, tb) -> None:
    """A fault the user can fix (a class with ``user_facing = True``: a bad data file, a full disk,
    a diverged run, a non-finite result) ends the job with its one-line message, in the log and on
    the terminal Snakemake runs in; anything else keeps its traceback."""
    if not getattr(exc_type, "user_facing", False):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("dgm").error("%s", exc)
    if sys.stderr is not sys.__stderr__:
        print(f"dgm: {exc}", file=sys.__stderr__, flush=True)


def claim_gpu(jobs_per_device: int = 1) -> None:
    """Give this job a GPU slot that no other running job of the workflow holds: a GPU of its own, or
    one of ``jobs_per_device`` shares of one (config ``gpu_jobs_per_device``; see dgm.gpu_slots)."""
    from dgm import gpu_slots

    gpu_slots.claim_for_job(jobs_per_device=jobs_per_device)


def start_torch_job(snakemake, *, passive_omp: bool = False) -> logging.Logger:
    """Start the rule's log, claim a GPU, then load torch with the rule's thread count.

    Call it before anything imports torch: the GPU claim sets ``CUDA_VISIBLE_DEVICES``, which
    must happen before torch initialises CUDA.
    """
    if passive_omp:
        # Before torch loads OpenMP: idle worker threads sleep instead of spinning, which on a shared CPU
        # halves the wall time of the estimators' many short parallel regions (tests/bench/bench_likelihood.py).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    log = start_log(snakemake.log[0])
    if snakemake.resources.get("gpu", 0):  # a job of a CPU study (device: cpu) claims no GPU
        # before torch touches CUDA: a GPU slot no other running job of this workflow holds
        claim_gpu(snakemake.config.get("gpu_jobs_per_device", 1))

    import torch

    torch.set_num_threads(snakemake.threads)
    return log


def train_model(snakemake) -> None:
    """The training rule of any registered model: its task module's ``train`` with the model's
    config section, the run's latent size and seed, and the rule's paths."""
    from dgm import experiments, registry

    p, out = snakemake.params, snakemake.output
    spec = registry.get(p.model)
    kill_after = os.environ.get("DGM_KILL_AFTER_EPOCH")  # fault injection for the resume tests
    started = experiments.now()
    spec.task_module().train(
        spec=spec,
        cfg=dict(p.cfg),
        latent_dim=int(snakemake.wildcards.get("latent", spec.fixed_latent)),
        seed=int(snakemake.wildcards.seed),
        device=p.device,
        snapshot_epochs=list(p.snapshot_epochs),
        splits_path=snakemake.input.splits,
        model_path=out.model,
        metrics_path=out.metrics,
        snapshots_path=out.snapshots,
        sample_paths=dict(zip(p.sample_epochs, out.samples)),
        kill_after_epoch=int(kill_after) if kill_after else None,
    )
    write_run_record(out.record, config=dict(p.run_config), started=started, model_path=out.model,
                     repo_dir=Path(snakemake.scriptdir).parent.parent)


def write_run_record(path, *, config: dict, started: str, model_path, repo_dir) -> None:
    """The run's run.json (dgm.experiments.run_record), the device read from its model file."""
    import torch

    from dgm import experiments, io

    device = torch.load(model_path, map_location="cpu", weights_only=True).get("device_name", "unknown")
    record = experiments.run_record(config=config, started=started, ended=experiments.now(), device=device,
                                    repo_dir=repo_dir, command=os.environ.get("DGM_COMMAND"))
    io.write_json(record, path)


def training_settings(cfg: dict) -> dict:
    """The settings every model's training takes from its config section."""
    return {name: cfg[name] for name in ("epochs", "batch_size", "lr", "eval_batch_size")}
