"""Atomic file writing: an output either appears complete or not at all.

A write that fails for want of space or permission raises ``OutputError``, one line naming the
file and the cause, and leaves neither the file nor its temporary beside it.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

# errno -> the cause in words, for the faults a user can fix (free space, permissions).
CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied (a read-only folder?)",
    errno.EPERM: "operation not permitted",
}


class OutputError(OSError):
    """An output that could not be written; the message names the file and the cause."""

    user_facing = True  # an entry script logs the message alone, without a traceback (dgm.entry)


class NonFiniteResult(ValueError):
    """A result with a NaN or infinite number: refused, never written (the message names file and keys)."""

    user_facing = True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, dest)
    except OSError as e:
        if e.errno not in CAUSES or isinstance(e, OutputError):
            raise
        raise OutputError(e.errno, f"cannot write {dest}: {CAUSES[e.errno]} ({e.strerror})") from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_bytes(dest, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def non_finite(obj, path: str = "") -> list[str]:
    """The keys (dotted, list items as [i]) of every NaN or infinite number in ``obj``."""
    if isinstance(obj, dict):
        return [k for key, v in obj.items() for k in non_finite(v, f"{path}.{key}" if path else str(key))]
    if isinstance(obj, (list, tuple)):
        return [k for i, v in enumerate(obj) for k in non_finite(v, f"{path}[{i}]")]
    try:
        return [] if isinstance(obj, (str, bool)) or math.isfinite(float(obj)) else [path or "(value)"]
    except (TypeError, ValueError):
        return []


def write_json(obj, dest) -> None:
    """Write ``obj`` as JSON; a NaN or infinite number is an error naming the file and the keys
    (a diverged model's result must fail its rule, not become a number)."""
    bad = non_finite(obj)
    if bad:
        raise NonFiniteResult(f"{dest}: refusing to write non-finite values at {', '.join(bad)}")
    write_text(dest, json.dumps(obj, indent=2, default=float, allow_nan=False) + "\n")


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (read in 1 MiB blocks) by a hashlib algorithm."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_arrays(dest, arrays: dict) -> None:
    """Per-image results as one .npz (each array float64, an ``image`` index int64): a NaN or infinite
    value is an error naming the file and the array, as in ``write_json``."""
    import numpy as np

    out = {}
    for name, values in arrays.items():
        a = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
        a = a.astype(np.int64) if name == "image" else a.astype(np.float64)
        if not np.isfinite(a).all():
            raise NonFiniteResult(f"{dest}: refusing to write non-finite values in {name}")
        out[name] = a
    buffer = io.BytesIO()
    np.savez(buffer, **out)
    write_bytes(dest, buffer.getvalue())


def read_arrays(path) -> dict:
    """The arrays of a per-image .npz (``write_arrays``)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def torch_save(obj, dest) -> None:
    import torch

    # Through a Python file object, so a full disk raises OSError (ENOSPC). torch may still wrap it: its zip
    # writer's exit then raises a RuntimeError ("enforce fail at inline_container.cc") whose context is the
    # OSError; that OSError is what atomic_path reports.
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:
            cause = _os_error_behind(e)
            if cause is None:
                raise
            raise cause from None


def _os_error_behind(error: BaseException) -> OSError | None:
    """The OSError with a known cause (``CAUSES``) in an exception's chain of causes and contexts."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in CAUSES:
            return error
        error = error.__cause__ or error.__context__
    return None
