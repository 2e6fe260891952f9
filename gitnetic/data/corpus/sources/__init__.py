"""Corpus sources: where documents come from (``corpus.sources`` in params.yaml, one entry each).

Each source type lives in its own module and yields :class:`Candidate` documents in a stable order:

* ``stdlib`` (:mod:`.stdlib`): this Python's standard library, always available, no download;
* ``dir`` (:mod:`.dir`): a folder tree;
* ``git`` (:mod:`.git`): a repository at one revision, read with ``git ls-tree``/``cat-file`` (no checkout);
* ``git-history`` (:mod:`.git_history`): the commits of a revision range, one document per commit
  (message + unified diff), streamed from ``git log``;
* ``parquet`` and ``jsonl`` (:mod:`.dataset`): a dataset of one source file per row (The Stack,
  StarCoderData, github-code, an export), streamed a row group or a line at a time, with each row's path,
  language, license and repository.

The corpus stage (:mod:`gitnetic.data.corpus.stage`) reads the candidates, filters, redacts, de-duplicates
and splits them; a source only finds and reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from gitnetic.data.corpus.sources.base import Candidate, OpenedSource
from gitnetic.data.corpus.sources.dataset import open_dataset
from gitnetic.data.corpus.sources.dir import open_dir
from gitnetic.data.corpus.sources.git import open_git
from gitnetic.data.corpus.sources.git_history import open_git_history
from gitnetic.data.corpus.sources.params import SOURCE_TYPES, SourceParams
from gitnetic.data.corpus.sources.stdlib import open_stdlib

__all__ = ["SOURCE_TYPES", "Candidate", "OpenedSource", "SourceParams", "open_source"]


@contextlib.contextmanager
def open_source(
    params: SourceParams, drop_path: Callable[[str], bool] | None = None
) -> Iterator[OpenedSource]:
    """Open one source of any type (a context manager: git sources hold a subprocess).

    ``drop_path(path)`` leaves files out of commit diffs (the lock-file filter); file sources leave
    filtering to the corpus stage, which counts it.
    """
    if params.type == "git-history":
        with open_git_history(params, drop_path) as opened:
            yield opened
        return
    opener = {
        "stdlib": open_stdlib,
        "dir": open_dir,
        "git": open_git,
        "parquet": open_dataset,
        "jsonl": open_dataset,
    }[params.type]
    with opener(params) as opened:
        yield opened
