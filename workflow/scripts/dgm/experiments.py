"""Experiments, not just a run: run records, a table of every run, and a comparison with a baseline.

- ``run.json`` in every run folder (written by the training job) says what produced the run: the
  configuration that defines it (the model's config section, the data section, latent size, seed
  and sweep point) and its hash, the git commit and whether the tree was dirty, package versions,
  the device, start and end time and the command line.
- ``runs_table`` turns run folders into one row per run: its keys, the hyperparameters that differ
  between the runs, and every metric its result files hold; ``summarise`` groups the rows over seeds
  (mean ± SD), the habit of ``dvc exp show``.
- ``compare`` puts two studies side by side, metric by metric (``dvc metrics diff``): old, new,
  change, and whether the change exceeds the seeds' spread.

``python -m dgm.experiments runs RESULTS`` and ``python -m dgm.experiments compare NEW BASELINE``
do the same without Snakemake (RESULTS: a results folder; NEW and BASELINE: a results folder or a
runs.tsv).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RUN_RECORD = "run.json"
RECORD_VERSION = 1
PACKAGES = ["torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "snakemake", "torchmetrics", "prdc"]
KEYS = ["dataset", "model", "point", "latent", "seed"]  # what names a run (point: the sweep point, "" if none)

# Whether a metric improves when it falls or rises (compare's "better"/"worse"): log-likelihoods, Parzen
# and the fidelity/diversity measures rise; losses, NLLs, bits/dim, FID and KID fall. Settings,
# spreads and times are not judged.
HIGHER_IS_BETTER = ("log_px", "parzen", "precision", "recall", "density", "coverage")
# The BDMC gap and the train-test gap: their size matters, not their sign; train_log_px is judged by the gap.
NOT_JUDGED = ("epochs", "ais_sigma", "valid_d_real", "valid_d_fake", "bdmc_gap", "train_test_gap", "train_log_px")


# -- sweeps: points of a model's hyperparameters, each a folder level of its runs' paths

# Keys that decide which files a training job declares (its sample grids, snapshots): a sweep over
# them would need other rules for each point; compare separate studies instead.
NOT_SWEEPABLE = ("latent_sizes", "epochs", "sample_epochs", "manifold_epochs", "quality_epochs")


def sweep_points(sweep: dict | None) -> list[dict]:
    """Every combination of one model's swept values (``{key: [values]}``), in the given order;
    one empty point when nothing is swept."""
    points = [{}]
    for key, values in (sweep or {}).items():
        points = [{**p, key: v} for p in points for v in values]
    return points


def _path_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def point_path(point: dict) -> str:
    """The folders a sweep point adds to its runs' paths: ``hidden_dim~256/lr~0.001/`` ("" for none)."""
    return "".join(f"{k}~{_path_value(v)}/" for k, v in point.items())


def parse_point(text: str) -> dict[str, str]:
    """``point_path``'s folders back to {key: value as written}."""
    return dict(part.split("~", 1) for part in text.strip("/").split("/") if part)


def point_label(point: dict | str) -> str:
    """A sweep point for tables and legends: "hidden_dim=256, lr=0.001" ("" for none)."""
    items = parse_point(point).items() if isinstance(point, str) else ((k, _path_value(v)) for k, v in point.items())
    return ", ".join(f"{k}={v}" for k, v in items)


def apply_point(section: dict, point: dict) -> dict:
    return {**section, **point}


def check_sweep(config: dict, validate) -> None:
    """Refuse a sweep over an unknown section or key, a key that shapes the DAG, a value the schema
    refuses (``validate(config)`` raises with the key's path) or one that cannot be a folder name;
    each message names ``sweep.<section>.<key>``."""
    for section, keys in (config.get("sweep") or {}).items():
        if section not in config.get("models", []):
            raise ValueError(f"config key sweep.{section}: not a model of this run (models: {config['models']})")
        for key, values in keys.items():
            where = f"sweep.{section}.{key}"
            if key not in config[section]:
                raise ValueError(f"config key {where}: {section} has no key {key!r}")
            if key in NOT_SWEEPABLE:
                raise ValueError(f"config key {where}: {key} decides which files a run declares and cannot be "
                                 "swept; run separate studies and compare them instead")
            if len(set(map(_path_value, values))) != len(values):
                raise ValueError(f"config key {where}: {values} repeats a value")
            for value in values:
                text = _path_value(value)
                if isinstance(value, (list, dict)) or not text or any(c in text for c in "/{}~ \t\n"):
                    raise ValueError(f"config key {where}: {value!r} cannot name a folder (a number, word or "
                                     "boolean without '/', '~', braces or spaces)")
                trial = {**config, section: {**config[section], key: value}}
                try:
                    validate(trial)
                except ValueError as e:
                    raise ValueError(f"config key {where}: {value!r} is refused: {e}") from None


