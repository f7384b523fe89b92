"""Rule evaluate_elbo: test-set negative ELBO of a trained latent-variable model."""
from dgm.entry import start_torch_job

log = start_torch_job(snakemake)

from dgm.tasks.vae import evaluate_vae  # noqa: E402

result = evaluate_vae(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    per_image_path=snakemake.output.per_image,
    device=snakemake.params.device,
    batch_size=snakemake.params.batch_size,
)
log.info("test: %s", result)
