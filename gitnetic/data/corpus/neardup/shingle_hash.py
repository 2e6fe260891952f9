"""64-bit hashes of word n-gram shingles for a batch of documents, computed in NumPy.

Why not Python strings: the string path (split the text into words, join each run of ``ngram`` words into
a new string, hand the strings to the MinHash library, which hashes them again) made one Python object
per word and one per shingle: 17 s of the 277 MB site-packages corpus on one core, twice the whole
stage's bare read path (bench/corpus_scale.py). Here a batch of documents is one byte buffer and every
step is a NumPy pass over it, about 3x cheaper; the MinHash library then takes the flat hash array.

The shingles are the same as :func:`gitnetic.data.corpus.neardup.index.shingles` gives, only hashed:

* A *word* is a maximal run of word characters (``\\w``) of the UTF-8 text. ASCII non-word bytes are
  blanked by one ``bytes.translate``; the few documents with non-ASCII characters that are not ``\\w``
  (dashes, quotes, CJK punctuation) get those blanked at the ``str`` level first, as ``split_words`` does.
* A word's hash is the polynomial ``sum(byte[i] * P**i) mod 2**64`` over its bytes (``i`` counted from
  the word's first byte), from one cumulative sum over the buffer: the sum between a word's ends,
  multiplied by ``P**-start`` (``P`` is odd, so it has an inverse mod 2**64).
* A shingle's hash mixes the hashes of its ``ngram`` words, each times its own odd constant, through the
  SplitMix64 finaliser. A document of at most ``ngram`` words is one shingle of all its words (a length
  term tells a short one from a full one), as in the string version.

Equal shingle strings always get equal hashes. Different ones collide with odds of about 2**-64 a pair
(tests/data/corpus/test_shingle_hash.py checks the hashes against a plain-Python reference of the same formula,
and that no two different shingles of site-packages-like text collide); so an exact Jaccard computed on
the hash sets is the exact Jaccard of the shingle sets, short of a ~1e-10 chance per compared pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ShingleHasher", "blank_non_words", "distinct_sorted", "mix64"]

# ASCII bytes that are not word characters (\w: letters, digits, "_") become a blank; the rest stay.
BLANK_NON_WORD = bytes(b if b >= 128 or chr(b).isalnum() or b == 95 else 32 for b in range(256))
ASCII_BYTES = bytes(range(128))
_SPACE = 32
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_P = 0x9E3779B97F4A7C15  # odd: invertible mod 2**64
_CHUNK = 1 << 18  # bytes per NumPy pass: bounds the power tables (2 x 2 MB) and the temporaries


def blank_non_words(data: bytes) -> bytes:
    """``data`` (UTF-8) with every character that is not ``\\w`` replaced by one space: the words are then
    its ``split()``. Lengths change only where a non-ASCII non-word character became one blank."""
    blanked = data.translate(BLANK_NON_WORD)
    if data.isascii():
        return blanked
    text = blanked.decode("utf-8", "surrogatepass")
    for char in set(data.translate(None, ASCII_BYTES).decode("utf-8", "surrogatepass")):
        if not char.isalnum():  # str.replace of one character is 4x faster than bytes.replace of its UTF-8
            text = text.replace(char, " ")
    return text.encode("utf-8", "surrogatepass")


def _powers(base: int, n: int) -> np.ndarray:
    table = np.full(n, base, dtype=_U64)
    table[0] = 1
    return np.cumprod(table, dtype=_U64)  # wraps mod 2**64, as wanted


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place: every input bit moves every output bit (the linear combination
    before it does not), which the MinHash permutations downstream assume of their input."""
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


