"""The workflow used as a Snakemake module (issue 26, item 4): a study folder outside the repository
with the layout `snakedeploy deploy-workflow` writes (workflow/Snakefile, config/config.yaml), whose
Snakefile declares ours as ``module dgm`` with ``config: config`` and takes every rule as ``dgm_*``."""
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, TINY_CONFIG, run_snakemake

CONSUMER = f"""\
configfile: "config/config.yaml"


module dgm:
    snakefile:
        "{REPO / "Snakefile"}"
    config:
        config


use rule * from dgm as dgm_*
"""
TARGET = "results/mnist/vae/z2/seed0/model.pt"


def study_folder(folder: Path, cfg: dict) -> Path:
    """A consumer's study: its Snakefile using ours as a module, and its config."""
    (folder / "workflow").mkdir(parents=True)
    (folder / "workflow" / "Snakefile").write_text(CONSUMER)
    (folder / "config").mkdir()
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def run_study(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake as the consumer runs it: in the study folder, which holds workflow/Snakefile."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", *args], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-8000:]}"
    return proc


def job_counts(dry_run_output: str, prefix: str = "") -> dict[str, int]:
    """{rule: jobs} from a dry run's job table, without the rule names' ``prefix``."""
    table = dry_run_output.split("Job stats:", 1)[1].split("total", 1)[0]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
    return {rule.removeprefix(prefix): n for rule, n in counts.items()}


@pytest.mark.slow
def test_module_runs_data_and_training_in_the_consumer_folder(tmp_path, tiny_raw_dir):
    cfg = {
        "data": {"raw_dir": str(tiny_raw_dir), "valid_size": TINY_CONFIG["data"]["valid_size"]},
        "models": ["vae"],
        "vae": {**TINY_CONFIG["vae"], "latent_sizes": [2]},
        "report": {"pdf": False},
    }
    study = study_folder(tmp_path / "study", cfg)
    ours = REPO / TARGET
    before = ours.stat().st_mtime_ns if ours.exists() else None
    proc = run_study(study, TARGET)
    assert "dgm_train_vae" in proc.stdout + proc.stderr  # the module's rules, under the consumer's names
    for path in [TARGET, "results/mnist/data/splits.pt", "results/mnist/vae/z2/seed0/metrics.csv",
                 "logs/train/mnist/vae/z2/seed0.log", "benchmarks/train/mnist/vae/z2/seed0.tsv"]:
        assert (study / path).is_file(), path
    assert (ours.stat().st_mtime_ns if ours.exists() else None) == before  # nothing written in the repository


@pytest.mark.slow
def test_module_takes_the_defaults_of_the_standalone_study(tmp_path, tiny_raw_dir):
    """Snakemake skips a module's own ``configfile:`` when the consumer hands it ``config``: a partial
    config still gets the study's defaults (config.yaml), so the module's DAG is the standalone one."""
    cfg = {"data": {"raw_dir": str(tiny_raw_dir)}, "report": {"pdf": False}}
    study = study_folder(tmp_path / "study", cfg)
    module = job_counts(run_study(study, "-n").stdout, prefix="dgm_")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "config.yaml").write_text(yaml.safe_dump(cfg))
    standalone = job_counts(run_snakemake(alone, "-n", configfile=alone / "config.yaml").stdout)
    assert module == standalone
    assert {"train_vae", "train_iwae", "train_gan", "train_flow"} <= set(module)  # config.yaml's four models
