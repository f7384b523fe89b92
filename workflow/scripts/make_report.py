"""Rule report: gather this run's metrics and figures into report.html and report.tex."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.report import build_report  # noqa: E402

p = snakemake.params
build_report(
    title=p.title,
    config=dict(p.config),
    inputs={name: list(paths) if isinstance(paths, list) else [paths] for name, paths in snakemake.input.items()},
    benchmarks_dir=p.benchmarks_dir,
    template_dir=p.template_dir,
    caption_dir=p.caption_dir,
    html_path=snakemake.output.html,
    tex_path=snakemake.output.tex,
)
