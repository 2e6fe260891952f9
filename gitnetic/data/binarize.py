"""The binarizer: corpus JSONL splits -> MMIDIDX ``.bin``/``.idx`` shards (``python -m gitnetic preprocess``).

Why it is built this way:

* **Streaming, flat memory.** The main thread reads raw JSONL lines and hands batches to a thread pool;
  at most ``2 * workers`` batches are in flight and tokens go straight to the ``.bin`` temporary, so RAM
  does not grow with the corpus (the index keeps 4 bytes per document until the end).
* **Threads, not processes.** JSON parsing is cheap and tiktoken's BPE releases the GIL, so a thread
  pool keeps every core on BPE without pickling texts or ids between processes.
* **Deterministic sharding by byte range.** Shard ``i`` of ``N`` holds the documents whose line *starts*
  in bytes ``[i*S/N, (i+1)*S/N)`` of the split file (``S`` = its size). Each shard job seeks straight
  to its range (no pass over the file), ranges are contiguous and in order, so concatenating shards
  0..N-1 reproduces a single-shard run token for token, and the work is balanced by bytes (≈ tokens),
  not by document count. With few, huge documents some shards can be empty; that is valid.
* **Exact ids, checked.** The fast tiktoken path is spot-checked against HF on every
  ``verify_every``-th document; a mismatch discards the shard and redoes it with HF.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.indexed import best_dtype, commit_builders, shard_glob, shard_prefix

log = logging.getLogger(__name__)

_BATCH_BYTES = 4 << 20  # a batch also closes at this many input bytes, so huge documents keep RAM flat
# Leading documents of the first split that validate the tiktoken encoder before the run (capped in
# characters: the HF side of the check runs at HF speed and is pure start-up cost).
_SAMPLE_DOCS, _SAMPLE_CHARS = 16, 16_000
_INFLIGHT_PER_WORKER = 4  # batches queued per thread: workers never starve while the main thread writes


@dataclass
class PreprocessParams(DataclassBase):
    """Which splits to binarize, how, and where to."""

    tokenizer_path: str = field(
        default="data/tokenizer",
        metadata={"help": "Tokenizer folder (or tokenizer.json) from the tokenizer stage."},
    )
    input_dir: str = field(
        default="data/corpus", metadata={"help": "Folder with the {split}.jsonl corpus splits."}
    )
    splits: list[str] = field(
        default_factory=lambda: ["train", "valid", "test"],
        metadata={"help": "Splits to binarize: reads INPUT_DIR/{split}.jsonl, writes OUTPUT_DIR/{split}.*"},
    )
    output_dir: str = field(default="data/bin", metadata={"help": "Folder for the {split}.bin/.idx shards."})
    input: str | None = field(
        default=None,
        metadata={"help": "Binarize this one JSONL file instead of --splits (needs --output_prefix)."},
    )
    output_prefix: str | None = field(
        default=None, metadata={"help": "Output prefix for --input: writes PREFIX.bin and PREFIX.idx."}
    )
    num_shards: int = field(
        default=1,
        metadata={
            "help": "Split each output into N shards PREFIX-0000i-of-0000N.{bin,idx} (contiguous byte ranges)."
        },
    )
    shard_index: int | None = field(
        default=None,
        metadata={"help": "Write only shard i of --num_shards (0-based): one job of a parallel fan-out."},
    )
    workers: int = field(default=0, metadata={"help": "Encoding threads; 0 = all CPUs this process may use."})
    batch_size: int = field(
        default=64, metadata={"help": "Documents per encode batch (a batch also closes at 4 MiB)."}
    )
    encoder: Literal["auto", "tiktoken", "hf"] = field(
        default="auto",
        metadata={
            "help": "auto: tiktoken when it reproduces the tokenizer's ids exactly, else HF encode_batch."
        },
    )
    dtype: Literal["auto", "uint16", "int32"] = field(
        default="auto",
        metadata={"help": "Token dtype of the .bin; auto = uint16 when the vocab fits, else int32."},
    )
    verify_every: int = field(
        default=256,
        metadata={
            "help": "Re-encode every N-th document with HF and compare (tiktoken only); a mismatch redoes the "
            "shard with HF. 0 disables."
        },
    )


@dataclass
class ShardStats:
    prefix: str
    documents: int
    tokens: int
    seconds: float
    encoder: str


# ---------------------------------------------------------------------------------------------- planning
def _jobs(params: PreprocessParams) -> list[tuple[Path, str]]:
    """``(input file, output prefix)`` per split, checked before any work starts."""
    if (params.input is None) != (params.output_prefix is None):
        raise ConfigError("--input and --output_prefix go together; pass both (or neither, to use --splits)")
    if params.input is not None:
        jobs = [(Path(params.input), str(params.output_prefix))]
    else:
        if not params.splits:
            raise ConfigError("--splits is empty; name at least one split, e.g. --splits train valid test")
        jobs = [
            (Path(params.input_dir) / f"{s}.jsonl", str(Path(params.output_dir) / s)) for s in params.splits
        ]
    for path, _ in jobs:
        if not path.is_file():
            raise DataError(
                f"corpus split {path} does not exist; run 'python -m gitnetic corpus' first or fix the path"
            )
        if _is_blank(path):  # stops at the first non-blank byte: cheap for any real split
            raise DataError(_empty_split_message(path))
    return jobs


def _empty_split_message(path: Path) -> str:
    """Why a split file can be empty, and the fix: the corpus stage gave that split no document."""
    split = path.stem
    if split in ("valid", "test"):
        return (
            f"{path} has no documents: the corpus stage put no file into {split} (corpus.{split}_ratio is 0, "
            f"or the files were collected by an older gitnetic); set corpus.{split}_ratio above 0 and re-run "
            f"'python -m gitnetic corpus', or leave {split} out with --splits"
        )
    return (
        f"{path} has no documents; re-run 'python -m gitnetic corpus' (see its stats.json for what it "
        "collected) or fix --input/--input_dir"
    )


def _check_params(params: PreprocessParams) -> None:
    if params.num_shards < 1:
        raise ConfigError(f"--num_shards must be at least 1, got {params.num_shards}")
    if params.shard_index is not None and not 0 <= params.shard_index < params.num_shards:
        raise ConfigError(
            f"--shard_index {params.shard_index} is out of range for --num_shards {params.num_shards} "
            f"(valid: 0..{params.num_shards - 1})"
        )
    if params.batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {params.batch_size}")
    if params.workers < 0:
        raise ConfigError(f"--workers must be 0 (all CPUs) or more, got {params.workers}")
    if params.verify_every < 0:
        raise ConfigError(f"--verify_every must be 0 (off) or more, got {params.verify_every}")


def resolve_dtype(name: str, vocab_size: int) -> np.dtype:
    """The ``.bin`` token dtype for ``--dtype name``: checked to hold every id of the vocabulary."""
    if name == "auto":
        return best_dtype(vocab_size)
    dtype = np.dtype(name)
    if np.iinfo(dtype).max < vocab_size - 1:
        raise ConfigError(
            f"--dtype {name} cannot hold ids of a {vocab_size}-token vocabulary; use int32 or auto"
        )
    return dtype


def preprocess(params: PreprocessParams) -> list[ShardStats]:
    """Binarize every requested split (or the one --input); returns per-shard statistics."""
    from gitnetic.data.encoder import HFEncoder, available_cpus, build_encoder
    from gitnetic.data.tokenizer import document_separator_id, load_backend_tokenizer

    _check_params(params)
    jobs = _jobs(params)
    tokenizer = load_backend_tokenizer(params.tokenizer_path)
    eos_id = document_separator_id(params.tokenizer_path, tokenizer)
    if eos_id is None:
        raise DataError(
            f"tokenizer {params.tokenizer_path} has no '</s>' (or eos) token to separate documents; retrain it"
        )
    workers = params.workers or available_cpus()
    sample = _first_texts(jobs[0][0], _SAMPLE_DOCS, _SAMPLE_CHARS)
    encoder = build_encoder(tokenizer, params.encoder, num_threads=1, sample=sample, copy_tokenizer=False)
    # the spot-check reference (tiktoken only): the HF encoder the fast one was validated against
    verifier = None if encoder.name == "hf" else (getattr(encoder, "reference", None) or HFEncoder(tokenizer))
    dtype = resolve_dtype(params.dtype, encoder.vocab_size)
    log.info("preprocess: encoder %s, dtype %s, %d worker thread(s)", encoder.name, dtype, workers)

    # Every shard of every split is prepared (written and fsynced under temporary names) before any is
    # committed, then all are committed together: a run killed or failing at any point leaves the
    # previous complete set of shards, never a new split beside an old one.
    all_stats: list[ShardStats] = []
    staged: list[Any] = []
    try:
        for path, prefix in jobs:
            n = params.num_shards
            if n == 1:
                targets = [(0, prefix)]
            elif params.shard_index is not None:
                targets = [(params.shard_index, shard_prefix(prefix, params.shard_index, n))]
            else:
                targets = [(i, shard_prefix(prefix, i, n)) for i in range(n)]
            split_stats = []
            for index, out in targets:
                split_stats.append(
                    binarize_range(
                        path,
                        out,
                        encoder,
                        dtype,
                        eos_id,
                        index,
                        n,
                        workers,
                        params.batch_size,
                        verifier=verifier,
                        verify_every=params.verify_every,
                        staged=staged,
                    )
                )
            _print_split(path, prefix, split_stats, dtype)
            all_stats += split_stats
        commit_builders(staged)
    except BaseException:
        for builder in staged:
            builder.abort()
        raise
    if params.shard_index is None:
        for _, prefix in jobs:
            _remove_stale(prefix, params.num_shards)
    return all_stats


def _print_split(path: Path, prefix: str, stats: list[ShardStats], dtype: np.dtype) -> None:
    docs, tokens, secs = (
        sum(s.documents for s in stats),
        sum(s.tokens for s in stats),
        sum(s.seconds for s in stats),
    )
    where = (
        f"{prefix}.{{bin,idx}}"
        if len(stats) == 1 and stats[0].prefix == prefix
        else f"{len(stats)} shard(s) of {prefix}"
    )
    print(
        f"{path}: {docs} documents, {tokens:,} tokens ({dtype}) in {secs:.2f}s "
        f"= {tokens / max(secs, 1e-9) / 1e6:.2f} Mtok/s [{stats[0].encoder if stats else '-'}] -> {where}",
        flush=True,
    )


def _remove_stale(prefix: str, num_shards: int) -> None:
    """After a full run, drop the other layout's files so readers never see two versions of a split."""
    keep = {prefix} if num_shards == 1 else {shard_prefix(prefix, i, num_shards) for i in range(num_shards)}
    candidates = glob.glob(shard_glob(prefix) + ".*")
    candidates += [prefix + ".bin", prefix + ".idx"]
    for path in candidates:
        stem, ext = os.path.splitext(path)
        if ext in (".bin", ".idx") and stem not in keep and os.path.exists(path):
            log.info("preprocess: removing stale %s", path)
            os.unlink(path)


