"""The whole DAG on the tiny config, then Snakemake's own report of it."""
import base64
import json
import re
import statistics
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import TINY_RUN_SEEDS, run_snakemake, write_config


def test_dry_run_lists_every_job(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir)
    dry = run_snakemake(tmp_path, "-n", configfile=cfg)
    assert re.search(r"train_vae\s+2", dry.stdout)
    assert re.search(r"train_flow\s+1", dry.stdout)
    assert re.search(r"train_gan\s+1", dry.stdout) and re.search(r"train_classifier\s+1", dry.stdout)
    assert re.search(r"sample_quality\s+4", dry.stdout)  # every trained run: 2 VAEs, the GAN and the flow
    assert re.search(r"test_nll\s+2", dry.stdout) and re.search(r"estimator_sweep\s+2", dry.stdout)
    assert re.search(r"quadrature\s+1", dry.stdout)  # z = 2 only


def _job_block(dry: str, rule: str) -> str:
    """The first job of ``rule`` in a dry run's printout, up to the next blank line."""
    return re.search(rf"^(?:local)?rule {rule}:\n(.*?)\n\n", dry, re.M | re.S).group(1)


@pytest.mark.parametrize("device, gpu, threads", [("cpu", "gpu=0", "1"), ("auto", "gpu=1", "2")])
def test_torch_jobs_claim_a_gpu_unless_the_study_runs_on_the_cpu(tmp_path, tiny_raw_dir, device, gpu, threads):
    """device: cpu (the smoke and test configs) tags no job with the gpu resource, so --cores alone sets how many
    run at once; every other device tags them, and --resources gpu=N caps them. threads sets their threads."""
    cfg = write_config(tmp_path, tiny_raw_dir, {"device": device, "threads": int(threads)})
    dry = run_snakemake(tmp_path, "-n", "-p", configfile=cfg).stdout
    for rule in ("train_vae", "evaluate_elbo", "sample_quality", "memorisation"):
        block = _job_block(dry, rule)
        assert re.search(rf"resources: .*\b{gpu}\b", block), (rule, block)
        shown = re.search(r"^\s+threads: (\d+)$", block, re.M)  # Snakemake shows no line for one thread
        assert (shown.group(1) if shown else "1") == threads, (rule, block)


def test_dry_run_gives_the_iwae_every_latent_variable_job(tmp_path, tiny_raw_dir):
    """A fourth model from the registry: its training jobs, and the VAE's evaluations by capability."""
    cfg = write_config(tmp_path, tiny_raw_dir, {"models": ["vae", "iwae", "gan", "flow"]})
    dry = run_snakemake(tmp_path, "-n", configfile=cfg).stdout
    assert re.search(r"train_iwae\s+2", dry) and re.search(r"train_vae\s+2", dry)
    assert re.search(r"sample_quality\s+6", dry)  # 2 VAEs, 2 IWAEs, the GAN and the flow
    assert re.search(r"test_nll\s+4", dry) and re.search(r"estimator_sweep\s+4", dry)
    assert re.search(r"quadrature\s+2", dry) and re.search(r"plot_manifold\s+2", dry)


