import os

import pytest

from dgm import io


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_with_normal_permissions(tmp_path):
    dest = tmp_path / "a" / "out.txt"
    io.write_text(dest, "one")
    io.write_json({"x": 1}, dest)
    assert dest.read_text().strip().startswith("{") and len(list(dest.parent.iterdir())) == 1
    mask = os.umask(0)
    os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~mask
