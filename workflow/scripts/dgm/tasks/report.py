"""Rule report: the study as one self-contained HTML file and a LaTeX source.

Every model contributes a *section* built from this run's result files: a plain dict

    {"id": "vae", "template": "vae", "data": {...}, "figures": [{"path", "caption", "wildcards"}]}

produced by ``report_section(inputs, spec)`` of the model's task module (``dgm.registry``) from
the report rule's named inputs (lists of paths). ``data`` holds numbers, names and tables (lists
of row dicts of formatted cells), never sentences: the section's text is the template
``report/sections/<template>.rst.j2``, Jinja that writes reStructuredText (the markup of the
figure captions in ``workflow/report/``), which docutils turns into HTML (maths as MathML) and
LaTeX (maths as maths). A template sets its ``title`` and places its tables with
``{% call table(rows) %}caption, then one ":key: label" line per column{% endcall %}``; each
figure is captioned by its caption file, the same one Snakemake's own report shows. The frames
``report/template.html`` and ``report/template.tex`` lay the sections out, so a new model brings
its section with its task module and a template, and nothing here changes.
No number is typed by hand: cells and values come from the results files.
"""
from __future__ import annotations

import base64
import functools
import html
import importlib
import json
import logging
import platform
import re
import shutil
import subprocess
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import yaml
from markupsafe import Markup

from dgm import experiments, io
from dgm.formatting import fmt, latex_escape, latex_unicode, number_ranges, rst_escape
from dgm.results import model_record, read_benchmark, read_json, run_key

log = logging.getLogger("dgm")
# Sections that span the models, each a dgm.tasks module with report_section(inputs): each of
# SPANNING follows the last model with its capability (the likelihood section the latent-variable
# models', AIS the decoder models'); the CLOSING ones end the document.
SPANNING, CLOSING_SECTIONS = {"likelihood": "latent_variable", "ais": "decoder_likelihood"}, [
    "quality", "experiments", "comparison", "trust"]
RST_MARKUP = re.compile(r"[`*|\\_\[]")  # text without these characters is plain text in reStructuredText


# --------------------------------------------------------------------------- reStructuredText -> HTML, LaTeX

DOCUTILS_SETTINGS = {
    "_disable_config": True,  # no docutils.conf of the machine: the same output everywhere
    "report_level": 2, "halt_level": 2,  # a markup warning is an error
    "doctitle_xform": False, "file_insertion_enabled": False, "smart_quotes": False,
    "math_output": "MathML",  # HTML: maths that every current browser draws, offline
    "legacy_column_widths": False, "use_latex_citations": True,  # today's defaults of docutils 1.0
}


def _publish(text: str, writer: str, source: str) -> dict:
    from docutils.core import publish_parts
    from docutils.utils import SystemMessage
    from docutils.writers import get_writer_class

    try:
        return publish_parts(text, source_path=source, writer=get_writer_class(writer)(),
                             settings_overrides=DOCUTILS_SETTINGS)
    except SystemMessage as e:
        raise ValueError(f"{source}: reStructuredText error: {e}\n--- the text ---\n{text}") from None


def rst_to_html(text: str, source: str = "<report>") -> str:
    """reStructuredText as an HTML fragment (HTML5, whose parser puts <math> in MathML's namespace itself)."""
    fragment = _publish(text, "html5", source)["fragment"]
    return fragment.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "").strip()


def rst_to_latex(text: str, source: str = "<report>") -> tuple[str, str]:
    """reStructuredText as LaTeX: (body, the definitions docutils' commands need in the preamble)."""
    parts = _publish(text, "latex", source)
    return latex_unicode(parts["body"].strip()), parts["fallbacks"].strip()


def _unwrap_html(fragment: str) -> str:
    m = re.fullmatch(r"<p>(.*)</p>", fragment, re.S)
    return m.group(1) if m and "<p>" not in m.group(1) else fragment


