"""Tests for dgm.external: the model sheet, loading a user's model or samples, the conformance check
(every bad input fails in one line naming the model and the key or verb), the import job and the
evaluation of external models by the pipeline's own task functions."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import synthetic_digits
from dgm import data, external, io, registry
from dgm.external import ExternalModelError
from dgm.models import load_model

# A researcher's module (tests/user_models/usermodels.py), copied into each test's folder.
USER_MODULE = (Path(__file__).resolve().parents[1] / "user_models" / "usermodels.py").read_text()


@pytest.fixture()
def user(tmp_path, monkeypatch):
    """A folder with the user's module and checkpoints of its models; the working directory."""
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "usermodels.py").write_text(USER_MODULE)
    (folder / "broken_import.py").write_text("import not_a_package_anywhere\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(tmp_path)
    import usermodels

    torch.manual_seed(0)
    torch.save(usermodels.TinyVAE(2).state_dict(), folder / "vae.pt")
    torch.save(usermodels.Pixels().state_dict(), folder / "pixels.pt")
    images = torch.from_numpy(synthetic_digits(30, seed=5)[0])  # (30, 28, 28) uint8
    io.torch_save({"test_images": images, "test_binary": data.binarize(images, generator=torch.Generator()
                                                                         .manual_seed(1)),
                   "train_images": torch.from_numpy(synthetic_digits(40, seed=6)[0]), "meta": {}},
                  tmp_path / "splits.pt")
    yield folder
    for name in [n for n, s in registry.MODELS.items() if s.external]:
        del registry.MODELS[name]


def vae_entry(folder, **over):
    return {"import": "usermodels:TinyVAE", "kwargs": {"latent_dim": 2}, "checkpoint": str(folder / "vae.pt"),
            "path": str(folder), "data": "binary", **over}


def pixels_entry(folder, cls="Pixels", **over):
    return {"import": f"usermodels:{cls}", "checkpoint": str(folder / "pixels.pt"), "path": str(folder),
            "data": "binary", **over}


def checked(name, entry):
    return external.check_sheet({name: entry}, builtin=registry.names("trained"))[name]


def run_import(tmp_path, name, entry, n_samples=4):
    out = tmp_path / "results" / name
    entry = checked(name, entry)
    registry.register_sheet({name: entry})
    return external.import_model(
        name=name, entry=entry, splits_path=str(tmp_path / "splits.pt"), model_path=str(out / "model.pt"),
        conformance_path=str(out / "conformance.json"), record_path=str(out / "run.json"),
        run_config={"model": name, name: entry, "data": {}, "latent": 0, "seed": 0, "point": {}},
        n_samples=n_samples, device="cpu", repo_dir=tmp_path), out


# -- the sheet: capabilities from verbs, and every bad entry in one line


def test_capabilities_follow_from_the_verbs_and_can_be_restricted(user):
    assert checked("tiny", vae_entry(user))["capabilities"] == ["sampler", "latent_variable", "decoder"]
    assert checked("tiny", vae_entry(user))["latent_dim"] == 2  # from kwargs
    assert checked("px", pixels_entry(user))["capabilities"] == ["sampler", "density"]
    assert checked("px", pixels_entry(user))["latent_dim"] is None  # no latent variable, no latent size
    restricted = checked("tiny", vae_entry(user, capabilities=["sampler"]))
    assert restricted["capabilities"] == ["sampler"] and restricted["latent_dim"] is None
    factory = checked("f", vae_entry(user, **{"import": "usermodels:build"}))  # the return annotation says
    assert factory["capabilities"] == ["sampler", "latent_variable", "decoder"]
    spec = registry.external_spec("tiny", checked("tiny", vae_entry(user)))
    assert spec.external and spec.latent_variable and spec.decoder_likelihood and spec.bound and not spec.trained
    assert spec.fixed_latent == 2


@pytest.mark.parametrize("name, make, message", [
    ("vae", lambda f: vae_entry(f), "external model 'vae': config key external: 'vae' is a built-in model's name"),
    ("m", lambda f: vae_entry(f, **{"import": "broken_import:X"}),
     "external model 'm': config key external.m.import: 'broken_import' does not import: ModuleNotFoundError"),
    ("m", lambda f: vae_entry(f, **{"import": "usermodels:Nope"}),
     "external model 'm': config key external.m.import: module 'usermodels' has no 'Nope'"),
    ("m", lambda f: vae_entry(f, **{"import": "usermodels.TinyVAE"}),
     "external model 'm': config key external.m.import: 'usermodels.TinyVAE' is not of the form"),
    ("m", lambda f: vae_entry(f, checkpoint="missing.pt"),
     "external model 'm': config key external.m.checkpoint: 'missing.pt' is not a file"),
    ("m", lambda f: {k: v for k, v in vae_entry(f).items() if k != "checkpoint"},
     "external model 'm': config key external.m.checkpoint: missing"),
    ("m", lambda f: {**vae_entry(f), "samples": "x.npy"}, "give either 'import' (with 'checkpoint') or 'samples'"),
    ("m", lambda f: pixels_entry(f, capabilities=["decoder"]),
     "external model 'm': config key external.m.capabilities: lists ['decoder'] but the model has no decode"),
    ("m", lambda f: vae_entry(f, kwargs={}), "external model 'm': config key external.m.latent_dim: a model with"),
    ("m", lambda f: vae_entry(f, **{"import": "usermodels:build_unannotated"}),
     "external model 'm': config key external.m.capabilities: 'usermodels:build_unannotated' is a factory"),
    ("m", lambda f: vae_entry(f, data="grey"), "external model 'm': config key external.m.data: a latent-variable"),
    ("m", lambda f: {"samples": "nowhere.npy", "data": "grey"},
     "external model 'm': config key external.m.samples: 'nowhere.npy' is neither a file nor a folder"),
])
def test_a_bad_sheet_entry_is_one_line_naming_the_model_and_key(user, name, make, message):
    with pytest.raises(ExternalModelError, match=None) as e:
        checked(name, make(user))
    assert str(e.value).startswith(message) or message in str(e.value)
    assert "\n" not in str(e.value)


# -- the import job: weights, conformance, nothing half-written


def test_import_writes_a_model_file_that_every_evaluation_loads(user, tmp_path):
    result, out = run_import(tmp_path, "tiny", vae_entry(user))
    assert {c["verb"] for c in result["checks"]} == {"sample", "latent_dim", "encode", "log_likelihood", "decode"}
    assert result["sha256"] == external.sha256(user / "vae.pt")
    model = load_model(out / "model.pt")
    assert registry.spec_of(model).name == "tiny"
    import usermodels

    reference = usermodels.TinyVAE(2)
    reference.load_state_dict(torch.load(user / "vae.pt", weights_only=True))
    z = torch.randn(3, 2)
    assert torch.equal(model.decode(z), reference.decode(z))
    record = json.loads((out / "run.json").read_text())
    assert record["source"]["sha256"] == result["sha256"] and record["config"]["model"] == "tiny"


def test_a_checkpoint_of_another_network_names_missing_and_unexpected_keys(user, tmp_path):
    torch.save({"enc.weight": torch.zeros(4, 784), "extra.bias": torch.zeros(3)}, user / "other.pt")
    with pytest.raises(ExternalModelError) as e:
        run_import(tmp_path, "tiny", vae_entry(user, checkpoint=str(user / "other.pt")))
    msg = str(e.value)
    assert msg.startswith("external model 'tiny': checkpoint:") and "missing keys [dec.0.bias" in msg
    assert "unexpected keys [extra.bias]" in msg
    assert not (tmp_path / "results/tiny").exists()  # nothing half-written


def test_a_checkpoint_with_code_in_it_is_refused(user, tmp_path):
    torch.save({"enc.weight": object()}, user / "pickle.pt")  # needs weights_only=False to load
    with pytest.raises(ExternalModelError, match="does not load with weights_only=True"):
        run_import(tmp_path, "tiny", vae_entry(user, checkpoint=str(user / "pickle.pt")))


def test_a_factory_that_raises_is_one_line(user, tmp_path):
    with pytest.raises(ExternalModelError, match=r"^external model 'f': import: usermodels:build_raises\(\*\*\{\}\) "
                                                 r"raised RuntimeError: no GPU here$"):
        run_import(tmp_path, "f", vae_entry(user, **{"import": "usermodels:build_raises"}, kwargs={},
                                            latent_dim=2, capabilities=["sampler"]))


@pytest.mark.parametrize("cls, message", [
    ("FlatSamples", "external model 'm': sample: returned shape (4, 784), expected (4, 1, 28, 28)"),
    ("BrightSamples", "external model 'm': sample: returned values up to 2, above 1.0"),
    ("NoisySamples", "external model 'm': sample: two calls with generators of the same seed gave different"),
    ("NaNDensity", "external model 'm': log_prob: returned 8 non-finite values (NaN or Inf)"),
    ("ContinuousDensity", "external model 'm': log_prob: returned values up to 500, above 0.0 (nats per image) "
                          "(log-probabilities of discrete pixels are never positive: is 'data' right?)"),
])
def test_a_verb_that_breaks_the_protocol_stops_the_model_in_one_line(user, tmp_path, cls, message):
    with pytest.raises(ExternalModelError) as e:
        run_import(tmp_path, "m", pixels_entry(user, cls))
    assert str(e.value) == message or str(e.value).startswith(message)
    assert not (tmp_path / "results/m").exists()


def test_log_likelihood_with_one_value_per_batch_is_named(user, tmp_path):
    with pytest.raises(ExternalModelError, match=r"^external model 'w': log_likelihood: returned shape \(3,\), "
                                                 r"expected \(3, 8\) for z of shape \(3, B, Z\)"):
        run_import(tmp_path, "w", vae_entry(user, **{"import": "usermodels:WrongLikelihood"}))


def test_a_verb_that_raises_is_one_line(user, tmp_path):
    torch.save({}, user / "empty.pt")
    with pytest.raises(ExternalModelError, match=r"^external model 'b': sample: raised ValueError: not implemented"):
        run_import(tmp_path, "b", {"import": "usermodels:Broken", "checkpoint": str(user / "empty.pt"),
                                   "path": str(user), "data": "grey"})


# -- samples


def test_samples_of_every_accepted_form_give_the_same_images(user, tmp_path):
    from PIL import Image

    images = (np.random.default_rng(0).random((6, 28, 28)) * 255).astype(np.uint8)
    np.save(user / "s.npy", images)
    torch.save(torch.from_numpy(images).float().div(255).reshape(6, 784), user / "s.pt")
    (user / "png").mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(user / "png" / f"{i:03d}.png")
    for source in ("s.npy", "s.pt", "png"):
        got = external.load_samples("s", str(user / source))
        assert got.shape == (6, 1, 28, 28) and got.dtype == torch.uint8
        assert torch.equal(got.reshape(6, 28, 28), torch.from_numpy(images)), source
    result, out = run_import(tmp_path, "bank", {"samples": str(user / "s.npy"), "data": "grey"}, n_samples=6)
    model = load_model(out / "model.pt")
    drawn = torch.cat([model.sample(4), model.sample(2)])
    assert torch.equal(drawn, torch.from_numpy(images).float().div(255).unsqueeze(1))
    with pytest.raises(ValueError, match="asked for 7 samples, the file holds 6"):
        model.sample(1)


@pytest.mark.parametrize("array, message", [
    (np.zeros((5, 28, 27), np.uint8), "has shape (5, 28, 27); give (N, 28, 28), (N, 1, 28, 28) or (N, 784)"),
    (np.zeros((5, 784), np.int64), "has dtype torch.int64; give uint8 pixels 0..255 or floats in [0, 1]"),
    (np.full((5, 784), 3.0), "float samples must be finite and in [0, 1], got [3, 3]"),
])
def test_a_samples_array_of_the_wrong_shape_or_dtype_is_named(user, array, message):
    np.save(user / "bad.npy", array)
    with pytest.raises(ExternalModelError) as e:
        external.load_samples("s", str(user / "bad.npy"))
    assert str(e.value) == f"external model 's': samples: {user / 'bad.npy'} {message}" or message in str(e.value)


def test_too_few_samples_for_the_quality_metrics_is_named(user, tmp_path):
    np.save(user / "few.npy", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ExternalModelError, match="holds 3 images; quality.n_samples asks for 10"):
        run_import(tmp_path, "bank", {"samples": str(user / "few.npy"), "data": "grey"}, n_samples=10)


# -- evaluation through the pipeline's own task functions


def test_the_test_log_likelihood_of_an_exact_model_is_its_closed_form(user, tmp_path):
    from dgm.tasks.likelihood import evaluate_density

    _, out = run_import(tmp_path, "px", pixels_entry(user))
    result = evaluate_density(model_path=str(out / "model.pt"), splits_path=str(tmp_path / "splits.pt"),
                              output_path=str(out / "test_metrics.json"), device="cpu")
    logits = torch.linspace(-3, 3, 784, dtype=torch.float64).numpy()
    x = data.load_splits(tmp_path / "splits.pt")["test_binary"].reshape(30, 784).numpy().astype(np.float64)
    log_p = x @ -np.logaddexp(0, -logits) + (1 - x) @ -np.logaddexp(0, logits)  # closed form, (30,)
    assert result["test_nll"] == pytest.approx(-log_p.mean(), rel=1e-13)
    assert result["test_nll_stderr"] == pytest.approx(log_p.std(ddof=1) / math.sqrt(30), rel=1e-10)
    assert result["test_bpd"] == pytest.approx(-log_p.mean() / (784 * math.log(2)), rel=1e-13)


def test_the_elbo_of_an_external_vae_is_its_one_sample_bound(user, tmp_path):
    from dgm.tasks.likelihood import test_nll
    from dgm.tasks.vae import evaluate_vae

    _, out = run_import(tmp_path, "tiny", vae_entry(user))
    args = dict(model_path=str(out / "model.pt"), splits_path=str(tmp_path / "splits.pt"), device="cpu")
    elbo = evaluate_vae(**args, output_path=str(out / "test_metrics.json"), batch_size=7)
    nll = test_nll(**args, output_path=str(out / "test_nll.json"), k=200, batch_size=10)
    assert elbo["model"] == nll["model"] == "tiny" and elbo["n_test"] == 30
    assert elbo["test_nelbo"] == pytest.approx(elbo["test_recon"] + elbo["test_kl"], rel=1e-6)
    assert nll["test_nll"] <= nll["test_nelbo"] + 1e-6  # importance sampling tightens the bound


def test_the_train_test_gap_of_an_exact_model_is_its_closed_form_on_both_splits(user, tmp_path):
    from dgm.tasks.likelihood import generalisation_gap

    _, out = run_import(tmp_path, "px", pixels_entry(user))
    result = generalisation_gap(model_path=str(out / "model.pt"), splits_path=str(tmp_path / "splits.pt"),
                                output_path=str(out / "g.json"), per_image_path=str(out / "g.npz"), n_images=25,
                                k=1, batch_size=10, binarize_seed=3, device="cpu")
    logits = torch.linspace(-3, 3, 784, dtype=torch.float64).numpy()
    splits = data.load_splits(tmp_path / "splits.pt")
    train = data.binarize(splits["train_images"][:25], generator=torch.Generator().manual_seed(3))
    closed = {name: x.reshape(25, 784).numpy().astype(np.float64) @ -np.logaddexp(0, -logits)
              + (1 - x.reshape(25, 784).numpy().astype(np.float64)) @ -np.logaddexp(0, logits)
              for name, x in (("train", train), ("test", splits["test_binary"][:25]))}
    assert result["n_images"] == 25 and result["estimator"] == "log_prob"
    assert result["train_log_px"] == pytest.approx(closed["train"].mean(), rel=1e-13)
    assert result["test_log_px"] == pytest.approx(closed["test"].mean(), rel=1e-13)
    assert result["gap"] == pytest.approx(closed["train"].mean() - closed["test"].mean(), rel=1e-10)
    se = [closed[s].std(ddof=1) / math.sqrt(25) for s in ("train", "test")]
    assert result["gap_stderr"] == pytest.approx(math.hypot(*se), rel=1e-10)
    arrays = io.read_arrays(out / "g.npz")
    assert np.allclose(arrays["train"], closed["train"], rtol=1e-13) and list(arrays["image"]) == list(range(25))
