"""The local test Slurm (tests/slurm/start.sh) and the Slurm profile, for real.

Skipped unless the cluster is up. About three minutes, most of it the executor's status polling: it
adds 10 s to its poll interval after every poll that finds no job finished.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, write_config


def _cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        # `scontrol ping` fails at once without a controller; sinfo would retry for 9 s.
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        if "UP" not in ping.stdout:
            return False
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                             timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return False
    return any(state in ("idle", "mixed") for state in out)


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not _cluster_up(), reason="no idle Slurm node: run tests/slurm/start.sh"),
]


def sacct_state(job_id: str, timeout: float = 30) -> str:
    """The job's final state as accounting records it (slurmdbd lags the job by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        state = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if state not in ("", "PENDING", "RUNNING", "COMPLETING") or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


@pytest.mark.parametrize("request_args", [[], ["--gres=gpu:1"], ["--gpus=1"]])
def test_batch_job_completes_and_reaches_accounting(tmp_path, request_args):
    out = tmp_path / "job.out"
    job_id = subprocess.run(
        ["sbatch", "--parsable", "--wait", "-o", str(out), *request_args,
         "--wrap", "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip().split(";")[0]
    assert sacct_state(job_id) == "COMPLETED"
    expected = "unset" if not request_args else "0"  # the fake GPU is bound like a real one
    assert out.read_text().strip() == f"CUDA_VISIBLE_DEVICES={expected}"


def test_workflow_runs_through_the_slurm_profile(tmp_path):
    (tmp_path / "Snakefile").write_text(textwrap.dedent(
        """
        rule all:
            input: "gpu.txt"

        rule cpu_step:
            output: "cpu.txt"
            shell: "echo ${{CUDA_VISIBLE_DEVICES-unset}} $(command -v python) > {output}"

        rule gpu_step:
            input: "cpu.txt"
            output: "gpu.txt"
            resources: gpu=1, mem_mb=500, runtime=5
            run:
                from dgm.gpu_slots import claim_for_job
                slot = claim_for_job()  # Slurm bound the GPU: no effect
                with open(output[0], "w") as f:
                    print(os.environ["CUDA_VISIBLE_DEVICES"], os.environ["SLURM_JOB_ID"], slot,
                          file=f)
        """
    ))
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=venv_bin + os.pathsep + os.environ["PATH"],
               PYTHONPATH=str(REPO / "workflow" / "scripts"))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--workflow-profile", str(REPO / "profiles" / "slurm"),
         "--slurm-init-seconds-before-status-checks", "1", "--slurm-no-account"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # CPU job: no GPU; shell commands find the venv's python through the exported PATH.
    assert (tmp_path / "cpu.txt").read_text().split() == ["unset", str(Path(venv_bin) / "python")]
    device, job_id, slot = (tmp_path / "gpu.txt").read_text().split()
    assert device == "0" and job_id.isdigit() and slot == "None"
    assert sacct_state(job_id) == "COMPLETED"


def _submitted_jobs(output: str) -> dict[str, list[str]]:
    """{rule: [Slurm job ids]} from Snakemake's output (job blocks, then 'submitted' lines)."""
    rule_of, by_rule, current = {}, {}, None
    for line in output.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            current = m.group(1)
        elif (m := re.match(r"^\s+jobid: (\d+)", line)) and current:
            rule_of[m.group(1)] = current
        elif m := re.search(r"Job (\d+) has been submitted with SLURM jobid (\d+)", line):
            by_rule.setdefault(rule_of[m.group(1)], []).append(m.group(2))
    return by_rule


def _numbers(run_dir: Path) -> dict:
    """Everything a run computed, minus wall-clock columns."""
    out = {}
    for path in sorted(run_dir.rglob("results/**/metrics.csv")):
        frame = pd.read_csv(path)
        out[str(path.relative_to(run_dir))] = frame[[c for c in frame if "seconds" not in c]]
    for path in sorted(run_dir.rglob("results/**/test_metrics.json")):
        out[str(path.relative_to(run_dir))] = json.loads(path.read_text())
    return out


# The VAE branch of the tiny DAG at z = 2: every kind of rule (localrule download, CPU-only data, figure and
# report rules, GPU-tagged training and evaluation, the z = 2 quadrature and manifold) with few enough jobs
# that the executor's status polling keeps the test near two minutes on the 2-CPU test node.
SLURM_CONFIG = {"models": ["vae"], "vae": {"latent_sizes": [2]}, "device": "auto"}  # auto: torch jobs ask for a GPU


@pytest.mark.slow
def test_tiny_pipeline_through_slurm_matches_a_local_run(tmp_path, tiny_raw_dir, tiny_run):
    """The local run to match is the session's whole-DAG run (tiny_run): its VAE runs have the same
    configuration, data and seeds, so each of the cluster's results must equal its local twin."""
    cluster = tmp_path / "slurm"
    cluster.mkdir()
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(cluster),
         "--workflow-profile", str(REPO / "profiles" / "slurm"), "--slurm-init-seconds-before-status-checks", "1",
         "--slurm-no-account", "--configfile", str(write_config(cluster, tiny_raw_dir, SLURM_CONFIG))],
        cwd=cluster, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    jobs = _submitted_jobs(run.stdout + run.stderr)
    assert "download_mnist" not in jobs  # a localrule: runs on the submit host
    assert {"prepare_mnist", "train_vae", "evaluate_elbo", "quadrature", "report_documents"} <= set(jobs)
    n_train = len(list((cluster / "results/mnist/vae").glob("z*/seed*/model.pt")))
    assert len(jobs["train_vae"]) == n_train > 0
    for rule, ids in jobs.items():
        for job_id in ids:
            assert sacct_state(job_id) == "COMPLETED", (rule, job_id)
    a, b = _numbers(tiny_run), _numbers(cluster)
    assert b and set(b) <= set(a), sorted(set(b) - set(a))  # every cluster result has its local twin
    for key in b:
        if key.endswith(".csv"):
            pd.testing.assert_frame_equal(a[key], b[key], rtol=1e-6)
        else:
            numbers = lambda d: {k: v for k, v in d.items() if isinstance(v, (int, float)) and "seconds" not in k}  # noqa: E731
            assert numbers(a[key]) == pytest.approx(numbers(b[key]), rel=1e-6) and numbers(a[key])
            assert {k: v for k, v in a[key].items() if isinstance(v, str)} == \
                {k: v for k, v in b[key].items() if isinstance(v, str)}
