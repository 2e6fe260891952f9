"""Near-duplicate removal: MinHash signatures over word n-gram shingles, banded LSH, exact verification.

Documents are offered one at a time in corpus order (sources as listed, then each source's stable
order). The **first** copy of a group of near-duplicates survives and every later one whose *exact*
Jaccard similarity with a kept document reaches ``threshold`` is dropped, so the survivor is the same on
every run. The corpus stage calls this before it assigns splits, so near-copies never straddle
train/test.

Shingles follow BigCode: the text is split into words (``\\w+``), and each run of ``ngram`` consecutive
words is one shingle (a shorter document is one shingle). They are handled as 64-bit hashes
(:mod:`gitnetic.data.corpus.neardup.shingle_hash`, computed in NumPy for a whole batch of documents), never as strings.
LSH bands are chosen so that a pair at exactly ``threshold`` becomes a candidate with probability >= 0.99
(for 128 permutations and 0.85: 16 bands x 8 rows). MinHash only *proposes*: a candidate whose signature
estimate is within ``verify_margin`` of the threshold (3 standard errors of the estimate, about 0.095 at
128 permutations and 0.85) is re-read and compared on its exact set of shingle hashes, best estimate
first, and the first one at or above the threshold is the match. Why exact: a hard threshold on the
estimate drops near-copies just *under* the threshold about as often as it keeps ones just over it
(bench/corpus.py found stdlib code-page tables at 0.835 dropped), and verification costs one read of a
kept set per candidate, not per document. The worker that signs a document also sends its sorted shingle
hashes, so the parent, which decides in corpus order and so cannot be parallel, never re-reads or
re-hashes a text.

Memory: the state grows with the number of *kept* documents only, about ``num_perm * 4`` bytes of
signature (512 B at 128) plus ``bands`` dict entries (~120 B each) plus 16 bytes to find its shingle
set again, i.e. roughly 2 KB per kept document: 1 GB for ~500k documents. The kept shingle sets
themselves (8 bytes a distinct shingle: about the kept corpus's size) go to an unlinked temporary file on
disk, gone when the index is, never to memory. Dropped documents cost nothing.

Two MinHash libraries can compute the signatures: ``rensa`` (Rust; the default: it takes a batch's shingle
hashes as one array) and ``datasketch`` (Python/NumPy, one document at a time; for comparison).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple

import numpy as np
import rensa

from gitnetic.common.errors import ConfigError
from gitnetic.data.corpus.neardup.shingle_hash import ShingleHasher, blank_non_words, distinct_sorted

__all__ = [
    "MinHasher",
    "NearDuplicateIndex",
    "Signed",
    "iter_shingles",
    "jaccard",
    "lsh_bands",
    "shingles",
    "split_words",
]

_WORD = re.compile(r"\w+")
_SPILL_BUFFER = 1 << 20  # kept documents' bytes gathered before one write to the spill file


def split_words(text: str) -> list[str]:
    r"""``re.findall(r"\w+", text)``, computed without the regex engine.

    Why: the regex visits every character from Python code's regex engine and was half the cost of
    :func:`shingles` (bench/clean_equivalence.py). :func:`blank_non_words` turns every character that is
    not a word character (``str.isalnum()`` or ``_``, which is exactly ``\w``) into a blank and
    ``str.split()`` cuts at the blanks (no word character is whitespace). tests/data/corpus/test_clean.py checks
    both facts over every code point."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (not from a decoded file): the regex copes
        return _WORD.findall(text)
    return blank_non_words(data).decode("utf-8").split()


def iter_shingles(text: str, ngram: int) -> Iterator[str]:
    """The word ``ngram``-shingles of ``text`` in text order, repeats included (a MinHash is the same for
    them and for their set: repeats change no minimum)."""
    words = split_words(text)
    if len(words) <= ngram:
        return iter((" ".join(words),))
    return map(" ".join, zip(*(words[i:] for i in range(ngram)), strict=False))  # stops at the shortest


def shingles(text: str, ngram: int) -> set[str]:
    """The set of word ``ngram``-shingles of ``text`` (BigCode style; MinHash ignores their order)."""
    return set(iter_shingles(text, ngram))


def jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity of two shingle sets."""
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter) if a or b else 1.0


def lsh_bands(num_perm: int, threshold: float, min_recall: float = 0.99) -> tuple[int, int]:
    """``(bands, rows)`` with the fewest bands such that a pair at ``threshold`` is a candidate with
    probability >= ``min_recall`` (fewer bands = fewer candidates and less memory)."""
    for bands in range(1, num_perm + 1):
        if num_perm % bands:
            continue
        rows = num_perm // bands
        if 1.0 - (1.0 - threshold**rows) ** bands >= min_recall:
            return bands, rows
    return num_perm, 1


class Signed(NamedTuple):
    """What a corpus worker sends the parent about a document for near-dedup: its MinHash signature and
    its distinct shingle hashes, so the parent verifies candidates without re-reading or re-hashing
    any text (it was the stage's one serial step; the workers sort the hashes in parallel)."""

    values: np.ndarray  # num_perm hash values (< 2**32 in both libraries, stored as uint32)
    shingles: np.ndarray  # the sorted distinct 64-bit shingle hashes (8 bytes each)


class MinHasher:
    """Signs documents; stateless after construction, so corpus worker processes each hold one and the
    parent's :class:`NearDuplicateIndex` receives only the :class:`Signed` values.

    Both libraries see the same input: the 64-bit shingle hashes of :class:`ShingleHasher`. rensa takes
    a whole batch of them as one flat array (its Rust loop is a tenth of the cost of hashing); datasketch
    gets them as 32-bit Python ints, one document at a time (slow, kept for comparison only)."""

    def __init__(
        self,
        ngram: int = 5,
        num_perm: int = 128,
        library: Literal["rensa", "datasketch"] = "rensa",
        seed: int = 1,
    ) -> None:
        if ngram < 1 or num_perm < 2:
            raise ConfigError(
                f"neardup.ngram must be >= 1 and neardup.num_perm >= 2, got {ngram}, {num_perm}"
            )
        self.ngram, self.num_perm, self.library, self.seed = ngram, num_perm, library, seed
        self.shingler = ShingleHasher(ngram, seed)
        if library == "datasketch":
            # imported here, not at the top: it loads scipy (0.7 s and +70 MB RSS measured on the
            # project VM), a cost every corpus run would pay although rensa is the default
            import datasketch

            self._ds = datasketch
            first = datasketch.MinHash(num_perm=num_perm, seed=seed)
            self._permutations, self._scheme = first.permutations, first.scheme  # made once, not per document
        elif library != "rensa":
            raise ConfigError(f"unknown neardup.library {library!r}; use rensa or datasketch")

    def sign_many(self, docs: Sequence[bytes]) -> list[Signed]:
        """The signatures of ``docs`` (UTF-8 texts), computed together: one NumPy pass over the batch."""
        if not docs:
            return []
        flat, offsets = self.shingler.hashes(docs)
        sets = [distinct_sorted(flat[lo:hi]) for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]
        if self.library == "rensa":
            ends = np.zeros(len(sets) + 1, dtype=np.uint64)  # each set's end in the concatenation
            np.cumsum(np.fromiter(map(len, sets), dtype=np.uint64, count=len(sets)), out=ends[1:])
            matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                np.concatenate(sets), ends, self.num_perm, self.seed
            )
            rows = np.array(matrix.to_rows(), dtype=np.uint32)
            return [Signed(row, items) for row, items in zip(rows, sets, strict=True)]
        signed = []
        for items in sets:
            mh = self._ds.MinHash(
                num_perm=self.num_perm, permutations=self._permutations, scheme=self._scheme, hashfunc=int
            )
            mh.update_batch((items & np.uint64(0xFFFFFFFF)).tolist())
            signed.append(Signed(mh.hashvalues.astype(np.uint32), items))
        return signed

    def sign(self, text: str) -> Signed:
        """One document's signature (corpus runs sign a batch at a time with :meth:`sign_many`)."""
        return self.sign_many([text.encode("utf-8", "surrogatepass")])[0]


