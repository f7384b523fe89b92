"""Rule report: the study as one self-contained HTML file and a LaTeX source.

Every model contributes a *section* built from this run's result files: a plain dict

    {"id": "vae", "title": "...", "paragraphs": [str], "tables": [{"caption", "header", "rows"}],
     "figures": [{"path", "caption"}]}

produced by ``report_section(inputs, spec)`` of the model's task module (``dgm.registry``) from
the report rule's named inputs (lists of paths). The templates in ``report/`` render sections
generically, so a new model brings its section with its task module and nothing here changes.
No number is typed by hand: cells are formatted from the results files.
"""
from __future__ import annotations

import base64
import csv
import functools
import importlib
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import unicodedata
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import jinja2

from dgm import io
from dgm.results import run_key  # noqa: F401  (the sections import it from here)

log = logging.getLogger("dgm")
PACKAGES = ["torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "snakemake"]
# Sections that span the models, each a dgm.tasks module with report_section(inputs): the likelihood
# section follows the latent-variable models' own, the others close the document.
LIKELIHOOD_SECTION, CLOSING_SECTIONS = "likelihood", ["quality", "comparison"]
LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                 "±": r"$\pm$", "−": r"$-$", "×": r"$\times$", "≈": r"$\approx$", "≥": r"$\geq$",
                 "≤": r"$\leq$", "∞": r"$\infty$", "σ": r"$\sigma$", "→": r"$\to$", "–": "--", "—": "---"}


def latex_escape(value) -> str:
    """Plain text for LaTeX: specials escaped, Greek and maths symbols as maths, other non-Latin-1
    characters by their Unicode name (pdflatex's utf8 input stops on characters it does not know)."""
    out = []
    for c in str(value):
        if c in LATEX_SPECIAL:
            out.append(LATEX_SPECIAL[c])
        elif ord(c) < 0x100:
            out.append(c)
        else:
            name = unicodedata.name(c, "")
            greek = name.split("GREEK SMALL LETTER ")[-1].lower() if "GREEK SMALL LETTER" in name else None
            greek = greek or (name.split("GREEK CAPITAL LETTER ")[-1].capitalize() if "GREEK CAPITAL" in name else None)
            out.append(f"$\\{greek}$" if greek else f"[{name.lower() or hex(ord(c))}]")
    return "".join(out)


