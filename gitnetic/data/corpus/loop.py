"""The corpus stage's one loop, which every job of it runs: the one-process stage, the fan-out's sign
jobs and its decide job.

Each source in corpus order (:func:`gitnetic.data.corpus.turns.source_turns`) has its verdicts produced
(cleaned here by :class:`~gitnetic.data.corpus.clean.CleaningPool`, or replayed from the sign jobs' parts
by :class:`~gitnetic.data.corpus.parts.PartReplay`) and taken by a sink (the
:class:`~gitnetic.data.corpus.decide.Decider`, whose decisions go to the split files or to the decide
job's notes, or a sign job's :class:`~gitnetic.data.corpus.parts.PartWriter`). :func:`_parts` is the one
place a job's parts are chosen; licenses (a refused source stops the stage before anything is written),
``stats.json`` and the summary are written once here, so the ways of running the stage cannot drift
apart (their outputs are byte-identical).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from gitnetic.common.io import atomic_open
from gitnetic.data.corpus.clean import Cleaned, CleaningPool
from gitnetic.data.corpus.decide import Decider
from gitnetic.data.corpus.licenses import source_licenses
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams
from gitnetic.data.corpus.parts import PartReplay, PartWriter
from gitnetic.data.corpus.progress import Progress
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.split_files import SplitFiles
from gitnetic.data.corpus.stats import CorpusStats, log_summary
from gitnetic.data.corpus.turns import SourceTurn, source_turns

__all__ = ["Sink", "Verdicts", "run_stage"]


class Verdicts(Protocol):
    """Where a source's verdicts come from: cleaning workers, or the sign jobs' parts (open while the
    job runs)."""

    def __enter__(self) -> Verdicts: ...

    def __exit__(self, *exc: Any) -> Any: ...

    def documents(self, turn: SourceTurn) -> Iterable[tuple[Candidate, Cleaned]]:
        """What this job reads of source ``turn``, with their verdicts, in candidate order."""
        ...

    def source_done(self, turn: SourceTurn) -> None:
        """The sink is done with ``turn`` (a cap may have stopped it early)."""
        ...


class Sink(Protocol):
    """Where the verdicts go: the decider, or a sign job's part files (open while the job runs)."""

    def __enter__(self) -> Sink: ...

    def __exit__(self, *exc: Any) -> Any: ...

    def take(self, turn: SourceTurn, documents: Iterable[tuple[Candidate, Cleaned]]) -> None: ...

    def finish(self, stats: CorpusStats, sources: list[SourceParams], description: str) -> None: ...


def run_stage(params: CorpusParams, job: CorpusJobParams) -> CorpusStats:
    """Run ``job`` (all, sign or decide) of the corpus stage ``params`` describes; the decisions' jobs
    write ``stats.json`` once their outputs are committed (it marks a complete set) and log the summary."""
    outputs, verdicts, sink = _parts(params, job)
    deciding = isinstance(sink, Decider)
    licenses = dict(source_licenses(params.sources)) if deciding else {}  # first: a refused source stops
    stats = CorpusStats(source="", out_dir=str(Path(params.out_dir)), licenses=licenses)
    descriptions: list[str] = []
    progress = Progress()
    with contextlib.ExitStack() as stack:
        # Each part opened once (one object may play two roles), outputs first: they commit last, after
        # the workers stopped cleanly and the decider closed, so a failure anywhere leaves no new output.
        for part in dict.fromkeys((outputs, verdicts, sink)):
            stack.enter_context(part)
        for turn in source_turns(params, job, stats, descriptions):
            documents = verdicts.documents(turn)  # before the bar's thread: workers can be forked
            total = turn.opened.count if turn.part is None else None  # a sign job reads a range
            with (
                progress.bar(turn.spec.name, total, turn.stats) as tracked,
                contextlib.closing(tracked(documents)) as stream,
            ):
                sink.take(turn, stream)
            verdicts.source_done(turn)
        description = "; ".join(descriptions)
        sink.finish(stats, params.sources, description)
    progress.log_rate(verdicts.workers if isinstance(verdicts, CleaningPool) else None)
    if deciding:
        with atomic_open(Path(params.out_dir) / "stats.json", "w", encoding="utf-8") as fh:
            json.dump(stats.to_dict(), fh, indent=2)
            fh.write("\n")
        log_summary(stats, params.sources, description)
    return stats


def _parts(
    params: CorpusParams, job: CorpusJobParams
) -> tuple[PartReplay | PartWriter | SplitFiles, Verdicts, Sink]:
    """The one place a job's parts are chosen: its outputs, where its verdicts come from, and where they
    go. Nothing is opened yet (a refused license must stop the stage before anything is written)."""
    outputs = (
        PartReplay(params)
        if job.job == "decide"
        else PartWriter(params, job.part_index)
        if job.job == "sign"
        else SplitFiles(Path(params.out_dir))
    )
    verdicts: Verdicts = outputs if isinstance(outputs, PartReplay) else CleaningPool(params)
    sink: Sink = outputs if isinstance(outputs, PartWriter) else Decider(params, outputs)
    return outputs, verdicts, sink
