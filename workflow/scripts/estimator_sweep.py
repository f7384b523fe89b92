"""Rule estimator_sweep: importance sampling against naive Monte Carlo for each K, with repeats."""
from dgm.entry import start_torch_job

start_torch_job(snakemake, passive_omp=True)

from dgm.tasks.likelihood import estimator_sweep  # noqa: E402

estimator_sweep(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.sweep,
    per_image_path=snakemake.output.per_image,
    ks=snakemake.params.ks,
    n_images=snakemake.params.n_images,
    repeats=snakemake.params.repeats,
    batch_size=snakemake.params.batch_size,
    chunk_size=snakemake.params.chunk_size,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
)
