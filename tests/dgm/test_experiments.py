"""dgm.experiments: sweep points, run records, the runs table and the comparison of two studies."""
from __future__ import annotations

import json
import math

import pytest

from dgm import experiments, io, training


def test_sweep_points_are_every_combination_in_order():
    assert experiments.sweep_points(None) == [{}]
    points = experiments.sweep_points({"hidden_dim": [64, 128], "lr": [0.001, 0.0005]})
    assert points == [{"hidden_dim": 64, "lr": 0.001}, {"hidden_dim": 64, "lr": 0.0005},
                      {"hidden_dim": 128, "lr": 0.001}, {"hidden_dim": 128, "lr": 0.0005}]
    assert experiments.point_path(points[1]) == "hidden_dim~64/lr~0.0005/"
    assert experiments.point_path({}) == ""
    assert experiments.point_path({"learned_scale": True, "lr": 1e-5}) == "learned_scale~true/lr~1e-05/"
    assert experiments.parse_point("hidden_dim~64/lr~0.0005/") == {"hidden_dim": "64", "lr": "0.0005"}
    assert experiments.point_label("hidden_dim~64/lr~0.0005/") == "hidden_dim=64, lr=0.0005"


def _config(sweep):
    return {"models": ["vae"], "vae": {"hidden_dim": 500, "epochs": 3, "lr": 0.001}, "sweep": sweep}


def _validate(cfg):
    if not isinstance(cfg["vae"]["hidden_dim"], int) or cfg["vae"]["hidden_dim"] < 1:
        raise ValueError("vae.hidden_dim must be a positive integer")


