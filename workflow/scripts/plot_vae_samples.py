"""Rule plot_latent_samples: 16 prior samples of a latent-variable model at each configured epoch (seed Fig. 2)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.common import plot_snapshot_grids  # noqa: E402

plot_snapshot_grids(snapshots_path=snakemake.input.snapshots, epochs=snakemake.params.epochs,
                    output_path=snakemake.output[0],
                    suptitle=f"{snakemake.params.title}, z = {snakemake.wildcards.latent}")
