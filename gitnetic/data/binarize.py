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
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.indexed import best_dtype, commit_builders, shard_glob, shard_prefix, source_prefix

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
    by_source: bool = field(
        default=False,
        metadata={
            "help": "Write one prefix per corpus source instead of one per split: OUTPUT_DIR/{split}-{source}"
            "[-0000i-of-0000N].{bin,idx} (with --input: OUTPUT_PREFIX-{source}), for blends such as "
            "'0.7 data/bin/train-code 0.3 data/bin/train-commits' and per-source evaluation. The source "
            "names are those of the corpus stage's stats.json (beside the JSONL files)."
        },
    )
    source_groups: list[str] = field(
        default_factory=list,
        metadata={
            "help": "With --by_source: write several sources under one prefix, one 'GROUP=SOURCE,SOURCE' "
            "per group (params.yaml: also a mapping GROUP: [SOURCE, ...]); a source in no group keeps a "
            "prefix of its own."
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
    if parse_source_groups(params.source_groups) and not params.by_source:
        raise ConfigError("--source_groups applies to --by_source output; add --by_source or drop the groups")


_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # as corpus source names: safe in file names


def parse_source_groups(value: Sequence[str] | Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``--source_groups``: ``["code=a,b", "commits=c"]`` or ``{code: [a, b], commits: c}`` -> ``{group: [sources]}``."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for entry in [value] if isinstance(value, str) else value:
            group, sep, members = str(entry).partition("=")
            if not sep:
                raise ConfigError(
                    f"--source_groups entry {entry!r} must be GROUP=SOURCE,SOURCE (e.g. code=stdlib,app)"
                )
            items.append((group.strip(), members))
    groups: dict[str, list[str]] = {}
    for group, members in items:
        names = [m.strip() for m in members.split(",")] if isinstance(members, str) else list(members or [])
        names = [str(n) for n in names if str(n)]
        if not _GROUP_NAME.match(group):
            raise ConfigError(
                f"source group name {group!r} must be letters, digits and _.- (it becomes a file name)"
            )
        if group in groups:
            raise ConfigError(f"source group {group!r} is given twice in --source_groups; merge the two")
        if not names:
            raise ConfigError(f"source group {group!r} lists no source; give GROUP=SOURCE[,SOURCE...]")
        groups[group] = names
    return groups


def source_groups_of(source_names: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each corpus source's output name under ``--by_source``: its group, else its own name.

    The result's values, in order of first appearance, are the prefixes written per split
    (``workflow/Snakefile`` declares them from this too). Unknown or doubly grouped sources, and a group
    named like a source outside it, are one-line errors.
    """
    known = list(source_names)
    owner: dict[str, str] = {}
    for group, members in groups.items():
        for name in members:
            if name not in known:
                raise ConfigError(
                    f"source group {group!r} names {name!r}, which is not a corpus source; "
                    f"the sources are {', '.join(known)}"
                )
            if name in owner:
                raise ConfigError(f"source {name!r} is in two groups ({owner[name]!r}, {group!r}); keep one")
            owner[name] = group
        if group in known and owner.get(group) != group and group not in members:
            raise ConfigError(
                f"source group {group!r} has the name of another source; rename the group or put "
                f"{group!r} into it"
            )
    for name in known:
        if not _GROUP_NAME.match(name):
            raise ConfigError(
                f"corpus source {name!r} cannot name a shard file; --by_source needs names of letters, "
                "digits and _.- (set them in corpus.sources)"
            )
    return {name: owner.get(name, name) for name in known}


def by_source_names(
    source_names: Sequence[str], source_groups: Sequence[str] | Mapping[str, Any] | None
) -> list[str]:
    """The per-split prefix names ``--by_source`` writes (``{split}-{name}``), in corpus source order."""
    return list(dict.fromkeys(source_groups_of(source_names, parse_source_groups(source_groups)).values()))


def _source_routes(params: PreprocessParams, stats_path: Path) -> tuple[dict[str, int], list[str]]:
    """``(record 'source' value -> output index, output names)`` from the corpus stage's ``stats.json``.

    Records carry the source's name, or (single-source corpora written with the ``source:`` keys) the
    source's label, e.g. ``stdlib:python3.11.7``; stats.json holds both, so either routes.
    """
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        sources = stats["sources"]
        assert isinstance(sources, dict) and sources
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        raise DataError(
            f"--by_source needs the corpus stage's {stats_path} (it names the sources); re-run "
            "'python -m gitnetic corpus' or turn --by_source off"
        ) from None
    group_of = source_groups_of(list(sources), parse_source_groups(params.source_groups))
    names = by_source_names(list(sources), params.source_groups)
    routes: dict[str, int] = {}
    for name, info in sources.items():
        routes[name] = names.index(group_of[name])
        label = info.get("label") if isinstance(info, dict) else None
        if isinstance(label, str):
            routes.setdefault(label, routes[name])
    return routes, names


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

    routes, names = None, None
    if params.by_source:
        stats_file = Path(params.input).parent if params.input is not None else Path(params.input_dir)
        routes, names = _source_routes(params, stats_file / "stats.json")
        log.info("preprocess: one prefix per source: %s", ", ".join(names))

    # Every shard of every split (and source) is prepared (written and fsynced under temporary names)
    # before any is committed, then all are committed together: a run killed or failing at any point
    # leaves the previous complete set of shards, never a new split beside an old one.
    all_stats: list[ShardStats] = []
    staged: list[Any] = []
    written_prefixes: list[tuple[str, list[str]]] = []  # (split prefix, its output prefixes)
    try:
        for path, prefix in jobs:
            n = params.num_shards
            outs = [prefix] if names is None else [source_prefix(prefix, name) for name in names]
            written_prefixes.append((prefix, outs))
            # one unsharded pair when the whole split is written in one piece; an explicit --shard_index
            # (a Snakemake job) always writes the shard name it was asked for, also "-00000-of-00001"
            whole = n == 1 and params.shard_index is None
            if params.shard_index is not None:
                indices = [params.shard_index]
            else:
                indices = list(range(n))
            per_out: dict[str, list[ShardStats]] = {out: [] for out in outs}
            for index in indices:
                targets = outs if whole else [shard_prefix(out, index, n) for out in outs]
                written = binarize_range_by_source(
                    path,
                    targets,
                    routes,
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
                for out, stat in zip(outs, written, strict=True):
                    per_out[out].append(stat)
            for out, split_stats in per_out.items():
                _print_split(path, out, split_stats, dtype)
                all_stats += split_stats
        commit_builders(staged)
    except BaseException:
        for builder in staged:
            builder.abort()
        raise
    if params.shard_index is None:
        for prefix, outs in written_prefixes:
            for out in outs:
                _remove_stale(out, params.num_shards)
            if routes is not None:  # a split-wide prefix from an earlier run would shadow the new ones
                _remove_stale(prefix, params.num_shards, keep=False)
            elif params.input is None:  # per-source prefixes of an earlier --by_source run are stale too
                for name in _corpus_source_names(Path(params.input_dir) / "stats.json"):
                    _remove_stale(source_prefix(prefix, name), params.num_shards, keep=False)
    return all_stats


def _corpus_source_names(stats_path: Path) -> list[str]:
    """The corpus's source names (from its stats.json; none when it is missing or unreadable).

    Only these per-source prefixes are cleaned after a run without ``--by_source``: a name is known to
    be a corpus source, never a file of the user's own that happens to share the output folder. Group
    names (``--source_groups``) are not recorded there, so a grouped prefix stays until removed by hand.
    """
    try:
        sources = json.loads(stats_path.read_text(encoding="utf-8")).get("sources")
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in sources if isinstance(name, str)] if isinstance(sources, dict) else []


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
    routes: Mapping[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Parse, encode and pack one batch: ``(tokens with </s> after each doc, lengths, output of each doc)``;
    the outputs (indices by the record's ``source``) only with ``routes``, else None. Runs in a worker."""
    texts = []
    outputs: list[int] = []
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
        if routes is not None:
            out = routes.get(record.get("source"))  # type: ignore[arg-type]
            if out is None:
                raise _BadLine(
                    offset,
                    f"has source {record.get('source')!r}, which the corpus stats.json does not list "
                    "(--by_source routes by it); re-run the corpus stage so splits and stats.json match",
                )
            outputs.append(out)
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
    return tokens, lengths, (np.asarray(outputs, dtype=np.int64) if routes is not None else None)


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
    return binarize_range_by_source(
        path,
        [prefix],
        None,
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
    )[0]


def binarize_range_by_source(
    path: Path,
    prefixes: Sequence[str],
    routes: Mapping[str, int] | None,
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
) -> list[ShardStats]:
    """:func:`binarize_range` into several outputs at once: each document goes to
    ``prefixes[routes[record["source"]]]`` (``routes=None``: one prefix, every document), in file order.
    Every prefix is written, empty where no document of the range is routed to it."""
    from gitnetic.data.encoder import EncoderMismatch

    same = dict(
        dtype=dtype,
        eos_id=eos_id,
        shard_index=shard_index,
        num_shards=num_shards,
        workers=workers,
        batch_size=batch_size,
        staged=staged,
    )
    try:
        return _binarize_range(
            path, prefixes, routes, encoder, verifier=verifier, verify_every=verify_every, **same
        )
    except EncoderMismatch as exc:
        log.warning("preprocess: %s in %s; redoing %s with the HF encoder", exc, path, ", ".join(prefixes))
        return _binarize_range(path, prefixes, routes, verifier, verifier=None, verify_every=0, **same)


def _binarize_range(
    path: Path,
    prefixes: Sequence[str],
    routes: Mapping[str, int] | None,
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
) -> list[ShardStats]:
    import contextlib
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm import tqdm

    from gitnetic.data.indexed import IndexedDatasetBuilder

    t0 = time.perf_counter()
    start, end = byte_range(path.stat().st_size, shard_index, num_shards)
    eos = np.array([eos_id], dtype=np.uint32)
    pending: deque[Future] = deque()
    docs = 0
    bar = tqdm(desc=os.path.basename(prefixes[0]), unit="tok", unit_scale=True, disable=None, leave=False)
    try:
        with (
            ThreadPoolExecutor(max(1, workers), thread_name_prefix="preprocess") as pool,
            contextlib.ExitStack() as stack,
        ):
            # entered in order, so an exception aborts every builder (no output appears at any prefix)
            builders = [stack.enter_context(IndexedDatasetBuilder(p, dtype)) for p in prefixes]

            def drain_one() -> None:
                tokens, lengths, outputs = pending.popleft().result()
                if outputs is None:
                    builders[0].add_documents(tokens, lengths)
                else:
                    ends = np.cumsum(lengths)
                    for out in np.unique(outputs).tolist():
                        pick = outputs == out
                        parts = [tokens[e - n : e] for e, n in zip(ends[pick], lengths[pick], strict=True)]
                        builders[out].add_documents(np.concatenate(parts), lengths[pick])
                bar.update(tokens.size)

            try:
                for lines, offsets in _iter_batches(path, start, end, batch_size):
                    pending.append(
                        pool.submit(
                            _encode_batch,
                            lines,
                            offsets,
                            docs,
                            encoder,
                            dtype,
                            eos,
                            verifier,
                            verify_every,
                            routes,
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
            stats = [ShardStats(b.prefix, b.num_documents, b.num_tokens, 0.0, encoder.name) for b in builders]
            if staged is not None:
                for builder in builders:
                    builder.prepare()  # the caller commits them with the other shards
                staged.extend(builders)
    except _BadLine as exc:
        raise DataError(
            f"{path}:{_line_number(path, exc.offset)} {exc.reason}; fix or re-create the corpus"
        ) from None
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    for stat in stats:  # one pass wrote them all: each gets the pass's time, its share by tokens
        stat.seconds = (
            seconds * stat.tokens / max(sum(s.tokens for s in stats), 1) if len(stats) > 1 else seconds
        )
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
