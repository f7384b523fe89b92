"""GPU slots with simulated GPUs: separate processes contend for lock files as real jobs would."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from dgm import gpu_slots

SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"
CUDA_CHECK = gpu_slots._check_cuda_not_initialised

# A stand-in for a training job: claim a slot, report it, then hold it until stdin closes
# (or leave at once with os._exit, skipping every Python-level cleanup).
JOB = textwrap.dedent(
    """
    import os, sys
    from dgm.gpu_slots import acquire_gpu
    lock_dir, n_gpus, timeout, mode, per_device = sys.argv[1:]
    slot = acquire_gpu(lock_dir, n_gpus=int(n_gpus), timeout=float(timeout), jobs_per_device=int(per_device))
    print(os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
    if mode == "crash":
        os._exit(1)
    sys.stdin.read()
    """
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "DGM_NUM_GPUS", "DGM_GPU_LOCK_DIR",
                "DGM_GPU_TIMEOUT", "DGM_GPU_JOBS_PER_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(gpu_slots, "_claimed", None)
    # On a GPU machine another test may have initialised CUDA in this process already.
    monkeypatch.setattr(gpu_slots, "_check_cuda_not_initialised", lambda: None)


class Job:
    """One JOB process, started at once; :meth:`device` reads the GPU it got."""

    def __init__(self, lock_dir, n_gpus, timeout=5.0, mode="hold", per_device=1):
        env = dict(os.environ, PYTHONPATH=str(SCRIPTS))  # clean_env already dropped Slurm's
        self.proc = subprocess.Popen(
            [sys.executable, "-c", JOB, str(lock_dir), str(n_gpus), str(timeout), mode, str(per_device)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )

    def device(self, wait=5.0) -> str | None:
        """The device it got, or None if it has not got one within ``wait`` seconds."""
        ready, _, _ = select.select([self.proc.stdout], [], [], wait)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        assert line, f"job died before acquiring: {self.proc.stderr.read()}"
        return line.strip()

    def finish(self):
        self.proc.stdin.close()
        assert self.proc.wait(5) == 0, self.proc.stderr.read()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def cleanup(self):
        if self.proc.poll() is None:
            self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if not f.closed:
                f.close()


@pytest.fixture
def jobs():
    started = []

    def start(*args, **kwargs):
        started.append(Job(*args, **kwargs))
        return started[-1]

    yield start
    for job in started:
        job.cleanup()


def test_concurrent_jobs_get_distinct_gpus(tmp_path, jobs):
    running = [jobs(tmp_path, n_gpus=4) for _ in range(4)]
    assert sorted(job.device() for job in running) == ["0", "1", "2", "3"]
    for job in running:
        job.finish()


@pytest.mark.parametrize("crash", ["sigkill", "os_exit"])
def test_a_crashed_job_frees_its_gpu(tmp_path, jobs, crash):
    survivor = jobs(tmp_path, n_gpus=2)
    assert survivor.device() == "0"
    victim = jobs(tmp_path, n_gpus=2, mode="crash" if crash == "os_exit" else "hold")
    assert victim.device() == "1"
    if crash == "sigkill":
        victim.kill()
    else:
        assert victim.proc.wait(5) == 1  # left through os._exit without releasing anything
    # GPU 0 is still held, so the next job can only start if the crash freed GPU 1.
    later = jobs(tmp_path, n_gpus=2, timeout=2)
    assert later.device() == "1"
    later.finish()
    survivor.finish()


def test_an_extra_job_waits_until_a_gpu_frees(tmp_path, jobs):
    first = jobs(tmp_path, n_gpus=2)
    assert first.device() == "0"
    second = jobs(tmp_path, n_gpus=2)
    assert second.device() == "1"
    extra = jobs(tmp_path, n_gpus=2, timeout=5)
    assert extra.device(wait=0.5) is None  # both GPUs busy: it waits
    first.finish()
    assert extra.device(wait=3) == "0"
    second.finish()
    extra.finish()


def test_acquire_times_out_when_every_gpu_stays_held(tmp_path, jobs):
    holders = [jobs(tmp_path, n_gpus=2) for _ in range(2)]
    assert {h.device() for h in holders} == {"0", "1"}
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="all 2 GPUs"):
        gpu_slots.acquire_gpu(tmp_path, n_gpus=2, timeout=0.3, poll=0.05)
    assert 0.3 <= time.monotonic() - start < 2
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    for h in holders:
        h.finish()


def test_several_jobs_per_gpu_spread_over_the_gpus(tmp_path, jobs):
    """gpu_jobs_per_device = 2 on 2 GPUs: four slots; jobs alternate between the GPUs (each goes to
    the least-loaded one), a fifth waits, and a freed slot is taken again."""
    running = []
    for expected in ["0", "1", "0", "1"]:  # started one after another: each sees the others' slots
        running.append(jobs(tmp_path, n_gpus=2, per_device=2))
        assert running[-1].device() == expected
    assert sorted(p.name for p in tmp_path.glob("gpu-*.lock")) == [
        "gpu-0.lock", "gpu-0.slot1.lock", "gpu-1.lock", "gpu-1.slot1.lock"]
    extra = jobs(tmp_path, n_gpus=2, per_device=2)
    assert extra.device(wait=0.5) is None  # four slots held: it waits
    running[1].finish()  # a slot on GPU 1 frees
    assert extra.device(wait=3) == "1"
    for job in running[:1] + running[2:] + [extra]:
        job.finish()


def test_a_new_job_goes_to_the_least_loaded_gpu(tmp_path, jobs):
    """Not simply the lowest free slot: with GPU 0's second slot held and GPU 1 idle, GPU 1."""
    started = []
    for expected in ["0", "1", "0"]:  # one after another
        started.append(jobs(tmp_path, n_gpus=2, per_device=2))
        assert started[-1].device() == expected
    first, second, third = started
    first.finish()
    second.finish()  # now only `third` runs, in GPU 0's second slot; GPU 0's first slot is free
    later = jobs(tmp_path, n_gpus=2, per_device=2)
    assert later.device() == "1"
    later.finish()
    third.finish()


def test_many_jobs_started_together_fill_every_slot_evenly(tmp_path, jobs):
    running = [jobs(tmp_path, n_gpus=3, per_device=2) for _ in range(6)]
    assert sorted(job.device() for job in running) == ["0", "0", "1", "1", "2", "2"]
    for job in running:
        job.finish()


def test_jobs_per_device_is_checked_and_read_from_the_environment(tmp_path, monkeypatch):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="gpu_jobs_per_device"):
            gpu_slots.acquire_gpu(tmp_path, n_gpus=2, jobs_per_device=bad)
    monkeypatch.setenv("DGM_NUM_GPUS", "2")
    monkeypatch.setenv("DGM_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("DGM_GPU_JOBS_PER_DEVICE", "3")
    holders = []
    for _ in range(5):  # as five other jobs would: each sees both GPUs
        holders.append(gpu_slots.acquire_gpu(tmp_path, n_gpus=2, jobs_per_device=3))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    slot = gpu_slots.claim_for_job(timeout=0)  # the sixth slot: GPU 1's third
    try:
        assert (slot.device, slot.slot) == ("1", 2) and slot.lock_path.name == "gpu-1.slot2.lock"
        assert [(h.device, h.slot) for h in holders] == [("0", 0), ("1", 0), ("0", 1), ("1", 1), ("0", 2)]
    finally:
        for held in holders + [slot]:
            held.release()
    monkeypatch.setenv("DGM_GPU_JOBS_PER_DEVICE", "two")
    with pytest.raises(ValueError, match="DGM_GPU_JOBS_PER_DEVICE"):
        gpu_slots.claim_for_job()


def test_config_key_gpu_jobs_per_device_reaches_the_allocator(tmp_path, monkeypatch):
    """config.yaml sets gpu_jobs_per_device (default 1), the schema takes positive integers, and a
    torch job's entry (dgm.entry.start_torch_job) passes the config's value to the allocator."""
    import logging

    import jsonschema
    import yaml

    from dgm import entry

    repo = SCRIPTS.parents[1]
    assert yaml.safe_load((repo / "config.yaml").read_text())["gpu_jobs_per_device"] == 1
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    key = {"type": "object", "properties": {"gpu_jobs_per_device": schema["properties"]["gpu_jobs_per_device"]}}
    jsonschema.validate({"gpu_jobs_per_device": 4}, key)
    for bad in (0, 1.5, "2"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"gpu_jobs_per_device": bad}, key)

    asked = []
    monkeypatch.setattr(gpu_slots, "claim_for_job", lambda **kw: asked.append(kw))
    for name in ("stdout", "stderr", "excepthook"):  # start_log redirects them to the job's log
        monkeypatch.setattr(sys, name, getattr(sys, name))
    monkeypatch.setattr(logging.root, "handlers", list(logging.root.handlers))
    threads = __import__("torch").get_num_threads()
    for config, expected in (({"gpu_jobs_per_device": 3}, 3), ({}, 1)):
        job = types.SimpleNamespace(log=[str(tmp_path / "job.log")], threads=threads, config=config,
                                    resources={"gpu": 1})
        entry.start_torch_job(job)
        assert asked.pop() == {"jobs_per_device": expected}
    # a job without the gpu resource (device: cpu) claims nothing
    job = types.SimpleNamespace(log=[str(tmp_path / "job.log")], threads=threads, config={}, resources={"gpu": 0})
    entry.start_torch_job(job)
    assert asked == []
    sys.stdout.close()


