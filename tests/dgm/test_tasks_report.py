"""Tests for the report's formatting helpers, for the sections that read several models' results
(VAE, GAN, sample quality, comparison, provenance), on a made-up results tree of two seeds whose
numbers are chosen so that every mean and SD is known, and for their rendering through the templates
in report/ to HTML and LaTeX."""
import csv
import json
import math
import re
import statistics
from pathlib import Path

import pytest
import torch
import yaml

from dgm import formatting, io
from dgm.flow import RealNVP
from dgm.gan import GAN
from dgm.results import metrics_by_latent, model_record, run_key
from dgm.tasks import comparison, flow, gan, quality, report, vae
from dgm.vae import VAE

REPO = Path(__file__).resolve().parents[2]
TEMPLATES, CAPTIONS = REPO / "report", REPO / "workflow/report"
FIGURE_CAPTIONS = ["vae_elbo", "vae_samples", "vae_manifold", "likelihood_sweep", "gan_samples", "gan_curves",
                   "gan_interpolation", "flow_bpd", "flow_samples", "flow_interpolation", "interpolation",
                   "quality_sample_size"]

NETS = {"vae": lambda z: VAE(latent_dim=z, hidden_dim=8), "gan": lambda z: GAN(latent_dim=z, hidden_dim=4),
        "flow": lambda z: RealNVP(n_blocks=1, hidden_dim=4)}
RUNS = [("vae", 2), ("vae", 3), ("gan", 5), ("flow", 784)]
SEEDS = (0, 1)
# Precision and density (fidelity), recall and coverage (diversity) of each model's samples, the same for
# both latent sizes of the VAE: the GAN leads on fidelity; on diversity the VAE and the flow tie in recall
# (at the table's three digits) and the VAE leads in coverage.
QUALITY = {"vae": {"precision": 0.6, "recall": 0.7001, "density": 0.5, "coverage": 0.8},
           "gan": {"precision": 0.9, "recall": 0.3, "density": 1.1, "coverage": 0.4},
           "flow": {"precision": 0.5, "recall": 0.7004, "density": 0.4, "coverage": 0.6}}


def test_seed_cell_is_the_value_for_one_seed_and_mean_sd_for_several():
    seed_cell = formatting.seed_cell
    assert seed_cell([1.234]) == "1.23"
    assert seed_cell([1.234], errors=[0.05]) == "1.23 ± 0.05"
    assert seed_cell([1.0, 2.0], errors=[0.05, 0.05]) == f"1.50 ± {math.sqrt(0.5):.2f}"  # SD over seeds
    assert seed_cell([1.0, 2.0, 6.0], 1) == "3.0 ± 2.6"  # stdev(1, 2, 6) = 2.646
    assert seed_cell([7, 7]) == "7" and seed_cell([7, 9]) == "8.00 ± 1.41"
    assert seed_cell([None, float("nan")]) == "–" and seed_cell([None, 2.0]) == "2.00"
    assert formatting.seeds_label([2, 0, 1]) == "0, 1, 2"
    assert formatting.seed_mean([1.0, None, 2.0]) == 1.5 and formatting.seed_mean([None]) is None


def test_number_ranges_and_escaping():
    assert formatting.number_ranges([9, 3, 4, 5, 11, 12, 4]) == "3–5, 9, 11–12" and formatting.number_ranges([]) == ""
    assert formatting.latex_escape("a_b 50% ± −1 σ Bińkowski") == (
        r"a\_b 50\% \ensuremath{\pm} \ensuremath{-}1 \ensuremath{\sigma} Bi\'{n}kowski")
    assert formatting.latex_escape("𝔼") == "[mathematical double-struck capital e]"  # pdflatex would stop
    assert formatting.rst_escape("a_b *c* `d` |e|") == r"a\_b \*c\* \`d\` \|e\|"


def test_captioned_figures_follow_the_seed_order_and_name_their_caption():
    paths = ["f/gan_curves.png", "f/gan_samples_z8_seed0.png", "f/gan_interpolation_z8_seed0.png",
             "f/gan_samples_z2_seed0.png"]
    kinds = {"gan_samples": "gan_samples", "gan_curves": "gan_curves", "gan_interpolation": "gan_interpolation"}
    figures = formatting.captioned_figures(paths, kinds, wildcards={"model": "gan"})
    assert [Path(f["path"]).stem for f in figures] == ["gan_samples_z2_seed0", "gan_samples_z8_seed0", "gan_curves",
                                                       "gan_interpolation_z8_seed0"]
    assert figures[2]["caption"] == "gan_curves" and figures[0]["wildcards"] == {"model": "gan"}
    with pytest.raises(ValueError, match="flow_bpd"):
        formatting.captioned_figures(["f/flow_bpd.png"], kinds)