# -- run records


# Keys of a model's section that say which runs exist, not what one run is: adding a latent size
# must not retrain (nor re-hash) the runs already there.
RUN_SET_KEYS = ("latent_sizes",)


def run_section(section: dict) -> dict:
    """A model's config section as one of its runs sees it (without ``RUN_SET_KEYS``)."""
    return {k: v for k, v in section.items() if k not in RUN_SET_KEYS}


def run_config(*, model: str, section: dict, data: dict, latent: int, seed: int, point: dict | None = None) -> dict:
    """What defines a run, and nothing else: the model's config section (sweep values applied, without
    the list of latent sizes), the data section without the folder the files came from (their md5s
    identify the data), latent size, seed and sweep point."""
    return {
        "model": model,
        model: run_section(section),
        "data": {k: v for k, v in data.items() if k != "raw_dir"},
        "latent": int(latent),
        "seed": int(seed),
        "point": dict(point or {}),
    }


def current_form(config: dict) -> dict:
    """A stored run configuration in today's definition of a run: records written before a key joined
    ``RUN_SET_KEYS`` (or before the data folder was left out) hold it, and it does not make them
    another run."""
    return run_config(model=config["model"], section=config[config["model"]], data=config["data"],
                      latent=config["latent"], seed=config["seed"], point=config["point"])


def config_hash(config: dict) -> str:
    """A short, stable hash of a run's configuration (canonical JSON)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def git_state(repo_dir: str | os.PathLike) -> dict:
    """The pipeline checkout's commit and whether its tracked files have uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions(names=PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_record(*, config: dict, started: str, ended: str, device: str, repo_dir, command: str | None) -> dict:
    """The contents of run.json."""
    return {
        "version": RECORD_VERSION,
        "run": {k: config[k] for k in ("model", "latent", "seed", "point")},
        "config": config,
        "config_hash": config_hash(config),
        "git": git_state(repo_dir),
        "packages": package_versions(),
        "device": device,
        "host": platform.node(),
        "started": started,
        "ended": ended,
        "command": command,
    }


