"""Real MNIST digits (set MNIST_RAW_DIR to a folder of the four IDX files; .ci/run uses mnist-mini)."""
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_snakemake, write_config

RAW = os.environ.get("MNIST_RAW_DIR")
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not RAW, reason="MNIST_RAW_DIR is not set"),
]


@pytest.mark.slow
def test_vae_learns_real_digits(tmp_path):
    cfg = write_config(tmp_path, Path(RAW).resolve(), {
        "data": {"valid_size": 0.2},
        "vae": {"latent_sizes": [20], "hidden_dim": 200, "epochs": 3, "sample_epochs": [0, 3],
                "manifold_epochs": [3]},
    })
    run_snakemake(tmp_path, "results/mnist/vae/z20/seed0/test_metrics.json", configfile=cfg)
    checksums = json.loads((tmp_path / "results/mnist/raw/checksums.json").read_text())["files"]
    # mnist-mini's test files are the official ones; its training file is a 10,000-digit mirror.
    if Path(RAW).name == "mnist-mini":
        assert checksums["test_images"]["official_md5"] and checksums["test_labels"]["official_md5"]
        assert not checksums["train_images"]["official_md5"]
    metrics = pd.read_csv(tmp_path / "results/mnist/vae/z20/seed0/metrics.csv")
    # Untrained decoders give ~543 nats (784 log 2); three epochs of Adam must get far below that.
    assert metrics["valid_nelbo"].iloc[0] > 500
    assert metrics["valid_nelbo"].iloc[-1] < 200
    assert metrics["valid_nelbo"].is_monotonic_decreasing
    test = json.loads((tmp_path / "results/mnist/vae/z20/seed0/test_metrics.json").read_text())
    assert test["n_test"] == 10000 and abs(test["test_nelbo"] - metrics["valid_nelbo"].iloc[-1]) < 15
