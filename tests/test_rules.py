"""Rule-level tests: one rule at a time through Snakemake, on the synthetic IDX fixture."""
import json

import pandas as pd
import pytest
import torch

from conftest import STEMS, assert_config_rejected, make_raw_dir, run_snakemake, write_config
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


def test_corrupt_file_fails_naming_it_and_nothing_downstream_runs(tmp_path):
    raw = make_raw_dir(tmp_path / "raw", n_train=60, n_test=20)
    bad = raw / f"{STEMS['train_images']}.gz"
    bad.write_bytes(bad.read_bytes()[:-200])
    cfg = write_config(tmp_path, raw)
    proc = run_snakemake(tmp_path, "results/mnist/data/splits.pt", configfile=cfg, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/download_mnist/mnist.log").read_text()
    assert "train-images-idx3-ubyte.gz" in log and ("truncated" in log or "corrupt" in log)
    assert not (tmp_path / RAW / "checksums.json").exists()
    assert not (tmp_path / "results/mnist/data/splits.pt").exists()
    assert not (tmp_path / "logs/prepare_mnist").exists()  # the downstream rule never started


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


def test_killed_training_resumes_to_the_same_result(tmp_path, tiny_raw_dir):
    over = {"vae": {"epochs": 4, "sample_epochs": [0, 4], "manifold_epochs": [4]}}
    target = "results/mnist/vae/z3/seed0/model.pt"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a = write_config(tmp_path / "a", tiny_raw_dir, over)
    cfg_b = write_config(tmp_path / "b", tiny_raw_dir, over)
    run_snakemake(tmp_path / "a", target, configfile=cfg_a)

    killed = run_snakemake(tmp_path / "b", target, configfile=cfg_b, env={"DGM_KILL_AFTER_EPOCH": "2"}, check=False)
    assert killed.returncode != 0
    run_b = tmp_path / "b/results/mnist/vae/z3/seed0"
    assert (run_b / ".resume.pt").exists() and not (run_b / "model.pt").exists()
    assert torch.load(run_b / ".resume.pt", weights_only=True)["epoch"] == 2

    run_snakemake(tmp_path / "b", target, configfile=cfg_b)
    log = (tmp_path / "b/logs/train/mnist/vae/z3/seed0.log").read_text()
    assert "resuming" in log and "after epoch 2 of 4" in log
    a = pd.read_csv(tmp_path / "a/results/mnist/vae/z3/seed0/metrics.csv").filter(regex="nelbo|recon|kl")
    b = pd.read_csv(run_b / "metrics.csv").filter(regex="nelbo|recon|kl")
    pd.testing.assert_frame_equal(a, b)
    wa = torch.load(tmp_path / "a/results/mnist/vae/z3/seed0/model.pt", weights_only=True)["state_dict"]
    wb = torch.load(run_b / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


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
