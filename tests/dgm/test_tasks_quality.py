"""dgm.tasks.quality and dgm.tasks.gan helpers: sampling through the common verb, scoring, tables."""
import math

import pytest
import torch

from dgm import io
from dgm.distributions import interpolate_latents
from dgm.estimators import parzen_log_likelihood
from dgm.gan import GAN, GANConfig
from dgm.quality import Classifier, SampleMetrics, features
from dgm.tasks.gan import interpolation_rows
from dgm.tasks.quality import Scorer, draw_samples, table_rows, write_table


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


METRICS = {"kid_subsets": 4, "kid_subset_size": 8, "nearest_k": 3, "sample_sizes": [4, 8, 1000]}


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
