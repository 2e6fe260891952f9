"""What a corpus source offers: its documents (:class:`Candidate`) and an opened source; its params are
:mod:`gitnetic.data.corpus.sources.params`.

Apart from :mod:`gitnetic.data.corpus.sources` (which opens a source of any type) so that the source modules
can import these types without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Candidate", "OpenedSource"]


class Candidate(NamedTuple):
    """One document a source offers, read lazily so that skipped files cost no I/O."""

    key: str  # what the split hash uses: the relative path, or the commit id
    size: int  # bytes, for max_file_bytes before reading
    read: Callable[[], bytes]
    fields: dict[str, str]  # record fields besides text/source/lang: {"path": ...} or {"commit": ...}
    lang: str


@dataclass
class OpenedSource:
    """A source ready to read: what to call it and its candidates in a stable order."""

    label: str  # e.g. stdlib:python3.11.7, git:/repo@<commit>; the single-source form's 'source' field
    description: str  # for messages: "git repository /x at main (1a2b3c4d5e6f)"
    candidates: Iterable[Candidate]
    count: int | None  # candidates to expect (progress bar), None when not known up front
    commit: str | None = None  # resolved commit id (git, git-history)
    skipped: dict[str, int] = field(default_factory=dict)  # drops the source itself makes (e.g. binary diffs)
    repositories: dict[str, dict[str, Any]] | None = None  # repos: each repository's location, rev, commit
