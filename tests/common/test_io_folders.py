"""The atomic writers create the folders an output needs, and a failed write removes the ones it created
(issue 29 item 7: a failed stage left an empty output folder behind); folders that were there stay."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from gitnetic.common.io import atomic_dir, atomic_open, atomic_open_group, atomic_path

WRITERS: dict[str, Callable[[Path], AbstractContextManager[Any]]] = {
    "atomic_path": lambda out: atomic_path(out / "a.bin"),
    "atomic_open": lambda out: atomic_open(out / "a.txt"),
    "atomic_open_group": lambda out: atomic_open_group([out / "a.txt", out / "b.txt"]),
    "atomic_dir": lambda out: atomic_dir(out / "folder"),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_write_removes_the_folders_it_created(writer: str, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    with pytest.raises(RuntimeError, match="boom"), WRITERS[writer](out):
        assert out.is_dir()
        raise RuntimeError("boom")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_write_keeps_the_folders_that_were_there(writer: str, tmp_path: Path) -> None:
    out = tmp_path / "there"
    out.mkdir()
    with pytest.raises(RuntimeError, match="boom"), WRITERS[writer](out / "new"):
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["there"]


def test_a_created_folder_that_gained_other_files_stays(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with pytest.raises(RuntimeError, match="boom"), atomic_open(out / "a.txt"):
        (out / "other.txt").write_text("written meanwhile by someone else\n")
        raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["other.txt"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_completed_write_keeps_its_new_folders(writer: str, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    with WRITERS[writer](out) as opened:
        for fh in opened if isinstance(opened, list) else []:
            fh.write("x\n")
    assert out.is_dir() and any(out.iterdir())
