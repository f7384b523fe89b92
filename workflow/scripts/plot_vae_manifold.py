"""Rule plot_manifold: the learned 2-D manifold of a latent-variable model at several epochs (seed Fig. 3)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

import torch  # noqa: E402

from dgm import plotting  # noqa: E402
from dgm.models import from_checkpoint  # noqa: E402

description = torch.load(snakemake.input.model, map_location="cpu", weights_only=True)["model"]
snapshots = torch.load(snakemake.input.snapshots, map_location="cpu", weights_only=True)
n = snakemake.params.size
z = plotting.manifold_latents(n)
images = {}
for epoch in snakemake.params.epochs:
    model = from_checkpoint({"model": description, "state_dict": snapshots[epoch]["model"]})
    images[epoch] = model.decode(z)
plotting.save_manifolds(images, n, snakemake.output[0])
