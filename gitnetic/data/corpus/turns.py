"""The corpus' sources in corpus order, each opened as the stage reads it: with its records' label, its
stats entry, whether its kept documents are indexed for near-dedup and, when the stage fans out, which
part reads which of its candidates. The one place these are decided, for every job of the stage (the
one-process stage, the fan-out's sign jobs and its decide job)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from gitnetic.data.corpus.filters import is_lock_file
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams, FilterParams
from gitnetic.data.corpus.sources import OpenedSource, open_source
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.sources.params import DATASET_TYPES, SourceParams
from gitnetic.data.corpus.stats import CorpusStats, SourceStats

__all__ = ["Ranges", "SourceTurn", "open_for_corpus", "plan_parts", "source_turns"]

Ranges = list[tuple[int, int, int]]  # one source's candidates by part: (part, first candidate, end candidate)


class SourceTurn(NamedTuple):
    """One source of the corpus, opened, while the stage reads it."""

    position: int
    spec: SourceParams
    opened: OpenedSource
    stats: SourceStats
    label: str  # its records' "source" field
    index_near: bool  # some source from this one on is cleaned: kept documents' signatures are indexed
    ranges: Ranges | None  # fan-out jobs: which part reads which of its candidates (None: one process)
    part: int | None  # a sign job: the part it reads (its range of ``ranges``)

    def candidates(self) -> Iterable[Candidate]:
        """What this job reads of the source: all its candidates, or a sign job's range of them (a
        dataset's units ``lo:hi``; ``hi == -1``: to the end, a git-history source signed whole)."""
        if self.part is None or self.ranges is None:
            return self.opened.candidates
        _, lo, hi = self.own_range()
        if self.opened.select is not None:
            return self.opened.select(lo, hi)
        if hi == -1:
            return self.opened.candidates
        listed = self.opened.candidates
        return (listed if isinstance(listed, list) else list(listed))[lo:hi]

    def own_range(self) -> tuple[int, int, int]:
        """A sign job's range of this source (each part reads one contiguous range of a source)."""
        assert self.ranges is not None
        return next(r for r in self.ranges if r[0] == self.part)


def open_for_corpus(
    spec: SourceParams, filters: FilterParams
) -> contextlib.AbstractContextManager[OpenedSource]:
    """``open_source`` as the corpus stage opens it (lock files left out of a cleaned source's walk)."""
    return open_source(spec, is_lock_file if filters.enabled and spec.clean else None)


# ---------------------------------------------------------------------------------------------- plan
def plan_parts(sizes: list[list[int] | None], num_parts: int) -> list[Ranges]:
    """Which part signs which candidates: ``sizes[p]`` are source ``p``'s candidate sizes in order (None:
    a git-history source, signed whole by part ``p % num_parts``). The listed candidates of all sources,
    in order, are cut into ``num_parts`` runs of about equal bytes; a part's ranges are in corpus order,
    and a part holds at most one (contiguous) range of each source."""
    total = sum(sum(s) for s in sizes if s is not None) or 1
    plan: list[Ranges] = []
    offset = 0
    for position, source_sizes in enumerate(sizes):
        if source_sizes is None:
            plan.append([(position % num_parts, 0, -1)])  # -1: to the end of the source
            continue
        ranges: Ranges = []
        for index, size in enumerate(source_sizes):
            part = min(num_parts - 1, offset * num_parts // total)
            offset += size
            if ranges and ranges[-1][0] == part:
                ranges[-1] = (part, ranges[-1][1], index + 1)
            else:
                ranges.append((part, index, index + 1))
        plan.append(ranges)
    return plan


def _source_sizes(params: CorpusParams) -> list[list[int] | None]:
    """Each source's candidate sizes (a dataset's unit sizes, from footers), from listings only."""
    sizes: list[list[int] | None] = []
    for spec in params.sources:
        if spec.type == "git-history":
            sizes.append(None)
            continue
        with open_for_corpus(spec, params.filters) as opened:
            sizes.append(opened.units if opened.units is not None else [c.size for c in opened.candidates])
    return sizes


# --------------------------------------------------------------------------------------------- turns
def source_turns(
    params: CorpusParams, job: CorpusJobParams, stats: CorpusStats, descriptions: list[str]
) -> Iterator[SourceTurn]:
    """The sources ``job`` reads, in corpus order, each open while the caller reads it (a sign job: only
    those its part has candidates of); fills ``stats``' per-source entries, the sources' own skip counts
    and ``stats.source``, and ``descriptions`` (for messages)."""
    plan = None if job.job == "all" else plan_parts(_source_sizes(params), params.parts.count)
    part = job.part_index if job.job == "sign" else None
    labels: list[str] = []
    for position, spec in enumerate(params.sources):
        ranges = None if plan is None else plan[position]
        if ranges is not None and part is not None and all(r[0] != part for r in ranges):
            continue
        with open_for_corpus(spec, params.filters) as opened:
            label = opened.label if spec.record_source == "origin" else spec.name
            src = SourceStats(
                type=spec.type, label=opened.label, commit=opened.commit, repositories=opened.repositories
            )
            if spec.type in DATASET_TYPES:
                src.start_dataset()
            index_near = any(s.clean for s in params.sources[position:])
            stats.sources[spec.name] = src
            descriptions.append(opened.description)
            labels.append(label)
            yield SourceTurn(position, spec, opened, src, label, index_near, ranges, part)
            for key, n in opened.skipped.items():
                src.skipped[key] = n
            if src.licenses is not None:  # a dataset: its rows' licenses, now they are decided
                stats.licenses[spec.name] = src.license_expression()
    stats.source = ",".join(labels)
