"""Rule report: every number comes from a results file of the run the report documents."""
from __future__ import annotations

import base64
import csv
import json
import logging
import math
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import jinja2

from dgm import io

log = logging.getLogger("dgm")
PACKAGES = ["torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "snakemake"]
LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(value) -> str:
    return "".join(LATEX_SPECIAL.get(c, c) for c in str(value))


def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def git_commit(cwd=".") -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "") if out.returncode == 0 else "unknown"
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


def benchmark_rows(benchmarks_dir) -> list[dict]:
    """Wall time per job from Snakemake's benchmark files (first repeat)."""
    rows = []
    for path in sorted(Path(benchmarks_dir).rglob("*.tsv")):
        if path.parts[-2:] == ("report", "report.tsv"):
            continue
        with open(path) as f:
            records = list(csv.DictReader(f, delimiter="\t"))
        if records:
            rows.append({"job": str(path.relative_to(benchmarks_dir).with_suffix("")),
                         "seconds": float(records[0]["s"]), "max_rss_mb": _num(records[0].get("max_rss", "nan"))})
    return rows


def _run_key(path) -> dict:
    """model, latent and seed from a results path .../{model}/z{latent}/seed{seed}/file."""
    parts = Path(path).parts
    return {"model": parts[-4], "latent": int(parts[-3][1:]), "seed": int(parts[-2][4:])}


def gather(*, splits_path, vae_metrics, vae_tests, benchmarks_dir, config) -> dict:
    with open(splits_path) as f:
        splits = json.load(f)
    vae_rows = []
    for metrics_path, test_path in zip(vae_metrics, vae_tests):
        curve = read_csv(metrics_path)
        with open(test_path) as f:
            test = json.load(f)
        final = curve[-1]
        trained = [r for r in curve if r["epoch"] > 0]
        vae_rows.append({
            **_run_key(metrics_path),
            "epochs": final["epoch"],
            "train_nelbo": final["train_nelbo"],
            "valid_nelbo": final["valid_nelbo"],
            "best_valid_nelbo": min(r["valid_nelbo"] for r in trained),
            "test_nelbo": test["test_nelbo"],
            "test_nelbo_stderr": test["test_nelbo_stderr"],
            "test_recon": test["test_recon"],
            "test_kl": test["test_kl"],
            "parameters": test["parameters"],
            "seconds_per_epoch": sum(r["train_seconds"] for r in trained) / len(trained),
        })
    return {
        "splits": splits,
        "vae": sorted(vae_rows, key=lambda r: (r["latent"], r["seed"])),
        "benchmarks": benchmark_rows(benchmarks_dir),
        "packages": package_versions(),
        "commit": git_commit(),
        "config": config,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
    }


def _figure_entries(figures) -> list[dict]:
    captions = {
        "vae_elbo": "Training and validation ELBO per epoch (nats per image) for each latent size (seed Fig. 1).",
        "vae_samples": "16 samples from the prior, decoded, at the configured epochs (seed Fig. 2).",
        "vae_manifold": "The learned 2-D manifold: decoder means on a grid of prior quantiles at the start, "
                        "middle and end of training (seed Fig. 3).",
    }
    entries = []
    for path in figures:
        stem = Path(path).stem
        key = next((k for k in captions if stem.startswith(k)), None)
        entries.append({"path": str(path), "name": Path(path).name, "stem": stem,
                        "caption": captions.get(key, stem.replace("_", " "))})
    return entries


def build_report(*, title, config, splits_path, vae_metrics, vae_tests, figures, benchmarks_dir, html_template,
                 tex_template, html_path, tex_path) -> dict:
    ctx = gather(splits_path=splits_path, vae_metrics=vae_metrics, vae_tests=vae_tests,
                 benchmarks_dir=benchmarks_dir, config=config)
    ctx["title"] = title
    ctx["figures"] = _figure_entries(figures)

    # HTML: one file, every image inlined as a data URI, no external reference.
    for fig in ctx["figures"]:
        fig["data_uri"] = "data:image/png;base64," + base64.b64encode(Path(fig["path"]).read_bytes()).decode()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=jinja2.select_autoescape(["html"]))
    env.filters["fmt"] = fmt
    html = env.from_string(Path(html_template).read_text()).render(**ctx)
    io.write_text(html_path, html)

    # LaTeX: the source with its figures copied beside it (compiled by the PDF step when enabled).
    tex_dir = Path(tex_path).parent
    (tex_dir / "figures").mkdir(parents=True, exist_ok=True)
    for fig in ctx["figures"]:
        shutil.copyfile(fig["path"], tex_dir / "figures" / fig["name"])
        fig["tex_path"] = f"figures/{fig['name']}"
    tex_env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>", comment_start_string="<#", comment_end_string="#>",
    )
    tex_env.filters["fmt"] = fmt
    tex_env.filters["e"] = latex_escape
    tex = tex_env.from_string(Path(tex_template).read_text()).render(**ctx)
    io.write_text(tex_path, tex)
    log.info("wrote %s and %s with %d figures", html_path, tex_path, len(ctx["figures"]))
    return ctx
