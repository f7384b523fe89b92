"""dgm.memorisation and dgm.tasks.memorisation: known answers. A copycat whose samples are training
points is flagged by every check; fresh draws of the data distribution ("held-out images as
samples") by none; hand-computed distances, U statistics, C_T and authenticity on a few points,
including the case the authors' first authenticity code got wrong."""
import json
import math

import pytest
import torch
from scipy.stats import mannwhitneyu

from dgm import io, registry
from dgm import memorisation as mem
from dgm.gan import GAN, GANConfig
from dgm.quality import Classifier
from dgm.tasks.memorisation import SUMMARY_HEADER, default_cells, memorisation, summary_rows


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- synthetic features

DIM, CLUSTERS = 16, 10


def gaussian_clusters(seed: int = 0):
    """A draw function of a mixture of 10 unit Gaussians in 16-d whose means are 4 apart on average."""
    centres = torch.randn(CLUSTERS, DIM, generator=gen(seed)) * 4

    def draw(n: int, g: torch.Generator) -> torch.Tensor:
        return centres[torch.randint(CLUSTERS, (n,), generator=g)] + torch.randn(n, DIM, generator=g)  # (n, 16)

    return draw


@pytest.fixture(scope="module")
def sets():
    """Training (4,000), held-out (2,000) and fresh "generated" (2,000) features of one distribution."""
    draw, g = gaussian_clusters(0), gen(1)
    return {"train": draw(4000, g), "test": draw(2000, g), "fresh": draw(2000, g)}


def checks(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor, *, cells: int = 10, seed: int = 0):
    """All three checks of samples against held-out features, as the task computes them."""
    d_s, i_s = mem.nearest_neighbours(samples, train)
    d_t, i_t = mem.nearest_neighbours(test, train)
    nn = mem.distance_summary(d_s, d_t)
    ct = mem.data_copying_test(train, test, samples, cells=cells, generator=gen(seed))
    a_s = mem.authenticity(samples, train, neighbours=(d_s, i_s))["authenticity"]
    a_t = mem.authenticity(test, train, neighbours=(d_t, i_t))["authenticity"]
    z = mem.binomial_z(a_s, len(samples), a_t, len(test))
    return {"nn": nn, "ct": ct, "auth": a_s, "auth_held_out": a_t, "auth_z": z,
            "verdicts": (mem.verdict_distances(nn), mem.verdict_c_t(ct), mem.verdict_authenticity(z))}


# --------------------------------------------------------------------------- exact small cases


def test_nearest_neighbours_by_hand_in_any_block_size():
    reference = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    queries = torch.tensor([[1.0, 0.0], [0.0, 5.0], [3.0, 4.0], [3.0, 0.0]])
    for block in (1, 3, 7, 2**24):  # one row of scores at a time, ..., all at once
        d, i = mem.nearest_neighbours(queries, reference, block=block)
        assert d.dtype == torch.float64
        assert i.tolist() == [0, 2, 2, 1] and d.tolist() == [1.0, 1.0, 3.0, 0.0]  # (3, 4): 3 to (0, 4), 4 to (3, 0)
    d, i = mem.nearest_neighbours(reference, reference, exclude=torch.arange(3))  # each point's own neighbour
    assert i.tolist() == [1, 0, 0] and d.tolist() == [3.0, 3.0, 4.0]


def test_nearest_neighbours_of_an_exact_copy_is_zero_not_rounding_error():
    train = torch.randn(500, 128, generator=gen(0)) * 10 + 50  # large norms: ||x||^2 ~ 3e5 in float32
    d, i = mem.nearest_neighbours(train[100:110], train)
    assert i.tolist() == list(range(100, 110)) and d.eq(0).all()


def test_distance_summary_by_hand():
    held_out = torch.arange(1.0, 101.0)  # 1..100: 1st percentile 1.99, 5th 5.95 (linear interpolation)
    generated = torch.tensor([0.5, 1.5, 3.0, 50.0])
    s = mem.distance_summary(generated, held_out)
    assert s["held_out_q01"] == pytest.approx(1.99) and s["held_out_q05"] == pytest.approx(5.95)
    assert s["fraction_below_q01"] == 0.5 and s["fraction_below_q05"] == 0.75
    assert s["held_out_fraction_below_q01"] == 0.01
    assert s["median_generated"] == 1.5 and s["median_held_out"] == 50.0  # torch's median: the lower middle
    assert s["median_ratio"] == pytest.approx(0.03)
    assert s["z"] == pytest.approx((0.5 - 0.01) / math.sqrt(0.01 * 0.99 * (1 / 4 + 1 / 100)))


