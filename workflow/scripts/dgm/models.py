"""One registry of the pipeline's self-describing model files.

A model file (``model.pt``, ``classifier.pt``) holds ``{"model": model.describe(), "state_dict":
..., ...}`` where ``describe()`` returns ``{"class": <name>, **asdict(config)}``. ``load_model``
rebuilds the network from that description and loads its weights, so evaluation code (sample
quality, interpolation) works for any registered model through the verbs every model shares,
``sample(n, generator=...)`` first. A new model is one ``MODELS`` line: its class name and a
function from the description (without "class") to an untrained network.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from dgm.flow import RealNVP
from dgm.gan import GAN, GANConfig
from dgm.quality import Classifier, ClassifierConfig
from dgm.vae import VAE, VAEConfig

MODELS: dict[str, Callable[[dict], nn.Module]] = {
    "VAE": lambda d: VAE(VAEConfig.from_dict(d)),
    "GAN": lambda d: GAN(GANConfig.from_dict(d)),
    "RealNVP": RealNVP.from_description,  # checks describe()'s informational n_parameters
    "Classifier": lambda d: Classifier(ClassifierConfig.from_dict(d)),
}


def build_model(description: dict) -> nn.Module:
    """An untrained network from a ``describe()`` dict; an unknown class raises ``ValueError``."""
    description = dict(description)
    name = description.pop("class", None)
    if name not in MODELS:
        raise ValueError(f"unknown model class {name!r} in the model file; registered: {sorted(MODELS)}")
    return MODELS[name](description)


def from_checkpoint(ckpt: dict, device: torch.device | str = "cpu") -> nn.Module:
    """The network a loaded model file (or any {"model": description, "state_dict": weights})
    holds, on ``device`` and in eval mode."""
    model = build_model(ckpt["model"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu", *, expect: type | None = None
               ) -> nn.Module:
    """The network saved in ``path``, on ``device`` and in eval mode; with ``expect``, a file
    holding another class raises ``ValueError``."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a model file (expected keys 'model' and 'state_dict')")
    if expect is not None and ckpt["model"].get("class") != expect.__name__:
        raise ValueError(f"{path} holds a {ckpt['model'].get('class')!r}, not a {expect.__name__}")
    return from_checkpoint(ckpt, device)
