"""Rule quadrature: near-exact log p(x) of a z = 2 VAE on the sweep's test images, in float64."""
from dgm.entry import start_torch_job

start_torch_job(snakemake, passive_omp=True)

from dgm.tasks.likelihood import quadrature  # noqa: E402

quadrature(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    per_image_path=snakemake.output.per_image,
    n_images=snakemake.params.n_images,
    batch_size=snakemake.params.batch_size,
    points_per_dim=snakemake.params.points_per_dim,
    levels=snakemake.params.levels,
    tol=snakemake.params.tol,
    max_points_per_dim=snakemake.params.max_points_per_dim,
    chunk_size=snakemake.params.chunk_size,
    device=snakemake.params.device,
)
