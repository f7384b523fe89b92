import numpy as np
import pytest
import scipy.linalg
import torch

from dgm.quality import (
    Classifier,
    ClassifierConfig,
    ResampledMetrics,
    SampleMetrics,
    accuracy,
    fd_infinity,
    features,
    frechet_distance,
    predict,
    resample_radii,
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


# ---------------------------------------------------------------------------- known answers, errors, FD∞


def test_identical_sets_give_zero_distances_and_full_precision_recall_density_coverage():
    """Generated features identical to the real ones: FID 0, KID 0 (to O(1/N)), precision = recall = 1,
    and density = coverage = 1, which their definitions give when the k-NN radii exclude the point
    itself (a ball holds its centre and k - 1 neighbours, its k-th on the boundary). prdc's radii do;
    its issue #7 (0 for identical sets) is a set of one point repeated, whose radii are 0 and whose
    open balls are empty; features of distinct images are distinct. The bootstrap's own computation
    on the original sets (a row of ones) gives the same."""
    real, _ = feature_sets(n=600, dim=8)
    metrics = SampleMetrics(real, kid_subsets=400, kid_subset_size=300, nearest_k=5, seed=1)
    out = metrics(real)
    assert abs(out["fid"]) < 1e-6
    assert [out[k] for k in ("precision", "recall", "density", "coverage")] == [1.0, 1.0, 1.0, 1.0]
    # KID draws the two sets' subsets apart, so a cross pair is one image twice with odds 1/N: its exact
    # expectation is 2 (mean kernel over pairs of different images - mean over all pairs), O(1/N) below 0.
    kernel = (real.double() @ real.double().T / real.shape[1] + 1) ** 3
    n = len(real)
    expected = float(2 * ((kernel.sum() - kernel.trace()) / (n * (n - 1)) - kernel.mean()))
    assert out["kid_mean"] == pytest.approx(expected, abs=4 * out["kid_std"] / 400**0.5)
    ones = torch.ones(1, n, dtype=torch.float64)
    own = {k: float(v[0]) for k, v in ResampledMetrics(real, real, ones, ones, nearest_k=5).compute().items()}
    assert abs(own["fid"]) < 1e-4 and abs(own["kid"] - float(2 * (kernel.sum() - kernel.trace()) / (n * (n - 1))
                                                             - 2 * kernel.mean())) < 1e-6
    assert [own[k] for k in ("precision", "recall", "density", "coverage")] == [1.0, 1.0, 1.0, 1.0]
    # the k-NN radius including the point itself (one neighbour short) would give density (k - 1) / k
    radii_with_self = torch.cdist(real, real).kthvalue(5, dim=1).values  # self at 0 is the 1st
    assert float((torch.cdist(real, real) < radii_with_self[:, None]).sum(0).double().mean() / 5) == 0.8


def test_resampled_metrics_of_the_original_sets_are_the_libraries_values():
    """A row of ones is the original sets: FID as torchmetrics (float32 sums of squares), the MMD²
    that KID's subsets average (all pairs), and prdc's precision, recall, density and coverage."""
    real, fake = feature_sets(n=700, dim=16)
    fake = fake[:500]
    metrics = SampleMetrics(real, kid_subsets=2, kid_subset_size=100, nearest_k=4)
    ones_r, ones_f = torch.ones(1, 700, dtype=torch.float64), torch.ones(1, 500, dtype=torch.float64)
    own = {k: float(v[0]) for k, v in ResampledMetrics(real, fake, ones_r, ones_f, nearest_k=4, chunk=128)
           .compute().items()}
    assert own["fid"] == pytest.approx(metrics.fid(fake), rel=1e-5)
    k_rr, k_ff = ((x.double() @ x.double().T / 16 + 1) ** 3 for x in (real, fake))
    k_rf = (real.double() @ fake.double().T / 16 + 1) ** 3
    mmd = ((k_rr.sum() - k_rr.trace()) / (700 * 699) + (k_ff.sum() - k_ff.trace()) / (500 * 499) - 2 * k_rf.mean())
    assert own["kid"] == pytest.approx(float(mmd), rel=1e-5)
    assert {k: own[k] for k in ("precision", "recall", "density", "coverage")} == metrics.prdc(fake)


def test_resampled_radii_leave_out_copies_of_the_point_itself():
    """prdc issue #7 inside a bootstrap: a point drawn more than k times would have a k-NN radius of 0
    (nothing strictly inside) if its own copies counted. They do not: its radius is the distance at
    which the draws of other points reach k. Points on a line at 0, 1, 3, 6, 10; k = 2."""
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])
    dist = torch.cdist(x, x).fill_diagonal_(float("inf"))
    nn_dist, nn_idx = dist.topk(4, dim=1, largest=False)
    w = torch.tensor([[3.0, 1.0, 0.0, 1.0, 0.0],  # 0 thrice, 1 and 6 once
                      [1.0, 1.0, 1.0, 1.0, 1.0]])  # the original set
    radii = resample_radii(nn_dist, nn_idx, w, k=2)
    assert radii[0].tolist() == [6.0, 1.0, -1.0, 6.0, -1.0]  # 0: the draws of 1 (at 1) and 6 (at 6); absent: -1
    assert radii[1].tolist() == [3.0, 2.0, 3.0, 4.0, 7.0]  # the 2nd nearest other point, as prdc


