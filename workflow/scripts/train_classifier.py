"""Rule train_classifier: the digit CNN whose features define the sample-quality FID."""
from dgm.entry import start_torch_job, training_settings

start_torch_job(snakemake)

from dgm.tasks.quality import train_classifier  # noqa: E402

train_classifier(
    splits_path=snakemake.input.splits,
    model_path=snakemake.output.model,
    metrics_path=snakemake.output.metrics,
    **training_settings(snakemake.params),
)
