"""Rule plot_latent_gap: importance sampling against naive Monte Carlo over the latent size (seed §1.4b)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.experiments import latent_gap  # noqa: E402

latent_gap(sweep_paths=list(snakemake.input.sweeps), k=snakemake.params.k, output_csv=snakemake.output.csv,
           output_png=snakemake.output.png, title=snakemake.params.title)
