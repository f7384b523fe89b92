# Configuration checks, wildcard constraints and the input/output functions every rule uses.
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from dgm.config import validate_config  # noqa: E402

with open(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml") as _f:
    CONFIG_SCHEMA = yaml.safe_load(_f)
# Our own pass first: it coerces --config strings and names every bad key with its full path;
# Snakemake's validate() then fills in the schema's defaults.
validate_config(config, CONFIG_SCHEMA)
validate(config, schema="../schemas/config.schema.yaml", set_default=True)


def _check_config(cfg):
    """Checks a JSON schema cannot express; each message names the key."""
    raw_dir = cfg["data"]["raw_dir"]
    if raw_dir is not None and not Path(raw_dir).is_dir():
        raise ValueError(f"config key data.raw_dir: {raw_dir!r} is not an existing folder")
    valid_size = cfg["data"]["valid_size"]
    if valid_size >= 1 and valid_size != int(valid_size):
        raise ValueError(f"config key data.valid_size: {valid_size} must be a fraction below 1 or a whole count")
    lo, hi = cfg["quality"]["parzen_sigma_range"]
    if lo > hi:
        raise ValueError(f"config key quality.parzen_sigma_range: [{lo}, {hi}] must be [smallest, largest]")


_check_config(config)

DATASET = config["data"]["name"]
RAW_STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
ENV = "../../envs/dgm.yaml"  # relative to this rules folder


wildcard_constraints:
    dataset="mnist|fashion-mnist|kmnist",
    model="vae|gan|flow",
    latent=r"\d+",
    seed=r"\d+",
    epoch=r"\d+",


def snapshot_epochs(section, key):
    """Configured epochs that exist in this run (<= epochs), always with the last one."""
    cfg = config[section]
    return sorted({e for e in cfg[key] if e <= cfg["epochs"]} | {cfg["epochs"]})


def run_dir(model, latent="{latent}", seed="{seed}", dataset="{dataset}"):
    return f"results/{dataset}/{model}/z{latent}/seed{seed}"


FLOW_LATENT = 784  # a flow's latent has the data's dimension: results/{dataset}/flow/z784/seed{seed}


def get_vae_runs():
    return [(z, s) for z in config["vae"]["latent_sizes"] for s in config["seeds"]]


def get_gan_runs():
    return [(z, s) for z in config["gan"]["latent_sizes"] for s in config["seeds"]]


def get_flow_runs():
    return [(FLOW_LATENT, s) for s in config["seeds"]]


def get_run_files(name, dataset=DATASET):
    """The file ``name`` in the run folder of every trained run (get_scored_runs)."""
    return [f"{run_dir(m, z, s, dataset)}/{name}" for m, z, s in get_scored_runs()]


def get_scored_runs():
    """(model, latent, seed) of every trained run that sample_quality scores; a model joins with one
    entry here (and one in dgm.models.MODELS)."""
    runs = {"vae": get_vae_runs, "gan": get_gan_runs, "flow": get_flow_runs}
    return [(m, z, s) for m in config["models"] if m in runs for z, s in runs[m]()]


def quality_snapshot_epochs(model):
    """Earlier epochs of a run scored from its snapshots besides the final model (gan.quality_epochs)."""
    cfg = config[model]
    return sorted(e for e in cfg.get("quality_epochs", []) if e < cfg["epochs"])


def parzen_sigmas():
    """Parzen bandwidths tried on validation: parzen_n_sigmas log-spaced values across parzen_sigma_range."""
    import numpy as np

    lo, hi = config["quality"]["parzen_sigma_range"]
    return np.logspace(np.log10(lo), np.log10(hi), config["quality"]["parzen_n_sigmas"]).tolist()


def get_sample_quality_input(wildcards):
    d = run_dir(wildcards.model, wildcards.latent, wildcards.seed, wildcards.dataset)
    inputs = {
        "model": f"{d}/model.pt",
        "classifier": f"results/{wildcards.dataset}/quality/classifier.pt",
        "splits": f"results/{wildcards.dataset}/data/splits.pt",
    }
    if quality_snapshot_epochs(wildcards.model):
        inputs["snapshots"] = f"{d}/snapshots.pt"
    return inputs


def get_likelihood_outputs():
    """Named lists of the likelihood rules' results for every trained VAE (quadrature for z = 2 only)."""
    if "vae" not in config["models"]:
        return {}
    runs = [(z, s, run_dir("vae", z, s, DATASET)) for z, s in get_vae_runs()]
    return {
        "likelihood_tests": [f"{d}/test_nll.json" for _, _, d in runs],
        "likelihood_sweeps": [f"{d}/estimator_sweep.csv" for _, _, d in runs],
        "likelihood_quadrature": [f"{d}/quadrature.json" for z, _, d in runs if z == 2],
        "kl_examples": ["results/likelihood/kl_examples.csv"],
    }


def get_likelihood_sweep_input(wildcards):
    """Every latent size's estimator sweep of one seed, and the z = 2 quadrature when z = 2 is trained."""
    sizes = config["vae"]["latent_sizes"]
    d = {z: run_dir("vae", z, wildcards.seed, wildcards.dataset) for z in sizes}
    return {
        "sweeps": [f"{d[z]}/estimator_sweep.csv" for z in sizes],
        "quadrature": [f"{d[2]}/quadrature.json"] if 2 in sizes else [],
    }


def get_figures(first_seed_only=False):
    """Every figure the configured models draw: curves over all seeds, and the image figures
    (samples, manifolds, interpolations, estimator sweeps) of every seed or only the first."""
    figs = f"results/{DATASET}/figures"
    seeds = config["seeds"][:1] if first_seed_only else config["seeds"]
    out = []
    if "vae" in config["models"]:
        out.append(f"{figs}/vae_elbo.png")
        for z, s in get_vae_runs():
            if s in seeds:
                out.append(f"{figs}/vae_samples_z{z}_seed{s}.png")
                out += [f"{figs}/vae_manifold_z2_seed{s}.png"] if z == 2 else []
        out += [f"{figs}/likelihood_sweep_seed{s}.png" for s in seeds]
    if "gan" in config["models"]:
        out.append(f"{figs}/gan_curves.png")
        for z, s in get_gan_runs():
            if s in seeds:
                out += [f"{figs}/gan_{fig}_z{z}_seed{s}.png" for fig in ("samples", "interpolation")]
    if "flow" in config["models"]:
        out.append(f"{figs}/flow_bpd.png")
        out += [f"{figs}/flow_{fig}_seed{s}.png" for s in seeds for fig in ("samples", "interpolation")]
    return out


def get_final_outputs():
    """What a full run makes: everything the report reads, every seed's figures, the sample-quality
    table and the documents."""
    out = [p for paths in get_report_inputs(None).values() for p in paths] + get_figures()
    if get_scored_runs():
        out.append(f"results/{DATASET}/quality/sample_quality.tsv")
    return list(dict.fromkeys(out + get_report_documents()))


def get_report_documents():
    """What `snakemake report` builds: the HTML, the LaTeX source and, unless switched off, the PDF."""
    docs = ["results/report/report.html", "results/report/report.tex"]
    return docs + (["results/report/report.pdf"] if config["report"]["pdf"] else [])


def get_report_inputs(wildcards):
    """Named lists of paths; each report section (dgm.tasks.<model>.report_section) picks its own.
    The document shows curves over all seeds and the image figures of the first seed."""
    figures = get_figures(first_seed_only=True)
    runs = {m: [run_dir(m, z, s, DATASET) for mm, z, s in get_scored_runs() if mm == m] for m in ("vae", "gan", "flow")}
    return {
        "splits": [f"results/{DATASET}/data/splits.json"],
        "models": get_run_files("model.pt"),
        "vae_metrics": [f"{d}/metrics.csv" for d in runs["vae"]],
        "vae_tests": [f"{d}/test_metrics.json" for d in runs["vae"]],
        "vae_figures": [p for p in figures if Path(p).name.startswith("vae_")],
        "flow_metrics": [f"{d}/metrics.csv" for d in runs["flow"]],
        "flow_tests": [f"{d}/test_metrics.json" for d in runs["flow"]],
        "flow_figures": [p for p in figures if Path(p).name.startswith("flow_")],
        "gan_metrics": [f"{d}/metrics.csv" for d in runs["gan"]],
        "gan_figures": [p for p in figures if Path(p).name.startswith("gan_")],
        "quality_runs": get_run_files("quality.json"),
        "quality_reference": [f"results/{DATASET}/quality/reference.json"] if get_scored_runs() else [],
        **get_likelihood_outputs(),
        "likelihood_figures": [p for p in figures if Path(p).name.startswith("likelihood_")],
    }
