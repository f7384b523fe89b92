"""Rule plot_interpolation: chained walks between prior draws, decoded by any decoder model."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.interpolation import plot_interpolation  # noqa: E402

s = snakemake.params.settings
plot_interpolation(model_path=snakemake.input.model, output_path=snakemake.output.png, rows=s["rows"],
                   steps=s["steps"], methods=list(s["methods"]), seed=snakemake.params.seed)
