"""Rule test_nll: test-set -ELBO and importance-sampled NLL (K samples per image) of a trained VAE."""
from dgm.entry import start_torch_job

start_torch_job(snakemake, passive_omp=True)

from dgm.tasks.likelihood import test_nll  # noqa: E402

test_nll(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    per_image_path=snakemake.output.per_image,
    k=snakemake.params.k,
    batch_size=snakemake.params.batch_size,
    chunk_size=snakemake.params.chunk_size,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
)
