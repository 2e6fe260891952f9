"""Near-duplicate removal: MinHash signatures over word n-gram shingles, banded LSH, exact verification.

Documents are offered one at a time in corpus order (sources as listed, then each source's stable
order). The **first** copy of a group of near-duplicates survives and every later one whose *exact*
Jaccard similarity with a kept document reaches ``threshold`` is dropped, so the survivor is the same on
every run. The corpus stage calls this before it assigns splits, so near-copies never straddle
train/test.

Shingles follow BigCode: the text is split into words (``\\w+``), and each run of ``ngram`` consecutive
words is one shingle (a shorter document is one shingle). LSH bands are chosen so that a pair at exactly
``threshold`` becomes a candidate with probability >= 0.99 (for 128 permutations and 0.85: 16 bands x 8
rows). MinHash only *proposes*: a candidate whose signature estimate is within ``verify_margin`` of the
threshold (3 standard errors of the estimate, about 0.095 at 128 permutations and 0.85) is re-read and
compared on its exact shingle set, best estimate first, and the first one at or above the threshold is
the match. Why exact: a hard threshold on the estimate drops near-copies just *under* the threshold about
as often as it keeps ones just over it (bench/corpus.py found stdlib code-page tables at 0.835 dropped),
and verification costs one re-read per candidate, not per document.

Memory: the state grows with the number of *kept* documents only, about ``num_perm * 4`` bytes of
signature (512 B at 128) plus the library's band tables (``bands`` hash keys per document) plus 16 bytes
to find the kept text again, i.e. roughly 2 KB per kept document: 1 GB for ~500k documents. The kept
texts themselves go to an unlinked temporary file on disk (as large as the kept corpus, gone when the
index is), never to memory. Dropped documents cost nothing.

Two MinHash libraries can compute signatures and index bands: ``rensa`` (Rust; the default: in
bench/corpus.py it added 0.3 s to a 4 MB corpus where datasketch added 1.1 s, with half the peak RSS and
the same decisions; see bench/RESULTS.md) and ``datasketch`` (Python/NumPy).
"""

from __future__ import annotations

import math
import re
import tempfile
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Literal, NamedTuple

import numpy as np
import rensa

from gitnetic.common.errors import ConfigError

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
# ASCII bytes that are not word characters (\w: letters, digits, "_") become a blank; the rest stay.
_BLANK_NON_WORD = bytes(b if b >= 128 or chr(b).isalnum() or b == 95 else 32 for b in range(256))
_ASCII_BYTES = bytes(range(128))
# Shingles of kept documents held for exact verification: ~30 MB at most (a shingle string and its
# set slot take ~150 bytes), whatever the corpus size; 1M held 150 MB and broke the memory goal at 4x
# the site-packages corpus (bench/corpus_scale.py), 200k keeps most of the saving (families of similar
# files sit next to each other in path order).
VERIFY_CACHE_SHINGLES = 200_000
_SIGN_CHUNK = 1 << 16  # shingles per rensa update in MinHasher.sign


