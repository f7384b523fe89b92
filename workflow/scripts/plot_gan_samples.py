"""Rule plot_gan_samples: 25 samples at each configured epoch (seed Fig. 4)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.gan import plot_samples  # noqa: E402

plot_samples(snapshots_path=snakemake.input.snapshots, epochs=snakemake.params.epochs,
             output_path=snakemake.output[0], latent_dim=int(snakemake.wildcards.latent))