def fmt(value, digits: int = 2) -> str:
    """A number for a table cell; '–' where a value is undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_pm(mean, err, digits: int = 2) -> str:
    return f"{fmt(mean, digits)} ± {fmt(err, digits)}"


def _defined(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def seed_cell(values, digits: int = 2, errors=None) -> str:
    """One table cell from the values of runs that differ only in their seed: with one run, the
    value (± ``errors[0]``, its standard error, when given); with several, mean ± sample SD over
    the seeds. Integers that agree across seeds (epochs, parameters) print once."""
    pairs = [(v, e) for v, e in zip(values, errors or [None] * len(values)) if _defined(v)]
    if not pairs:
        return "–"
    if len(pairs) == 1:
        value, err = pairs[0]
        return fmt_pm(value, err, digits) if errors is not None and _defined(err) else fmt(value, digits)
    numbers = [v for v, _ in pairs]
    if all(isinstance(v, int) for v in numbers) and len(set(numbers)) == 1:
        return str(numbers[0])
    return fmt_pm(statistics.fmean(numbers), statistics.stdev(numbers), digits)


def curve_summary(metrics_path, best: str | None = None) -> dict:
    """A run's metrics.csv as one record: its key, the last epoch's row, ``epochs``, the mean
    training seconds per epoch ``s_epoch`` and, given a column ``best``, its lowest value over the
    trained epochs as ``best_valid``."""
    curve = read_csv(metrics_path)
    trained = [r for r in curve if r["epoch"] > 0]
    out = {**run_key(metrics_path), **curve[-1], "epochs": curve[-1]["epoch"],
           "s_epoch": sum(r["train_seconds"] for r in trained) / len(trained)}
    if best is not None:
        out["best_valid"] = min(r[best] for r in trained)
    return out


def seeds_label(seeds) -> str:
    return ", ".join(str(s) for s in sorted(seeds))


def by_setting(records: list[dict], *keys: str) -> list[tuple[tuple, dict[str, list]]]:
    """Records (one per run, each with a 'seed') grouped by ``keys``, groups and seeds in order;
    each group as columns: {field: [value of each seed's run]}."""
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(records, key=lambda r: (*(r[k] for k in keys), r["seed"])):
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [(key, {f: [r.get(f) for r in group] for f in group[0]}) for key, group in groups.items()]


def captioned_figures(paths, captions: dict[str, str]) -> list[dict]:
    """Report figures from figure paths, each captioned by the ``captions`` entry its file name
    starts with, in the order of ``captions`` (the seed's figure order), then by name."""
    kinds = list(captions)
    figures = []
    for path in paths:
        stem = Path(path).stem
        kind = next(k for k in kinds if stem.startswith(k))
        figures.append((kinds.index(kind), stem, {"path": path, "caption": f"{captions[kind]} [{stem}]"}))
    return [f for *_, f in sorted(figures, key=lambda t: t[:2])]


SEEDS_NOTE = "with several seeds, mean ± SD over seeds"


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def _num(v):
    for parse in (int, float):
        try:
            return parse(v)
        except (TypeError, ValueError):
            pass
    return v


def by_run(paths, read=read_json) -> dict[tuple, object]:
    """{(model, latent, seed): read(path)} for result files of several runs."""
    return {tuple(run_key(p)[k] for k in ("model", "latent", "seed")): read(p) for p in paths}


def model_record(path) -> dict:
    """What a run's model.pt says about it: run key, description, trained epochs, device, and the
    parameter count of the rebuilt network (of each sub-network too, e.g. a GAN's generator).
    Several sections ask for the same runs: each file is read once (again if it changes)."""
    return dict(_model_record(str(path), os.stat(path).st_mtime_ns))


@functools.lru_cache(maxsize=None)
def _model_record(path: str, mtime_ns: int) -> dict:
    import torch

    from dgm.models import build_model

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    network = build_model(ckpt["model"])
    return {
        **run_key(path),
        "description": ckpt["model"],
        "options": ckpt.get("options", {}),
        "epochs": ckpt.get("epoch"),
        "device": ckpt.get("device_name", ckpt.get("device", "unknown")),
        "parameters": sum(p.numel() for p in network.parameters()),
        "parts": {name: sum(p.numel() for p in child.parameters()) for name, child in network.named_children()},
    }


def model_records(inputs: dict[str, list[str]], model: str) -> list[dict]:
    """model_record of every trained run of ``model`` among the report's inputs."""
    return [model_record(p) for p in inputs.get("models", []) if run_key(p)["model"] == model]


def git_commit(cwd=".") -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10)
        if out.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def benchmark_paths(benchmarks_dir) -> list[str]:
    """Snakemake's benchmark files of the finished jobs (not the report's own, still running)."""
    return [str(p) for p in sorted(Path(benchmarks_dir).rglob("*.tsv"))
            if p.relative_to(benchmarks_dir).parts[0] != "report"]


def read_benchmark(path) -> dict | None:
    """The first (usually only) record of a Snakemake benchmark file, numbers parsed; None if empty."""
    with open(path) as f:
        records = list(csv.DictReader(f, delimiter="\t"))
    return {k: _num(v) for k, v in records[0].items()} if records else None


def benchmark_rows(benchmarks_dir, paths=None) -> list[list[str]]:
    """[job, wall seconds, max RSS MB] per job from Snakemake's benchmark files."""
    rows = []
    for path in benchmark_paths(benchmarks_dir) if paths is None else paths:
        record = read_benchmark(path)
        if record:
            rows.append([str(Path(path).relative_to(benchmarks_dir).with_suffix("")), fmt(float(record["s"]), 1),
                         fmt(record.get("max_rss", float("nan")), 0)])
    return rows


def provenance_section(*, splits_path, config, benchmarks_dir, model_paths=(), benchmarks=None) -> dict:
    splits = read_json(splits_path)
    runs = [model_record(p) for p in model_paths]  # the DAG's order: models as configured, then latent, seed
    run_rows = [[r["model"], r["latent"], r["seed"], r["epochs"], r["device"], r["parameters"],
                 ", ".join(f"{name} {n}" for name, n in r["parts"].items()) if r["model"] == "gan" else "–"]
                for r in runs]
    md5_rows = [[key, md5] for key, md5 in splits["md5"].items()]
    return {
        "id": "provenance",
        "title": "Data and provenance",
        "paragraphs": [
            f"Dataset {splits['dataset']}: {splits['n_train']} training, {splits['n_valid']} validation and "
            f"{splits['n_test']} test images ({splits['binarization']} binarisation of the training images; "
            f"fixed-seed binarised validation and test copies, seed {splits['binarize_seed']}; split seed "
            f"{splits['split_seed']}). The files "
            + ("match torchvision's official md5 sums." if splits["official_md5"]
               else "do not all match torchvision's official md5 sums (a local mirror or subset)."),
            f"Training seeds {config['seeds']}; device setting '{config['device']}'. Figures of single runs "
            f"(samples, manifolds, interpolations, estimator sweeps) show seed {config['seeds'][0]}; every seed's "
            "are in the results folder and in Snakemake's report.",
        ],
        "tables": [
            {"caption": "Trained models: the device each was trained on and its parameter count",
             "header": ["model", "z", "seed", "epochs", "device", "parameters", "of which"], "rows": run_rows},
            {"caption": "md5 of the input files", "header": ["file", "md5"], "rows": md5_rows},
            {"caption": "Package versions", "header": ["package", "version"],
             "rows": [[k, v] for k, v in package_versions().items()]},
            {"caption": "Wall time and peak memory per job (Snakemake benchmark files)",
             "header": ["job", "seconds", "max RSS (MB)"], "rows": benchmark_rows(benchmarks_dir, benchmarks)},
        ],
        "figures": [],
    }


def gather_sections(inputs: dict[str, list[str]]) -> list[dict]:
    """Every model's section in the registry's (the seed study's) order, the likelihood section after
    the last latent-variable model's, then sample quality and the comparison."""
    from dgm import registry

    latent = registry.names("latent_variable")
    calls = []
    for spec in registry.MODELS.values():
        calls.append(functools.partial(spec.task_module().report_section, inputs, spec))
        if latent and spec.name == latent[-1]:
            calls.append(functools.partial(importlib.import_module(f"dgm.tasks.{LIKELIHOOD_SECTION}").report_section,
                                           inputs))
    for name in CLOSING_SECTIONS:
        calls.append(functools.partial(importlib.import_module(f"dgm.tasks.{name}").report_section, inputs))
    return [section for section in (call() for call in calls) if section is not None]


def build_report(*, title, config, inputs, benchmarks_dir, template_dir, html_path, tex_path) -> dict:
    """Render report.html (images inlined) and report.tex (figures copied beside it)."""
    inputs = {**inputs, "benchmarks": benchmark_paths(benchmarks_dir)}
    sections = gather_sections(inputs)
    sections.append(provenance_section(splits_path=inputs["splits"][0], config=config, benchmarks_dir=benchmarks_dir,
                                       model_paths=inputs.get("models", []), benchmarks=inputs["benchmarks"]))
    ctx = {
        "title": title,
        "sections": sections,
        "commit": git_commit(Path(template_dir).resolve().parent),  # the pipeline checkout, not the workdir
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "config_json": json.dumps(config, indent=2, default=str),
    }
    figures = [fig for s in sections for fig in s["figures"]]
    for i, fig in enumerate(figures, start=1):
        fig["number"] = i
        fig["label"] = Path(fig["path"]).stem
        fig["data_uri"] = "data:image/png;base64," + base64.b64encode(Path(fig["path"]).read_bytes()).decode()
        # LaTeX takes the vector PDF that every figure rule writes beside its PNG, when present.
        vector = Path(fig["path"]).with_suffix(".pdf")
        fig["source"] = vector if vector.exists() else Path(fig["path"])
        fig["tex_path"] = f"figures/{fig['source'].name}"

    template_dir = Path(template_dir)
    html_env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir), undefined=jinja2.StrictUndefined,
                                  autoescape=jinja2.select_autoescape(["html"]))
    io.write_text(html_path, html_env.get_template("template.html").render(**ctx))

    tex_dir = Path(tex_path).parent
    (tex_dir / "figures").mkdir(parents=True, exist_ok=True)
    for fig in figures:
        shutil.copyfile(fig["source"], tex_dir / fig["tex_path"])
    tex_env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir), undefined=jinja2.StrictUndefined,
        block_start_string="<%", block_end_string="%>", variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
    )
    tex_env.filters["e"] = latex_escape
    io.write_text(tex_path, tex_env.get_template("template.tex").render(**ctx))
    log.info("wrote %s and %s: %d sections, %d figures", html_path, tex_path, len(sections), len(figures))
    return ctx
