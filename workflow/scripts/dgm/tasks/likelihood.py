"""Rules test_nll, estimator_sweep, quadrature and kl_examples as plain functions (the scripts only
unpack arguments): log p(x) of every latent-variable model (trained here or brought by a user,
``dgm.external``) on the fixed-seed binarised test set by importance
sampling, naive Monte Carlo and, for z = 2, quadrature (the seed's sections 1.4-1.7).

Random streams: each batch of images draws from its own CPU generator, seeded from
(seed, purpose, estimator, repeat, batch) through numpy's SeedSequence. So every estimate is
independent of the others, does not depend on the order the batches run in, and, since
``dgm.estimators`` shares the first K draws between all larger K, the sweep's estimates are nested
in K for every batch. A result depends on ``seed`` and ``batch_size`` (which images share a
draw), not on ``chunk_size`` or the device.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from dgm import data, estimators, io, registry, training
from dgm.models import load_model

log = logging.getLogger("dgm")
# Integer tags that keep the random streams apart (see _generator).
PURPOSES = {"test_nll": 0, "estimator_sweep": 1, "generalisation": 2}
STREAMS = {"elbo": 0, "importance": 1, "naive": 2}
ESTIMATORS = {"importance": estimators.importance_sampled_log_px, "naive": estimators.naive_mc_log_px}
LABELS = {"importance": "importance sampling, q(z|x)", "naive": "naive Monte Carlo, p(z)", "elbo": "ELBO"}


def _generator(seed: int, purpose: str, stream: str, repeat: int, batch: int) -> torch.Generator:
    """An independent CPU generator for one batch of one estimate."""
    words = [seed, PURPOSES[purpose], STREAMS[stream], repeat, batch]  # fixed length: no [a, b] = [a, b, 0] clash
    return torch.Generator().manual_seed(int(np.random.SeedSequence(words).generate_state(1)[0]))


def test_images(splits_path: str, device, *, n: int | None = None, dtype=torch.float32) -> torch.Tensor:
    """The first n (default all) images of the fixed-seed binarised test set, (N, 784) in {0, 1}."""
    x = data.load_splits(splits_path)["test_binary"]  # (N, 28, 28) uint8
    x = x[:n] if n is not None else x
    return x.reshape(len(x), -1).to(device=device, dtype=dtype)


def load_latent_model(model_path: str, device) -> torch.nn.Module:
    """Any latent-variable model's network from its model file (``dgm.registry`` capability
    ``latent_variable``: encode, log_likelihood, latent_dim), in eval mode."""
    model = load_model(model_path, device)
    spec = registry.spec_of(model)
    if spec is None or not spec.latent_variable:
        raise ValueError(f"{model_path} holds a {type(model).__name__}, not a latent-variable model (dgm.registry)")
    if spec.data != "binary":
        raise ValueError(f"{model_path}: the estimators of this module take binarised pixels; {spec.name} models "
                         f"{spec.data_modelled}")
    return model


def _per_image(fn, x: torch.Tensor, *, batch_size: int, desc: str) -> dict[str, torch.Tensor]:
    """``fn(batch, batch_index) -> {name: (B,)}`` over x in batches, with a progress line; float64 on the CPU."""
    out: dict[str, list] = {}
    batches = x.split(batch_size)
    for i, batch in enumerate(training.progress(batches, total=len(batches), desc=desc)):
        for name, value in fn(batch, i).items():
            out.setdefault(name, []).append(value.detach().to("cpu", torch.float64))
    return {name: torch.cat(values) for name, values in out.items()}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clock()
    return {"seconds": wall - start[0], "cpu_seconds": cpu - start[1]}


def density_bpd(model, x: torch.Tensor, generator: torch.Generator, k: int) -> torch.Tensor:
    """Bits/dim (B,) float64 of a density model on images x (B, D): its ``bpd`` where it has one (a flow's
    K-draw dequantisation bound), else -log of the mean of K ``log_prob`` draws in probability (one exact
    value when log_prob is exact)."""
    if hasattr(model, "bpd"):
        return model.bpd(x, generator, k=k).double()
    log_p = torch.stack([model.log_prob(x, generator=generator).double() for _ in range(k)])  # (K, B)
    return -(torch.logsumexp(log_p, dim=0) - math.log(k)) / (x.shape[1] * math.log(2))


@torch.inference_mode()
def evaluate_density(*, model_path: str, splits_path: str, output_path: str, k: int = 1, seed: int = 0,
                     device: str = "auto", batch_size: int = 500, per_image_path: str | None = None) -> dict:
    """Test log-likelihood and bits/dim of any density model (``log_prob``) on the full test set, on
    the scale of the data it models: mean and standard error over images. A model with ``bpd`` (a
    flow: the K-draw importance-sampled bound over its dequantisation noise) is read through it; any
    other's ``log_prob`` (exact on binarised pixels; a bound drawn K times on 8-bit pixels) likewise."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"eval_k must be a positive integer, got {k!r}")
    dev = training.select_device(device)
    model = load_model(model_path, dev)
    spec = registry.spec_of(model)
    if spec is None or not spec.density:
        raise ValueError(f"{model_path} holds a {type(model).__name__}, not a density model (dgm.registry)")
    splits = data.load_splits(splits_path)
    if spec.data == "bytes" and splits["test_images"].dtype != torch.uint8:
        raise ValueError(f"test_images must be uint8 pixel values 0..255, got {splits['test_images'].dtype}")
    x = data.images_for(splits, "test", spec.data, dev)
    n, dim = x.shape
    to_nats = dim * math.log(2)  # bits/dim -> nats per image

    def bpd_per_image(k_draws: int, g: torch.Generator) -> torch.Tensor:
        return estimators.evaluate_in_batches(lambda b: density_bpd(model, b, g, k_draws), x, batch_size=batch_size)

    bpd = bpd_per_image(k, torch.Generator(device=dev).manual_seed(seed))  # (N,)
    result = {
        "model": spec.name,
        "latent_dim": dim,
        "n_test": n,
        "k": k,
        "test_bpd": bpd.mean().item(),
        "test_bpd_stderr": (bpd.std() / math.sqrt(n)).item(),
        "test_nll": bpd.mean().item() * to_nats,  # nats per image
        "test_nll_stderr": (bpd.std() / math.sqrt(n)).item() * to_nats,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if k > 1:  # the plain one-draw bound too, so K's gain is visible
        result["test_bpd_k1"] = bpd_per_image(1, torch.Generator(device=dev).manual_seed(seed)).mean().item()
    io.write_json(result, output_path)
    if per_image_path:  # every test image's value, for paired comparisons
        io.write_arrays(per_image_path, {"image": torch.arange(n), "nll": bpd * to_nats, "bpd": bpd})
    return result


@torch.inference_mode()
def generalisation_gap(*, model_path: str, splits_path: str, output_path: str, per_image_path: str, n_images: int,
                       k: int, batch_size: int = 100, chunk_size: int | None = None, seed: int = 0,
                       binarize_seed: int = 0, device: str = "auto") -> dict:
    """Mean log p(x) of the first ``n_images`` training images against the first ``n_images`` test images,
    by the model's own estimator: importance sampling with K samples for a latent-variable model, its
    ``log_prob`` for a density (a flow's K-draw dequantisation bound). A model that memorised its training
    set scores them far above unseen images; the gap's SE combines both sides' SEs (other images, so
    not paired). Training images of binarised models get one fixed-seed draw (``binarize_seed``)."""
    dev = training.select_device(device)
    model = load_model(model_path, dev)
    spec = registry.spec_of(model)
    splits = data.load_splits(splits_path)
    if spec.data == "binary":
        train = data.binarize(splits["train_images"][:n_images], generator=torch.Generator().manual_seed(binarize_seed))
        train = train.reshape(len(train), -1).to(dev, torch.float32)
    else:
        train = data.images_for(splits, "train", spec.data, dev)[:n_images]
    test = data.images_for(splits, "test", spec.data, dev)[:n_images]
    n = min(len(train), len(test))
    train, test = train[:n], test[:n]

    def log_px(x: torch.Tensor, split: int) -> torch.Tensor:
        def per_batch(b, i):
            g = _generator(seed, "generalisation", "importance", split, i)
            if spec.latent_variable:
                return {"log_px": estimators.importance_sampled_log_px(model, b, k=k, generator=g,
                                                                       chunk_size=chunk_size)}
            return {"log_px": -density_bpd(model, b, g, k) * b.shape[1] * math.log(2)}

        return _per_image(per_batch, x, batch_size=batch_size, desc=f"{'train' if split == 0 else 'test'} log p(x)"
                          )["log_px"]

    values = {"train": log_px(train, 0), "test": log_px(test, 1)}
    (train_mean, train_se), (test_mean, test_se) = (estimators.mean_and_stderr(values[s]) for s in ("train", "test"))
    result = {"model": spec.name, "n_images": n, "k": k,
              "estimator": "importance sampling, q(z|x)" if spec.latent_variable else "log_prob",
              "train_log_px": train_mean, "train_log_px_stderr": train_se,
              "test_log_px": test_mean, "test_log_px_stderr": test_se,
              "gap": train_mean - test_mean, "gap_stderr": math.sqrt(train_se**2 + test_se**2)}
    io.write_json(result, output_path)
    io.write_arrays(per_image_path, {"image": torch.arange(n), **values})
    log.info("log p(x): train %.2f ± %.2f, test %.2f ± %.2f nats on %d images each: gap %.2f ± %.2f", train_mean,
             train_se, test_mean, test_se, n, result["gap"], result["gap_stderr"])
    return result


@torch.inference_mode()
def test_nll(*, model_path: str, splits_path: str, output_path: str, k: int, batch_size: int = 100,
             chunk_size: int | None = None, seed: int = 0, device: str = "auto", per_image_path: str | None = None
             ) -> dict:
    """Test-set -ELBO and importance-sampled NLL with K samples per image (IWAE protocol: K = 5000)."""
    dev = training.select_device(device)
    model = load_latent_model(model_path, dev)
    x = test_images(splits_path, dev)
    log.info("test NLL of a z = %d %s on %d test images: K = %d, batches of %d, chunks of %s samples, %s, "
             "%d threads", model.latent_dim, type(model).__name__, len(x), k, batch_size, chunk_size, dev,
             torch.get_num_threads())

    def per_batch(batch, i):
        terms = estimators.elbo(model, batch, generator=_generator(seed, "test_nll", "elbo", 0, i))
        log_px, ess = estimators.importance_sampled_log_px(
            model, batch, k=k, generator=_generator(seed, "test_nll", "importance", 0, i), chunk_size=chunk_size,
            return_ess=True)
        return {"nelbo": -terms["elbo"], "recon": terms["recon"], "kl": terms["kl"], "nll": -log_px, "ess": ess}

    start = _clock()
    v = _per_image(per_batch, x, batch_size=batch_size, desc=f"test NLL z={model.latent_dim} K={k}")
    timing = _since(start)
    nelbo, nelbo_se = estimators.mean_and_stderr(v["nelbo"])
    nll, nll_se = estimators.mean_and_stderr(v["nll"])
    gap, gap_se = estimators.mean_and_stderr(v["nelbo"] - v["nll"])  # paired: the same images
    result = {
        "model": registry.spec_of(model).name,
        "latent_dim": model.latent_dim,
        "n_test": len(x),
        "k": k,
        "seed": seed,
        "batch_size": batch_size,
        "test_nelbo": nelbo,
        "test_nelbo_stderr": nelbo_se,
        "test_recon": v["recon"].mean().item(),
        "test_kl": v["kl"].mean().item(),
        "test_nll": nll,
        "test_nll_stderr": nll_se,
        "test_gap": gap,  # -ELBO - NLL >= 0 in expectation: roughly KL(q(z|x) || p(z|x))
        "test_gap_stderr": gap_se,
        "test_nelbo_bpd": estimators.nats_to_bpd(nelbo),
        "test_nll_bpd": estimators.nats_to_bpd(nll),
        "test_nll_bpd_stderr": estimators.nats_to_bpd(nll_se),
        "ess_mean": v["ess"].mean().item(),
        "ess_median": v["ess"].median().item(),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        **timing,
    }
    io.write_json(result, output_path)
    if per_image_path:  # every test image's values, for paired comparisons
        io.write_arrays(per_image_path, {"image": torch.arange(len(x)), **v})
    log.info("-ELBO %.2f ± %.2f, IS NLL %.2f ± %.2f nats (%.4f bits/dim), mean ESS %.1f of %d; %.0f s (%.0f CPU s)",
             nelbo, nelbo_se, nll, nll_se, result["test_nll_bpd"], result["ess_mean"], k, timing["seconds"],
             timing["cpu_seconds"])
    return result


@torch.inference_mode()
def estimator_sweep(*, model_path: str, splits_path: str, output_path: str, ks: list[int], n_images: int,
                    repeats: int, batch_size: int = 100, chunk_size: int | None = None, seed: int = 0,
                    device: str = "auto", per_image_path: str | None = None) -> list[dict]:
    """Importance sampling and naive Monte Carlo for every K on the first ``n_images`` test images,
    ``repeats`` independent times, plus the one-sample ELBO of each repeat; one long CSV row per
    (estimator, K, repeat) with the mean over the images."""
    dev = training.select_device(device)
    model = load_latent_model(model_path, dev)
    x = test_images(splits_path, dev, n=n_images)
    z = model.latent_dim
    log.info("estimator sweep of a z = %d %s on %d test images: K in %s, %d repeats, %s", z, type(model).__name__,
             len(x), ks, repeats, dev)
    rows, per_image = [], {"image": torch.arange(len(x))}

    def row(estimator, k, repeat, values, timing):
        per_image[f"{estimator}_k{k}_repeat{repeat}"] = values["log_px"]
        mean, stderr = estimators.mean_and_stderr(values["log_px"])
        ess = values["ess"].mean().item() if "ess" in values else None  # the ELBO has no weights: an empty cell
        rows.append({"latent": z, "estimator": estimator, "k": k, "repeat": repeat, "log_px": mean,
                     "log_px_stderr": stderr, "ess_mean": ess, "n_images": len(x), **timing})
        log.info("z=%d %-10s K=%-5d repeat %d: mean log p(x) %.3f ± %.3f%s", z, estimator, k, repeat, mean,
                 stderr, "" if ess is None else f", ESS {ess:.1f}")

    for r in range(repeats):
        start = _clock()
        values = _per_image(
            lambda b, i: {"log_px": estimators.elbo(model, b, generator=_generator(seed, "estimator_sweep", "elbo", r,
                                                                                    i))["elbo"]},
            x, batch_size=batch_size, desc=f"ELBO repeat {r}")
        row("elbo", 1, r, values, _since(start))
        for name, estimate in ESTIMATORS.items():
            for k in ks:
                def per_batch(b, i, name=name, estimate=estimate, k=k):
                    log_px, ess = estimate(model, b, k=k, chunk_size=chunk_size, return_ess=True,
                                           generator=_generator(seed, "estimator_sweep", name, r, i))
                    return {"log_px": log_px, "ess": ess}

                start = _clock()
                values = _per_image(per_batch, x, batch_size=batch_size, desc=f"{name} K={k} repeat {r}")
                row(name, k, r, values, _since(start))
    training.write_csv(rows, output_path)
    if per_image_path:  # log p(x) of every image for each (estimator, K, repeat)
        io.write_arrays(per_image_path, per_image)
    return rows


@torch.inference_mode()
def quadrature(*, model_path: str, splits_path: str, output_path: str, n_images: int, batch_size: int = 10,
               points_per_dim: int = 64, levels: int = 3, tol: float = 1e-2, max_points_per_dim: int | None = None,
               chunk_size: int | None = None, device: str = "auto", per_image_path: str | None = None) -> dict:
    """Near-exact mean log p(x) of a z = 2 VAE on the sweep's images, in float64, by quadrature over z.

    Each image's estimate carries the change made by its last grid refinement, a bound on the
    coarser estimate's error; images where it exceeds ``tol`` (the grid hit ``max_points_per_dim``)
    are counted in ``n_above_tol`` and logged as a warning.
    """
    dev = training.select_device(device)
    model = load_latent_model(model_path, dev).double()
    if model.latent_dim != 2:
        raise ValueError(f"quadrature is the z = 2 reference; this model has latent_dim={model.latent_dim}")
    x = test_images(splits_path, dev, n=n_images, dtype=torch.float64)
    log.info("quadrature log p(x) of a z = 2 %s on %d test images, float64: %d points per dimension, %d levels, "
             "tolerance %g nats, %s", type(model).__name__, len(x), points_per_dim, levels, tol, dev)

    def per_batch(batch, i):
        log_px, info = estimators.quadrature_log_px(
            model, batch, points_per_dim=points_per_dim, levels=levels, tol=tol,
            max_points_per_dim=max_points_per_dim, chunk_size=chunk_size, return_info=True)
        points = torch.full_like(log_px, float(info["points_per_dim"][-1]))
        return {"log_px": log_px, "error": info["error"], "points": points}

    start = _clock()
    v = _per_image(per_batch, x, batch_size=batch_size, desc="quadrature z=2")
    timing = _since(start)
    mean, stderr = estimators.mean_and_stderr(v["log_px"])
    above = int((v["error"] > tol).sum())
    result = {
        "latent_dim": 2,
        "n_images": len(x),
        "dtype": "float64",
        "log_px": mean,
        "log_px_stderr": stderr,  # over images: the spread of log p(x), not an error of the quadrature
        "nll_bpd": estimators.nats_to_bpd(-mean),
        "tol": tol,
        "max_error": v["error"].max().item(),
        "mean_error": v["error"].mean().item(),
        "n_above_tol": above,
        "max_points_per_dim": int(v["points"].max()),
        "points_per_dim": points_per_dim,
        "levels": levels,
        "device": str(dev),
        **timing,
    }
    io.write_json(result, output_path)
    if per_image_path:
        io.write_arrays(per_image_path, {"image": torch.arange(len(x)), "log_px": v["log_px"], "error": v["error"]})
    if above:
        log.warning("%d of %d images changed by more than %g nats at the last refinement (largest %.3g): raise "
                    "likelihood.quadrature.max_points_per_dim", above, len(x), tol, result["max_error"])
    log.info("mean log p(x) %.4f nats; largest last-refinement change %.2e nats; %.0f s", mean, result["max_error"],
             timing["seconds"])
    return result


def kl_examples(*, output_path: str, n: int, seed: int = 0) -> list[dict]:
    """The seed's section 1.5a: KL(N(mu, sigma^2) || N(0, 1)) in closed form against Monte Carlo."""
    rows = estimators.seed_kl_examples(n=n, generator=torch.Generator().manual_seed(seed))
    for r in rows:  # how many standard errors the Monte Carlo estimate is from the closed form
        r["z_score"] = (r["monte_carlo"] - r["closed_form"]) / r["monte_carlo_stderr"] if r["monte_carlo_stderr"] \
            else 0.0
    training.write_csv(rows, output_path)
    return rows


def plot_sweeps(*, sweep_paths: list[str], quadrature_paths: list[str], output_path: str) -> None:
    """The estimates-against-K figure from the sweep CSVs (one panel per latent size) and quadrature JSONs."""
    import pandas as pd

    from dgm import plotting

    quad = {}
    for path in quadrature_paths:
        with open(path) as f:
            q = json.load(f)
        quad[q["latent_dim"]] = q["log_px"]
    panels, references = {}, {}
    for path in sweep_paths:
        df = pd.read_csv(path)
        z = int(df["latent"].iloc[0])
        panels[f"z = {z}"] = df
        if z in quad:
            references[f"z = {z}"] = {"quadrature (near-exact)": quad[z]}
    plotting.plot_estimator_sweep(panels, output_path, references=references, labels=LABELS)


def report_section(inputs: dict[str, list[str]]) -> dict | None:
    """The likelihood section of the report: test NLL per run, the estimator sweep, quadrature, KL examples
    (text: report/sections/likelihood.rst.j2)."""
    from dgm.formatting import by_setting, captioned_figures, fmt, fmt_pm, seed_cell, seeds_label
    from dgm.results import read_csv, read_json, run_key

    if not inputs.get("likelihood_tests"):
        return None
    order = {name: i for i, name in enumerate(registry.MODELS)}
    title = {name: spec.title for name, spec in registry.MODELS.items()}
    runs = [{**run_key(p), **read_json(p)} for p in inputs["likelihood_tests"]]
    for r in runs:
        r["order"] = order[r["model"]]
    tests = []
    for (_, model, point, latent), col in by_setting(runs, "order", "model", "point", "latent"):
        name = f"{title[model]} [{point}]" if point else title[model]
        tests.append({"model": name, "latent": latent, "seeds": seeds_label(col["seed"]),
                      "k": seed_cell(col["k"]),
                      **{k: seed_cell(col[k], errors=col[f"{k}_stderr"])
                         for k in ("test_nelbo", "test_nll", "test_gap")},
                      **{k: seed_cell(col[k], 4) for k in ("test_nelbo_bpd", "test_nll_bpd")},
                      "ess_mean": seed_cell(col["ess_mean"], 1), "seconds": seed_cell(col["seconds"], 0),
                      "cpu_seconds": seed_cell(col["cpu_seconds"], 0)})

    quad = {tuple(run_key(p)[k] for k in ("model", "point", "seed")): read_json(p)
            for p in inputs.get("likelihood_quadrature", [])}
    sweep, ks, n_images = [], [], None
    for path in inputs.get("likelihood_sweeps", []):
        key, rows = run_key(path), read_csv(path)
        ks = sorted({r["k"] for r in rows if r["estimator"] != "elbo"})
        n_images = rows[0]["n_images"]
        name = f"{title[key['model']]} [{key['point']}]" if key["point"] else title[key["model"]]
        cells = {"model": name, "latent": key["latent"], "seed": key["seed"]}
        for estimator in ("importance", "naive", "elbo"):
            by_k = {}
            for k in ks if estimator != "elbo" else [1]:
                values = np.array([r["log_px"] for r in rows if r["estimator"] == estimator and r["k"] == k])
                sd = values.std(ddof=1) if len(values) > 1 else float("nan")
                by_k[k] = fmt_pm(float(values.mean()), float(sd))
            if estimator == "elbo":  # one value, independent of K
                by_k = dict.fromkeys(ks, by_k[1])
            sweep.append({**cells, "estimator": LABELS[estimator], **{f"k{k}": v for k, v in by_k.items()}})
        if key["latent"] == 2 and (key["model"], key["point"], key["seed"]) in quad:
            q = quad[(key["model"], key["point"], key["seed"])]
            sweep.append({**cells, "estimator": f"quadrature (largest error {q['max_error']:.1e})",
                          **{f"k{k}": fmt(q["log_px"]) for k in ks}})

    kl = read_csv(inputs["kl_examples"][0]) if inputs.get("kl_examples") else []
    kl_rows = [{"example": r["example"], "mu_q": f"{r['mu_q']:g}", "sigma_q": f"{r['sigma_q']:.6g}",
                "seed": f"{r['seed']:.3g}", "closed_form": f"{r['closed_form']:.8g}",
                "monte_carlo": f"{r['monte_carlo']:.4g} ± {r['monte_carlo_stderr']:.2g}", "z_score": fmt(r["z_score"])}
               for r in kl]
    gaps = []  # the seed's §1.4b claim over the latent size, where a model has three or more
    for path in inputs.get("likelihood_gaps", []):
        model = Path(path).stem.split("latent_gap_", 1)[1]
        for r in read_csv(path):
            gaps.append({"model": title[model], "latent": r["latent"], "k": r["k"],
                         "importance": fmt_pm(r["importance"], r["importance_sd"]),
                         "naive": fmt_pm(r["naive"], r["naive_sd"]), "gap": fmt_pm(r["gap"], r["gap_sd"])})
    figures, paths = [], list(inputs.get("likelihood_figures", []))
    for model in registry.names("latent_variable"):  # likelihood_<kind>_<model>...: its caption names the model
        mine = [p for p in paths if Path(p).stem.startswith((f"likelihood_sweep_{model}_", f"likelihood_gap_{model}"))]
        figures += captioned_figures(mine, {"likelihood_sweep": "likelihood_sweep", "likelihood_gap": "likelihood_gap"},
                                     wildcards={"model": model})
        paths = [p for p in paths if p not in mine]
    if paths:
        raise ValueError(f"likelihood figures of no latent-variable model: {paths}")
    return {
        "id": "likelihood",
        "data": {"tests": tests, "sweep": sweep, "sweep_ks": ks, "sweep_images": n_images, "kl": kl_rows, "gaps": gaps,
                 "kl_draws": int(kl[0]["n"]) if kl else None},
        "figures": figures,
    }
