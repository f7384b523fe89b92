"""Rule plot_interpolation as a plain function: chained walks between draws from the standard-normal
prior, decoded by any decoder model (``decode(z)``; dgm.registry capability ``decoder``): the GAN's
seed Fig. 6, the flow's Fig. 9, and the same figure for every VAE-family or external decoder."""
from __future__ import annotations

import torch

from dgm import plotting, registry, training
from dgm.distributions import interpolate_latents
from dgm.models import load_model


@torch.inference_mode()
def interpolation_rows(model, *, rows: int, steps: int, methods: list[str], generator: torch.Generator
                       ) -> dict[str, torch.Tensor]:
    """rows + 1 prior draws z_0..z_rows; row i walks from z_i to z_{i+1} in ``steps`` points (both ends
    included, ``dgm.distributions.interpolate_latents``), the same endpoints for every method. Returns
    {method: images (rows, steps, 1, 28, 28)} in [0, 1]."""
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    device = training.device_of(model)
    dtype = next((p.dtype for p in (*model.parameters(), *model.buffers()) if p.is_floating_point()), torch.float32)
    ends = torch.randn(rows + 1, model.latent_dim, generator=generator, device=generator.device).to(device, dtype)
    out = {}
    for method in methods:
        z = torch.stack([interpolate_latents(ends[i], ends[i + 1], steps, method) for i in range(rows)])  # (R, S, Z)
        out[method] = model.decode(z.flatten(0, 1)).reshape(rows, steps, 1, 28, 28).float().cpu()
    return out


def plot_interpolation(*, model_path: str, output_path: str, rows: int, steps: int, methods: list[str], seed: int,
                       device: str = "cpu") -> None:
    """The figure: one panel of ``rows`` walks per method, for any decoder model."""
    model = load_model(model_path, training.select_device(device))
    images = interpolation_rows(model, rows=rows, steps=steps, methods=methods,
                                generator=torch.Generator().manual_seed(seed))
    title = registry.spec_of(model).title
    plotting.save_interpolations(images, output_path, suptitle=f"{title}, z = {model.latent_dim}: "
                                 f"{steps - 2} steps between endpoints")
