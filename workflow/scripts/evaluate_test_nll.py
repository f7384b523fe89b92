"""Rule test_nll: test-set -ELBO and importance-sampled NLL (K samples per image) of a trained VAE."""
import os

# Before torch loads OpenMP: idle worker threads sleep instead of spinning, which on a shared CPU
# halves the wall time of the estimators' many short parallel regions (tests/bench/bench_likelihood.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dgm.entry import claim_gpu, start_log  # noqa: E402

log = start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.likelihood import test_nll  # noqa: E402

torch.set_num_threads(snakemake.threads)
test_nll(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    k=snakemake.params.k,
    batch_size=snakemake.params.batch_size,
    chunk_size=snakemake.params.chunk_size,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
)
