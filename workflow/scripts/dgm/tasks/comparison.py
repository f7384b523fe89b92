"""The report's closing section: every trained model side by side, and the seed study's reported
values beside this run's. Which likelihood a model gets follows its capabilities (dgm.registry):
importance sampling for latent-variable models, the dequantisation bound for density models."""
from __future__ import annotations

from pathlib import Path

from dgm import registry
from dgm.seed_study import REPORTED


def train_seconds(benchmarks: list[str], key: dict) -> float | None:
    """Wall time of a run's training job from its Snakemake benchmark file, when there is one."""
    from dgm.tasks.report import read_benchmark

    suffix = f"/train/{key['dataset']}/{key['model']}/z{key['latent']}/seed{key['seed']}.tsv"
    path = next((p for p in benchmarks if Path(p).as_posix().endswith(suffix)), None)
    record = read_benchmark(path) if path else None
    return float(record["s"]) if record else None


def run_summaries(inputs: dict[str, list[str]]) -> list[dict]:
    """One record per trained run with what the comparison shows: parameters, training wall time,
    likelihood where the model has one, final sample quality, and the last epoch's metrics row
    (where the values the seed reports are found)."""
    from dgm.tasks.report import by_run, model_records, read_csv

    likelihood = {  # (model, latent, seed) -> {"nll": nats, "nll_stderr", "bpd", "method"}
        run: {"nll": t["test_nll"], "nll_stderr": t["test_nll_stderr"], "bpd": t["test_nll_bpd"],
              "method": f"importance sampling, K = {t['k']}"}
        for run, t in by_run(inputs.get("likelihood_tests", [])).items()
    }
    density_tests = [p for name in registry.names("density") for p in inputs.get(f"{name}_tests", [])]
    for run, t in by_run(density_tests).items():
        likelihood[run] = {"nll": t["test_nll"], "nll_stderr": t["test_nll_stderr"], "bpd": t["test_bpd"],
                           "method": f"dequantisation bound, K = {t['k']}"}
    quality = {run: max(q["evaluations"], key=lambda e: e["epoch"])
               for run, q in by_run(inputs.get("quality_runs", [])).items()}
    last_epoch = by_run([p for name in registry.MODELS for p in inputs.get(f"{name}_metrics", [])],
                        read=lambda p: read_csv(p)[-1])

    out = []
    for record in (r for m in registry.MODELS for r in model_records(inputs, m)):
        run = (record["model"], record["latent"], record["seed"])
        q = quality.get(run, {})
        out.append({
            **{k: record[k] for k in ("model", "latent", "seed", "parameters", "epochs", "device")},
            **{"nll": None, "nll_stderr": None, "bpd": None, "method": None}, **likelihood.get(run, {}),
            "fid": q.get("fid"), "parzen": q.get("parzen_mean"), "parzen_stderr": q.get("parzen_stderr"),
            "train_seconds": train_seconds(inputs.get("benchmarks", []), record),
            "last_epoch": last_epoch.get(run, {}),
        })
    return out


def report_section(inputs: dict[str, list[str]]) -> dict | None:
    from dgm.tasks.report import SEEDS_NOTE, by_setting, fmt, seed_cell, seeds_label

    runs = run_summaries(inputs)
    if not runs:
        return None
    order = {m: i for i, m in enumerate(registry.MODELS)}
    for r in runs:
        r["order"] = order[r["model"]]
    rows = []
    for (_, model, latent), col in by_setting(runs, "order", "model", "latent"):
        spec = registry.get(model)
        rows.append([spec.title, latent, seeds_label(col["seed"]), spec.data_modelled,
                     seed_cell(col["nll"], errors=col["nll_stderr"]), seed_cell(col["bpd"], 3),
                     seed_cell(col["fid"]), seed_cell(col["parzen"], 1, errors=col["parzen_stderr"]),
                     seed_cell(col["parameters"]), seed_cell(col["epochs"]), seed_cell(col["train_seconds"], 0)])
    methods = sorted({f"{registry.get(r['model']).title}: {r['method']}" for r in runs if r["method"]})

    seed_rows = []
    for reported in REPORTED:
        ours = [r["last_epoch"].get(reported.field) for r in runs if r["model"] == reported.model]
        if ours:
            shown = reported.shown if f"{reported.value:g}" in reported.shown else \
                f"{reported.shown} = {fmt(reported.value, 3)}"
            seed_rows.append([registry.get(reported.model).title, reported.quantity, shown, seed_cell(ours, 3),
                              reported.source])
    tables = [{
        "caption": "The three models on this run's test set: negative log-likelihood in nats per image (± one "
                   "standard error over images) and bits per dimension where the model defines one, sample quality "
                   "of the last epoch (classifier-feature FID, lower is better; Parzen log-likelihood, higher is "
                   f"better), parameters, and the training job's wall time ({SEEDS_NOTE})",
        "header": ["model", "z", "seeds", "data modelled", "test NLL (nats)", "bits/dim", "FID", "Parzen",
                   "parameters", "epochs", "training (s)"],
        "rows": rows,
    }]
    if seed_rows:
        tables.append({
            "caption": "The values the seed study reports, beside this run's (last epoch)",
            "header": ["model", "quantity", "seed study", "this run", "where in the seed"],
            "rows": seed_rows,
        })
    return {
        "id": "comparison",
        "title": "The three models compared",
        "paragraphs": [
            "Likelihoods are comparable only between models of the same data: the VAE models binarised pixels, "
            "the flow 8-bit grey levels (its bits/dim bound the discrete image's), and the GAN defines no "
            "likelihood at all. Estimators: " + "; ".join(methods) + ". Sample quality is measured the same way "
            "for every model (section 'Sample quality'); the GAN's parameter count includes its discriminator, "
            "which sampling does not need. Training time is the wall time of the training job, validation and "
            "checkpoints included, on the device listed in the provenance section.",
        ],
        "tables": tables,
        "figures": [],
    }
