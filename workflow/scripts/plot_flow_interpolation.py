"""Rule plot_flow_interpolation: walks between prior draws in the flow's latent space (seed Fig. 9)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.flow import plot_interpolations  # noqa: E402

p = snakemake.params
plot_interpolations(model_path=snakemake.input.model, output_path=snakemake.output[0], rows=p.rows, steps=p.steps,
                    method=p.method, seed=p.seed)
