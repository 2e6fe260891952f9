"""One shard of one JSONL split -> MMIDIDX ``.bin``/``.idx`` at one or several prefixes.

The engine under :mod:`gitnetic.data.shards.binarize` (which decides what to write where, and why the
binarizer is built this way). Here:

* **Byte ranges.** Shard ``i`` of ``N`` holds the documents whose line *starts* in bytes
  ``[i*S/N, (i+1)*S/N)`` of the file (:func:`byte_range`); concatenating shards 0..N-1 reproduces a
  one-shard run token for token.
* **Threads, flat memory.** The calling thread reads raw lines and hands batches to a thread pool; at
  most ``4 * workers`` batches, and beyond ``workers`` of them at most ``4 * workers`` batches' worth of
  bytes (:data:`_BATCH_BYTES` each), are in flight, so a run of huge documents (one JSONL row can be a
  50 MB file) does not queue up in RAM. Tokens go straight to the builders' temporaries. The encoders cut
  long documents into exact pieces (:mod:`gitnetic.data.shards.pieces`), so encoding memory is bounded
  by a piece, not by the longest document.
* **Checked ids.** A fast (tiktoken) encoder is compared with its HF reference on every
  ``verify_every``-th document (of a document longer than a piece, on its first piece: the check's cost
  stays a fixed share of the work however long the document); on a mismatch the shard is discarded and
  redone with HF.
* **Routing.** With :attr:`ShardJob.routes`, each document goes to the prefix its record's ``source``
  maps to (:mod:`gitnetic.data.source_routing`), in file order, in the same single pass.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gitnetic.common.errors import DataError
from gitnetic.data.shards.encoder import Encoder, EncoderMismatch
from gitnetic.data.shards.indexed import IndexedDatasetBuilder
from gitnetic.data.shards.pieces import first_piece
from gitnetic.data.shards.repo_headers import RepoHeaders

try:  # 2x faster than the stdlib on long strings; installed with dvc (dvc-data depends on it)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

__all__ = ["Encoding", "ShardJob", "ShardStats", "byte_range", "write_shard"]

log = logging.getLogger(__name__)

_BATCH_BYTES = 4 << 20  # a batch also closes at this many input bytes, so huge documents keep RAM flat
_INFLIGHT_PER_WORKER = 4  # batches queued per thread: workers never starve while the main thread writes


@dataclass(frozen=True)
class Encoding:
    """How documents become token ids: the same for every shard of one preprocess run."""

    encoder: Encoder  # has .name, .encode_batch(texts) -> list of id arrays
    dtype: np.dtype  # of the .bin
    eos_id: int  # appended after every document
    workers: int = 1  # encoding threads
    batch_size: int = 64  # documents per batch (a batch also closes at 4 MiB)
    verifier: Encoder | None = None  # the HF reference a fast encoder is spot-checked against
    verify_every: int = 0  # check every N-th document against ``verifier``; 0 = never
    repo: RepoHeaders | None = None  # --repo_context: a repository header before each document that has one

    def with_reference(self) -> Encoding:
        """The same settings on the reference encoder, unchecked: how a failed shard is redone."""
        return replace(self, encoder=self.verifier, verifier=None, verify_every=0)


@dataclass(frozen=True)
class ShardJob:
    """Shard ``index`` of ``num_shards`` of the JSONL ``path``, written at ``prefixes``."""

    path: Path
    prefixes: Sequence[str]  # where documents go: prefixes[0] only, or by ``routes``
    index: int = 0
    num_shards: int = 1
    routes: Mapping[str, int] | None = None  # a record's 'source' -> index into prefixes


@dataclass
class ShardStats:
    prefix: str
    documents: int
    tokens: int
    seconds: float
    encoder: str


def byte_range(size: int, index: int, num_shards: int) -> tuple[int, int]:
    """Bytes ``[start, end)`` of a file of ``size`` bytes owned by shard ``index`` (by line start)."""
    return size * index // num_shards, size * (index + 1) // num_shards


def write_shard(job: ShardJob, encoding: Encoding, staged: list[Any] | None = None) -> list[ShardStats]:
    """Write ``job``'s documents at its prefixes (each one written, empty where no document goes there).

    If the spot check against ``encoding.verifier`` fails, the shard is discarded and redone with it.
    With ``staged`` (a list), the shards are only prepared and their builders appended there, for the
    caller to commit with the others (:func:`gitnetic.data.shards.indexed.commit_builders`) or abort.
    """
    try:
        return _write(job, encoding, staged)
    except EncoderMismatch as exc:
        log.warning(
            "preprocess: %s in %s; redoing %s with the HF encoder", exc, job.path, ", ".join(job.prefixes)
        )
        return _write(job, encoding.with_reference(), staged)


class _BadLine(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset, self.reason = offset, reason


def _write(job: ShardJob, encoding: Encoding, staged: list[Any] | None) -> list[ShardStats]:
    t0 = time.perf_counter()
    bar = tqdm(desc=os.path.basename(job.prefixes[0]), unit="tok", unit_scale=True, disable=None, leave=False)
    try:
        # entered in order, so an exception aborts every builder (no output appears at any prefix)
        with contextlib.ExitStack() as stack:
            builders = [stack.enter_context(IndexedDatasetBuilder(p, encoding.dtype)) for p in job.prefixes]
            headers = _encode_into(builders, job, encoding, bar)
            if encoding.repo is not None:
                docs = sum(b.num_documents for b in builders)
                log.info("preprocess: %s: repository headers on %d of %d documents", job.path, headers, docs)
            name = encoding.encoder.name
            stats = [ShardStats(b.prefix, b.num_documents, b.num_tokens, 0.0, name) for b in builders]
            if staged is not None:
                for builder in builders:
                    builder.prepare()  # the caller commits them with the other shards
                staged.extend(builders)
    except _BadLine as exc:
        raise DataError(
            f"{job.path}:{_line_number(job.path, exc.offset)} {exc.reason}; fix or re-create the corpus"
        ) from None
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    total = max(sum(s.tokens for s in stats), 1)
    for stat in stats:  # one pass wrote them all: each gets the pass's time, its share by tokens
        stat.seconds = seconds * stat.tokens / total if len(stats) > 1 else seconds
    return stats


def _encode_into(builders: list[Any], job: ShardJob, encoding: Encoding, bar: Any) -> int:
    """Encode the job's byte range on a thread pool, adding each batch to its builders in file order;
    returns how many documents got a repository header."""
    start, end = byte_range(job.path.stat().st_size, job.index, job.num_shards)
    workers = max(1, encoding.workers)
    max_batches = _INFLIGHT_PER_WORKER * workers
    max_bytes = max_batches * _BATCH_BYTES  # what max_batches full batches hold; huge lines count as read
    pending: deque[tuple[Future, int]] = deque()
    inflight = 0  # raw bytes of the pending batches
    docs = headers = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="preprocess") as pool:
        try:
            for lines, offsets in _iter_batches(job.path, start, end, encoding.batch_size):
                size = sum(map(len, lines))
                pending.append((pool.submit(_encode_batch, lines, offsets, docs, encoding, job.routes), size))
                inflight += size
                docs += len(lines)
                # every worker keeps a batch however big; beyond that, bytes bound the queue too
                while len(pending) >= max_batches or (inflight > max_bytes and len(pending) > workers):
                    future, size = pending.popleft()
                    batch = future.result()
                    headers += batch[3]
                    _add_batch(batch, builders, bar)
                    inflight -= size
            while pending:
                batch = pending.popleft()[0].result()
                headers += batch[3]
                _add_batch(batch, builders, bar)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # the builders then drop their temporaries
            raise
    return headers


def _add_batch(
    batch: tuple[np.ndarray, np.ndarray, np.ndarray | None, int], builders: list[Any], bar: Any
) -> None:
    tokens, lengths, outputs, _ = batch
    if outputs is None:
        builders[0].add_documents(tokens, lengths)
    else:
        ends = np.cumsum(lengths)
        for out in np.unique(outputs).tolist():
            pick = outputs == out
            parts = [tokens[e - n : e] for e, n in zip(ends[pick], lengths[pick], strict=True)]
            builders[out].add_documents(np.concatenate(parts), lengths[pick])
    bar.update(tokens.size)


def _iter_batches(
    path: Path, start: int, end: int, batch_size: int
) -> Iterator[tuple[list[bytes], list[int]]]:
    """Batches of raw, non-blank lines (and their byte offsets) whose first byte lies in ``[start, end)``."""
    with path.open("rb") as fh:
        pos = start
        if start > 0:  # skip the line straddling ``start``: it belongs to the previous shard
            fh.seek(start - 1)
            pos = start - 1 + len(fh.readline())
        lines: list[bytes] = []
        offsets: list[int] = []
        nbytes = 0
        while pos < end:
            line = fh.readline()
            if not line:
                break
            if not line.isspace():
                lines.append(line)
                offsets.append(pos)
                nbytes += len(line)
                if len(lines) >= batch_size or nbytes >= _BATCH_BYTES:
                    yield lines, offsets
                    lines, offsets, nbytes = [], [], 0
            pos += len(line)
        if lines:
            yield lines, offsets


def _encode_batch(
    lines: list[bytes],
    offsets: list[int],
    first_doc: int,
    encoding: Encoding,
    routes: Mapping[str, int] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Parse, encode and pack one batch: ``(tokens with </s> after each doc, lengths, output of each doc,
    documents with a repository header)``; the outputs (indices by the record's ``source``) only with
    ``routes``, else None. Runs in a worker."""
    texts, outputs, keys = _parse_lines(lines, offsets, routes, encoding.repo)
    lines.clear()  # the raw bytes are not needed any more: a 50 MB row is not held twice while it encodes
    ids = _encode_texts(encoding.encoder, texts, offsets)
    headers = _headers(encoding.repo, encoding.encoder, keys)
    if encoding.verifier is not None and encoding.verify_every:
        picks = [i for i in range(len(texts)) if (first_doc + i) % encoding.verify_every == 0]
        if picks:
            _verify(
                encoding.verifier,
                [texts[i] for i in picks],
                [ids[i] for i in picks],
                [offsets[i] for i in picks],
            )
            if headers:  # the header texts went through the fast encoder too
                _verify_headers(encoding.verifier, encoding.repo, picks, keys, headers, offsets)
    if headers:
        ids = [np.concatenate([h, a]) if len(h) else a for h, a in zip(headers, ids, strict=True)]
    eos = np.array([encoding.eos_id], dtype=np.uint32)
    parts: list[np.ndarray] = []
    for arr in ids:
        parts.append(arr)
        parts.append(eos)
    dtype = encoding.dtype
    tokens = np.concatenate(parts, dtype=dtype, casting="unsafe") if parts else np.zeros(0, dtype)
    lengths = np.fromiter((len(a) + 1 for a in ids), dtype=np.int64, count=len(ids))
    outputs_arr = np.asarray(outputs, dtype=np.int64) if routes is not None else None
    return tokens, lengths, outputs_arr, sum(len(h) > 0 for h in headers)


