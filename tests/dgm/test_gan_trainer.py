"""GANTrainer: the dgm.training.fit plug-in of the GAN (CSV columns, snapshots, exact resume)."""
import csv

import pytest
import torch

from dgm import training
from dgm.gan import GAN, GANConfig, GANTrainer


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _setup(seed: int = 0, **trainer_kw):
    training.seed_everything(seed)
    model = GAN(GANConfig(latent_dim=8, hidden_dim=8))
    valid = torch.rand(40, 784, generator=gen(9))
    data = (torch.rand(130, 784, generator=gen(3)) * 255).to(torch.uint8)
    trainer = GANTrainer(model, lr=2e-4, betas=(0.5, 0.999), valid_x=valid, eval_batch=16, **trainer_kw)
    return trainer, data


def _prepare(batch, g):
    return batch.float() / 255


def _fit(folder, trainer, data, epochs, *, generator_seed=0, snapshot_epochs=frozenset({0, 2})):
    return training.fit(trainer, data, epochs=epochs, batch_size=32, generator=gen(generator_seed),
                        checkpoint_path=folder / "ckpt.pt", metrics_path=folder / "metrics.csv", fingerprint="f",
                        snapshot_epochs=set(snapshot_epochs), prepare_batch=_prepare, drop_last=True)


def test_rows_hold_losses_and_discriminator_outputs(tmp_path):
    trainer, data = _setup()
    rows, snaps = _fit(tmp_path, trainer, data, 2)
    keys = {"d_loss", "g_loss", "d_real", "d_fake"}
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert {f"valid_{k}" for k in keys} <= set(rows[0]) and "train_d_loss" not in rows[0]
    assert {f"train_{k}" for k in keys} | {f"valid_{k}" for k in keys} <= set(rows[2])
    for row in rows[1:]:
        assert 0 < row["train_d_real"] < 1 and 0 < row["train_d_fake"] < 1
        assert row["train_d_loss"] > 0 and row["train_g_loss"] > 0
    with open(tmp_path / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert set(snaps) == {0, 2}
    samples = snaps[2]["samples"]
    assert samples.shape == (25, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    assert set(snaps[2]["model"]) == set(trainer.model.state_dict())


def _all_fakes(trainer) -> torch.Tensor:
    """D(G(z)) for the fixed validation noise, drawn in the trainer's batches."""
    g, out = gen(trainer.eval_seed), []
    for x in trainer.valid_x.split(trainer.eval_batch):
        out.append(torch.sigmoid(trainer.model.discriminate(trainer.model.sample(len(x), generator=g))))
    return torch.cat(out)


def test_validation_is_the_losses_in_eval_mode():
    trainer, _ = _setup()
    stats = trainer.evaluate(gen(0))
    trainer.model.eval()
    with torch.no_grad():
        real = torch.sigmoid(trainer.model.discriminate(trainer.valid_x))  # (40,)
        fake = _all_fakes(trainer)  # (40,)
    assert stats["d_real"] == pytest.approx(real.mean().item(), rel=1e-5)
    assert stats["d_fake"] == pytest.approx(fake.mean().item(), rel=1e-5)
    assert stats["d_loss"] == pytest.approx(-(real.log().mean() + (1 - fake).log().mean()).item(), rel=1e-4)
    assert stats["g_loss"] == pytest.approx(-fake.log().mean().item(), rel=1e-4)


def test_evaluate_uses_fixed_noise_and_leaves_training_stream_and_mode_alone():
    trainer, _ = _setup()
    trainer.model.train()
    g = gen(5)
    state = g.get_state()
    a = trainer.evaluate(g)
    assert torch.equal(g.get_state(), state)
    assert a == trainer.evaluate(gen(77))
    assert trainer.model.training


def test_train_step_moves_the_discriminator_toward_the_data():
    trainer, _ = _setup(eval_seed=1)
    x = torch.zeros(32, 784)
    x[:, 300:400] = 1.0  # a fixed, easy 'real' pattern
    first = trainer.train_step(x, gen(0))
    for i in range(30):
        last = trainer.train_step(x, gen(i + 1))
    assert set(first) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert last["d_real"] > first["d_real"]


def test_resume_gives_identical_result(tmp_path):
    trainer, data = _setup()
    full, full_snaps = _fit(tmp_path / "a", trainer, data, 3, snapshot_epochs={0, 3})
    trainer, data = _setup()
    _fit(tmp_path / "b", trainer, data, 1, snapshot_epochs={0, 3})  # as if killed after epoch 1
    trainer, data = _setup(seed=123)  # different init: the checkpoint must overwrite it
    resumed, snaps = _fit(tmp_path / "b", trainer, data, 3, generator_seed=99, snapshot_epochs={0, 3})
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)
    assert torch.equal(snaps[3]["samples"], full_snaps[3]["samples"])
    assert all(torch.equal(v, full_snaps[3]["model"][k]) for k, v in snaps[3]["model"].items())
