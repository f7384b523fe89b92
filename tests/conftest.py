"""Shared fixtures: tiny synthetic MNIST-format data and a helper that runs Snakemake on it.

The suite makes its own data, so it passes on a fresh clone without ../shared.
"""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# A config that runs the whole DAG on the synthetic data in well under a minute of training.
TINY_CONFIG = {
    "report": {"pdf": False},  # tests/test_report.py compiles the PDF where latexmk exists
    # As config/smoke.yaml: on the CPU, one thread per job, so that run_snakemake's --cores 2 runs two of
    # these start-up-bound jobs at once.
    "device": "cpu",
    "threads": 1,
    "data": {"valid_size": 0.25},
    # The study's first three models; the IWAE (the VAE's tiny networks below, on the k = 3 bound) joins the
    # dry run of tests/test_workflow.py only, which keeps the whole-DAG run as short as before.
    "models": ["vae", "gan", "flow"],
    "vae": {
        "latent_sizes": [2, 3],
        "hidden_dim": 16,
        "epochs": 2,
        "batch_size": 64,
        "sample_epochs": [0, 2],
        "manifold_epochs": [0, 1, 2],
        "manifold_size": 4,
    },
    "likelihood": {
        "k": 50,
        "sweep_ks": [1, 10, 50],
        "sweep_images": 40,
        "sweep_repeats": 2,
        "batch_size": 20,
        "chunk_size": 10,
        "kl_samples": 10000,
        "quadrature": {"points_per_dim": 16, "levels": 2, "tol": 0.05, "max_points_per_dim": 64, "chunk_size": 64},
        "ais": {"images": 4, "chains": 4, "steps": 20, "sweep_steps": [0, 5, 20], "leapfrog": 3, "sigma_images": 4,
                "sigma_steps": 5, "sigma_grid": [0.05, 0.1, 0.2, 0.4], "bdmc_images": 3, "bdmc_steps": 20},
    },
    "flow": {
        "n_blocks": 2,
        "hidden_dim": 16,
        "epochs": 2,
        "batch_size": 64,
        "sample_epochs": [0, 2],
        "eval_batch_size": 64,
        "interpolation_rows": 2,
        "interpolation_steps": 4,
    },
    "gan": {
        "latent_sizes": [8],
        "hidden_dim": 8,
        "epochs": 2,
        "batch_size": 64,
        "sample_epochs": [0, 2],
        "quality_epochs": [1],
        "interpolation_rows": 2,
        "eval_batch_size": 64,
    },
    "quality": {"n_samples": 200, "batch_size": 100, "classifier": {"epochs": 1}},
}
TINY_CONFIG["iwae"] = {**TINY_CONFIG["vae"], "k": 3}


TINY_RUN_SEEDS = [0, 1]  # tiny_run trains every model twice: the report's mean ± SD and bands over seeds


def write_idx(path: Path, array: np.ndarray, *, gz: bool = True) -> Path:
    """Write ``array`` (uint8, 1-D labels or 3-D images) in the IDX format."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x801 if array.ndim == 1 else 0x803
    header = struct.pack(">II", magic, array.shape[0]) + b"".join(struct.pack(">I", d) for d in array.shape[1:])
    payload = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 images from 10 fixed blurry stroke prototypes, with labels 0..9."""
    protos = np.zeros((10, 28, 28), dtype=np.float32)
    proto_rng = np.random.default_rng(12345)
    yy, xx = np.mgrid[0:28, 0:28]
    for c in range(10):
        for _ in range(4):  # four Gaussian "strokes" per class
            cy, cx = proto_rng.uniform(6, 22, size=2)
            protos[c] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * proto_rng.uniform(2, 6)))
    protos = np.clip(protos / protos.max(axis=(1, 2), keepdims=True), 0, 1)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    noise = rng.normal(0, 0.1, size=(n, 28, 28))
    images = np.clip(protos[labels] + noise, 0, 1) * 255
    return images.astype(np.uint8), labels


def make_raw_dir(folder: Path, *, n_train: int = 400, n_test: int = 100, gz: bool = True) -> Path:
    train_x, train_y = synthetic_digits(n_train, seed=1)
    test_x, test_y = synthetic_digits(n_test, seed=2)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{STEMS['train_images']}{suffix}", train_x, gz=gz)
    write_idx(folder / f"{STEMS['train_labels']}{suffix}", train_y, gz=gz)
    write_idx(folder / f"{STEMS['test_images']}{suffix}", test_x, gz=gz)
    write_idx(folder / f"{STEMS['test_labels']}{suffix}", test_y, gz=gz)
    return folder


@pytest.fixture(scope="session")
def tiny_raw_dir(tmp_path_factory) -> Path:
    return make_raw_dir(tmp_path_factory.mktemp("raw"))


def write_config(workdir: Path, raw_dir: Path, overrides: dict | None = None) -> Path:
    cfg = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    cfg["data"]["raw_dir"] = str(raw_dir)
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            cfg.setdefault(section, {}).update(values)
        else:
            cfg[section] = values
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_snakemake(workdir: Path, *args: str, configfile: Path | None = None, env: dict | None = None,
                  check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with ``workdir`` as working directory."""
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2"]
    cmd += list(args)  # targets first: --configfile takes every word after it
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-8000:]}")
    return proc


def assert_config_rejected(workdir: Path, configfile: Path, config_arg: str, key: str, *args: str) -> None:
    """Snakemake with ``--config config_arg`` fails naming ``config key <key>:`` before any job writes results."""
    proc = run_snakemake(workdir, *args, "--config", config_arg, configfile=configfile, check=False)
    assert proc.returncode != 0
    assert f"config key {key}:" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_raw_dir) -> Path:
    """The whole DAG on the tiny config with two seeds, run once per session and shared by the tests
    that read it."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    run_snakemake(workdir, configfile=write_config(workdir, tiny_raw_dir, {"seeds": TINY_RUN_SEEDS}))
    return workdir
