"""Rule import_model: a model the pipeline did not train (config ``external``) loaded, checked verb by
verb on test images, and written as the model file every evaluation rule reads."""
from pathlib import Path

from dgm.entry import start_torch_job

log = start_torch_job(snakemake)

from dgm.external import import_model  # noqa: E402

p, out = snakemake.params, snakemake.output
result = import_model(
    name=p.name,
    entry=dict(p.entry),
    splits_path=snakemake.input.splits,
    model_path=out.model,
    conformance_path=out.conformance,
    record_path=out.record,
    run_config=dict(p.run_config),
    n_samples=p.n_samples,
    device=p.device,
    repo_dir=Path(snakemake.scriptdir).parent.parent,
)
log.info("%s: %s", p.name, {k: v for k, v in result.items() if k != "checks"})
