"""Rule memorisation: does a model that samples copy its training set? (dgm.tasks.memorisation)"""
from dgm.entry import start_torch_job

start_torch_job(snakemake)

from dgm.tasks.memorisation import memorisation  # noqa: E402

p = snakemake.params
memorisation(
    model_path=snakemake.input.model,
    classifier_path=snakemake.input.classifier,
    features_path=snakemake.input.features,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    figure_path=snakemake.output.png,
    n_samples=p.n_samples,
    seed=p.seed,
    batch_size=p.batch_size,
    device=p.device,
)