class ShingleHasher:
    """Hashes the word ``ngram``-shingles of documents; ``seed`` picks the mixing constants."""

    def __init__(self, ngram: int = 5, seed: int = 1) -> None:
        self.ngram = ngram
        rng = np.random.default_rng(seed)
        self._weights = rng.integers(0, 1 << 63, size=ngram + 1, dtype=_U64) * _U64(2) + _U64(1)
        self._size = 0
        self._pp = self._pi = np.zeros(0, dtype=_U64)

    def _tables(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > self._size:
            self._size = max(n, _CHUNK)
            with np.errstate(over="ignore"):
                self._pp = _powers(_P, self._size)
                self._pi = _powers(pow(_P, -1, 1 << 64), self._size)
        return self._pp, self._pi

    def _word_hashes(self, buf: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Each word's hash and start offset in ``buf`` (blanked: words are runs of non-blank bytes),
        cut into passes of about ``_CHUNK`` bytes at a blank (a longer word gets a pass of its own)."""
        data = np.frombuffer(buf, dtype=np.uint8)
        hashes, starts = [], []
        lo, n = 0, len(buf)
        while lo < n:
            hi = n if n - lo <= _CHUNK else buf.rfind(b" ", lo, lo + _CHUNK)
            if hi <= lo:  # no blank in reach: one word longer than a chunk
                hi = buf.find(b" ", lo + _CHUNK)
                hi = n if hi < 0 else hi
            h, s = self._chunk(data[lo:hi])
            hashes.append(h)
            starts.append(s + lo)
            lo = hi
        if not hashes:
            return np.zeros(0, dtype=_U64), np.zeros(0, dtype=np.int64)
        return np.concatenate(hashes), np.concatenate(starts)

    def _chunk(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = data.size
        pp, pi = self._tables(n)
        word = data != _SPACE
        edges = np.flatnonzero(word[1:] != word[:-1])
        edges += 1  # where a word starts or ends
        if word[0]:
            edges = np.concatenate(([0], edges))
        if word[-1]:
            edges = np.concatenate((edges, [n]))
        sums = np.multiply(data, pp[:n], dtype=_U64)
        np.cumsum(sums, out=sums)  # sums[i] = sum(data[j] * P**j for j <= i)
        at = sums[edges - 1]  # the sum before each start and up to each end
        if edges.size and edges[0] == 0:
            at[0] = 0
        starts = np.ascontiguousarray(edges[0::2])
        hashes = at[1::2] - at[0::2]
        hashes *= pi[starts]  # as if each word started at offset 0
        return hashes, starts

    def hashes(self, docs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """The shingle hashes of each of ``docs`` (UTF-8) in text order, repeats included, as one flat
        array and the offsets of each document's run in it (``len(docs) + 1`` of them)."""
        ngram, weights = self.ngram, self._weights
        blanked = [blank_non_words(doc) for doc in docs]
        lengths = np.fromiter(map(len, blanked), dtype=np.int64, count=len(blanked))
        doc_starts = np.zeros(len(blanked), dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=doc_starts[1:])
        words, word_starts = self._word_hashes(b" ".join(blanked))
        first_word = np.searchsorted(word_starts, doc_starts)  # each document's first word
        word_offsets = np.append(first_word, words.size)
        per_doc = np.diff(word_offsets)
        # every run of ngram consecutive words; those inside one document are its shingles, in order
        full = max(words.size - ngram + 1, 0)
        combined = words[:full] * weights[0]
        for i in range(1, ngram):
            combined += words[i : i + full] * weights[i]
        if ngram > 1:  # drop the runs that cross into the next document (start in a doc's last ngram-1 words)
            crossing = (word_offsets[1:, None] - np.arange(1, ngram)).ravel()
            inside = np.ones(full, dtype=bool)
            inside[crossing[(crossing >= 0) & (crossing < full)]] = False
            combined = combined[inside]
        counts = np.maximum(per_doc - ngram + 1, 1)
        offsets = np.zeros(len(blanked) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        flat = np.empty(int(offsets[-1]), dtype=_U64)
        short = np.flatnonzero(per_doc < ngram)  # one shingle of all its (fewer than ngram) words
        if short.size:
            first = offsets[:-1][short]
            keep = np.ones(flat.size, dtype=bool)
            keep[first] = False
            flat[keep] = combined
            flat[first] = [self._short(words[word_offsets[d] : word_offsets[d + 1]]) for d in short]
        else:
            flat[:] = combined
        return mix64(flat), offsets

    def _short(self, words: np.ndarray) -> int:
        total = int((words * self._weights[: words.size]).sum(dtype=_U64))
        return (total + words.size * int(self._weights[self.ngram])) & _MASK64

    def hash_set(self, doc: bytes) -> np.ndarray:
        """The sorted distinct shingle hashes of one document: what exact verification compares."""
        return distinct_sorted(self.hashes([doc])[0])


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)``; a sort and a mask are ~10x faster on small arrays (NumPy 2.4's unique
    goes through a hash table first: 3.4 s against 0.4 s for every document of site-packages)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
