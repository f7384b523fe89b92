"""Fault injection in sweeps, the runs table and compare: the eleven cases of the issue "Faults in sweeps,
compare and the runs table" (numbered as there), and the GAN's warning that a run must not end without
showing. Each case fails fast with one line naming the key or file and what to do, or is handled; most
are checked on a dry run (the checks run when the DAG is built) or by calling the task on tiny files."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, assert_config_rejected, make_raw_dir, run_snakemake, write_config
from dgm import config as dgm_config
from dgm import experiments, io, training
from dgm.tasks import experiments as experiment_tasks

pytestmark = pytest.mark.faults
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def _study(wd: Path, *, dataset="mnist", latent=2, hidden_dim=16) -> Path:
    """A study's working directory with one VAE run (run.json, metrics.csv) and its runs table at
    results/runs/runs.tsv, the run folder named relative to ``wd`` as the rule runs names it."""
    run = Path("results") / dataset / "vae" / f"z{latent}" / "seed0"
    cfg = experiments.run_config(model="vae", section={"hidden_dim": hidden_dim}, data={"name": dataset},
                                 latent=latent, seed=0)
    io.write_json(experiments.run_record(config=cfg, started="s", ended="e", device="cpu", repo_dir=wd,
                                         command="test"), wd / run / experiments.RUN_RECORD)
    training.write_csv([{"epoch": 0, "valid_nelbo": 150.0}, {"epoch": 1, "valid_nelbo": 140.0 + hidden_dim / 100,
                                                              "train_seconds": 1.0}], wd / run / "metrics.csv")
    with contextlib.chdir(wd):
        experiments.write_runs([run], "results/runs/runs.tsv", "results/runs/runs_summary.tsv",
                               "results/runs/runs.html")
    return wd / "results/runs/runs.tsv"


def _compare(new_table: Path, baseline: Path, out: Path, monkeypatch) -> dict:
    """Rule compare's task on two studies; the curves and title it would draw, and its result rows."""
    from dgm import plotting

    drawn = {}
    monkeypatch.setattr(plotting, "plot_study_curves",
                        lambda curves, path, columns, title: drawn.update(curves=curves, title=title))
    rows = experiment_tasks.compare(runs_path=str(new_table), baseline=str(baseline), output_path=str(out / "c.tsv"),
                                    curve_paths={"vae": str(out / "curves_vae.png")})
    return {**drawn, "rows": rows}


def _lines(proc, key: str) -> list[str]:
    """The lines of a Snakemake run about config key ``key`` (its checks' warnings and errors)."""
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith(f"config key {key}:")]


def _refusal(wd: Path, cfg: Path, config_arg: str, key: str = "compare.baseline") -> str:
    """The one line a dry run with ``--config config_arg`` is refused with, before any result is written."""
    proc = run_snakemake(wd, "-n", "--config", config_arg, configfile=cfg, check=False)
    assert proc.returncode != 0 and not (wd / "results").exists()
    lines = _lines(proc, key)
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


# -- cases 1 and 2: sweep values take the type of the key they set


def test_case1_sweep_on_the_command_line_trains_with_numbers(tmp_path, tiny_raw_dir):
    assert dgm_config.coerce_sweep({"vae": {"hidden_dim": ["32", "48"]}}, SCHEMA) == {"vae": {"hidden_dim": [32, 48]}}
    cfg = write_config(tmp_path, tiny_raw_dir, {"models": ["vae"], "seeds": [0], "vae": {"latent_sizes": [2]}})
    run = tmp_path / "results/mnist/vae/hidden_dim~8/z2/seed0"
    run_snakemake(tmp_path, f"{run.relative_to(tmp_path)}/run.json", "--config", "sweep={vae: {hidden_dim: [8, 12]}}",
                  configfile=cfg)
    record = json.loads((run / "run.json").read_text())
    assert record["config"]["point"] == {"hidden_dim": 8} and record["config"]["vae"]["hidden_dim"] == 8
    assert torch.load(run / "model.pt", weights_only=True)["model"]["hidden_dim"] == 8