def read_run_record(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / RUN_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunMismatch(f"{path}: no readable run record ({e})") from None
    if record.get("version") != RECORD_VERSION:
        raise RunMismatch(f"{path}: run record version {record.get('version')}, expected {RECORD_VERSION}")
    try:  # the configuration and its hash as today's code defines a run (the file keeps what it was written with)
        record["config"] = current_form(record["config"])
    except (KeyError, TypeError, AttributeError) as e:
        raise RunMismatch(f"{path}: the run record's configuration is malformed ({type(e).__name__}: {e})") from None
    record["config_hash"] = config_hash(record["config"])
    return record


class RunMismatch(ValueError):
    """A run folder whose run.json is missing or describes another configuration than the one asked for."""

    user_facing = True  # an entry script logs the message alone (dgm.entry)


def check_run(run_dir: str | os.PathLike, expected_hash: str) -> dict:
    """The run record of ``run_dir``, refusing a folder that holds another configuration's run (e.g. a
    changed hyperparameter with ``--rerun-triggers mtime`` or ``--touch``, which keep the old files)."""
    record = read_run_record(run_dir)
    if record["config_hash"] != expected_hash:
        raise RunMismatch(
            f"{Path(run_dir) / RUN_RECORD}: this folder holds the run of configuration {record['config_hash']}, "
            f"but the configuration asks for {expected_hash}; rerun its training (delete the folder or run "
            "snakemake with --forcerun on it) instead of reusing it")
    return record


# -- the runs table


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _last_row(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else {}


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _curve_metrics(path: Path) -> dict:
    """metrics.csv: the last epoch, its validation metrics and the training time over all epochs."""
    last = _last_row(path)
    epoch = _number(last.get("epoch"))
    out = {"epochs": None if epoch is None else int(epoch)}
    out.update({k: _number(v) for k, v in last.items() if k.startswith("valid_") and _number(v) is not None})
    with open(path, newline="") as f:
        seconds = [_number(r.get("train_seconds")) for r in csv.DictReader(f)]
    out["train_seconds"] = sum(s for s in seconds if s is not None)
    return out


def _test_metrics(path: Path) -> dict:
    return {k: _number(v) for k, v in _read_json(path).items() if k.startswith("test_") and _number(v) is not None}


def _last_evaluation(path: Path) -> dict:
    """quality.json's last evaluated epoch (the trained model's samples)."""
    return max(_read_json(path)["evaluations"], key=lambda e: e["epoch"] or 0)


def _quality_metrics(path: Path) -> dict:
    """quality.json: the last evaluated epoch's sample-quality numbers."""
    last = _last_evaluation(path)
    return {"parzen" if k == "parzen_mean" else k: _number(last.get(k))
            for k in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "parzen_mean")}


def _keys(*pairs: tuple[str, str]) -> Callable[[Path], dict]:
    """A reader taking ``key`` of a JSON result file as the runs table's ``name``, for each (key, name)."""
    return lambda path: {name: _number(_read_json(path).get(key)) for key, name in pairs}


@dataclass(frozen=True)
class ResultFile:
    """A result file of a run folder, declared once: the runs of models with any of ``capabilities``
    (dgm.registry) have it (only at latent size ``latent`` when given); the DAG asks for it before the
    runs table (common.smk), and ``metrics`` reads the table's numbers from it. ``per_image`` maps a
    metric of the table to the array of the file's per-image twin (same stem, ``.npz``) whose mean it
    is: what a paired comparison of two runs on the same images reads."""

    name: str
    capabilities: tuple[str, ...]
    metrics: Callable[[Path], dict]
    latent: int | None = None
    per_image: tuple[tuple[str, str], ...] = ()

    @property
    def per_image_name(self) -> str:
        return f"{Path(self.name).stem}.npz"


RESULT_FILES = (  # in the runs table's column order
    ResultFile("metrics.csv", ("trained",), _curve_metrics),
    ResultFile("test_metrics.json", ("bound", "density"), _test_metrics,  # the ELBO, or an exact/bounded log p(x)
               per_image=(("test_nelbo", "nelbo"), ("test_nll", "nll"), ("test_bpd", "bpd"))),
    ResultFile("test_nll.json", ("latent_variable",), _test_metrics,
               per_image=(("test_nelbo", "nelbo"), ("test_nll", "nll"))),
    ResultFile("quadrature.json", ("latent_variable",), _keys(("log_px", "quadrature_log_px")), latent=2,
               per_image=(("quadrature_log_px", "log_px"),)),
    ResultFile("quality.json", ("sampler",), _quality_metrics),
    ResultFile("ais.json", ("decoder_likelihood",),
               _keys(("ais", "ais_log_px"), ("ais_gaussian", "ais_gaussian_log_px"), ("sigma", "ais_sigma"),
                     ("parzen_gaussian", "parzen_gaussian")),
               per_image=(("ais_log_px", "ais"), ("ais_gaussian_log_px", "ais_gaussian"),
                          ("parzen_gaussian", "parzen_gaussian"))),
    ResultFile("bdmc.json", ("decoder_likelihood",), _keys(("gap", "bdmc_gap"))),
    ResultFile("generalisation.json", ("likelihood",),
               _keys(("train_log_px", "train_log_px"), ("test_log_px", "test_log_px"), ("gap", "train_test_gap"))),
)


def per_image_values(run_dir: str | os.PathLike, metric: str):
    """(image indices, values) behind ``metric`` of a run folder, from the per-image file of the last
    result file declaring it (the one whose number the runs table shows); None without one."""
    for result in reversed(RESULT_FILES):
        key = dict(result.per_image).get(metric)
        path = Path(run_dir) / result.per_image_name
        if key is not None and (Path(run_dir) / result.name).exists():
            if not path.exists():
                return None
            import numpy as np

            with np.load(path, allow_pickle=False) as f:
                return (f["image"], f[key]) if key in f.files else None
    return None


NOISE_SE = 2.0  # a change is beyond noise when it exceeds this many standard errors (two-sided, about 5 %)


def paired_difference(pairs) -> dict | None:
    """new - old of per-image values on the same images: the mean of the per-image differences and its
    standard error (their SD / sqrt(n)), pooled over the given (old, new) pairs of runs (one per seed);
    None unless some pair holds the same images on both sides."""
    import numpy as np

    diffs = [new[1] - old[1] for old, new in pairs
             if old is not None and new is not None and np.array_equal(old[0], new[0])]
    if not diffs:
        return None
    d = np.concatenate(diffs)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None
    return {"paired_change": float(d.mean()), "paired_se": se, "paired_images": int(len(d)),
            "beyond_noise": None if se is None else bool(abs(d.mean()) > NOISE_SE * se)}


def run_metrics(run_dir: str | os.PathLike) -> dict[str, float]:
    """Every metric the result files (``RESULT_FILES``) of one run folder hold, by name (absent files
    are skipped)."""
    d = Path(run_dir)
    out: dict[str, float] = {}
    for result in RESULT_FILES:
        if (d / result.name).exists():
            out.update(result.metrics(d / result.name))
    return {k: v for k, v in out.items() if v is not None}


def _flatten(prefix: str, obj) -> dict:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _flatten(f"{prefix}.{key}", val).items()}
    return {prefix: json.dumps(obj) if isinstance(obj, list) else obj}


