import pandas as pd
import pytest
import torch
from scipy.stats import norm

from dgm import plotting


def test_tile_layout_and_padding():
    images = torch.zeros(5, 1, 28, 28)
    images[4] = 1.0
    arr = plotting.tile(images, nrow=3, pad=2)
    assert arr.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert arr[32:60, 32:60].min() == 1.0  # the fifth image sits at row 1, column 1
    assert arr[2:30, 2:30].max() == 0.0


def test_manifold_latents_are_prior_quantiles():
    z = plotting.manifold_latents(5, eps=0.1)
    assert z.shape == (25, 2)
    expected = norm.ppf([0.1, 0.3, 0.5, 0.7, 0.9])
    assert z[:5, 0].tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    assert z[0, 1].item() == pytest.approx(expected[-1], abs=1e-5)  # top row has the largest z2


def test_figures_are_written(tmp_path):
    plotting.save_grid(torch.rand(16, 1, 28, 28), tmp_path / "g.png", nrow=4, title="t")
    plotting.save_grids_over_epochs({0: torch.rand(4, 1, 28, 28), 5: torch.rand(4, 1, 28, 28)}, tmp_path / "e.png")
    plotting.save_manifolds({0: torch.rand(9, 1, 28, 28)}, 3, tmp_path / "m.png")
    df = pd.DataFrame({"epoch": [0, 1, 2], "train_nelbo": [float("nan"), 200, 150], "valid_nelbo": [300, 210, 160]})
    plotting.plot_elbo_curves({"z = 2": [df], "z = 20": [df, df]}, tmp_path / "c.png")
    for name in ("g", "e", "m", "c"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