def split_words(text: str) -> list[str]:
    r"""``re.findall(r"\w+", text)``, computed without the regex engine.

    Why: the regex visits every character from Python code's regex engine and was half the cost of
    :func:`shingles` (bench/clean_equivalence.py). Here every character that is not a word character
    (``str.isalnum()`` or ``_``, which is exactly ``\w``) becomes a blank, and ``str.split()`` cuts at
    the blanks (no word character is whitespace): ASCII ones by one ``bytes.translate``, the few
    distinct non-ASCII ones by ``str.replace``. tests/data/test_clean.py checks both facts over every
    code point."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (not from a decoded file): the regex copes
        return _WORD.findall(text)
    blanked = data.translate(_BLANK_NON_WORD).decode("utf-8")
    if len(data) != len(text):  # non-ASCII characters present: blank the ones that are not \w
        for char in set(data.translate(None, _ASCII_BYTES).decode("utf-8")):
            if not char.isalnum():
                blanked = blanked.replace(char, " ")
    return blanked.split()


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
    """A document's MinHash: the library's object (what its LSH index takes) and the hash values."""

    minhash: object
    values: np.ndarray  # num_perm hash values (< 2**32 in both libraries, stored as uint32)


class MinHasher:
    """Signs documents; stateless after construction, so corpus worker processes each hold one and the
    parent's :class:`NearDuplicateIndex` receives only the (small, picklable) :class:`Signed` values."""

    def __init__(
        self,
        ngram: int = 5,
        num_perm: int = 128,
        library: Literal["rensa", "datasketch"] = "rensa",
        seed: int = 1,
    ) -> None:
        if ngram < 1 or num_perm < 2:
            raise ConfigError(
                f"near_dedup_ngram must be >= 1 and near_dedup_num_perm >= 2, got {ngram}, {num_perm}"
            )
        self.ngram, self.num_perm, self.library, self.seed = ngram, num_perm, library, seed
        if library == "datasketch":
            # imported here, not at the top: it loads scipy (0.7 s and +70 MB RSS measured on the
            # project VM), a cost every corpus run would pay although rensa is the default
            import datasketch

            self._ds = datasketch
            first = datasketch.MinHash(num_perm=num_perm, seed=seed)
            self._permutations, self._scheme = first.permutations, first.scheme  # made once, not per document
        elif library != "rensa":
            raise ConfigError(f"unknown near_dedup_library {library!r}; use rensa or datasketch")

    def _minhash(self, text: str) -> tuple[object, np.ndarray, set[str]]:
        items = shingles(text, self.ngram)
        if self.library == "rensa":
            mh = rensa.RMinHash(num_perm=self.num_perm, seed=self.seed)
            mh.update(list(items))  # rensa reads a list ~5x faster than a set
            return mh, np.asarray(mh.digest(), dtype=np.uint32), items
        mh = self._ds.MinHash(num_perm=self.num_perm, permutations=self._permutations, scheme=self._scheme)
        mh.update_batch([s.encode("utf-8") for s in items])
        # LeanMinHash: the hash values and seed only, ~10x smaller to send from a worker than a MinHash
        return self._ds.LeanMinHash(mh), mh.hashvalues.astype(np.uint32), items

    def sign(self, text: str) -> Signed:
        """``text``'s MinHash as :meth:`_minhash` computes it, without building the shingle set: the
        index needs that set only for a candidate worth verifying (a few hundred of 18k documents on
        site-packages), and building it was a third of the cost of signing."""
        if self.library == "rensa":
            mh = rensa.RMinHash(num_perm=self.num_perm, seed=self.seed)
            shingled = iter_shingles(text, self.ngram)
            # in lists (rensa reads a list ~5x faster than a set) of bounded size: a list of a whole
            # generated file's shingles would raise the stage's peak memory
            while chunk := list(islice(shingled, _SIGN_CHUNK)):
                mh.update(chunk)
            return Signed(mh, np.asarray(mh.digest(), dtype=np.uint32))
        mh, values, _ = self._minhash(text)
        return Signed(mh, values)


