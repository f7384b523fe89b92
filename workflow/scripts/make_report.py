"""Rule report: gather this run's metrics and figures into report.html and report.tex."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.report import build_report  # noqa: E402

inp, p = snakemake.input, snakemake.params
build_report(
    title=p.title,
    config=dict(p.config),
    splits_path=inp.splits,
    vae_metrics=list(inp.vae_metrics),
    vae_tests=list(inp.vae_tests),
    figures=list(inp.figures),
    benchmarks_dir=p.benchmarks_dir,
    html_template=p.html_template,
    tex_template=p.tex_template,
    html_path=snakemake.output.html,
    tex_path=snakemake.output.tex,
)
