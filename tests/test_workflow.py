"""The whole DAG on the tiny config, then Snakemake's own report of it."""
import base64
import json
import re
import zipfile

import pandas as pd
import pytest

from conftest import run_snakemake, write_config


@pytest.mark.slow
def test_whole_dag_on_tiny_config(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir)
    dry = run_snakemake(tmp_path, "-n", configfile=cfg)
    assert re.search(r"train_vae\s+2", dry.stdout)
    run_snakemake(tmp_path, configfile=cfg)

    res = tmp_path / "results"
    for z in (2, 3):
        run = res / f"mnist/vae/z{z}/seed0"
        assert len(pd.read_csv(run / "metrics.csv")) == 3
        assert json.loads((run / "test_metrics.json").read_text())["latent_dim"] == z
        assert (res / f"mnist/figures/vae_samples_z{z}_seed0.png").exists()
    assert (res / "mnist/figures/vae_manifold_z2_seed0.png").exists()
    assert not (res / "mnist/figures/vae_manifold_z3_seed0.png").exists()
    assert (res / "mnist/figures/vae_elbo_seed0.png").exists()

    html = (res / "report/report.html").read_text()
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    test_nelbo = json.loads((res / "mnist/vae/z2/seed0/test_metrics.json").read_text())["test_nelbo"]
    assert f"{test_nelbo:.2f}" in html  # the report shows the computed number
    tex = (res / "report/report.tex").read_text()
    assert tex.count("\\includegraphics") == 4 and f"{test_nelbo:.2f}" in tex
    assert all((res / "report/figures" / n).exists() for n in re.findall(r"figures/([\w.]+)\}", tex))

    # Nothing left to do, and Snakemake's own report builds from the same run.
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", configfile=cfg).stdout
    run_snakemake(tmp_path, "--report", str(tmp_path / "report.zip"), configfile=cfg)
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
    assert sum(n.endswith(".png") for n in names) >= 4
