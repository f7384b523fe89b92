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


def get_vae_runs():
    return [(z, s) for z in config["vae"]["latent_sizes"] for s in config["seeds"]]


def get_final_outputs():
    out = []
    if "vae" in config["models"]:
        for z, s in get_vae_runs():
            d = run_dir("vae", z, s, DATASET)
            out += [f"{d}/metrics.csv", f"{d}/test_metrics.json"]
            out += [f"results/{DATASET}/figures/vae_samples_z{z}_seed{s}.png"]
            if z == 2:
                out.append(f"results/{DATASET}/figures/vae_manifold_z2_seed{s}.png")
        out += [f"results/{DATASET}/figures/vae_elbo_seed{s}.png" for s in config["seeds"]]
    out += ["results/report/report.html", "results/report/report.tex"]
    return out


def get_report_inputs(wildcards):
    """Named lists of paths; each report section (dgm.tasks.<model>.report_section) picks its own."""
    vae_runs = [run_dir("vae", z, s, DATASET) for z, s in get_vae_runs()] if "vae" in config["models"] else []
    return {
        "splits": [f"results/{DATASET}/data/splits.json"],
        "vae_metrics": [f"{d}/metrics.csv" for d in vae_runs],
        "vae_tests": [f"{d}/test_metrics.json" for d in vae_runs],
        "vae_figures": [p for p in get_final_outputs() if "/figures/vae_" in p],
    }
