"""Rules train_classifier, quality_reference, sample_quality and quality_table as plain functions,
and the sample-quality section of the report.

Every model is scored the same way, through ``model.sample(n, generator=...)`` (images in
[0, 1]) on a model loaded by ``dgm.models.load_model``; nothing here switches on the model name:

- classifier FID: the Fréchet distance between the samples and the grey-level test set in the
  penultimate features of a small CNN trained on the training split (``dgm.quality``; NOT
  comparable with Inception FIDs);
- Parzen-window log-likelihood with Goodfellow et al.'s protocol: sigma chosen on the validation
  set from a log-spaced grid, then the mean over the test set ± one standard error.

References (``quality_reference``) score real held-out images the same way: the FID a perfect
sampler would get at that sample size (the floor), and the Parzen value of training images.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

import torch

from dgm import data, io, registry, training
from dgm.estimators import mean_and_stderr, parzen_log_likelihood, select_parzen_sigma
from dgm.models import from_checkpoint, load_model
from dgm.quality import SampleMetrics, accuracy, fd_infinity, features
from dgm.quality import train_classifier as fit_classifier
from dgm.tasks.common import resume_path

MODEL_FILE_VERSION = 1
log = logging.getLogger("dgm")


def gray_images(splits: dict, name: str) -> torch.Tensor:
    """A split's grey-level images as floats in [0, 1], (N, 1, 28, 28), on the CPU."""
    images = splits[f"{name}_images"]
    return images.reshape(len(images), 1, 28, 28).float().div_(255.0)


