"""Loading the pipeline's self-describing model files, for every model in ``dgm.registry``.

A model file (``model.pt``, ``classifier.pt``) holds ``{"model": model.describe(), "state_dict":
..., ...}`` where ``describe()`` returns ``{"class": <name>, **asdict(config)}``. ``load_model``
rebuilds the network from that description and loads its weights, so evaluation code (sample
quality, likelihood, interpolation) works for any registered model through the verbs it shares
(``GenerativeModel``). The class is found through ``dgm.registry``; nothing here names a model.
"""
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from dgm import registry


@runtime_checkable
class GenerativeModel(Protocol):
    """The verbs every registered model shares; capabilities add more (``dgm.registry``)."""

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def describe(self) -> dict: ...


def model_class(name: str) -> type:
    """The network class a model file's "class" names: a registered model's, or the FID classifier."""
    spec = registry.by_class(name)
    if spec is not None:
        return spec.model_type()
    if name == "Classifier":
        from dgm.quality import Classifier

        return Classifier
    known = [s.model_class for s in registry.MODELS.values()] + ["Classifier"]
    raise ValueError(f"unknown model class {name!r} in the model file; registered: {sorted(known)}")


def build_model(description: dict) -> nn.Module:
    """An untrained network from a ``describe()`` dict; an unknown class raises ``ValueError``."""
    description = dict(description)
    cls = model_class(description.pop("class", None))
    if hasattr(cls, "from_description"):  # checks informational keys such as a flow's n_parameters
        return cls.from_description(description)
    return cls(cls.CONFIG.from_dict(description))


class NonFiniteModel(ValueError):
    """A model file whose weights hold NaN or infinite numbers (a diverged run): no evaluation uses it."""

    user_facing = True  # an entry script logs the message alone, without a traceback (dgm.entry)


def from_checkpoint(ckpt: dict, device: torch.device | str = "cpu", *, source: str = "the model file") -> nn.Module:
    """The network a loaded model file (or any {"model": description, "state_dict": weights})
    holds, on ``device`` and in eval mode; weights with a NaN or Inf raise ``NonFiniteModel``."""
    bad = [k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise NonFiniteModel(f"{source}: non-finite weights in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
                             " (a diverged run); retrain it")
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
    return from_checkpoint(ckpt, device, source=str(path))
