import numpy as np
import pytest
import scipy.linalg
import torch

from dgm.quality import (
    Classifier,
    ClassifierConfig,
    accuracy,
    classifier_fid,
    feature_statistics,
    features,
    frechet_distance,
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


# ---------------------------------------------------------------------------- Fréchet distance


def random_cov(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, 2 * dim))
    return a @ a.T / (2 * dim)


def trace_sqrt_product(s1, s2) -> float:
    """Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}, via symmetric eigendecompositions only."""
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum())


def test_distance_of_a_gaussian_to_itself_is_zero():
    mu, cov = np.random.default_rng(0).normal(size=32), random_cov(32, 1)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-6


def test_distance_of_a_sample_set_to_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 64)) * 3 + 1
    stats = feature_statistics(feats)
    assert abs(frechet_distance(*stats, *stats)) < 1e-6


def test_distance_of_diagonal_gaussians_matches_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    v1, v2 = rng.uniform(0.1, 4, size=20), rng.uniform(0.1, 4, size=20)
    # Tr(S1 + S2 - 2 (S1 S2)^{1/2}) with commuting diagonals = sum (sqrt v1 - sqrt v2)^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-10)
    assert frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(9.0 + 1.0)


def test_distance_of_full_gaussians_matches_an_independent_formula():
    rng = np.random.default_rng(3)
    mu1, mu2, s1, s2 = rng.normal(size=16), rng.normal(size=16), random_cov(16, 4), random_cov(16, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-8)  # symmetric


def test_singular_covariances_get_the_diagonal_offset():
    rng = np.random.default_rng(6)
    low_rank = rng.normal(size=(8, 3))
    s1 = low_rank @ low_rank.T  # rank 3 of 8: a dead-feature situation
    s2 = random_cov(8, 7)
    s2[:, 0] = s2[0, :] = 0.0  # a feature that never fires
    mu = np.zeros(8)
    got = frechet_distance(mu, s1, mu, s2, eps=1e-6)
    offset = np.eye(8) * 1e-6
    expected = np.trace(s1) + np.trace(s2) + 16e-6 - 2 * trace_sqrt_product(s1 + offset, s2 + offset)
    assert got == pytest.approx(expected, abs=1e-7)
    assert abs(frechet_distance(mu, s1, mu, s1)) < 1e-6


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
    feats = torch.randn(50, 4, generator=gen(0))
    mu, cov = feature_statistics(feats)
    x = feats.double().numpy()
    assert mu.dtype == cov.dtype == np.float64
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, (x - x.mean(0)).T @ (x - x.mean(0)) / 49, rtol=1e-10)
    with pytest.raises(ValueError):
        feature_statistics(feats[:1])


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_sqrtm_matches_the_reference_it_replaces():
    """Guards the assumption that scipy's sqrtm gives the principal root for our PSD products."""
    s1, s2 = random_cov(10, 8), random_cov(10, 9)
    assert np.trace(scipy.linalg.sqrtm(s1 @ s2)).real == pytest.approx(trace_sqrt_product(s1, s2), rel=1e-8)


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


def test_classifier_fid_orders_distributions(trained):
    a, _ = blob_digits(600, seed=10)
    b, _ = blob_digits(600, seed=11)  # same distribution, fresh draws
    c, _ = blob_digits(600, seed=12, classes=[0, 1])  # only two of ten classes: mode collapse
    assert abs(classifier_fid(trained, a, a)) < 1e-6
    same, collapsed = classifier_fid(trained, a, b), classifier_fid(trained, a, c)
    assert 0 < same < collapsed / 5
