"""Rule plot_ais_sweep: AIS log p(x) against the number of intermediate distributions, every latent size."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.ais import plot_sweep  # noqa: E402

plot_sweep(sweep_paths=list(snakemake.input.sweeps), output_path=snakemake.output.png, title=snakemake.params.title)
