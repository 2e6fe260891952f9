"""``stdlib`` source: the running Python's standard library (always there, so the demo needs no download)."""

from __future__ import annotations

import contextlib
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from gitnetic.data.corpus.sources.base import OpenedSource, SourceParams
from gitnetic.data.corpus.sources.dir import dir_candidates

__all__ = ["STDLIB_EXCLUDES", "open_stdlib", "stdlib_root"]

# The stdlib folder may contain third-party packages; they are not the standard library. Its test suites,
# IDLE, turtle demos and the deprecated lib2to3 are left out too: they belong to the stdlib source only
# (a user's own repository keeps its tests/ unless --exclude says otherwise).
STDLIB_EXCLUDES = (
    "site-packages/**",
    "dist-packages/**",
    "**/__pycache__/**",
    "test/**",
    "**/tests/**",
    "idlelib/**",
    "turtledemo/**",
    "lib2to3/**",
)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@contextlib.contextmanager
def open_stdlib(params: SourceParams) -> Iterator[OpenedSource]:
    root = stdlib_root()
    version = ".".join(map(str, sys.version_info[:3]))
    cands = dir_candidates(root, params.include, [*STDLIB_EXCLUDES, *params.exclude])
    yield OpenedSource(
        f"stdlib:python{version}", f"the Python {version} standard library ({root})", cands, len(cands)
    )
