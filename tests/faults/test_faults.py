"""Fault injection: what the pipeline survives, in one place. Each test throws one fault a user can hit
at the pipeline and checks that it fails fast naming the key or file, leaves no declared output of
the failing job, and (where cheap) that a rerun without the fault completes. The case numbers are
those of the issue "Faults a user can hit". Besides these, the GAN's and the flow's SIGKILL-resume
tests (tests/test_rules_gan.py, tests/test_rules_flow.py) share their modules' trained runs and are
marked ``faults`` too: ``pytest -m faults`` runs the whole suite."""
from __future__ import annotations

import errno
import logging
import os
import shutil

import pandas as pd
import pytest
import torch

from conftest import STEMS, assert_config_rejected, make_raw_dir, run_snakemake, write_config, write_idx
from dgm import io, training
from dgm.gan import GAN, GANTrainer
from dgm.vae import VAE, VAETrainer

CHECKSUMS = "results/mnist/raw/checksums.json"
RAW = "results/mnist/raw"
pytestmark = pytest.mark.faults


def _vae_trainer(lr=1e-3):
    training.seed_everything(0)
    valid = torch.bernoulli(torch.full((50, 784), 0.3), generator=torch.Generator().manual_seed(9))
    return VAETrainer(VAE(latent_dim=2, hidden_dim=16), lr=lr, valid_x=valid)


