"""Rules runs, compare, plot_sweep and plot_latent_gap as plain functions (dgm.experiments does the work)."""
from __future__ import annotations

import logging
import math
from pathlib import Path

from dgm import experiments, io, registry

log = logging.getLogger("dgm")


def runs_table(*, run_dirs: list[str], expected: dict[str, str], tsv_path: str, summary_path: str,
               html_path: str) -> list[dict]:
    """runs.tsv, runs_summary.tsv and runs.html of this configuration's runs; a run folder whose
    run.json carries another configuration's hash is refused, naming the folder."""
    for d in run_dirs:
        experiments.check_run(d, expected[d])
    rows, summary = experiments.write_runs(run_dirs, tsv_path, summary_path, html_path)
    log.info("%d runs, %d settings over seeds: %s", len(rows), len(summary), tsv_path)
    return rows


def _curves(source: Path) -> tuple[list[tuple[str, str, dict, Path]], str | None]:
    """(dataset, model, run keys, metrics.csv) of every run of a study given as a results folder or a runs.tsv,
    and a warning when the run folders of a runs.tsv are not found (dgm.experiments.run_folders)."""
    if source.is_dir():
        records = [(experiments.read_run_record(d), d) for d in experiments.find_runs(source)]
        return [(r["config"]["data"].get("name", ""), r["run"]["model"], r["run"], d / "metrics.csv")
                for r, d in records if (d / "metrics.csv").exists()], None
    rows = experiments.read_runs_table(source)
    folders = experiments.run_folders(source, rows)
    out = [(row.get("dataset") or "", row["model"], {k: row.get(k) for k in ("point", "latent", "seed")},
            d / "metrics.csv") for row, d in zip(rows, folders) if d is not None and (d / "metrics.csv").exists()]
    return out, None if any(folders) or not rows else experiments.missing_folders_warning(source, rows)


def _run_label(keys: dict) -> str:
    point = keys.get("point") or ""
    point = experiments.point_label(point) if isinstance(point, dict) or "~" in str(point) else str(point)
    return ", ".join(x for x in (point, f"z{keys['latent']}", f"seed {keys['seed']}") if x)


def compare(*, runs_path: str, baseline: str, output_path: str, curve_paths: dict[str, str]) -> list[dict]:
    """Every metric of this study (its runs.tsv) against ``baseline`` (a results folder or runs.tsv),
    written as a TSV and logged as text, and each model's training curves of both studies in one figure
    (the baseline's runs of this study's dataset only). What the comparison cannot say (another dataset,
    no common setting, baseline run folders not found) is logged as a warning."""
    import pandas as pd

    from dgm import plotting

    baseline_path = Path(baseline)
    new_rows, old_rows = experiments.load_runs(runs_path), experiments.load_runs(baseline_path)
    rows = experiments.compare(new_rows, old_rows, experiments.study_folders(runs_path, new_rows),
                               experiments.study_folders(baseline_path, old_rows))
    experiments.write_tsv(rows, output_path, experiments.COMPARE_COLUMNS)
    log.info("this study against %s:\n%s", baseline, experiments.format_comparison(rows))
    (new, _), (old, missing) = _curves(Path(runs_path)), _curves(baseline_path)
    for warning in experiments.comparison_warnings(new_rows, old_rows) + ([missing] if missing else []):
        log.warning("compare.baseline: %s", warning)
    datasets = {dataset for dataset, *_ in new}
    for model, path in curve_paths.items():
        curves = {study: [(_run_label(keys), pd.read_csv(csv)) for dataset, m, keys, csv in runs
                          if m == model and (study == "new" or not dataset or not datasets or dataset in datasets)]
                  for study, runs in (("baseline", old), ("new", new))}
        frames = [f for runs in curves.values() for _, f in runs]
        columns = list(dict.fromkeys(c for f in frames for c in f.columns if c.startswith("valid_")))
        if not columns:
            raise ValueError(f"no validation curves of {model} in either study to draw in {path}")
        against = (f"this study (solid) against {baseline} (dashed)" if curves["baseline"]
                   else f"this study; no curves of {baseline} to draw (the job's log says why)")
        plotting.plot_study_curves(curves, path, columns=columns, title=f"{registry.get(model).title}: {against}")
    return rows


