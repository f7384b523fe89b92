import numpy as np
import pytest
import scipy.linalg
import torch

from dgm.quality import (
    Classifier,
    ClassifierConfig,
    SampleMetrics,
    accuracy,
    features,
    predict,
    train_classifier,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blob_digits(n: int, seed: int, classes=range(10)) -> tuple[torch.Tensor, torch.Tensor]:
    """n synthetic 'digits' in [0, 1]: class k is a fixed pattern of three Gaussian blobs (the same
    patterns for every seed) plus pixel noise and a random brightness (drawn from ``seed``)."""
    patterns_rng = gen(1234)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    patterns = torch.zeros(10, 28, 28)
    for k in range(10):
        for cy, cx in torch.rand(3, 2, generator=patterns_rng) * 20 + 4:
            patterns[k] += torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
    patterns = patterns.clamp(0, 1)
    g = gen(seed)
    classes = torch.tensor(list(classes))
    labels = classes[torch.randint(len(classes), (n,), generator=g)]
    brightness = torch.rand(n, 1, 1, generator=g) * 0.5 + 0.5
    images = patterns[labels] * brightness + 0.25 * torch.randn(n, 28, 28, generator=g)
    return images.clamp(0, 1).unsqueeze(1), labels  # (n, 1, 28, 28), (n,)


@pytest.fixture(scope="module")
def trained():
    """A classifier trained for two epochs on 1,000 blob digits (about a second on two cores)."""
    images, labels = blob_digits(1000, seed=0)
    return train_classifier(images, labels, epochs=2, batch_size=64, lr=1e-3, generator=gen(0))[0]



# ---------------------------------------------------------------------------- sample metrics (libraries)


def pytorch_fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance as the pipeline computed it before the libraries (pytorch-fid's
    formula: float64 mean and unbiased covariance, scipy's sqrtm): the oracle for the agreement test."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def feature_sets(n=2000, dim=32, seed=0):
    g = gen(seed)
    mix = torch.randn(dim, dim, generator=g) / dim**0.5
    real = torch.randn(n, dim, generator=g) @ mix + 1.0
    fake = (torch.randn(n, dim, generator=g) * 1.2 + 0.1) @ mix + 1.0
    return real, fake


def test_library_fid_equals_the_pipelines_former_frechet_distance():
    real, fake = feature_sets()
    got = SampleMetrics(real, kid_subsets=2, kid_subset_size=100).fid(fake)
    expected = pytorch_fid_reference(real.double().numpy(), fake.double().numpy())
    assert got == pytest.approx(expected, rel=1e-6)
    # and the oracle itself on a closed form: diagonal Gaussians, sum (mu1 - mu2)^2 + (sqrt v1 - sqrt v2)^2
    x = np.random.default_rng(1).normal(size=(200_000, 1))
    assert pytorch_fid_reference(x, 2 * x + 3) == pytest.approx(9.0 + 1.0, rel=1e-2)


def test_fid_of_a_set_to_itself_is_zero_and_kid_is_unbiased():
    real, fake = feature_sets()
    metrics = SampleMetrics(real, kid_subsets=50, kid_subset_size=500, seed=3)
    assert abs(metrics.fid(real)) < 1e-6
    same = SampleMetrics(real[:1000], kid_subsets=50, kid_subset_size=500).kid(real[1000:])  # one distribution
    assert abs(same["kid_mean"]) < 3 * same["kid_std"]  # unbiased: centred on 0 (FID of two draws is > 0)
    other = metrics.kid(fake)
    assert other["kid_mean"] > 3 * other["kid_std"] and other["kid_subset_size"] == 500


def test_kid_is_reproducible_from_its_seed_and_leaves_global_rng_alone():
    real, fake = feature_sets(n=400)
    state = torch.random.get_rng_state()
    a = SampleMetrics(real, kid_subsets=5, kid_subset_size=100, seed=1).kid(fake)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a == SampleMetrics(real, kid_subsets=5, kid_subset_size=100, seed=1).kid(fake)
    assert a != SampleMetrics(real, kid_subsets=5, kid_subset_size=100, seed=2).kid(fake)
    assert SampleMetrics(real, kid_subset_size=1000).kid(fake[:50])["kid_subset_size"] == 50  # capped by the sets


def test_precision_recall_density_coverage_separate_fidelity_from_diversity():
    real, _ = feature_sets(n=1000)
    metrics = SampleMetrics(real, kid_subsets=2, kid_subset_size=100, nearest_k=5)
    identical = metrics.prdc(real)
    assert identical["precision"] == identical["recall"] == identical["coverage"] == 1.0
    collapsed = metrics.prdc(real[:50].repeat(20, 1))  # faithful but only 50 distinct points: mode dropping
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.3
    off = metrics.prdc(real + 100.0)  # far from every real point
    assert off["precision"] == off["density"] == off["coverage"] == 0.0
    with pytest.raises(ValueError, match="nearest_k"):
        SampleMetrics(real[:5], nearest_k=5).prdc(real[:5])


# ---------------------------------------------------------------------------- classifier


def test_classifier_shapes_and_options():
    torch.manual_seed(0)
    model = Classifier().eval()
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert torch.equal(model(x.flatten(1)), model(x))
    assert features(model, x).shape == (5, 128)
    assert model.describe()["hidden_dim"] == 128
    with pytest.raises(ValueError, match="width"):
        ClassifierConfig.from_dict({"width": 3})


def test_classifier_learns_separable_digits(trained):
    images, labels = blob_digits(500, seed=1)  # held out: fresh noise and brightness
    assert accuracy(trained, images, labels) > 0.9
    assert not trained.training


def test_untrained_classifier_is_near_chance():
    """Calibrates the test above: the blob task is not solved without training."""
    images, labels = blob_digits(500, seed=1)
    torch.manual_seed(0)
    assert accuracy(Classifier(), images, labels) < 0.5


def test_training_is_reproducible_and_leaves_global_rng_alone():
    images, labels = blob_digits(128, seed=2)
    valid = blob_digits(64, seed=7)
    state = torch.random.get_rng_state()
    a, rows = train_classifier(images, labels, epochs=1, batch_size=32, lr=1e-3, generator=gen(5), valid=valid)
    assert torch.equal(torch.random.get_rng_state(), state)
    b, _ = train_classifier(images, labels, epochs=1, batch_size=32, lr=1e-3, generator=gen(5))
    c, _ = train_classifier(images, labels, epochs=1, batch_size=32, lr=1e-3, generator=gen(6))
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), name  # validation passes draw nothing: same weights with and without
    assert not all(torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))
    assert [r["epoch"] for r in rows] == [0, 1]
    assert set(rows[1]) == {"epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                            "train_seconds", "seconds"}
    assert rows[1]["valid_accuracy"] == accuracy(a, *valid)  # fit's validation pass is the accuracy function's


def test_classifier_training_resumes_exactly(tmp_path):
    """Through dgm.training.fit the classifier resumes from its checkpoint bit for bit."""
    images, labels = blob_digits(96, seed=4)
    kw = dict(batch_size=32, lr=1e-3, checkpoint_path=tmp_path / "resume.pt", metrics_path=tmp_path / "m.csv",
              fingerprint="f")
    full, _ = train_classifier(images, labels, epochs=2, generator=gen(3), **{**kw, "checkpoint_path": None})
    train_classifier(images, labels, epochs=1, generator=gen(3), **kw)  # leaves its epoch-1 checkpoint
    resumed, rows = train_classifier(images, labels, epochs=2, generator=gen(3), **kw)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for (name, p), q in zip(full.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), name


def test_evaluation_restores_training_mode(trained):
    images, labels = blob_digits(20, seed=3)
    trained.train()
    try:
        accuracy(trained, images, labels)
        features(trained, images)
        assert trained.training
    finally:
        trained.eval()
    assert torch.equal(predict(trained, images, batch_size=7), predict(trained, images, batch_size=20))


def test_classifier_features_order_distributions(trained):
    a, _ = blob_digits(600, seed=10)
    b, _ = blob_digits(600, seed=11)  # same distribution, fresh draws
    c, _ = blob_digits(600, seed=12, classes=[0, 1])  # only two of ten classes: mode collapse
    metrics = SampleMetrics(features(trained, a), kid_subsets=10, kid_subset_size=300)
    assert abs(metrics.fid(features(trained, a))) < 1e-6
    same, collapsed = metrics(features(trained, b)), metrics(features(trained, c))
    assert 0 < same["fid"] < collapsed["fid"] / 5 and same["kid_mean"] < collapsed["kid_mean"] / 5
    assert collapsed["recall"] < same["recall"] and collapsed["coverage"] < same["coverage"]