def _fit(trainer, run_dir, epochs=2):
    data = (torch.rand(200, 784, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    return training.fit(trainer, data, epochs=epochs, batch_size=64, generator=torch.Generator().manual_seed(0),
                        checkpoint_path=run_dir / ".resume.pt", metrics_path=run_dir / "metrics.csv",
                        fingerprint="f", prepare_batch=lambda b, g: torch.bernoulli(b.float() / 255, generator=g))


# -- a corrupt input file, a killed training job


def test_corrupt_file_fails_naming_it_and_nothing_downstream_runs(tmp_path):
    raw = make_raw_dir(tmp_path / "raw", n_train=60, n_test=20)
    bad = raw / f"{STEMS['train_images']}.gz"
    bad.write_bytes(bad.read_bytes()[:-200])
    cfg = write_config(tmp_path, raw)
    proc = run_snakemake(tmp_path, "results/mnist/data/splits.pt", configfile=cfg, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/download_mnist/mnist.log").read_text()
    assert "train-images-idx3-ubyte.gz" in log and ("truncated" in log or "corrupt" in log)
    assert not (tmp_path / RAW / "checksums.json").exists()
    assert not (tmp_path / "results/mnist/data/splits.pt").exists()
    assert not (tmp_path / "logs/prepare_mnist").exists()  # the downstream rule never started


def test_killed_training_resumes_to_the_same_result(tmp_path, tiny_raw_dir):
    over = {"vae": {"epochs": 4, "sample_epochs": [0, 4], "manifold_epochs": [4]}}
    target = "results/mnist/vae/z3/seed0/model.pt"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a = write_config(tmp_path / "a", tiny_raw_dir, over)
    cfg_b = write_config(tmp_path / "b", tiny_raw_dir, over)
    run_snakemake(tmp_path / "a", target, configfile=cfg_a)

    killed = run_snakemake(tmp_path / "b", target, configfile=cfg_b, env={"DGM_KILL_AFTER_EPOCH": "2"}, check=False)
    assert killed.returncode != 0
    run_b = tmp_path / "b/results/mnist/vae/z3/seed0"
    assert (run_b / ".resume.pt").exists() and not (run_b / "model.pt").exists()
    assert torch.load(run_b / ".resume.pt", weights_only=True)["epoch"] == 2

    run_snakemake(tmp_path / "b", target, configfile=cfg_b)
    log = (tmp_path / "b/logs/train/mnist/vae/z3/seed0.log").read_text()
    assert "resuming" in log and "after epoch 2 of 4" in log
    a = pd.read_csv(tmp_path / "a/results/mnist/vae/z3/seed0/metrics.csv").filter(regex="nelbo|recon|kl")
    b = pd.read_csv(run_b / "metrics.csv").filter(regex="nelbo|recon|kl")
    pd.testing.assert_frame_equal(a, b)
    wa = torch.load(tmp_path / "a/results/mnist/vae/z3/seed0/model.pt", weights_only=True)["state_dict"]
    wb = torch.load(run_b / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


# -- case 1: a diverged run is an error, never a result


class _NaNAtStep(VAETrainer):
    """A VAE trainer whose loss turns NaN at one step (its statistics are device tensors, as every trainer's)."""

    def __init__(self, *a, bad_step, **kw):
        super().__init__(*a, **kw)
        self.steps, self.bad_step = 0, bad_step

    def train_step(self, batch, generator):
        stats = super().train_step(batch, generator)
        self.steps += 1
        return {**stats, "nelbo": stats["nelbo"] * float("nan")} if self.steps == self.bad_step else stats


def test_case1_nan_loss_stops_training_naming_run_epoch_and_keys(tmp_path):
    run = tmp_path / "results" / "mnist" / "vae" / "z2" / "seed0"
    valid = torch.bernoulli(torch.full((50, 784), 0.3), generator=torch.Generator().manual_seed(9))
    trainer = _NaNAtStep(VAE(latent_dim=2, hidden_dim=16), lr=1e-3, valid_x=valid, bad_step=6)  # 4 steps an epoch
    with pytest.raises(training.TrainingDiverged) as err:
        _fit(trainer, run)
    message = str(err.value)
    assert str(run) in message and "epoch 2 of 2" in message and "step 2 of 4" in message
    assert "nelbo = nan" in message and "vae.lr" in message
    assert not (run / "metrics.csv").exists()  # the earlier epochs' CSV would look like a result
    assert trainer.steps == 6  # stopped at that step
    rows, _ = _fit(_vae_trainer(), tmp_path / "healthy")  # the same run without the fault completes
    assert len(rows) == 3


def test_case1_a_non_finite_step_on_a_gpu_is_named_at_the_end_of_its_epoch(tmp_path, monkeypatch):
    """On a GPU the steps' statistics stay on the device; the first non-finite step is found when the
    epoch's sums are read, and named (simulated on the CPU by treating tensors as unreadable)."""
    monkeypatch.setattr(training, "_readable", lambda v: isinstance(v, (float, int)))  # as on a GPU
    training.seed_everything(0)
    valid = torch.bernoulli(torch.full((50, 784), 0.3), generator=torch.Generator().manual_seed(9))
    trainer = _NaNAtStep(VAE(latent_dim=2, hidden_dim=16), lr=1e-3, valid_x=valid, bad_step=6)  # 4 steps an epoch
    run = tmp_path / "run"
    with pytest.raises(training.TrainingDiverged) as err:
        _fit(trainer, run, epochs=3)
    message = str(err.value)
    assert "epoch 2 of 3" in message and "step 2 of 4 (found at the end of the epoch)" in message
    assert "nelbo = nan" in message and "vae.lr" in message
    assert trainer.steps == 8  # the epoch ran to its end, and no further
    assert not (run / "metrics.csv").exists()


def test_case1_diverged_vae_in_snakemake_leaves_no_output(tmp_path, tiny_raw_dir):
    config = write_config(tmp_path, tiny_raw_dir, {"models": ["vae"], "seeds": [0]})
    target, run = "results/mnist/vae/z2/seed0/model.pt", tmp_path / "results/mnist/vae/z2/seed0"
    proc = run_snakemake(tmp_path, target, "--config", "vae={lr: 1.0e+30}", configfile=config, check=False)
    assert proc.returncode != 0
    text = "".join(p.read_text() for p in (tmp_path / "logs").rglob("seed0.log"))
    assert "diverged at epoch 1 of 2" in text and "vae.lr" in text and "results/mnist/vae/z2/seed0" in text, (
        proc.stderr[-3000:] + text[-3000:])
    assert not any((run / name).exists() for name in ("model.pt", "metrics.csv", "snapshots.pt"))
    run_snakemake(tmp_path, target, configfile=config)  # healthy lr: completes
    assert (run / "model.pt").exists()


def test_case1_evaluation_refuses_non_finite_result(tmp_path):
    dest = tmp_path / "test_metrics.json"
    with pytest.raises(ValueError, match=r"test_metrics.json: refusing to write non-finite values at test_nelbo"):
        io.write_json({"model": "vae", "test_nelbo": float("nan"), "parts": [1.0, float("inf")]}, dest)
    assert not dest.exists() and not list(tmp_path.iterdir())
    io.write_json({"model": "vae", "test_nelbo": 90.5}, dest)
    assert dest.exists()


def test_case1_evaluation_refuses_a_non_finite_model(tmp_path):
    from dgm.models import NonFiniteModel, load_model

    model = VAE(latent_dim=2, hidden_dim=16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "model.pt"
    io.torch_save({"model": model.describe(), "state_dict": state}, path)
    assert load_model(path).latent_dim == 2  # healthy weights load
    state[next(iter(state))][0, 0] = float("nan")
    io.torch_save({"model": model.describe(), "state_dict": state}, path)
    with pytest.raises(NonFiniteModel, match=rf"{path}: non-finite weights in .*diverged"):
        load_model(path)


def test_case1_csv_results_refuse_non_finite_values(tmp_path):
    dest = tmp_path / "estimator_sweep.csv"
    message = r"estimator_sweep.csv: refusing to write non-finite values at row 1 column mean"
    with pytest.raises(io.NonFiniteResult, match=message):
        training.write_csv([{"k": 1, "mean": -90.0}, {"k": 10, "mean": float("-inf")}], dest)
    assert not list(tmp_path.iterdir())


def test_case1_gan_discriminator_dominance_is_warned(caplog):
    training.seed_everything(0)
    trainer = GANTrainer(GAN(latent_dim=4, hidden_dim=8), lr=2e-4, betas=(0.5, 0.999), valid_x=torch.rand(8, 784))
    caplog.set_level(logging.WARNING, logger="dgm")
    for _ in range(trainer.dominance_epochs - 1):
        trainer._warn_if_dominated({"d_real": 1.0, "d_fake": 0.0})
    assert "discriminator has won" not in caplog.text
    trainer._warn_if_dominated({"d_real": 0.999, "d_fake": 1e-6})
    assert "discriminator has won outright for 3 evaluations" in caplog.text and "gan.lr" in caplog.text
    caplog.clear()
    trainer._warn_if_dominated({"d_real": 0.7, "d_fake": 0.3})  # a healthy epoch resets the count
    trainer._warn_if_dominated({"d_real": 1.0, "d_fake": 0.0})
    assert "discriminator has won" not in caplog.text


# -- case 2: raw files are inputs; case 4: braces in raw_dir are text


def test_case2_and_4_changed_raw_file_reruns_download_even_with_braces(tmp_path):
    raw = make_raw_dir(tmp_path / "raw {abc}")
    config = write_config(tmp_path, raw)
    run_snakemake(tmp_path, CHECKSUMS, configfile=config)
    assert "Nothing to be done" in run_snakemake(tmp_path, CHECKSUMS, "-n", configfile=config).stdout
    write_idx(raw / f"{STEMS['test_labels']}.gz", torch.zeros(100, dtype=torch.uint8).numpy())  # a different file
    planned = run_snakemake(tmp_path, CHECKSUMS, "-n", configfile=config).stdout
    assert "download_mnist" in planned and "Nothing to be done" not in planned


# -- case 3: an ambiguous raw folder


def test_case3_gz_and_plain_file_that_differ_are_refused(tmp_path):
    raw = make_raw_dir(tmp_path / "raw")
    stem = STEMS["train_labels"]
    shutil.copy(make_raw_dir(tmp_path / "other", n_train=300, gz=False) / stem, raw / stem)
    config = write_config(tmp_path, raw)
    proc = run_snakemake(tmp_path, CHECKSUMS, configfile=config, check=False)
    assert proc.returncode != 0
    assert f"{raw / stem}.gz and {raw / stem} are both there and differ" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
    make_raw_dir(tmp_path / "plain", gz=False)
    shutil.copy(tmp_path / "plain" / stem, raw / stem)  # the same contents, uncompressed: accepted
    run_snakemake(tmp_path, CHECKSUMS, configfile=config)


# -- case 4: braces in the report title


def test_case4_braces_in_report_title_are_text(tmp_path, tiny_raw_dir):
    config = write_config(tmp_path, tiny_raw_dir, {"report": {"title": r"Study {draft} 2026 \textbf{bold}"}})
    proc = run_snakemake(tmp_path, "results/report/report.html", "-n", configfile=config, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report_documents" in proc.stdout


# -- case 5: an empty raw_dir


def test_case5_empty_raw_dir_is_a_schema_error(tmp_path, tiny_raw_dir):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir), 'data={raw_dir: ""}', "data.raw_dir",
                           "-n")


# -- case 6: a truncated resume checkpoint


def test_case6_unreadable_resume_checkpoint_is_set_aside(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    full = _fit(_vae_trainer(), tmp_path / "reference")[0]
    (tmp_path / "reference" / ".resume.pt").unlink(missing_ok=True)
    _fit(_vae_trainer(), run, epochs=1)
    ckpt = run / ".resume.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # killed while writing
    caplog.set_level(logging.WARNING, logger="dgm")
    rows, _ = _fit(_vae_trainer(), run)
    assert f"resume checkpoint {ckpt} is unreadable" in caplog.text
    assert (run / ".resume.pt.unreadable").exists()
    strip = lambda rs: [{k: v for k, v in r.items() if "seconds" not in k} for r in rs]  # noqa: E731
    assert strip(rows) == strip(full)  # restarted from epoch 0: the same run as without the fault


# -- case 7: disk full, read-only folder


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_case7_read_only_folder(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(io.OutputError, match=rf"cannot write {folder / 'model.pt'}: permission denied"):
            io.torch_save({"a": torch.zeros(3)}, folder / "model.pt")
        assert not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("code, cause", [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied")])
def test_case7_unwritable_folder(tmp_path, monkeypatch, code, cause):
    def refuse(*a, **kw):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    dest = tmp_path / "model.pt"
    with pytest.raises(io.OutputError) as err:
        io.torch_save({"a": torch.zeros(3)}, dest)
    assert str(err.value).startswith(f"[Errno {code}] cannot write {dest}: ") and cause in str(err.value)
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())


def test_case7_disk_full_while_saving(tmp_path, monkeypatch):
    real_save = torch.save

    def fill_disk(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", fill_disk)
    dest = tmp_path / "snapshots.pt"
    with pytest.raises(io.OutputError, match=rf"cannot write {dest}: no space left on the device"):
        io.torch_save({"a": torch.zeros(3)}, dest)
    assert not list(tmp_path.iterdir())  # neither the file nor its temporary
    monkeypatch.setattr(torch, "save", real_save)
    io.torch_save({"a": torch.zeros(3)}, dest)  # space again: the save completes
    assert torch.load(dest, weights_only=True)["a"].shape == (3,)


def test_case7_entry_script_reports_one_line(tmp_path):
    """A job that fails on a full disk ends with one line naming the file and the cause, on the
    terminal and in its log, without a traceback; other errors keep theirs."""
    import subprocess
    import sys

    from conftest import REPO

    code = ("import errno, sys; from dgm import entry, io; entry.start_log(sys.argv[1]); "
            "raise io.OutputError(errno.ENOSPC, 'cannot write results/x/model.pt: no space left on the device')")
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow" / "scripts"))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "job.log")], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["dgm: [Errno 28] cannot write results/x/model.pt: no space left on "
                                                "the device"]
    log_text = (tmp_path / "job.log").read_text()
    assert "no space left" in log_text and "Traceback" not in log_text
    proc = subprocess.run([sys.executable, "-c", code.replace("io.OutputError(errno.ENOSPC, ", "KeyError("),
                           str(tmp_path / "other.log")], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" in (tmp_path / "other.log").read_text()


def test_case7_disk_full_inside_torchs_zip_writer(tmp_path, monkeypatch):
    """torch.save may report a full disk as a RuntimeError from its zip writer, the OSError its context."""
    def fill_disk(obj, f, *a, **kw):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 220608 vs 220560")

    monkeypatch.setattr(torch, "save", fill_disk)
    dest = tmp_path / "snapshots.pt"
    with pytest.raises(io.OutputError, match=rf"cannot write {dest}: no space left on the device"):
        io.torch_save({"a": torch.zeros(3)}, dest)
    assert not list(tmp_path.iterdir())


def test_case7_a_real_full_disk(tmp_path):
    """On a 64 KiB tmpfs (where this machine lets us mount one): one line, no partial file, no temporary."""
    import subprocess

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        dest = small / "model.pt"
        with pytest.raises(io.OutputError, match=rf"cannot write {dest}: no space left on the device"):
            io.torch_save({"w": torch.zeros(100_000)}, dest)
        assert not list(small.iterdir())
        io.torch_save({"w": torch.zeros(10)}, dest)  # a file that fits is written
        assert torch.load(dest, weights_only=True)["w"].shape == (10,)
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# -- case 8: a killed snakemake process


def test_case8_readme_resume_section_documents_unlock():
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Interrupted runs resume"):]
    section = section[: section.find("\n## ", 1)]
    assert "snakemake --unlock" in section and "profiles/slurm" in section


# -- case 9: checks before any job


def test_case9_valid_size_beyond_training_set(tmp_path, tiny_raw_dir):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir), "data={valid_size: 400}",
                           "data.valid_size", "-n")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_case9_cuda_without_cuda(tmp_path, tiny_raw_dir):
    assert_config_rejected(tmp_path, write_config(tmp_path, tiny_raw_dir), "device=cuda", "device", "-n")


def test_case9_sample_epochs_beyond_epochs_are_logged(tmp_path, tiny_raw_dir):
    config = write_config(tmp_path, tiny_raw_dir, {"models": ["vae"]})
    proc = run_snakemake(tmp_path, "-n", "--config", "vae={sample_epochs: [0, 2, 7]}", configfile=config)
    assert "config key vae.sample_epochs: [7] are beyond vae.epochs = 2 and are dropped" in proc.stdout + proc.stderr