def rst_inline(text: str, source: str = "<report>") -> dict[str, str]:
    """One paragraph of reStructuredText (a caption, a column label) as {"html", "tex", "fallbacks"},
    without a paragraph around it."""
    text = " ".join(text.split())
    if not RST_MARKUP.search(text):  # plain text: no need for docutils
        return {"html": html.escape(text, quote=False), "tex": latex_escape(text), "fallbacks": ""}
    tex, fallbacks = rst_to_latex(text, source)
    return {"html": _unwrap_html(rst_to_html(text, source)), "tex": tex, "fallbacks": fallbacks}


# --------------------------------------------------------------------------- the renderer

class Names(dict):
    """A dict whose keys read as attributes too, like Snakemake's ``snakemake.config``/``wildcards``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Renderer:
    """Renders sections (template + data) and figure captions to HTML and LaTeX; collects what the
    LaTeX preamble needs for the docutils commands used."""

    def __init__(self, template_dir, caption_dir, config: dict):
        self.template_dir, self.caption_dir = Path(template_dir), Path(caption_dir)
        self.config = config
        self.latex_fallbacks: list[str] = []
        self.rst_env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.template_dir), undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
            # Values are text, not markup: escaped for reStructuredText. (Autoescaping only marks what the
            # template itself writes, macros and call blocks included, as markup: its HTML escaping never
            # applies, since finalize hands it escaped Markup.)
            autoescape=True, finalize=lambda v: v if isinstance(v, Markup) else Markup(rst_escape(v)),
        )
        self.rst_env.globals["table"] = self.table
        self.rst_env.filters.update(num=fmt, g=lambda v: f"{v:g}", pct=lambda v, digits=2: f"{100 * v:.{digits}f}",
                                    thousands=lambda v: f"{int(v):,}", ranges=number_ranges)
        self.html_env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.template_dir),
                                           undefined=jinja2.StrictUndefined,
                                           autoescape=jinja2.select_autoescape(["html", "html.j2"]))
        self.tex_env = jinja2.Environment(  # LaTeX's braces and # clash with Jinja's defaults
            loader=jinja2.FileSystemLoader(self.template_dir), undefined=jinja2.StrictUndefined,
            block_start_string="<%", block_end_string="%>", variable_start_string="<<", variable_end_string=">>",
            comment_start_string="<#", comment_end_string="#>",
        )
        self.tex_env.filters["e"] = latex_escape
        self.caption_env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.caption_dir),
                                              undefined=jinja2.StrictUndefined)

    def _inline(self, text: str, source: str) -> dict[str, str]:
        out = rst_inline(text, source)
        self._need(out["fallbacks"])
        return out

    def _need(self, fallbacks: str) -> None:
        if fallbacks and fallbacks not in self.latex_fallbacks:
            self.latex_fallbacks.append(fallbacks)

    def table(self, rows: list[dict], caller) -> Markup:
        """A table for a section template's ``{% call table(rows) %}`` block, whose body is the
        caption (reStructuredText) followed by one ``:key: label`` line per column: the label heads
        the column of ``row[key]``. Returns the table as raw HTML and raw LaTeX blocks, each read by
        its own docutils writer only."""
        caption, columns = [], []
        for line in caller().strip().splitlines():
            m = re.fullmatch(r"\s*:(\w+):\s+(.+?)\s*", line)  # not a role, as :math:`x`
            if m:
                columns.append((m.group(1), m.group(2)))
            elif columns:
                raise ValueError(f"table caption text after its columns: {line!r}")
            else:
                caption.append(line)
        if not columns:
            raise ValueError(f"a table needs ':key: label' lines for its columns; got caption {caption!r}")
        keys = [k for k, _ in columns]
        missing = sorted({k for row in rows for k in keys if k not in row})
        if missing:
            raise ValueError(f"table {' '.join(caption)[:60]!r}: rows have no column {missing}")
        cap = self._inline(" ".join(caption), "table caption")
        labels = [self._inline(label, f"column label {key!r}") for key, label in columns]
        cells = [[row[k] for k in keys] for row in rows]
        html_table = self.html_env.get_template("table.html.j2").render(
            caption=Markup(cap["html"]), header=[Markup(x["html"]) for x in labels], rows=cells)
        tex_table = self.tex_env.get_template("table.tex.j2").render(
            caption=cap["tex"], header=[x["tex"] for x in labels], rows=cells)
        return Markup("".join(f"\n\n.. raw:: {fmt_}\n\n{textwrap.indent(body.strip(), '   ')}\n\n"
                              for fmt_, body in (("html", html_table), ("latex", tex_table))))

    def section(self, section: dict) -> dict:
        """A section's title and body in both formats, and its figures with their captions."""
        name = f"sections/{section.get('template', section['id'])}.rst.j2"
        module = self.rst_env.get_template(name).make_module(section["data"])
        title = getattr(module, "title", None)
        if not title:
            raise ValueError(f"{self.template_dir / name} sets no title ({{% set title = ... %}})")
        text = str(module)
        tex, fallbacks = rst_to_latex(text, name)
        self._need(fallbacks)
        return {"id": section["id"], "title": title, "html": rst_to_html(text, name), "tex": tex,
                "figures": [{**fig, **self.caption(fig["caption"], fig.get("wildcards", {}))}
                            for fig in section["figures"]]}

    def caption(self, name: str, wildcards: dict) -> dict[str, str]:
        """The caption file ``<caption_dir>/<name>.rst`` as Snakemake's report renders it (Jinja with
        ``snakemake.config`` and ``snakemake.wildcards``, then reStructuredText), in both formats."""
        snakemake = Names(config=Names(self.config), wildcards=Names(wildcards))
        text = self.caption_env.get_template(f"{name}.rst").render(snakemake=snakemake)
        out = self._inline(text, str(self.caption_dir / f"{name}.rst"))
        return {"caption_html": out["html"], "caption_tex": out["tex"]}


