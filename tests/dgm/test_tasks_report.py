"""Tests for the report's shared helpers and for the sections that read several models' results
(VAE, GAN, sample quality, comparison, provenance), on a made-up results tree of two seeds whose
numbers are chosen so that every mean and SD is known."""
import csv
import json
import math
import statistics

import pytest
import torch

from dgm import io
from dgm.flow import RealNVP
from dgm.gan import GAN
from dgm.results import metrics_by_latent, run_key
from dgm.tasks import comparison, gan, quality, report, vae
from dgm.vae import VAE

NETS = {"vae": lambda z: VAE(latent_dim=z, hidden_dim=8), "gan": lambda z: GAN(latent_dim=z, hidden_dim=4),
        "flow": lambda z: RealNVP(n_blocks=1, hidden_dim=4)}
RUNS = [("vae", 2), ("vae", 3), ("gan", 5), ("flow", 784)]
SEEDS = (0, 1)


def test_seed_cell_is_the_value_for_one_seed_and_mean_sd_for_several():
    assert report.seed_cell([1.234]) == "1.23"
    assert report.seed_cell([1.234], errors=[0.05]) == "1.23 ± 0.05"
    assert report.seed_cell([1.0, 2.0], errors=[0.05, 0.05]) == f"1.50 ± {math.sqrt(0.5):.2f}"  # SD over seeds
    assert report.seed_cell([1.0, 2.0, 6.0], 1) == "3.0 ± 2.6"  # stdev(1, 2, 6) = 2.646
    assert report.seed_cell([7, 7]) == "7" and report.seed_cell([7, 9]) == "8.00 ± 1.41"
    assert report.seed_cell([None, float("nan")]) == "–" and report.seed_cell([None, 2.0]) == "2.00"
    assert report.seeds_label([2, 0, 1]) == "0, 1, 2"


def test_by_setting_groups_runs_in_order():
    records = [{"latent": z, "seed": s} for z, s in [(20, 1), (2, 1), (20, 0), (2, 0)]]
    groups = report.by_setting(records, "latent")
    assert [key for key, _ in groups] == [(2,), (20,)]
    assert [columns["seed"] for _, columns in groups] == [[0, 1], [0, 1]]