def find_runs(results_dir: str | os.PathLike) -> list[Path]:
    """Every run folder (one holding run.json) under ``results_dir``, in path order."""
    return sorted(p.parent for p in Path(results_dir).rglob(RUN_RECORD))


def runs_table(run_dirs) -> tuple[list[str], list[dict]]:
    """One row per run: its keys, config hash, commit, the hyperparameters that differ between the
    runs (``<model>.<key>``), then every metric. Returns (hyperparameter columns, rows)."""
    rows, configs = [], []
    for d in run_dirs:
        record = read_run_record(d)
        cfg = record["config"]
        settings = _flatten(cfg["model"], cfg[cfg["model"]])
        settings.update(_flatten("data", cfg["data"]))
        configs.append(settings)
        point = ",".join(f"{k}={v}" for k, v in cfg["point"].items())
        rows.append({
            "dataset": cfg["data"].get("name", ""), "model": cfg["model"], "point": point, "latent": cfg["latent"],
            "seed": cfg["seed"], "config_hash": record["config_hash"],
            "commit": (record["git"]["commit"] or "unknown")[:10] + ("+dirty" if record["git"]["dirty"] else ""),
            "run_dir": str(d), **run_metrics(d),
        })
    differing = []
    for k in sorted({k for c in configs for k in c}):
        owner = k.split(".")[0]  # a model's own settings differ only between runs of that model
        values = {json.dumps(c.get(k), sort_keys=True) for c, r in zip(configs, rows)
                  if owner == "data" or r["model"] == owner}
        if len(values) > 1 and not k.endswith(".latent_sizes"):  # the latent size is a column of its own
            differing.append(k)
    for row, settings in zip(rows, configs):
        for k in differing:
            row[k] = settings.get(k)
    return differing, rows


def metric_columns(rows: list[dict]) -> list[str]:
    fixed = set(KEYS) | {"config_hash", "commit", "run_dir"}
    seen: list[str] = []
    for r in rows:
        seen += [k for k in r if k not in seen and k not in fixed and "." not in k and isinstance(r[k], (int, float))]
    return seen


def summarise(rows: list[dict], hyper: list[str]) -> list[dict]:
    """Rows grouped over seeds: per setting (every key but the seed, and the differing
    hyperparameters), each metric's mean, its SD over seeds and the number of seeds."""
    metrics = metric_columns(rows)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple(r.get(k) for k in ("dataset", "model", "point", "latent", *hyper))
        groups.setdefault(key, []).append(r)
    out = []
    for key, group in groups.items():
        row = dict(zip(("dataset", "model", "point", "latent", *hyper), key))
        row["seeds"] = " ".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        for m in metrics:
            values = [r[m] for r in group if r.get(m) is not None]
            if values:
                row[m] = statistics.fmean(values)
                row[f"{m}_sd"] = statistics.stdev(values) if len(values) > 1 else None
                row[f"{m}_n"] = len(values)
        out.append(row)
    return out


def write_tsv(rows: list[dict], path: str | os.PathLike, columns: list[str] | None = None) -> None:
    from dgm import io

    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    with io.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, delimiter="\t", restval="", extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in columns})


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # every digit: a comparison against this file must see no rounding
    return v


def _parse_cell(key: str, text: str):
    if text == "":
        return None
    if key in ("point", "config_hash", "commit", "seeds", "run_dir", "dataset", "model"):
        return text
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def read_tsv(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: _parse_cell(k, v) for k, v in r.items()} for r in csv.DictReader(f, delimiter="\t")]


class StudyNotFound(FileNotFoundError):
    """A study (a results folder or a runs.tsv) that is not there, or a folder without runs; the message names it."""

    user_facing = True  # an entry script logs the message alone (dgm.entry)


class NotARunsTable(ValueError):
    """A file given as a runs.tsv that is not one (another table, any other file); the message names it."""

    user_facing = True


TABLE_KEYS = ("model", "latent")  # the columns a comparison cannot do without (dataset and point may be absent)


