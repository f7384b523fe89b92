"""Rule plot_vae_manifold: the learned 2-D manifold at several epochs (seed Fig. 3)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

import torch  # noqa: E402

from dgm import plotting  # noqa: E402
from dgm.vae import VAE, VAEConfig  # noqa: E402

snapshots = torch.load(snakemake.input.snapshots, map_location="cpu", weights_only=True)
n = snakemake.params.size
z = plotting.manifold_latents(n)
images = {}
for epoch in snakemake.params.epochs:
    state = snapshots[epoch]["model"]
    model = VAE(VAEConfig(latent_dim=2, hidden_dim=state["decoder.0.weight"].shape[0]))
    model.load_state_dict(state)
    images[epoch] = model.decode_mean(z)
plotting.save_manifolds(images, n, snakemake.output[0])
