"""Rule plot_likelihood_sweep: log p(x) estimates against K for every latent size, with the ELBO and quadrature."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.likelihood import plot_sweeps  # noqa: E402

plot_sweeps(sweep_paths=snakemake.input.sweeps, quadrature_paths=snakemake.input.quadrature,
            output_path=snakemake.output.png)