def test_bootstrap_adds_errors_and_leaves_every_value_as_it_was():
    """The bootstrap draws from a generator of its own: the point values and the global RNG are as
    without it, its errors repeat under one seed and change with another."""
    real, fake = feature_sets(n=500, dim=16)
    state = torch.random.get_rng_state()
    plain = SampleMetrics(real, kid_subsets=5, kid_subset_size=100, seed=3)(fake)
    with_errors = SampleMetrics(real, kid_subsets=5, kid_subset_size=100, bootstrap=20, seed=3)(fake)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert {k: with_errors[k] for k in plain} == plain
    names = ("fid", "kid", "precision", "recall", "density", "coverage")
    assert with_errors["bootstrap"] == 20 and all(with_errors[f"{m}_se"] > 0 for m in names)
    for m, value in zip(names, (plain["fid"], plain["kid_mean"], *(plain[k] for k in names[2:]))):
        lo, hi = with_errors[f"{m}_ci"]
        assert lo < hi, m
        if m != "fid":  # FID's interval is for the distance at infinite n: below FID by its bias
            assert lo < value <= hi, m
            if hi < 1.0:  # not cut at a proportion's top
                assert hi - lo == pytest.approx(2 * 1.959964 * with_errors[f"{m}_se"]), m
    assert with_errors == SampleMetrics(real, kid_subsets=5, kid_subset_size=100, bootstrap=20, seed=3)(fake)
    other = SampleMetrics(real, kid_subsets=5, kid_subset_size=100, bootstrap=20, seed=4)(fake)
    assert other["fid"] == plain["fid"] and other["fid_se"] != with_errors["fid_se"]
    with pytest.raises(ValueError, match="bootstrap"):
        SampleMetrics(real, bootstrap=1)


def test_bootstrap_interval_of_fid_covers_the_population_value_at_its_rate():
    """A seeded simulation: 200 pairs of Gaussian feature sets (16 dimensions, 400 each) whose Fréchet
    distance is known; the 95% interval holds it in 0.95 of them within sampling error (binomial SD
    0.015: the band 0.95 ± 3 SD). At this n FID's bias is about three of its SEs, so an interval that
    ignored it (value ± 1.96 SE) would hold the distance in about a quarter of the repetitions."""
    d, n, reps = 16, 400, 200
    g = gen(0)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    cov_real = a @ a.T + 0.5 * torch.eye(d, dtype=torch.float64)
    cov_fake, mu_fake = 1.5 * cov_real, torch.full((d,), 0.2, dtype=torch.float64)
    population = float(frechet_distance(torch.zeros(d, dtype=torch.float64), cov_real, mu_fake, cov_fake))
    chol_real, chol_fake = torch.linalg.cholesky(cov_real), torch.linalg.cholesky(cov_fake)
    held = naive = 0
    for r in range(reps):
        real = torch.randn(n, d, generator=g, dtype=torch.float64) @ chol_real.T
        fake = torch.randn(n, d, generator=g, dtype=torch.float64) @ chol_fake.T + mu_fake
        metrics = SampleMetrics(real, kid_subsets=2, kid_subset_size=50, bootstrap=50, seed=r)
        fid = metrics.fid(fake)
        out = metrics.uncertainty(fake, {"fid": fid})
        held += out["fid_ci"][0] <= population <= out["fid_ci"][1]
        naive += abs(fid - population) <= 1.959964 * out["fid_se"]
    sd = (0.95 * 0.05 / reps) ** 0.5
    assert abs(held / reps - 0.95) <= 3 * sd, held / reps
    assert naive / reps < 0.5


def test_fd_infinity_recovers_a_known_intercept():
    """FID = a + b / n exactly: the fit reads a at 1/n = 0 with no error; with noise, its error is the
    textbook one, s * sqrt(sum x² / (m sum (x - mean x)²)); two sizes leave no residual, one no line."""
    sizes, a, b = [1000, 2000, 5000, 10000], 12.5, 3.0e4
    fd, se = fd_infinity(sizes, [a + b / n for n in sizes])
    assert fd == pytest.approx(a, rel=1e-12) and se == pytest.approx(0.0, abs=1e-9)
    noisy = [a + b / n + e for n, e in zip(sizes, [0.3, -0.2, 0.1, -0.25])]
    fd, se = fd_infinity(sizes, noisy)
    x = np.array([1.0 / n for n in sizes])
    slope, intercept = np.polyfit(x, noisy, 1)
    s = np.sqrt(((np.array(noisy) - intercept - slope * x) ** 2).sum() / (len(x) - 2))
    assert fd == pytest.approx(intercept, rel=1e-9)
    assert se == pytest.approx(s * np.sqrt((x**2).sum() / (len(x) * ((x - x.mean()) ** 2).sum())), rel=1e-9)
    assert fd_infinity([1000, 2000], [a + b / 1000, a + b / 2000]) == (pytest.approx(a), None)
    assert fd_infinity([1000], [5.0]) == (None, None)


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
