"""The corpus' sources in corpus order, each opened as the stage reads it: with its records' label, its
stats entry and whether its kept documents are indexed for near-dedup (the one place these are decided,
for the one-process stage, the fan-out's sign jobs and its decide job alike)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

from gitnetic.data.corpus.filters import is_lock_file
from gitnetic.data.corpus.params import CorpusParams, FilterParams
from gitnetic.data.corpus.sources import OpenedSource, open_source
from gitnetic.data.corpus.sources.params import DATASET_TYPES, SourceParams
from gitnetic.data.corpus.stats import CorpusStats, SourceStats

__all__ = ["SourceTurn", "open_for_corpus", "opened_source", "source_turns"]


class SourceTurn(NamedTuple):
    """One source of the corpus, opened, while its documents are decided."""

    position: int
    spec: SourceParams
    opened: OpenedSource
    stats: SourceStats
    label: str  # its records' "source" field
    index_near: bool  # some source from this one on is cleaned: kept documents' signatures are indexed


def open_for_corpus(
    spec: SourceParams, filters: FilterParams
) -> contextlib.AbstractContextManager[OpenedSource]:
    """``open_source`` as the corpus stage opens it (lock files left out of a cleaned source's walk)."""
    return open_source(spec, is_lock_file if filters.enabled and spec.clean else None)


@contextlib.contextmanager
def opened_source(params: CorpusParams, position: int) -> Iterator[SourceTurn]:
    """Source ``position`` of the corpus, open, with its records' label and whether to sign it (the
    one place both are decided, for the stage and for the fan-out's sign jobs)."""
    spec = params.sources[position]
    with open_for_corpus(spec, params.filters) as opened:
        label = opened.label if spec.record_source == "origin" else spec.name
        src = SourceStats(
            type=spec.type, label=opened.label, commit=opened.commit, repositories=opened.repositories
        )
        if spec.type in DATASET_TYPES:
            src.start_dataset()
        index_near = any(s.clean for s in params.sources[position:])
        yield SourceTurn(position, spec, opened, src, label, index_near)


def source_turns(params: CorpusParams, stats: CorpusStats, descriptions: list[str]) -> Iterator[SourceTurn]:
    """The corpus' sources in order, each open while the caller decides it; fills ``stats``' per-source
    entries, the sources' own skip counts and ``stats.source``, and ``descriptions`` (for messages)."""
    labels: list[str] = []
    for position in range(len(params.sources)):
        with opened_source(params, position) as turn:
            stats.sources[turn.spec.name] = turn.stats
            descriptions.append(turn.opened.description)
            labels.append(turn.label)
            yield turn
            for key, n in turn.opened.skipped.items():
                turn.stats.skipped[key] = n
            if turn.stats.licenses is not None:  # a dataset: its rows' licenses, now they are decided
                stats.licenses[turn.spec.name] = turn.stats.license_expression()
    stats.source = ",".join(labels)