def _jaccards(items: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """The exact Jaccard similarity of ``items`` with each of ``others`` (all sorted arrays of distinct
    values, none empty), in one pass: a family of similar files makes one document a candidate of
    dozens of kept ones, and a NumPy call per pair was most of the verification time."""
    sizes = np.fromiter(map(len, others), dtype=np.int64, count=len(others))
    values = others[0] if len(others) == 1 else np.concatenate(others)
    at = np.searchsorted(items, values)
    at[at == items.size] = 0
    starts = np.zeros(len(others), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    inter = np.add.reduceat(items[at] == values, starts, dtype=np.int64)
    return inter / (items.size + sizes - inter)


class NearDuplicateIndex:
    """The kept documents' signatures; :meth:`find` a kept near-duplicate of a new one, :meth:`add` it.

    Documents are signed by a :class:`MinHasher` (possibly in another process) and offered here in corpus
    order; the decisions depend only on that order, never on who signed what when.

    The LSH index is one dict per band, from the band's ``rows`` values (as bytes) to the kept documents
    with that band: a few lines, and it needs no MinHash object from the library, only the values a
    worker sent.
    """

    def __init__(
        self,
        threshold: float = 0.85,
        ngram: int = 5,
        num_perm: int = 128,
        library: Literal["rensa", "datasketch"] = "rensa",
        seed: int = 1,
        spill_dir: str | None = None,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"neardup.threshold must be in (0, 1], got {threshold}")
        self.hasher = MinHasher(ngram, num_perm, library, seed)
        self.threshold, self.ngram, self.num_perm, self.library = threshold, ngram, num_perm, library
        self.bands, self.rows = lsh_bands(num_perm, threshold)
        # a candidate's estimate below this cannot plausibly hide an exact Jaccard >= threshold
        self.verify_margin = 3.0 * math.sqrt(threshold * (1.0 - threshold) / num_perm)
        self._signatures = np.zeros((1024, num_perm), dtype=np.uint32)
        # one dict per band: the band's values (their bytes) -> the kept key(s) with that band
        self._buckets: list[dict[bytes, int | list[int]]] = [{} for _ in range(self.bands)]
        # The kept documents' shingle hash sets, for exact verification: on disk (read back from the
        # page cache), never all in memory.
        self._spill = tempfile.TemporaryFile(prefix="gitnetic-neardup-", dir=spill_dir)
        self._spans = array("Q")  # (offset, length) of each kept document's set in the spill file
        self._spill_end = 0  # bytes written to the file; later ones wait in _pending (one write per MB)
        self._pending = bytearray()
        self._last_keys: tuple[Signed | None, list[bytes]] = (None, [])
        self.kept = 0

    def _band_keys(self, signed: Signed) -> list[bytes]:
        if self._last_keys[0] is signed:  # find() then add() of the same document
            return self._last_keys[1]
        raw, width = signed.values.tobytes(), 4 * self.rows
        keys = [raw[i : i + width] for i in range(0, width * self.bands, width)]
        self._last_keys = (signed, keys)
        return keys

    def _kept_shingles(self, key: int) -> np.ndarray:
        offset, length = self._spans[2 * key], self._spans[2 * key + 1]
        if offset >= self._spill_end:
            start = offset - self._spill_end
            raw = bytes(self._pending[start : start + length])
        else:
            raw = os.pread(self._spill.fileno(), length, offset)
        return np.frombuffer(raw, dtype=np.uint64)

    def find(self, signed: Signed) -> int | None:
        """The key of a kept near-duplicate of the document ``signed``, or None."""
        found: set[int] = set()
        for buckets, band in zip(self._buckets, self._band_keys(signed), strict=True):
            hit = buckets.get(band)
            if isinstance(hit, list):
                found.update(hit)
            elif hit is not None:
                found.add(hit)
        if not found:
            return None
        candidates = np.array(sorted(found), dtype=np.int64)
        estimates = (self._signatures[candidates] == signed.values).mean(axis=1)
        order = np.argsort(-estimates, kind="stable")  # best estimate first, ties by key
        keys = candidates[order[estimates[order] >= self.threshold - self.verify_margin]]
        # the sizes alone rule some out (|A & B| / |A | B| <= min / max size), with a margin so that no
        # float rounding changes a decision
        sizes = np.frombuffer(self._spans, dtype=np.uint64)[2 * keys + 1].astype(np.int64) // 8
        n = signed.shingles.size
        keys = keys[np.minimum(sizes, n) >= (self.threshold - 1e-9) * np.maximum(sizes, n)]
        # the best estimate alone first (it is the match of almost every near-duplicate), then the rest
        for group in (keys[:1], keys[1:]):
            if group.size:
                similar = _jaccards(signed.shingles, [self._kept_shingles(int(k)) for k in group])
                hits = np.flatnonzero(similar >= self.threshold)
                if hits.size:
                    return int(group[hits[0]])
        return None

    def add(self, signed: Signed) -> int:
        """Index a kept document; returns its key (0, 1, 2, ... in the order added)."""
        key = self.kept
        if key == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
        self._signatures[key] = signed.values
        stored = signed.shingles.tobytes()
        self._spans.extend((self._spill_end + len(self._pending), len(stored)))
        self._pending += stored
        if len(self._pending) >= _SPILL_BUFFER:
            os.pwrite(self._spill.fileno(), self._pending, self._spill_end)
            self._spill_end += len(self._pending)
            self._pending.clear()
        for buckets, band in zip(self._buckets, self._band_keys(signed), strict=True):
            hit = buckets.get(band)
            if hit is None:
                buckets[band] = key
            elif isinstance(hit, list):
                hit.append(key)
            else:
                buckets[band] = [hit, key]
        self.kept += 1
        return key

    def add_or_match(self, text: str) -> int | None:
        """The key of a kept near-duplicate of ``text``, or None after keeping ``text``."""
        signed = self.hasher.sign(text)
        match = self.find(signed)
        if match is None:
            self.add(signed)
        return match

    def close(self) -> None:
        """Delete the spill file now rather than when the index is collected."""
        self._spill.close()
