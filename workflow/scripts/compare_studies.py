"""Rule compare: this study's metrics and training curves against config compare.baseline."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.experiments import compare  # noqa: E402

compare(runs_path=snakemake.input.runs, baseline=snakemake.params.baseline, output_path=snakemake.output.tsv,
        curve_paths=dict(zip(snakemake.params.models, snakemake.output.curves)))
