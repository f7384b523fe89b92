"""Rule evaluate_flow: test-set bits per dimension of a trained RealNVP (K dequantisation draws)."""
from dgm.entry import start_torch_job

log = start_torch_job(snakemake)

from dgm.tasks.flow import evaluate_flow  # noqa: E402

result = evaluate_flow(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    k=snakemake.params.k,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    batch_size=snakemake.params.batch_size,
)
log.info("test: %s", result)
