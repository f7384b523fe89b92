"""Rule ais: annealed importance sampling of a decoder model's log p(x) on test images, and the AIS-vs-steps sweep."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.ais import ais  # noqa: E402

ais(model_path=snakemake.input.model, splits_path=snakemake.input.splits, sigma_path=snakemake.input.sigma,
    output_path=snakemake.output.metrics, sweep_path=snakemake.output.sweep, per_image_path=snakemake.output.per_image,
    cfg=dict(snakemake.params.cfg), k=snakemake.params.k, quadrature=dict(snakemake.params.quadrature),
    device=snakemake.params.device)
