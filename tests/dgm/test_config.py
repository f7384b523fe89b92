import pytest
import yaml

from conftest import REPO
from dgm.config import coerce_to_schema, validate_config

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def _config(**overrides):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            cfg[section][name] = value
        else:
            cfg[section] = value
    return cfg


def test_shipped_configs_are_valid():
    validate_config(_config(), SCHEMA)
    smoke = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    validate_config(smoke, SCHEMA)


def test_coerces_command_line_strings():
    cfg = {"vae": {"latent_sizes": ["2", "20"], "epochs": "3", "lr": "1e-3"}, "seeds": "[0, 1]",
           "data": {"raw_dir": "null", "name": "mnist"}}
    out = coerce_to_schema(cfg, SCHEMA)
    assert out["vae"] == {"latent_sizes": [2, 20], "epochs": 3, "lr": 1e-3}
    assert out["seeds"] == [0, 1] and out["data"]["raw_dir"] is None and out["data"]["name"] == "mnist"


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("vae.latent_sizes", [0], "vae.latent_sizes[0]"),
        ("vae.latent_sizes", [-3], "vae.latent_sizes[0]"),
        ("vae.epochs", 0, "vae.epochs"),
        ("vae.epochs", "many", "vae.epochs"),
        ("vae.lr", -1.0, "vae.lr"),
        ("models", ["vae", "diffusion"], "models[1]"),
        ("data.name", "cifar10", "data.name"),
        ("data.binarization", "fuzzy", "data.binarization"),
        ("seeds", [-1], "seeds[0]"),
        ("device", "tpu", "device"),
        ("vae.latent_dim", 3, "vae"),  # a misspelt key is rejected, not ignored
    ],
)
def test_bad_values_name_the_key(key, value, named):
    with pytest.raises(ValueError) as err:
        validate_config(_config(**{key: value}), SCHEMA)
    assert f"config key {named}" in str(err.value)
