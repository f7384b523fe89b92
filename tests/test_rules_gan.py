"""Rule-level tests of the GAN and sample-quality rules on the synthetic IDX fixture.

One working directory is shared by the module, so later tests reuse what earlier ones built
(Snakemake runs only what is missing); each test still asks for its own targets.
"""
import json
import math

import pandas as pd
import pytest
import torch

from conftest import assert_config_rejected, run_snakemake, write_config

GAN_RUN = "results/mnist/gan/z8/seed0"
MODELS = {"models": ["vae", "gan"]}  # the models whose rules these tests exercise


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_raw_dir):
    wd = tmp_path_factory.mktemp("gan")
    return wd, write_config(wd, tiny_raw_dir, MODELS)


def test_train_gan_rule_outputs(workdir):
    wd, cfg = workdir
    run_snakemake(wd, f"{GAN_RUN}/model.pt", configfile=cfg)
    run = wd / GAN_RUN
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1, 2]
    for part in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert metrics[f"train_{part}"].iloc[1:].notna().all() and metrics[f"valid_{part}"].notna().all()
    assert metrics[["train_d_real", "train_d_fake"]].iloc[1:].apply(lambda c: c.between(0, 1)).all().all()
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["epoch000.png", "epoch002.png"]
    snapshots = torch.load(run / "snapshots.pt", weights_only=True)
    assert sorted(snapshots) == [0, 1, 2]  # sample epochs and gan.quality_epochs
    assert snapshots[2]["samples"].shape == (25, 1, 28, 28)
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["model"]["class"] == "GAN" and ckpt["model"]["latent_dim"] == 8 and ckpt["epoch"] == 2
    assert ckpt["options"]["betas"] == [0.5, 0.999] and ckpt["options"]["lr"] == 2e-4
    assert not (run / ".resume.pt").exists()
    log = (wd / "logs/train/mnist/gan/z8/seed0.log").read_text()
    assert "epoch 2/2" in log and "\r" not in log
    assert (wd / "benchmarks/train/mnist/gan/z8/seed0.tsv").exists()


