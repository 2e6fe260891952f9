"""MMIDIDX indexed datasets: the ``PREFIX.bin`` / ``PREFIX.idx`` pair fairseq, Megatron-LM and GPT-NeoX share.

Why this format: it is the lingua franca of LM pre-training, so shards gitnetic writes feed Megatron-style
trainers unchanged and shards they write feed gitnetic. ``.bin`` is the raw token stream (one dtype,
native little-endian, no header) and ``.idx`` holds the header, per-sequence lengths and byte pointers
and the document index, so a reader memory-maps both and never loads tokens into RAM.
The byte layout is documented in docs/shard-format.md.

A *shard set* ``PREFIX-00000-of-00004.{bin,idx}`` ... ``PREFIX-00003-of-00004.{bin,idx}`` is what a
fanned-out preprocess writes; ``IndexedDataset(PREFIX)`` opens either the single pair or the whole set
and presents one concatenated dataset (shard order = document order).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gitnetic.common.errors import ShardError
from gitnetic.common.io import output_file_mode, raise_if_disk_full, remove_stale_temporaries

__all__ = [
    "DTYPE_CODES",
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "IndexedDataset",
    "IndexedDatasetBuilder",
    "ShardError",
    "best_dtype",
    "check_token_ids",
    "commit_builders",
    "shard_glob",
    "shard_prefix",
    "shard_prefixes",
    "source_prefix",
]

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# The .idx header, the one place its layout is written down (read and written through it):
# magic (9) + version <Q (8) + dtype code <B (1) + sequence count <Q (8) + document-index length <Q (8)
HEADER = struct.Struct("<9sQBQQ")
HEADER_SIZE = HEADER.size  # 34

# The dtype codes of fairseq/Megatron (``DType`` in megatron.core.datasets.indexed_dataset).
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    6: np.dtype(np.float64),
    7: np.dtype(np.float32),
    8: np.dtype(np.uint16),
}
_CODE_OF = {dt: code for code, dt in DTYPE_CODES.items()}
_FIX = "re-run 'python -m gitnetic preprocess' to rewrite it"
# One shard name, spelled once: PREFIX-0000i-of-0000N (five digits each), plus its glob and regex forms.
SHARD_NAME = "{prefix}-{index}-of-{num_shards:05d}"
_SHARD_DIGITS = "[0-9]" * 5
# One per-source name, spelled once: SPLIT_PREFIX-SOURCE (``preprocess --by_source``), e.g. data/bin/train-code;
# a shard set of it is then SPLIT_PREFIX-SOURCE-0000i-of-0000N.
SOURCE_NAME = "{prefix}-{source}"
_SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.idx$")
# Validation walks the index in chunks so opening a huge shard needs O(chunk) scratch memory, not O(n).
_CHUNK = 1 << 20
# How many tokens :meth:`IndexedDataset.max_token_id` reads at most: 512 MB of uint16, about a second from
# the page cache; a set up to this size is read whole, a larger one (a 100 GB set: 50G tokens) in a sample.
_SCAN_BUDGET = 1 << 28


def best_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab ≤ 65,535), else int32: halves shard size for typical vocabularies."""
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size <= 65_535 else np.dtype(np.int32)


def check_token_ids(prefix: str, max_id: int, vocab_size: int, fix: str) -> None:
    """Refuse token ids the model has no embedding for: the one message for ``train`` (before it starts,
    from :meth:`IndexedDataset.max_token_id`) and ``evaluate`` (per batch). Such ids mean the shards were
    made with another tokenizer; the model would fail on them with a bare ``IndexError`` (or, on a GPU, a
    device-side assert that ends the process)."""
    if max_id >= vocab_size:
        raise ShardError(f"{prefix} holds token id {max_id} but the model has {vocab_size} tokens; {fix}")


def shard_prefix(prefix: str | os.PathLike[str], index: int | str, num_shards: int) -> str:
    """``PREFIX-0000i-of-0000N``: the prefix of shard ``index`` of a set of ``num_shards``.

    The one definition of shard names: the binarizer writes them, :class:`IndexedDataset` finds them and
    ``workflow/Snakefile`` declares them. A string ``index`` (a Snakemake wildcard such as ``"{shard}"``)
    is inserted as is.
    """
    index = index if isinstance(index, str) else f"{index:05d}"
    return SHARD_NAME.format(prefix=os.fspath(prefix), index=index, num_shards=num_shards)