def test_run_key_reads_the_results_layout_and_names_a_bad_path():
    assert run_key("results/mnist/vae/z20/seed3/model.pt") == {"dataset": "mnist", "model": "vae", "latent": 20,
                                                               "seed": 3}
    with pytest.raises(ValueError, match="notes.txt"):
        run_key("results/notes.txt")


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every file the report reads, for the runs in RUNS and two seeds: seed s has loss-like values
    base + s (so the mean over seeds is base + 0.5 and the SD sqrt(1/2))."""
    root = tmp_path_factory.mktemp("results")
    inputs = {k: [] for k in ("models", "vae_metrics", "vae_tests", "gan_metrics", "flow_metrics", "flow_tests",
                              "likelihood_tests", "quality_runs", "benchmarks")}
    for (model, z), seed in [(r, s) for r in RUNS for s in SEEDS]:
        run = root / f"results/mnist/{model}/z{z}/seed{seed}"
        run.mkdir(parents=True)
        torch.manual_seed(seed)
        net = NETS[model](z)
        io.torch_save({"model": net.describe(), "state_dict": net.state_dict(), "epoch": 2, "device": "cpu",
                       "options": {"lr": 1e-3, "batch_size": 64, "epochs": 2, "betas": [0.5, 0.999],
                                   "grad_clip": 5.0}}, run / "model.pt")
        inputs["models"].append(str(run / "model.pt"))
        if model == "vae":
            _write_csv(run / "metrics.csv", [
                {"epoch": e, "train_nelbo": "" if e == 0 else 150.0 - 10 * e + seed,
                 "valid_nelbo": 160.0 - 10 * e + seed,
                 "train_seconds": "" if e == 0 else 2.0 + seed} for e in range(3)])
            (run / "test_metrics.json").write_text(json.dumps({
                "test_nelbo": 140.0 + z + seed, "test_nelbo_stderr": 0.3, "test_recon": 120.0 + seed,
                "test_kl": 20.0 + z, "parameters": sum(p.numel() for p in net.parameters()), "test_nelbo_bpd": 0.26}))
            (run / "test_nll.json").write_text(json.dumps({
                "k": 50, "test_nelbo": 140.0 + z + seed, "test_nelbo_stderr": 0.3, "test_nll": 130.0 + z + seed,
                "test_nll_stderr": 0.25, "test_gap": 10.0, "test_gap_stderr": 0.1, "test_nelbo_bpd": 0.26,
                "test_nll_bpd": (130.0 + z + seed) / (784 * math.log(2)), "ess_mean": 5.0, "seconds": 3.0,
                "cpu_seconds": 5.0}))
            inputs["vae_metrics"].append(str(run / "metrics.csv"))
            inputs["vae_tests"].append(str(run / "test_metrics.json"))
            inputs["likelihood_tests"].append(str(run / "test_nll.json"))
        elif model == "gan":
            _write_csv(run / "metrics.csv", [
                {"epoch": e, "train_d_loss": "" if e == 0 else 1.3 + 0.1 * seed, "train_g_loss": "" if e == 0 else 0.8,
                 "train_d_real": "" if e == 0 else 0.55, "train_d_fake": "" if e == 0 else 0.45 + 0.1 * seed,
                 "valid_d_real": 0.5, "valid_d_fake": 0.4, "train_seconds": "" if e == 0 else 3.0} for e in range(3)])
            inputs["gan_metrics"].append(str(run / "metrics.csv"))
        else:
            _write_csv(run / "metrics.csv", [
                {"epoch": e, "train_bpd": "" if e == 0 else 2.0 + seed, "valid_bpd": 2.1 + seed,
                 "train_seconds": "" if e == 0 else 5.0} for e in range(3)])
            (run / "test_metrics.json").write_text(json.dumps({
                "test_bpd": 2.2 + seed, "test_bpd_stderr": 0.01, "k": 1, "test_nll": 1200.0 + seed,
                "test_nll_stderr": 4.0, "parameters": sum(p.numel() for p in net.parameters())}))
            inputs["flow_metrics"].append(str(run / "metrics.csv"))
            inputs["flow_tests"].append(str(run / "test_metrics.json"))
        (run / "quality.json").write_text(json.dumps({"evaluations": [
            {"epoch": 2, "n": 100, "fid": 30.0 + seed, "parzen_mean": -50.0 + seed, "parzen_stderr": 1.0,
             "parzen_sigma": 0.2}]}))
        inputs["quality_runs"].append(str(run / "quality.json"))
        bench = root / f"benchmarks/train/mnist/{model}/z{z}/seed{seed}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text(f"s\th:m:s\tmax_rss\n{100.0 + 10 * seed}\t0:01:40\t500.0\n")
        inputs["benchmarks"].append(str(bench))
    reference = root / "results/mnist/quality/reference.json"
    reference.parent.mkdir(parents=True)
    reference.write_text(json.dumps({"n_test": 100, "classifier": {"epochs": 1, "valid_accuracy": 0.9,
                                                                    "test_accuracy": 0.91},
                                     "references": {"validation images": {"n": 100, "fid": 1.0}}}))
    inputs["quality_reference"] = [str(reference)]
    return inputs


SD = math.sqrt(0.5)  # sample SD of two values 1 apart


def _rows(section, table=0):
    t = section["tables"][table]
    return [dict(zip(t["header"], row)) for row in t["rows"]]


def test_model_record_counts_every_network_of_a_model(results):
    path = next(p for p in results["models"] if "/gan/" in p)
    record = report.model_record(path)
    net = GAN(latent_dim=5, hidden_dim=4)
    assert record["parameters"] == sum(p.numel() for p in net.parameters())
    assert record["parts"] == {"generator": sum(p.numel() for p in net.generator.parameters()),
                               "discriminator": sum(p.numel() for p in net.discriminator.parameters())}
    assert record["device"] == "cpu" and record["epochs"] == 2 and record["seed"] == 0


def test_vae_and_gan_sections_give_mean_and_sd_over_seeds(results):
    rows = _rows(vae.report_section(results))
    assert [r["z"] for r in rows] == [2, 3] and rows[0]["seeds"] == "0, 1"
    assert rows[0]["test −ELBO"] == f"142.50 ± {SD:.2f}" and rows[1]["test KL"] == "23.00 ± 0.00"
    assert rows[0]["valid −ELBO"] == f"140.50 ± {SD:.2f}" and rows[0]["epochs"] == "2"
    (g,) = _rows(gan.report_section(results))
    assert g["L_D"] == f"1.350 ± {math.sqrt(0.005):.3f}" and g["L_G"] == "0.800 ± 0.000"
    assert g["G parameters"] == str(sum(p.numel() for p in GAN(latent_dim=5, hidden_dim=4).generator.parameters()))


def test_quality_section_aggregates_each_model_and_epoch(results):
    rows = _rows(quality.report_section(results))
    assert [(r["model"], r["z"]) for r in rows[:4]] == [("VAE", 2), ("VAE", 3), ("GAN", 5), ("RealNVP", 784)]
    assert rows[0]["FID"] == f"30.50 ± {SD:.2f}" and rows[0]["Parzen"] == f"-49.5 ± {SD:.1f}"
    assert rows[0]["test NLL bound"] == f"142.50 ± {SD:.2f}" and rows[2]["test NLL bound"] == "–"
    assert rows[-1]["model"] == "real validation images"


def test_comparison_puts_the_models_side_by_side_with_the_seed_values(results):
    section = comparison.report_section(results)
    rows = _rows(section)
    assert [(r["model"], r["z"]) for r in rows] == [("VAE", 2), ("VAE", 3), ("GAN", 5), ("RealNVP", 784)]
    vae2, _, gan_row, flow = rows
    assert vae2["test NLL (nats)"] == f"132.50 ± {SD:.2f}"  # importance sampling, not the ELBO
    assert vae2["bits/dim"] == f"{statistics.fmean([132 / 784 / math.log(2), 133 / 784 / math.log(2)]):.3f} ± 0.001"
    assert gan_row["test NLL (nats)"] == "–" and gan_row["bits/dim"] == "–"  # the GAN has no likelihood
    assert flow["test NLL (nats)"] == f"1200.50 ± {SD:.2f}" and flow["bits/dim"] == f"2.700 ± {SD:.3f}"
    assert flow["FID"] == f"30.50 ± {SD:.2f}" and flow["training (s)"] == f"105 ± {math.sqrt(50):.0f}"
    assert gan_row["parameters"] == str(sum(p.numel() for p in GAN(latent_dim=5, hidden_dim=4).parameters()))
    seed_rows = _rows(section, 1)
    by_quantity = {r["quantity"]: r for r in seed_rows}
    flow_bpd = by_quantity["validation bits/dim after the last epoch"]
    assert flow_bpd["seed study"].startswith("1.83") and flow_bpd["this run"] == f"2.600 ± {SD:.3f}"
    d_loss = by_quantity["discriminator loss L_D at the end of training"]
    assert d_loss["seed study"] == f"log 4 = {math.log(4):.3f}"
    assert d_loss["this run"] == f"1.350 ± {math.sqrt(0.005):.3f}"
    assert "importance sampling, K = 50" in section["paragraphs"][0]


def test_comparison_without_results_is_left_out():
    assert comparison.report_section({}) is None


def test_provenance_lists_device_and_parameters_of_every_run(results, tmp_path):
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"dataset": "mnist", "n_train": 10, "n_valid": 2, "n_test": 3,
                                  "binarization": "dynamic",
                                  "binarize_seed": 1, "split_seed": 0, "official_md5": False, "md5": {"a": "b"}}))
    section = report.provenance_section(splits_path=splits, config={"seeds": [0, 1], "device": "auto"},
                                        benchmarks_dir=tmp_path, model_paths=results["models"])
    runs = _rows(section)
    assert len(runs) == len(RUNS) * len(SEEDS) and {r["device"] for r in runs} == {"cpu"}
    flow = next(r for r in runs if r["model"] == "flow")
    assert flow["parameters"] == sum(p.numel() for p in RealNVP(n_blocks=1, hidden_dim=4).parameters())
    assert next(r for r in runs if r["model"] == "gan")["of which"].startswith("generator ")


def test_curves_over_seeds_are_mean_and_sd(results, tmp_path):
    frames = metrics_by_latent(results["vae_metrics"])
    assert list(frames) == [2, 3] and len(frames[2]) == 2
    from dgm import plotting

    band = plotting.seed_band(frames[2], "valid_nelbo")
    assert list(band.index) == [1, 2]  # trained epochs only
    assert band["mean"].tolist() == [150.5, 140.5] and band["sd"].tolist() == pytest.approx([SD, SD])
    assert plotting.seed_band(frames[2][:1], "valid_nelbo")["sd"].tolist() == [0.0, 0.0]
    plotting.plot_elbo_curves({f"z = {z}": f for z, f in frames.items()}, tmp_path / "elbo.png")
    assert (tmp_path / "elbo.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "elbo.pdf").exists()
