"""Stage 1: collect source files (and commits) into ``{train,valid,test}.jsonl`` documents.

Design choices, and why:

* **Many sources, one corpus.** ``sources`` lists named sources (``stdlib``, ``dir``, ``git``,
  ``git-history``; see :mod:`gitnetic.data.corpus.sources`), read in the order listed. The single-source keys
  (``source``, ``path``, ``rev``, ``include``, ...) of earlier versions still work: reading the params
  turns them into the one ``sources`` entry (:data:`DEFAULT_SOURCE`, or the one listed entry, edited by
  them), which writes exactly what they always wrote. Code reads ``params.sources`` only (the params,
  nested groups per concern, are :mod:`gitnetic.data.corpus.params`).
* **Streaming.** Documents are read one at a time and each record is written as soon as it is accepted;
  only 16-byte content digests (exact de-duplication), near-duplicate signatures of kept documents (see
  :mod:`gitnetic.data.corpus.neardup.index` for the bound) and the candidate paths of one source stay in memory.
* **Deterministic.** Sources in listed order, candidates in sorted path (or commit) order, so "first
  seen wins" de-duplication and the ``max_files``/``max_bytes`` caps give the same result on every run.
  A document's split is a hash of ``seed`` and its relative path (or commit id) only, so adding or
  removing other files never moves it between splits (no train/test leakage across corpus versions).
  The one exception is the small-corpus floor of ``gitnetic.data.corpus.splits``: a split with a non-zero
  ratio that the hash left empty takes one document.
* **Clean before split.** Quality filters (:mod:`gitnetic.data.corpus.filters`), secret/e-mail redaction
  (:mod:`gitnetic.data.corpus.redact.redactor`), exact and near-duplicate removal all run before a split is assigned,
  so the same code never lands in both train and test. Every drop is counted per source and reason.
* **Lossless otherwise.** Text is decoded as strict UTF-8 and written unchanged (CRLF, tabs, BOM and
  all) apart from redaction placeholders: the byte-level tokenizer reproduces it byte for byte.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from gitnetic.common.io import atomic_open_group, remove_stale_temporaries
from gitnetic.data.corpus.clean import Cleaned, CleaningPool
from gitnetic.data.corpus.decide import Kept
from gitnetic.data.corpus.loop import run_stage
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams
from gitnetic.data.corpus.parts import run_part_job
from gitnetic.data.corpus.sources import open_source
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.corpus.stats import CorpusStats, SourceStats, human_bytes
from gitnetic.data.corpus.turns import SourceTurn

__all__ = ["SourceScan", "collect_corpus", "run_corpus", "scan_source"]

log = logging.getLogger(__name__)


def run_corpus(params: CorpusParams, job: CorpusJobParams | None = None) -> str:
    """The stage's entry (``python -m gitnetic corpus``): the whole stage here, or one job of its
    fan-out (:mod:`gitnetic.data.corpus.parts`); returns a one-line summary for the console."""
    if job is not None and job.job != "all":
        return run_part_job(params, job)
    stats = collect_corpus(params)
    docs = stats.documents
    return (
        f"wrote {stats.total_documents} documents to {stats.out_dir} "
        f"(train {docs['train']}, valid {docs['valid']}, test {docs['test']})"
    )


# ---------------------------------------------------------------------------------------------- scan
@dataclass
class SourceScan:
    """What :func:`scan_source` found: a fast upper bound of what ``collect_corpus`` would keep."""

    description: str
    files: int
    bytes: int


def scan_source(params: CorpusParams) -> SourceScan:
    """Count the files and bytes the corpus stage would consider, from sizes only (nothing is read).

    Applies each source's ``include``/``exclude``, ``max_file_bytes``, ``max_files`` and ``max_bytes``
    in the same order as :func:`collect_corpus`; binary, non-UTF-8, empty, duplicate and filtered files
    are not detected (that needs reading them), so the counts are an upper bound used for sizing a run
    (``init``). A git-history source is counted by its commit documents (which are read).
    """
    descriptions, files, total = [], 0, 0
    for spec in params.sources:
        with open_source(spec) as opened:
            descriptions.append(opened.description)
            kept = size = 0
            for cand in opened.candidates:
                if spec.max_files and kept >= spec.max_files:
                    break
                if spec.max_file_bytes and cand.size > spec.max_file_bytes:
                    continue
                if cand.size == 0:
                    continue
                if spec.max_bytes and size + cand.size > spec.max_bytes:
                    break
                kept += 1
                size += cand.size
        files, total = files + kept, total + size
    return SourceScan(description="; ".join(descriptions), files=files, bytes=total)


# ------------------------------------------------------------------------------------------- collect
def collect_corpus(params: CorpusParams) -> CorpusStats:
    """Collect, filter, redact, de-duplicate and split documents into ``params.out_dir`` (see module doc)."""
    started = time.perf_counter()
    feed = _Collect(params)
    stats = run_stage(params, feed.opened)
    elapsed = max(time.perf_counter() - started, 1e-9)
    read, workers = feed.progress.read_bytes, feed.cleaning.workers
    log.info(
        "corpus: read %s in %.1f s (%s/s) with %d worker process%s",
        human_bytes(read),
        elapsed,
        human_bytes(int(read / elapsed)),
        workers,
        "" if workers == 1 else "es",
    )
    return stats


class _Collect:
    """The one-process stage's feed: sources cleaned by this run's workers, kept lines written to the
    split files (committed as one group with ``stats.json``, which marks a complete set: a run killed at
    any point, or a worker killed, never leaves a new split beside an old one)."""

    def __init__(self, params: CorpusParams) -> None:
        self.out_dir = Path(params.out_dir)
        self.cleaning = CleaningPool(params)
        self.progress = _Progress()
        self.writers: dict[str, IO[bytes]] = {}

    @contextlib.contextmanager
    def opened(self) -> Iterator[_Collect]:
        remove_stale_temporaries(self.out_dir / "stats.json")
        paths = [self.out_dir / f"{split}.jsonl" for split in SPLITS]
        with (
            atomic_open_group(paths, "wb", invalidate=[self.out_dir / "stats.json"]) as handles,
            self.cleaning,
        ):
            self.writers = dict(zip(SPLITS, handles, strict=True))
            yield self

    def documents(self, turn: SourceTurn) -> Iterator[tuple[Candidate, Cleaned]]:
        documents = self.cleaning.documents(turn.opened.candidates, turn.spec, turn.label, turn.index_near)
        with self.progress.bar(turn.spec.name, turn.opened.count, turn.stats) as tracked:
            yield from tracked(documents)

    def emit(self, split: str, line: bytes) -> None:
        self.writers[split].write(line)

    def source_done(self, turn: SourceTurn) -> None:
        pass

    def finish(self, moves: list[tuple[Kept, str]]) -> None:
        _move_lines(moves, self.writers)


class _Progress:
    """The console bar of the long read-clean-decide loop: documents, MB read, MB/s and documents kept."""

    def __init__(self) -> None:
        self.read_bytes = 0
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def bar(self, name: str, total: int | None, src: SourceStats) -> Iterator[Any]:
        bar = tqdm(total=total, desc=f"corpus {name}", unit="doc", disable=None, file=sys.stderr)

        def tracked(documents: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
            for n, (cand, done) in enumerate(documents, 1):
                self.read_bytes += cand.size
                if n % 64 == 0:
                    elapsed = max(time.perf_counter() - self.started, 1e-9)
                    bar.set_postfix_str(
                        f"{human_bytes(self.read_bytes)} read, {self.read_bytes / elapsed / 1e6:.1f} MB/s, "
                        f"kept {src.total_documents}",
                        refresh=False,
                    )
                bar.update()
                yield cand, done

        with bar:
            yield tracked


def _move_lines(moves: list[tuple[Kept, str]], writers: dict[str, Any]) -> None:
    """Apply the small-corpus floor to the (still uncommitted) split files: each donor file is rewritten
    without its moved records, which are appended to their new split in ``moves`` order."""
    if not moves:
        return
    moving = {(item.split, item.line): target for item, target in moves}
    lines: dict[tuple[str, int], bytes] = {}
    for donor in sorted({item.split for item, _ in moves}):
        fh = writers[donor]
        fh.flush()
        with tempfile.TemporaryFile("w+b") as copy:
            with open(fh.name, "rb") as src:
                shutil.copyfileobj(src, copy)
            copy.seek(0)
            fh.seek(0)
            fh.truncate()
            for index, line in enumerate(copy):
                if (donor, index) in moving:
                    lines[donor, index] = line
                else:
                    fh.write(line)
    for item, target in moves:
        writers[target].write(lines[item.split, item.line])
