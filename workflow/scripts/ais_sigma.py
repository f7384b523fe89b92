"""Rule ais_sigma: the Gaussian observation noise of a decoder model, chosen on validation images by AIS."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.ais import choose_sigma  # noqa: E402

choose_sigma(model_path=snakemake.input.model, splits_path=snakemake.input.splits,
             output_path=snakemake.output.sigma, cfg=dict(snakemake.params.cfg), device=snakemake.params.device)
