"""Rule train_vae: one VAE per latent size and seed."""
from dgm.entry import start_torch_job, training_args

start_torch_job(snakemake)

from dgm.tasks.vae import train_vae  # noqa: E402

p = snakemake.params
train_vae(**training_args(snakemake), latent_dim=p.latent_dim, hidden_dim=p.hidden_dim,
          snapshot_epochs=p.snapshot_epochs, sample_mode=p.sample_mode)
