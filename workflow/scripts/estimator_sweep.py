"""Rule estimator_sweep: importance sampling against naive Monte Carlo for each K, with repeats."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see evaluate_test_nll.py

from dgm.entry import claim_gpu, start_log  # noqa: E402

log = start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.likelihood import estimator_sweep  # noqa: E402

torch.set_num_threads(snakemake.threads)
estimator_sweep(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.sweep,
    ks=snakemake.params.ks,
    n_images=snakemake.params.n_images,
    repeats=snakemake.params.repeats,
    batch_size=snakemake.params.batch_size,
    chunk_size=snakemake.params.chunk_size,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
)
