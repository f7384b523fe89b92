"""Tests for dgm.tasks.likelihood: random streams, the three estimates on a small saved VAE, the
figure and the report section."""
import json
import math

import pandas as pd
import pytest
import torch

from conftest import synthetic_digits
from dgm import data, estimators, io
from dgm.formatting import fmt
from dgm.tasks import likelihood as tasks
from dgm.tasks import report
from dgm.vae import VAE, VAEConfig


def _save_vae(path, latent_dim, seed=0):
    torch.manual_seed(seed)
    model = VAE(VAEConfig(latent_dim=latent_dim, hidden_dim=16)).eval()
    io.torch_save({"version": 1, "model": model.describe(), "state_dict": model.state_dict(), "epoch": 1,
                   "options": {}, "data": {}, "device": "cpu"}, path)
    return model


@pytest.fixture()
def saved(tmp_path):
    images = torch.from_numpy(synthetic_digits(30, seed=5)[0])  # (30, 28, 28) uint8
    splits = tmp_path / "splits.pt"
    io.torch_save({"test_binary": data.binarize(images, generator=torch.Generator().manual_seed(1)), "meta": {}},
                  splits)
    runs = {}
    for z in (2, 3):
        run = tmp_path / f"results/mnist/vae/z{z}/seed0"
        run.mkdir(parents=True)
        runs[z] = (_save_vae(run / "model.pt", z), run)
    return runs, splits


def test_generators_are_reproducible_and_independent():
    draw = lambda *a: torch.randn(4, generator=tasks._generator(*a))  # noqa: E731
    assert torch.equal(draw(0, "test_nll", "importance", 0, 3), draw(0, "test_nll", "importance", 0, 3))
    keys = [(0, "test_nll", "importance", 0, 0), (1, "test_nll", "importance", 0, 0),
            (0, "estimator_sweep", "importance", 0, 0), (0, "test_nll", "naive", 0, 0),
            (0, "test_nll", "importance", 1, 0), (0, "test_nll", "importance", 0, 1), (0, "test_nll", "elbo", 0, 0)]
    values = {tuple(draw(*k).tolist()) for k in keys}
    assert len(values) == len(keys)


def test_test_nll_matches_the_estimators_and_ignores_chunking(saved, tmp_path):
    runs, splits = saved
    model, run = runs[3]
    results = [tasks.test_nll(model_path=run / "model.pt", splits_path=splits, output_path=tmp_path / f"{c}.json",
                              k=30, batch_size=8, chunk_size=c, seed=4, device="cpu") for c in (None, 7, 1)]
    for r in results[1:]:
        assert r["test_nll"] == pytest.approx(results[0]["test_nll"], rel=1e-6)
        assert r["ess_mean"] == pytest.approx(results[0]["ess_mean"], rel=1e-5)
    # the same numbers straight from dgm.estimators with the task's per-batch generators
    x = tasks.test_images(splits, "cpu")
    nll = torch.cat([-estimators.importance_sampled_log_px(model, b, k=30, generator=tasks._generator(
        4, "test_nll", "importance", 0, i)) for i, b in enumerate(x.split(8))])
    assert results[0]["test_nll"] == pytest.approx(nll.double().mean().item(), rel=1e-6)
    assert json.loads((tmp_path / "7.json").read_text())["n_test"] == 30


def test_sweep_rows_and_nested_draws(saved, tmp_path):
    runs, splits = saved
    model, run = runs[2]
    rows = tasks.estimator_sweep(model_path=run / "model.pt", splits_path=splits, output_path=tmp_path / "s.csv",
                                 ks=[1, 4, 16], n_images=20, repeats=2, batch_size=8, chunk_size=3, seed=0,
                                 device="cpu")
    df = pd.read_csv(tmp_path / "s.csv")
    assert len(df) == len(rows) == 2 * (1 + 2 * 3) and set(df["estimator"]) == {"elbo", "importance", "naive"}
    # K = 1 of naive MC is the mean of log p(x|z) at one prior draw per image: the first draw of every K
    x = tasks.test_images(splits, "cpu", n=20)
    first = torch.cat([estimators.naive_mc_log_px(model, b, k=1, generator=tasks._generator(0, "estimator_sweep",
                       "naive", 1, i)) for i, b in enumerate(x.split(8))])
    naive_k1 = df[(df["estimator"] == "naive") & (df["k"] == 1) & (df["repeat"] == 1)]["log_px"].item()
    assert naive_k1 == pytest.approx(first.double().mean().item(), rel=1e-6)


