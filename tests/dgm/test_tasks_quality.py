"""dgm.tasks.quality and dgm.tasks.gan helpers: sampling through the common verb, scoring, tables."""
import hashlib
import math
from pathlib import Path

import pytest
import torch

from dgm import io
from dgm.distributions import interpolate_latents
from dgm.estimators import parzen_log_likelihood
from dgm.gan import GAN, GANConfig
from dgm.quality import Classifier, SampleMetrics, fd_infinity, features
from dgm.tasks import quality, report
from dgm.tasks.interpolation import interpolation_rows
from dgm.tasks.quality import TABLE_HEADER, Scorer, _scorer, draw_samples, table_rows, write_table

REPO = Path(__file__).resolve().parents[2]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def splits():
    """A fake splits dict: uint8 images as prepare_mnist stores them."""
    g = gen(0)
    return {f"{name}_images": (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8)
            for name, n in (("train", 60), ("valid", 30), ("test", 40))}


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return Classifier(channels1=4, channels2=8, hidden_dim=8).eval()


class Constant(torch.nn.Module):
    """A 'model' whose samples are fixed images: tests what the scorer sees."""

    def __init__(self, images):
        super().__init__()
        self.register_buffer("images", images)
        self.w = torch.nn.Parameter(torch.zeros(()))

    def sample(self, n, *, generator=None):
        idx = torch.randint(len(self.images), (n,), generator=generator)
        return self.images[idx]


def test_draw_samples_is_seeded_batched_and_checked():
    torch.manual_seed(0)
    gan = GAN(GANConfig(latent_dim=4, hidden_dim=8)).eval()
    a = draw_samples(gan, 10, seed=3, batch_size=4)
    assert a.shape == (10, 1, 28, 28) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, draw_samples(gan, 10, seed=3, batch_size=4))
    assert torch.equal(a[:4], gan.sample(4, generator=gen(3)))  # one generator across the batches
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        draw_samples(Constant(torch.full((3, 1, 28, 28), 2.0)), 5, seed=0, batch_size=5)


METRICS = {"kid_subsets": 4, "kid_subset_size": 8, "nearest_k": 3, "sample_sizes": [4, 8, 1000], "bootstrap": 10}


def test_scorer_measures_against_the_test_set(splits, classifier):
    scorer = Scorer(classifier, splits, sigmas=[0.5], metrics=METRICS, batch_size=16)
    test = splits["test_images"].float().div(255).unsqueeze(1)
    assert abs(scorer.fid(test)) < 1e-6
    train = splits["train_images"].float().div(255).unsqueeze(1)
    direct = SampleMetrics(features(classifier, test), kid_subsets=4, kid_subset_size=8, nearest_k=3)
    out = scorer.score(train, size_curve=True)
    # features in batches of 16 against all at once: float32 sums in another order (~1e-7 relative here)
    assert out["fid"] == pytest.approx(direct.fid(features(classifier, train)), rel=1e-5)
    prdc = direct.prdc(features(classifier, train))
    assert {k: out[k] for k in prdc} == prdc
    assert [c["n"] for c in out["sample_sizes"]] == [4, 8, 60]  # sizes below the 60 samples, and all 60
    assert out["sample_sizes"][-1]["fid"] == pytest.approx(out["fid"], rel=1e-12)  # all 60: the full set


def test_scorer_parzen_follows_goodfellow_protocol(splits, classifier):
    sigmas = [0.2, 0.5, 1.0]
    scorer = Scorer(classifier, splits, sigmas=sigmas, metrics=METRICS)
    samples = splits["train_images"].float().div(255).flatten(1)
    out = scorer.parzen(samples)
    valid = splits["valid_images"].float().div(255).flatten(1)
    test = splits["test_images"].float().div(255).flatten(1)
    best = max(sigmas, key=lambda s: parzen_log_likelihood(samples.double(), valid.double(), s).mean().item())
    assert out["parzen_sigma"] == best
    direct = parzen_log_likelihood(samples.double(), test.double(), best)
    assert out["parzen_mean"] == pytest.approx(direct.mean().item(), abs=1e-2)
    assert out["parzen_stderr"] == pytest.approx(direct.std().item() / math.sqrt(len(test)), rel=1e-3)
    assert [s for s, _ in out["parzen_valid"]] == sigmas


