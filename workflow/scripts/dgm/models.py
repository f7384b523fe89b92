"""Loading the pipeline's self-describing model files, for every model in ``dgm.registry``.

A model file (``model.pt``, ``classifier.pt``) holds ``{"model": model.describe(), "state_dict":
..., ...}`` where ``describe()`` returns ``{"class": <name>, **asdict(config)}``. ``load_model``
rebuilds the network from that description and loads its weights, so evaluation code (sample
quality, likelihood, interpolation) works for any registered model through the verbs it shares
(``GenerativeModel``). The class is found through ``dgm.registry``; nothing here names a model.
A model the pipeline did not train (``dgm.external``) has a model file of the same form, whose
description names its import path instead of a class of ours.

The protocol: the verbs a model may have, exactly
----------------------------------------------------
Every verb is optional; a model's capabilities (``dgm.registry``) follow from the verbs it has, and
the model sheet may restrict them. Images are MNIST's 28 x 28 pixels. ``x`` is a batch of test
images *on the scale of the data the model states* (sheet key ``data``):

- ``binary`` (binarised pixels): float (B, 784), values in {0, 1};
- ``bytes`` (8-bit pixels): uint8 (B, 784), values 0..255;
- ``grey`` (grey levels): float (B, 784) in [0, 1] (no likelihood is compared on this scale).

Log-likelihoods are natural logarithms, in nats per image (summed over the 784 pixels); on the
discrete scales ``binary`` and ``bytes`` they are log-probabilities, so never positive. The prior of
a latent-variable or decoder model is the standard normal N(0, I) on ``latent_dim`` dimensions.

=====================================================  =============================================
verb                                                   returns
=====================================================  =============================================
``sample(n, *, generator=None)``                       (n, 1, 28, 28) float in [0, 1] (pixel means
                                                       or draws); every random draw on ``generator``
``latent_dim``                                         int attribute: the size Z of z
``encode(x)``                                          ``(mu, logvar)``, each (B, Z): q(z|x) Gaussian
``log_likelihood(x, z)``, z (..., B, Z)                (..., B): log p(x|z); differentiable in z
``decode(z)``, z (B, Z)                                (B, 1, 28, 28) in [0, 1]: the mean of p(x|z)
``logits(z)``, z (..., Z) (optional, binary data)      (..., 784): Bernoulli logits of p(x|z)
``log_prob(x, *, generator=None)``                     (B,): log p(x), exact or a stochastic lower
                                                       bound drawn on ``generator`` (a flow's
                                                       dequantisation)
=====================================================  =============================================

Capabilities from verbs: ``sampler`` <- ``sample``; ``latent_variable`` <- ``encode`` and
``log_likelihood`` (with ``latent_dim``); ``decoder`` <- ``decode`` (with ``latent_dim``);
``density`` <- ``log_prob``. Models are ``torch.nn.Module``s that take their device from their
parameters or buffers; the pipeline calls their verbs under ``torch.inference_mode()`` except where
it differentiates ``log_likelihood``/``decode`` in z (annealed importance sampling).
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
    if description.get("class") in ("External", "Samples"):  # a model the pipeline did not train
        from dgm import external

        return external.build(description)
    description = dict(description)
    cls = model_class(description.pop("class", None))
    if hasattr(cls, "from_description"):  # checks informational keys such as a flow's n_parameters
        return cls.from_description(description)
    return cls(cls.CONFIG.from_dict(description))


class NonFiniteModel(ValueError):
    """A model file whose weights hold NaN or infinite numbers (a diverged run): no evaluation uses it."""

    user_facing = True  # an entry script logs the message alone, without a traceback (dgm.entry)


def non_finite_weights(state_dict: dict) -> list[str]:
    """The names of the floating-point tensors of a state_dict that hold a NaN or an Inf."""
    return [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def from_checkpoint(ckpt: dict, device: torch.device | str = "cpu", *, source: str = "the model file") -> nn.Module:
    """The network a loaded model file (or any {"model": description, "state_dict": weights})
    holds, on ``device`` and in eval mode; weights with a NaN or Inf raise ``NonFiniteModel``."""
    bad = non_finite_weights(ckpt["state_dict"])
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


class SampleBank(nn.Module):
    """A model that is a file of samples (``dgm.external``): ``sample(n)`` hands out the next n stored
    images, in file order (the generator is not used: the samples are what they are)."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("images", torch.zeros(n, 1, 28, 28, dtype=torch.uint8))
        self.cursor = 0

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.cursor + n > len(self.images):
            raise ValueError(f"{getattr(self, 'dgm_model_name', 'samples')}: asked for {self.cursor + n} samples, "
                             f"the file holds {len(self.images)}")
        out = self.images[self.cursor : self.cursor + n].float() / 255.0  # (n, 1, 28, 28) in [0, 1]
        self.cursor += n
        return out

    def describe(self) -> dict:
        return {"class": "Samples", "n": len(self.images)}
