"""Rules ais_sigma, ais, bdmc and plot_ais_sweep on the session's tiny run of the whole DAG: every
decoder model without an exact density gets them, chosen by capability; the flow does not."""
import json

import pandas as pd
import pytest

from conftest import TINY_CONFIG, TINY_RUN_SEEDS

AIS = TINY_CONFIG["likelihood"]["ais"]


@pytest.mark.slow
@pytest.mark.parametrize("run", ["vae/z2", "vae/z3", "gan/z8"])
def test_ais_results_of_every_decoder_model(tiny_run, run):
    d = tiny_run / f"results/mnist/{run}/seed0"
    sigma = json.loads((d / "ais_sigma.json").read_text())
    assert sigma["sigma_grid"] == AIS["sigma_grid"] and len(sigma["scores"]) == len(AIS["sigma_grid"])
    assert sigma["sigma"] == AIS["sigma_grid"][max(range(len(sigma["scores"])), key=sigma["scores"].__getitem__)]
    result = json.loads((d / "ais.json").read_text())
    assert (result["n_images"], result["steps"], result["chains"]) == (AIS["images"], AIS["steps"], AIS["chains"])
    assert result["sigma"] == sigma["sigma"] and len(result["per_image"]["ais_gaussian"]) == AIS["images"]
    assert result["parzen_gaussian"] < 0 and result["ais_gaussian"] < 0  # log densities of 784 grey levels
    sweep = pd.read_csv(d / "ais_sweep.csv")
    assert sorted(sweep["steps"]) == sorted(set(AIS["sweep_steps"]) | {AIS["steps"]})
    bdmc = json.loads((d / "bdmc.json").read_text())
    assert bdmc["n_images"] == AIS["bdmc_images"] and bdmc["gap"] == pytest.approx(bdmc["upper"] - bdmc["lower"])
    if run.startswith("vae"):  # a latent-variable model: its own Bernoulli decoder on the same images
        assert result["own_observation"] == "binarised pixels" and result["encoder"] is True
        assert sweep["observation"].eq("own").all() and sweep["start"].eq("encoder").all()
        at_steps = sweep.loc[sweep["steps"] == AIS["steps"], "log_px"].item()
        assert result["ais"] == pytest.approx(at_steps)
        assert result["elbo"] <= result["is"] + 1.0  # the one-sample ELBO sits below IS (within noise)
        assert ("quadrature" in result) == (run == "vae/z2")
        assert bdmc["start"] == "encoder" and bdmc["observation"] == "binarised pixels"
    else:  # the GAN: the Gaussian observation model only
        assert "ais" not in result and "own_observation" not in result
        assert sweep["observation"].eq("gaussian").all() and sweep["start"].eq("prior").all()
        assert bdmc["observation"].startswith("grey levels, Gaussian")


@pytest.mark.slow
def test_ais_skips_the_flow_and_draws_the_sweep(tiny_run):
    flow = tiny_run / "results/mnist/flow/z784/seed0"
    assert flow.is_dir() and not (flow / "ais.json").exists()  # an exact density needs no AIS
    figs = tiny_run / "results/mnist/figures"
    assert all((figs / f"ais_sweep_{m}_seed{s}.png").exists() for m in ("vae", "gan") for s in TINY_RUN_SEEDS)
    assert not (figs / "ais_sweep_flow_seed0.png").exists()