@pytest.mark.faults  # part of the fault suite (tests/faults)
def test_killed_gan_training_resumes_to_the_same_result(workdir, tmp_path, tiny_raw_dir):
    wd, _ = workdir
    run_snakemake(wd, f"{GAN_RUN}/model.pt", configfile=workdir[1])  # the uninterrupted run
    cfg = write_config(tmp_path, tiny_raw_dir, MODELS)
    killed = run_snakemake(tmp_path, f"{GAN_RUN}/model.pt", configfile=cfg, env={"DGM_KILL_AFTER_EPOCH": "1"},
                           check=False)
    assert killed.returncode != 0
    assert torch.load(tmp_path / GAN_RUN / ".resume.pt", weights_only=True)["epoch"] == 1
    run_snakemake(tmp_path, f"{GAN_RUN}/model.pt", configfile=cfg)
    assert "after epoch 1 of 2" in (tmp_path / "logs/train/mnist/gan/z8/seed0.log").read_text()
    a = pd.read_csv(wd / GAN_RUN / "metrics.csv").filter(regex="loss|d_real|d_fake")
    b = pd.read_csv(tmp_path / GAN_RUN / "metrics.csv").filter(regex="loss|d_real|d_fake")
    pd.testing.assert_frame_equal(a, b)
    wa = torch.load(wd / GAN_RUN / "model.pt", weights_only=True)["state_dict"]
    wb = torch.load(tmp_path / GAN_RUN / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_gan_figures(workdir):
    wd, cfg = workdir
    figures = [f"results/mnist/figures/gan_{name}.png" for name in ("curves", "samples_z8_seed0",
                                                                    "interpolation_z8_seed0")]
    run_snakemake(wd, *figures, configfile=cfg)
    for path in figures:
        assert (wd / path).read_bytes()[:4] == b"\x89PNG"
        assert (wd / path).with_suffix(".pdf").read_bytes()[:4] == b"%PDF"  # the LaTeX report's vector copy


def test_train_classifier_and_reference(workdir):
    wd, cfg = workdir
    run_snakemake(wd, "results/mnist/quality/reference.json", configfile=cfg)
    clf = json.loads((wd / "results/mnist/quality/classifier.json").read_text())
    assert 0 <= clf["test_accuracy"] <= 1 and 0 <= clf["valid_accuracy"] <= 1
    assert [h["epoch"] for h in clf["history"]] == [0, 1]  # dgm.training.fit's rows: epoch 0 = untrained
    curve = pd.read_csv(wd / "results/mnist/quality/classifier_metrics.csv")
    assert list(curve["epoch"]) == [0, 1] and curve["valid_accuracy"].iloc[-1] == clf["history"][-1]["valid_accuracy"]
    ref = json.loads((wd / "results/mnist/quality/reference.json").read_text())
    assert ref["classifier"]["test_accuracy"] == clf["test_accuracy"] and ref["n_test"] == 100
    valid, train = ref["references"]["validation images"], ref["references"]["training images"]
    assert valid["n"] == 100 and "parzen_mean" not in valid  # validation images choose sigma: no Parzen
    assert train["n"] == 200 and train["fid"] >= 0 and math.isfinite(train["parzen_mean"])
    assert (wd / "logs/quality/mnist/train_classifier.log").exists()
    # the real splits in the classifier's features, embedded once for every scoring and memorisation job
    feats = torch.load(wd / "results/mnist/quality/real_features.pt", weights_only=True)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {"train": (300, 128), "valid": (100, 128),
                                                             "test": (100, 128)}


def test_sample_quality_for_any_model_and_the_table(workdir):
    wd, cfg = workdir
    runs = [f"{GAN_RUN}/quality.json", "results/mnist/vae/z2/seed0/quality.json"]
    run_snakemake(wd, "results/mnist/quality/sample_quality.tsv", configfile=cfg)
    gan, vae = (json.loads((wd / p).read_text()) for p in runs)
    assert gan["model"] == "GAN" and [e["epoch"] for e in gan["evaluations"]] == [1, 2]  # first and last
    assert vae["model"] == "VAE" and [e["epoch"] for e in vae["evaluations"]] == [2]
    sigmas = [round(s, 6) for s in torch.logspace(-1, 0, 10, dtype=torch.float64).tolist()]
    for e in gan["evaluations"] + vae["evaluations"]:
        assert e["n"] == 200 and e["fid"] >= 0 and math.isfinite(e["parzen_mean"]) and e["parzen_stderr"] > 0
        assert round(e["parzen_sigma"], 6) in sigmas and len(e["parzen_valid"]) == 10
        assert e["kid_subset_size"] == 100 and e["kid_std"] > 0  # capped by the 100 test images
        assert all(0 <= e[k] <= 1 for k in ("precision", "recall", "coverage")) and e["density"] >= 0
    assert "sample_sizes" not in gan["evaluations"][0]  # the curve is the final samples' only
    curve = gan["evaluations"][-1]["sample_sizes"]
    assert [c["n"] for c in curve] == [200] and curve[0]["fid"] == pytest.approx(gan["evaluations"][-1]["fid"])
    table = pd.read_csv(wd / "results/mnist/quality/sample_quality.tsv", sep="\t")
    assert {"kid_mean", "kid_std", "precision", "recall", "density", "coverage"} <= set(table.columns)
    assert list(table["model"]) == ["vae", "vae", "gan", "gan", "validation images", "training images"]
    assert table.loc[table["model"] == "gan", "fid"].tolist() == pytest.approx(
        [e["fid"] for e in gan["evaluations"]], rel=1e-5)
    assert (wd / "benchmarks/quality/mnist/gan/z8/seed0.tsv").exists()


def test_sample_size_figure(workdir):
    wd, cfg = workdir
    run_snakemake(wd, "results/mnist/figures/quality_sample_size.png", configfile=cfg)
    assert (wd / "results/mnist/figures/quality_sample_size.png").read_bytes()[:4] == b"\x89PNG"
    assert (wd / "results/mnist/figures/quality_sample_size.pdf").read_bytes()[:4] == b"%PDF"


def test_sample_quality_is_reproducible(workdir):
    """Scoring again gives the same numbers: the samples are drawn from a fixed seed."""
    wd, cfg = workdir
    target = f"{GAN_RUN}/quality.json"
    run_snakemake(wd, target, configfile=cfg)
    first = json.loads((wd / target).read_text())
    run_snakemake(wd, target, "--forcerun", "sample_quality", configfile=cfg)
    again = json.loads((wd / target).read_text())
    strip = lambda q: [{k: v for k, v in e.items() if k != "seconds"} for e in q["evaluations"]]  # noqa: E731
    assert strip(first) == strip(again)


@pytest.mark.parametrize(
    "config_arg, key",
    [
        ("gan={betas: [0.5]}", "gan.betas"),
        ("gan={batch_size: 1}", "gan.batch_size"),
        ("gan={interpolation_methods: [linear, bezier]}", "gan.interpolation_methods[1]"),
        ("quality={n_samples: 0}", "quality.n_samples"),
        ("quality={parzen_sigma_range: [1.0, 0.1]}", "quality.parzen_sigma_range"),
        ("models=[vae, gan, unet]", "models[2]"),
    ],
)
def test_bad_gan_or_quality_config_fails_before_any_job(tmp_path, tiny_raw_dir, config_arg, key):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir), config_arg, key)