def read_runs_table(path: str | os.PathLike) -> list[dict]:
    """The rows of a runs.tsv, refusing a file without the columns that name a run."""
    hint = "give a study's results folder or the runs.tsv that `snakemake results/runs/runs.tsv` writes"
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f, delimiter="\t"), [])
        rows = read_tsv(path)
    except (UnicodeDecodeError, csv.Error) as e:
        raise NotARunsTable(f"{path}: not a runs table ({type(e).__name__}); {hint}") from None
    missing = [k for k in TABLE_KEYS if k not in header]
    if missing:
        raise NotARunsTable(f"{path}: not a runs table: no column {', '.join(map(repr, missing))}; {hint}")
    for i, row in enumerate(rows, start=2):
        if not row["model"] or not isinstance(row["latent"], int):
            raise NotARunsTable(f"{path}, line {i}: no model or latent size ({row['model']!r}, {row['latent']!r})"
                                f"; {hint}")
    return rows


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
th {{ cursor: pointer; background: #eee; }}
td.text {{ text-align: left; }}
</style></head><body>
<h1>{title}</h1>
<p>{intro}</p>
{tables}
<script>
// Click a column header to sort by it (numbers as numbers, again to reverse).
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {{
  const body = th.closest("table").tBodies[0];
  const rows = Array.from(body.rows);
  const dir = th.dataset.dir === "asc" ? -1 : 1;
  th.dataset.dir = dir === 1 ? "asc" : "desc";
  const value = r => {{ const t = r.cells[col].dataset.v ?? r.cells[col].textContent; const n = parseFloat(t);
                       return isNaN(n) ? t : n; }};
  rows.sort((a, b) => {{ const x = value(a), y = value(b);
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * dir; }});
  rows.forEach(r => body.appendChild(r));
}}));
</script></body></html>
"""


def _html_table(caption: str, columns: list[str], rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if isinstance(v, float):
                sd = r.get(f"{c}_sd")
                text = f"{v:.4g}" + (f" ± {sd:.2g}" if isinstance(sd, float) else "")
                cells.append(f'<td data-v="{v!r}">{html.escape(text)}</td>')
            else:
                cells.append(f'<td class="text">{html.escape("" if v is None else str(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<h2>{html.escape(caption)}</h2><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def write_runs(run_dirs, tsv_path, summary_path, html_path) -> tuple[list[dict], list[dict]]:
    """runs.tsv (one row per run), its summary over seeds, and a sortable HTML page of both."""
    hyper, rows = runs_table(run_dirs)
    metrics = metric_columns(rows)
    columns = KEYS + hyper + ["config_hash", "commit"] + metrics + ["run_dir"]
    write_tsv(rows, tsv_path, columns)
    summary = summarise(rows, hyper)
    summary_columns = ["dataset", "model", "point", "latent", *hyper, "seeds"]
    summary_columns += [c for m in metrics for c in (m, f"{m}_sd", f"{m}_n")]
    write_tsv(summary, summary_path, summary_columns)
    from dgm import io

    page = HTML_PAGE.format(
        title="Runs", intro=html.escape(f"{len(rows)} runs; columns beside the keys are the hyperparameters that "
                                        "differ between runs, then every metric (click a header to sort)."),
        tables=_html_table("Every run", columns[:-1], rows)
        + _html_table("Over seeds: mean ± SD", ["dataset", "model", "point", "latent", *hyper, "seeds", *metrics],
                      summary))
    io.write_text(html_path, page)
    return rows, summary


# -- comparing two studies


def study_runs(results_dir: str | os.PathLike) -> list[Path]:
    """The run folders of a results folder, refusing a path that is not a folder or holds no run."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise StudyNotFound(f"{results_dir}: no such folder; give a results folder of this pipeline")
    runs = find_runs(results_dir)
    if not runs:
        raise StudyNotFound(f"{results_dir}: no run folders (no {RUN_RECORD} below it); give a results folder of "
                            "this pipeline")
    return runs


def load_runs(source: str | os.PathLike) -> list[dict]:
    """The runs of a study: from a runs.tsv, or from the run folders of a results folder."""
    source = Path(source)
    if source.is_file():
        return read_runs_table(source)
    if not source.exists():
        raise StudyNotFound(f"{source}: no such file or folder; give a study's results folder or its runs.tsv")
    return runs_table(study_runs(source))[1]


