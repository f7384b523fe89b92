"""Rule evaluate_density: test log-likelihood and bits per dimension of any density model (a flow's
from K dequantisation draws)."""
from dgm.entry import start_torch_job

log = start_torch_job(snakemake)

from dgm.tasks.likelihood import evaluate_density  # noqa: E402

result = evaluate_density(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    per_image_path=snakemake.output.per_image,
    k=snakemake.params.k,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    batch_size=snakemake.params.batch_size,
)
log.info("test: %s", result)