def test_case2_sweep_values_read_as_strings_from_yaml_are_numbers_and_name_folders_so(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir, {"models": ["vae"], "seeds": [0], "vae": {"latent_sizes": [2]}})
    cfg.write_text(cfg.read_text() + "sweep: {vae: {lr: [1e-3, 2e-3]}}\n")  # YAML 1.1 reads 1e-3 as a string
    assert yaml.safe_load(cfg.read_text())["sweep"]["vae"]["lr"] == ["1e-3", "2e-3"]
    assert dgm_config.coerce_sweep({"vae": {"lr": ["1e-3", "2e-3"]}}, SCHEMA) == {"vae": {"lr": [0.001, 0.002]}}
    planned = run_snakemake(tmp_path, "-n", configfile=cfg).stdout
    assert "results/mnist/vae/lr~0.001/z2/seed0/model.pt" in planned
    assert "results/mnist/vae/lr~0.002/z2/seed0/model.pt" in planned and "lr~1e-3" not in planned


# -- cases 3 to 7: the baseline of compare


@pytest.mark.parametrize("column", ["latent", "model"])
def test_case3_baseline_table_without_a_key_column_is_named(tmp_path, tiny_raw_dir, column):
    table = _study(tmp_path / "old")
    rows = experiments.read_tsv(table)
    experiments.write_tsv(rows, table, [c for c in rows[0] if c != column])
    line = _refusal(tmp_path, write_config(tmp_path, tiny_raw_dir), f"compare={{baseline: {table}}}")
    assert line.startswith(f"config key compare.baseline: {table}: not a runs table: no column '{column}'; give")
    with pytest.raises(experiments.NotARunsTable, match=f"no column '{column}'"):  # the compare job says the same
        experiments.load_runs(table)


def test_case4_a_file_that_is_not_a_runs_table(tmp_path, tiny_raw_dir, capsys):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    line = _refusal(tmp_path, write_config(tmp_path, tiny_raw_dir), f"compare={{baseline: {passwd}}}")
    assert line.startswith(f"config key compare.baseline: {passwd}: not a runs table: no column 'model', 'latent'")
    with pytest.raises(SystemExit) as err:  # and on the command line: one line, no traceback
        experiments.main(["compare", str(_study(tmp_path / "new")), str(passwd)])
    assert err.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"python -m dgm.experiments compare: {passwd}: not a runs table: no column 'model', 'latent'; give a "
        "study's results folder or the runs.tsv that `snakemake results/runs/runs.tsv` writes"]


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_case5_missing_or_empty_baseline_folder_is_refused_before_any_job(tmp_path, tiny_raw_dir, state):
    folder = tmp_path / "old" / "results"
    if state == "empty":
        folder.mkdir(parents=True)
    cfg = write_config(tmp_path, tiny_raw_dir)
    assert_config_rejected(tmp_path, cfg, f"compare={{baseline: {folder}}}", "compare.baseline", "-n")
    line = _refusal(tmp_path, cfg, f"compare={{baseline: {folder}}}")
    cause = "no such file or folder" if state == "missing" else "no run folders (no run.json below it)"
    assert line.startswith(f"config key compare.baseline: {folder}: {cause}; give")


def test_case6_baseline_of_another_dataset_is_said_and_its_curves_not_drawn(tmp_path, tiny_raw_dir, monkeypatch):
    other = _study(tmp_path / "old", dataset="fashion-mnist")
    proc = run_snakemake(tmp_path, "-n", "--config", f"compare={{baseline: {other}}}",
                         configfile=write_config(tmp_path, tiny_raw_dir))
    assert _lines(proc, "compare.baseline") == [
        f"config key compare.baseline: {other} holds runs of fashion-mnist only, and this study is of mnist: no "
        "metric will be compared; give a baseline study of the same dataset"]
    drawn = _compare(_study(tmp_path / "new"), other, tmp_path, monkeypatch)
    assert drawn["curves"]["baseline"] == [] and len(drawn["curves"]["new"]) == 1  # matched on dataset
    assert "no curves of" in drawn["title"]
    assert all(r.get("only_in") for r in drawn["rows"])


