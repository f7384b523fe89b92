"""The whole DAG on the tiny config, then Snakemake's own report of it."""
import base64
import json
import re
import zipfile

import pandas as pd
import pytest

from conftest import run_snakemake, write_config


def test_dry_run_lists_every_job(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir)
    dry = run_snakemake(tmp_path, "-n", configfile=cfg)
    assert re.search(r"train_vae\s+2", dry.stdout)
    assert re.search(r"train_flow\s+1", dry.stdout)
    assert re.search(r"train_gan\s+1", dry.stdout) and re.search(r"train_classifier\s+1", dry.stdout)
    assert re.search(r"sample_quality\s+4", dry.stdout)  # every trained run: 2 VAEs, the GAN and the flow
    assert re.search(r"test_nll\s+2", dry.stdout) and re.search(r"estimator_sweep\s+2", dry.stdout)
    assert re.search(r"quadrature\s+1", dry.stdout)  # z = 2 only


@pytest.mark.slow
def test_whole_dag_on_tiny_config(tiny_run):
    tmp_path, cfg = tiny_run, tiny_run / "tiny.yaml"  # the session's one run of the whole DAG

    res = tmp_path / "results"
    for z in (2, 3):
        run = res / f"mnist/vae/z{z}/seed0"
        assert len(pd.read_csv(run / "metrics.csv")) == 3
        assert json.loads((run / "test_metrics.json").read_text())["latent_dim"] == z
        assert (res / f"mnist/figures/vae_samples_z{z}_seed0.png").exists()
    assert (res / "mnist/figures/vae_manifold_z2_seed0.png").exists()
    assert not (res / "mnist/figures/vae_manifold_z3_seed0.png").exists()
    assert (res / "mnist/figures/vae_elbo_seed0.png").exists()
    likelihood = {z: json.loads((res / f"mnist/vae/z{z}/seed0/test_nll.json").read_text()) for z in (2, 3)}
    assert all(len(pd.read_csv(res / f"mnist/vae/z{z}/seed0/estimator_sweep.csv")) == 14 for z in (2, 3))
    assert (res / "mnist/vae/z2/seed0/quadrature.json").exists()
    assert not (res / "mnist/vae/z3/seed0/quadrature.json").exists()
    assert (res / "mnist/figures/likelihood_sweep_seed0.png").exists() and (res / "likelihood/kl_examples.csv").exists()
    flow = res / "mnist/flow/z784/seed0"
    assert len(pd.read_csv(flow / "metrics.csv")) == 3
    test_bpd = json.loads((flow / "test_metrics.json").read_text())["test_bpd"]
    assert all((res / f"mnist/figures/flow_{fig}_seed0.png").exists() for fig in ("bpd", "samples", "interpolation"))
    gan = res / "mnist/gan/z8/seed0"
    assert len(pd.read_csv(gan / "metrics.csv")) == 3
    assert all((res / f"mnist/figures/gan_{f}.png").exists() for f in ("curves_seed0", "samples_z8_seed0",
                                                                       "interpolation_z8_seed0"))
    gan_quality = json.loads((gan / "quality.json").read_text())["evaluations"]
    assert [e["epoch"] for e in gan_quality] == [1, 2]  # the first and the last epoch
    assert all((res / f"mnist/vae/z{z}/seed0/quality.json").exists() for z in (2, 3))
    table = pd.read_csv(res / "mnist/quality/sample_quality.tsv", sep="\t")
    assert list(table["model"]) == ["vae", "vae", "gan", "gan", "flow", "validation images", "training images"]
    n_figures = len(list((res / "mnist/figures").glob("*.png")))  # every figure goes into the report

    html = (res / "report/report.html").read_text()
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == n_figures and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    test_nelbo = json.loads((res / "mnist/vae/z2/seed0/test_metrics.json").read_text())["test_nelbo"]
    assert f"{test_nelbo:.2f}" in html  # the report shows the computed number
    assert f"{test_bpd:.3f}" in html and "1.83" in html  # the flow's bits/dim beside the seed's
    assert all(f"{r['test_nll']:.2f}" in html for r in likelihood.values())  # IS NLL per latent size
    assert "quadrature" in html and "1.49e-10" in html  # the z = 2 reference and the seed's KL example
    assert f"{gan_quality[-1]['fid']:.2f}" in html and "Theis" in html and "not comparable" in html.lower()
    tex = (res / "report/report.tex").read_text()
    assert tex.count("\\includegraphics") == n_figures and f"{test_nelbo:.2f}" in tex
    assert all((res / "report/figures" / n).exists() for n in re.findall(r"figures/([\w.]+)\}", tex))

    # Nothing left to do, and Snakemake's own report builds from the same run.
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", configfile=cfg).stdout
    run_snakemake(tmp_path, "--report", str(tmp_path / "report.zip"), configfile=cfg)
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
    assert sum(n.endswith(".png") for n in names) >= n_figures
