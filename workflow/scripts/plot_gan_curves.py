"""Rule plot_gan_curves: D and G losses with their equilibrium values, and D's outputs, over the seeds (seed Fig. 5)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.gan import plot_curves  # noqa: E402

plot_curves(metrics_paths=list(snakemake.input.metrics), output_path=snakemake.output.png)
