"""Rule plot_quality_sample_size: FID and KID against the number of samples, every scored run."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.quality import plot_sample_size  # noqa: E402

plot_sample_size(quality_paths=list(snakemake.input.runs), output_path=snakemake.output.png)
