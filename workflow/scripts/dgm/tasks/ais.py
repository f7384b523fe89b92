"""Rules ais_sigma, ais and bdmc: a log-likelihood for every decoder model by annealed importance
sampling (Wu, Burda, Salakhutdinov & Grosse, "On the Quantitative Analysis of Decoder-Based
Generative Models", ICLR 2017), checked by bidirectional Monte Carlo on simulated data.

Models are reached through their capabilities (``dgm.registry``), never their names:

- every model with ``decoder_likelihood`` (a decoder from a standard-normal prior, no exact
  density) gets the paper's Gaussian observation model on grey levels, p(x|z) = N(x; decode(z),
  sigma^2 I), sigma chosen on validation images from ``likelihood.ais.sigma_grid``: one likelihood
  on which the VAE, the IWAE and the GAN compare, with the Parzen estimate at the same sigma beside
  it (the paper's point: Parzen is far off);
- a ``latent_variable`` model also gets AIS under its own observation model (binarised pixels) on
  the same test images, from its encoder's q(z|x) ("AIS + encoder") or the prior, beside its
  one-sample ELBO, importance sampling with ``likelihood.k`` samples and, for z = 2, quadrature.

The AIS-vs-steps sweep (0 intermediate distributions = importance sampling from the initial
distribution: naive Monte Carlo from the prior, the seed's estimator) uses the model's own
observation model where it has one, else the Gaussian one. BDMC simulates data from the same
observation model and reports forward (lower) and reverse (upper) AIS and their gap.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from dgm import data, estimators, io, registry, training
from dgm.distributions import BernoulliObservation, GaussianObservation
from dgm.models import load_model
from dgm.results import read_json

log = logging.getLogger("dgm")
# Keys of likelihood.ais that are AISOptions (the rest choose images, steps and sigma).
AIS_OPTIONS = ("chains", "leapfrog", "schedule", "step_size")
PARZEN_SAMPLES = 10_000  # samples of the Parzen window beside the Gaussian AIS (Goodfellow et al.'s protocol)


def options(cfg: dict) -> dict:
    return {k: cfg[k] for k in AIS_OPTIONS}


def _model(model_path: str, device):
    model = load_model(model_path, device)
    for p in model.parameters():  # HMC differentiates in z only
        p.requires_grad_(False)
    spec = registry.spec_of(model)
    if spec is None or not spec.has("decoder_likelihood"):
        raise ValueError(f"{model_path}: AIS needs a decoder model without an exact density (dgm.registry)")
    return spec, model


def bernoulli_logits(model):
    """z (..., Z) -> the Bernoulli logits (..., 784) of p(x|z): the model's ``logits`` verb, or the
    logit of its decoder means (the protocol's optional verb, for a model without it)."""
    if hasattr(model, "logits"):
        return model.logits
    return lambda z: torch.logit(model.decode(z).flatten(1), eps=1e-6)


def grey_images(splits_path: str, split: str, n: int, device) -> torch.Tensor:
    images = data.load_splits(splits_path)[f"{split}_images"][:n]
    return images.reshape(len(images), -1).to(device=device, dtype=torch.float32).div_(255.0)


def binary_images(splits_path: str, split: str, n: int, device) -> torch.Tensor:
    images = data.load_splits(splits_path)[f"{split}_binary"][:n]
    return images.reshape(len(images), -1).to(device=device, dtype=torch.float32)


def _summary(values: torch.Tensor, prefix: str) -> dict:
    mean, stderr = estimators.mean_and_stderr(values.double().cpu())
    return {prefix: mean, f"{prefix}_stderr": stderr}


def choose_sigma(*, model_path: str, splits_path: str, output_path: str, cfg: dict, device: str = "auto") -> dict:
    """The Gaussian observation noise sigma with the highest AIS log-likelihood on the first
    ``sigma_images`` validation images (grey levels), from ``sigma_grid``."""
    dev = training.select_device(device)
    spec, model = _model(model_path, dev)
    x = grey_images(splits_path, "valid", cfg["sigma_images"], dev)
    start = time.perf_counter()
    res = estimators.choose_sigma(model.decode, x, cfg["sigma_grid"], latent_dim=model.latent_dim,
                                  steps=cfg["sigma_steps"], seed=cfg["seed"], **options(cfg))
    result = {"model": spec.name, "latent_dim": model.latent_dim, "n_images": len(x), "steps": cfg["sigma_steps"],
              "sigma_grid": res["sigma_grid"], "scores": res["scores"], "sigma": res["sigma"],
              "seconds": time.perf_counter() - start}
    if res["sigma"] in (min(res["sigma_grid"]), max(res["sigma_grid"])):
        log.warning("sigma = %g is at the edge of likelihood.ais.sigma_grid %s: widen the grid", res["sigma"],
                    res["sigma_grid"])
    log.info("sigma on %d validation images: %s -> %g", len(x),
             ", ".join(f"{s:g}: {v:.1f}" for s, v in zip(res["sigma_grid"], res["scores"])), res["sigma"])
    io.write_json(result, output_path)
    return result


def _ais(log_likelihood, x, steps, *, latent_dim, encoder, cfg) -> tuple[torch.Tensor, dict]:
    start = time.perf_counter()
    log_px, info = estimators.ais_log_px(log_likelihood, x, steps=steps, latent_dim=latent_dim, encoder=encoder,
                                         seed=cfg["seed"], return_info=True, **options(cfg))
    seconds = time.perf_counter() - start
    return log_px, {"seconds": seconds, "acceptance": info["acceptance"].mean().item(),
                    "ess": info["ess"].double().mean().item(),
                    "seconds_per_image_per_1000": seconds / len(x) / (steps / 1000) if steps else None}


def ais(*, model_path: str, splits_path: str, sigma_path: str, output_path: str, sweep_path: str, cfg: dict,
        k: int, quadrature: dict, device: str = "auto", per_image_path: str | None = None) -> dict:
    """AIS on the first ``cfg["images"]`` test images under every observation model the run has,
    the estimators it is compared with on the same images, and the AIS-vs-steps sweep."""
    dev = training.select_device(device)
    spec, model = _model(model_path, dev)
    n, steps, z = cfg["images"], cfg["steps"], model.latent_dim
    sigma = read_json(sigma_path)["sigma"]
    grey = grey_images(splits_path, "test", n, dev)
    if len(grey) < n:  # record the images used, not the number asked for
        log.warning("likelihood.ais.images = %d, but the test set has %d images: AIS uses all of them", n, len(grey))
        n = len(grey)
    result = {"model": spec.name, "latent_dim": z, "n_images": n, "steps": steps, "chains": cfg["chains"],
              "leapfrog": cfg["leapfrog"], "schedule": cfg["schedule"], "sigma": sigma, "device": str(dev),
              "threads": torch.get_num_threads()}
    per_image = {}
    encoder = model.encode if spec.latent_variable and cfg["encoder"] else None

    # The model's own observation model, where it has one: binarised pixels.
    if spec.latent_variable:
        x = binary_images(splits_path, "test", n, dev)
        result["own_observation"] = spec.data_modelled
        result["encoder"] = encoder is not None
        own = lambda s: _ais(model.log_likelihood, x, s, latent_dim=z, encoder=encoder, cfg=cfg)  # noqa: E731
        g = torch.Generator(device=dev).manual_seed(cfg["seed"])
        with torch.inference_mode():
            per_image["elbo"] = estimators.elbo(model, x, generator=g)["elbo"]
            per_image["is"] = estimators.importance_sampled_log_px(model, x, k=k, generator=g, chunk_size=100)
        if z == 2:
            per_image["quadrature"], info = estimators.quadrature_log_px(
                model.double(), x.double(), points_per_dim=quadrature["points_per_dim"], levels=quadrature["levels"],
                tol=quadrature["tol"], max_points_per_dim=quadrature["max_points_per_dim"],
                chunk_size=quadrature["chunk_size"], return_info=True)
            model.float()
            result["quadrature_max_error"] = info["error"].max().item()
        result["is_k"] = k
    else:
        x = grey
        own = None

    # The Gaussian observation model on grey levels, from the prior: the same for every decoder model.
    gaussian = GaussianObservation(model.decode, sigma)
    per_image["ais_gaussian"], timing = _ais(gaussian.log_likelihood, grey, steps, latent_dim=z, encoder=None,
                                             cfg=cfg)
    result["gaussian"] = timing
    with torch.inference_mode():
        samples = torch.cat([model.sample(min(1000, PARZEN_SAMPLES - i), generator=torch.Generator(device=dev)
                                          .manual_seed(cfg["seed"] + i)).flatten(1)
                             for i in range(0, PARZEN_SAMPLES, 1000)])
    per_image["parzen_gaussian"] = estimators.parzen_log_likelihood(samples.double(), grey.double(), sigma)
    result["parzen_samples"] = len(samples)

    # The sweep over the number of intermediate distributions, on the primary observation model.
    primary = own or (lambda s: _ais(gaussian.log_likelihood, grey, s, latent_dim=z, encoder=None, cfg=cfg))
    rows = []
    for s in sorted(set(cfg["sweep_steps"]) | {steps}):
        if s == steps and own is None:
            log_px, timing = per_image["ais_gaussian"], result["gaussian"]
        else:
            log_px, timing = primary(s)
        if s == steps and own is not None:
            per_image["ais"], result["own"] = log_px, timing
        rows.append({"latent": z, "steps": s, **_summary(log_px, "log_px"), "acceptance": timing["acceptance"],
                     "seconds": timing["seconds"], "observation": "own" if own else "gaussian",
                     "start": "encoder" if encoder is not None else "prior"})
        log.info("AIS, %d intermediate distributions: mean log p(x) %.2f (%.1f s)", s, rows[-1]["log_px"],
                 timing["seconds"])
    training.write_csv(rows, sweep_path)

    for name, values in per_image.items():
        result.update(_summary(values, name))
    result["per_image"] = {name: values.double().cpu().tolist() for name, values in per_image.items()}
    if "quadrature" in per_image:
        result["ais_minus_quadrature_abs"] = (per_image["ais"].double() - per_image["quadrature"]).abs().mean().item()
    if "is" in per_image:
        result["ais_minus_is"] = (per_image["ais"].double() - per_image["is"].double()).mean().item()
    io.write_json(result, output_path)
    if per_image_path:  # the same per-image values as an array file, as every likelihood estimator writes
        io.write_arrays(per_image_path, {"image": torch.arange(n), **per_image})
    return result


def bdmc(*, model_path: str, sigma_path: str, output_path: str, cfg: dict, device: str = "auto") -> dict:
    """Bidirectional Monte Carlo on ``bdmc_images`` images simulated from the model's primary
    observation model: forward AIS (a stochastic lower bound), reverse AIS from the exact posterior
    sample (an upper bound) and the gap, which bounds the forward estimator's error at ``bdmc_steps``."""
    dev = training.select_device(device)
    spec, model = _model(model_path, dev)
    sigma = read_json(sigma_path)["sigma"]
    if spec.latent_variable:
        observation, log_likelihood = BernoulliObservation(bernoulli_logits(model)), model.log_likelihood
        encoder = model.encode if cfg["encoder"] else None
        kind = spec.data_modelled
    else:
        observation = GaussianObservation(model.decode, sigma)
        log_likelihood, encoder, kind = observation.log_likelihood, None, f"grey levels, Gaussian sigma = {sigma:g}"
    g = torch.Generator(device="cpu").manual_seed(cfg["seed"] + 7919)  # its own stream: not the test images' draws
    x, z = estimators.simulate_data(observation.sample, cfg["bdmc_images"], latent_dim=model.latent_dim,
                                    generator=g, device=dev)
    start = time.perf_counter()
    res = estimators.bdmc(log_likelihood, x, z, steps=cfg["bdmc_steps"], encoder=encoder, seed=cfg["seed"],
                          **options(cfg))
    result = {"model": spec.name, "latent_dim": model.latent_dim, "observation": kind, "sigma": sigma,
              "n_images": len(x), "steps": cfg["bdmc_steps"], "chains": cfg["chains"],
              "start": "encoder" if encoder is not None else "prior",
              **_summary(res["lower"], "lower"), **_summary(res["upper"], "upper"), **_summary(res["gap"], "gap"),
              "acceptance_forward": res["acceptance_forward"].mean().item(),
              "acceptance_reverse": res["acceptance_reverse"].mean().item(),
              "seconds": time.perf_counter() - start}
    if not math.isfinite(result["gap"]) or result["gap"] < -3 * max(result["gap_stderr"], 1e-9):
        log.warning("BDMC gap %.3f ± %.3f is below zero beyond its error: the chains have not mixed",
                    result["gap"], result["gap_stderr"])
    log.info("BDMC on %d simulated images, %d distributions: lower %.2f, upper %.2f, gap %.3f nats", len(x),
             cfg["bdmc_steps"], result["lower"], result["upper"], result["gap"])
    io.write_json(result, output_path)
    return result


def plot_sweep(*, sweep_paths: list[str], output_path: str, title: str = "") -> None:
    """AIS against the number of intermediate distributions, one line per latent size."""
    import pandas as pd

    from dgm import plotting

    frames = [pd.read_csv(p) for p in sweep_paths]
    plotting.plot_ais_sweep(pd.concat(frames, ignore_index=True), output_path,
                            title=f"{title}: AIS against intermediate distributions" if title else "")


def report_section(inputs: dict[str, list[str]], spec=None) -> dict | None:
    """The AIS section: per run and latent size, the ELBO, importance sampling and AIS (and quadrature
    for z = 2) on the same test images under the model's own observation model; every decoder model
    under the Gaussian observation model with its sigma, beside Parzen at the same sigma; the BDMC
    gaps; the AIS-vs-steps figures (text: report/sections/ais.rst.j2)."""
    from dgm.formatting import by_setting, captioned_figures, seed_cell, seeds_label
    from dgm.results import by_run, read_json, run_key

    if not inputs.get("ais"):
        return None
    order = {name: i for i, name in enumerate(registry.MODELS)}
    sigmas = by_run(inputs.get("ais_sigma", []))
    bdmcs = by_run(inputs.get("bdmc", []))
    runs = []
    for path in inputs["ais"]:
        key = run_key(path)
        run = tuple(key[k] for k in ("model", "point", "latent", "seed"))
        result, bdmc_result = read_json(path), bdmcs.get(run, {})
        runs.append({**key, "order": order[key["model"]], **{k: v for k, v in result.items() if k != "per_image"},
                     "sigma_grid": sigmas.get(run, {}).get("sigma_grid"),
                     **{f"bdmc_{k}": bdmc_result.get(k) for k in ("lower", "lower_stderr", "upper", "upper_stderr",
                                                                  "gap", "gap_stderr", "observation", "steps",
                                                                  "n_images", "start")}})
    own, gaussian, bdmc = [], [], []
    for (_, model, point, latent), col in by_setting(runs, "order", "model", "point", "latent"):
        spec_m = registry.get(model)
        cells = {"model": f"{spec_m.title} [{point}]" if point else spec_m.title, "latent": latent,
                 "seeds": seeds_label(col["seed"])}
        if spec_m.latent_variable:
            own.append({**cells, **{k: seed_cell(col[k], errors=col[f"{k}_stderr"])
                                    for k in ("elbo", "is", "ais")},
                        "quadrature": seed_cell(col["quadrature"], errors=col["quadrature_stderr"])
                        if "quadrature" in col else "–",
                        "ais_minus_is": seed_cell(col["ais_minus_is"]),
                        "ais_minus_quadrature": seed_cell(col["ais_minus_quadrature_abs"], 3)
                        if "ais_minus_quadrature_abs" in col else "–",
                        "start": "q(z|x)" if all(col["encoder"]) else "p(z)"})
        gaussian.append({**cells, "sigma": seed_cell(col["sigma"], 3),
                         "ais_gaussian": seed_cell(col["ais_gaussian"], 1, errors=col["ais_gaussian_stderr"]),
                         "parzen_gaussian": seed_cell(col["parzen_gaussian"], 1, errors=col["parzen_gaussian_stderr"]),
                         "parzen_minus_ais": seed_cell([p - a for p, a in zip(col["parzen_gaussian"],
                                                                              col["ais_gaussian"])], 1)})
        if any(v is not None for v in col["bdmc_gap"]):
            bdmc.append({**cells, "observation": col["bdmc_observation"][0], "images": seed_cell(col["bdmc_n_images"]),
                         "steps": seed_cell(col["bdmc_steps"]),
                         **{k: seed_cell(col[f"bdmc_{k}"], errors=col[f"bdmc_{k}_stderr"])
                            for k in ("lower", "upper", "gap")}})
    first = runs[0]
    figures = []
    paths = list(inputs.get("ais_figures", []))
    for model in registry.names("decoder_likelihood"):
        mine = [p for p in paths if Path(p).stem.startswith(f"ais_sweep_{model}_")]
        figures += captioned_figures(mine, {"ais_sweep": "ais_sweep"}, wildcards={"model": model})
    return {
        "id": "ais",
        "data": {"own": own, "gaussian": gaussian, "bdmc": bdmc, "images": first["n_images"],
                 "steps": first["steps"], "chains": first["chains"], "leapfrog": first["leapfrog"],
                 "schedule": first["schedule"], "k": first.get("is_k"), "sigma_grid": first["sigma_grid"],
                 "parzen_samples": first["parzen_samples"]},
        "figures": figures,
    }
