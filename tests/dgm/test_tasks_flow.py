"""Tests for dgm.tasks.flow: the test-set evaluation, the interpolation figure's latents and the
report section, on a small flow saved the way train_flow saves it."""
import csv
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import synthetic_digits
from dgm import io
from dgm.flow import RealNVP
from dgm.tasks import flow as tasks
from dgm.tasks.likelihood import evaluate_density

SMALL = dict(n_blocks=2, hidden_dim=16)


def _small_flow(seed=0) -> RealNVP:
    torch.manual_seed(seed)
    model = RealNVP(**SMALL)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-zero last layers: couplings that are not the identity
        for layer in model.flow.transforms:
            for p in layer.net[-1].parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model.eval()


@pytest.fixture()
def saved(tmp_path):
    model = _small_flow()
    model_path, splits_path = tmp_path / "model.pt", tmp_path / "splits.pt"
    io.torch_save({"version": 1, "model": model.describe(), "state_dict": model.state_dict(), "epoch": 2,
                   "options": {}, "data": {}, "device": "cpu"}, model_path)
    images = torch.from_numpy(synthetic_digits(30, seed=5)[0])  # (30, 28, 28) uint8
    io.torch_save({"test_images": images, "meta": {}}, splits_path)
    return model, model_path, splits_path, images


def test_load_flow_round_trips_the_model_file(saved):
    model, model_path, _, images = saved
    loaded = tasks.load_flow(model_path)
    x = images[:4].reshape(4, -1)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(loaded.log_prob(x, g()), model.log_prob(x, g()))


def test_evaluate_density_of_the_flow_is_the_mean_bpd_with_its_standard_error(saved, tmp_path):
    model, model_path, splits_path, images = saved
    out = tmp_path / "test.json"
    result = evaluate_density(model_path=str(model_path), splits_path=str(splits_path), output_path=str(out),
                                 k=1, seed=3, device="cpu", batch_size=7)
    expected = model.bpd(images.reshape(30, -1), torch.Generator().manual_seed(3)).double()  # one batch, same draws
    assert result == json.loads(out.read_text())
    assert result["n_test"] == 30 and result["k"] == 1 and "test_bpd_k1" not in result
    assert result["test_bpd"] == pytest.approx(expected.mean().item(), rel=1e-6)
    assert result["test_bpd_stderr"] == pytest.approx((expected.std() / math.sqrt(30)).item(), rel=1e-4)
    assert result["test_nll"] == pytest.approx(result["test_bpd"] * 784 * math.log(2))
    assert result["parameters"] == model.describe()["n_parameters"]

    k4 = evaluate_density(model_path=str(model_path), splits_path=str(splits_path), output_path=str(out),
                             k=4, seed=3, device="cpu", batch_size=30)
    assert k4["k"] == 4 and k4["test_bpd_k1"] == pytest.approx(result["test_bpd"], rel=1e-6)
    with pytest.raises(ValueError, match="eval_k"):
        evaluate_density(model_path=str(model_path), splits_path=str(splits_path), output_path=str(out), k=0)


def test_evaluate_density_of_the_flow_refuses_binarised_or_float_images(saved, tmp_path):
    _, model_path, splits_path, images = saved
    io.torch_save({"test_images": images.float(), "meta": {}}, splits_path)
    with pytest.raises(ValueError, match="uint8"):
        evaluate_density(model_path=str(model_path), splits_path=str(splits_path),
                            output_path=str(tmp_path / "t.json"), device="cpu")


def test_load_flow_refuses_another_model(tmp_path):
    from dgm.vae import VAE

    vae = VAE(latent_dim=2, hidden_dim=8)
    io.torch_save({"model": vae.describe(), "state_dict": vae.state_dict()}, tmp_path / "vae.pt")
    with pytest.raises(ValueError, match="not a RealNVP"):
        tasks.load_flow(tmp_path / "vae.pt")


