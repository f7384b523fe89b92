"""Rule-level tests of the likelihood rules (test_nll, estimator_sweep, quadrature, kl_examples and the
sweep figure) through Snakemake, on the synthetic IDX fixture with the tiny VAEs of TINY_CONFIG.

The session's run of the whole tiny DAG (conftest's tiny_run) built every target; the tests read
seed 0's outputs."""
import json
import math

import pandas as pd
import pytest

from conftest import TINY_CONFIG, assert_config_rejected, run_snakemake, write_config
from dgm.tasks import likelihood as tasks

LIK = TINY_CONFIG["likelihood"]
RUNS = {z: f"results/mnist/vae/z{z}/seed0" for z in TINY_CONFIG["vae"]["latent_sizes"]}  # z = 2 and 3


@pytest.fixture(scope="module")
def built(tiny_run):
    return tiny_run, tiny_run / "tiny.yaml"


def test_test_nll_rule(built):
    wd, _ = built
    for z, d in RUNS.items():
        r = json.loads((wd / d / "test_nll.json").read_text())
        assert (r["latent_dim"], r["n_test"], r["k"], r["batch_size"]) == (z, 100, LIK["k"], LIK["batch_size"])
        # importance sampling is a tighter bound than the ELBO on average: NLL <= -ELBO up to noise
        assert r["test_nll"] <= r["test_nelbo"] + 3 * r["test_nelbo_stderr"]
        assert r["test_gap"] == pytest.approx(r["test_nelbo"] - r["test_nll"], abs=1e-9)
        assert r["test_nelbo"] == pytest.approx(r["test_recon"] + r["test_kl"], rel=1e-6)
        assert r["test_nll_bpd"] == pytest.approx(r["test_nll"] / (784 * math.log(2)))
        assert 1 <= r["ess_mean"] <= LIK["k"] and r["seconds"] > 0 and r["cpu_seconds"] > 0
        log = (wd / f"logs/test_nll/mnist/vae/z{z}/seed0.log").read_text()
        assert "test NLL z=" in log and "mean ESS" in log and "\r" not in log
        assert (wd / f"benchmarks/test_nll/mnist/vae/z{z}/seed0.tsv").exists()


def test_test_nll_does_not_depend_on_chunk_size(built, tmp_path):
    """The rule's number again from the library with another chunking: equal to float rounding."""
    wd, _ = built
    rule = json.loads((wd / RUNS[3] / "test_nll.json").read_text())
    again = tasks.test_nll(model_path=wd / RUNS[3] / "model.pt", splits_path=wd / "results/mnist/data/splits.pt",
                           output_path=tmp_path / "t.json", k=LIK["k"], batch_size=LIK["batch_size"], chunk_size=7,
                           seed=0, device="cpu")
    for key in ("test_nll", "test_nelbo", "ess_mean"):
        assert again[key] == pytest.approx(rule[key], rel=1e-5), key


def test_estimator_sweep_rule(built):
    wd, _ = built
    ks, repeats = LIK["sweep_ks"], LIK["sweep_repeats"]
    for z, d in RUNS.items():
        df = pd.read_csv(wd / d / "estimator_sweep.csv")
        assert {"latent", "estimator", "k", "repeat", "log_px", "log_px_stderr", "ess_mean", "n_images"} <= set(df)
        assert len(df) == repeats * (1 + 2 * len(ks)) and (df["latent"] == z).all()
        assert (df["n_images"] == LIK["sweep_images"]).all() and df["log_px"].map(math.isfinite).all()
        for name in ("importance", "naive"):
            est = df[df["estimator"] == name]
            assert sorted(est["k"].unique()) == ks and sorted(est["repeat"].unique()) == list(range(repeats))
            assert (est["ess_mean"] >= 1 - 1e-9).all() and (est["ess_mean"] <= est["k"] + 1e-9).all()
            # independent repeats: the estimates differ between repeats at every K > 1
            assert (est[est["k"] > 1].groupby("k")["log_px"].nunique() == repeats).all()
        elbo = df[df["estimator"] == "elbo"]
        assert len(elbo) == repeats and (elbo["k"] == 1).all()
        # at the largest K importance sampling is above the ELBO on average over repeats
        top = df[(df["estimator"] == "importance") & (df["k"] == max(ks))]["log_px"].mean()
        assert top >= elbo["log_px"].mean() - 1.0
        assert (wd / f"logs/estimator_sweep/mnist/vae/z{z}/seed0.log").exists()
        assert (wd / f"benchmarks/estimator_sweep/mnist/vae/z{z}/seed0.tsv").exists()


def test_quadrature_rule(built):
    wd, _ = built
    q = json.loads((wd / RUNS[2] / "quadrature.json").read_text())
    assert (q["latent_dim"], q["n_images"], q["dtype"], q["tol"]) == (2, LIK["sweep_images"], "float64",
                                                                      LIK["quadrature"]["tol"])
    assert q["n_above_tol"] == 0 and q["max_error"] <= q["tol"]  # converged within the grid limit
    assert q["max_points_per_dim"] <= LIK["quadrature"]["max_points_per_dim"]
    # the near-exact value sits above the importance-sampling bound and close to it at the largest K
    df = pd.read_csv(wd / RUNS[2] / "estimator_sweep.csv")
    top = df[(df["estimator"] == "importance") & (df["k"] == max(LIK["sweep_ks"]))]["log_px"].mean()
    assert top <= q["log_px"] + 0.05
    assert q["log_px"] - top < 1.0
    assert (wd / "logs/quadrature/mnist/vae/z2/seed0.log").exists()


def test_quadrature_only_for_latent_size_two(built):
    wd, cfg = built
    proc = run_snakemake(wd, "-n", f"{RUNS[3]}/quadrature.json", configfile=cfg, check=False)
    assert proc.returncode != 0 and "MissingRuleException" in proc.stdout + proc.stderr


def test_kl_examples_and_figure(built):
    wd, _ = built
    kl = pd.read_csv(wd / "results/likelihood/kl_examples.csv").set_index("example")
    assert list(kl.index) == ["Big", "Small", "Prior"]
    assert kl.loc["Big", "closed_form"] == pytest.approx(1e10, rel=1e-4)  # the seed's 1.0e10
    # the seed's 1.49e-10 is 1.5e-10 - 1e-15/3 + O(1e-20) truncated
    assert kl.loc["Small", "closed_form"] == pytest.approx(1.5e-10 - 1e-15 / 3, rel=1e-9, abs=0)
    assert kl.loc["Prior", "closed_form"] == 0.0
    assert (kl["n"] == LIK["kl_samples"]).all() and (kl["z_score"].abs() < 5).all()
    png = wd / "results/mnist/figures/likelihood_sweep_vae_seed0.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.with_suffix(".pdf").exists()


@pytest.mark.parametrize(
    "config_arg, key",
    [
        ("likelihood={k: 0}", "likelihood.k"),
        ("likelihood={sweep_ks: [1, 1]}", "likelihood.sweep_ks"),
        ("likelihood={quadrature: {tol: 0}}", "likelihood.quadrature.tol"),
        ("likelihood={samples: 10}", "likelihood"),
    ],
)
def test_bad_likelihood_config_fails_before_any_job(tmp_path, tiny_raw_dir, config_arg, key):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir, {"models": ["vae"]}), config_arg, key, "-n")
