"""Rule train_flow: one RealNVP per seed."""
import os

from dgm.entry import claim_gpu, start_log

start_log(snakemake.log[0])
p, out = snakemake.params, snakemake.output
kill_after = os.environ.get("DGM_KILL_AFTER_EPOCH")  # fault injection for the resume tests

claim_gpu()  # before torch touches CUDA: a GPU no other running job of this workflow holds

import torch  # noqa: E402

from dgm.tasks.flow import train_flow  # noqa: E402

torch.set_num_threads(snakemake.threads)
train_flow(
    splits_path=snakemake.input.splits,
    model_path=out.model,
    metrics_path=out.metrics,
    snapshots_path=out.snapshots,
    sample_paths=dict(zip(p.sample_epochs, out.samples)),
    n_blocks=p.n_blocks,
    hidden_dim=p.hidden_dim,
    alpha=p.alpha,
    learned_scale=p.learned_scale,
    epochs=p.epochs,
    batch_size=p.batch_size,
    lr=p.lr,
    grad_clip=p.grad_clip,
    seed=p.seed,
    sample_epochs=p.sample_epochs,
    device=p.device,
    eval_batch_size=p.eval_batch_size,
    kill_after_epoch=int(kill_after) if kill_after else None,
)
