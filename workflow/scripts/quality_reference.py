"""Rule quality_reference: FID and Parzen of real images, the floor for model samples."""
from dgm.entry import claim_gpu, start_log

start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.quality import quality_reference  # noqa: E402

p = snakemake.params
torch.set_num_threads(snakemake.threads)
quality_reference(
    classifier_path=snakemake.input.classifier,
    classifier_metrics_path=snakemake.input.classifier_metrics,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output[0],
    n_samples=p.n_samples,
    sigmas=p.sigmas,
    seed=p.seed,
    device=p.device,
    batch_size=p.batch_size,
)