def test_case6_the_warnings_of_a_comparison(tmp_path, caplog, monkeypatch):
    new, same, other_size = _study(tmp_path / "new"), _study(tmp_path / "same"), _study(tmp_path / "z20", latent=20)
    other_data = _study(tmp_path / "fashion", dataset="fashion-mnist")
    caplog.set_level("WARNING", logger="dgm")
    _compare(new, other_data, tmp_path, monkeypatch)
    assert ("compare.baseline: the baseline's runs are of fashion-mnist and this study's of mnist: no metric is "
            "compared; compare studies of the same dataset") in caplog.messages
    caplog.clear()
    _compare(new, other_size, tmp_path, monkeypatch)
    assert caplog.messages == ["compare.baseline: the two studies share no setting (dataset, model, sweep point, "
                               "latent size): every metric is only in one of them"]
    caplog.clear()
    drawn = _compare(new, same, tmp_path, monkeypatch)  # a comparable baseline: no warning, both studies' curves
    assert caplog.messages == [] and len(drawn["curves"]["baseline"]) == 1 and "(dashed)" in drawn["title"]


def test_case7_a_runs_table_moved_out_of_its_study(tmp_path, tiny_raw_dir, caplog, monkeypatch):
    table, new = _study(tmp_path / "old"), _study(tmp_path / "new")
    inside = tmp_path / "old" / "baseline.tsv"  # moved within its study: its run folders are found from it
    shutil.copy(table, inside)
    assert _compare(new, inside, tmp_path, monkeypatch)["curves"]["baseline"]
    elsewhere = tmp_path / "elsewhere" / "runs.tsv"
    elsewhere.parent.mkdir()
    shutil.copy(table, elsewhere)
    beside_another = tmp_path / "another" / "runs.tsv"  # beside another study's folder of the same name: not taken
    _study(tmp_path / "another", hidden_dim=32)
    shutil.copy(table, beside_another)
    message = ("the run folders it lists (e.g. results/mnist/vae/z2/seed0) are not found from where it is, so the "
               "comparison has no baseline curves; give the baseline study's results folder instead, or keep its "
               "runs.tsv inside that study")
    for moved in (elsewhere, beside_another):
        caplog.clear()
        caplog.set_level("WARNING", logger="dgm")
        drawn = _compare(new, moved, tmp_path, monkeypatch)
        assert caplog.messages == [f"compare.baseline: {moved}: {message}"]
        assert drawn["curves"]["baseline"] == [] and "no curves of" in drawn["title"]
        assert {r["metric"] for r in drawn["rows"] if r.get("change") is not None} == {"valid_nelbo", "epochs",
                                                                                        "train_seconds"}
    proc = run_snakemake(tmp_path, "-n", "--config", f"compare={{baseline: {elsewhere}}}",
                         configfile=write_config(tmp_path, tiny_raw_dir))
    assert _lines(proc, "compare.baseline") == [f"config key compare.baseline: {elsewhere}: {message}"]


# -- cases 8 and 9: sizes beyond what the data give


