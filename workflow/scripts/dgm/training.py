"""The training loop every model shares: epochs over in-memory tensors, per-epoch CSV,
snapshots at chosen epochs, and a resume checkpoint that survives a killed job.

A model plugs in through a ``Trainer`` (below; ``VAETrainer`` in ``dgm.vae`` is the plainest):

- ``train_step(batch, generator) -> dict[str, float | Tensor]`` for one minibatch (already on device);
  0-dim tensors on the device are best: ``fit`` sums them there and reads them once per epoch,
- ``evaluate(generator) -> dict[str, float]`` the validation metrics of one epoch,
- ``state_dict()`` / ``load_state_dict()`` covering networks and optimisers,
- ``snapshot(generator) -> dict`` what to keep at a snapshot epoch (weights, samples...).

The base class gives the last two and ``batched_means`` for ``evaluate``; a subclass writes
``train_step`` and ``evaluate``.

The checkpoint is not a declared Snakemake output (Snakemake deletes those before a rerun): it
lives beside them, holds everything needed to continue bit-for-bit (trainer state, RNG states,
finished epochs' metrics and snapshots), and is removed once the job has written its outputs.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from dgm import io

CHECKPOINT_VERSION = 1
log = logging.getLogger("dgm")


def select_device(spec: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cpu', 'cuda', 'cuda:1' as given."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {spec!r} was asked for but CUDA is not available here")
    return device


def device_of(model: torch.nn.Module) -> torch.device:
    """Where a network lives: its first parameter's device, else its first buffer's (a model of
    buffers alone, e.g. a mixture fitted by EM or a file of samples), else the CPU."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """The device in words, for the model file and the report's provenance: the GPU's name, or the
    CPU with the number of threads torch uses."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    cpu, threads = platform.processor() or platform.machine(), torch.get_num_threads()
    return f"cpu ({cpu}, {threads} thread{'s' if threads != 1 else ''})"


def seed_everything(seed: int) -> None:
    """Seed torch's global RNG (weight init and dropout use it); data order uses explicit generators."""
    torch.manual_seed(seed)


def config_fingerprint(config: dict) -> str:
    """A short hash of the options that define a run: a checkpoint only resumes the same run."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def adam(params, **options) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused kernel where torch has one for the parameters' device (CPU,
    CUDA): one pass over each tensor per step instead of about eight (tests/bench/bench_training.py).
    The same update to float rounding. A resumed run keeps the setting its checkpoint was saved with."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, fused=fused or None, **options)


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows atomically; columns are the union of keys in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    rank = lambda c: 0 if c == "epoch" else 1 if c.startswith("train_") else 2 if c.startswith("valid_") else 3  # noqa: E731
    columns.sort(key=rank)  # stable: epoch, train_*, valid_*, then the rest in first-seen order
    bad = [f"row {i} column {k}" for i, row in enumerate(rows) for k in io.non_finite(row)]
    if bad:
        raise io.NonFiniteResult(f"{path}: refusing to write non-finite values at {', '.join(bad)}")
    with io.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(rows)


class _LineStream:
    """Turns tqdm's carriage-return redraws into one line per update, so a log file stays readable."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s: str) -> None:
        s = s.replace("\r", "").rstrip()
        if s:
            self.stream.write(s + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable, *, total=None, desc=None, mininterval: float = 10.0):
    """tqdm with a minimum interval: a log line at most every ``mininterval`` seconds (and at the end)."""
    stream = sys.stderr if sys.stderr.isatty() else _LineStream(sys.stderr)
    return tqdm(iterable, total=total, desc=desc, mininterval=mininterval, maxinterval=max(mininterval, 60.0),
                ncols=100, ascii=True, file=stream)


def batched_means(terms: Callable[..., dict[str, torch.Tensor]], data: torch.Tensor | tuple[torch.Tensor, ...],
                  batch_size: int, *, keys: tuple[str, ...] | None = None,
                  dtype: torch.dtype | None = None) -> dict[str, float]:
    """Means over ``data`` of the per-item terms ``terms(batch)`` returns ({name: (b,)}), over
    batches of ``batch_size``: each batch summed (in ``dtype`` when given, else the terms' own),
    the sums accumulated in float64 on the device and read once. ``keys`` picks and orders terms.
    ``data`` may be a tuple of equally long tensors (images, labels): ``terms(*batches)``."""
    tensors = data if isinstance(data, tuple) else (data,)
    sums: dict[str, torch.Tensor] = {}
    for batches in zip(*(t.split(batch_size) for t in tensors)):
        out = terms(*batches)
        for k in keys or out:
            v = out[k] if dtype is None else out[k].to(dtype)
            s = v.sum().double()
            sums[k] = sums[k] + s if k in sums else s
    return {k: v.item() / len(tensors[0]) for k, v in sums.items()}


