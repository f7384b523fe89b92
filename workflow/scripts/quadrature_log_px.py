"""Rule quadrature: near-exact log p(x) of a z = 2 VAE on the sweep's test images, in float64."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see evaluate_test_nll.py

from dgm.entry import claim_gpu, start_log  # noqa: E402

log = start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.likelihood import quadrature  # noqa: E402

torch.set_num_threads(snakemake.threads)
quadrature(
    model_path=snakemake.input.model,
    splits_path=snakemake.input.splits,
    output_path=snakemake.output.metrics,
    n_images=snakemake.params.n_images,
    batch_size=snakemake.params.batch_size,
    points_per_dim=snakemake.params.points_per_dim,
    levels=snakemake.params.levels,
    tol=snakemake.params.tol,
    max_points_per_dim=snakemake.params.max_points_per_dim,
    chunk_size=snakemake.params.chunk_size,
    device=snakemake.params.device,
)
