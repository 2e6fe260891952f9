"""The corpus stage's one sequence, run by the one-process stage and by the fan-out's decide job alike.

Licenses (a refused source stops the stage before anything is written), the decisions
(:func:`gitnetic.data.corpus.decide.decide_corpus`: each source in turn, the totals, the empty check,
the small-corpus floor), ``stats.json`` and the summary: written once here, so the two ways of running
the stage cannot drift apart (their outputs are byte-identical). What differs is the
:class:`~gitnetic.data.corpus.decide.Feed`: where a source's verdicts come from (cleaning workers, or the
sign jobs' parts), where a kept record line goes (its split file, or a note of its destination) and how
the floor's moves are applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from gitnetic.common.io import atomic_open
from gitnetic.data.corpus.decide import Feed, decide_corpus
from gitnetic.data.corpus.licenses import source_licenses
from gitnetic.data.corpus.params import CorpusParams
from gitnetic.data.corpus.stats import CorpusStats, log_summary

__all__ = ["Feed", "run_stage"]


def run_stage(params: CorpusParams, open_feed: Callable[[], AbstractContextManager[Feed]]) -> CorpusStats:
    """Decide the corpus ``params`` describes through the feed ``open_feed`` opens; write ``stats.json``
    once the feed's outputs are committed (it marks a complete set), log the summary."""
    licenses = dict(source_licenses(params.sources))  # first: a source its allow-list refuses stops the stage
    stats = CorpusStats(source="", out_dir=str(Path(params.out_dir)), licenses=licenses)
    with open_feed() as feed:
        description = decide_corpus(params, feed, stats)
    with atomic_open(Path(params.out_dir) / "stats.json", "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh, indent=2)
        fh.write("\n")
    log_summary(stats, params.sources, description)
    return stats
