"""Rule sample_quality: every sample-quality metric (dgm.tasks.quality.Scorer) of one trained model."""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.quality import sample_quality  # noqa: E402

p, inp = snakemake.params, snakemake.input
sample_quality(
    model_path=inp.model,
    classifier_path=inp.classifier,
    features_path=inp.features,
    splits_path=inp.splits,
    output_path=snakemake.output[0],
    n_samples=p.n_samples,
    sigmas=p.sigmas,
    metrics=dict(p.metrics),
    seed=p.seed,
    snapshots_path=inp.get("snapshots"),
    snapshot_epochs=p.snapshot_epochs,
    device=p.device,
    batch_size=p.batch_size,
)
