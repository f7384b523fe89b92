"""MNIST-format data: IDX reading and validation, download or local staging, splits.

The four IDX files of MNIST (and of Fashion-MNIST and KMNIST, which share the format) are
fetched from torchvision's mirrors and checked against torchvision's md5 sums, or taken from a
local folder for offline clusters. Everything downstream works on in-memory tensors.

torch loads inside the functions that need it: the workflow's DAG-time checks (common.smk)
import this module for ``find_raw_files`` and ``idx_length`` and stay fast.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from dgm import io

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions (N, rows, cols)
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension (N,)
GZIP_MAGIC = b"\x1f\x8b"

# Files in the order torchvision lists them; the stem is the name without ".gz".
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATASETS = ("mnist", "fashion-mnist", "kmnist")


class DataError(ValueError):
    """A data file or folder that cannot be used; the message names it."""

    user_facing = True  # an entry script logs the message alone, without a traceback (dgm.entry)


def official_sources(dataset: str) -> tuple[list[str], dict[str, str]]:
    """torchvision's mirrors and md5 sums for ``dataset``: (mirrors, {file name: md5})."""
    from torchvision import datasets as tvd

    classes = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "kmnist": tvd.KMNIST}
    if dataset not in classes:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    cls = classes[dataset]
    return list(cls.mirrors), {name: md5 for name, md5 in cls.resources}


def md5sum(path: str | os.PathLike) -> str:
    return io.file_digest(path, "md5")


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    try:
        if head == GZIP_MAGIC:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot decompress ({e}); the file is truncated or corrupt") from e


def read_idx(path: str | os.PathLike, *, expect: str | None = None) -> torch.Tensor:
    """Read an IDX file (gzipped or not) into a uint8 tensor, checking magic number and size.

    ``expect`` is "images" (N, 28, 28) or "labels" (N,); anything else about the file that does
    not match raises DataError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = _read_bytes(path)
    if len(raw) < 8:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic, n = struct.unpack(">II", raw[:8])
    if magic == IMAGE_MAGIC:
        if len(raw) < 16:
            raise DataError(f"{path}: truncated IDX image header")
        rows, cols = struct.unpack(">II", raw[8:16])
        shape, offset = (n, rows, cols), 16
    elif magic == LABEL_MAGIC:
        shape, offset = (n,), 8
    else:
        raise DataError(f"{path}: magic number 0x{magic:08x} is neither IDX images (0x803) nor labels (0x801)")
    kind = "images" if magic == IMAGE_MAGIC else "labels"
    if expect is not None and kind != expect:
        raise DataError(f"{path}: holds IDX {kind}, expected {expect}")
    if kind == "images" and shape[1:] != (28, 28):
        raise DataError(f"{path}: images are {shape[1]}x{shape[2]}, expected 28x28")
    expected = offset + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path}: header promises {n} {kind} ({expected} bytes) but the file holds {len(raw)} bytes; "
            "truncated or corrupt"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)
    import torch

    return torch.from_numpy(array.copy())


def find_raw_files(folder: str | os.PathLike) -> dict[str, Path]:
    """The four IDX files in ``folder`` (gzipped or not), keyed like FILES; DataError if any is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data.raw_dir: {folder} is not a folder")
    found, missing = {}, []
    for key, stem in FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        present = [c for c in candidates if c.is_file()]
        if len(present) == 2 and _read_bytes(present[0]) != _read_bytes(present[1]):
            raise DataError(f"data.raw_dir: {present[0]} and {present[1]} are both there and differ; "
                            "remove the one that is not the data to use")
        hit = present[0] if present else None
        if hit is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[key] = hit
    if missing:
        raise DataError(f"data.raw_dir: {folder} lacks {', '.join(missing)}")
    return found


def idx_length(path: str | os.PathLike) -> int:
    """The number of items an IDX file's header declares (reads only the header)."""
    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(8)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read its IDX header ({e})") from e
    if len(head) < 8:
        raise DataError(f"{path}: {len(head)} bytes is too short for an IDX header")
    return struct.unpack(">II", head)[1]


