"""Experiments through Snakemake on the tiny config: a two-point sweep, its run records, the runs
table and sweep figure, a second study compared against it, and a changed run never taken as the old."""
import json
import re

import pytest

from conftest import run_snakemake, write_config
from dgm import experiments

pytestmark = pytest.mark.slow  # a two-point sweep study through Snakemake, and a second study beside it

SWEEP = {"models": ["vae"], "vae": {"latent_sizes": [2]}, "sweep": {"vae": {"hidden_dim": [8, 16]}}}
TARGETS = ["results/runs/runs.tsv", "results/mnist/figures/sweep_vae_hidden_dim.png"]
POINTS = {8: "results/mnist/vae/hidden_dim~8/z2/seed0", 16: "results/mnist/vae/hidden_dim~16/z2/seed0"}


@pytest.fixture(scope="module")
def sweep_study(tmp_path_factory, tiny_raw_dir):
    wd = tmp_path_factory.mktemp("sweep")
    cfg = write_config(wd, tiny_raw_dir, SWEEP)
    run_snakemake(wd, *TARGETS, configfile=cfg)
    return wd, cfg


def test_sweep_points_are_separate_runs_with_their_records(sweep_study):
    wd, _ = sweep_study
    records = {h: json.loads((wd / d / "run.json").read_text()) for h, d in POINTS.items()}
    for h, record in records.items():
        assert record["config"]["vae"]["hidden_dim"] == h and record["config"]["point"] == {"hidden_dim": h}
        assert record["run"] == {"model": "vae", "latent": 2, "seed": 0, "point": {"hidden_dim": h}}
        assert record["git"]["commit"] and isinstance(record["git"]["dirty"], bool)
        assert record["packages"]["torch"] and record["device"].startswith("cpu")
        assert record["started"] <= record["ended"] and "snakemake" in record["command"]
        model = json.loads(json.dumps(__import__("torch").load(wd / POINTS[h] / "model.pt",
                                                                 weights_only=True)["model"]))
        assert model["hidden_dim"] == h  # the point's value reached the network
    assert records[8]["config_hash"] != records[16]["config_hash"]
    rows = experiments.read_tsv(wd / "results/runs/runs.tsv")
    assert [(r["point"], r["vae.hidden_dim"]) for r in rows] == [("hidden_dim=8", 8), ("hidden_dim=16", 16)]
    assert all(r["test_nll"] and r["fid"] and r["valid_nelbo"] and r["train_seconds"] for r in rows)
    assert (wd / "results/runs/runs.html").read_text().count("<tr>") == 6
    assert (wd / "results/mnist/figures/sweep_vae_hidden_dim.png").stat().st_size > 0


def test_editing_the_sweep_adds_only_the_new_points_jobs(sweep_study, tiny_raw_dir):
    wd, _ = sweep_study
    cfg = write_config(wd, tiny_raw_dir, {**SWEEP, "sweep": {"vae": {"hidden_dim": [8, 16, 32]}}})
    dry = run_snakemake(wd, *TARGETS, "-n", configfile=cfg).stdout
    for rule in ("train_vae", "test_nll", "evaluate_elbo", "sample_quality"):
        assert re.search(rf"^{rule}\s+1$", dry, re.M), rule  # the new point's job only
    assert "output: results/mnist/vae/hidden_dim~32/z2/seed0/model.pt" in dry
    assert "output: results/mnist/vae/hidden_dim~8/z2/seed0/model.pt" not in dry
    write_config(wd, tiny_raw_dir, SWEEP)  # back to the module's configuration


def test_a_changed_run_is_never_taken_for_the_old_one(sweep_study, tiny_raw_dir, tmp_path):
    """With a changed learning rate but mtime-only rerun triggers the training is not redone: the
    runs table then refuses the folder whose run.json holds the other configuration."""
    wd, _ = sweep_study
    cfg = write_config(tmp_path, tiny_raw_dir, {**SWEEP, "vae": {**SWEEP["vae"], "lr": 0.002}})
    proc = run_snakemake(wd, "results/runs/runs.tsv", "--rerun-triggers", "mtime", "--forcerun", "runs",
                         configfile=cfg, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr + (wd / "logs/runs/runs.log").read_text()
    assert f"{POINTS[8]}/run.json: this folder holds the run of configuration" in text
    assert not (wd / "results/runs/runs.tsv").exists()
    run_snakemake(wd, "results/runs/runs.tsv", configfile=write_config(wd, tiny_raw_dir, SWEEP))  # restored


def test_a_second_study_compared_against_the_first(sweep_study, tiny_raw_dir, tmp_path):
    wd, _ = sweep_study
    over = {**SWEEP, "vae": {**SWEEP["vae"], "lr": 0.003}, "sweep": {"vae": {"hidden_dim": [8]}},
            "compare": {"baseline": str(wd / "results/runs/runs.tsv")}}
    run_snakemake(tmp_path, "results/compare/compare.tsv", configfile=write_config(tmp_path, tiny_raw_dir, over))
    rows = {r["metric"]: r for r in experiments.read_tsv(tmp_path / "results/compare/compare.tsv")
            if r["point"] == "hidden_dim=8"}
    for metric in ("valid_nelbo", "test_nelbo", "test_nll", "fid", "precision", "parzen"):
        row = rows[metric]
        assert row["change"] == pytest.approx(row["new"] - row["old"]) and row["old_seeds"] == row["new_seeds"] == 1
    assert rows["valid_nelbo"]["change"] != 0  # another learning rate, another result
    only = [r for r in experiments.read_tsv(tmp_path / "results/compare/compare.tsv") if r["point"] == "hidden_dim=16"]
    assert only and all(r["only_in"] == "baseline" for r in only)  # the point this study did not run
    log = (tmp_path / "logs/runs/compare.log").read_text()
    assert "valid_nelbo" in log and "only in baseline" in log
    assert (tmp_path / "results/compare/curves_vae.png").stat().st_size > 0
