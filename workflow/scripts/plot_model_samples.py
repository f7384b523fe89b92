"""Rule plot_model_samples: a grid of samples of an external model."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.external import plot_samples  # noqa: E402

plot_samples(model_path=snakemake.input.model, output_path=snakemake.output.png, seed=snakemake.params.seed)