@pytest.mark.parametrize("method", ["linear", "cdf"])
def test_the_flows_interpolations_chain_rows_and_decode_to_images(method):
    from dgm.tasks.interpolation import interpolation_rows

    model = _small_flow()
    images = interpolation_rows(model, rows=3, steps=5, methods=[method], generator=torch.Generator().manual_seed(0))
    rows = images[method]
    assert rows.shape == (3, 5, 1, 28, 28) and rows.min() >= 0 and rows.max() <= 1
    # Each row starts where the last ended.
    assert torch.equal(rows[0, -1], rows[1, 0]) and torch.equal(rows[1, -1], rows[2, 0])
    z = torch.randn(4, 784, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rows[0, 0].flatten(), model.decode_pixels(z[:1])[0] / 255)  # the ends are the prior draws
    again = interpolation_rows(model, rows=3, steps=5, methods=[method], generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[method], rows)
    with pytest.raises(ValueError, match="rows"):
        interpolation_rows(model, rows=0, steps=5, methods=[method], generator=torch.Generator())


def _write_run(folder, seed, valid_bpds):
    run = folder / f"results/mnist/flow/z784/seed{seed}"
    run.mkdir(parents=True)
    with open(run / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["epoch", "valid_bpd", "train_bpd", "train_seconds"])
        w.writeheader()
        for epoch, v in enumerate(valid_bpds):
            w.writerow({"epoch": epoch, "valid_bpd": v, "train_bpd": "" if epoch == 0 else v + 0.1,
                        "train_seconds": "" if epoch == 0 else 10.0 + epoch + seed})
    (run / "test_metrics.json").write_text(json.dumps(
        {"test_bpd": valid_bpds[-1] + 0.01, "test_bpd_stderr": 0.004, "k": 1, "test_nll": 1000.0, "parameters": 7}))
    model = _small_flow(seed)
    io.torch_save({"model": model.describe(), "state_dict": model.state_dict(), "epoch": len(valid_bpds) - 1,
                   "options": {"lr": 1e-3, "batch_size": 64, "grad_clip": 5.0}, "device": "cpu"}, run / "model.pt")
    return str(run / "metrics.csv"), str(run / "test_metrics.json"), str(run / "model.pt")


def test_report_section_shows_our_bpd_beside_the_seed(tmp_path):
    from dgm.tasks.report import Renderer

    assert tasks.report_section({"flow_metrics": []}) is None
    m0, t0, p0 = _write_run(tmp_path, 0, [8.0, 2.0, 2.2])
    section = tasks.report_section({"flow_metrics": [m0], "flow_tests": [t0], "models": [p0],
                                    "flow_figures": ["results/mnist/figures/flow_bpd.png"]})
    (row,) = section["data"]["runs"]
    assert row["seeds"] == "0" and row["epochs"] == "2"
    assert row["valid_bpd"] == "2.200" and row["best_valid"] == "2.000" and row["test_bpd"] == "2.210 ± 0.004"
    assert row["s_epoch"] == "11.5"
    assert section["data"]["n_blocks"] == SMALL["n_blocks"]  # the architecture of the run, not a default
    assert section["figures"][0]["caption"] == "flow_bpd"  # workflow/report/flow_bpd.rst
    repo = Path(__file__).resolve().parents[2]
    out = Renderer(repo / "report", repo / "workflow/report", {}).section({**section, "figures": []})
    text = " ".join(out["html"].split())
    assert "1.83" in text and "1.85" in text  # the seed's value and the course target, beside ours
    assert f"{SMALL['n_blocks']} blocks" in text and f"784-{SMALL['hidden_dim']}-{SMALL['hidden_dim']}" in text


def test_report_section_gives_mean_and_sd_over_seeds(tmp_path):
    m1, t1, p1 = _write_run(tmp_path, 1, [8.0, 3.0, 2.5])
    m0, t0, p0 = _write_run(tmp_path, 0, [8.0, 2.0, 2.2])
    section = tasks.report_section({"flow_metrics": [m1, m0], "flow_tests": [t1, t0], "models": [p1, p0]})
    (row,) = section["data"]["runs"]
    sd = math.sqrt(2 * 0.15**2)  # sample SD of two values 0.3 apart
    assert row["seeds"] == "0, 1" and row["epochs"] == "2" and row["parameters"] == "7"
    assert row["valid_bpd"] == f"2.350 ± {sd:.3f}"  # over seeds: the images' standard errors are not shown
    assert row["test_bpd"] == f"2.360 ± {sd:.3f}"
    assert row["best_valid"] == f"2.250 ± {math.sqrt(2 * 0.25**2):.3f}"
    assert row["s_epoch"] == f"12.0 ± {math.sqrt(0.5):.1f}"