def test_interpolation_rows_chain_endpoints_and_share_them_across_methods():
    torch.manual_seed(0)
    gan = GAN(GANConfig(latent_dim=6, hidden_dim=8)).eval()
    rows = interpolation_rows(gan, rows=3, steps=9, methods=["linear", "slerp"], generator=gen(2))
    assert set(rows) == {"linear", "slerp"} and rows["linear"].shape == (3, 9, 1, 28, 28)
    ends = torch.randn(4, 6, generator=gen(2))
    expected_ends = gan.decode(ends)
    for method, images in rows.items():
        for i in range(3):
            assert torch.allclose(images[i, 0], expected_ends[i], atol=1e-6), method
            assert torch.allclose(images[i, -1], expected_ends[i + 1], atol=1e-6), method
    middle = gan.decode(interpolate_latents(ends[0], ends[1], 9, "slerp"))[4]
    assert torch.allclose(rows["slerp"][0, 4], middle, atol=1e-6)
    assert not torch.allclose(rows["slerp"][0, 4], rows["linear"][0, 4])


def test_table_has_one_row_per_epoch_and_reference(tmp_path):
    run = tmp_path / "results/mnist/gan/z100/seed0/quality.json"
    evaluation = {"n": 10, "fid": 3.5, "parzen_mean": 100.0, "parzen_stderr": 2.0, "parzen_sigma": 0.2}
    io.write_json({"evaluations": [{"epoch": 1, **evaluation}, {"epoch": 200, **evaluation, "fid": 1.25}]}, run)
    reference = tmp_path / "reference.json"
    io.write_json({"references": {"validation images": {"n": 5, "fid": 0.5}}}, reference)
    rows = table_rows([str(run)], str(reference))
    assert [(r["model"], r["latent"], r["epoch"]) for r in rows] == [("gan", 100, 1), ("gan", 100, 200),
                                                                     ("validation images", None, None)]
    write_table(quality_paths=[str(run)], reference_path=str(reference), output_path=tmp_path / "t.tsv")
    lines = (tmp_path / "t.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:6] == ["model", "latent", "seed", "epoch", "n", "fid"]
    assert lines[2].split("\t")[5] == "1.25" and lines[3].split("\t")[6] == ""


def test_scorer_gives_every_number_its_error_n_and_classifier_and_fd_infinity(splits, classifier):
    scorer = Scorer(classifier, splits, sigmas=[0.5], metrics=METRICS, classifier_sha256="ab" * 32)
    train = splits["train_images"].float().div(255).unsqueeze(1)
    out = scorer.score(train, size_curve=True)
    assert out["n"] == 60 and out["classifier_sha256"] == "ab" * 32 and out["bootstrap"] == 10
    for m in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert out[f"{m}_se"] > 0 and len(out[f"{m}_ci"]) == 2, m
    curve = out["sample_sizes"]
    assert (out["fd_inf"], out["fd_inf_se"]) == fd_infinity([c["n"] for c in curve], [c["fid"] for c in curve])
    assert out["fd_inf_se"] > 0  # three sizes: one residual degree of freedom
    no_curve = scorer.score(train, parzen=False)
    assert "fd_inf" not in no_curve and no_curve["fid_se"] == out["fid_se"]  # the bootstrap repeats


def test_bootstrap_leaves_every_number_of_the_scorer_as_it_was(splits, classifier):
    """quality.json's existing numbers are those of a run without the bootstrap, bit for bit."""
    train = splits["train_images"].float().div(255).unsqueeze(1)
    plain = Scorer(classifier, splits, sigmas=[0.5], metrics={**METRICS, "bootstrap": 0}).score(train, size_curve=True)
    full = Scorer(classifier, splits, sigmas=[0.5], metrics=METRICS).score(train, size_curve=True)
    assert {k: full[k] for k in plain if k != "seconds"} == {k: v for k, v in plain.items() if k != "seconds"}
    assert "fid_se" not in plain and "fid_se" in full


def test_scorer_of_a_classifier_file_records_the_files_sha256(splits, classifier, tmp_path):
    path = tmp_path / "classifier.pt"
    io.torch_save({"version": 1, "model": classifier.describe(), "state_dict": classifier.state_dict()}, path)
    scorer = _scorer(path, splits, sigmas=[0.5], metrics=METRICS, batch_size=16, device="cpu", seed=0)
    assert scorer.classifier_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def _quality_json(path, *, n=10, sha="a" * 64, **extra):
    evaluation = {"n": n, "classifier_sha256": sha, "fid": 3.5, "kid_mean": 0.01, "kid_std": 0.002,
                  "kid_subset_size": 5, "precision": 0.5, "recall": 0.6, "density": 0.7, "coverage": 0.8,
                  "parzen_mean": 100.0, "parzen_stderr": 2.0, "parzen_sigma": 0.2, "bootstrap": 20,
                  "fid_se": 0.25, "fid_ci": [2.5, 3.4], "kid_se": 0.001, "kid_ci": [0.008, 0.012],
                  **{f"{m}_se": 0.01 for m in ("precision", "recall", "density", "coverage")},
                  **{f"{m}_ci": [0.1, 0.9] for m in ("precision", "recall", "density", "coverage")},
                  "fd_inf": 3.1, "fd_inf_se": 0.05, **extra}
    io.write_json({"evaluations": [{"epoch": 1, **evaluation}, {"epoch": 200, **evaluation, "fid": 1.25}]}, path)


def test_table_flags_rows_at_another_n_or_from_another_classifier(tmp_path):
    runs = [tmp_path / f"results/mnist/{m}/z{z}/seed0/quality.json" for m, z in (("gan", 100), ("vae", 2), ("vae", 5))]
    _quality_json(runs[0])
    _quality_json(runs[1], n=20)  # another sample size
    _quality_json(runs[2], sha="b" * 64)  # another feature network
    reference = tmp_path / "reference.json"
    io.write_json({"references": {"validation images": {"n": 5, "fid": 0.5, "classifier_sha256": "a" * 64},
                                  "training images": {"n": 10, "fid": 0.4, "classifier_sha256": "a" * 64}}},
                  reference)
    rows = table_rows([str(p) for p in runs], str(reference))
    flags = {(r["model"], r["latent"], r["epoch"]): r["flag"] for r in rows}
    assert flags[("gan", 100, 200)] == "" and flags[("training images", None, None)] == ""
    assert flags[("vae", 2, 1)] == "n = 20, not 10"
    assert flags[("vae", 5, 200)] == "classifier bbbbbbbbbbbb, not aaaaaaaaaaaa"
    assert flags[("validation images", None, None)] == "n = 5, not 10"
    write_table(quality_paths=[str(p) for p in runs], reference_path=str(reference), output_path=tmp_path / "t.tsv")
    header, *lines = [line.split("\t") for line in (tmp_path / "t.tsv").read_text().splitlines()]
    assert header[:15] == ["model", "latent", "seed", "epoch", "n", "fid", "kid_mean", "kid_std", "precision",
                           "recall", "density", "coverage", "parzen_mean", "parzen_stderr", "parzen_sigma"]
    row = dict(zip(header, lines[1]))  # the GAN's epoch 200
    assert (row["fid"], row["fid_se"], row["fid_ci_low"], row["fid_ci_high"]) == ("1.25", "0.25", "2.5", "3.4")
    assert (row["fd_inf"], row["fd_inf_se"], row["classifier_sha256"], row["flag"]) == ("3.1", "0.05", "a" * 64, "")
    assert dict(zip(header, lines[2]))["flag"] == "n = 20, not 10" and header == TABLE_HEADER


def test_report_section_gives_each_run_its_errors_and_flags_incomparable_rows(tmp_path):
    runs = [tmp_path / f"results/mnist/{m}/z{z}/seed0/quality.json" for m, z in (("gan", 100), ("vae", 2))]
    _quality_json(runs[0])
    _quality_json(runs[1], n=20)
    reference = tmp_path / "reference.json"
    io.write_json({"n_test": 40, "classifier": {"epochs": 1, "valid_accuracy": 0.9, "test_accuracy": 0.9},
                   "references": {"validation images": {
                       "n": 10, "classifier_sha256": "a" * 64, "fid": 0.5, "fid_se": 0.1, "fid_ci": [0.0, 0.6],
                       "kid_mean": 0.0001, "kid_std": 0.0003, "kid_se": 0.0002, "precision": 0.8, "recall": 0.81,
                       "density": 0.95, "coverage": 0.9}}}, reference)
    section = quality.report_section({"quality_reference": [str(reference)], "quality_runs": [str(p) for p in runs]})
    data = section["data"]
    assert data["bootstrap"] == "20" and data["fd_inf"]
    errors = {(e["model"], e["epoch"]): e for e in data["errors"]}
    vae = errors[("VAE", 200)]
    assert vae["fid"] == "1.25 ± 0.25" and vae["fid_ci"] == "2.50 – 3.40" and vae["fd_inf"] == "3.10 ± 0.05"
    assert vae["kid"] == "0.0100 ± 0.0010" and vae["coverage"] == "0.800 ± 0.010"
    # the two runs at n = 10 and 20 tie; the larger n is the one compared against, so the GAN's two
    # epochs and the reference (at 10) are flagged, the VAE's not
    assert data["compared"]["n"] == 20 and data["flagged"] == 3 and vae["flag"] == "–"
    real = errors[("real validation images", "–")]
    assert real["fid"] == "0.50 ± 0.10" and real["fd_inf"] == "–" and real["flag"] == "n = 10, not 20"
    out = report.Renderer(REPO / "report", REPO / "workflow/report", {}).section(section)
    html = " ".join(out["html"].split())
    assert "Uncertainty and comparability" in html and "Which bootstrap" in html and "Why a bootstrap" in html
    assert "3.10 ± 0.05" in html and "n = 10, not 20" in html and "(3 rows here)" in html
    assert "\\mathrm{FD}_\\infty" in out["tex"] and out["tex"].count("\\begin{tabular}") == 4
