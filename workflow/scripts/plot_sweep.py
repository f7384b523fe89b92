"""Rule plot_sweep: every metric of one model against one swept hyperparameter."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.experiments import plot_sweep  # noqa: E402

plot_sweep(summary_path=snakemake.input.summary, model=snakemake.wildcards.model, key=snakemake.wildcards.key,
           output_path=snakemake.output.png)
