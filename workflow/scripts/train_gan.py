"""Rule train_gan: one GAN per latent size and seed."""
from dgm.entry import start_torch_job, training_args

start_torch_job(snakemake)

from dgm.tasks.gan import train_gan  # noqa: E402

p = snakemake.params
train_gan(**training_args(snakemake), latent_dim=p.latent_dim, hidden_dim=p.hidden_dim, betas=tuple(p.betas),
          snapshot_epochs=p.snapshot_epochs)
