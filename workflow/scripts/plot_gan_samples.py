"""Rule plot_gan_samples: 25 samples at each configured epoch (seed Fig. 4)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.common import plot_snapshot_grids  # noqa: E402

plot_snapshot_grids(snapshots_path=snakemake.input.snapshots, epochs=snakemake.params.epochs,
                    output_path=snakemake.output[0], suptitle=f"GAN, z = {snakemake.wildcards.latent}")
