"""A study of external models only (config ``external``, models: []) through the whole DAG on the tiny
fixture data: a user's VAE, an exact density, a samples file and a model that breaks the protocol. Every
estimator its verbs allow runs on each, by the rules of the built-in models; the broken one stops with
one line while the others go on; tables and the report list them."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_snakemake, write_config
from dgm import data

SHEET_SAMPLES = 300
USER_MODULE = (Path(__file__).resolve().parent / "user_models" / "usermodels.py").read_text()


@pytest.fixture(scope="module")
def external_run(tmp_path_factory, tiny_raw_dir):
    work = tmp_path_factory.mktemp("external-run")
    user = work / "user"
    user.mkdir()
    (user / "usermodels.py").write_text(USER_MODULE)
    namespace: dict = {}
    exec(compile(USER_MODULE, "usermodels", "exec"), namespace)  # the user's classes, to save their weights
    torch.manual_seed(0)
    torch.save(namespace["TinyVAE"](2).state_dict(), user / "vae.pt")
    torch.save(namespace["Pixels"]().state_dict(), user / "pixels.pt")
    np.save(user / "samples.npy", (np.random.default_rng(0).random((SHEET_SAMPLES, 28, 28)) * 255).astype(np.uint8))
    sheet = {
        "tiny": {"import": "usermodels:TinyVAE", "kwargs": {"latent_dim": 2}, "checkpoint": "user/vae.pt",
                 "path": "user", "data": "binary", "title": "Tiny VAE"},
        "pixels": {"import": "usermodels:Pixels", "checkpoint": "user/pixels.pt", "path": "user", "data": "binary",
                   "title": "Pixels"},
        "bank": {"samples": "user/samples.npy", "data": "grey"},
        "broken": {"import": "usermodels:NaNDensity", "checkpoint": "user/pixels.pt", "path": "user",
                   "data": "binary"},
    }
    cfg = write_config(work, tiny_raw_dir, {"models": [], "external": sheet})
    proc = run_snakemake(work, "--keep-going", configfile=cfg, check=False)
    proc.finished = {name: (work / f"results/mnist/{name}/seed0/quality.json").exists()
                     for name in ("tiny/z2", "pixels/z0", "bank/z0")}
    # The report needs every model's results: the same study without the broken model completes it.
    del sheet["broken"]
    run_snakemake(work, configfile=write_config(work, tiny_raw_dir, {"models": [], "external": sheet}))
    return work, proc


@pytest.mark.slow
def test_a_model_that_breaks_the_protocol_stops_alone_in_one_line(external_run):
    work, proc = external_run
    assert proc.returncode != 0  # the broken model's jobs failed ...
    log = (work / "logs/import/mnist/broken/z0/seed0.log").read_text()
    assert "external model 'broken': log_prob: returned 8 non-finite values (NaN or Inf)" in log
    assert "external model 'broken': log_prob" in proc.stdout + proc.stderr  # on the terminal too
    assert not (work / "results/mnist/broken/z0/seed0/model.pt").exists()  # nothing half-written
    assert proc.finished == {"tiny/z2": True, "pixels/z0": True, "bank/z0": True}  # ... the others went on
    assert not (work / "results/mnist/vae").exists()  # nothing built-in was trained


@pytest.mark.slow
def test_every_estimator_its_verbs_allow_runs_on_an_external_model(external_run):
    work, _ = external_run
    tiny = work / "results/mnist/tiny/z2/seed0"
    for name in ("model.pt", "run.json", "conformance.json", "test_metrics.json", "test_nll.json",
                 "estimator_sweep.csv", "quadrature.json", "ais_sigma.json", "ais.json", "bdmc.json", "quality.json"):
        assert (tiny / name).exists(), name
    elbo = json.loads((tiny / "test_metrics.json").read_text())
    nll = json.loads((tiny / "test_nll.json").read_text())
    ais = json.loads((tiny / "ais.json").read_text())
    assert elbo["model"] == nll["model"] == "tiny" and nll["test_nll"] <= nll["test_nelbo"]
    assert ais["own_observation"] == "binarised pixels" and math.isfinite(ais["ais"])
    record = json.loads((tiny / "run.json").read_text())
    assert len(record["source"]["sha256"]) == 64 and record["config"]["model"] == "tiny"
    figures = work / "results/mnist/figures"
    for fig in ("tiny_samples_z2_seed0", "tiny_interpolation_z2_seed0", "likelihood_sweep_tiny_seed0",
                "ais_sweep_tiny_seed0", "pixels_samples_z0_seed0", "bank_samples_z0_seed0"):
        assert (figures / f"{fig}.png").exists(), fig
    pixels = work / "results/mnist/pixels/z0/seed0"
    assert not (pixels / "ais.json").exists() and not (pixels / "test_nll.json").exists()  # no latent, no decoder
    bank = work / "results/mnist/bank/z0/seed0"
    assert sorted(p.name for p in bank.iterdir()) == ["conformance.json", "memorisation.json", "model.pt",
                                                      "quality.json", "run.json"]  # a sampler, nothing more


@pytest.mark.slow
def test_the_exact_density_is_its_closed_form_on_the_pipeline_test_set(external_run):
    work, _ = external_run
    result = json.loads((work / "results/mnist/pixels/z0/seed0/test_metrics.json").read_text())
    logits = torch.linspace(-3, 3, 784, dtype=torch.float64).numpy()
    x = data.load_splits(work / "results/mnist/data/splits.pt")["test_binary"].reshape(-1, 784).numpy()
    x = x.astype(np.float64)
    log_p = x @ -np.logaddexp(0, -logits) + (1 - x) @ -np.logaddexp(0, logits)
    assert result["test_nll"] == pytest.approx(-log_p.mean(), rel=1e-13) and result["n_test"] == len(x)


@pytest.mark.slow
def test_external_models_appear_in_the_tables_and_the_report(external_run):
    work, _ = external_run
    runs = pd.read_csv(work / "results/runs/runs.tsv", sep="\t")
    assert set(runs["model"]) >= {"tiny", "pixels", "bank"}
    quality = pd.read_csv(work / "results/mnist/quality/sample_quality.tsv", sep="\t")
    assert len(quality) >= 3
    html = " ".join((work / "results/report/report.html").read_text().split())  # words, not line breaks
    for text in ("Tiny VAE (external model)", "Pixels (external model)", "exact (closed form)",
                 "conformance checks"):
        assert text in html, text
