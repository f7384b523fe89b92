"""Rule plot_model_interpolation: interpolations between prior draws through an external decoder."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.external import plot_interpolation  # noqa: E402

plot_interpolation(model_path=snakemake.input.model, output_path=snakemake.output.png, seed=snakemake.params.seed)
