"""Rule-level tests of the RealNVP flow: train_flow, evaluate_flow and its figures through Snakemake,
on the synthetic IDX fixture with the tiny flow of TINY_CONFIG."""
import json
import math

import pandas as pd
import pytest
import torch

from conftest import TINY_CONFIG, assert_config_rejected, run_snakemake, write_config
from dgm.models import load_model

RUN = "results/mnist/flow/z784/seed0"
FIGURES = ["results/mnist/figures/flow_bpd.png", "results/mnist/figures/flow_samples_seed0.png",
           "results/mnist/figures/flow_interpolation_z784_seed0.png"]


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory, tiny_raw_dir):
    """One tiny flow trained, evaluated with K = 3 and plotted; the tests below read its files."""
    wd = tmp_path_factory.mktemp("flow")
    cfg = write_config(wd, tiny_raw_dir, {"models": ["flow"], "flow": {"eval_k": 3}})
    run_snakemake(wd, f"{RUN}/test_metrics.json", *FIGURES, configfile=cfg)
    return wd


def test_train_flow_rule_outputs(flow_run):
    wd = flow_run
    run = wd / RUN
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1, 2]
    assert {"train_bpd", "train_nll", "train_grad_norm", "valid_bpd", "valid_nll"} <= set(metrics)
    trained = metrics[metrics["epoch"] > 0]
    assert trained["valid_bpd"].to_numpy() == pytest.approx(trained["valid_nll"].to_numpy() / (784 * math.log(2)))
    assert metrics["valid_bpd"].iloc[-1] < metrics["valid_bpd"].iloc[0]  # two epochs already help
    assert (run / "samples/epoch000.png").exists() and (run / "samples/epoch002.png").exists()
    assert not (run / ".resume.pt").exists()

    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert set(ckpt) == {"version", "model", "state_dict", "epoch", "options", "data", "device", "device_name"}
    assert ckpt["device_name"].startswith(f"{ckpt['device']} (")  # the hardware, for the report's provenance
    tiny = TINY_CONFIG["flow"]
    assert ckpt["model"]["class"] == "RealNVP" and ckpt["epoch"] == 2 and ckpt["version"] == 1
    assert (ckpt["model"]["n_blocks"], ckpt["model"]["hidden_dim"]) == (tiny["n_blocks"], tiny["hidden_dim"])
    assert ckpt["options"]["grad_clip"] == 5.0 and ckpt["options"]["alpha"] == 1e-5  # config.yaml's defaults
    model = load_model(run / "model.pt")  # the registry the sample-quality rules use
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 28, 28)

    snapshots = torch.load(run / "snapshots.pt", weights_only=True)
    assert set(snapshots) == {0, 2} and snapshots[2]["samples"].shape == (16, 1, 28, 28)
    log = (wd / "logs/train/mnist/flow/z784/seed0.log").read_text()
    assert "epoch 2/2" in log and "\r" not in log
    assert (wd / "benchmarks/train/mnist/flow/z784/seed0.tsv").exists()


@pytest.mark.faults  # part of the fault suite (tests/faults)
def test_killed_flow_training_resumes_to_the_same_result(tmp_path, tiny_raw_dir, flow_run):
    cfg = write_config(tmp_path, tiny_raw_dir, {"models": ["flow"]})  # flow_run's training options
    killed = run_snakemake(tmp_path, f"{RUN}/model.pt", configfile=cfg, env={"DGM_KILL_AFTER_EPOCH": "1"}, check=False)
    assert killed.returncode != 0
    assert torch.load(tmp_path / RUN / ".resume.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / RUN / "model.pt").exists()
    run_snakemake(tmp_path, f"{RUN}/model.pt", configfile=cfg)
    assert "after epoch 1 of 2" in (tmp_path / "logs/train/mnist/flow/z784/seed0.log").read_text()
    a, b = (pd.read_csv(wd / RUN / "metrics.csv").filter(regex="bpd|nll|grad_norm") for wd in (flow_run, tmp_path))
    pd.testing.assert_frame_equal(a, b)
    wa, wb = (torch.load(wd / RUN / "model.pt", weights_only=True)["state_dict"] for wd in (flow_run, tmp_path))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_evaluate_flow_and_figures(flow_run):
    result = json.loads((flow_run / RUN / "test_metrics.json").read_text())
    assert result["n_test"] == 100 and result["k"] == 3 and result["latent_dim"] == 784
    assert result["test_bpd_stderr"] > 0 and math.isfinite(result["test_bpd_k1"])
    assert result["test_nll"] == pytest.approx(result["test_bpd"] * 784 * math.log(2))
    # The K-draw bound is tighter on average: never worse than the one-draw bound by more than noise.
    assert result["test_bpd"] < result["test_bpd_k1"] + 3 * result["test_bpd_stderr"]
    for fig in FIGURES:
        assert (flow_run / fig).read_bytes()[:4] == b"\x89PNG"
    assert (flow_run / "logs/evaluate/mnist/flow/z784/seed0.log").exists()


@pytest.mark.parametrize(
    "config_arg, key",
    [
        ("flow={eval_k: 0}", "flow.eval_k"),
        ("flow={grad_clip: 0}", "flow.grad_clip"),
        ("flow={alpha: 0.5}", "flow.alpha"),
        ("flow={hidden_size: 8}", "flow"),
        ("flow={interpolation_method: spline}", "flow.interpolation_method"),
    ],
)
def test_bad_flow_config_fails_before_any_job(tmp_path, tiny_raw_dir, config_arg, key):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir, {"models": ["flow"]}), config_arg, key)


def test_grad_clip_null_is_a_valid_setting(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir, {"models": ["flow"]})
    proc = run_snakemake(tmp_path, "-n", f"{RUN}/model.pt", "--config", "flow={grad_clip: null}", configfile=cfg)
    assert "train_flow" in proc.stdout