def source_prefix(prefix: str | os.PathLike[str], source: str) -> str:
    """``PREFIX-SOURCE``: the prefix ``preprocess --by_source`` writes for one source (or group) of a split.

    Like :func:`shard_prefix`, the one definition: the binarizer writes it and ``workflow/Snakefile``
    declares it; blends and ``evaluate`` name it (``0.7 data/bin/train-code 0.3 data/bin/train-commits``).
    A string ``source`` is inserted as is, so a Snakemake pattern such as ``data/bin/{split}`` works too.
    """
    return SOURCE_NAME.format(prefix=os.fspath(prefix), source=source)


def shard_glob(prefix: str | os.PathLike[str]) -> str:
    """A ``glob`` pattern matching the shard prefixes of any set behind ``prefix`` (add ``.idx`` etc.)."""
    return glob.escape(os.fspath(prefix)) + f"-{_SHARD_DIGITS}-of-{_SHARD_DIGITS}"


def _normalize_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    for known in DTYPE_CODES.values():
        if dt == known:
            return known
    valid = ", ".join(str(d) for d in DTYPE_CODES.values())
    raise ValueError(f"dtype {dt} has no MMIDIDX code; use one of {valid}")


def shard_prefixes(prefix: str | os.PathLike[str]) -> list[str]:
    """The file prefixes behind ``prefix``: ``[prefix]`` for a single pair, else the shard set in order.

    Raises ``ShardError`` when nothing is there, when both forms exist (a stale leftover would silently
    change the data) or when a shard set is incomplete.
    """
    prefix = os.fspath(prefix)
    single = os.path.exists(prefix + ".idx") or os.path.exists(prefix + ".bin")
    found: dict[int, set[int]] = {}
    for path in glob.glob(shard_glob(prefix) + ".idx"):
        m = _SHARD_RE.search(path)
        if m and path[: m.start()] == prefix:
            found.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
    if single and found:
        raise ShardError(
            f"both {prefix}.idx and a shard set {prefix}-*-of-*.idx exist; delete the stale one "
            f"or {_FIX} into a clean output directory"
        )
    if single:
        return [prefix]
    if not found:
        raise ShardError(
            f"no shards at prefix {prefix} (expected {prefix}.bin/.idx or {prefix}-00000-of-0000N.bin/.idx); "
            "run 'python -m gitnetic preprocess' first or fix the prefix"
        )
    if len(found) > 1:
        sets = ", ".join(f"of-{n:05d}" for n in sorted(found))
        raise ShardError(
            f"shard sets of different sizes ({sets}) exist for {prefix}; delete the stale ones and {_FIX}"
        )
    ((num, have),) = found.items()
    missing = sorted(set(range(num)) - have)
    if missing or num == 0:
        first = shard_prefix(prefix, missing[0] if missing else 0, num)
        raise ShardError(
            f"shard set {prefix} is incomplete: {len(missing)} of {num} shard(s) missing, e.g. {first}.idx; "
            f"run the missing 'preprocess --shard_index {missing[0] if missing else 0}' job or {_FIX}"
        )
    return [shard_prefix(prefix, i, num) for i in range(num)]