@pytest.mark.slow
def test_whole_dag_on_tiny_config(tiny_run):
    tmp_path, cfg = tiny_run, tiny_run / "tiny.yaml"  # the session's one run of the whole DAG, seeds 0 and 1
    res = tmp_path / "results"
    figs = res / "mnist/figures"
    for z, seed in [(z, s) for z in (2, 3) for s in TINY_RUN_SEEDS]:
        run = res / f"mnist/vae/z{z}/seed{seed}"
        assert len(pd.read_csv(run / "metrics.csv")) == 3
        assert json.loads((run / "test_metrics.json").read_text())["latent_dim"] == z
        assert (figs / f"vae_samples_z{z}_seed{seed}.png").exists()
        assert len(pd.read_csv(run / "estimator_sweep.csv")) == 14
    assert (figs / "vae_manifold_z2_seed1.png").exists() and not (figs / "vae_manifold_z3_seed0.png").exists()
    assert (figs / "vae_elbo.png").exists() and (figs / "flow_bpd.png").exists() and (figs / "gan_curves.png").exists()
    assert not list(figs.glob("vae_elbo_seed*"))  # curves are drawn over the seeds, once
    likelihood = {(z, s): json.loads((res / f"mnist/vae/z{z}/seed{s}/test_nll.json").read_text())
                  for z in (2, 3) for s in TINY_RUN_SEEDS}
    assert (res / "mnist/vae/z2/seed0/quadrature.json").exists()
    assert not (res / "mnist/vae/z3/seed0/quadrature.json").exists()
    assert (figs / "likelihood_sweep_vae_seed0.png").exists() and (res / "likelihood/kl_examples.csv").exists()
    flow_tests = [json.loads((res / f"mnist/flow/z784/seed{s}/test_metrics.json").read_text()) for s in TINY_RUN_SEEDS]
    assert (figs / "flow_samples_seed1.png").exists() and (figs / "flow_interpolation_z784_seed1.png").exists()
    assert all((figs / f"vae_interpolation_z{z}_seed1.png").exists() for z in (2, 3))  # every decoder, one rule
    gan = res / "mnist/gan/z8/seed0"
    assert len(pd.read_csv(gan / "metrics.csv")) == 3
    assert (figs / "gan_samples_z8_seed1.png").exists() and (figs / "gan_interpolation_z8_seed1.png").exists()
    gan_quality = json.loads((gan / "quality.json").read_text())["evaluations"]
    assert [e["epoch"] for e in gan_quality] == [1, 2]  # the first and the last epoch
    table = pd.read_csv(res / "mnist/quality/sample_quality.tsv", sep="\t")
    assert list(table["model"]).count("vae") == 4 and list(table["model"]).count("gan") == 4

    # The document: curves over both seeds, the image figures of the first seed.
    shown = sorted(p.name for p in figs.glob("*.png") if not p.stem.endswith("_seed1"))
    html = (res / "report/report.html").read_text()
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(shown) and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    tex = (res / "report/report.tex").read_text()
    assert sorted(re.findall(r"figures/([\w.]+)\.pdf\}", tex)) == [Path(n).stem for n in shown]
    listing = yaml.safe_load(tex.split("\\begin{verbatim}")[1].split("\\end{verbatim}")[0])  # the config, as YAML
    assert listing["seeds"] == TINY_RUN_SEEDS and listing["vae"]["latent_sizes"] == [2, 3]
    assert all((res / "report/figures" / f"{Path(n).stem}.pdf").exists() for n in shown)

    def mean_sd(values, digits):
        return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"

    # AIS for every decoder model, the GAN in the comparison's Gaussian column; every run's record.
    gan_ais = [json.loads((res / f"mnist/gan/z8/seed{s}/ais.json").read_text())["ais_gaussian"] for s in TINY_RUN_SEEDS]
    assert "annealed importance sampling" in html.lower() and html.count(mean_sd(gan_ais, 1)) >= 2
    runs = pd.read_csv(res / "runs/runs.tsv", sep="\t")
    assert len(runs) == 2 * (2 + 1 + 1) and runs["config_hash"].nunique() == len(runs)
    assert all(h in html for h in runs["config_hash"])  # the provenance lists every run's record

    test_nelbo = [json.loads((res / f"mnist/vae/z2/seed{s}/test_metrics.json").read_text())["test_nelbo"]
                  for s in TINY_RUN_SEEDS]
    assert mean_sd(test_nelbo, 2) in html and mean_sd(test_nelbo, 2).replace("±", "\\ensuremath{\\pm}") in tex
    assert mean_sd([t["test_bpd"] for t in flow_tests], 3) in html and "1.83" in html  # beside the seed's value
    for z in (2, 3):  # IS NLL over seeds, in the likelihood section and the closing comparison
        assert html.count(mean_sd([likelihood[(z, s)]["test_nll"] for s in TINY_RUN_SEEDS], 2)) >= 2
    assert "quadrature" in html and "1.49e-10" in html  # the z = 2 reference and the seed's KL example
    fids = [json.loads((res / f"mnist/gan/z8/seed{s}/quality.json").read_text())["evaluations"][-1]["fid"]
            for s in TINY_RUN_SEEDS]
    assert mean_sd(fids, 2) in html and "Theis" in html and "not comparable" in html.lower()
    # Sample quality: KID, precision, recall, density and coverage for every row, real images included, and
    # which model leads on fidelity and on diversity; the FID/KID-against-n figure.
    final = {s: json.loads((res / f"mnist/gan/z8/seed{s}/quality.json").read_text())["evaluations"][-1]
             for s in TINY_RUN_SEEDS}
    for key, digits in [("kid_mean", 4), ("precision", 3), ("recall", 3), ("density", 3), ("coverage", 3)]:
        assert mean_sd([final[s][key] for s in TINY_RUN_SEEDS], digits) in html, key
    real = json.loads((res / "mnist/quality/reference.json").read_text())["references"]["validation images"]
    assert f"{real['kid_mean']:.4f} ± {real['kid_std']:.4f}" in html and f"{real['coverage']:.3f}" in html
    assert "on fidelity" in html.lower() and "on diversity" in html.lower() and "test accuracy" in html
    assert 'id="quality_sample_size"' in html and "figures/quality_sample_size.pdf" in tex
    assert "\\mathcal{L}_D" in tex and "<math" in html  # maths typeset as maths
    assert "The models compared" in html and "log 4" in html
    assert html.index("The models compared") < html.index("Data and provenance")

    # Nothing left to do, and Snakemake's own report of the same run groups the figures by model.
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", configfile=cfg).stdout
    run_snakemake(tmp_path, "--report", str(tmp_path / "report.zip"), configfile=cfg)
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        page = z.read(next(n for n in z.namelist() if n.endswith("/report.html"))).decode()
    categories = json.loads(re.search(r"var categories = (\{.*?\});\s*</script>", page, re.S).group(1))
    results = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", page, re.S).group(1))
    # Latent-variable models share their figure rules, and every decoder the interpolation rule: their figures
    # group under the model's config name.
    category = {"vae": "vae", "likelihood": "Likelihood", "ais": "Likelihood", "gan": "GAN", "flow": "Flow",
                "quality": "Sample quality", "memorisation": "Sample quality"}
    for png in figs.glob("*.png"):
        path = f"results/mnist/figures/{png.name}"
        grouped = [c for c, subs in categories.items() if any(path in paths for paths in subs.values())]
        model = png.name.split("_")[0]  # figures of a rule shared by models (interpolation) group under its name
        assert grouped == [model if "_interpolation_" in png.name else category[model]], png.name
        seed = png.stem.rsplit("_seed", 1)[1] if "_seed" in png.stem else "all"
        assert results[path]["labels"].get("seed", "all") == seed and results[path]["caption"]