def load_raw(files: dict[str, str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Read and cross-check the four files: counts of images and labels agree, labels in 0..9."""
    out = {key: read_idx(files[key], expect=key.split("_")[1]) for key in FILES}
    for split in ("train", "test"):
        n_img, n_lab = len(out[f"{split}_images"]), len(out[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{files[split + '_images']} holds {n_img} images but {files[split + '_labels']} holds {n_lab} labels"
            )
        if n_img == 0:
            raise DataError(f"{files[split + '_images']}: holds no images")
        if int(out[f"{split}_labels"].max()) > 9:
            raise DataError(f"{files[split + '_labels']}: labels outside 0..9")
    return out


def download(dataset: str, workdir: str | os.PathLike, *, timeout: float = 60.0, log=print) -> dict[str, dict]:
    """Fetch the four gzipped IDX files from torchvision's mirrors into ``workdir``; verify md5.

    Returns {key: {"path", "md5", "source", "official_md5": True}}. Raises DataError when every
    mirror fails or a checksum does not match.
    """
    mirrors, md5s = official_sources(dataset)
    workdir = Path(workdir)
    result = {}
    for key, stem in FILES.items():
        name = f"{stem}.gz"
        errors = []
        for mirror in mirrors:
            url = f"{mirror}{name}"
            try:
                log(f"downloading {url}")
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    payload = r.read()
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{url}: {e}")
                continue
            digest = hashlib.md5(payload).hexdigest()
            if digest != md5s[name]:
                errors.append(f"{url}: md5 {digest} does not match torchvision's {md5s[name]}")
                continue
            io.write_bytes(workdir / name, payload)
            result[key] = {"path": str(workdir / name), "md5": digest, "source": url, "official_md5": True}
            break
        else:
            raise DataError(
                f"could not download {name} for {dataset}: " + "; ".join(errors)
                + ". Offline? Put the four IDX files in a folder and set data.raw_dir."
            )
    return result


def describe_local(dataset: str, files: dict[str, Path]) -> dict[str, dict]:
    """md5 of each local file, and whether it matches torchvision's official checksum."""
    try:
        _, official = official_sources(dataset)
    except ImportError:
        official = {}
    out = {}
    for key, path in files.items():
        digest = md5sum(path)
        name = f"{FILES[key]}.gz"
        out[key] = {
            "path": str(path),
            "md5": digest,
            "source": f"local:{Path(path).resolve()}",
            # Only a gzipped file can match the published md5; a mirror is recorded, not rejected.
            "official_md5": official.get(name) == digest,
        }
    return out


def write_uncompressed(files: dict[str, str | os.PathLike], outputs: dict[str, str | os.PathLike]) -> None:
    """Validate the four IDX files and write them uncompressed to ``outputs`` (atomically)."""
    load_raw(files)  # raises DataError naming a bad file before anything is written
    for key in FILES:
        src = Path(files[key])
        io.write_bytes(Path(outputs[key]), _read_bytes(src))


def split_and_binarise(
    raw: dict[str, torch.Tensor], *, valid_size: float, split_seed: int, binarize_seed: int, binarization: str
) -> dict:
    """Train/validation split of the training file, and fixed-seed binarised copies.

    ``valid_size`` < 1 is a fraction of the training file, >= 1 a count. Validation and test
    always get a fixed-seed Bernoulli draw (so evaluation numbers are comparable across runs);
    the training split gets one too when ``binarization == "static"``; with "dynamic" training
    draws afresh for every minibatch (IWAE paper).
    """
    import torch

    if binarization not in ("dynamic", "static"):
        raise DataError(f"data.binarization: {binarization!r} is not 'dynamic' or 'static'")
    n = len(raw["train_images"])
    n_valid = validation_count(valid_size, n)
    g = torch.Generator().manual_seed(split_seed)
    perm = torch.randperm(n, generator=g)
    valid_idx, train_idx = perm[:n_valid].sort().values, perm[n_valid:].sort().values
    out = {
        "train_images": raw["train_images"][train_idx].contiguous(),
        "train_labels": raw["train_labels"][train_idx].long(),
        "valid_images": raw["train_images"][valid_idx].contiguous(),
        "valid_labels": raw["train_labels"][valid_idx].long(),
        "test_images": raw["test_images"].contiguous(),
        "test_labels": raw["test_labels"].long(),
    }
    gb = torch.Generator().manual_seed(binarize_seed)
    splits = ("train", "valid", "test") if binarization == "static" else ("valid", "test")
    for split in splits:
        out[f"{split}_binary"] = binarize(out[f"{split}_images"], generator=gb)
    return out


def validation_count(valid_size: float, n: int) -> int:
    """Validation images ``data.valid_size`` takes from a training file of ``n``: a fraction below 1 or a count."""
    n_valid = round(valid_size * n) if valid_size < 1 else int(valid_size)
    if not 1 <= n_valid < n:
        raise DataError(f"data.valid_size: {valid_size} gives {n_valid} validation images of {n}; need 1..{n - 1}")
    return n_valid


def binarize_batch(images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Float {0, 1} images from uint8 ones, one Bernoulli draw per pixel with p = intensity / 255:
    the dynamic binarisation of every training minibatch."""
    from dgm.distributions import bernoulli_draw  # torch: not at import (see the module's docstring)

    return bernoulli_draw(images_uint8.float().div_(255.0), generator=generator)


def binarize(images_uint8: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """One Bernoulli draw per pixel with p = intensity / 255, as uint8 {0, 1}."""
    import torch

    return binarize_batch(images_uint8, generator).to(torch.uint8)


def save_splits(splits: dict, meta: dict, path: str | os.PathLike) -> None:
    io.torch_save({**splits, "meta": meta}, path)


def load_splits(path: str | os.PathLike) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def images_for(splits: dict, split: str, kind: str, device="cpu") -> torch.Tensor:
    """A split's images flattened to (N, 784) on the scale of the data a model models
    (``dgm.registry.DATA_KINDS``, ``dgm.models``' protocol): ``binary`` the fixed-seed binarised
    copy as float {0, 1}; ``bytes`` the uint8 pixels 0..255; ``grey`` float grey levels in [0, 1]."""
    import torch

    if kind == "binary":
        return splits[f"{split}_binary"].reshape(len(splits[f"{split}_binary"]), -1).to(device, torch.float32)
    images = splits[f"{split}_images"].reshape(len(splits[f"{split}_images"]), -1).to(device)  # (N, 784) uint8
    if kind == "bytes":
        return images
    if kind == "grey":
        return images.to(torch.float32).div_(255.0)
    raise ValueError(f"unknown data kind {kind!r}; use binary, bytes or grey")
