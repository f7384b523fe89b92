"""Rule plot_elbo: train/validation ELBO per epoch of a latent-variable model for every latent size, over the
seeds (seed Fig. 1)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm import plotting  # noqa: E402
from dgm.results import metrics_by_latent  # noqa: E402

curves = {f"z = {z}": frames for z, frames in metrics_by_latent(snakemake.input.metrics).items()}
plotting.plot_elbo_curves(curves, snakemake.output.png)
