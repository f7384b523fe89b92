"""Rule-level tests: one rule at a time through Snakemake, on the synthetic IDX fixture."""
import json

import pandas as pd
import pytest
import torch

from conftest import STEMS, assert_config_rejected, run_snakemake, write_config
from dgm import data

RAW = "results/mnist/raw"


@pytest.fixture()
def workdir(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir)
    return tmp_path, cfg


def test_download_mnist_takes_local_folder(workdir, tiny_raw_dir):
    wd, cfg = workdir
    run_snakemake(wd, f"{RAW}/checksums.json", configfile=cfg)
    record = json.loads((wd / RAW / "checksums.json").read_text())
    for key, stem in STEMS.items():
        assert record["files"][key]["md5"] == data.md5sum(tiny_raw_dir / f"{stem}.gz")
        assert record["files"][key]["official_md5"] is False
        assert (wd / RAW / stem).read_bytes()[:4] in (b"\x00\x00\x08\x03", b"\x00\x00\x08\x01")


def test_prepare_mnist_writes_splits(workdir):
    wd, cfg = workdir
    run_snakemake(wd, "results/mnist/data/splits.json", configfile=cfg)
    summary = json.loads((wd / "results/mnist/data/splits.json").read_text())
    assert (summary["n_train"], summary["n_valid"], summary["n_test"]) == (300, 100, 100)
    splits = data.load_splits(wd / "results/mnist/data/splits.pt")
    assert splits["valid_binary"].shape == (100, 28, 28) and "train_binary" not in splits


def test_static_binarisation_stores_training_draw(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir, {"data": {"binarization": "static", "valid_size": 50}})
    run_snakemake(tmp_path, "results/mnist/data/splits.pt", configfile=cfg)
    splits = data.load_splits(tmp_path / "results/mnist/data/splits.pt")
    assert splits["train_binary"].shape == (350, 28, 28)


def test_train_vae_rule_outputs(workdir):
    wd, cfg = workdir
    run_snakemake(wd, "results/mnist/vae/z2/seed0/model.pt", configfile=cfg)
    run = wd / "results/mnist/vae/z2/seed0"
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1, 2]
    assert {"train_nelbo", "train_recon", "train_kl", "valid_nelbo", "valid_recon", "valid_kl"} <= set(metrics)
    assert (run / "samples/epoch000.png").exists() and (run / "samples/epoch002.png").exists()
    assert not (run / ".resume.pt").exists()
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["model"]["latent_dim"] == 2 and ckpt["epoch"] == 2 and ckpt["version"] == 1
    log = (wd / "logs/train/mnist/vae/z2/seed0.log").read_text()
    assert "epoch 2/2" in log and "\r" not in log
    assert (wd / "benchmarks/train/mnist/vae/z2/seed0.tsv").exists()


def test_evaluate_vae_rule(workdir):
    wd, cfg = workdir
    run_snakemake(wd, "results/mnist/vae/z2/seed0/test_metrics.json", configfile=cfg)
    result = json.loads((wd / "results/mnist/vae/z2/seed0/test_metrics.json").read_text())
    assert result["n_test"] == 100 and result["latent_dim"] == 2
    assert result["test_nelbo"] == pytest.approx(result["test_recon"] + result["test_kl"], rel=1e-6)
    assert result["test_nelbo_stderr"] > 0


@pytest.mark.parametrize(
    "config_arg, key",
    [
        ("vae={latent_sizes: [0]}", "vae.latent_sizes[0]"),
        ("vae={epochs: 0}", "vae.epochs"),
        ("models=[vae, unet]", "models[1]"),
        ("data={raw_dir: /does/not/exist}", "data.raw_dir"),
        ("vae={batch_size: lots}", "vae.batch_size"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, tiny_raw_dir, config_arg, key):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir), config_arg, key)