# Metrics a sweep figure shows when a run has them (the rest stay in runs.tsv).
SWEEP_METRICS = ["valid_nelbo", "test_nelbo", "test_nll", "test_bpd", "valid_bpd", "fid", "kid_mean", "precision",
                 "recall", "density", "coverage", "parzen", "valid_d_loss", "valid_g_loss", "train_seconds"]


def plot_sweep(*, summary_path: str, model: str, key: str, output_path: str) -> None:
    """Each metric of ``model``'s runs against the swept ``key`` (error bars over seeds)."""
    import pandas as pd

    from dgm import plotting

    summary = pd.DataFrame(experiments.read_tsv(summary_path))
    column = f"{model}.{key}"
    part = summary[summary["model"] == model]
    if column not in part or part[column].isna().all():
        raise ValueError(f"{summary_path}: no column {column}; is {key} swept for {model} (config sweep.{model})?")
    metrics = [m for m in SWEEP_METRICS if m in part and part[m].notna().any()]
    plotting.plot_sweep(part, output_path, parameter=column, metrics=metrics,
                        title=f"{registry.get(model).title}: sweep over {key} (mean ± SD over seeds)")


def latent_gap(*, sweep_paths: list[str], k: int, output_csv: str, output_png: str, title: str = "") -> list[dict]:
    """The seed's §1.4b argument as a curve: from every latent size's estimator sweep, importance
    sampling and naive Monte Carlo at K = ``k`` (mean over repeats and seeds, ± SD over repeats) and
    their gap, per latent size; a table and a figure."""
    import pandas as pd

    from dgm import plotting

    frames = [pd.read_csv(p) for p in sweep_paths]
    sweep = pd.concat(frames, ignore_index=True)
    at_k = sweep[(sweep["k"] == k) & sweep["estimator"].isin(["importance", "naive"])]
    missing = sorted(set(sweep["latent"]) - set(at_k["latent"]))
    if missing:
        raise ValueError(f"no estimates at K = {k} for latent sizes {missing}: add {k} to likelihood.sweep_ks")
    wide = at_k.pivot_table(index=["latent", "repeat"], columns="estimator", values="log_px", aggfunc="mean")
    wide["gap"] = wide["importance"] - wide["naive"]
    rows = []
    for latent, part in wide.groupby(level="latent"):
        row = {"latent": int(latent), "k": k, "repeats": len(part)}
        for name in ("importance", "naive", "gap"):
            row[name] = float(part[name].mean())
            row[f"{name}_sd"] = float(part[name].std()) if len(part) > 1 else 0.0
        rows.append(row)
    if any(not math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float)):
        raise io.NonFiniteResult(f"{output_csv}: a non-finite estimate in {sweep_paths}")
    from dgm import training

    training.write_csv(rows, output_csv)
    plotting.plot_latent_gap(pd.DataFrame(rows), output_png, k=k, title=title)
    for r in rows:
        log.info("z = %d: importance %.2f, naive %.2f, gap %.2f ± %.2f nats", r["latent"], r["importance"],
                 r["naive"], r["gap"], r["gap_sd"])
    return rows


def report_section(inputs: dict[str, list[str]], spec=None) -> dict | None:
    """The sweeps of this study: each swept model's settings over seeds with their main metrics, and
    each metric against each swept key (text: report/sections/experiments.rst.j2); none without a sweep."""
    from dgm.formatting import captioned_figures, fmt

    figures = list(inputs.get("sweep_figures", []))
    if not figures or not inputs.get("runs_summary"):
        return None
    summary = experiments.read_tsv(inputs["runs_summary"][0])
    swept = {Path(p).stem.split("_", 2)[1] for p in figures}  # sweep_<model>_<key>
    metrics = [m for m in SWEEP_METRICS if any(r.get(m) is not None for r in summary if r["model"] in swept)]
    rows = []
    for r in summary:
        if r["model"] not in swept:
            continue
        cell = {"model": registry.get(r["model"]).title, "point": r.get("point") or "–", "latent": r["latent"],
                "seeds": r["seeds"]}
        for m in metrics:
            sd = r.get(f"{m}_sd")
            cell[m] = "–" if r.get(m) is None else fmt(r[m]) + (f" ± {fmt(sd)}" if sd is not None else "")
        rows.append(cell)
    out = []
    for path in figures:
        _, model, key = Path(path).stem.split("_", 2)
        out += captioned_figures([path], {"sweep": "sweep"}, wildcards={"model": model, "key": key})
    return {"id": "experiments", "data": {"rows": rows, "metrics": metrics}, "figures": out}
