"""Rule evaluate_flow: test-set bits per dimension of a trained RealNVP (K dequantisation draws)."""
from dgm.entry import claim_gpu, start_log

log = start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.flow import evaluate_flow  # noqa: E402

torch.set_num_threads(snakemake.threads)
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