def test_by_setting_groups_runs_in_order():
    records = [{"latent": z, "seed": s} for z, s in [(20, 1), (2, 1), (20, 0), (2, 0)]]
    groups = formatting.by_setting(records, "latent")
    assert [key for key, _ in groups] == [(2,), (20,)]
    assert [columns["seed"] for _, columns in groups] == [[0, 1], [0, 1]]


def test_run_key_reads_the_results_layout_and_names_a_bad_path():
    assert run_key("results/mnist/vae/z20/seed3/model.pt") == {"dataset": "mnist", "model": "vae", "point": "",
                                                               "latent": 20, "seed": 3}
    swept = run_key("results/mnist/vae/hidden_dim~64/lr~0.001/z2/seed0/quality.json")  # a sweep point's run
    assert swept == {"dataset": "mnist", "model": "vae", "point": "hidden_dim=64, lr=0.001", "latent": 2, "seed": 0}
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
            {"epoch": 2, "n": 100, "fid": 30.0 + seed, "kid_mean": 0.01 + 0.001 * seed, "kid_std": 0.002,
             "kid_subset_size": 50, **QUALITY[model], "parzen_mean": -50.0 + seed, "parzen_stderr": 1.0,
             "parzen_sigma": 0.2}]}))
        inputs["quality_runs"].append(str(run / "quality.json"))
        bench = root / f"benchmarks/train/mnist/{model}/z{z}/seed{seed}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text(f"s\th:m:s\tmax_rss\n{100.0 + 10 * seed}\t0:01:40\t500.0\n")
        inputs["benchmarks"].append(str(bench))
    reference = root / "results/mnist/quality/reference.json"
    reference.parent.mkdir(parents=True)
    reference.write_text(json.dumps({"n_test": 100, "classifier": {"epochs": 1, "valid_accuracy": 0.9,
                                                                    "test_accuracy": 0.9123},
                                     "references": {"validation images": {
                                         "n": 100, "fid": 1.0, "kid_mean": 0.0001, "kid_std": 0.0003, "precision": 0.8,
                                         "recall": 0.81, "density": 0.95, "coverage": 0.9}}}))
    inputs["quality_reference"] = [str(reference)]
    return inputs


SD = math.sqrt(0.5)  # sample SD of two values 1 apart


def test_model_record_counts_every_network_of_a_model(results):
    path = next(p for p in results["models"] if "/gan/" in p)
    record = model_record(path)
    net = GAN(latent_dim=5, hidden_dim=4)
    assert record["parameters"] == sum(p.numel() for p in net.parameters())
    assert record["parts"] == {"generator": sum(p.numel() for p in net.generator.parameters()),
                               "discriminator": sum(p.numel() for p in net.discriminator.parameters())}
    assert record["device"] == "cpu" and record["epochs"] == 2 and record["seed"] == 0


def test_vae_and_gan_sections_give_mean_and_sd_over_seeds(results):
    section = vae.report_section(results)
    rows = section["data"]["runs"]
    assert [r["latent"] for r in rows] == [2, 3] and rows[0]["seeds"] == "0, 1"
    assert rows[0]["test_nelbo"] == f"142.50 ± {SD:.2f}" and rows[1]["test_kl"] == "23.00 ± 0.00"
    assert rows[0]["valid_nelbo"] == f"140.50 ± {SD:.2f}" and rows[0]["epochs"] == "2"
    assert section["data"]["hidden"] == 8 and section["data"]["k"] is None and section["template"] == "vae"
    (g,) = gan.report_section(results)["data"]["runs"]
    assert g["train_d_loss"] == f"1.350 ± {math.sqrt(0.005):.3f}" and g["train_g_loss"] == "0.800 ± 0.000"
    assert g["generator"] == str(sum(p.numel() for p in GAN(latent_dim=5, hidden_dim=4).generator.parameters()))


