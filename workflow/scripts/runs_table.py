"""Rule runs: the table of every run of this configuration (runs.tsv, runs_summary.tsv, runs.html)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.experiments import runs_table  # noqa: E402

expected = dict(snakemake.params.expected)
runs_table(run_dirs=list(expected), expected=expected, tsv_path=snakemake.output.tsv,
           summary_path=snakemake.output.summary, html_path=snakemake.output.html)