def test_slot_sets_then_restores_cuda_visible_devices(tmp_path):
    with gpu_slots.acquire_gpu(tmp_path, n_gpus=2) as slot:
        assert slot.held and slot.device == "0"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert (tmp_path / "gpu-0.lock").read_text().endswith(f"pid {os.getpid()}\n")
    assert not slot.held
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    slot.release()  # idempotent


def test_a_multi_device_cuda_visible_devices_is_the_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-8a1f")
    first = gpu_slots.acquire_gpu(tmp_path, n_gpus=8)  # the visible list wins over the count
    assert first.device == os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    # The job's own later calls now see one device and leave it alone.
    assert gpu_slots.acquire_gpu(tmp_path) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-8a1f")  # another job's environment
    second = gpu_slots.acquire_gpu(tmp_path)
    assert second.device == "GPU-8a1f"
    assert (tmp_path / "gpu-GPU-8a1f.lock").exists()
    second.release()
    first.release()


@pytest.mark.parametrize(
    "env, n_gpus",
    [
        ({}, 0),                                             # CPU-only machine
        ({}, 1),                                             # one GPU: nothing to choose
        ({"SLURM_JOB_ID": "42"}, 4),                         # Slurm bound the GPUs already
        ({"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "0,1"}, None),
        ({"CUDA_VISIBLE_DEVICES": "3"}, 4),                  # already pinned to one device
        ({"CUDA_VISIBLE_DEVICES": ""}, 4),                   # GPUs hidden on purpose
        ({"DGM_NUM_GPUS": "1"}, None),
    ],
)
def test_no_effect_without_several_gpus_or_under_slurm(tmp_path, monkeypatch, env, n_gpus):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = dict(os.environ)
    lock_dir = tmp_path / "locks"
    assert gpu_slots.acquire_gpu(lock_dir, n_gpus=n_gpus, timeout=0) is None
    assert dict(os.environ) == before
    assert not lock_dir.exists()


def test_count_gpus_reads_nvidia_smi_or_the_override(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaa)'\n"
        "echo '  MIG 1g.10gb     Device  0: (UUID: MIG-bbb)'\n"
        "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-ccc)'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_slots.count_gpus() == 2
    monkeypatch.setenv("DGM_NUM_GPUS", "3")
    assert gpu_slots.count_gpus() == 3
    monkeypatch.setenv("DGM_NUM_GPUS", "two")
    with pytest.raises(ValueError, match="DGM_NUM_GPUS"):
        gpu_slots.count_gpus()


def test_count_gpus_is_zero_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    assert gpu_slots.count_gpus() == 0


def test_claim_for_job_holds_one_slot_for_the_process(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_NUM_GPUS", "2")
    monkeypatch.setenv("DGM_GPU_LOCK_DIR", str(tmp_path))
    slot = gpu_slots.claim_for_job()
    try:
        assert slot.device == "0" and slot.lock_path.parent == tmp_path
        assert gpu_slots.claim_for_job() is slot
    finally:
        slot.release()


def test_refuses_once_cuda_is_initialised(tmp_path, monkeypatch):
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setattr(gpu_slots, "_check_cuda_not_initialised", CUDA_CHECK)
    with pytest.raises(RuntimeError, match="before CUDA is initialised"):
        gpu_slots.acquire_gpu(tmp_path, n_gpus=2)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