class _Shard:
    """One validated, memory-mapped ``.bin``/``.idx`` pair."""

    def __init__(self, prefix: str, validate: bool = True) -> None:
        self.prefix = prefix
        idx_path, bin_path = prefix + ".idx", prefix + ".bin"
        if not os.path.isfile(idx_path):
            other = (
                " (the .bin exists: the run that wrote it was interrupted)"
                if os.path.exists(bin_path)
                else ""
            )
            raise ShardError(f"index file {idx_path} is missing{other}; {_FIX}")
        if not os.path.isfile(bin_path):
            raise ShardError(f"data file {bin_path} is missing (its .idx exists); {_FIX}")
        idx_size = os.path.getsize(idx_path)
        with open(idx_path, "rb") as fh:
            header = fh.read(HEADER_SIZE)
        if len(header) < len(MAGIC) or header[: len(MAGIC)] != MAGIC:
            raise ShardError(f"{idx_path} has a bad magic number (not an MMIDIDX index); {_FIX}")
        if len(header) < HEADER_SIZE:
            raise ShardError(
                f"{idx_path} is truncated ({idx_size} bytes, the header alone is {HEADER_SIZE}); {_FIX}"
            )
        _, version, code, n, n_doc_idx = HEADER.unpack(header)
        if version != VERSION:
            raise ShardError(
                f"{idx_path} has format version {version}, only version {VERSION} is supported; {_FIX}"
            )
        if code not in DTYPE_CODES:
            raise ShardError(f"{idx_path} has unknown dtype code {code} (valid: 1-8); {_FIX}")
        self.dtype = DTYPE_CODES[code]
        need = HEADER_SIZE + 12 * n + 8 * n_doc_idx
        # Megatron's multimodal variant appends one int8 mode per sequence; the token data is the same.
        if idx_size < need:
            raise ShardError(
                f"{idx_path} is truncated ({idx_size} bytes, its header promises {need} for {n} sequences); {_FIX}"
            )
        if idx_size not in (need, need + n):
            raise ShardError(f"{idx_path} has {idx_size - need} unexpected trailing bytes; {_FIX}")
        if n_doc_idx < 1:
            raise ShardError(f"{idx_path} has an empty document index (it must start with 0); {_FIX}")
        self._idx = np.memmap(idx_path, dtype=np.uint8, mode="r")
        self.sizes = np.frombuffer(self._idx, dtype="<i4", count=n, offset=HEADER_SIZE)
        self.pointers = np.frombuffer(self._idx, dtype="<i8", count=n, offset=HEADER_SIZE + 4 * n)
        self.document_indices = np.frombuffer(
            self._idx, dtype="<i8", count=n_doc_idx, offset=HEADER_SIZE + 12 * n
        )
        bin_size = os.path.getsize(bin_path)
        itemsize = self.dtype.itemsize
        if validate:
            self.num_tokens = self._validate(idx_path, bin_path, bin_size)
        else:
            self.num_tokens = bin_size // itemsize
        if bin_size:
            self.data = np.memmap(bin_path, dtype=self.dtype, mode="r", shape=(bin_size // itemsize,))
        else:  # mmap cannot map an empty file
            self.data = np.empty(0, dtype=self.dtype)

    def _validate(self, idx_path: str, bin_path: str, bin_size: int) -> int:
        n = len(self.sizes)
        itemsize = self.dtype.itemsize
        doc = self.document_indices
        if doc[0] != 0 or doc[-1] != n:
            raise ShardError(
                f"{idx_path} has an inconsistent document index (must run from 0 to {n}, "
                f"runs from {int(doc[0])} to {int(doc[-1])}); {_FIX}"
            )
        for lo in range(0, len(doc) - 1, _CHUNK):
            if np.any(np.diff(doc[lo : lo + _CHUNK + 1]) < 0):
                raise ShardError(f"{idx_path} has a decreasing document index; {_FIX}")
        total = 0  # tokens so far == expected pointer / itemsize
        for lo in range(0, n, _CHUNK):
            sizes = self.sizes[lo : lo + _CHUNK].astype(np.int64)
            if np.any(sizes < 0):
                raise ShardError(f"{idx_path} has negative sequence lengths; {_FIX}")
            expected = (total + np.cumsum(sizes) - sizes) * itemsize
            if not np.array_equal(self.pointers[lo : lo + _CHUNK], expected):
                raise ShardError(
                    f"{idx_path} has byte pointers inconsistent with its sequence lengths "
                    f"(from sequence {lo} on); {_FIX}"
                )
            total += int(sizes.sum())
        if bin_size != total * itemsize:
            raise ShardError(
                f"{bin_path} is {bin_size} bytes but its index describes {total} {self.dtype} tokens "
                f"= {total * itemsize} bytes (truncated or mismatched pair); {_FIX}"
            )
        return total

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self.data[start : start + int(self.sizes[i])]


class IndexedDataset:
    """A read-only, memory-mapped MMIDIDX dataset (one pair or a shard set opened by prefix).

    ``ds[i]`` is a zero-copy ``np.ndarray`` view of sequence ``i`` (one document, for shards gitnetic
    writes); ``sizes`` are the sequence lengths (int32), ``num_tokens`` their sum. RAM use does not grow
    with the token count: only the index arrays are touched, and those are memory-mapped for a single
    pair (a shard set concatenates its ``sizes``: 4 bytes per sequence). Pickles by prefix, so DataLoader
    workers re-open the maps instead of copying them.
    """

    def __init__(self, prefix: str | os.PathLike[str], validate: bool = True) -> None:
        self.prefix = os.fspath(prefix)
        self._validate = validate
        self._shards = [_Shard(p, validate) for p in shard_prefixes(self.prefix)]
        dtypes = {s.dtype for s in self._shards}
        if len(dtypes) > 1:
            raise ShardError(
                f"shards of {self.prefix} mix dtypes ({', '.join(sorted(map(str, dtypes)))}); {_FIX}"
            )
        self.dtype: np.dtype = self._shards[0].dtype
        counts = [len(s.sizes) for s in self._shards]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._len = int(self._starts[-1])
        self.num_tokens = int(sum(s.num_tokens for s in self._shards))
        self._sizes: np.ndarray | None = None

    # pickling: reopen by prefix rather than serialising the mapped arrays
    def __getstate__(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "validate": False}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["prefix"], validate=state["validate"])  # type: ignore[misc]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self._len):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        i = int(index)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"sequence {index} out of range for {self._len} sequences in {self.prefix}")
        if len(self._shards) == 1:
            return self._shards[0][i]
        s = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._shards[s][i - int(self._starts[s])]

    @property
    def sizes(self) -> np.ndarray:
        """Sequence lengths, int32 (a view of the index for a single pair)."""
        if len(self._shards) == 1:
            return self._shards[0].sizes
        if self._sizes is None:  # concatenated once: 4 bytes per sequence
            self._sizes = np.concatenate([s.sizes for s in self._shards])
        return self._sizes

    @property
    def document_indices(self) -> np.ndarray:
        """Sequence index where each document starts, plus the total (``docs + 1`` entries, int64)."""
        if len(self._shards) == 1:
            return self._shards[0].document_indices
        parts = [np.zeros(1, dtype=np.int64)]
        for start, shard in zip(self._starts[:-1], self._shards, strict=True):
            parts.append(shard.document_indices[1:] + start)
        return np.concatenate(parts)

    @property
    def num_documents(self) -> int:
        return int(sum(len(s.document_indices) - 1 for s in self._shards))

    @property
    def shard_prefixes(self) -> list[str]:
        return [s.prefix for s in self._shards]

    def max_token_id(
        self, budget: int = _SCAN_BUDGET, chunk: int = _CHUNK, below: int | None = None
    ) -> tuple[int, bool]:
        """``(largest token id read, whether every token was read)``, reading at most about ``budget``
        tokens.

        A set of up to ``budget`` tokens is read whole. A larger one is read in chunks of ``chunk`` tokens
        spread evenly over each shard (its first and last chunk always among them, shards weighted by
        size): a foreign tokenizer's ids are everywhere in its shards, so a sample finds them, at a cost
        that does not grow with the set. With ``below`` (the bound the caller checks) and a dtype that
        cannot hold an id that large, nothing is read: the dtype's largest value is returned.
        """
        if self.dtype.kind in "iu" and below is not None and int(np.iinfo(self.dtype).max) < below:
            return int(np.iinfo(self.dtype).max), True
        whole = self.num_tokens <= budget
        peak = -1
        for shard in self._shards:
            data, n = shard.data, len(shard.data)
            if n == 0:
                continue
            starts: Iterable[int] = range(0, n, chunk)
            if not whole:
                chunks = -(-n // chunk)
                share = max(2, budget * n // max(self.num_tokens, 1) // chunk)
                step = max(1, (chunks - 1) // (share - 1))
                starts = [*range(0, chunks * chunk, step * chunk)][: share - 1] + [(chunks - 1) * chunk]
            for lo in starts:
                peak = max(peak, int(data[lo : lo + chunk].max()))
        return peak, whole

    def __repr__(self) -> str:
        return (
            f"IndexedDataset({self.prefix!r}, sequences={self._len}, tokens={self.num_tokens}, "
            f"dtype={self.dtype}, shards={len(self._shards)})"
        )


class IndexedDatasetBuilder:
    """Streams documents into ``PREFIX.bin`` and writes ``PREFIX.idx`` on :meth:`finalize`, atomically.

    Tokens go straight to a temporary ``.bin`` (RAM holds only the int32 lengths, 4 bytes per document).
    ``finalize`` fsyncs both temporaries, removes any old ``PREFIX.idx`` first, renames the ``.bin`` and
    then the ``.idx`` into place: the index is the commit marker, so a run killed at any point leaves
    either no ``.idx`` (readers refuse the prefix) or a complete, consistent pair. ``finalize`` is
    :meth:`prepare` (write and fsync everything to temporaries) then :meth:`commit` (the renames);
    :func:`commit_builders` commits several prepared builders as one group (a dataset's splits). Use it
    as a context manager (or call :meth:`abort`) so an exception removes the temporaries; temporaries a
    killed run left for the same prefix are removed when a new builder starts.
    """

    def __init__(self, prefix: str | os.PathLike[str], dtype: Any = np.int32) -> None:
        self.prefix = os.fspath(prefix)
        self.dtype = _normalize_dtype(dtype)
        self._max = np.iinfo(self.dtype).max if self.dtype.kind in "iu" else None
        self._min = np.iinfo(self.dtype).min if self.dtype.kind in "iu" else None
        directory = Path(self.prefix).parent
        directory.mkdir(parents=True, exist_ok=True)
        name = Path(self.prefix).name
        for suffix in (".bin", ".idx"):
            remove_stale_temporaries(self.prefix + suffix)
        fd, self._bin_tmp = tempfile.mkstemp(prefix=f".{name}.bin.", suffix=".tmp", dir=directory)
        os.fchmod(
            fd, output_file_mode()
        )  # mkstemp makes 0600 files; shards should be as readable as any output
        self._bin = os.fdopen(fd, "wb", buffering=1 << 20)
        self._idx_tmp: str | None = None
        self._sizes: list[np.ndarray] = []
        self._pending: list[int] = []
        self.num_tokens = 0
        self.num_documents = 0
        self._closed = False
        self._prepared = False

    def __enter__(self) -> IndexedDatasetBuilder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
            raise_if_disk_full(exc, self.prefix + ".bin")
        elif not self._closed and not self._prepared:  # a prepared builder waits for its commit
            self.finalize()

    def _check_range(self, arr: np.ndarray) -> None:
        if self._max is None or arr.size == 0 or arr.dtype == self.dtype:
            return
        lo, hi = int(arr.min()), int(arr.max())
        if lo < self._min or hi > self._max:
            raise ValueError(
                f"token ids {lo}..{hi} do not fit {self.dtype}; build the shard with a wider dtype"
            )

    def add_document(self, ids: Iterable[int] | np.ndarray) -> None:
        """Append one document (= one sequence) of token ids."""
        arr = np.asarray(ids if isinstance(ids, np.ndarray | Sequence) else list(ids))
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        self._check_range(arr)
        self._bin.write(arr.astype(self.dtype, copy=False).tobytes())
        self._pending.append(arr.size)
        if len(self._pending) >= 65536:
            self._flush_sizes()
        self.num_tokens += int(arr.size)
        self.num_documents += 1

    def add_documents(self, tokens: np.ndarray, lengths: Sequence[int] | np.ndarray) -> None:
        """Append many documents at once: ``tokens`` is their concatenation, ``lengths`` their sizes."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if int(lengths.sum()) != tokens.size or np.any(lengths < 0):
            raise ValueError(f"lengths sum to {int(lengths.sum())} but {tokens.size} tokens were given")
        if np.any(lengths > np.iinfo(np.int32).max):
            raise ValueError("a document longer than 2**31-1 tokens cannot be indexed")
        self._check_range(tokens)
        self._bin.write(np.ascontiguousarray(tokens, dtype=self.dtype).data)  # no extra copy
        self._flush_sizes()
        self._sizes.append(lengths.astype(np.int32))
        self.num_tokens += int(tokens.size)
        self.num_documents += len(lengths)

    def _flush_sizes(self) -> None:
        if self._pending:
            self._sizes.append(np.asarray(self._pending, dtype=np.int32))
            self._pending = []

    def finalize(self) -> tuple[str, str]:
        """Write the index and move both files into place; returns ``(bin_path, idx_path)``."""
        self.prepare()
        return self.commit()

    def prepare(self) -> None:
        """Write the index to a temporary and fsync both temporaries; nothing is visible at the prefix yet."""
        if self._closed or self._prepared:
            raise RuntimeError(f"builder for {self.prefix} is already finalized, prepared or aborted")
        try:
            self._flush_sizes()
            self._bin.flush()
            os.fsync(self._bin.fileno())
            self._bin.close()
            sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int32)
            self._sizes = []
            n = len(sizes)
            pointers = np.zeros(n, dtype=np.int64)
            if n > 1:
                np.cumsum(sizes[:-1], dtype=np.int64, out=pointers[1:])
            pointers *= self.dtype.itemsize
            doc_idx = np.arange(n + 1, dtype=np.int64)  # one document = one sequence
            directory = Path(self.prefix).parent
            fd, self._idx_tmp = tempfile.mkstemp(
                prefix=f".{Path(self.prefix).name}.idx.", suffix=".tmp", dir=directory
            )
            os.fchmod(fd, output_file_mode())
            with os.fdopen(fd, "wb") as fh:
                fh.write(HEADER.pack(MAGIC, VERSION, _CODE_OF[self.dtype], n, len(doc_idx)))
                fh.write(sizes.astype("<i4").tobytes())
                fh.write(pointers.astype("<i8").tobytes())
                fh.write(doc_idx.astype("<i8").tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException as exc:
            self.abort()
            raise_if_disk_full(exc, self.prefix + ".bin")
            raise
        self._prepared = True

    def commit(self) -> tuple[str, str]:
        """Move the prepared ``.bin`` and then ``.idx`` into place; returns ``(bin_path, idx_path)``."""
        return commit_builders([self])[0]

    def abort(self) -> None:
        """Drop the temporaries; nothing appears at the prefix."""
        self._closed = True
        if not self._bin.closed:
            with contextlib.suppress(OSError):  # a full disk fails the flush again: the file goes anyway
                self._bin.close()
        for tmp in (self._bin_tmp, self._idx_tmp):
            if tmp:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass


def commit_builders(builders: Sequence[IndexedDatasetBuilder]) -> list[tuple[str, str]]:
    """Commit prepared builders as one group: every old ``.idx`` at their prefixes is removed before the
    first rename, so a kill in between leaves some prefix without an index (refused by readers), never
    an old split beside a new one. Returns each builder's ``(bin_path, idx_path)``."""
    for builder in builders:
        if not builder._prepared or builder._closed:
            raise RuntimeError(f"builder for {builder.prefix} is not prepared (or already committed)")
    try:
        for builder in builders:
            idx_path = builder.prefix + ".idx"
            if os.path.exists(idx_path):  # never let an old index describe the new .bin
                os.unlink(idx_path)
        paths = []
        for builder in builders:
            bin_path, idx_path = builder.prefix + ".bin", builder.prefix + ".idx"
            os.replace(builder._bin_tmp, bin_path)
            os.replace(builder._idx_tmp, idx_path)  # type: ignore[arg-type]
            builder._closed = True
            paths.append((bin_path, idx_path))
        for directory in {Path(b.prefix).parent for b in builders}:
            _fsync_dir(directory)
    except BaseException:
        for builder in builders:
            builder.abort()
        raise
    return paths


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
