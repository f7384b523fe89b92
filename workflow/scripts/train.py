"""Rules train_<model>: one training run of any registered model (dgm.registry) per latent size and seed."""
from dgm.entry import start_torch_job, train_model

start_torch_job(snakemake)
train_model(snakemake)