class NearDuplicateIndex:
    """The kept documents' signatures; :meth:`find` a kept near-duplicate of a new one, :meth:`add` it.

    Documents are signed by a :class:`MinHasher` (possibly in another process) and offered here in corpus
    order; the decisions depend only on that order, never on who signed what when.
    """

    def __init__(
        self,
        threshold: float = 0.85,
        ngram: int = 5,
        num_perm: int = 128,
        library: Literal["rensa", "datasketch"] = "rensa",
        seed: int = 1,
        spill_dir: str | None = None,
        decode: Callable[[bytes], str] = bytes.decode,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"near_dedup_threshold must be in (0, 1], got {threshold}")
        self.hasher = MinHasher(ngram, num_perm, library, seed)
        self.threshold, self.ngram, self.num_perm, self.library = threshold, ngram, num_perm, library
        self.bands, self.rows = lsh_bands(num_perm, threshold)
        # a candidate's estimate below this cannot plausibly hide an exact Jaccard >= threshold
        self.verify_margin = 3.0 * math.sqrt(threshold * (1.0 - threshold) / num_perm)
        self._signatures = np.zeros((1024, num_perm), dtype=np.uint32)
        # What the kept documents were stored as (their text, or the caller's record line: ``decode``
        # gets the text back), for exact verification; on disk, never in memory.
        self._spill = tempfile.TemporaryFile(prefix="gitnetic-neardup-", dir=spill_dir)
        self._decode = decode
        self._spans = array("Q")  # (offset, length) of each kept document in the spill file
        self._spill_end = 0
        self.kept = 0
        self._cache: OrderedDict[int, set[str]] = OrderedDict()  # kept key -> shingle set, LRU
        self._cached = 0  # shingles held in the cache
        self._verified: tuple[Signed, set[str]] | None = None
        if library == "rensa":
            self._lsh = rensa.RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=self.bands)
        else:
            self._lsh = self.hasher._ds.MinHashLSH(
                threshold=threshold, num_perm=num_perm, params=(self.bands, self.rows)
            )

    def _kept_text(self, key: int) -> str:
        offset, length = self._spans[2 * key], self._spans[2 * key + 1]
        self._spill.seek(offset)
        return self._decode(self._spill.read(length))

    def find(self, signed: Signed, text: str | Callable[[], str]) -> int | None:
        """The key of a kept near-duplicate of the document ``signed``, or None. ``text`` (or a function
        returning it, called only when a candidate needs exact verification) is the document's text."""
        candidates = np.array(sorted(int(k) for k in self._lsh.query(signed.minhash)), dtype=np.int64)
        if not candidates.size:
            return None
        estimates = (self._signatures[candidates] == signed.values).mean(axis=1)
        order = np.argsort(-estimates, kind="stable")  # best estimate first, ties by key
        items: set[str] | None = None  # the text's shingle set, built for the first candidate worth verifying
        for i in order:
            if estimates[i] < self.threshold - self.verify_margin:
                break
            if items is None:
                items = shingles(text if isinstance(text, str) else text(), self.ngram)
                self._verified = (signed, items)  # add() caches them if this document is kept
            key = int(candidates[i])
            if jaccard(items, self._kept_shingles(key)) >= self.threshold:
                return key
        return None

    def _kept_shingles(self, key: int) -> set[str]:
        """A kept document's shingle set, from a small cache: families of similar files (generated
        modules, vendored copies) make the same kept documents candidates again and again, and
        re-shingling them was most of the verification time (bench/corpus_scale.py)."""
        items = self._cache.get(key)
        if items is None:
            items = self._remember(key, shingles(self._kept_text(key), self.ngram))
        else:
            self._cache.move_to_end(key)
        return items

    def _remember(self, key: int, items: set[str]) -> set[str]:
        self._cache[key] = items
        self._cached += len(items)
        while self._cached > VERIFY_CACHE_SHINGLES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached -= len(old)
        return items

    def add(self, signed: Signed, stored: bytes) -> int:
        """Index a kept document (``stored``: what ``decode`` turns back into its text); returns its key
        (0, 1, 2, ... in the order added)."""
        key = self.kept
        if key == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
        self._signatures[key] = signed.values
        self._spill.seek(self._spill_end)
        self._spill.write(stored)
        self._spans.extend((self._spill_end, len(stored)))
        self._spill_end += len(stored)
        self._lsh.insert(key, signed.minhash)
        if self._verified is not None and self._verified[0] is signed:  # its set was built in find()
            self._remember(key, self._verified[1])
        self._verified = None
        self.kept += 1
        return key

    def add_or_match(self, text: str) -> int | None:
        """The key of a kept near-duplicate of ``text``, or None after keeping ``text``."""
        signed = self.hasher.sign(text)
        match = self.find(signed, text)
        if match is None:
            self.add(signed, text.encode("utf-8"))
        return match

    def close(self) -> None:
        """Delete the spill file now rather than when the index is collected."""
        self._spill.close()