def _is_blank(path: Path) -> bool:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            if not chunk.isspace():
                return False
    return True


def _first_texts(path: Path, count: int, max_chars: int) -> list[str]:
    texts: list[str] = []
    chars = 0
    with path.open("rb") as fh:
        for line in fh:
            if len(texts) >= count or chars >= max_chars:
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the real pass reports bad lines with their line number
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                text = record["text"][: max_chars - chars]
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    continue  # lone surrogate: the real pass reports it
                texts.append(text)
                chars += len(text)
    return texts


# ---------------------------------------------------------------------------------------------- running
def byte_range(size: int, index: int, num_shards: int) -> tuple[int, int]:
    """Bytes ``[start, end)`` of a file of ``size`` bytes owned by shard ``index`` (by line start)."""
    return size * index // num_shards, size * (index + 1) // num_shards


try:  # 2x faster than the stdlib on long strings; installed with dvc (dvc-data depends on it)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads


class _BadLine(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset, self.reason = offset, reason


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
    encoder: Any,
    dtype: np.dtype,
    eos: np.ndarray,
    verifier: Any,
    verify_every: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Parse, encode and pack one batch: ``(tokens with </s> after each doc, lengths)``. Runs in a worker."""
    texts = []
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
    try:
        ids = encoder.encode_batch(texts)
    except (UnicodeError, TypeError):  # tiktoken / HF on a lone surrogate ("\ud800" escapes in JSON)
        for text, offset in zip(texts, offsets, strict=True):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _BadLine(offset, "has text with a lone surrogate escape (not valid Unicode)") from None
        raise
    if verifier is not None and verify_every:
        picks = [i for i in range(len(texts)) if (first_doc + i) % verify_every == 0]
        if picks:
            from gitnetic.data.encoder import EncoderMismatch

            for i, ref in zip(picks, verifier.encode_batch([texts[i] for i in picks]), strict=True):
                if not np.array_equal(ids[i], ref):
                    raise EncoderMismatch(f"tiktoken and HF ids differ on the document at byte {offsets[i]}")
    parts: list[np.ndarray] = []
    for arr in ids:
        parts.append(arr)
        parts.append(eos)
    tokens = np.concatenate(parts, dtype=dtype, casting="unsafe") if parts else np.zeros(0, dtype)
    lengths = np.fromiter((len(a) + 1 for a in ids), dtype=np.int64, count=len(ids))
    return tokens, lengths


def binarize_range(
    path: Path,
    prefix: str,
    encoder: Any,
    dtype: np.dtype,
    eos_id: int,
    shard_index: int = 0,
    num_shards: int = 1,
    workers: int = 1,
    batch_size: int = 64,
    verifier: Any = None,
    verify_every: int = 0,
    staged: list[Any] | None = None,
) -> ShardStats:
    """Binarize shard ``shard_index`` of ``num_shards`` of the JSONL ``path`` into ``prefix.{bin,idx}``.

    If the spot check against ``verifier`` (HF) fails, the shard is discarded and redone with HF. With
    ``staged`` (a list), the shard is only prepared and its builder appended there, for the caller to
    commit with the others (:func:`gitnetic.data.indexed.commit_builders`) or abort.
    """
    from gitnetic.data.encoder import EncoderMismatch

    try:
        return _binarize_range(
            path,
            prefix,
            encoder,
            dtype,
            eos_id,
            shard_index,
            num_shards,
            workers,
            batch_size,
            verifier,
            verify_every,
            staged,
        )
    except EncoderMismatch as exc:
        log.warning("preprocess: %s in %s; redoing %s with the HF encoder", exc, path, prefix)
        return _binarize_range(
            path,
            prefix,
            verifier,
            dtype,
            eos_id,
            shard_index,
            num_shards,
            workers,
            batch_size,
            None,
            0,
            staged,
        )


def _binarize_range(
    path: Path,
    prefix: str,
    encoder: Any,
    dtype: np.dtype,
    eos_id: int,
    shard_index: int,
    num_shards: int,
    workers: int,
    batch_size: int,
    verifier: Any,
    verify_every: int,
    staged: list[Any] | None = None,
) -> ShardStats:
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm import tqdm

    from gitnetic.data.indexed import IndexedDatasetBuilder

    t0 = time.perf_counter()
    start, end = byte_range(path.stat().st_size, shard_index, num_shards)
    eos = np.array([eos_id], dtype=np.uint32)
    pending: deque[Future] = deque()
    docs = 0
    bar = tqdm(desc=os.path.basename(prefix), unit="tok", unit_scale=True, disable=None, leave=False)
    try:
        with (
            ThreadPoolExecutor(max(1, workers), thread_name_prefix="preprocess") as pool,
            IndexedDatasetBuilder(prefix, dtype) as builder,
        ):

            def drain_one() -> None:
                tokens, lengths = pending.popleft().result()
                builder.add_documents(tokens, lengths)
                bar.update(tokens.size)

            try:
                for lines, offsets in _iter_batches(path, start, end, batch_size):
                    pending.append(
                        pool.submit(
                            _encode_batch, lines, offsets, docs, encoder, dtype, eos, verifier, verify_every
                        )
                    )
                    docs += len(lines)
                    if len(pending) >= _INFLIGHT_PER_WORKER * max(1, workers):
                        drain_one()
                while pending:
                    drain_one()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # the builder then drops its temporaries
                raise
            stats = ShardStats(prefix, builder.num_documents, builder.num_tokens, 0.0, encoder.name)
            if staged is not None:
                builder.prepare()  # the caller commits it with the other shards
                staged.append(builder)
    except _BadLine as exc:
        raise DataError(
            f"{path}:{_line_number(path, exc.offset)} {exc.reason}; fix or re-create the corpus"
        ) from None
    finally:
        bar.close()
    stats.seconds = time.perf_counter() - t0
    return stats


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
