"""GPU slots: on a machine with several GPUs, give each GPU job of a workflow its own GPU, or its
own share of one.

Snakemake's ``--resources gpu=N`` caps how many ``gpu=1`` jobs run at once, but not *which*
GPU each one uses: left alone, every job would train on ``cuda:0``. A job calls
:func:`claim_for_job` (or :func:`acquire_gpu`) before anything initialises CUDA; that takes an
exclusive ``fcntl.flock`` on one lock file per slot and points ``CUDA_VISIBLE_DEVICES`` at the
GPU of the slot it got. The kernel drops a flock when the last descriptor of its open file
closes, so a slot frees itself when the job ends, however it ends (exception, ``os._exit``,
SIGKILL, OOM killer): there are no stale locks to clean up.

Each GPU has ``jobs_per_device`` slots (config key ``gpu_jobs_per_device``, default 1): small
jobs (this study's MLPs keep an H100 busy a few per cent of the time) then share a GPU, and
``--resources gpu=N`` counts slots, N = GPUs x jobs per GPU. A new job gets a free slot on the
least-loaded GPU (fewest held slots; the lowest-numbered GPU among equals), so jobs spread over
the GPUs before any GPU takes a second one. The choice is made under a short allocator lock
(``allocate.lock``), so two jobs starting together see each other's slots.

Nothing happens (the functions return ``None`` and leave the environment alone) where there
is nothing to share out: under Slurm, which already bound the job's GPUs (``SLURM_JOB_ID``);
on a CPU-only or single-GPU machine; or when ``CUDA_VISIBLE_DEVICES`` names one device or
none. A ``CUDA_VISIBLE_DEVICES`` that names several devices is the pool to share out, so
``CUDA_VISIBLE_DEVICES=2,3 snakemake --resources gpu=2`` keeps the jobs on GPUs 2 and 3.

Settings from the environment:
    DGM_NUM_GPUS       number of GPUs, instead of asking ``nvidia-smi -L`` (tests simulate GPUs)
    DGM_GPU_LOCK_DIR   lock directory [``.snakemake/gpu-locks``, i.e. per workflow directory]
    DGM_GPU_TIMEOUT    seconds :func:`claim_for_job` waits for a free GPU [no limit]
    DGM_GPU_JOBS_PER_DEVICE  slots per GPU when :func:`claim_for_job` is not told [1]
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = ".snakemake/gpu-locks"

_claimed: GpuSlot | None = None  # the slot claim_for_job holds until this process exits


class GpuSlot:
    """One held GPU. Its lock lasts until :meth:`release` or the end of the process."""

    def __init__(self, device: str, lock_path: Path, fd: int, previous: str | None, slot: int = 0):
        self.device = device  # what CUDA_VISIBLE_DEVICES now says: an index or a GPU UUID
        self.slot = slot  # which of the device's slots (0 .. jobs_per_device - 1)
        self.lock_path = lock_path
        self._fd: int | None = fd
        self._previous = previous  # CUDA_VISIBLE_DEVICES before acquire, restored on release

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Free the GPU and restore ``CUDA_VISIBLE_DEVICES``; idempotent."""
        if self._fd is None:
            return
        os.close(self._fd)  # closing the only descriptor drops the flock
        self._fd = None
        if os.environ.get("CUDA_VISIBLE_DEVICES") == self.device:
            if self._previous is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = self._previous

    def __enter__(self) -> GpuSlot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"GpuSlot(device={self.device!r}, slot={self.slot}, {state}, lock={str(self.lock_path)!r})"


