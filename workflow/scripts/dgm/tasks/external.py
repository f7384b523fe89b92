"""Figures and the report section of a model the pipeline did not train (``dgm.external``): its
samples (its interpolations: ``dgm.tasks.interpolation``), and a section per model with its source,
the conformance check and its test-set numbers (text: report/sections/external.rst.j2)."""
from __future__ import annotations

import torch

from dgm import plotting, registry, training
from dgm.models import load_model

# An external model's figures, in the report's order: file-name start -> caption (workflow/report/).
FIGURES = {"samples": "external_samples", "interpolation": "interpolation"}  # {model}_<kind>_z..._seed...
SAMPLES_SHOWN = 64


def plot_samples(*, model_path: str, output_path: str, n: int = SAMPLES_SHOWN, seed: int = 0,
                 device: str = "cpu") -> None:
    """A grid of ``n`` samples of any sampler, drawn on a generator seeded with ``seed``."""
    dev = training.select_device(device)
    model = load_model(model_path, dev)
    spec = registry.spec_of(model)
    images = model.sample(n, generator=torch.Generator(device=dev).manual_seed(seed))
    plotting.save_grid(images.float().cpu(), output_path, nrow=8, title=f"{spec.title}: {n} samples", vector=True)


def report_section(inputs: dict[str, list[str]], spec: registry.ModelSpec) -> dict | None:
    """One external model: where it came from (import path or samples, sha256), the data it models, its
    capabilities, the conformance checks it passed, its test-set numbers and figures."""
    from dgm.formatting import captioned_figures, fmt
    from dgm.results import read_json

    name = spec.name
    if not inputs.get(f"{name}_conformance"):
        return None
    check = read_json(inputs[f"{name}_conformance"][0])
    tests = [read_json(p) for p in inputs.get(f"{name}_tests", [])]
    numbers = []
    for t in tests:
        if "test_nelbo" in t:
            numbers.append({"quantity": "test negative ELBO (nats)", "value": fmt(t["test_nelbo"], 2),
                            "stderr": fmt(t["test_nelbo_stderr"], 2), "n": t["n_test"]})
        if "test_bpd" in t:
            numbers.append({"quantity": "test negative log-likelihood (nats)", "value": fmt(t["test_nll"], 2),
                            "stderr": fmt(t["test_nll_stderr"], 2), "n": t["n_test"]})
            numbers.append({"quantity": "test bits per dimension", "value": fmt(t["test_bpd"], 4),
                            "stderr": fmt(t["test_bpd_stderr"], 4), "n": t["n_test"]})
    verbs = sorted({c["verb"] for c in check["checks"]})
    return {
        "id": f"external-{name}",
        "template": "external",
        "data": {"title": spec.title, "name": name, "source": check["source"], "sha256": check["sha256"] or "–",
                 "data_modelled": spec.data_modelled, "capabilities": ", ".join(check["capabilities"]),
                 "latent_dim": check["latent_dim"], "n_checks": len(check["checks"]), "verbs": ", ".join(verbs),
                 "parameters": check["parameters"], "samples": check.get("samples"), "numbers": numbers},
        "figures": captioned_figures(inputs.get(f"{name}_figures", []),
                                     {f"{name}_{k}": v for k, v in FIGURES.items()}, wildcards={"model": name}),
    }
