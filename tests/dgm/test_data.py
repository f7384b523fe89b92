import gzip

import numpy as np
import pytest
import torch

from conftest import STEMS, make_raw_dir, synthetic_digits, write_idx
from dgm import data


def test_read_idx_roundtrip_gz_and_plain(tmp_path):
    images, labels = synthetic_digits(7, seed=0)
    for gz in (True, False):
        pi = write_idx(tmp_path / f"img{gz}", images, gz=gz)
        pl = write_idx(tmp_path / f"lab{gz}", labels, gz=gz)
        assert torch.equal(data.read_idx(pi, expect="images"), torch.from_numpy(images))
        assert torch.equal(data.read_idx(pl, expect="labels"), torch.from_numpy(labels))


def test_read_idx_rejects_truncated_file_naming_it(tmp_path):
    images, _ = synthetic_digits(5, seed=0)
    path = write_idx(tmp_path / "x.idx", images, gz=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data.DataError, match=r"x\.idx.*truncated"):
        data.read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    images, _ = synthetic_digits(50, seed=0)
    path = write_idx(tmp_path / "x.gz", images, gz=True)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(data.DataError, match=r"x\.gz"):
        data.read_idx(path)


def test_read_idx_rejects_bad_magic_and_wrong_kind_and_size(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x04" + b"\x00" * 20)
    with pytest.raises(data.DataError, match="magic number"):
        data.read_idx(bad)
    labels = write_idx(tmp_path / "labels", np.arange(3, dtype=np.uint8), gz=False)
    with pytest.raises(data.DataError, match="expected images"):
        data.read_idx(labels, expect="images")
    small = write_idx(tmp_path / "small", np.zeros((2, 14, 14), np.uint8), gz=False)
    with pytest.raises(data.DataError, match="14x14"):
        data.read_idx(small)


def test_find_raw_files_accepts_gz_or_plain_and_names_missing(tmp_path):
    make_raw_dir(tmp_path / "gz", n_train=20, n_test=10, gz=True)
    make_raw_dir(tmp_path / "plain", n_train=20, n_test=10, gz=False)
    assert data.find_raw_files(tmp_path / "gz")["train_images"].name.endswith(".gz")
    assert not data.find_raw_files(tmp_path / "plain")["train_images"].name.endswith(".gz")
    (tmp_path / "plain" / STEMS["test_labels"]).unlink()
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte"):
        data.find_raw_files(tmp_path / "plain")
    with pytest.raises(data.DataError, match="not a folder"):
        data.find_raw_files(tmp_path / "nope")


def test_load_raw_checks_counts(tmp_path):
    folder = make_raw_dir(tmp_path, n_train=20, n_test=10)
    write_idx(folder / f"{STEMS['train_labels']}.gz", np.zeros(19, np.uint8))
    with pytest.raises(data.DataError, match="20 images but .* 19 labels"):
        data.load_raw(data.find_raw_files(folder))


def test_describe_local_flags_official_md5(tmp_path):
    folder = make_raw_dir(tmp_path, n_train=20, n_test=10)
    record = data.describe_local("mnist", data.find_raw_files(folder))
    assert not any(r["official_md5"] for r in record.values())
    assert all(len(r["md5"]) == 32 for r in record.values())


def test_official_sources_are_torchvisions():
    mirrors, md5s = data.official_sources("mnist")
    assert any("ossci-datasets" in m for m in mirrors)
    assert md5s["t10k-images-idx3-ubyte.gz"] == "9fb629c4189551a2d022fa330f9573f3"
    assert data.official_sources("fashion-mnist")[1] and data.official_sources("kmnist")[1]
    with pytest.raises(data.DataError, match="unknown dataset 'svhn'"):
        data.official_sources("svhn")


def test_download_reports_every_mirror_when_offline(tmp_path, monkeypatch):
    import urllib.request

    def refuse(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(data.DataError, match="data.raw_dir"):
        data.download("mnist", tmp_path, log=lambda *_: None)
    assert not list(tmp_path.iterdir())


def test_download_rejects_wrong_checksum(tmp_path, monkeypatch):
    import io
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not mnist"))
    with pytest.raises(data.DataError, match="md5 .* does not match"):
        data.download("mnist", tmp_path, log=lambda *_: None)


def _raw(n_train=100, n_test=30):
    tx, ty = synthetic_digits(n_train, seed=3)
    sx, sy = synthetic_digits(n_test, seed=4)
    return {k: torch.from_numpy(v) for k, v in
            dict(train_images=tx, train_labels=ty, test_images=sx, test_labels=sy).items()}


def test_split_sizes_disjoint_and_seeded():
    raw = _raw()
    a = data.split_and_binarise(raw, valid_size=0.2, split_seed=0, binarize_seed=1, binarization="dynamic")
    b = data.split_and_binarise(raw, valid_size=20, split_seed=0, binarize_seed=1, binarization="dynamic")
    c = data.split_and_binarise(raw, valid_size=0.2, split_seed=1, binarize_seed=1, binarization="dynamic")
    assert len(a["train_images"]) == 80 and len(a["valid_images"]) == 20 and len(a["test_images"]) == 30
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["valid_images"], c["valid_images"])
    assert "train_binary" not in a and {"valid_binary", "test_binary"} <= set(a)
    # every training image lands in exactly one split
    joined = torch.cat([a["train_images"], a["valid_images"]]).reshape(100, -1)
    assert sorted(map(bytes, joined.numpy())) == sorted(map(bytes, raw["train_images"].reshape(100, -1).numpy()))


def test_static_binarisation_is_fixed_and_binary():
    raw = _raw()
    a = data.split_and_binarise(raw, valid_size=0.2, split_seed=0, binarize_seed=5, binarization="static")
    b = data.split_and_binarise(raw, valid_size=0.2, split_seed=0, binarize_seed=5, binarization="static")
    assert torch.equal(a["train_binary"], b["train_binary"])
    assert set(a["train_binary"].unique().tolist()) <= {0, 1}
    # a pixel of intensity 255 always turns on, 0 never does
    assert torch.all(a["test_binary"][a["test_images"] == 255] == 1)
    assert torch.all(a["test_binary"][a["test_images"] == 0] == 0)


@pytest.mark.parametrize("valid_size", [0, 100, 1000, 0.0001])
def test_split_rejects_bad_valid_size(valid_size):
    with pytest.raises(data.DataError, match="data.valid_size"):
        data.split_and_binarise(_raw(), valid_size=valid_size, split_seed=0, binarize_seed=0, binarization="dynamic")


def test_split_rejects_unknown_binarisation():
    with pytest.raises(data.DataError, match="data.binarization: 'fuzzy'"):
        data.split_and_binarise(_raw(), valid_size=0.2, split_seed=0, binarize_seed=0, binarization="fuzzy")


def test_write_uncompressed_validates_before_writing(tmp_path):
    folder = make_raw_dir(tmp_path / "raw", n_train=20, n_test=10)
    files = data.find_raw_files(folder)
    outputs = {k: tmp_path / "out" / STEMS[k] for k in STEMS}
    data.write_uncompressed(files, outputs)
    assert gzip.decompress(files["train_images"].read_bytes()) == outputs["train_images"].read_bytes()
    bad = folder / f"{STEMS['test_images']}.gz"
    bad.write_bytes(bad.read_bytes()[:100])
    for p in outputs.values():
        p.unlink()
    with pytest.raises(data.DataError, match=STEMS["test_images"]):
        data.write_uncompressed(data.find_raw_files(folder), outputs)
    assert not any(p.exists() for p in outputs.values())


def test_bernoulli_draw_is_torch_bernoulli_bitwise_and_leaves_the_same_generator_state():
    """The fast dynamic binarisation draws exactly what torch.bernoulli draws on a CPU, so training
    batches (and everything after them) are unchanged."""
    images = torch.randint(0, 256, (37, 784), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    probs = images.float().div_(255.0)
    for seed in range(3):
        g_fast, g_torch = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        fast = data.binarize_batch(images, g_fast)
        assert torch.equal(fast, torch.bernoulli(probs, generator=g_torch))
        assert fast.dtype == torch.float32 and set(fast.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(g_fast.get_state(), g_torch.get_state())
    assert torch.equal(data.binarize_batch(torch.full((2, 3), 255, dtype=torch.uint8), g_fast), torch.ones(2, 3))
    assert torch.equal(data.binarize_batch(torch.zeros((2, 3), dtype=torch.uint8), g_fast), torch.zeros(2, 3))
