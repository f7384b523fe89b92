"""Rule train_classifier: the digit CNN whose features define the sample-quality FID."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.quality import train_classifier  # noqa: E402

train_classifier(
    splits_path=snakemake.input.splits,
    model_path=snakemake.output.model,
    metrics_path=snakemake.output.metrics,
    curve_path=snakemake.output.curve,
    features_path=snakemake.output.features,
    cfg=dict(snakemake.params.cfg),
    device=snakemake.params.device,
    eval_batch_size=snakemake.params.eval_batch_size,
)