def test_quality_section_has_every_metric_for_models_and_real_images(results):
    data = quality.report_section(results)["data"]
    rows, parzen = data["samples"], data["parzen"]
    assert [(r["model"], r["latent"]) for r in rows[:4]] == [("VAE", 2), ("VAE", 3), ("GAN", 5), ("RealNVP", 784)]
    assert rows[0]["fid"] == f"30.50 ± {SD:.2f}" and rows[0]["kid"] == f"0.0105 ± {0.001 * SD:.4f}"
    assert rows[0]["precision"] == "0.600 ± 0.000" and rows[2]["density"] == "1.100 ± 0.000"
    assert parzen[0]["parzen"] == f"-49.5 ± {SD:.1f}" and parzen[0]["bound"] == f"142.50 ± {SD:.2f}"
    assert parzen[2]["bound"] == "–"
    real = rows[-1]
    assert real["model"] == "real validation images" and real["kid"] == "0.0001 ± 0.0003"
    assert [real[k] for k in ("precision", "recall", "density", "coverage")] == ["0.800", "0.810", "0.950", "0.900"]
    assert parzen[-1]["model"] == "real validation images" and parzen[-1]["parzen"] == "–"
    assert data["classifier"]["test_accuracy"] == 0.9123 and data["kid_subset_size"] == "50"


def test_quality_leaders_name_every_model_that_ties():
    vae2 = {"title": "VAE", "latent": 2, "precision": 0.6, "recall": 0.7001, "density": 0.5, "coverage": 0.8}
    vae3 = {**vae2, "latent": 3, "coverage": 0.79}
    flow_ = {"title": "RealNVP", "latent": None, "precision": 0.9, "recall": 0.7004, "density": 1.2, "coverage": 0.1}
    lead = quality.leaders([vae2, vae3, flow_])
    assert lead["precision"] == {"value": 0.9, "models": [flow_]} and lead["density"]["models"] == [flow_]
    assert lead["recall"]["models"] == [vae2, vae3, flow_]  # 0.700 for all three at the table's digits
    assert lead["recall"]["value"] == 0.7004 and lead["coverage"] == {"value": 0.8, "models": [vae2]}
    assert quality.leaders([vae2])["settings"] == [vae2] and quality.leaders([])["settings"] == []


def _render(section, config=None):
    return report.Renderer(TEMPLATES, CAPTIONS, config or {}).section(section)


def test_quality_text_says_who_leads_on_fidelity_and_on_diversity(results):
    section = quality.report_section(results)
    out = _render(section)
    text = re.sub(r"\s+", " ", out["html"])
    assert "GAN (<math" in text and "wins on fidelity, with the highest precision (0.900) and density (1.100)" in text
    # recall: VAE z = 2 and 3 and the flow tie at 0.700; coverage: the VAE's two latent sizes tie at 0.800
    assert "On diversity the two measures disagree" in text and "share the highest recall (0.700)" in text
    assert "RealNVP share" in text and "the highest coverage (0.800)" in text
    assert "test accuracy 91.23%" in text and "NOT comparable" in text
    assert out["title"] == "Sample quality"
    for key in ("kid", "precision", "recall", "density", "coverage"):
        assert all(row[key] != "–" for row in section["data"]["samples"])
    single = {**section, "data": {**section["data"], "leaders": quality.leaders([{
        "title": "GAN", "latent": 5, "precision": 0.9, "recall": 0.3, "density": 1.1, "coverage": 0.4}])}}
    text = re.sub(r"\s+", " ", _render(single)["html"])
    assert "was scored, so there is no comparison" in text and "recall 0.300 and coverage 0.400" in text


def test_gan_section_warns_about_runs_the_discriminator_won(results, tmp_path):
    inputs = {**results, "gan_metrics": list(results["gan_metrics"])}
    run = tmp_path / "results/mnist/gan/z5/seed1"
    run.mkdir(parents=True)
    real = [0.5, 0.995, 0.999, 1.0, 1.0, 0.7, 0.999, 0.999, 0.999]  # won at 1-4 and 6-8: three in a row at 3, 4, 8
    fake = [0.5, 0.005, 0.001, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0]
    _write_csv(run / "metrics.csv", [
        {"epoch": e, "train_d_loss": "" if e == 0 else 1.0, "train_g_loss": "" if e == 0 else 1.0,
         "train_d_real": "" if e == 0 else 0.9, "train_d_fake": "" if e == 0 else 0.1, "valid_d_real": r,
         "valid_d_fake": f, "train_seconds": "" if e == 0 else 3.0} for e, (r, f) in enumerate(zip(real, fake))])
    inputs["gan_metrics"][1] = str(run / "metrics.csv")
    section = gan.report_section(inputs)
    assert section["data"]["dominated"] == [{"title": "GAN", "latent": 5, "seed": 1, "epochs": [3, 4, 8]}]
    text = re.sub(r"\s+", " ", _render(section)["html"])
    assert "the discriminator won outright" in text and "seed 1 (epochs 3–4, 8)" in text
    assert "3 or more evaluations in a row" in text
    healthy = _render(gan.report_section(results))
    assert "won outright" not in healthy["html"] and "won outright" not in healthy["tex"]