def test_case8_ais_images_beyond_the_test_set_are_warned_and_recorded_as_used(tmp_path, tiny_raw_dir, caplog):
    proc = run_snakemake(tmp_path, "-n", "--config", "likelihood={ais: {images: 500}}",
                         configfile=write_config(tmp_path, tiny_raw_dir))
    assert _lines(proc, "likelihood.ais.images") == [
        "config key likelihood.ais.images: 500 is more than the 100 test images; AIS uses all 100"]
    from dgm.tasks import ais
    from dgm.vae import VAE

    training.seed_everything(0)
    model = VAE(latent_dim=3, hidden_dim=8)
    io.torch_save({"model": model.describe(), "state_dict": model.state_dict()}, tmp_path / "model.pt")
    images = (torch.rand(5, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    torch.save({"test_images": images, "test_binary": (images > 127).to(torch.uint8)}, tmp_path / "splits.pt")
    io.write_json({"sigma": 0.1}, tmp_path / "sigma.json")
    cfg = {"images": 8, "steps": 2, "chains": 2, "leapfrog": 1, "step_size": 0.05, "schedule": "sigmoid",
           "encoder": True, "seed": 0, "sweep_steps": [0, 2]}
    caplog.set_level("WARNING", logger="dgm")
    result = ais.ais(model_path=tmp_path / "model.pt", splits_path=tmp_path / "splits.pt",
                     sigma_path=tmp_path / "sigma.json", output_path=tmp_path / "ais.json",
                     sweep_path=tmp_path / "ais_sweep.csv", cfg=cfg, k=4, quadrature={}, device="cpu")
    recorded = json.loads((tmp_path / "ais.json").read_text())
    assert result["n_images"] == recorded["n_images"] == 5
    assert all(len(values) == 5 for values in recorded["per_image"].values())
    assert "likelihood.ais.images = 8, but the test set has 5 images: AIS uses all of them" in caplog.messages


def test_case9_sample_sizes_beyond_n_samples_are_warned(tmp_path, tiny_raw_dir):
    proc = run_snakemake(tmp_path, "-n", "--config", "quality={n_samples: 200, metrics: {sample_sizes: [100, 500]}}",
                         configfile=write_config(tmp_path, tiny_raw_dir))
    assert _lines(proc, "quality.metrics.sample_sizes") == [
        "config key quality.metrics.sample_sizes: [500] are beyond quality.n_samples = 200 and are dropped"]


# -- case 10: the runs command on a folder that is not a study


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_case10_runs_command_names_a_folder_without_runs_and_creates_nothing(tmp_path, capsys, state):
    folder = tmp_path / "resluts"
    if state == "empty":
        folder.mkdir()
    with pytest.raises(SystemExit) as err:
        experiments.main(["runs", str(folder)])
    assert err.value.code == 2
    cause = "no such folder" if state == "missing" else "no run folders (no run.json below it)"
    assert capsys.readouterr().err.strip().splitlines() == [
        f"python -m dgm.experiments runs: {folder}: {cause}; give a results folder of this pipeline"]
    assert folder.exists() == (state == "empty") and not list(tmp_path.rglob("runs.tsv"))


# -- case 11: a read-only results folder


@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` takes no new files and loses none (its files stay writable); root needs chattr +i for that."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a folder immutable here (chattr)")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


def test_case11_read_only_results_folder_is_named_in_one_line(tmp_path):
    raw = make_raw_dir(tmp_path / "raw", n_train=60, n_test=20)
    cfg = write_config(tmp_path, raw)
    target = "results/mnist/raw/checksums.json"
    run_snakemake(tmp_path, target, configfile=cfg)
    with _read_only(tmp_path / "results/mnist/raw"):
        proc = run_snakemake(tmp_path, target, "--forcerun", "download_mnist", configfile=cfg, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text
    assert ("results/mnist/raw: a read-only folder, and this run writes results/mnist/raw/train-images-idx3-ubyte; "
            "make it writable (chmod -R u+w results/mnist/raw) or run the study in another working directory "
            "(snakemake -d)") in text.splitlines()
    assert (tmp_path / target).exists()  # nothing was deleted
    run_snakemake(tmp_path, target, "--forcerun", "download_mnist", configfile=cfg)  # writable again: it runs


# -- the GAN's discriminator winning outright: on the console at the end of the run


def test_gan_discriminator_warning_is_printed_at_the_end_of_the_run(tmp_path, tiny_raw_dir):
    cfg = write_config(tmp_path, tiny_raw_dir, {"models": ["gan"], "seeds": [0], "gan": {
        "hidden_dim": 64, "batch_size": 16, "epochs": 4, "sample_epochs": [4], "quality_epochs": []}})
    proc = run_snakemake(tmp_path, "results/mnist/gan/z8/seed0/model.pt", "--config", "gan={lr: 1.0e3}",
                         configfile=cfg)
    lines = proc.stderr.splitlines()
    warning = [i for i, line in enumerate(lines) if line.startswith("warning of a job of this run: ")]
    assert warning, proc.stderr[-3000:]
    assert lines[warning[0]].startswith("warning of a job of this run: logs/train/mnist/gan/z8/seed0.log: the "
                                        "discriminator has won outright for 3 evaluations in a row")
    assert warning[0] > max(i for i, line in enumerate(lines) if "steps (100%) done" in line)  # after the jobs