# --------------------------------------------------------------------------- provenance

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


def benchmark_paths(benchmarks_dir) -> list[str]:
    """Snakemake's benchmark files of the finished jobs (not the report's own, still running)."""
    return [str(p) for p in sorted(Path(benchmarks_dir).rglob("*.tsv"))
            if p.relative_to(benchmarks_dir).parts[0] != "report"]


def benchmark_rows(benchmarks_dir, paths=None) -> list[dict]:
    """{job, seconds, max_rss} per job from Snakemake's benchmark files."""
    rows = []
    for path in benchmark_paths(benchmarks_dir) if paths is None else paths:
        record = read_benchmark(path)
        if record:
            rows.append({"job": str(Path(path).relative_to(benchmarks_dir).with_suffix("")),
                         "seconds": fmt(float(record["s"]), 1), "max_rss": fmt(record.get("max_rss", float("nan")), 0)})
    return rows


def provenance_section(*, splits_path, config, benchmarks_dir, model_paths=(), benchmarks=None,
                       record_paths=()) -> dict:
    splits = read_json(splits_path)
    runs = [model_record(p) for p in model_paths]  # the DAG's order: models as configured, then latent, seed
    records = []
    for path in record_paths:  # every run's run.json (dgm.experiments): what produced it
        r = experiments.read_run_record(Path(path).parent)  # its hash as the runs table shows it
        git = r["git"]
        records.append({**{k: v for k, v in run_key(path).items() if k != "dataset"},
                        "point": run_key(path)["point"] or "–", "hash": r["config_hash"],
                        "commit": (git["commit"] or "unknown")[:10] + (" (dirty)" if git["dirty"] else ""),
                        "started": r["started"].replace("T", " ").replace("+00:00", ""),
                        "ended": r["ended"].replace("T", " ").replace("+00:00", "")})
    return {
        "id": "provenance",
        "data": {
            "splits": splits,
            "md5": [{"file": name, "md5": md5} for name, md5 in splits["md5"].items()],
            "seeds": list(config["seeds"]),
            "device": config["device"],
            "runs": [{**{k: r[k] for k in ("model", "latent", "seed", "epochs", "device", "parameters")},
                      "parts": ", ".join(f"{name} {n}" for name, n in r["parts"].items())
                      if r["parts"] else "–"} for r in runs],
            "records": records,
            "packages": [{"package": k, "version": v} for k, v in experiments.package_versions().items()],
            "benchmarks": benchmark_rows(benchmarks_dir, benchmarks),
        },
        "figures": [],
    }