def test_comparison_puts_the_models_side_by_side_with_the_seed_values(results):
    section = comparison.report_section(results)
    rows = section["data"]["models"]
    assert [(r["model"], r["latent"]) for r in rows] == [("VAE", 2), ("VAE", 3), ("GAN", 5), ("RealNVP", 784)]
    vae2, _, gan_row, flow_row = rows
    assert vae2["nll"] == f"132.50 ± {SD:.2f}"  # importance sampling, not the ELBO
    assert vae2["bpd"] == f"{statistics.fmean([132 / 784 / math.log(2), 133 / 784 / math.log(2)]):.3f} ± 0.001"
    assert gan_row["nll"] == "–" and gan_row["bpd"] == "–"  # the GAN has no likelihood
    assert flow_row["nll"] == f"1200.50 ± {SD:.2f}" and flow_row["bpd"] == f"2.700 ± {SD:.3f}"
    assert flow_row["fid"] == f"30.50 ± {SD:.2f}" and flow_row["train_seconds"] == f"105 ± {math.sqrt(50):.0f}"
    assert gan_row["parameters"] == str(sum(p.numel() for p in GAN(latent_dim=5, hidden_dim=4).parameters()))
    by_quantity = {r["quantity"]: r for r in section["data"]["seed_values"]}
    flow_bpd = by_quantity["validation bits/dim after the last epoch"]
    assert flow_bpd["seed"].startswith("1.83") and flow_bpd["run"] == f"2.600 ± {SD:.3f}"
    d_loss = by_quantity["discriminator loss L_D at the end of training"]
    assert d_loss["seed"] == f"log 4 = {math.log(4):.3f}"
    assert d_loss["run"] == f"1.350 ± {math.sqrt(0.005):.3f}"
    assert section["data"]["estimators"] == [{"title": "VAE", "method": "importance", "k": 50},
                                             {"title": "RealNVP", "method": "dequantisation", "k": 1}]
    text = re.sub(r"\s+", " ", _render(section)["html"])
    assert "VAE: importance sampling, <math" in text and "RealNVP: dequantisation bound" in text


def test_comparison_without_results_is_left_out():
    assert comparison.report_section({}) is None


def _provenance(results, tmp_path):
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"dataset": "mnist", "n_train": 10, "n_valid": 2, "n_test": 3,
                                  "binarization": "dynamic",
                                  "binarize_seed": 1, "split_seed": 0, "official_md5": False, "md5": {"a": "b"}}))
    return report.provenance_section(splits_path=splits, config={"seeds": [0, 1], "device": "auto"},
                                     benchmarks_dir=tmp_path, model_paths=results["models"])


def test_provenance_lists_device_and_parameters_of_every_run(results, tmp_path):
    runs = _provenance(results, tmp_path)["data"]["runs"]
    assert len(runs) == len(RUNS) * len(SEEDS) and {r["device"] for r in runs} == {"cpu"}
    flow_run = next(r for r in runs if r["model"] == "flow")
    assert flow_run["parameters"] == sum(p.numel() for p in RealNVP(n_blocks=1, hidden_dim=4).parameters())
    assert next(r for r in runs if r["model"] == "gan")["parts"].startswith("generator ")


