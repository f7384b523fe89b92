import csv

import pytest
import torch

from dgm import training
from dgm.vae import VAE, VAETrainer


def _setup(seed=0):
    training.seed_everything(seed)
    model = VAE(latent_dim=2, hidden_dim=16)
    valid = torch.bernoulli(torch.full((50, 784), 0.3), generator=torch.Generator().manual_seed(9))
    data = (torch.rand(200, 784, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    return VAETrainer(model, lr=1e-3, valid_x=valid), data


def _prepare(batch, g):
    return torch.bernoulli(batch.float() / 255, generator=g)


def _fit(tmp_path, trainer, data, epochs, **kw):
    return training.fit(trainer, data, epochs=epochs, batch_size=64, generator=torch.Generator().manual_seed(0),
                        checkpoint_path=tmp_path / "ckpt.pt", metrics_path=tmp_path / "metrics.csv",
                        fingerprint="f", snapshot_epochs={0, epochs}, prepare_batch=_prepare, **kw)


def test_rows_csv_and_snapshots(tmp_path):
    trainer, data = _setup()
    rows, snaps = _fit(tmp_path, trainer, data, 3)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert "train_nelbo" not in rows[0] and "valid_nelbo" in rows[0]
    assert set(snaps) == {0, 3} and snaps[3]["samples"].shape == (16, 1, 28, 28)
    with open(tmp_path / "metrics.csv") as f:
        written = list(csv.DictReader(f))
    assert len(written) == 4 and float(written[3]["train_nelbo"]) == pytest.approx(rows[3]["train_nelbo"])


def test_resume_gives_identical_result(tmp_path):
    trainer, data = _setup()
    full, _ = _fit(tmp_path / "a", trainer, data, 4)
    # interrupted after 2 epochs: a fresh process would start from the checkpoint
    trainer, data = _setup()
    training.fit(trainer, data, epochs=2, batch_size=64, generator=torch.Generator().manual_seed(0),
                 checkpoint_path=tmp_path / "b" / "ckpt.pt", metrics_path=tmp_path / "b" / "m.csv",
                 fingerprint="f", snapshot_epochs={0, 4}, prepare_batch=_prepare)
    trainer, data = _setup(seed=123)  # different init: resume must overwrite it
    resumed, _ = training.fit(trainer, data, epochs=4, batch_size=64, generator=torch.Generator().manual_seed(99),
                              checkpoint_path=tmp_path / "b" / "ckpt.pt", metrics_path=tmp_path / "b" / "m.csv",
                              fingerprint="f", snapshot_epochs={0, 4}, prepare_batch=_prepare)
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)


def test_checkpoint_of_other_config_is_ignored(tmp_path):
    trainer, data = _setup()
    _fit(tmp_path, trainer, data, 2)
    trainer, data = _setup()
    rows, _ = training.fit(trainer, data, epochs=2, batch_size=64, generator=torch.Generator().manual_seed(0),
                           checkpoint_path=tmp_path / "ckpt.pt", metrics_path=tmp_path / "m2.csv",
                           fingerprint="other", prepare_batch=_prepare)
    assert [r["epoch"] for r in rows] == [0, 1, 2]


def test_epochs_must_be_positive(tmp_path):
    trainer, data = _setup()
    with pytest.raises(ValueError, match="epochs"):
        _fit(tmp_path, trainer, data, 0)


def test_describe_device_names_the_hardware():
    torch.set_num_threads(1)
    assert training.describe_device(torch.device("cpu")).endswith("1 thread)")
    if torch.cuda.is_available():
        assert torch.cuda.get_device_name(0) in training.describe_device(torch.device("cuda:0"))


def test_select_device():
    assert training.select_device("cpu").type == "cpu"
    assert training.select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1'"):
            training.select_device("cuda:1")


def test_fingerprint_changes_with_config():
    assert training.config_fingerprint({"a": 1}) == training.config_fingerprint({"a": 1})
    assert training.config_fingerprint({"a": 1}) != training.config_fingerprint({"a": 2})


def test_progress_writes_lines_not_carriage_returns(capsys):
    for _ in training.progress(range(3), desc="x", mininterval=0):
        pass
    err = capsys.readouterr().err
    assert "\r" not in err and "3/3" in err


def test_statistics_stay_on_the_device_and_are_read_once_per_epoch(tmp_path, monkeypatch):
    """On a GPU, fit sums the steps' statistics there and reads them once at the end of the epoch; the
    CPU path reads them at once. Simulated on the CPU by treating CPU tensors as unreadable: both give
    the same rows, and the trainer's statistics are 0-dim tensors."""
    trainer, data = _setup()
    stats = trainer.train_step(_prepare(data[:64], torch.Generator().manual_seed(0)), torch.Generator())
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in stats.values())

    trainer, data = _setup()
    at_once, _ = _fit(tmp_path / "cpu", trainer, data, 2)
    reads = []
    real_read = training._EpochSums.read

    def counted_read(self, seen):
        reads.append(seen)
        return real_read(self, seen)

    monkeypatch.setattr(training, "_readable", lambda v: isinstance(v, (float, int)))  # as on a GPU
    monkeypatch.setattr(training._EpochSums, "read", counted_read)
    trainer, data = _setup()
    deferred, _ = _fit(tmp_path / "gpu", trainer, data, 2)
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(deferred) == strip(at_once)  # the same float64 sums, in the same order
    assert reads == [200, 200]  # one read per epoch


def test_adam_uses_the_fused_kernel_and_makes_adams_update():
    """training.adam is torch's Adam with fused=True on a CPU: the update equals the default
    implementation's to float rounding, from the same gradients."""
    torch.manual_seed(0)
    fused_params = [torch.nn.Parameter(torch.randn(30, 20)), torch.nn.Parameter(torch.randn(20))]
    plain_params = [torch.nn.Parameter(p.detach().clone()) for p in fused_params]
    fused, plain = training.adam(fused_params, lr=1e-2, betas=(0.5, 0.999)), torch.optim.Adam(
        plain_params, lr=1e-2, betas=(0.5, 0.999), foreach=False)
    assert fused.param_groups[0]["fused"] is True
    for _ in range(20):
        for p, q in zip(fused_params, plain_params):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        fused.step()
        plain.step()
    for p, q in zip(fused_params, plain_params):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5)
    assert not torch.equal(fused_params[0], torch.zeros(30, 20))