def test_mann_whitney_u_by_hand_and_against_scipy():
    assert mem.mann_whitney_u(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.5])) == 3.0
    assert mem.mann_whitney_u(torch.tensor([1.0, 2.0]), torch.tensor([2.0])) == 0.5  # a tie counts one half
    x = torch.randint(0, 20, (57,), generator=gen(0)).double()  # many ties
    y = torch.randint(0, 25, (31,), generator=gen(1)).double()
    assert mem.mann_whitney_u(x, y) == mannwhitneyu(x.numpy(), y.numpy()).statistic
    assert mem.mann_whitney_u(x, y) + mem.mann_whitney_u(y, x) == len(x) * len(y)


def test_c_t_by_hand_on_two_cells():
    """1-d points in two cells far apart (k-means finds centroids 5 and 105 from any seeding):
    training 0, 10 | 100, 110; held-out 1, 2, 3 | 101; generated 0.5, 2.5, 11, 14 | 104, 112."""
    train = torch.tensor([[0.0], [10.0], [100.0], [110.0]])
    held_out = torch.tensor([[1.0], [2.0], [3.0], [101.0]])
    generated = torch.tensor([[0.5], [2.5], [11.0], [14.0], [104.0], [112.0]])
    # Cell A: held-out distances 1, 2, 3; generated 0.5, 2.5, 1, 4: U = 0 + 2 + 0.5 + 3 = 5.5, m = 4, n = 3.
    z_a = (5.5 - 6) / math.sqrt(4 * 3 * 8 / 12)
    # Cell B: held-out distance 1; generated 4, 2: U = 2, m = 2, n = 1.
    z_b = (2 - 1) / math.sqrt(2 * 1 * 4 / 12)
    for seed in range(5):
        both = mem.data_copying_test(train, held_out, generated, cells=2, min_generated=2, generator=gen(seed))
        assert sorted(c["Z_U"] for c in both["per_cell"]) == pytest.approx(sorted([z_a, z_b]))
        assert both["C_T"] == pytest.approx(0.75 * z_a + 0.25 * z_b)  # weights: held-out shares 3/4, 1/4
        assert both["null_sd"] == pytest.approx(math.sqrt(0.75**2 + 0.25**2))
        assert both["cells_used"] == 2 and both["test_share_used"] == 1.0
        # Cell B has 2 generated points: below min_generated = 3 it leaves Pi_tau, and C_T is cell A's Z_U.
        one = mem.data_copying_test(train, held_out, generated, cells=2, min_generated=3, generator=gen(seed))
        assert one["C_T"] == pytest.approx(z_a) and one["null_sd"] == 1.0 and one["test_share_used"] == 0.75
        none = mem.data_copying_test(train, held_out, generated, cells=2, min_generated=5, generator=gen(seed))
        assert none["C_T"] is None and mem.verdict_c_t(none) == "undetermined"


def test_c_t_distances_are_to_the_training_points_of_the_cell():
    """Training 0..10 (cell A, centroid 5) and 22..48 (cell B, centroid 35); every other point is in A.
    Within A the held-out points 12 and 19 are 2 and 9 from the training set, the generated points
    19.5 and 15 are 9.5 and 5 away: U = 3, Z_U = (3 - 2) / sqrt(4 * 5 / 12) = sqrt(3/5). Measured to
    the whole training set, 19 and 19.5 would be 3 and 2.5 from 22, and Z_U another number."""
    train = torch.cat([torch.arange(0.0, 11.0), torch.arange(22.0, 49.0)]).unsqueeze(1)
    held_out, generated = torch.tensor([[12.0], [19.0]]), torch.tensor([[19.5], [15.0]])
    for seed in range(5):
        out = mem.data_copying_test(train, held_out, generated, cells=2, min_generated=1, generator=gen(seed))
        cells = sorted((c["train"], c["held_out"], c["generated"], c["Z_U"]) for c in out["per_cell"])
        assert cells[1] == (27, 0, 0, None) and cells[0][:3] == (11, 2, 2)
        assert out["C_T"] == pytest.approx(math.sqrt(3 / 5)) and out["cells_used"] == 1