def test_quadrature_agrees_with_importance_sampling_and_refuses_other_sizes(saved, tmp_path):
    runs, splits = saved
    model, run = runs[2]
    q = tasks.quadrature(model_path=run / "model.pt", splits_path=splits, output_path=tmp_path / "q.json",
                         n_images=6, batch_size=3, points_per_dim=16, levels=2, tol=1e-3, device="cpu")
    assert q["n_above_tol"] == 0 and q["max_error"] <= 1e-3 and q["dtype"] == "float64"
    x = tasks.test_images(splits, "cpu", n=6, dtype=torch.float64)
    is_value = estimators.importance_sampled_log_px(model.double(), x, k=20000,
                                                    generator=torch.Generator().manual_seed(0))
    assert q["log_px"] == pytest.approx(is_value.mean().item(), abs=0.02)
    with pytest.raises(ValueError, match="latent_dim=3"):
        tasks.quadrature(model_path=runs[3][1] / "model.pt", splits_path=splits, output_path=tmp_path / "r.json",
                         n_images=2, device="cpu")


def test_report_section_and_figure(saved, tmp_path):
    runs, splits = saved
    inputs = {"likelihood_tests": [], "likelihood_sweeps": [], "likelihood_quadrature": []}
    for z, (_, run) in runs.items():
        inputs["likelihood_tests"].append(str(run / "test_nll.json"))
        tasks.test_nll(model_path=run / "model.pt", splits_path=splits, output_path=run / "test_nll.json", k=5,
                       batch_size=10, device="cpu")
        inputs["likelihood_sweeps"].append(str(run / "estimator_sweep.csv"))
        tasks.estimator_sweep(model_path=run / "model.pt", splits_path=splits, output_path=run / "estimator_sweep.csv",
                              ks=[1, 5], n_images=10, repeats=2, batch_size=10, device="cpu")
    quad = runs[2][1] / "quadrature.json"
    tasks.quadrature(model_path=runs[2][1] / "model.pt", splits_path=splits, output_path=quad, n_images=10,
                     points_per_dim=16, levels=2, tol=0.05, device="cpu")
    inputs["likelihood_quadrature"] = [str(quad)]
    inputs["kl_examples"] = [str(tmp_path / "kl.csv")]
    tasks.kl_examples(output_path=tmp_path / "kl.csv", n=1000)
    fig = tmp_path / "figures/likelihood_sweep_vae_seed0.png"
    tasks.plot_sweeps(sweep_paths=inputs["likelihood_sweeps"], quadrature_paths=[str(quad)], output_path=fig)
    assert fig.read_bytes()[:4] == b"\x89PNG" and fig.with_suffix(".pdf").exists()
    inputs["likelihood_figures"] = [str(fig)]

    section = tasks.report_section(inputs)
    assert section["id"] == "likelihood" and len(section["figures"]) == 1
    assert section["figures"][0]["wildcards"] == {"model": "vae"}  # its caption describes the VAE's sweep
    data = section["data"]
    nll = json.loads((runs[3][1] / "test_nll.json").read_text())
    # Rows start with the model's title (the section covers every latent-variable model).
    assert [(r["model"], r["latent"]) for r in data["tests"]] == [("VAE", 2), ("VAE", 3)]
    assert fmt(nll["test_nll"]) in data["tests"][1]["test_nll"]
    assert data["sweep_ks"] == [1, 5] and {"k1", "k5"} <= set(data["sweep"][0])
    assert [r["estimator"] for r in data["sweep"]].count("ELBO") == 2
    assert any("quadrature" in r["estimator"] for r in data["sweep"])
    assert [r["example"] for r in data["kl"]] == ["Big", "Small", "Prior"]
    assert report.SPANNING["likelihood"] == "latent_variable"  # gather_sections: after the latent-variable models
    assert tasks.report_section({"likelihood_tests": []}) is None
    assert math.isfinite(nll["test_nll_bpd"])
