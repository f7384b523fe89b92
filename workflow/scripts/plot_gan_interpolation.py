"""Rule plot_gan_interpolation: rows of latent interpolations, linear and spherical (seed Fig. 6)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.gan import plot_interpolation  # noqa: E402

p = snakemake.params
plot_interpolation(model_path=snakemake.input.model, output_path=snakemake.output[0], rows=p.rows, steps=p.steps,
                   methods=list(p.methods), seed=p.seed)