class Trainer:
    """The shared half of every ``fit`` plug-in: a model, its optimisers and its snapshots.

    A subclass calls ``super().__init__(model, {name: optimizer})`` (the names key the
    checkpoint) and writes ``train_step`` and ``evaluate``. ``snapshot`` draws ``n_samples``
    samples through ``snapshot_samples`` from a generator seeded with ``snapshot_seed`` -- the
    same draws at every epoch make grids comparable over training (seed Figs. 2, 4, 8), and the
    training stream is left untouched -- after a CPU copy of the weights when
    ``snapshot_weights`` (the flow keeps samples only: 27.7M parameters per snapshot would bloat
    the resume checkpoint).
    """

    n_samples: int = 16
    snapshot_seed: int = 0
    snapshot_weights: bool = True

    def __init__(self, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer]):
        self.model, self.optimizers = model, optimizers

    def train_step(self, batch: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must define train_step")

    def evaluate(self, generator: torch.Generator) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must define evaluate")

    def snapshot_samples(self, generator: torch.Generator) -> torch.Tensor:
        return self.model.sample(self.n_samples, generator=generator)

    def snapshot(self, generator: torch.Generator) -> dict:
        out = {}
        if self.snapshot_weights:
            out["model"] = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        if self.n_samples:
            g = torch.Generator(device=generator.device).manual_seed(self.snapshot_seed)
            out["samples"] = self.snapshot_samples(g).cpu()
        return out

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), **{name: opt.state_dict() for name, opt in self.optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def _rng_state(generator: torch.Generator, device: torch.device) -> dict:
    # Library code draws only from torch RNGs (explicit generator; global one for dropout/init).
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def load_checkpoint(path: str | os.PathLike, device: torch.device) -> dict:
    # RNG states must stay on the CPU; the trainer moves weights and optimiser state to its device.
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_resume(path: Path, device: torch.device) -> dict | None:
    """The resume checkpoint at ``path``, or None when it cannot be read (truncated by a kill or a
    full disk): it is then renamed to ``<name>.unreadable`` so that this and every later rerun
    start afresh instead of failing on it, and the log names both paths."""
    try:
        return load_checkpoint(path, device)
    except Exception as e:  # torch raises RuntimeError, EOFError, pickle errors... for a damaged file
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        log.warning("resume checkpoint %s is unreadable (%s: %s); moved it to %s and training restarts from epoch 0",
                    path, type(e).__name__, str(e).splitlines()[0] if str(e) else "", aside)
        return None


class TrainingDiverged(FloatingPointError):
    """A non-finite loss, gradient or metric: the message names the run, the epoch and the config keys."""

    user_facing = True  # an entry script logs the message alone, without a traceback (dgm.entry)


def _divergence_hint(trainer: Trainer) -> str:
    """The config keys that usually cure a diverged run of ``trainer``'s model."""
    from dgm import registry

    spec = registry.by_class(type(trainer.model).__name__)
    section = getattr(trainer, "config_section", None) or (spec.name if spec else type(trainer.model).__name__)
    keys = [f"{section}.lr"] + ([f"{section}.grad_clip"] if hasattr(trainer, "grad_clip") else [])
    return f"look at {' / '.join(keys)} (a smaller learning rate{', gradient clipping' if len(keys) > 1 else ''})"


def _readable(v) -> bool:
    """A Python number or a one-element CPU tensor: reading it costs no wait on an accelerator."""
    return isinstance(v, (float, int)) or (isinstance(v, torch.Tensor) and v.device.type == "cpu" and v.numel() == 1)


def _check_finite(values: dict, what: str) -> None:
    # Only values that can be read for free (_readable); fit watches GPU tensors on the device (_EpochSums).
    bad = {k: float(v) for k, v in values.items() if _readable(v) and not math.isfinite(float(v))}
    if bad:
        raise FloatingPointError(f"{what} is not finite: " + ", ".join(f"{k} = {v}" for k, v in bad.items()))


class _EpochSums:
    """The batch-size-weighted sums of an epoch's training statistics, for ``fit``, without making an
    accelerator wait for the host at every step. A statistic that is free to read (a Python number, a
    CPU tensor: ``_readable``) is summed at once as a Python float; a tensor on a GPU is summed in
    float64 on its device -- the same IEEE arithmetic in the same order, so the epoch means are the
    same -- and read with the others in one transfer at the end of the epoch. Those cannot be checked
    step by step for free, so the first step with a non-finite one is recorded on the device
    (``first_bad``, 0 for none) and reported by :meth:`read`; ``fit`` checks the readable ones at every
    step."""

    def __init__(self):
        self.sums: dict[str, float | torch.Tensor] = {}
        self.first_bad: torch.Tensor | None = None  # () int64 on the device: 1-based step, 0 while all finite

    def add(self, step: int, stats: dict, weight: int) -> None:
        watched = []
        for k, v in stats.items():
            if _readable(v):
                v = float(v)  # a CPU tensor is read at once: cheaper there than more tensor arithmetic
            elif isinstance(v, torch.Tensor):
                v = v.detach().double()
                watched.append(v)
            self.sums[k] = self.sums.get(k, 0.0) + v * weight
        if watched:
            bad = ~torch.isfinite(torch.stack(watched)).all()
            if self.first_bad is None:
                self.first_bad = torch.zeros((), dtype=torch.int64, device=watched[0].device)
            self.first_bad = torch.where(bad & (self.first_bad == 0), step, self.first_bad)

    def read(self, seen: int) -> tuple[dict[str, float], int]:
        """(means over ``seen`` items, the first non-finite step or 0), in one read from the device."""
        tensors = {k: v for k, v in self.sums.items() if isinstance(v, torch.Tensor)}
        values = dict(self.sums)
        first_bad = 0
        if tensors:
            extra = [] if self.first_bad is None else [self.first_bad.to(torch.float64)]
            read = torch.stack([*tensors.values(), *extra]).tolist()
            values.update(zip(tensors, read))
            first_bad = int(read[-1]) if extra else 0
        return {k: v / seen for k, v in values.items()}, first_bad


def fit(
    trainer: Trainer,
    train_data: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    checkpoint_path: str | os.PathLike | None,
    metrics_path: str | os.PathLike | None,
    fingerprint: str = "",
    snapshot_epochs: set[int] = frozenset(),
    prepare_batch: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    device: torch.device | None = None,
    drop_last: bool = False,
    stop_after_epoch: int | None = None,
) -> tuple[list[dict], dict[int, dict]]:
    """Train for ``epochs`` epochs (resuming from ``checkpoint_path`` when it holds this run).

    ``train_data`` stays where it is (CPU or device); minibatches are gathered by index and moved
    to ``device``; a tuple of equally long tensors (images, labels) gives tuples of minibatches.
    ``prepare_batch(batch, generator)`` turns stored data into model input (e.g. a dynamic
    binarisation). ``checkpoint_path`` / ``metrics_path`` None: no resume checkpoint / no CSV.
    Epoch 0 evaluates the untrained model, so curves and sample grids start at initialisation as
    in the seed study. Returns (metrics rows, snapshots by epoch).

    A non-finite training statistic or validation metric, or a ``FloatingPointError`` the trainer
    raises (a non-finite gradient), stops training at that step with ``TrainingDiverged`` naming
    the run, the epoch and the config keys to look at; the metrics CSV is removed. An unreadable
    resume checkpoint is set aside (logged) and training starts afresh.

    ``stop_after_epoch`` kills the process with SIGKILL right after that epoch's checkpoint is
    written: a fault-injection hook for the resume tests (env DGM_KILL_AFTER_EPOCH).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    tensors = train_data if isinstance(train_data, tuple) else (train_data,)
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"train_data tensors differ in length: {[len(t) for t in tensors]}")
    device = device or tensors[0].device
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
    rows: list[dict] = []
    snapshots: dict[int, dict] = {}
    start = 0
    ckpt = _read_resume(checkpoint_path, device) if checkpoint_path is not None and checkpoint_path.exists() else None
    if ckpt is not None:
        if ckpt.get("version") == CHECKPOINT_VERSION and ckpt.get("fingerprint") == fingerprint:
            trainer.load_state_dict(ckpt["trainer"])
            _set_rng_state(ckpt["rng"], generator, device)
            rows, snapshots, start = ckpt["rows"], ckpt["snapshots"], ckpt["epoch"]
            log.info("resuming from %s after epoch %d of %d", checkpoint_path, start, epochs)
        else:
            log.info("ignoring %s: it belongs to a different configuration", checkpoint_path)

    if metrics_path is not None or checkpoint_path is not None:
        run = f"training run {Path(metrics_path if metrics_path is not None else checkpoint_path).parent}"
    else:
        run = f"training of {type(trainer.model).__name__}"

    def diverged(error: FloatingPointError, epoch: int, where: str) -> TrainingDiverged:
        # A diverged run leaves no result behind: the CSV of its earlier epochs goes too.
        if metrics_path is not None:
            Path(metrics_path).unlink(missing_ok=True)
        return TrainingDiverged(f"{run} diverged at epoch {epoch} of {epochs}, {where}: {error}; "
                                f"{_divergence_hint(trainer)}; no output was written")

    def evaluate(epoch: int) -> dict[str, float]:
        try:
            metrics = trainer.evaluate(generator)
            _check_finite(metrics, "the validation metrics")
        except FloatingPointError as e:
            raise diverged(e, epoch, "validation") from e
        return metrics

    def checkpoint(epoch: int) -> None:
        if metrics_path is not None:
            write_csv(rows, metrics_path)
        if checkpoint_path is None:
            return
        io.torch_save(
            {
                "version": CHECKPOINT_VERSION,
                "fingerprint": fingerprint,
                "epoch": epoch,
                "trainer": trainer.state_dict(),
                "rng": _rng_state(generator, device),
                "rows": rows,
                "snapshots": snapshots,
            },
            checkpoint_path,
        )

    if start == 0 and not rows:
        t0 = time.perf_counter()
        row = {"epoch": 0, **{f"valid_{k}": v for k, v in evaluate(0).items()}}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        if 0 in snapshot_epochs:
            snapshots[0] = trainer.snapshot(generator)
        checkpoint(0)

    n = len(tensors[0])
    n_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=generator, device=generator.device)
        sums = _EpochSums()
        seen = 0
        for b in progress(range(n_batches), desc=f"epoch {epoch}/{epochs}"):
            idx = perm[b * batch_size : (b + 1) * batch_size].to(tensors[0].device)
            parts = tuple(t[idx].to(device, non_blocking=True) for t in tensors)
            batch = parts if isinstance(train_data, tuple) else parts[0]
            if prepare_batch is not None:
                batch = prepare_batch(batch, generator)
            try:  # a trainer may raise FloatingPointError itself (a non-finite gradient norm)
                stats = trainer.train_step(batch, generator)
                _check_finite(stats, "the training loss")  # free to read: numbers and CPU tensors
            except FloatingPointError as e:
                raise diverged(e, epoch, f"step {b + 1} of {n_batches}") from e
            sums.add(b + 1, stats, len(idx))  # GPU tensors stay there, watched for non-finite values
            seen += len(idx)
        means, first_bad = sums.read(seen)  # the epoch's one wait for the device
        if first_bad:
            bad = ", ".join(f"{k} = {v}" for k, v in means.items() if not math.isfinite(v))
            error = FloatingPointError(f"the training loss is not finite (epoch means: {bad})")
            raise diverged(error, epoch, f"step {first_bad} of {n_batches} (found at the end of the epoch)")
        train_seconds = time.perf_counter() - t0
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in means.items()}}
        row.update({f"valid_{k}": v for k, v in evaluate(epoch).items()})
        row["train_seconds"] = train_seconds
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        if epoch in snapshot_epochs:
            snapshots[epoch] = trainer.snapshot(generator)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch")
        log.info("epoch %d/%d: %s", epoch, epochs, shown)
        checkpoint(epoch)
        if stop_after_epoch is not None and epoch == stop_after_epoch:
            log.warning("DGM_KILL_AFTER_EPOCH=%d: killing this process with SIGKILL", epoch)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), 9)
    return rows, snapshots