@pytest.mark.parametrize("sweep, message", [
    ({"gan": {"hidden_dim": [1]}}, "sweep.gan: not a model of this run"),
    ({"vae": {"width": [1]}}, "sweep.vae.width: vae has no key 'width'"),
    ({"vae": {"epochs": [1, 2]}}, "sweep.vae.epochs: epochs decides which files a run declares"),
    ({"vae": {"hidden_dim": [64, 64]}}, "sweep.vae.hidden_dim: [64, 64] repeats a value"),
    ({"vae": {"hidden_dim": [0]}}, "sweep.vae.hidden_dim: 0 is refused: vae.hidden_dim must be"),
    ({"vae": {"lr": ["a/b"]}}, "sweep.vae.lr: 'a/b' cannot name a folder"),
])
def test_check_sweep_names_the_key(sweep, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        experiments.check_sweep(_config(sweep), _validate)
    experiments.check_sweep(_config({"vae": {"hidden_dim": [64, 128]}}), _validate)  # a good sweep passes


def test_config_hash_depends_on_what_defines_the_run_only():
    base = dict(model="vae", section={"hidden_dim": 64, "lr": 0.001}, data={"name": "mnist", "raw_dir": "/a"},
                latent=2, seed=0)
    h = experiments.config_hash(experiments.run_config(**base))
    assert h == experiments.config_hash(experiments.run_config(**{**base, "data": {"name": "mnist", "raw_dir": "/b"}}))
    assert h != experiments.config_hash(experiments.run_config(**{**base, "section": {"hidden_dim": 32, "lr": 0.001}}))
    assert h != experiments.config_hash(experiments.run_config(**{**base, "seed": 1}))
    more_sizes = {**base, "section": {"hidden_dim": 64, "lr": 0.001, "latent_sizes": [2, 20]}}
    assert h == experiments.config_hash(experiments.run_config(**more_sizes))  # which runs exist, not what one is
    assert len(h) == 12


def make_run(root, model, latent, seed, *, section, metrics, point=None, tests=None, quality=None):
    """A run folder as the pipeline writes it: run.json, metrics.csv and result files."""
    point = point or {}
    d = root / "results" / "mnist" / model / f"{experiments.point_path(point)}z{latent}" / f"seed{seed}"
    config = experiments.run_config(model=model, section=section, data={"name": "mnist"}, latent=latent, seed=seed,
                                    point=point)
    record = experiments.run_record(config=config, started="s", ended="e", device="cpu", repo_dir=root,
                                    command="snakemake")
    io.write_json(record, d / "run.json")
    training.write_csv([{"epoch": 0, **metrics}, {"epoch": 2, "train_seconds": 1.5, **metrics}], d / "metrics.csv")
    if tests:
        io.write_json(tests, d / "test_metrics.json")
    if quality:
        io.write_json({"evaluations": [{"epoch": 1, "fid": 999.0}, {"epoch": 2, **quality}]}, d / "quality.json")
    return d


def test_runs_table_has_a_row_per_run_the_differing_settings_and_every_metric(tmp_path):
    runs = [make_run(tmp_path, "vae", 2, s, section={"hidden_dim": h, "lr": 0.001}, point={"hidden_dim": h},
                     metrics={"valid_nelbo": 150.0 + h / 10 + s}, tests={"test_nelbo": 151.0 + h / 10 + s},
                     quality={"fid": 30.0 - s, "precision": 0.5})
            for h in (32, 64) for s in (0, 1)]
    runs.append(make_run(tmp_path, "gan", 8, 0, section={"hidden_dim": 8, "lr": 0.0002},
                         metrics={"valid_d_loss": 1.3}, quality={"fid": 50.0}))
    hyper, rows = experiments.runs_table(runs)
    assert hyper == ["vae.hidden_dim"]  # lr is the same for every VAE; the GAN's own settings do not count
    assert len(rows) == 5
    first = rows[0]
    assert (first["model"], first["point"], first["latent"], first["seed"]) == ("vae", "hidden_dim=32", 2, 0)
    assert first["vae.hidden_dim"] == 32 and first["valid_nelbo"] == pytest.approx(153.2)
    assert first["test_nelbo"] == pytest.approx(154.2) and first["fid"] == 30.0 and first["train_seconds"] == 1.5
    assert "fid" in rows[-1] and "test_nelbo" not in rows[-1]  # the GAN has no test ELBO
    summary = experiments.summarise(rows, hyper)
    vae64 = next(r for r in summary if r["point"] == "hidden_dim=64")
    assert vae64["seeds"] == "0 1" and vae64["valid_nelbo"] == pytest.approx(156.9)
    assert vae64["valid_nelbo_sd"] == pytest.approx(2 ** -0.5) and vae64["valid_nelbo_n"] == 2
    gan = next(r for r in summary if r["model"] == "gan")
    assert gan["fid"] == 50.0 and gan["fid_sd"] is None


def test_write_runs_and_the_command_line(tmp_path, capsys):
    make_run(tmp_path, "vae", 2, 0, section={"hidden_dim": 32}, metrics={"valid_nelbo": 150.0})
    make_run(tmp_path, "vae", 20, 0, section={"hidden_dim": 32}, metrics={"valid_nelbo": 110.0})
    assert experiments.main(["runs", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert "2 runs" in capsys.readouterr().out
    rows = experiments.read_tsv(tmp_path / "out" / "runs.tsv")
    assert [(r["latent"], r["valid_nelbo"]) for r in rows] == [(2, 150.0), (20, 110.0)]
    page = (tmp_path / "out" / "runs.html").read_text()
    assert page.count("<tr>") == 2 + 1 + 2 + 1 and "sortable" in page  # headers and rows of both tables


def test_check_run_refuses_another_configuration(tmp_path):
    d = make_run(tmp_path, "vae", 2, 0, section={"hidden_dim": 32}, metrics={"valid_nelbo": 150.0})
    record = json.loads((d / "run.json").read_text())
    assert experiments.check_run(d, record["config_hash"])["run"]["latent"] == 2
    with pytest.raises(experiments.RunMismatch, match=r"run.json: this folder holds the run of configuration"):
        experiments.check_run(d, "0123456789ab")
    (d / "run.json").unlink()
    with pytest.raises(experiments.RunMismatch, match="no readable run record"):
        experiments.check_run(d, "0123456789ab")


def test_a_record_written_with_a_key_that_no_longer_defines_a_run_is_the_same_run(tmp_path):
    """Records of 6cfd89d's predecessors keep the list of latent sizes in the model section and hash it;
    the run is the same one, and a changed hyperparameter is still refused."""
    section = {"hidden_dim": 32, "lr": 0.001}
    d = make_run(tmp_path, "vae", 2, 0, section=section, metrics={"valid_nelbo": 150.0})
    record = json.loads((d / "run.json").read_text())
    record["config"]["vae"]["latent_sizes"] = [2, 20]
    record["config"]["data"]["raw_dir"] = "/somewhere"
    record["config_hash"] = experiments.config_hash(record["config"])  # the old definition's hash
    (d / "run.json").write_text(json.dumps(record))
    today = experiments.config_hash(experiments.run_config(
        model="vae", section={**section, "latent_sizes": [2, 5]}, data={"name": "mnist"}, latent=2, seed=0))
    assert today != record["config_hash"]
    checked = experiments.check_run(d, today)
    assert checked["config_hash"] == today and "latent_sizes" not in checked["config"]["vae"]
    assert experiments.runs_table([d])[1][0]["config_hash"] == today
    changed = experiments.config_hash(experiments.run_config(
        model="vae", section={**section, "hidden_dim": 64}, data={"name": "mnist"}, latent=2, seed=0))
    with pytest.raises(experiments.RunMismatch, match=f"holds the run of configuration {today}, but the "
                                                      f"configuration asks for {changed}"):
        experiments.check_run(d, changed)
    record["config"] = {"model": "vae"}
    (d / "run.json").write_text(json.dumps(record))
    with pytest.raises(experiments.RunMismatch, match="configuration is malformed"):
        experiments.check_run(d, today)


def test_compare_lists_every_metric_with_its_change_and_the_seeds_spread(tmp_path):
    old = [{"dataset": "mnist", "model": "vae", "point": None, "latent": 2, "seed": s, "valid_nelbo": v,
            "fid": 30.0, "epochs": 40} for s, v in ((0, 150.0), (1, 152.0))]
    new = [{"dataset": "mnist", "model": "vae", "point": None, "latent": 2, "seed": s, "valid_nelbo": v,
            "precision": 0.6, "epochs": 40} for s, v in ((0, 140.0), (1, 141.0))]
    rows = {r["metric"]: r for r in experiments.compare(new, old)}
    nelbo = rows["valid_nelbo"]
    assert (nelbo["old"], nelbo["new"], nelbo["change"]) == (151.0, 140.5, -10.5)
    assert nelbo["spread"] == pytest.approx(2 ** 0.5) and nelbo["exceeds_spread"] is True
    assert nelbo["better"] == "better"  # lower -ELBO
    assert rows["fid"]["only_in"] == "baseline" and rows["fid"]["new"] is None
    assert rows["precision"]["only_in"] == "new" and rows["precision"]["old"] is None
    assert rows["epochs"]["change"] == 0 and rows["epochs"]["better"] == ""
    text = experiments.format_comparison(experiments.compare(new, old))
    assert "valid_nelbo" in text and "only in baseline" in text and "only in new" in text and "-10.5" in text


def test_compare_with_one_seed_cannot_judge_the_spread():
    one = [{"dataset": "mnist", "model": "gan", "point": None, "latent": 8, "seed": 0, "fid": 50.0}]
    row = experiments.compare([{**one[0], "fid": 40.0}], one)[0]
    assert row["change"] == -10.0 and row["spread"] is None and row["exceeds_spread"] is None


def test_compare_reads_results_folders_and_runs_tsv(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_run(a, "vae", 2, 0, section={"hidden_dim": 32}, metrics={"valid_nelbo": 150.0})
    make_run(b, "vae", 2, 0, section={"hidden_dim": 64}, metrics={"valid_nelbo": 140.0})
    experiments.write_runs(experiments.find_runs(a / "results"), a / "runs.tsv", a / "s.tsv", a / "runs.html")
    for baseline in (a / "results", a / "runs.tsv"):
        rows = experiments.compare_studies(b / "results", baseline, tmp_path / "c.tsv")
        assert [(r["metric"], r["change"]) for r in rows if r["metric"] == "valid_nelbo"] == [("valid_nelbo", -10.0)]
    assert "valid_nelbo" in (tmp_path / "c.tsv").read_text()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no run folders"):
        experiments.load_runs(tmp_path / "empty")


# -- paired comparisons on the same images


def test_a_paired_difference_of_a_run_with_itself_is_exactly_zero():
    import numpy as np

    values = (np.arange(5), np.array([-90.0, -101.5, -87.25, -120.0, -95.0]))
    same = experiments.paired_difference([(values, values)])
    assert same == {"paired_change": 0.0, "paired_se": 0.0, "paired_images": 5, "beyond_noise": False}
    assert experiments.paired_difference([(values, (np.arange(1, 6), values[1]))]) is None  # other images
    assert experiments.paired_difference([(None, values)]) is None


def test_the_paired_standard_error_is_its_closed_form_for_correlated_arrays():
    import numpy as np

    rng = np.random.default_rng(0)
    shared = rng.normal(-100.0, 10.0, 400)  # what each image contributes to both models: large
    old = shared + rng.normal(0.0, 0.5, 400)
    new = shared + 0.3 + rng.normal(0.0, 0.5, 400)
    out = experiments.paired_difference([((np.arange(400), old), (np.arange(400), new))])
    cov = np.cov(old, new)  # Var(new - old) = Var(old) + Var(new) - 2 Cov(old, new), sample versions
    assert out["paired_se"] == pytest.approx(math.sqrt((cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]) / 400), rel=1e-12)
    assert out["paired_change"] == pytest.approx((new - old).mean(), rel=1e-12)
    unpaired_se = math.sqrt((cov[0, 0] + cov[1, 1]) / 400)  # ~0.7: a 0.3-nat gain reads as noise unpaired
    assert out["paired_se"] < 0.05 < unpaired_se and out["beyond_noise"] is True


def test_compare_pairs_runs_of_a_seed_on_the_same_images(tmp_path):
    import numpy as np

    rows = {}
    for study, shift in (("a", 0.0), ("b", -0.5)):
        d = make_run(tmp_path / study, "vae", 2, 0, section={"hidden_dim": 32}, metrics={"valid_nelbo": 150.0})
        nll = np.linspace(80.0, 120.0, 50) + shift + (0.01 * np.arange(50) if study == "b" else 0.0)
        io.write_json({"test_nll": float(nll.mean()), "test_nelbo": 130.0}, d / "test_nll.json")
        io.write_arrays(d / "test_nll.npz", {"image": np.arange(50), "nll": nll, "nelbo": nll + 20})
        rows[study] = experiments.compare_studies(tmp_path / "b" / "results", tmp_path / "a" / "results") \
            if study == "b" else None
    nll = {r["metric"]: r for r in rows["b"]}["test_nll"]
    expected = -0.5 + 0.01 * np.arange(50)
    assert nll["paired_change"] == pytest.approx(expected.mean()) and nll["paired_images"] == 50
    assert nll["paired_se"] == pytest.approx(expected.std(ddof=1) / math.sqrt(50))
    assert nll["uncertainty"] == "paired SE over images" and nll["beyond_noise"] is True
    valid = {r["metric"]: r for r in rows["b"]}["valid_nelbo"]  # no per-image values: no paired numbers
    assert "paired_change" not in valid and valid["uncertainty"] == experiments.NO_UNCERTAINTY
    assert "paired ± SE" in experiments.format_comparison(rows["b"])


def test_compare_flags_quality_numbers_at_another_n_or_from_another_classifier(tmp_path):
    """A sample-quality number scored at another n, or in another feature network, is flagged and not judged
    better or worse; the same n and classifier compare as usual, and other metrics are untouched."""
    def study(name, n, sha):
        make_run(tmp_path / name, "vae", 2, 0, section={"hidden_dim": 32}, metrics={"valid_nelbo": 150.0},
                 quality={"fid": 30.0 if name == "a" else 20.0, "parzen_mean": 100.0, "n": n,
                          "classifier_sha256": sha})
        return tmp_path / name / "results"

    base = study("a", 2000, "c" * 64)
    for name, n, sha, why in (("same", 2000, "c" * 64, None),
                              ("fewer", 1000, "c" * 64, "n = 1000, baseline n = 2000"),
                              ("other", 2000, "d" * 64, "another feature classifier (its sha256 differs)")):
        rows = {r["metric"]: r for r in experiments.compare(
            experiments.load_runs(study(name, n, sha)), experiments.load_runs(base),
            *[experiments.study_folders(s, experiments.load_runs(s)) for s in (tmp_path / name / "results", base)])}
        assert rows["fid"].get("not_comparable") == why
        assert rows["fid"]["better"] == ("better" if why is None else "")  # FID 30 -> 20
        assert "not_comparable" not in rows["valid_nelbo"]
        assert rows["parzen"].get("not_comparable") == (why if name == "fewer" else None)  # pixels: n alone
        text = experiments.format_comparison(list(rows.values()))
        assert (f"not comparable: {why}" in text) == (why is not None)
