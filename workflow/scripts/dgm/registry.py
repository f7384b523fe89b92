"""The one list of models the pipeline knows, and what each can do.

Everything downstream of training (the DAG in ``workflow/rules/common.smk``, the likelihood
estimators, sample quality, the comparison table, the report) asks this registry and selects
runs by *capability*, never by a model's name. A new model is its own library module, its task
module, its rule file and one ``register(ModelSpec(...))`` line below (plus its config section).

Capabilities, and the verbs a model with them provides (``dgm.models.GenerativeModel``):

- ``sampler``: ``sample(n, *, generator=None)`` -> images (n, 1, 28, 28) in [0, 1]; sample quality.
- ``latent_variable``: ``encode(x) -> (mu, logvar)``, ``log_likelihood(x, z)``, ``latent_dim`` and a
  standard-normal prior: importance sampling, naive Monte Carlo, the estimator sweep, quadrature
  for a 2-d latent; ``forward(x, generator)`` returns the one-sample ELBO terms (``nelbo``,
  ``recon``, ``kl``) that the test-set evaluation and the ELBO curves show.
- ``density``: ``log_prob(x, generator=None)`` and ``bpd``: test bits/dim (``evaluate_flow``).
- ``decoder``: ``decode(z)`` -> images in [0, 1]: manifolds (2-d latents) and interpolations.

Derived: ``decoder_likelihood`` (a decoder without an exact density): annealed importance sampling
under a Gaussian observation model (and the model's own, for a latent-variable model), BDMC.

This module imports nothing heavy, so Snakemake reads it while it builds the DAG.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

# What a model's data is: likelihoods are comparable only between models of the same data.
DATA_KINDS = {"binary": "binarised pixels", "bytes": "8-bit pixels", "grey": "grey levels"}


@dataclass(frozen=True)
class ModelSpec:
    name: str  # config section, {model} in every path, rule suffix (train_<name>)
    title: str  # how tables name it
    long_title: str  # its report section's title
    model_class: str  # the class name a model file records ("class" of describe())
    module: str  # the library module defining model_class
    tasks: str  # the dgm.tasks module with train(...) and report_section(inputs, spec)
    data: str  # a DATA_KINDS key: the pixels it models
    sampler: bool = True
    latent_variable: bool = False
    density: bool = False
    decoder: bool = False
    fixed_latent: int | None = None  # a latent size set by the data (a flow's 784), not by config

    def __post_init__(self):
        if self.data not in DATA_KINDS:
            raise ValueError(f"model {self.name!r}: data must be one of {sorted(DATA_KINDS)}, got {self.data!r}")

    @property
    def data_modelled(self) -> str:
        return DATA_KINDS[self.data]

    @property
    def decoder_likelihood(self) -> bool:
        """A decoder from the standard-normal prior without an exact density: its log-likelihood is
        estimated by annealed importance sampling (dgm.tasks.ais); a density model needs none."""
        return self.decoder and not self.density

    def has(self, capability: str | None) -> bool:
        if capability is None:
            return True
        if capability not in CAPABILITIES + DERIVED_CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; use one of {CAPABILITIES + DERIVED_CAPABILITIES}")
        return getattr(self, capability)

    def model_type(self) -> type:
        return getattr(importlib.import_module(self.module), self.model_class)

    def task_module(self):
        return importlib.import_module(self.tasks)


CAPABILITIES = ("sampler", "latent_variable", "density", "decoder")
DERIVED_CAPABILITIES = ("decoder_likelihood",)  # properties of ModelSpec computed from the four above
MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    MODELS[spec.name] = spec
    return spec


def get(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {list(MODELS)}") from None


def names(capability: str | None = None) -> list[str]:
    """Registered model names in the study's order, those with ``capability`` only when given."""
    return [name for name, spec in MODELS.items() if spec.has(capability)]


def by_class(class_name: str) -> ModelSpec | None:
    return next((s for s in MODELS.values() if s.model_class == class_name), None)


# The study's models, in the seed study's order (the report follows it).
register(ModelSpec(name="vae", title="VAE", long_title="Variational auto-encoder", model_class="VAE",
                   module="dgm.vae", tasks="dgm.tasks.vae", data="binary", latent_variable=True, decoder=True))
register(ModelSpec(name="iwae", title="IWAE", long_title="Importance-weighted auto-encoder", model_class="IWAE",
                   module="dgm.iwae", tasks="dgm.tasks.vae", data="binary", latent_variable=True, decoder=True))
register(ModelSpec(name="gan", title="GAN", long_title="Generative adversarial network", model_class="GAN",
                   module="dgm.gan", tasks="dgm.tasks.gan", data="grey", decoder=True))
register(ModelSpec(name="flow", title="RealNVP", long_title="RealNVP normalizing flow", model_class="RealNVP",
                   module="dgm.flow", tasks="dgm.tasks.flow", data="bytes", density=True, decoder=True,
                   fixed_latent=784))
