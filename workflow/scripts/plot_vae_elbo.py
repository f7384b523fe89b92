"""Rule plot_vae_elbo: train/validation ELBO per epoch for every latent size (seed Fig. 1)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

import pandas as pd  # noqa: E402

from dgm import plotting  # noqa: E402

curves = {f"z = {z}": pd.read_csv(path) for z, path in zip(snakemake.params.latent_sizes, snakemake.input.metrics)}
plotting.plot_elbo_curves(curves, snakemake.output[0])
