"""The one list of models the pipeline knows, and what each can do.

Everything downstream of training (the DAG in ``workflow/rules/common.smk``, the likelihood
estimators, sample quality, the comparison table, the report) asks this registry and selects
runs by *capability*, never by a model's name. A new built-in model is its own library module, its
task module (``train`` and ``report_section``) with its report template, one
``register(ModelSpec(...))`` line below and its config section (config.yaml and the schema); its
training rule comes from this registry (``workflow/rules/training.smk``).

Capabilities, and the verbs a model with them provides (exactly: ``dgm.models``' protocol):

- ``sampler``: ``sample(n, *, generator=None)`` -> images (n, 1, 28, 28) in [0, 1]; sample quality.
- ``latent_variable``: ``encode(x) -> (mu, logvar)``, ``log_likelihood(x, z)``, ``latent_dim`` and a
  standard-normal prior: the test ELBO, importance sampling, naive Monte Carlo, the estimator sweep,
  quadrature for a 2-d latent. (A trained VAE-family model's ``forward(x, generator)`` also returns
  the one-sample ELBO terms its training curves show.)
- ``density``: ``log_prob(x, *, generator=None)``: the test log-likelihood and bits/dim
  (``evaluate_density``; a flow's ``bpd`` draws its dequantisation K times).
- ``decoder``: ``decode(z)`` -> images in [0, 1]: manifolds (2-d latents) and interpolations.

Derived: ``decoder_likelihood`` (a decoder without an exact density): annealed importance sampling
under a Gaussian observation model (and the model's own, for a latent-variable model), BDMC;
``bound`` (a latent-variable model without an exact density): the test-set ELBO; ``trained`` (a
model the pipeline trains: training curves and snapshots); ``external`` (a model of the sheet,
config ``external``: it enters through ``dgm.external``'s import job instead of a training rule).

The exact signatures, shapes and units of the verbs are ``dgm.models``' protocol.

Models the pipeline did not train are registered from the checked model sheet (``register_sheet``):
Snakemake does it while it builds the DAG and hands the sheet to its jobs in the environment
variable ``DGM_EXTERNAL_MODELS`` (JSON), which this module reads on import.

This module imports nothing heavy, so Snakemake reads it while it builds the DAG.
"""
from __future__ import annotations

import importlib
import json
import os
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
    fixed_latent: int | None = None  # a latent size set by the data (a flow's 784) or the sheet, not by config
    external: bool = False  # a model of the sheet (config ``external``), not trained by the pipeline
    train_mem_mb: int = 4000  # its training job's memory and time limits (a cluster's scheduler reads them)
    train_runtime: int = 120  # minutes

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

    @property
    def bound(self) -> bool:
        """A latent-variable model without an exact density: its test-set number is the ELBO."""
        return self.latent_variable and not self.density

    @property
    def likelihood(self) -> bool:
        """A log-likelihood of its own (a bound or a density): its train-versus-test gap is measured."""
        return self.latent_variable or self.density

    @property
    def trained(self) -> bool:
        """Trained by the pipeline: it has training curves, snapshots and a config section."""
        return not self.external

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
DERIVED_CAPABILITIES = ("decoder_likelihood", "bound", "likelihood", "trained", "external")  # computed from the fields
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
    return next((s for s in MODELS.values() if s.model_class == class_name and not s.external), None)


def spec_of(model) -> ModelSpec | None:
    """The spec of a loaded network: an external model carries its name (``dgm.external``), a
    built-in one is found by its class."""
    name = getattr(model, "dgm_model_name", None)
    return MODELS.get(name) if name is not None else by_class(type(model).__name__)


def external_spec(name: str, entry: dict) -> ModelSpec:
    """The spec of a model of the checked sheet (``dgm.external.check_sheet`` fills in its
    ``capabilities`` and ``latent_dim``)."""
    caps = set(entry["capabilities"])
    return ModelSpec(name=name, title=entry.get("title") or name, long_title=entry.get("title") or name,
                     model_class="External", module="dgm.external", tasks="dgm.tasks.external", data=entry["data"],
                     fixed_latent=int(entry.get("latent_dim") or 0), external=True,
                     **{c: c in caps for c in CAPABILITIES})


def register_sheet(sheet: dict | None) -> list[ModelSpec]:
    """Register every model of a checked sheet ({name: entry}) not registered yet, in its order."""
    return [register(external_spec(name, entry)) for name, entry in (sheet or {}).items() if name not in MODELS]


SHEET_VARIABLE = "DGM_EXTERNAL_MODELS"  # the checked sheet, JSON, for the jobs of a Snakemake run


# The study's models, in the seed study's order (the report follows it).
register(ModelSpec(name="vae", title="VAE", long_title="Variational auto-encoder", model_class="VAE",
                   module="dgm.vae", tasks="dgm.tasks.vae", data="binary", latent_variable=True, decoder=True))
register(ModelSpec(name="iwae", title="IWAE", long_title="Importance-weighted auto-encoder", model_class="IWAE",
                   module="dgm.iwae", tasks="dgm.tasks.vae", data="binary", latent_variable=True, decoder=True))
register(ModelSpec(name="gan", title="GAN", long_title="Generative adversarial network", model_class="GAN",
                   module="dgm.gan", tasks="dgm.tasks.gan", data="grey", decoder=True, train_runtime=480))
register(ModelSpec(name="flow", title="RealNVP", long_title="RealNVP normalizing flow", model_class="RealNVP",
                   module="dgm.flow", tasks="dgm.tasks.flow", data="bytes", density=True, decoder=True,
                   fixed_latent=784, train_mem_mb=6000, train_runtime=480))
register_sheet(json.loads(os.environ.get(SHEET_VARIABLE) or "{}"))
