"""The corpus stage's one sequence, run by the one-process stage and by the fan-out's decide job alike.

Licenses (a refused source stops the stage before anything is written), the stats, the decider, each
source in turn, the totals, the empty check, the small-corpus floor, ``stats.json`` and the summary:
written once here, so the two ways of running the stage cannot drift apart (their outputs are
byte-identical). What differs is the :class:`Feed`: where a source's verdicts come from (cleaning
workers, or the sign jobs' parts), where a kept record line goes (its split file, or a note of its
destination) and how the floor's moves are applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from gitnetic.common.io import atomic_open
from gitnetic.data.corpus.clean import Cleaned
from gitnetic.data.corpus.decide import (
    Decider,
    Kept,
    SourceTurn,
    check_not_empty,
    merge_counts,
    moved_documents,
    source_turns,
)
from gitnetic.data.corpus.licenses import source_licenses
from gitnetic.data.corpus.params import CorpusParams
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.stats import CorpusStats, log_summary

__all__ = ["Feed", "run_stage"]


class Feed(Protocol):
    """One way of running the stage: the verdicts in, the decisions out."""

    def documents(self, turn: SourceTurn) -> Iterable[tuple[Candidate, Cleaned]]:
        """Source ``turn``'s candidates with their verdicts, in candidate order."""
        ...

    def emit(self, split: str, line: bytes) -> None:
        """A kept record line, in corpus order, and its split."""
        ...

    def source_done(self, turn: SourceTurn) -> None:
        """The decider is done with ``turn`` (a cap may have stopped it early)."""
        ...

    def finish(self, moves: list[tuple[Kept, str]]) -> None:
        """Apply the small-corpus floor's moves (kept document, new split), before the outputs commit."""
        ...


def run_stage(params: CorpusParams, open_feed: Callable[[], AbstractContextManager[Feed]]) -> CorpusStats:
    """Decide the corpus ``params`` describes through the feed ``open_feed`` opens; write ``stats.json``
    once the feed's outputs are committed (it marks a complete set), log the summary."""
    sources = params.sources
    licenses = dict(source_licenses(sources))  # first: a source its allow-list refuses stops the stage
    stats = CorpusStats(source="", out_dir=str(Path(params.out_dir)), licenses=licenses)
    descriptions: list[str] = []
    with open_feed() as feed:
        decider = Decider(params, feed.emit)
        try:
            for turn in source_turns(params, stats, descriptions):
                decider.decide_source(
                    turn.spec, turn.stats, feed.documents(turn), turn.opened.count, turn.index_near
                )
                feed.source_done(turn)
        finally:
            decider.close()
        merge_counts(stats, decider.decontaminated)
        check_not_empty(stats, sources, "; ".join(descriptions))
        feed.finish(moved_documents(decider.kept, stats, params.splits))
    with atomic_open(Path(params.out_dir) / "stats.json", "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh, indent=2)
        fh.write("\n")
    log_summary(stats, sources, "; ".join(descriptions))
    return stats