def test_authenticity_by_hand_where_the_authors_first_code_was_wrong():
    """Training (0, 0), (3, 0), (0, 4): each one's own nearest neighbour is 3, 3, 4 away.
    (0.5, 0) is 0.5 from (0, 0) < 3: unauthentic. (10, 0) is 7 from (3, 0) > 3: authentic. So 1/2.
    The first code took, for each *training* point, its nearest generated point j and compared the
    training-to-training distance of training point j: 3 < 0.5, 3 < 2.5, 3 < 4.03, i.e. 1/3."""
    train = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    generated = torch.tensor([[0.5, 0.0], [10.0, 0.0]])
    out = mem.authenticity(generated, train)
    assert out["authentic"].tolist() == [False, True] and out["authenticity"] == 0.5
    real_to_real = mem.nearest_neighbours(train, train, exclude=torch.arange(3))[0]
    real_to_synth, real_to_synth_args = mem.nearest_neighbours(train, generated)
    first_code = (real_to_real[real_to_synth_args] < real_to_synth).double().mean().item()
    assert first_code == pytest.approx(1 / 3)  # the test tells the two apart
    # A tie is not authentic: an exact copy of a training point that is itself duplicated (both distances 0).
    dup = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    assert mem.authenticity(torch.tensor([[0.0, 0.0]]), dup)["authenticity"] == 0.0


def test_kmeans_finds_separated_clusters_and_is_seeded():
    draw = gaussian_clusters(3)
    x = draw(2000, gen(4))
    a = mem.kmeans(x, 5, generator=gen(7))
    assert torch.equal(a, mem.kmeans(x, 5, generator=gen(7)))
    tight = torch.cat([torch.randn(100, 2, generator=gen(i)) * 0.1 + torch.tensor([10.0 * i, 0.0]) for i in range(3)])
    c = mem.kmeans(tight, 3, generator=gen(0))
    assert sorted(round(v) for v in c[:, 0].tolist()) == [0, 10, 20]
    with pytest.raises(ValueError, match="k-means"):
        mem.kmeans(tight, 301, generator=gen(0))


# --------------------------------------------------------------------------- known answers on clusters


def test_copycat_is_flagged_by_every_check(sets):
    out = checks(sets["train"][:2000], sets["train"], sets["test"])
    assert out["nn"]["median_generated"] == 0.0 and out["nn"]["fraction_below_q01"] == 1.0
    assert out["nn"]["median_held_out"] > 2.0  # held-out images are far from any training point
    assert out["ct"]["C_T"] < -10 and out["ct"]["z"] < -30  # every cell's U is 0
    assert out["auth"] == 0.0 and out["auth_held_out"] > 0.5
    assert out["verdicts"] == ("data-copying",) * 3


def test_half_copycat_is_flagged_too(sets):
    out = checks(torch.cat([sets["train"][:1000], sets["fresh"][:1000]]), sets["train"], sets["test"])
    assert out["nn"]["fraction_below_q01"] == pytest.approx(0.5, abs=0.02)
    assert out["auth"] == pytest.approx(out["auth_held_out"] / 2, abs=0.05)
    assert out["verdicts"] == ("data-copying",) * 3


def test_held_out_images_as_samples_are_not_flagged(sets):
    out = checks(sets["fresh"], sets["train"], sets["test"])
    assert abs(out["ct"]["z"]) < mem.FLAG_Z and out["ct"]["cells_used"] == 10
    assert out["auth"] == pytest.approx(out["auth_held_out"], abs=0.05)
    assert out["nn"]["median_ratio"] == pytest.approx(1.0, abs=0.05)
    assert out["nn"]["fraction_below_q01"] < 0.03 and out["nn"]["fraction_below_q05"] == pytest.approx(0.05, abs=0.02)
    assert out["verdicts"] == ("not flagged",) * 3


def test_samples_farther_than_held_out_images_are_underfitting_not_copying(sets):
    noisy = sets["fresh"] + 0.7 * torch.randn(sets["fresh"].shape, generator=gen(5))
    out = checks(noisy, sets["train"], sets["test"])
    assert out["nn"]["median_ratio"] > 1.05
    assert out["verdicts"] == ("not flagged", "underfitting", "not flagged")


def test_c_t_has_its_null_spread_under_the_null():
    """Replicates of fresh training, held-out and generated sets: C_T / null_sd is about N(0, 1)."""
    draw = gaussian_clusters(2)
    zs = []
    for r in range(40):
        g = gen(100 + r)
        out = mem.data_copying_test(draw(600, g), draw(300, g), draw(300, g), cells=4, generator=g)
        assert out["cells_used"] == 4
        zs.append(out["z"])
    zs = torch.tensor(zs)
    assert abs(zs.mean()) < 0.5 and 0.65 < zs.std() < 1.4  # 40 draws: SE of the mean 0.16, of the SD ~0.11