def run_folders(table: str | os.PathLike, rows: list[dict]) -> list[Path | None]:
    """The run folder of every row of the runs.tsv ``table`` (None where it is not found). A row names its
    folder relative to its study's working directory (``<study>/results/runs/runs.tsv``); a table moved
    elsewhere inside the study still finds it: each folder above the table is tried, and the run.json
    found must carry the row's configuration hash."""
    above = Path(table).resolve().parents
    return [_run_folder(Path(str(row.get("run_dir") or "")), row.get("config_hash"), above) for row in rows]


def _run_folder(name: Path, config_hash: str | None, above) -> Path | None:
    if str(name) == ".":
        return None
    for d in [name] if name.is_absolute() else [root / name for root in above]:
        if (d / RUN_RECORD).is_file():
            try:
                if config_hash in (None, read_run_record(d)["config_hash"]):
                    return d
            except RunMismatch:
                pass
    return None


def _datasets(rows: list[dict]) -> list[str]:
    return sorted({r.get("dataset") for r in rows} - {None, ""})


def check_baseline(source: str | os.PathLike, dataset: str) -> list[str]:
    """What would make a comparison with the study ``source`` fail or mislead, found before any job runs:
    raises StudyNotFound or NotARunsTable (a missing path, a folder without runs, a file that is not a runs
    table); returns warnings (runs of another dataset only; a runs.tsv whose run folders are not found,
    so that no baseline curves can be drawn)."""
    rows = load_runs(source)
    warnings = []
    datasets = _datasets(rows)
    if datasets and dataset not in datasets:
        warnings.append(f"{source} holds runs of {', '.join(datasets)} only, and this study is of {dataset}: no "
                        "metric will be compared; give a baseline study of the same dataset")
    if Path(source).is_file() and rows and not any(run_folders(source, rows)):
        warnings.append(missing_folders_warning(source, rows))
    return warnings


def missing_folders_warning(table: str | os.PathLike, rows: list[dict]) -> str:
    return (f"{table}: the run folders it lists (e.g. {rows[0].get('run_dir')}) are not found from where it is, so "
            "the comparison has no baseline curves; give the baseline study's results folder instead, or keep its "
            "runs.tsv inside that study")


def comparison_warnings(new_rows: list[dict], old_rows: list[dict]) -> list[str]:
    """What a comparison cannot say: studies of different datasets, or studies with no setting in common."""
    new, old = _datasets(new_rows), _datasets(old_rows)
    if new and old and not set(new) & set(old):
        return [f"the baseline's runs are of {', '.join(old)} and this study's of {', '.join(new)}: no metric is "
                "compared; compare studies of the same dataset"]
    if new_rows and old_rows and not {_setting(r) for r in new_rows} & {_setting(r) for r in old_rows}:
        return ["the two studies share no setting (dataset, model, sweep point, latent size): every metric is "
                "only in one of them"]
    return []


def _setting(row: dict) -> tuple:
    return (row.get("dataset") or "", row["model"], row.get("point") or "", int(row["latent"]))


