"""What a corpus source offers: its documents (:class:`Candidate`) and an opened source; its params are
:mod:`gitnetic.data.corpus.sources.params`.

Apart from :mod:`gitnetic.data.corpus.sources` (which opens a source of any type) so that the source modules
can import these types without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Candidate", "Dropped", "OpenedSource"]


class Candidate(NamedTuple):
    """One document a source offers, read lazily so that skipped files cost no I/O."""

    key: str  # what the split hash uses: the relative path, or the commit id
    size: int  # bytes, for max_file_bytes before reading
    read: Callable[[], bytes]
    fields: dict[str, str | None]  # record fields besides text/source/lang: {"path": ...} or {"commit": ...}
    lang: str


class Dropped(NamedTuple):
    """A candidate's ``read`` when the source itself drops it before its content matters (a dataset row
    of another language, a refused license, an opted-out repository): the stage counts ``reason`` in
    corpus order, like any skip, so the counts are the same however many workers or jobs clean."""

    reason: str

    def __call__(self) -> bytes:
        return b""


@dataclass
class OpenedSource:
    """A source ready to read: what to call it and its candidates in a stable order."""

    label: str  # e.g. stdlib:python3.11.7, git:/repo@<commit>; the single-source form's 'source' field
    description: str  # for messages: "git repository /x at main (1a2b3c4d5e6f)"
    candidates: Iterable[Candidate]
    count: int | None  # candidates to expect (progress bar), None when not known up front
    commit: str | None = None  # resolved commit id (git, git-history)
    skipped: dict[str, int] = field(default_factory=dict)  # drops the source itself makes (e.g. binary diffs)
    # A source read in units (a dataset's files or Parquet row groups): their sizes, which the fan-out
    # plans by, and ``select(lo, hi)``, the candidates of units lo..hi-1 in order (``candidates`` is
    # ``select(0, len(units))``). None: the fan-out plans by candidates.
    units: list[int] | None = None
    select: Callable[[int, int], Iterable[Candidate]] | None = None
