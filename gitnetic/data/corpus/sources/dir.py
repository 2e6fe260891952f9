"""``dir`` source: the files of a folder tree, walked once and read lazily in sorted path order."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.sources.base import Candidate, OpenedSource
from gitnetic.data.corpus.sources.globs import compile_globs, dir_pruner
from gitnetic.data.corpus.sources.lang import lang_of
from gitnetic.data.corpus.sources.params import SourceParams

__all__ = ["FileReader", "dir_candidates", "display_path", "open_dir"]

# Version-control internals are never source code, and walking them is slow on big repositories.
_ALWAYS_PRUNED_DIRS = frozenset({".git", ".hg", ".svn"})


def display_path(path: str) -> str:
    """os.walk/git may hand back non-UTF-8 names (surrogate-escaped); JSON output must stay valid UTF-8."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class FileReader:
    """Reads one file when called; picklable (unlike a closure), so a corpus worker process can read the
    file itself instead of the parent reading it and sending the bytes over."""

    path: str

    def __call__(self) -> bytes:
        return Path(self.path).read_bytes()


def dir_candidates(root: Path, include: Sequence[str], exclude: Sequence[str]) -> list[Candidate]:
    """Matching regular files under ``root`` (no symlinks), sorted by relative path."""
    if not root.exists():
        raise CorpusError(f"source folder {root} does not exist; pass --path to an existing folder")
    if not root.is_dir():
        raise CorpusError(f"source {root} is not a folder; pass --path to a folder (or --source git)")
    included, excluded, pruned = compile_globs(include), compile_globs(exclude), dir_pruner(exclude)
    found: list[Candidate] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if d not in _ALWAYS_PRUNED_DIRS and not pruned(rel_dir + d)]
        for name in filenames:
            rel = rel_dir + name
            if not included(rel) or excluded(rel):
                continue
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue  # vanished while walking
            if not os.path.isfile(full) or os.path.islink(full):
                continue  # symlinks could point outside the tree or duplicate files
            shown = display_path(rel)
            found.append(Candidate(shown, st.st_size, FileReader(full), {"path": shown}, lang_of(shown)))
    found.sort(key=lambda c: c.key)
    return found


@contextlib.contextmanager
def open_dir(params: SourceParams) -> Iterator[OpenedSource]:
    root = params.root()
    cands = dir_candidates(root, params.include, params.exclude)
    yield OpenedSource(f"dir:{params.path}", f"folder {root}", cands, len(cands))