# --------------------------------------------------------------------------- the document

def gather_sections(inputs: dict[str, list[str]]) -> list[dict]:
    """Every model's section in the registry's (the seed study's) order, each spanning section after
    the last model with its capability, then sample quality, sweeps and the comparison."""
    from dgm import registry

    calls = []
    for spec in registry.MODELS.values():
        calls.append(functools.partial(spec.task_module().report_section, inputs, spec))
        for name, capability in SPANNING.items():
            if registry.names(capability)[-1:] == [spec.name]:
                calls.append(functools.partial(importlib.import_module(f"dgm.tasks.{name}").report_section, inputs))
    for name in CLOSING_SECTIONS:
        calls.append(functools.partial(importlib.import_module(f"dgm.tasks.{name}").report_section, inputs))
    return [section for section in (call() for call in calls) if section is not None]


class _ConfigDumper(yaml.SafeDumper):
    """YAML with mappings as blocks and lists of plain values on one line: a compact listing."""


_ConfigDumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=not any(isinstance(x, (list, dict)) for x in data)))


def config_yaml(config: dict) -> str:
    """The run's configuration as YAML (ASCII: non-ASCII characters escaped, so LaTeX's verbatim reads it)."""
    plain = json.loads(json.dumps(config, default=str))
    return yaml.dump(plain, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False, allow_unicode=False,
                     width=52)  # fits a column of the PDF's two-column listing


def build_report(*, title, config, inputs, benchmarks_dir, template_dir, caption_dir, html_path, tex_path) -> dict:
    """Render report.html (images inlined) and report.tex (figures copied beside it)."""
    inputs = {**inputs, "benchmarks": benchmark_paths(benchmarks_dir)}
    sections = gather_sections(inputs)
    sections.append(provenance_section(record_paths=inputs.get("run_records", []),
                                       splits_path=inputs["splits"][0], config=config, benchmarks_dir=benchmarks_dir,
                                       model_paths=inputs.get("models", []), benchmarks=inputs["benchmarks"]))
    renderer = Renderer(template_dir, caption_dir, config)
    rendered = [renderer.section(s) for s in sections]
    figures = [fig for s in rendered for fig in s["figures"]]
    for i, fig in enumerate(figures, start=1):
        fig["number"] = i
        fig["label"] = Path(fig["path"]).stem
        fig["data_uri"] = "data:image/png;base64," + base64.b64encode(Path(fig["path"]).read_bytes()).decode()
        # LaTeX takes the vector PDF that every figure rule writes beside its PNG, when present.
        vector = Path(fig["path"]).with_suffix(".pdf")
        fig["source"] = vector if vector.exists() else Path(fig["path"])
        fig["tex_path"] = f"figures/{fig['source'].name}"
    ctx = {
        "title": title,
        "sections": rendered,
        "commit": git_commit(Path(template_dir).resolve().parent),  # the pipeline checkout, not the workdir
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "config_yaml": config_yaml(config),
        "latex_fallbacks": renderer.latex_fallbacks,
    }
    io.write_text(html_path, renderer.html_env.get_template("template.html").render(**ctx))
    tex_dir = Path(tex_path).parent
    (tex_dir / "figures").mkdir(parents=True, exist_ok=True)
    for fig in figures:
        shutil.copyfile(fig["source"], tex_dir / fig["tex_path"])
    io.write_text(tex_path, renderer.tex_env.get_template("template.tex").render(**ctx))
    log.info("wrote %s and %s: %d sections, %d figures", html_path, tex_path, len(sections), len(figures))
    return ctx
