"""Rule quality_reference: every sample-quality metric of real images, the floor for model samples."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.quality import quality_reference  # noqa: E402

p = snakemake.params
quality_reference(
    classifier_path=snakemake.input.classifier,
    features_path=snakemake.input.features,
    classifier_metrics_path=snakemake.input.classifier_metrics,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output[0],
    n_samples=p.n_samples,
    sigmas=p.sigmas,
    metrics=dict(p.metrics),
    seed=p.seed,
    device=p.device,
    batch_size=p.batch_size,
)