def _verify(verifier: Encoder, texts: list[str], ids: list[np.ndarray], offsets: list[int]) -> None:
    """Raise :class:`EncoderMismatch` unless ``verifier`` gives ``ids`` for ``texts``; a text longer than
    the verifier's piece is checked on its first piece, whose ids are the first of the whole's."""
    limit = getattr(verifier, "piece_chars", None)
    refs = texts if limit is None else [first_piece(t, limit) for t in texts]
    for text, ref_text, got, ref, offset in zip(
        texts, refs, ids, verifier.encode_batch(refs), offsets, strict=True
    ):
        if not np.array_equal(got if len(ref_text) == len(text) else got[: len(ref)], ref):
            raise EncoderMismatch(f"tiktoken and HF ids differ on the document at byte {offset}")


def _headers(
    repo: RepoHeaders | None, encoder: Encoder, keys: list[tuple[str, str] | None]
) -> list[np.ndarray]:
    """Each document's repository header ids (empty where it has none); ``[]`` without ``--repo_context``."""
    if repo is None:
        return []
    empty = np.zeros(0, dtype=np.uint32)
    return [empty if key is None else repo.header(encoder.encode, key) for key in keys]


def _verify_headers(
    verifier: Encoder,
    repo: RepoHeaders,
    picks: list[int],
    keys: list[tuple[str, str] | None],
    headers: list[np.ndarray],
    offsets: list[int],
) -> None:
    """As :func:`_verify`, for the picked documents' headers."""
    for i in picks:
        key = keys[i]
        if key is not None and not np.array_equal(headers[i], repo.header(verifier.encode, key)):
            raise EncoderMismatch(
                f"tiktoken and HF ids differ on the header of the document at byte {offsets[i]}"
            )