def test_every_section_renders_text_tables_and_maths_in_both_formats(results, tmp_path):
    """Prose and labels come from the templates, numbers from the data; maths is maths in LaTeX
    (never escaped underscores) and MathML in HTML; every table has its columns in both formats."""
    sections = [vae.report_section(results), gan.report_section(results), flow.report_section(results),
                quality.report_section(results), comparison.report_section(results), _provenance(results, tmp_path)]
    renderer = report.Renderer(TEMPLATES, CAPTIONS, {})
    for section in sections:
        out = renderer.section(section)
        assert out["title"] and out["html"] and out["tex"], section["id"]
        if section["id"] != "comparison":  # whose seed-study table quotes dgm.seed_study's plain text
            assert "\\_" not in re.sub(r"\\texttt\{[^}]*\}", "", out["tex"]), section["id"]  # no escaped maths
        tables = out["tex"].count("\\begin{tabular}") + out["tex"].count("\\begin{longtable}")
        assert out["html"].count("<table>") == tables == len(re.findall(r"\\caption\{", out["tex"])) >= 1, section["id"]
        assert "raw::" not in out["html"] and "<table>" not in out["tex"]
    by_id = {s["id"]: renderer.section(s) for s in sections}
    assert by_id["vae"]["title"] == "Variational auto-encoder"
    assert "$\\mathcal{L}_D = \\log 4 = 1.386$" in by_id["gan"]["tex"]
    assert "<th>$\\mathcal{L}_D$" not in by_id["gan"]["html"] and "<math" in by_id["gan"]["html"]
    assert "$\\mathcal{L}_D$ & $\\mathcal{L}_G$" in by_id["gan"]["tex"]  # column labels as maths
    assert "1 block of two affine" in by_id["flow"]["html"]  # the run's architecture, not a default
    assert "142.50 \\ensuremath{\\pm} 0.71" in by_id["vae"]["tex"] and "142.50 ± 0.71" in by_id["vae"]["html"]
    assert "Adam with lr 0.001, batch 64, 2 epochs" in re.sub(r"\s+", " ", by_id["vae"]["html"])


def test_a_long_table_breaks_across_pages_and_a_column_needs_its_values():
    renderer = report.Renderer(TEMPLATES, CAPTIONS, {})
    rows = [{"job": f"train/{i}", "seconds": f"{i}.0"} for i in range(31)]
    section = {"id": "jobs", "template": "provenance", "figures": [], "data": {
        "splits": {"dataset": "mnist", "n_train": 1, "n_valid": 1, "n_test": 1, "binarization": "static",
                   "binarize_seed": 1, "split_seed": 0, "official_md5": True},
        "seeds": [0], "device": "cpu", "runs": [], "md5": [], "packages": [],
        "benchmarks": [{**r, "max_rss": "1"} for r in rows]}}
    tex = renderer.section(section)["tex"]
    assert tex.count("\\begin{longtable}") == 1 and "train/30 & 30.0 & 1" in tex  # one long table, 31 rows
    with pytest.raises(ValueError, match=r"no column \['max_rss'\]"):
        renderer.section({**section, "data": {**section["data"], "benchmarks": rows}})


def test_figure_captions_come_from_the_caption_files_with_the_run_config():
    config = {"seeds": [0, 1], "vae": {"latent_sizes": [2, 3], "lr": 0.001, "batch_size": 64, "epochs": 2},
              "iwae": {"latent_sizes": [2], "lr": 0.002, "batch_size": 32, "epochs": 5},
              "gan": {"latent_sizes": [8], "lr": 0.0002, "betas": [0.5, 0.999], "batch_size": 64, "epochs": 2}}
    renderer = report.Renderer(TEMPLATES, CAPTIONS, config)
    iwae = renderer.caption("vae_elbo", {"model": "iwae"})  # the VAE family's caption, about this model
    assert "latent sizes [2], Adam lr 0.002, batch 32, 5 epochs (seed Fig. 1)" in " ".join(iwae["caption_html"].split())
    curves = renderer.caption("gan_curves", {})
    assert "$\\mathcal{L}_D = \\log 4$" in curves["caption_tex"] and "<math" in curves["caption_html"]
    assert "L\\_D" not in curves["caption_tex"] and "<p>" not in curves["caption_html"]
    full = report.Renderer(TEMPLATES, CAPTIONS, yaml.safe_load((REPO / "config.yaml").read_text()))
    for name in FIGURE_CAPTIONS:  # every caption the sections use reads with the study's config
        out = full.caption(name, {"model": "vae"})
        assert out["caption_html"] and "\\_" not in re.sub(r"\\texttt\{[^}]*\}", "", out["caption_tex"]), name


def test_config_listing_is_compact_yaml_that_reads_back():
    config = {"seeds": [0, 1], "vae": {"latent_sizes": [2, 20], "lr": 0.001}, "report": {"title": "Study − {x} ±"}}
    text = report.config_yaml(config)
    assert yaml.safe_load(text) == config and "seeds: [0, 1]" in text and text.isascii()


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
