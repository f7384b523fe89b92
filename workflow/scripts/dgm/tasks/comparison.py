"""The report's closing section: every trained model side by side, and the seed study's reported
values beside this run's. Which likelihood a model gets follows its capabilities (dgm.registry):
importance sampling for latent-variable models, the dequantisation bound for density models."""
from __future__ import annotations

from pathlib import Path

from dgm import registry
from dgm.seed_study import REPORTED


def train_seconds(benchmarks: list[str], key: dict) -> float | None:
    """Wall time of a run's training job from its Snakemake benchmark file, when there is one."""
    from dgm.results import read_benchmark

    point = "".join(f"{part.replace('=', '~', 1)}/" for part in key["point"].split(", ")) if key["point"] else ""
    suffix = f"/train/{key['dataset']}/{key['model']}/{point}z{key['latent']}/seed{key['seed']}.tsv"
    path = next((p for p in benchmarks if Path(p).as_posix().endswith(suffix)), None)
    record = read_benchmark(path) if path else None
    return float(record["s"]) if record else None


def run_summaries(inputs: dict[str, list[str]]) -> list[dict]:
    """One record per trained run with what the comparison shows: parameters, training wall time,
    likelihood where the model has one, final sample quality, and the last epoch's metrics row
    (where the values the seed reports are found)."""
    from dgm.results import RUN_KEY, by_run, model_records, read_csv

    likelihood = {  # (model, latent, seed) -> {"nll": nats, "nll_stderr", "bpd", "method", "k"}
        run: {"nll": t["test_nll"], "nll_stderr": t["test_nll_stderr"], "bpd": t["test_nll_bpd"],
              "method": "importance", "k": t["k"]}
        for run, t in by_run(inputs.get("likelihood_tests", [])).items()
    }
    density_tests = [p for name in registry.names("density") for p in inputs.get(f"{name}_tests", [])]
    for run, t in by_run(density_tests).items():  # exact on binarised pixels, a dequantisation bound on 8-bit ones
        likelihood[run] = {"nll": t["test_nll"], "nll_stderr": t["test_nll_stderr"], "bpd": t["test_bpd"],
                           "method": "dequantisation" if registry.get(run[0]).data == "bytes" else "exact",
                           "k": t["k"]}
    gaussian = {run: {"gaussian": a["ais_gaussian"], "gaussian_stderr": a["ais_gaussian_stderr"], "sigma": a["sigma"]}
                for run, a in by_run(inputs.get("ais", [])).items()}  # AIS under the Gaussian observation model
    quality = {run: max(q["evaluations"], key=lambda e: e["epoch"])
               for run, q in by_run(inputs.get("quality_runs", [])).items()}
    last_epoch = by_run([p for name in registry.MODELS for p in inputs.get(f"{name}_metrics", [])],
                        read=lambda p: read_csv(p)[-1])

    out = []
    for record in (r for m in registry.MODELS for r in model_records(inputs.get("models", []), m)):
        run = tuple(record[k] for k in RUN_KEY)
        q = quality.get(run, {})
        out.append({
            **{k: record[k] for k in ("model", "point", "latent", "seed", "parameters", "epochs", "device")},
            **{"nll": None, "nll_stderr": None, "bpd": None, "method": None, "k": None}, **likelihood.get(run, {}),
            **{"gaussian": None, "gaussian_stderr": None, "sigma": None}, **gaussian.get(run, {}),
            "fid": q.get("fid"), "parzen": q.get("parzen_mean"), "parzen_stderr": q.get("parzen_stderr"),
            "train_seconds": train_seconds(inputs.get("benchmarks", []), record),
            "last_epoch": last_epoch.get(run, {}),
        })
    return out


def report_section(inputs: dict[str, list[str]]) -> dict | None:
    """Every trained model side by side, and the seed study's values beside this run's
    (text: report/sections/comparison.rst.j2)."""
    from dgm.formatting import by_setting, fmt, seed_cell, seeds_label

    runs = run_summaries(inputs)
    if not runs:
        return None
    order = {m: i for i, m in enumerate(registry.MODELS)}
    for r in runs:
        r["order"] = order[r["model"]]
    rows = []
    for (_, model, point, latent), col in by_setting(runs, "order", "model", "point", "latent"):
        spec = registry.get(model)
        title = f"{spec.title} [{point}]" if point else spec.title
        no_latent = spec.fixed_latent == 0  # a model without a latent variable (its path says z0)
        rows.append({"model": title, "latent": None if no_latent else latent, "seeds": seeds_label(col["seed"]),
                     "data": spec.data_modelled, "nll": seed_cell(col["nll"], errors=col["nll_stderr"]),
                     "bpd": seed_cell(col["bpd"], 3), "fid": seed_cell(col["fid"]),
                     "gaussian": seed_cell(col["gaussian"], 1, errors=col["gaussian_stderr"]),
                     "sigma": seed_cell(col["sigma"], 3),
                     "parzen": seed_cell(col["parzen"], 1, errors=col["parzen_stderr"]),
                     "parameters": seed_cell(col["parameters"]), "epochs": seed_cell(col["epochs"]),
                     "train_seconds": seed_cell(col["train_seconds"], 0)})
    estimators = sorted({(order[r["model"]], registry.get(r["model"]).title, r["method"], r["k"])
                         for r in runs if r["method"]})

    seed_values = []
    for reported in REPORTED:
        ours = [r["last_epoch"].get(reported.field) for r in runs if r["model"] == reported.model]
        if ours:
            shown = reported.shown if f"{reported.value:g}" in reported.shown else \
                f"{reported.shown} = {fmt(reported.value, 3)}"
            seed_values.append({"model": registry.get(reported.model).title, "quantity": reported.quantity,
                                "seed": shown, "run": seed_cell(ours, 3), "source": reported.source})
    return {
        "id": "comparison",
        "data": {"models": rows, "seed_values": seed_values, "gaussian": any(r["gaussian"] is not None for r in runs),
                 "estimators": [{"title": t, "method": m, "k": k} for _, t, m, k in estimators]},
        "figures": [],
    }
