"""What the corpus stage does to one document on its own: read, check, filter, redact, digest, sign.

Everything here depends on the document alone (and the corpus params), never on the documents before
it, so it can run in any number of worker processes, in any order, on any machine: the decisions that
*do* depend on the documents before (exact and near duplicates, the size caps, splits) are made
afterwards, in corpus order, by :mod:`gitnetic.data.corpus.decide`. That split is what makes a corpus
built by N workers, or by N Snakemake jobs, byte-identical to one built by one process.

The workers receive the params groups they read (filters, redaction, near-dedup, decontamination) as
they are, once each; :class:`CleaningPool` is where ``num_workers`` becomes worker processes.

A :class:`CleanTask` carries either a reader the worker calls (a folder's file: the worker reads it
itself) or the bytes the parent read (a git blob, a commit's diff: their readers share one ``git``
process in the parent). The result, :class:`Cleaned`, holds the finished JSON record line, so the parent
only writes bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import NamedTuple

import orjson

from gitnetic.common.cores import usable_cores
from gitnetic.common.ordered_pool import OrderedPool
from gitnetic.data.corpus.filters import QualityFilter
from gitnetic.data.corpus.neardup.index import MinHasher, Signed
from gitnetic.data.corpus.params import (
    CorpusParams,
    DecontaminateParams,
    FilterParams,
    NearDupParams,
    RedactParams,
)
from gitnetic.data.corpus.redact.redactor import Redactor
from gitnetic.data.corpus.sources.base import Candidate, Dropped
from gitnetic.data.corpus.sources.dir import FileReader
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.turns import SourceTurn

__all__ = [
    "BINARY_SNIFF_BYTES",
    "CleanTask",
    "Cleaned",
    "CleaningPool",
    "DocumentCleaner",
    "clean_batch",
    "cleaned_documents",
    "init_worker",
    "record_line",
    "worth_workers",
]

BINARY_SNIFF_BYTES = 8192
KEPT = "kept"  # Cleaned.outcome of a document that passed every per-document check


class CleanTask(NamedTuple):
    """One candidate document, as a worker needs it."""

    size: int  # bytes, as listed (max_file_bytes is checked before reading)
    read: (
        Callable[[], bytes] | bytes | None
    )  # a picklable reader, the bytes the parent read, None: unreadable
    record: dict[str, str]  # the record's fields besides "text": path/commit, source, lang
    clean: bool  # the source's ``clean``: quality filters and redaction apply
    sign: bool  # compute the near-dedup signature (False when no later decision would use it)
    max_file_bytes: int


class Cleaned(NamedTuple):
    """A worker's verdict on one document.

    ``outcome`` is ``"kept"`` (passed every check: ``line``, ``digest`` and maybe ``signed`` are set), a
    skip reason (``binary``, ``non_utf8``, ``too_large``, ``empty``, ``unreadable``), ``filtered:<reason>``
    or ``contaminated:<benchmark>``.
    """

    outcome: str
    line: bytes = b""  # the JSON record line, UTF-8, newline-terminated
    size: int = 0  # UTF-8 bytes of the (redacted) text
    digest: bytes = b""  # blake2b-128 of the (redacted) text: exact de-duplication
    signed: Signed | None = None
    redacted: dict[str, int] | None = None


class DocumentCleaner:
    """The per-document checks of one corpus run, in the order docs/corpus.md gives (built once per
    process: the redactor's rules and the decontamination needles take a moment to compile)."""

    def __init__(
        self,
        filters: FilterParams,
        redact: RedactParams,
        neardup: NearDupParams,
        decontaminate: DecontaminateParams,
    ) -> None:
        self.quality = (
            QualityFilter(
                filters.max_line_length,
                filters.max_mean_line_length,
                filters.min_alnum_fraction,
                filters.drop_generated,
            )
            if filters.enabled
            else None
        )
        self.redactor = (
            Redactor(secrets=redact.secrets, emails=redact.emails)
            if redact.secrets or redact.emails
            else None
        )
        self.decontaminator = None
        if decontaminate.benchmarks:
            from gitnetic.data.corpus.decontaminate import Decontaminator

            self.decontaminator = Decontaminator(list(decontaminate.benchmarks), decontaminate.min_chars)
        self.hasher = MinHasher(neardup.ngram, neardup.num_perm, neardup.library) if neardup.enabled else None

    def clean(self, task: CleanTask) -> tuple[Cleaned, bytes | None]:
        """The verdict on one document, unsigned, and the UTF-8 text to sign (None: nothing to sign)."""
        if isinstance(task.read, Dropped):  # the source dropped it (a dataset row's language, license, ...)
            return Cleaned(task.read.reason), None
        if task.max_file_bytes and task.size > task.max_file_bytes:
            return Cleaned("too_large"), None
        try:
            if task.read is None:  # the parent could not read it
                raise OSError
            data = task.read if isinstance(task.read, bytes) else task.read()
        except OSError:  # permissions, or the file vanished since the walk
            return Cleaned("unreadable"), None
        if b"\0" in data[:BINARY_SNIFF_BYTES]:
            return Cleaned("binary"), None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Cleaned("non_utf8"), None
        if not text or text.isspace():  # what ``not text.strip()`` says, without copying the text
            return Cleaned("empty"), None
        if self.quality is not None and task.clean:
            reason = self.quality.reason(text, task.record.get("path"))
            if reason:
                return Cleaned(f"filtered:{reason}"), None
        if self.decontaminator is not None:
            bench = self.decontaminator.contaminated(text)  # every source: a benchmark's text
            if bench is not None:
                return Cleaned(f"contaminated:{bench}"), None
        redacted: dict[str, int] = {}
        if self.redactor is not None and task.clean:
            text, redacted = self.redactor.redact(text)
            if redacted:
                data = text.encode("utf-8")
        line = record_line(text, task.record)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        return Cleaned(KEPT, line, len(data), digest, None, redacted or None), (data if task.sign else None)

    def clean_many(self, tasks: list[CleanTask]) -> list[Cleaned]:
        """:meth:`clean` each task, then sign the kept ones together (one NumPy pass for the batch)."""
        done = [self.clean(task) for task in tasks]
        results = [cleaned for cleaned, _ in done]
        if self.hasher is not None:
            wanted = [i for i, (_, data) in enumerate(done) if data is not None]
            signed = self.hasher.sign_many([done[i][1] for i in wanted])  # type: ignore[misc]
            for i, sig in zip(wanted, signed, strict=True):
                results[i] = results[i]._replace(signed=sig)
        return results


def record_line(text: str, record: dict[str, object]) -> bytes:
    """The corpus record ``{"text": text, **record}`` as one JSON line, byte for byte what
    ``json.dumps(..., ensure_ascii=False) + "\\n"`` writes (its ``", "`` and ``": "`` separators; orjson
    escapes a string exactly as it does, which tests/data/corpus/test_clean.py checks), at orjson's speed:
    json's encoder took 40 % of a dataset source's uncleaned run (bench/dataset_source.py). A value orjson
    would write differently (a float, an int past 64 bits, a nested value) goes through json itself."""
    parts = [b'{"text": ', orjson.dumps(text)]
    for key, value in record.items():
        parts.append(b", " + orjson.dumps(key) + b": ")
        if (
            value is None
            or isinstance(value, str | bool)
            or (isinstance(value, int) and -(2**63) <= value < 2**63)
        ):
            parts.append(orjson.dumps(value))
        else:
            parts.append(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    parts.append(b"}\n")
    return b"".join(parts)


# One cleaner per worker process, built by the pool's initializer: the only module state here, and it
# lives only inside a corpus worker (or, with one worker, for the length of one corpus run).
_cleaner: DocumentCleaner | None = None


def init_worker(
    filters: FilterParams, redact: RedactParams, neardup: NearDupParams, decontaminate: DecontaminateParams
) -> None:
    global _cleaner
    _cleaner = DocumentCleaner(filters, redact, neardup, decontaminate)


def clean_batch(tasks: list[CleanTask]) -> list[Cleaned]:
    assert _cleaner is not None, "init_worker() runs first"
    return _cleaner.clean_many(tasks)


# Below this many bytes to clean, worker processes cost more to start (~1 s each: imports, the
# redactor's rules, the decontamination needles) than they save; an explicit num_workers > 1 still
# uses them (the tests do, on small trees).
PARALLEL_MIN_BYTES = 16_000_000
BATCH_DOCS = 64  # documents per task sent to a worker: enough to amortise the round trip ...
BATCH_BYTES = 4 << 20  # ... and few enough bytes that the batches in flight stay small


def _task(cand: Candidate, spec: SourceParams, label: str, sign: bool) -> CleanTask:
    read: Callable[[], bytes] | bytes | None = cand.read
    too_large = bool(spec.max_file_bytes and cand.size > spec.max_file_bytes)
    if isinstance(read, Dropped):
        pass  # its reason is the verdict; nothing to read
    elif too_large:
        read = b""  # never read
    elif not isinstance(read, FileReader):  # a git blob or commit: read here, through the source's process
        try:
            read = cand.read()
        except OSError:
            read = None
    record = {**cand.fields, "source": label, "lang": cand.lang}
    return CleanTask(cand.size, read, record, bool(spec.clean), sign, spec.max_file_bytes)


def _batches(candidates: Iterable[Candidate]) -> Iterator[list[Candidate]]:
    batch: list[Candidate] = []
    size = 0
    for cand in candidates:
        batch.append(cand)
        size += cand.size
        if len(batch) >= BATCH_DOCS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def worth_workers(candidates: Iterable[Candidate], spec: SourceParams, forced: bool) -> bool:
    """Whether to clean a source's candidates in worker processes: yes when ``forced`` (the user asked
    for N > 1 workers), when their number is not known up front, or when there is enough to clean."""
    if forced or not isinstance(candidates, list):
        return True
    listed = sum(c.size for c in candidates)
    return min(listed, spec.max_bytes or listed) >= PARALLEL_MIN_BYTES


def cleaned_documents(
    pool: OrderedPool,
    candidates: Iterable[Candidate],
    spec: SourceParams,
    label: str,
    sign: bool,
    parallel: bool = True,
) -> Iterator[tuple[Candidate, Cleaned]]:
    """Each candidate with its verdict, in candidate order, cleaned by ``pool``'s workers in batches
    (in this process when not ``parallel``). Closing the iterator early (a size cap was reached)
    cancels the batches not yet started.
    """
    waiting: deque[list[Candidate]] = deque()

    def tasks() -> Iterator[list[CleanTask]]:
        for batch in _batches(candidates):
            waiting.append(batch)
            yield [_task(c, spec, label, sign) for c in batch]

    for results in pool.map(clean_batch, tasks(), parallel):
        yield from zip(waiting.popleft(), results, strict=True)


class CleaningPool:
    """The corpus run's cleaning workers: ``num_workers`` processes (every usable core when 0) that get
    the params groups cleaning reads, started only for a source worth them (see :func:`worth_workers`).
    A context manager: leaving it stops the workers."""

    def __init__(self, params: CorpusParams) -> None:
        self.asked = params.num_workers
        self.workers = params.num_workers or usable_cores()
        groups = (params.filters, params.redact, params.neardup, params.decontaminate)
        self.pool = OrderedPool(self.workers, init_worker, groups, what="corpus worker")

    def __enter__(self) -> CleaningPool:
        self.pool.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pool.__exit__(kind, exc, tb)

    def documents(self, turn: SourceTurn) -> Iterator[tuple[Candidate, Cleaned]]:
        """:func:`cleaned_documents` of what this job reads of source ``turn``, in the workers when worth
        it (an explicit ``num_workers`` > 1 always is, for a source that is cleaned or signed)."""
        candidates, spec, sign = turn.candidates(), turn.spec, turn.index_near
        # A source neither cleaned nor signed only decodes, digests and writes its documents: less work
        # than sending them to a worker and back (bench/dataset_source.py: 6.8 s in this process against
        # 7.9 s with 2 workers for 1.1 GB of Parquet rows), so it stays here whatever num_workers says.
        parallel = bool(spec.clean or sign) and worth_workers(candidates, spec, forced=self.asked > 1)
        if parallel:
            self.pool.start()  # now, before a progress bar's thread: workers can be forked
        return cleaned_documents(self.pool, candidates, spec, turn.label, sign, parallel)

    def source_done(self, turn: SourceTurn) -> None:
        """Nothing to step over: what the decider did not read was never cleaned."""
