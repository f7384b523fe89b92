"""Tests for dgm.tasks.trust: model-against-model differences paired on the same images."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dgm import io
from dgm.tasks import trust


def _write(root, model, latent, nll, images=None):
    path = root / f"results/mnist/{model}/z{latent}/seed0/test_nll.npz"
    io.write_arrays(path, {"image": np.arange(len(nll)) if images is None else images, "nll": nll, "nelbo": nll + 5})
    return str(path)


def test_paired_rows_give_the_mean_per_image_difference_and_both_errors(tmp_path):
    rng = np.random.default_rng(1)
    hard = rng.normal(100.0, 15.0, 200)  # how hard each image is: shared by both models
    vae = _write(tmp_path, "vae", 20, hard + rng.normal(0, 0.3, 200))
    iwae = _write(tmp_path, "iwae", 20, hard - 1.0 + rng.normal(0, 0.3, 200))
    other = _write(tmp_path, "gan", 8, hard[:100])  # other images: not paired with the others
    rows = trust.paired_rows([vae, iwae, other])
    assert len(rows) == 1
    row = rows[0]
    a, b = -np.load(vae)["nll"], -np.load(iwae)["nll"]  # log p(x) = -NLL
    assert row["difference"] == pytest.approx((b - a).mean()) and row["images"] == 200
    assert row["paired_se"] == pytest.approx((b - a).std(ddof=1) / math.sqrt(200))
    assert row["unpaired_se"] == pytest.approx(math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 200))
    assert row["beyond_noise"] == "yes" and row["beyond_unpaired"] == "no"  # a 1-nat gain, hidden by the spread


def test_a_model_against_itself_is_no_difference(tmp_path):
    values = np.linspace(80, 120, 30)
    rows = trust.paired_rows([_write(tmp_path, "vae", 2, values), _write(tmp_path / "b", "iwae", 2, values)])
    assert rows[0]["difference"] == 0.0 and rows[0]["paired_se"] == 0.0 and rows[0]["beyond_noise"] == "no"


def test_likelihoods_of_other_pixels_are_not_paired(tmp_path):
    values = np.linspace(80, 120, 30)
    flow = tmp_path / "results/mnist/flow/z784/seed0/test_metrics.npz"  # 8-bit pixels
    io.write_arrays(flow, {"image": np.arange(30), "nll": values * 10})
    vae = _write(tmp_path, "vae", 2, values)  # binarised pixels: test_nll.npz, another estimate anyway
    iwae = tmp_path / "results/mnist/iwae/z2/seed0/test_metrics.npz"  # binarised pixels, the same estimate as flow's
    io.write_arrays(iwae, {"image": np.arange(30), "nll": values})  # as a binarised density would write
    assert trust.paired_rows([str(flow), vae, str(iwae)]) == []
