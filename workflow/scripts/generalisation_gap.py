"""Rule generalisation_gap: log p(x) of training images against test images, by the model's own estimator."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.likelihood import generalisation_gap  # noqa: E402

p = snakemake.params
generalisation_gap(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    per_image_path=snakemake.output.per_image,
    n_images=p.n_images,
    k=p.k,
    batch_size=p.batch_size,
    chunk_size=p.chunk_size,
    seed=p.seed,
    binarize_seed=p.binarize_seed,
    device=p.device,
)