NO_UNCERTAINTY = "none: one seed a side and no per-image values"  # compare's word where nothing judges a change
QUALITY_METRICS = frozenset(("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "parzen"))


def quality_identity(run_dir: str | os.PathLike | None) -> tuple | None:
    """(n, classifier sha256) of the run's last scored epoch in quality.json, or None without one:
    sample-quality numbers compare only at the same n in the same feature network."""
    path = Path(run_dir) / "quality.json" if run_dir is not None else None
    if path is None or not path.exists():
        return None
    last = _last_evaluation(path)
    return last.get("n"), last.get("classifier_sha256")


def not_comparable(old_dirs: dict, new_dirs: dict) -> tuple[str | None, str | None]:
    """Why two studies' sample-quality numbers of one setting (run folders by seed) must not be compared:
    (other sample sizes, another feature classifier), each None where nothing says so. Parzen windows
    work on pixels: only the first concerns them."""
    old = {quality_identity(d) for d in old_dirs.values()} - {None}
    new = {quality_identity(d) for d in new_dirs.values()} - {None}
    if not old or not new:
        return None, None
    n_old, n_new = sorted({n for n, _ in old}, key=str), sorted({n for n, _ in new}, key=str)
    n = f"n = {'/'.join(map(str, n_new))}, baseline n = {'/'.join(map(str, n_old))}" if n_old != n_new else None
    classifier = ("another feature classifier (its sha256 differs)"
                  if {c for _, c in old} != {c for _, c in new} else None)
    return n, classifier


def compare(new_rows: list[dict], old_rows: list[dict], new_folders=None, old_folders=None) -> list[dict]:
    """Every metric present in both studies, per setting (dataset, model, sweep point, latent size),
    averaged over seeds: old, new, change, relative change, and whether the change exceeds the seeds'
    spread (|change| > the larger SD over seeds; unknown with one seed on both sides). Where both runs of
    a seed keep per-image values of the metric on the same images (``per_image_values``; the rows' run
    folders given), also the paired change (mean of per-image differences) ± its standard error, and
    ``beyond_noise``: |paired change| > ``NOISE_SE`` SE; ``uncertainty`` says which of the two judged the change,
    or ``NO_UNCERTAINTY`` where neither could. A sample-quality metric scored at another n or by another feature
    classifier on the two sides (``not_comparable``, from the run folders' quality.json) is flagged and not judged.
    Metrics present in only one study are listed with the other side empty."""
    def grouped(rows):
        out: dict[tuple, dict[str, list[float]]] = {}
        for r in rows:
            for m in metric_columns([r]):
                out.setdefault(_setting(r), {}).setdefault(m, []).append(r[m])
        return out

    def folders(rows, dirs):
        out: dict[tuple, dict] = {}
        for r, d in zip(rows, dirs or [None] * len(rows)):
            if d is not None:
                out.setdefault(_setting(r), {})[r.get("seed")] = Path(d)
        return out

    new, old = grouped(new_rows), grouped(old_rows)
    new_dirs, old_dirs = folders(new_rows, new_folders), folders(old_rows, old_folders)
    rows = []
    for setting in sorted(set(new) | set(old)):
        metrics_new, metrics_old = new.get(setting, {}), old.get(setting, {})
        n_differs, classifier_differs = not_comparable(old_dirs.get(setting, {}), new_dirs.get(setting, {}))
        for m in list(dict.fromkeys([*metrics_old, *metrics_new])):
            a, b = metrics_old.get(m), metrics_new.get(m)
            row = dict(zip(("dataset", "model", "point", "latent"), setting), metric=m,
                       old=statistics.fmean(a) if a else None, new=statistics.fmean(b) if b else None,
                       old_seeds=len(a or []), new_seeds=len(b or []))
            if a and b:
                row["change"] = row["new"] - row["old"]
                row["relative"] = row["change"] / abs(row["old"]) if row["old"] else None
                spreads = [statistics.stdev(v) for v in (a, b) if len(v) > 1]
                row["spread"] = max(spreads) if spreads else None
                row["exceeds_spread"] = None if row["spread"] is None else abs(row["change"]) > row["spread"]
                row["better"] = _better(m, row["change"])
                seeds = sorted(set(new_dirs.get(setting, {})) & set(old_dirs.get(setting, {})), key=str)
                paired = paired_difference([(per_image_values(old_dirs[setting][s], m),
                                             per_image_values(new_dirs[setting][s], m)) for s in seeds])
                row.update(paired or {})
                row["uncertainty"] = ("paired SE over images" if paired and paired["paired_se"] is not None
                                      else "SD over seeds" if row["spread"] is not None else NO_UNCERTAINTY)
                why = "; ".join(r for r in (n_differs, classifier_differs if m != "parzen" else None) if r) \
                    if m in QUALITY_METRICS else None
                if why:  # flagged, never judged: a change between other n or feature networks is no change
                    row["not_comparable"], row["better"] = why, ""
            else:
                row["only_in"] = "baseline" if a else "new"
            rows.append(row)
    return rows


def _better(metric: str, change: float) -> str:
    if change == 0 or metric in NOT_JUDGED or metric.endswith(("_stderr", "_std", "_sd", "seconds")):
        return ""
    higher = any(h in metric for h in HIGHER_IS_BETTER)
    return "better" if (change > 0) == higher else "worse"


COMPARE_COLUMNS = ["dataset", "model", "point", "latent", "metric", "old", "new", "change", "relative", "spread",
                   "exceeds_spread", "paired_change", "paired_se", "paired_images", "beyond_noise", "uncertainty",
                   "better", "not_comparable", "old_seeds", "new_seeds", "only_in"]


def format_comparison(rows: list[dict]) -> str:
    """The comparison as aligned text, one line per metric (what ``compare`` prints)."""
    def cell(v):
        if v is None:
            return "–"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    header = ["setting", "metric", "old", "new", "change", "paired ± SE", "beyond noise", ""]
    lines = [header]
    for r in rows:
        setting = f"{r['model']}{' [' + r['point'] + ']' if r['point'] else ''} z{r['latent']}"
        change = cell(r.get("change")) if "change" in r else f"only in {r['only_in']}"
        rel = f" ({100 * r['relative']:+.1f}%)" if r.get("relative") is not None else ""
        paired = f"{cell(r['paired_change'])} ± {cell(r['paired_se'])}" if r.get("paired_change") is not None else ""
        judged = r.get("beyond_noise") if r.get("beyond_noise") is not None else r.get("exceeds_spread")
        lines.append([setting, r["metric"], cell(r["old"]), cell(r["new"]), change + rel, paired,
                      cell(judged) if "change" in r else "",
                      f"not comparable: {r['not_comparable']}" if r.get("not_comparable") else r.get("better", "")])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def study_folders(source: str | os.PathLike, rows: list[dict]) -> list[Path | None]:
    """The run folders of a study's rows: found from its runs.tsv (``run_folders``), or named by rows
    that ``load_runs`` made from a results folder."""
    if Path(source).is_file():
        return run_folders(source, rows)
    return [Path(r["run_dir"]) if r.get("run_dir") else None for r in rows]


def compare_studies(new: str | os.PathLike, baseline: str | os.PathLike, output_path=None) -> list[dict]:
    new_rows, old_rows = load_runs(new), load_runs(baseline)
    rows = compare(new_rows, old_rows, study_folders(new, new_rows), study_folders(baseline, old_rows))
    if output_path is not None:
        write_tsv(rows, output_path, COMPARE_COLUMNS)
    return rows


def curve_pairs(new_dir: str | os.PathLike, old_dir: str | os.PathLike) -> dict[str, list[tuple[str, Path, dict]]]:
    """metrics.csv of every run of both studies, by model: [(study label, path, run keys)]."""
    out: dict[str, list] = {}
    for label, root in (("baseline", old_dir), ("new", new_dir)):
        if not Path(root).is_dir():
            continue
        for d in find_runs(root):
            record = read_run_record(d)
            if (d / "metrics.csv").exists():
                out.setdefault(record["run"]["model"], []).append((label, d / "metrics.csv", record["run"]))
    return out


# -- the warnings of a workflow run

# A job's own log line (dgm.entry.start_log's format "<date> <time> LEVEL message") at level WARNING.
_JOB_WARNING = re.compile(r"^\S+ \S+ WARNING (.*)$")
# A job in Snakemake's log of the run: "    log: <path>[, <path>]" (" (check log file(s) ...)" after a failure).
_JOB_LOGS = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?$", re.M)


def run_warnings(snakemake_logs) -> list[str]:
    """The warnings in the logs of the jobs a Snakemake run started ("<job log>: <message>"), found through
    the run's own log, which names every job's ``log:``. The onsuccess and onerror handlers print them at the
    end of the run, so that a warning a job logged (a GAN's discriminator winning outright) is seen."""
    paths = [snakemake_logs] if isinstance(snakemake_logs, (str, os.PathLike)) else list(snakemake_logs or [])
    job_logs: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        for names in _JOB_LOGS.findall(text):
            job_logs += [n for n in names.split(", ") if n not in job_logs]
    out = []
    for job_log in job_logs:
        try:
            lines = Path(job_log).read_text(errors="replace").splitlines()
        except OSError:  # a job that never started
            continue
        out += [f"{job_log}: {m.group(1)}" for m in map(_JOB_WARNING.match, lines) if m]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.experiments", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="write runs.tsv, runs_summary.tsv and runs.html for a results folder")
    runs.add_argument("results", help="a results folder (every run.json below it is a run)")
    runs.add_argument("--out", help="folder for the three files (default: the results folder)")
    cmp = sub.add_parser("compare", help="every metric of NEW against BASELINE")
    cmp.add_argument("new", help="a results folder or a runs.tsv")
    cmp.add_argument("baseline", help="a results folder or a runs.tsv")
    cmp.add_argument("--out", help="also write the comparison as this TSV file")
    args = parser.parse_args(argv)
    try:
        if args.command == "runs":
            out = Path(args.out or args.results)
            rows, summary = write_runs(study_runs(args.results), out / "runs.tsv", out / "runs_summary.tsv",
                                       out / "runs.html")
            print(f"{len(rows)} runs, {len(summary)} settings: {out / 'runs.tsv'}, {out / 'runs.html'}")
        else:
            new, old = load_runs(args.new), load_runs(args.baseline)
            for warning in comparison_warnings(new, old):
                print(f"warning: {warning}", file=sys.stderr)
            rows = compare(new, old, study_folders(args.new, new), study_folders(args.baseline, old))
            if args.out is not None:
                write_tsv(rows, args.out, COMPARE_COLUMNS)
            print(format_comparison(rows))
    except (StudyNotFound, NotARunsTable, RunMismatch) as e:
        parser.exit(2, f"{parser.prog} {args.command}: {e}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