def _parse_lines(
    lines: list[bytes],
    offsets: list[int],
    routes: Mapping[str, int] | None,
    repo: RepoHeaders | None = None,
) -> tuple[list[str], list[int], list[tuple[str, str] | None]]:
    """The records' texts, (with ``routes``) the output each goes to, and (with ``repo``) each one's
    ``(repository, path)`` when it gets a header."""
    texts: list[str] = []
    outputs: list[int] = []
    keys: list[tuple[str, str] | None] = []
    for line, offset in zip(lines, offsets, strict=True):
        try:
            record = _loads(line)
        except ValueError:  # orjson is stricter (lone surrogates): the stdlib decides, and words the error
            try:
                record = json.loads(line)
            except UnicodeDecodeError:
                raise _BadLine(offset, "is not valid UTF-8") from None
            except ValueError as exc:
                raise _BadLine(offset, f"is not valid JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise _BadLine(offset, 'has no string "text" field; each line must be {"text": ...}')
        texts.append(record["text"])
        if repo is not None:
            keys.append(repo.key(record))
        if routes is not None:
            out = routes.get(record.get("source"))  # type: ignore[arg-type]
            if out is None:
                raise _BadLine(
                    offset,
                    f"has source {record.get('source')!r}, which the corpus stats.json does not list "
                    "(--by_source routes by it); re-run the corpus stage so splits and stats.json match",
                )
            outputs.append(out)
    return texts, outputs, keys


def _encode_texts(encoder: Encoder, texts: list[str], offsets: list[int]) -> list[np.ndarray]:
    try:
        return encoder.encode_batch(texts)
    except (UnicodeError, TypeError):  # tiktoken / HF on a lone surrogate ("\ud800" escapes in JSON)
        for text, offset in zip(texts, offsets, strict=True):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _BadLine(offset, "has text with a lone surrogate escape (not valid Unicode)") from None
        raise


def _line_number(path: Path, offset: int) -> int:
    """1-based line number of the line starting at byte ``offset`` (only computed to report an error)."""
    count = 0
    with path.open("rb") as fh:
        remaining = offset
        while remaining > 0:
            chunk = fh.read(min(remaining, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count + 1
