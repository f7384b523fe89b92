"""Rule evaluate_vae: test-set negative ELBO of a trained VAE."""
from dgm.entry import claim_gpu, start_log

log = start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.vae import evaluate_vae  # noqa: E402

torch.set_num_threads(snakemake.threads)
result = evaluate_vae(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    device=snakemake.params.device,
    batch_size=snakemake.params.batch_size,
)
log.info("test: %s", result)
