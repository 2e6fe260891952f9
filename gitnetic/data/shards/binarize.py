"""The binarizer: corpus JSONL splits -> MMIDIDX ``.bin``/``.idx`` shards (``python -m gitnetic preprocess``).

This module is the stage: it checks the params, builds the encoder once, decides which shard of which
split goes to which prefixes, commits them together and removes stale files. Writing one shard is
:mod:`gitnetic.data.shards.writer`; which prefix a document goes to under ``--by_source`` is
:mod:`gitnetic.data.source_routing`. Why it is built this way:

* **Streaming, flat memory.** The main thread reads raw JSONL lines and hands batches to a thread pool;
  at most ``4 * workers`` batches are in flight and tokens go straight to the ``.bin`` temporary, so RAM
  does not grow with the corpus (the index keeps 4 bytes per document until the end). Nor with the
  longest document beyond its own text and ids: long documents are encoded in exact pieces
  (:mod:`gitnetic.data.shards.pieces`).
* **Threads, not processes.** JSON parsing is cheap and tiktoken's BPE releases the GIL, so a thread
  pool keeps every core on BPE without pickling texts or ids between processes.
* **Deterministic sharding by byte range.** Shard ``i`` of ``N`` holds the documents whose line *starts*
  in bytes ``[i*S/N, (i+1)*S/N)`` of the split file (``S`` = its size). Each shard job seeks straight
  to its range (no pass over the file), ranges are contiguous and in order, so concatenating shards
  0..N-1 reproduces a single-shard run token for token, and the work is balanced by bytes (≈ tokens),
  not by document count. With few, huge documents some shards can be empty; that is valid.
* **Exact ids, checked.** The fast tiktoken path is spot-checked against HF on every
  ``verify_every``-th document; a mismatch discards the shard and redoes it with HF.
* **One prefix per source, on request.** ``--by_source`` routes each document by its ``source`` field
  to ``{split}-{source}`` (or ``{split}-{group}`` with ``--source_groups``) in the same single pass, so
  a blend (``0.7 data/bin/train-code 0.3 data/bin/train-commits``) and ``evaluate`` can name them. The
  source names come from the corpus stage's ``stats.json``, not from the documents seen, so every shard
  job of every split writes the same set of prefixes (an empty one where a split has no document of a
  source) and a Snakemake rule can declare them before the corpus exists.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.shards.encoder import HFEncoder, available_cpus, build_encoder
from gitnetic.data.shards.indexed import best_dtype, commit_builders, shard_glob, shard_prefix, source_prefix
from gitnetic.data.shards.params import PreprocessParams
from gitnetic.data.shards.repo_headers import repo_headers
from gitnetic.data.shards.writer import Encoding, ShardJob, ShardStats, write_shard
from gitnetic.data.source_routing import (
    SourceRoutes,
    corpus_source_names,
    parse_source_groups,
    source_routes,
)
from gitnetic.data.tokenizer.load import document_separator_id, load_backend_tokenizer

__all__ = ["ShardStats", "preprocess", "resolve_dtype"]

log = logging.getLogger(__name__)

# Leading documents of the first split that validate the tiktoken encoder before the run (capped in
# characters: the HF side of the check runs at HF speed and is pure start-up cost).
_SAMPLE_DOCS, _SAMPLE_CHARS = 16, 16_000


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
            f"{path} has no documents: the corpus stage put no file into {split} (corpus.splits.{split}_ratio is 0, "
            f"or the files were collected by an older gitnetic); set corpus.splits.{split}_ratio above 0 and re-run "
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
    if parse_source_groups(params.source_groups) and not params.by_source:
        raise ConfigError("--source_groups applies to --by_source output; add --by_source or drop the groups")


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
    _check_params(params)
    jobs = _jobs(params)
    encoding = _encoding(params, jobs[0][0])
    routes = None
    if params.by_source:
        routes = source_routes(_stats_json(params), params.source_groups)
        log.info("preprocess: one prefix per source: %s", ", ".join(routes.names))
    # Every shard of every split (and source) is prepared (written and fsynced under temporary names)
    # before any is committed, then all are committed together: a run killed or failing at any point
    # leaves the previous complete set of shards, never a new split beside an old one.
    all_stats: list[ShardStats] = []
    staged: list[Any] = []
    written: list[tuple[str, list[str]]] = []  # (split prefix, its output prefixes)
    try:
        for path, prefix in jobs:
            outs = [prefix] if routes is None else [source_prefix(prefix, name) for name in routes.names]
            written.append((prefix, outs))
            for out, split_stats in _write_split(path, outs, params, encoding, routes, staged).items():
                _print_split(path, out, split_stats, encoding.dtype)
                all_stats += split_stats
        commit_builders(staged)
    except BaseException:
        for builder in staged:
            builder.abort()
        raise
    if params.shard_index is None:
        _remove_stale_layouts(params, written, by_source=routes is not None)
    return all_stats


def _stats_json(params: PreprocessParams) -> Path:
    """The corpus stage's ``stats.json``, beside the JSONL files (source names, git sources' labels)."""
    folder = Path(params.input).parent if params.input is not None else Path(params.input_dir)
    return folder / "stats.json"


def _encoding(params: PreprocessParams, first_file: Path) -> Encoding:
    """The tokenizer, the fastest exact encoder for it (checked on ``first_file``'s first documents),
    its HF reference for the spot check, and the ``.bin`` dtype: the same for every shard."""
    tokenizer = load_backend_tokenizer(params.tokenizer_path)
    eos_id = document_separator_id(params.tokenizer_path, tokenizer)
    if eos_id is None:
        raise DataError(
            f"tokenizer {params.tokenizer_path} has no '</s>' (or eos) token to separate documents; retrain it"
        )
    workers = params.workers or available_cpus()
    sample = _first_texts(first_file, _SAMPLE_DOCS, _SAMPLE_CHARS)
    encoder = build_encoder(tokenizer, params.encoder, num_threads=1, sample=sample, copy_tokenizer=False)
    # the spot-check reference (tiktoken only): the HF encoder the fast one was validated against
    verifier = None if encoder.name == "hf" else (getattr(encoder, "reference", None) or HFEncoder(tokenizer))
    dtype = resolve_dtype(params.dtype, encoder.vocab_size)
    log.info("preprocess: encoder %s, dtype %s, %d worker thread(s)", encoder.name, dtype, workers)
    repo = None
    if params.repo_context:
        repo = repo_headers(tokenizer, params.tokenizer_path, _stats_json(params))
    return Encoding(encoder, dtype, eos_id, workers, params.batch_size, verifier, params.verify_every, repo)


def _write_split(
    path: Path,
    outs: list[str],
    params: PreprocessParams,
    encoding: Encoding,
    routes: SourceRoutes | None,
    staged: list[Any],
) -> dict[str, list[ShardStats]]:
    """Stage the requested shards of one split at its output prefixes; their stats per prefix."""
    n = params.num_shards
    # one unsharded pair when the whole split is written in one piece; an explicit --shard_index
    # (a Snakemake job) always writes the shard name it was asked for, also "-00000-of-00001"
    whole = n == 1 and params.shard_index is None
    indices = [params.shard_index] if params.shard_index is not None else list(range(n))
    per_out: dict[str, list[ShardStats]] = {out: [] for out in outs}
    for index in indices:
        targets = outs if whole else [shard_prefix(out, index, n) for out in outs]
        job = ShardJob(path, targets, index, n, None if routes is None else routes.index)
        for out, stat in zip(outs, write_shard(job, encoding, staged), strict=True):
            per_out[out].append(stat)
    return per_out


def _remove_stale_layouts(
    params: PreprocessParams, written: list[tuple[str, list[str]]], by_source: bool
) -> None:
    """After a full run, drop files of the other layouts so nothing reads a stale split by its old name."""
    for prefix, outs in written:
        for out in outs:
            _remove_stale(out, params.num_shards)
        if by_source:  # a split-wide prefix from an earlier run would shadow the new ones
            _remove_stale(prefix, params.num_shards, keep=False)
        elif params.input is None:  # per-source prefixes of an earlier --by_source run are stale too
            for name in corpus_source_names(Path(params.input_dir) / "stats.json"):
                _remove_stale(source_prefix(prefix, name), params.num_shards, keep=False)


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


def _remove_stale(prefix: str, num_shards: int, keep: bool = True) -> None:
    """After a full run, drop the other layout's files so readers never see two versions of a split
    (``keep=False``: drop every file of ``prefix``, which this run replaced by per-source prefixes)."""
    if not keep:
        kept: set[str] = set()
    elif num_shards == 1:
        kept = {prefix}
    else:
        kept = {shard_prefix(prefix, i, num_shards) for i in range(num_shards)}
    candidates = glob.glob(shard_glob(prefix) + ".*")
    candidates += [prefix + ".bin", prefix + ".idx"]
    for path in candidates:
        stem, ext = os.path.splitext(path)
        if ext in (".bin", ".idx") and stem not in kept and os.path.exists(path):
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
