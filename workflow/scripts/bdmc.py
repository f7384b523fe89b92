"""Rule bdmc: bidirectional Monte Carlo on data simulated from a decoder model (lower and upper bounds, gap)."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.ais import bdmc  # noqa: E402

bdmc(model_path=snakemake.input.model, sigma_path=snakemake.input.sigma, output_path=snakemake.output.metrics,
     cfg=dict(snakemake.params.cfg), device=snakemake.params.device)