def count_gpus() -> int:
    """GPUs here: ``$DGM_NUM_GPUS`` if set, else the ``GPU n:`` lines of ``nvidia-smi -L``.

    0 when there is no ``nvidia-smi`` or it fails (no driver, no device).
    """
    override = os.environ.get("DGM_NUM_GPUS", "").strip()
    if override:
        if not override.isdigit():
            raise ValueError(f"DGM_NUM_GPUS must be a non-negative integer, not {override!r}")
        return int(override)
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    # MIG instances are listed indented under their GPU ("  MIG 1g.10gb Device 0: ..."), so
    # only the unindented lines count.
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def visible_gpus(n_gpus: int | None = None) -> list[str]:
    """The devices to share out, as ``CUDA_VISIBLE_DEVICES`` entries.

    The entries of ``CUDA_VISIBLE_DEVICES`` when it is set, otherwise ``0 .. n-1`` with
    ``n = n_gpus`` or, if that is None, :func:`count_gpus`.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    n = count_gpus() if n_gpus is None else n_gpus
    if n < 0:
        raise ValueError(f"n_gpus must be >= 0, not {n}")
    return [str(i) for i in range(n)]


def acquire_gpu(
    lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR,
    n_gpus: int | None = None,
    timeout: float | None = None,
    poll: float = 0.1,
    jobs_per_device: int = 1,
) -> GpuSlot | None:
    """Hold one of the ``jobs_per_device`` slots of a GPU, on the least-loaded GPU with a free one,
    and make that GPU the only one CUDA sees.

    Returns a :class:`GpuSlot` (also a context manager) after setting
    ``os.environ["CUDA_VISIBLE_DEVICES"]`` to its device. The slot stays held until
    :meth:`GpuSlot.release` or the end of the process, even if the slot object is dropped: a
    garbage collector must not hand a slot in use to another job. Returns ``None`` and changes
    nothing under Slurm or where fewer than two devices are visible (see the module
    docstring). Waits while every slot is held: ``timeout`` seconds, then ``TimeoutError``;
    ``None`` waits for as long as the holders run. Must run before CUDA is initialised.
    """
    if not isinstance(jobs_per_device, int) or isinstance(jobs_per_device, bool) or jobs_per_device < 1:
        raise ValueError(f"gpu_jobs_per_device must be a positive integer, not {jobs_per_device!r}")
    if os.environ.get("SLURM_JOB_ID"):
        return None  # Slurm bound this job's GPUs and set CUDA_VISIBLE_DEVICES itself
    devices = visible_gpus(n_gpus)
    if len(devices) < 2:
        return None
    _check_cuda_not_initialised()

    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    waiting = False
    while True:
        got = _take_least_loaded(lock_dir, devices, jobs_per_device)
        if got is not None:
            device, slot, path, fd = got
            # Who holds it, for a human looking at the lock directory; never read back.
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode())
            previous = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            log.info("GPU slot: CUDA_VISIBLE_DEVICES=%s (slot %d of %d on it; lock %s)", device, slot + 1,
                     jobs_per_device, path)
            return GpuSlot(device, path, fd, previous, slot)
        if deadline is not None and time.monotonic() >= deadline:
            each = f", {jobs_per_device} jobs each," if jobs_per_device > 1 else ""
            raise TimeoutError(
                f"all {len(devices)} GPUs ({','.join(devices)}){each} stayed held for {timeout} s; "
                f"holders are named in {lock_dir}/*.lock"
            )
        if not waiting:
            log.info("GPU slot: all %d slots of %d GPUs are held, waiting for one to free",
                     len(devices) * jobs_per_device, len(devices))
            waiting = True
        time.sleep(poll)


def slot_lock_path(lock_dir: Path, device: str, slot: int) -> Path:
    """The lock file of ``slot`` on ``device``: ``gpu-<device>.lock`` for the first (the name with one
    job per GPU), ``gpu-<device>.slot<k>.lock`` for the others."""
    return lock_dir / (f"gpu-{_safe_name(device)}.lock" if slot == 0 else f"gpu-{_safe_name(device)}.slot{slot}.lock")


def _take_least_loaded(lock_dir: Path, devices: list[str], jobs_per_device: int
                       ) -> tuple[str, int, Path, int] | None:
    """(device, slot, lock path, locked descriptor) of a free slot on the device with the fewest held
    slots, or None when all are held. Every slot is tried under the allocator lock, which only
    allocators take and never while waiting, so the loads they see are exact."""
    allocator = os.open(lock_dir / "allocate.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    free: dict[tuple[int, int], tuple[Path, int]] = {}  # (device index, slot) -> (path, locked fd)
    try:
        fcntl.flock(allocator, fcntl.LOCK_EX)
        for i, device in enumerate(devices):
            for slot in range(jobs_per_device):
                path = slot_lock_path(lock_dir, device, slot)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)  # held by a running job
                    continue
                free[i, slot] = (path, fd)
        if not free:
            return None
        held = [jobs_per_device - sum(1 for j, _ in free if j == i) for i in range(len(devices))]
        i, slot = min(free, key=lambda key: (held[key[0]], key))
        path, fd = free.pop((i, slot))
        return devices[i], slot, path, fd
    finally:
        for _, other in free.values():
            os.close(other)  # probed, not taken: free again
        os.close(allocator)  # closing drops the allocator lock


def claim_for_job(
    lock_dir: str | os.PathLike | None = None, timeout: float | None = None, jobs_per_device: int | None = None
) -> GpuSlot | None:
    """Hold a GPU slot for the rest of this process (a workflow job); repeated calls return it again.

    ``lock_dir`` defaults to ``$DGM_GPU_LOCK_DIR`` or ``.snakemake/gpu-locks`` under the
    working directory (Snakemake runs jobs in the workflow directory), ``timeout`` to
    ``$DGM_GPU_TIMEOUT`` or no limit, ``jobs_per_device`` (the config's ``gpu_jobs_per_device``,
    which the entry scripts pass) to ``$DGM_GPU_JOBS_PER_DEVICE`` or 1. See :func:`acquire_gpu`.
    """
    global _claimed
    if _claimed is not None and _claimed.held:
        return _claimed
    if lock_dir is None:
        lock_dir = os.environ.get("DGM_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR
    if timeout is None and os.environ.get("DGM_GPU_TIMEOUT"):
        timeout = float(os.environ["DGM_GPU_TIMEOUT"])
    if jobs_per_device is None:
        setting = os.environ.get("DGM_GPU_JOBS_PER_DEVICE", "").strip() or "1"
        if not setting.isdigit():
            raise ValueError(f"DGM_GPU_JOBS_PER_DEVICE must be a positive integer, not {setting!r}")
        jobs_per_device = int(setting)
    _claimed = acquire_gpu(lock_dir, timeout=timeout, jobs_per_device=jobs_per_device)
    return _claimed


def _safe_name(device: str) -> str:
    """A file-name-safe form of a CUDA_VISIBLE_DEVICES entry ("0", "GPU-8a1f...", "MIG-...")."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device)


def _check_cuda_not_initialised() -> None:
    # CUDA reads CUDA_VISIBLE_DEVICES once, when it initialises; setting it later would
    # silently leave the job on whatever GPU it already has.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError(
            "acquire_gpu() must run before CUDA is initialised: call it before the first "
            "use of torch.cuda"
        )