# --------------------------------------------------------------------------- the task


def _save(model, path):
    io.torch_save({"version": 1, "model": model.describe(),
                   "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
    return str(path)


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """A tiny classifier, a tiny GAN and splits of random uint8 images, saved as the pipeline saves them."""
    folder = tmp_path_factory.mktemp("memorisation")
    g = gen(0)
    splits = {f"{name}_images": (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8)
              for name, n in (("train", 300), ("valid", 20), ("test", 200))}
    io.torch_save({**splits, "meta": {"dataset": "mnist"}}, folder / "splits.pt")
    torch.manual_seed(0)
    return {"folder": folder, "splits": splits, "splits_path": str(folder / "splits.pt"),
            "classifier": _save(Classifier(channels1=4, channels2=8, hidden_dim=16), folder / "classifier.pt"),
            "gan": _save(GAN(GANConfig(latent_dim=4, hidden_dim=8)), folder / "gan.pt")}


def run_task(files, model_path, run, **options):
    out = files["folder"] / "results/mnist" / run / "memorisation.json"
    result = memorisation(model_path=model_path, classifier_path=files["classifier"],
                          splits_path=files["splits_path"], output_path=str(out),
                          figure_path=str(out.with_name("memorisation.png")), n_samples=100, seed=3, batch_size=64,
                          device="cpu", cells=2, min_generated=10, **options)
    return out, result


def test_task_writes_numbers_verdicts_and_the_figure(task_files):
    out, result = run_task(task_files, task_files["gan"], "gan/z4/seed0")
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert (result["model"], result["latent_dim"], result["n_train"], result["n_test"]) == ("GAN", 4, 300, 200)
    assert result["feature_dim"] == 16 and len(result["classifier_sha256"]) == 64
    for check in ("nearest_neighbour", "data_copying", "authenticity"):
        assert result[check]["verdict"] in mem.VERDICTS
    assert len(result["closest"]) == 8
    distances = [c["distance"] for c in result["closest"]]
    assert distances == sorted(distances) and distances[-1] <= result["nearest_neighbour"]["median_generated"]
    assert out.with_name("memorisation.png").stat().st_size > 0 and out.with_name("memorisation.pdf").stat().st_size > 0
    _, again = run_task(task_files, task_files["gan"], "gan/z4/seed0")
    assert again["data_copying"] == result["data_copying"]  # seeded: the same samples and cells
    assert result["data_copying"]["cells"] == 2
    [row] = summary_rows([str(out)])
    assert list(row) == SUMMARY_HEADER
    assert (row["model"], row["latent"], row["seed"], row["n_samples"]) == ("gan", 4, 0, 100)
    assert row["c_t"] == result["data_copying"]["C_T"]


def test_default_cells_give_about_200_samples_a_cell():
    assert [default_cells(n) for n in (100, 200, 2000, 10000, 60000)] == [1, 1, 10, 50, 50]


def test_task_flags_a_copycat_model_file(task_files, monkeypatch):
    """A model that is a file of training images (an external "Samples" model): every check flags it,
    and the figure's nearest pairs are the very training images it copied."""
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))  # the copycat registers itself: not for good
    pick = torch.randperm(300, generator=gen(1))[:100]
    images = task_files["splits"]["train_images"][pick].unsqueeze(1)  # (100, 1, 28, 28) uint8
    description = {"class": "Samples", "name": "copycat", "title": "copycat", "data": "grey",
                   "capabilities": ["sampler"], "latent_dim": None, "n": 100}
    path = task_files["folder"] / "copycat.pt"
    io.torch_save({"version": 1, "model": description, "state_dict": {"images": images}}, path)
    out, result = run_task(task_files, str(path), "copycat/z0/seed0")
    assert result["model"] == "copycat"
    assert result["nearest_neighbour"]["median_generated"] == 0.0
    assert result["authenticity"]["authenticity"] == 0.0
    assert result["data_copying"]["C_T"] < 0
    assert [result[c]["verdict"] for c in ("nearest_neighbour", "data_copying", "authenticity")] == ["data-copying"] * 3
    assert {c["train"] for c in result["closest"]} <= set(pick.tolist())
    assert all(c["distance"] == 0.0 for c in result["closest"])
    [row] = summary_rows([str(out)])
    assert (row["model"], row["nn_verdict"], row["c_t_verdict"], row["authenticity_verdict"]) == (
        "copycat", "data-copying", "data-copying", "data-copying")
