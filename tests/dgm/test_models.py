"""The model registry: every self-describing model file loads back to the same network."""
import pytest
import torch

from dgm import io, registry
from dgm.gan import GAN, GANConfig
from dgm.models import GenerativeModel, build_model, load_model
from dgm.quality import Classifier
from dgm.vae import VAE, VAEConfig


def _save(model, path):
    io.torch_save({"version": 1, "model": model.describe(),
                   "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
    return path


@pytest.mark.parametrize("make", [
    lambda: VAE(VAEConfig(latent_dim=3, hidden_dim=16)),
    lambda: GAN(GANConfig(latent_dim=5, hidden_dim=8)),
    lambda: Classifier(channels1=4, channels2=8, hidden_dim=16),
], ids=["VAE", "GAN", "Classifier"])
def test_round_trip_gives_the_same_network_in_eval_mode(tmp_path, make):
    torch.manual_seed(0)
    model = make()
    loaded = load_model(_save(model, tmp_path / "model.pt"))
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.describe() == model.describe()
    for (k, v), w in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(v, w), k


@pytest.mark.parametrize("make", [
    lambda: VAE(VAEConfig(latent_dim=3, hidden_dim=16)),
    lambda: GAN(GANConfig(latent_dim=5, hidden_dim=8)),
], ids=["VAE", "GAN"])
def test_every_generative_model_samples_through_the_common_verb(tmp_path, make):
    torch.manual_seed(0)
    model = load_model(_save(make(), tmp_path / "model.pt"))
    a = model.sample(7, generator=torch.Generator().manual_seed(1))
    assert a.shape == (7, 1, 28, 28) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, model.sample(7, generator=torch.Generator().manual_seed(1)))


def test_unknown_class_and_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="'UNet'.*registered"):
        build_model({"class": "UNet", "depth": 3})
    with pytest.raises(ValueError, match="depth"):
        build_model({"class": "GAN", "latent_dim": 4, "depth": 3})
    torch.save({"weights": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(tmp_path / "bad.pt")


def test_registry_names_match_describe():
    assert registry.names()[:1] == ["vae"] and len(set(registry.names())) == len(registry.names())
    for spec in registry.MODELS.values():
        cls = spec.model_type()
        assert cls.__name__ == spec.model_class and registry.by_class(spec.model_class) is spec
        options = {} if spec.fixed_latent is not None else {"latent_dim": 2}
        model = build_model({"class": spec.model_class, **options})
        assert model.describe()["class"] == spec.model_class
        assert isinstance(model, GenerativeModel)
        for capability, verbs in {"latent_variable": ("encode", "log_likelihood"), "density": ("log_prob",),
                                  "decoder": ("decode",), "sampler": ("sample",)}.items():
            assert all(hasattr(model, v) for v in verbs) == spec.has(capability) or not spec.has(capability), \
                (spec.name, capability)
