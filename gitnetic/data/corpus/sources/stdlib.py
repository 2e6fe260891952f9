"""``stdlib`` source: the running Python's standard library (always there, so the demo needs no download)."""

from __future__ import annotations

import contextlib
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from gitnetic.data.corpus.sources.base import OpenedSource
from gitnetic.data.corpus.sources.dir import dir_candidates
from gitnetic.data.corpus.sources.params import STDLIB_EXCLUDES, SourceParams

__all__ = ["STDLIB_EXCLUDES", "open_stdlib", "stdlib_root"]


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