def train_classifier(*, splits_path: str, model_path: str, metrics_path: str, curve_path: str, cfg: dict,
                     device: str = "auto", eval_batch_size: int = 1000, features_path: str | None = None) -> dict:
    """Train the feature CNN (config section ``quality.classifier``: epochs, batch_size, lr, seed)
    on the grey-level training split; write it, its per-epoch curve and its accuracies, and, at
    ``features_path``, the real splits in its features (``real_features``)."""
    dev = training.select_device(device)
    splits = data.load_splits(splits_path)
    meta = splits["meta"]
    options = {k: cfg[k] for k in ("epochs", "batch_size", "lr", "seed")}
    log.info("training the digit classifier on %d images of %s on %s: %s", meta["n_train"], meta["dataset"], dev,
             options)
    model, history = fit_classifier(
        gray_images(splits, "train"), splits["train_labels"], epochs=options["epochs"],
        batch_size=options["batch_size"], lr=options["lr"], generator=torch.Generator().manual_seed(options["seed"]),
        device=dev, valid=(gray_images(splits, "valid"), splits["valid_labels"]), eval_batch=eval_batch_size,
        checkpoint_path=resume_path(model_path), metrics_path=curve_path,
        fingerprint=training.config_fingerprint({**options, "data": meta}))
    result = {
        "dataset": meta["dataset"], "n_train": meta["n_train"], **options, "history": history,
        "valid_accuracy": accuracy(model, gray_images(splits, "valid"), splits["valid_labels"], eval_batch_size),
        "test_accuracy": accuracy(model, gray_images(splits, "test"), splits["test_labels"], eval_batch_size),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    io.torch_save({"version": MODEL_FILE_VERSION, "model": model.describe(),
                   "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "options": options,
                   "data": meta}, model_path)
    if features_path is not None:
        io.torch_save(real_features(model, splits, eval_batch_size), features_path)
    io.write_json(result, metrics_path)
    resume_path(model_path).unlink(missing_ok=True)  # the job is complete: nothing left to resume
    log.info("validation accuracy %.4f, test accuracy %.4f", result["valid_accuracy"], result["test_accuracy"])
    return result


REAL_SPLITS = ("train", "valid", "test")


def real_features(classifier, splits: dict, batch_size: int, names=REAL_SPLITS) -> dict[str, torch.Tensor]:
    """The grey-level splits ``names`` (train, validation and test) in the classifier's features (N, F)
    on the CPU, embedded once in ``batch_size`` batches for every scoring and memorisation job of the
    study: a job that embedded them itself in the same batches would get the same numbers."""
    return {name: features(classifier, gray_images(splits, name), batch_size) for name in names}


def load_real_features(path: str, splits: dict) -> dict[str, torch.Tensor]:
    """``real_features`` written by train_classifier, checked against the splits they must embed."""
    feats = torch.load(path, map_location="cpu", weights_only=True)
    for name in REAL_SPLITS:
        if name not in feats or len(feats[name]) != len(splits[f"{name}_images"]):
            raise ValueError(f"{path}: no features of the {len(splits[f'{name}_images'])} {name} images of these "
                             "splits; rerun train_classifier (snakemake --forcerun train_classifier)")
    return feats


class Scorer:
    """Scores image sets against the grey-level test set: every ``dgm.quality.SampleMetrics``
    metric (FID, KID, precision, recall, density, coverage, each with its bootstrap error) in the
    classifier's features, and the Parzen window estimate. ``metrics`` is the config section
    ``quality.metrics``; ``classifier_sha256`` (the classifier file's) goes with every result, as
    does n, so that numbers from other feature networks or sample sizes are not compared unawares."""

    def __init__(self, classifier, splits: dict, *, sigmas: list[float], metrics: dict, batch_size: int = 1000,
                 seed: int = 0, classifier_sha256: str | None = None, test_features: torch.Tensor | None = None):
        self.classifier, self.sigmas, self.batch_size = classifier, sigmas, batch_size
        self.classifier_sha256 = classifier_sha256
        self.valid = gray_images(splits, "valid").flatten(1)  # (N_valid, 784)
        self.test = gray_images(splits, "test").flatten(1)  # (N_test, 784)
        self.sample_sizes = list(metrics["sample_sizes"])
        test_features = features(classifier, self.test, batch_size) if test_features is None else test_features
        self.metrics = SampleMetrics(test_features, kid_subsets=metrics["kid_subsets"],
                                     kid_subset_size=metrics["kid_subset_size"], nearest_k=metrics["nearest_k"],
                                     bootstrap=metrics["bootstrap"], seed=seed)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return features(self.classifier, images, self.batch_size)

    def fid(self, images: torch.Tensor) -> float:
        return self.metrics.fid(self.features(images))

    def parzen(self, images: torch.Tensor) -> dict:
        """Goodfellow et al.'s protocol: sigma with the best mean validation log-likelihood, then
        the test mean ± standard error (nats per image; float32 distances, ~1e-3 nats error)."""
        samples = images.flatten(1).float()
        sigma, table = select_parzen_sigma(samples, self.valid, self.sigmas)
        mean, stderr = mean_and_stderr(parzen_log_likelihood(samples, self.test, sigma))
        return {"parzen_sigma": sigma, "parzen_mean": mean, "parzen_stderr": stderr,
                "parzen_valid": [[s, ll] for s, ll in table]}

    def size_curve(self, feats: torch.Tensor) -> list[dict]:
        """FID and KID of the first n of these samples for each configured n below their number, and
        of all of them: FID's bias shrinks with n, KID's does not (Bińkowski et al. 2018)."""
        sizes = sorted({n for n in self.sample_sizes if n < len(feats)} | {len(feats)})
        return [{"n": n, "fid": self.metrics.fid(feats[:n]), **self.metrics.kid(feats[:n])} for n in sizes]

    def score(self, images: torch.Tensor, *, parzen: bool = True, size_curve: bool = False) -> dict:
        """Every metric of these images; with ``size_curve``, also FID and KID against n and FD∞,
        FID's line against 1/n read at 1/n = 0 (``fd_inf`` ± ``fd_inf_se``)."""
        t0 = time.perf_counter()
        feats = self.features(images)
        out = {"n": len(images), "classifier_sha256": self.classifier_sha256, **self.metrics(feats)}
        if parzen:
            out.update(self.parzen(images))
        if size_curve:
            curve = out["sample_sizes"] = self.size_curve(feats)
            out["fd_inf"], out["fd_inf_se"] = fd_infinity([c["n"] for c in curve], [c["fid"] for c in curve])
        out["seconds"] = time.perf_counter() - t0
        return out


@torch.no_grad()  # a user's sample verb may leave autograd on: the samples are data here
def draw_samples(model, n: int, *, seed: int, batch_size: int) -> torch.Tensor:
    """n samples (n, 1, 28, 28) in [0, 1] on the CPU through the common ``sample`` verb, drawn in
    batches from one generator seeded with ``seed`` on the model's device."""
    device = training.device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    out = [model.sample(min(batch_size, n - i), generator=g).float().cpu() for i in range(0, n, batch_size)]
    images = torch.cat(out).reshape(n, 1, 28, 28)
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError(f"{type(model).__name__}.sample returned values outside [0, 1] (or NaN)")
    return images


def _scorer(classifier_path, splits, *, sigmas, metrics, batch_size, device, seed, features_path=None):
    test = None if features_path is None else load_real_features(features_path, splits)["test"]
    return Scorer(load_model(classifier_path, device), splits, sigmas=sigmas, metrics=metrics, batch_size=batch_size,
                  seed=seed, classifier_sha256=io.file_digest(classifier_path, "sha256"), test_features=test)


def quality_reference(*, classifier_path: str, classifier_metrics_path: str, splits_path: str, output_path: str,
                      n_samples: int, sigmas: list[float], metrics: dict, seed: int = 0, device: str = "auto",
                      batch_size: int = 1000, features_path: str | None = None) -> dict:
    """Real images scored like model samples: the first ``n_samples`` held-out validation images
    (all of them where there are fewer; no Parzen: they pick its sigma) and ``n_samples`` training
    images drawn without replacement (every metric). These are the floors a perfect sampler would
    reach at the models' sample size."""
    dev = training.select_device(device)
    splits = data.load_splits(splits_path)
    scorer = _scorer(classifier_path, splits, sigmas=sigmas, metrics=metrics, batch_size=batch_size, device=dev,
                     seed=seed, features_path=features_path)
    train = gray_images(splits, "train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n_samples]
    result = {
        "dataset": splits["meta"]["dataset"],
        "n_test": len(scorer.test),
        "classifier": json.loads(Path(classifier_metrics_path).read_text()),
        "references": {
            "validation images": scorer.score(gray_images(splits, "valid")[:n_samples], parzen=False),
            "training images": scorer.score(train[pick.sort().values]),
        },
    }
    io.write_json(result, output_path)
    for name, r in result["references"].items():
        log.info("%s (n=%d): %s%s", name, r["n"], _shown(r),
                 f", Parzen {r['parzen_mean']:.1f} ± {r['parzen_stderr']:.1f}" if "parzen_mean" in r else "")
    return result


def sample_quality(*, model_path: str, classifier_path: str, splits_path: str, output_path: str, n_samples: int,
                   sigmas: list[float], metrics: dict, seed: int = 0, snapshots_path: str | None = None,
                   snapshot_epochs: list[int] = (), device: str = "auto", batch_size: int = 1000,
                   features_path: str | None = None) -> dict:
    """Every metric of ``Scorer`` on ``n_samples`` samples from the trained model and, where given,
    from its snapshots at ``snapshot_epochs`` (the same sampling seed for each, so only the weights
    differ); the trained model's samples also get FID and KID against the sample size."""
    dev = training.select_device(device)
    splits = data.load_splits(splits_path)
    scorer = _scorer(classifier_path, splits, sigmas=sigmas, metrics=metrics, batch_size=batch_size, device=dev,
                     seed=seed, features_path=features_path)
    ckpt = torch.load(model_path, map_location="cpu", weights_only=True)
    model = from_checkpoint(ckpt, dev, source=model_path)
    states = {}
    if snapshot_epochs:
        if snapshots_path is None:
            raise ValueError("snapshot_epochs given without snapshots_path")
        snapshots = torch.load(snapshots_path, map_location="cpu", weights_only=True)
        missing = [e for e in snapshot_epochs if e not in snapshots or "model" not in snapshots[e]]
        if missing:
            raise ValueError(f"{snapshots_path} has no model weights for epochs {missing}")
        states = {e: snapshots[e]["model"] for e in snapshot_epochs}
    evaluations = []
    for epoch in sorted(states):
        snap = from_checkpoint({"model": ckpt["model"], "state_dict": states[epoch]}, dev,
                               source=f"{snapshots_path} (epoch {epoch})")
        evaluations.append(_evaluate(snap, epoch, scorer, n_samples, seed, batch_size,
                                     size_curve=epoch == ckpt.get("epoch")))
    final_epoch = ckpt.get("epoch")
    if final_epoch not in states:
        evaluations.append(_evaluate(model, final_epoch, scorer, n_samples, seed, batch_size, size_curve=True))
    result = {
        "model": ckpt["model"].get("name", ckpt["model"]["class"]),  # an external model's name, else its class
        "description": ckpt["model"],
        "latent_dim": getattr(model, "latent_dim", None),
        "n_samples": n_samples,
        "sample_seed": seed,
        "n_valid": len(scorer.valid),
        "n_test": len(scorer.test),
        "evaluations": evaluations,
    }
    io.write_json(result, output_path)
    return result


def _evaluate(model, epoch, scorer, n_samples, seed, batch_size, *, size_curve: bool = False) -> dict:
    images = draw_samples(model, n_samples, seed=seed, batch_size=batch_size)
    out = {"epoch": epoch, **scorer.score(images, size_curve=size_curve)}
    log.info("epoch %s: %s, %.1f s", epoch, _shown(out), out["seconds"])
    return out


def _shown(r: dict) -> str:
    """A result's metrics for a log line (± bootstrap SE where there is one; KID's SD over subsets)."""
    def se(key):
        return f" ± {r[key + '_se']:.3g}" if r.get(key + "_se") is not None else ""

    shown = f"FID {r['fid']:.3f}{se('fid')}, KID {r['kid_mean']:.4f}{se('kid')} (SD {r['kid_std']:.4f}), " + ", ".join(
        f"{k} {r[k]:.3f}{se(k)}" for k in ("precision", "recall", "density", "coverage"))
    if r.get("fd_inf") is not None:
        shown += f", FD∞ {r['fd_inf']:.3f}" + (f" ± {r['fd_inf_se']:.3g}" if r.get("fd_inf_se") is not None else "")
    if "parzen_mean" in r:
        shown += f", Parzen {r['parzen_mean']:.2f} ± {r['parzen_stderr']:.2f} (sigma {r['parzen_sigma']:.3f})"
    return shown


def plot_sample_size(*, quality_paths: list[str], output_path: str) -> dict[str, list[dict]]:
    """The sample-size figure: FID and KID of every scored run's final samples against n, and
    each run's FD∞ where it has one."""
    from dgm.plotting import plot_sample_size_bias
    from dgm.results import run_key

    curves, fd_inf = {}, {}
    for path in quality_paths:
        key, q = run_key(path), json.loads(Path(path).read_text())
        final = q["evaluations"][-1]
        if final.get("sample_sizes"):
            label = f"{key['model']} z = {key['latent']}, seed {key['seed']}"
            curves[label] = final["sample_sizes"]
            if final.get("fd_inf") is not None:
                fd_inf[label] = final["fd_inf"]
    if not curves:
        raise ValueError(f"none of {quality_paths} holds a sample-size curve (quality.json of an older run?)")
    plot_sample_size_bias(curves, output_path, fd_inf=fd_inf)
    return curves


# --------------------------------------------------------------------------- table and report

METRICS = ["fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"]
UNCERTAIN = ["fid", "kid", "precision", "recall", "density", "coverage"]  # each with <name>_se and <name>_ci
ERRORS = [f"{m}_{part}" for m in UNCERTAIN for part in ("se", "ci_low", "ci_high")]
TABLE_HEADER = ["model", "latent", "seed", "epoch", "n", *METRICS, "parzen_mean", "parzen_stderr", "parzen_sigma",
                *ERRORS, "fd_inf", "fd_inf_se", "bootstrap", "classifier_sha256", "flag"]


def _table_values(r: dict) -> dict:
    """A result's cells of TABLE_HEADER after the run's key (flag left to ``flag_incomparable``)."""
    out = {k: r.get(k) for k in TABLE_HEADER[4:] if k not in ERRORS}
    for m in UNCERTAIN:
        ci = r.get(f"{m}_ci") or [None, None]
        out |= {f"{m}_se": r.get(f"{m}_se"), f"{m}_ci_low": ci[0], f"{m}_ci_high": ci[1]}
    return out


def flag_incomparable(rows: list[dict]) -> tuple[int | None, str | None]:
    """Sets each row's ``flag``: empty where its n and classifier hash are those of the model rows
    (the most common; ties to the larger n), else what differs. FID at another n has another bias,
    and another classifier is another feature space: such a row must not be compared silently.
    Reference rows (no seed) are judged against the model rows; without model rows, against all.
    Returns the (n, classifier_sha256) compared against."""
    voters = [r for r in rows if r.get("seed") is not None] or rows

    def most_common(values):
        counts = Counter(v for v in values if v is not None)
        return max(counts, key=lambda v: (counts[v], v)) if counts else None

    n0, sha0 = most_common(r["n"] for r in voters), most_common(r.get("classifier_sha256") for r in voters)
    for r in rows:
        parts = []
        if n0 is not None and r["n"] != n0:
            parts.append(f"n = {r['n']}, not {n0}")
        if sha0 is not None and r.get("classifier_sha256") != sha0:
            parts.append(f"classifier {(r.get('classifier_sha256') or 'unknown')[:12]}, not {sha0[:12]}")
        r["flag"] = "; ".join(parts)
    return n0, sha0


def table_rows(quality_paths: list[str], reference_path: str) -> list[dict]:
    """One row per scored model epoch, then one per reference (model column names the images); each
    with its n, classifier hash and ``flag`` (``flag_incomparable``)."""
    from dgm.results import read_json, run_key

    rows = []
    for path in quality_paths:
        q, key = read_json(path), run_key(path)
        for e in q["evaluations"]:
            rows.append({"model": key["model"], "latent": key["latent"], "seed": key["seed"], "epoch": e["epoch"],
                         **_table_values(e)})
    for name, r in read_json(reference_path)["references"].items():
        rows.append({"model": name, "latent": None, "seed": None, "epoch": None, **_table_values(r)})
    flag_incomparable(rows)
    return rows


def write_table(*, quality_paths: list[str], reference_path: str, output_path: str) -> list[dict]:
    """All sample-quality numbers of the run as one tab-separated table; rows at another n or from
    another classifier than the model rows are flagged (column ``flag``) and named in the log."""
    rows = table_rows(quality_paths, reference_path)
    lines = ["\t".join(TABLE_HEADER)]
    for row in rows:
        lines.append("\t".join("" if row[k] is None else (f"{row[k]:.6g}" if isinstance(row[k], float) else str(row[k]))
                               for k in TABLE_HEADER))
        if row["flag"]:
            log.warning("%s (seed %s, epoch %s) is not comparable with the other rows: %s", row["model"], row["seed"],
                        row["epoch"], row["flag"])
    io.write_text(output_path, "\n".join(lines) + "\n")
    return rows


FIDELITY, DIVERSITY = ("precision", "density"), ("recall", "coverage")


def leaders(settings: list[dict], digits: int = 3) -> dict:
    """For each of precision, density, recall and coverage (higher is better), the highest value over
    ``settings`` (models at one latent size, each with those four values) and the settings that reach
    it when rounded to ``digits`` (ties as the table shows them): {metric: {"value", "models"}}, and
    ``settings``, those compared."""
    settings = [s for s in settings if all(s.get(k) is not None for k in FIDELITY + DIVERSITY)]
    out: dict = {"settings": settings}
    for metric in FIDELITY + DIVERSITY:
        if settings:
            best = max(round(s[metric], digits) for s in settings)
            out[metric] = {"value": max(s[metric] for s in settings),
                           "models": [s for s in settings if round(s[metric], digits) == best]}
    return out


def report_section(inputs: dict[str, list[str]]) -> dict | None:
    """Sample quality of every trained model: FID, KID, precision/recall, density/coverage, Parzen, with
    the real-image references, which model leads on fidelity and which on diversity, each run's numbers
    with their bootstrap errors and FD∞, the rows at another n or from another classifier, and the
    sample-size figure (text: report/sections/quality.rst.j2)."""
    from dgm.formatting import by_setting, captioned_figures, fmt, fmt_pm, seed_cell, seed_mean, seeds_label
    from dgm.results import RUN_KEY, by_run, read_json, run_key

    if not inputs.get("quality_reference"):
        return None
    reference = read_json(inputs["quality_reference"][0])
    bounds = {}  # (model, latent, seed) -> test NLL bound, its stderr and bits/dim where the model has one
    for spec in registry.MODELS.values():
        names = (("test_nelbo", "test_nelbo_stderr", "test_nelbo_bpd") if spec.latent_variable else
                 ("test_nll", "test_nll_stderr", "test_bpd") if spec.density else None)
        if names:
            for run, t in by_run(inputs.get(f"{spec.name}_tests", [])).items():
                bounds[run] = dict(zip(("bound", "bound_stderr", "bpd"), (t[n] for n in names)))
    order = {name: i for i, name in enumerate(registry.MODELS)}  # the registry's (the seed study's) order
    evaluations, earlier = [], {}
    for path in inputs.get("quality_runs", []):
        q, key = read_json(path), run_key(path)
        last = max(e["epoch"] for e in q["evaluations"])
        none = {"bound": None, "bound_stderr": None, "bpd": None}
        for e in q["evaluations"]:
            bound = bounds.get(tuple(key[k] for k in RUN_KEY), none) if e["epoch"] == last else none
            evaluations.append({**key, **e, **bound, "order": order[key["model"]], "last": e["epoch"] == last})
            if e["epoch"] != last:
                earlier.setdefault(key["model"], set()).add(e["epoch"])
    samples, parzen, final = [], [], []
    for (_, model, point, latent, epoch), col in by_setting(evaluations, "order", "model", "point", "latent", "epoch"):
        spec = registry.get(model)
        title = f"{spec.title} [{point}]" if point else spec.title
        cells = {"model": title, "latent": latent, "seeds": seeds_label(col["seed"]), "epoch": epoch,
                 "n": seed_cell(col["n"])}
        samples.append({**cells, "fid": seed_cell(col["fid"]), "kid": seed_cell(col["kid_mean"], 4,
                                                                                errors=col["kid_std"]),
                        **{k: seed_cell(col[k], 3) for k in FIDELITY + DIVERSITY}})
        parzen.append({**cells, "parzen": seed_cell(col["parzen_mean"], 1, errors=col["parzen_stderr"]),
                       "parzen_sigma": seed_cell(col["parzen_sigma"], 3),
                       "bound": seed_cell(col["bound"], errors=col["bound_stderr"]), "bpd": seed_cell(col["bpd"], 3)})
        if all(col["last"]):
            no_latent = spec.fixed_latent is not None and not spec.latent_variable  # a flow's 784, a sheet's 0
            final.append({"title": title, "latent": None if no_latent else latent,
                          **{k: seed_mean(col[k]) for k in FIDELITY + DIVERSITY}})
    for name, r in reference["references"].items():
        cells = {"model": f"real {name}", "latent": "–", "seeds": "–", "epoch": "–", "n": r["n"]}
        samples.append({**cells, "fid": fmt(r["fid"]), "kid": fmt_pm(r.get("kid_mean"), r.get("kid_std"), 4),
                        **{k: fmt(r.get(k), 3) for k in FIDELITY + DIVERSITY}})
        parzen.append({**cells, "parzen": fmt_pm(r["parzen_mean"], r["parzen_stderr"], 1) if "parzen_mean" in r
                       else "–", "parzen_sigma": fmt(r.get("parzen_sigma"), 3), "bound": "–", "bpd": "–"})
    kid_sizes = sorted({e["kid_subset_size"] for e in evaluations if e.get("kid_subset_size")})
    keys = ("order", "point", "latent", "seed", "epoch")
    runs = sorted(evaluations, key=lambda e: [(e[k] is None, e[k]) for k in keys])  # one row per run and epoch
    for e in runs:
        spec = registry.get(e["model"])
        e["title"] = f"{spec.title} [{e['point']}]" if e["point"] else spec.title
    references = [{**r, "title": f"real {name}", "latent": None, "seed": None, "epoch": None}
                  for name, r in reference["references"].items()]
    checked = runs + references
    n_compared, sha_compared = flag_incomparable(checked)
    errors = [_error_cells(r) for r in checked] if any(r.get("fid_se") is not None for r in checked) else []
    bootstraps = sorted({r["bootstrap"] for r in checked if r.get("bootstrap")})
    return {
        "id": "quality",
        "data": {
            "n_test": reference["n_test"],
            "classifier": reference["classifier"],
            "earlier": [{"title": registry.get(m).title, "epochs": sorted(epochs)} for m, epochs in
                        sorted(earlier.items(), key=lambda item: order[item[0]])],
            "kid_subset_size": ", ".join(str(n) for n in kid_sizes) or "–",
            "samples": samples,
            "parzen": parzen,
            "leaders": leaders(final),
            "errors": errors,
            "bootstrap": ", ".join(str(b) for b in bootstraps) or "–",
            "fd_inf": any(r.get("fd_inf") is not None for r in runs),
            "compared": {"n": n_compared, "classifier": (sha_compared or "")[:12]},
            "flagged": sum(1 for r in checked if r["flag"]),
        },
        "figures": captioned_figures(inputs.get("quality_figures", []), {"quality_sample_size": "quality_sample_size"}),
    }


def _error_cells(r: dict) -> dict:
    """One run's (or reference's) row of the uncertainty table: each measure ± its bootstrap SE,
    FID's 95% interval, FD∞ ± the SE of the fit's intercept."""
    from dgm.formatting import fmt, seed_cell

    def pm(key, digits, se_key=None):
        return seed_cell([r.get(key)], digits, errors=[r.get(se_key or f"{key}_se")])

    ci = r.get("fid_ci")
    return {"model": r["title"], "latent": "–" if r["latent"] is None else r["latent"],
            "seed": "–" if r["seed"] is None else r["seed"], "epoch": "–" if r["epoch"] is None else r["epoch"],
            "n": r["n"], "fid": pm("fid", 2), "fid_ci": f"{fmt(ci[0])} – {fmt(ci[1])}" if ci else "–",
            "fd_inf": pm("fd_inf", 2), "kid": pm("kid_mean", 4, "kid_se"),
            **{k: pm(k, 3) for k in FIDELITY + DIVERSITY}, "flag": r["flag"] or "–"}
