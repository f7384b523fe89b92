"""Rule train_flow: one RealNVP per seed."""
from dgm.entry import start_torch_job, training_args

start_torch_job(snakemake)

from dgm.tasks.flow import train_flow  # noqa: E402

p = snakemake.params
train_flow(**training_args(snakemake), n_blocks=p.n_blocks, hidden_dim=p.hidden_dim, alpha=p.alpha,
           learned_scale=p.learned_scale, grad_clip=p.grad_clip, sample_epochs=p.sample_epochs)
