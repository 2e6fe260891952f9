"""Near-duplicate removal: MinHash signatures over word n-gram shingles, banded LSH, verified Jaccard.

Documents are offered one at a time in corpus order (sources as listed, then each source's stable
order). The **first** copy of a group of near-duplicates survives and every later one whose estimated
Jaccard similarity with a kept document reaches ``threshold`` is dropped, so the survivor is the same on
every run. The corpus stage calls this before it assigns splits, so near-copies never straddle
train/test.

Shingles follow BigCode: the text is split into words (``\\w+``), and each run of ``ngram`` consecutive
words is one shingle (a shorter document is one shingle). LSH bands are chosen so that a pair at exactly
``threshold`` becomes a candidate with probability >= 0.99 (for 128 permutations and 0.85: 16 bands x 8
rows); every candidate is then checked against its stored signature, so LSH false positives cost time,
never documents.

Memory: the state grows with the number of *kept* documents only, about ``num_perm * 8`` bytes of
signature (1 KB at 128) plus the library's band tables (``bands`` hash keys per document), i.e. roughly
2 KB per kept document: 1 GB for ~500k documents. Dropped documents cost nothing.

Two MinHash libraries can compute signatures and index bands: ``rensa`` (Rust; the default: in
bench/corpus.py it added 0.2 s to a 4 MB corpus where datasketch added 2.7 s, with recall 1.00 vs 0.91
against exact-Jaccard ground truth and half the peak RSS; see bench/RESULTS.md) and ``datasketch``
(Python/NumPy).
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from gitnetic.common.errors import ConfigError

__all__ = ["NearDuplicateIndex", "lsh_bands", "shingles"]

_WORD = re.compile(r"\w+")


def shingles(text: str, ngram: int) -> set[str]:
    """The set of word ``ngram``-shingles of ``text`` (BigCode style; MinHash ignores their order)."""
    words = _WORD.findall(text)
    if len(words) <= ngram:
        return {" ".join(words)}
    return set(map(" ".join, zip(*(words[i:] for i in range(ngram)), strict=False)))  # stops at the shortest


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


class NearDuplicateIndex:
    """``add_or_match(text) -> index of the kept near-duplicate, or None (then ``text`` is kept)``."""

    def __init__(
        self,
        threshold: float = 0.85,
        ngram: int = 5,
        num_perm: int = 128,
        library: Literal["rensa", "datasketch"] = "rensa",
        seed: int = 1,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"near_dedup_threshold must be in (0, 1], got {threshold}")
        if ngram < 1 or num_perm < 2:
            raise ConfigError(
                f"near_dedup_ngram must be >= 1 and near_dedup_num_perm >= 2, got {ngram}, {num_perm}"
            )
        self.threshold, self.ngram, self.num_perm, self.library = threshold, ngram, num_perm, library
        self.bands, self.rows = lsh_bands(num_perm, threshold)
        self._signatures = np.zeros((1024, num_perm), dtype=np.uint64)
        self.kept = 0
        if library == "rensa":
            import rensa

            self._rensa = rensa
            self._seed = seed
            self._lsh = rensa.RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=self.bands)
        elif library == "datasketch":
            import datasketch

            self._ds = datasketch
            first = datasketch.MinHash(num_perm=num_perm, seed=seed)
            self._permutations, self._scheme = first.permutations, first.scheme  # made once, not per document
            self._lsh = datasketch.MinHashLSH(
                threshold=threshold, num_perm=num_perm, params=(self.bands, self.rows)
            )
        else:
            raise ConfigError(f"unknown near_dedup_library {library!r}; use rensa or datasketch")

    def _minhash(self, text: str) -> tuple[object, np.ndarray]:
        items = shingles(text, self.ngram)
        if self.library == "rensa":
            mh = self._rensa.RMinHash(num_perm=self.num_perm, seed=self._seed)
            mh.update(items)
            return mh, np.asarray(mh.digest(), dtype=np.uint64)
        mh = self._ds.MinHash(num_perm=self.num_perm, permutations=self._permutations, scheme=self._scheme)
        mh.update_batch([s.encode("utf-8") for s in items])
        return mh, mh.hashvalues.astype(np.uint64)

    def find(self, text: str) -> tuple[int | None, tuple[object, np.ndarray]]:
        """``(key of the kept near-duplicate or None, signature)``; pass the signature to :meth:`add`
        to keep ``text`` (the caller may still decide not to, e.g. at a size cap)."""
        mh, signature = self._minhash(text)
        candidates = sorted(int(k) for k in self._lsh.query(mh))
        if candidates:
            sims = (self._signatures[candidates] == signature).mean(axis=1)
            best = int(np.argmax(sims))
            if sims[best] >= self.threshold:
                return candidates[best], (mh, signature)
        return None, (mh, signature)

    def add(self, signed: tuple[object, np.ndarray]) -> int:
        """Index a kept document; returns its key (0, 1, 2, ... in the order added)."""
        mh, signature = signed
        key = self.kept
        if key == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
        self._signatures[key] = signature
        self._lsh.insert(key, mh)
        self.kept += 1
        return key

    def add_or_match(self, text: str) -> int | None:
        """The key of a kept near-duplicate of ``text``, or None after keeping ``text``."""
        match, signed = self.find(text)
        if match is None:
            self.add(signed)
        return match

    def state_bytes(self) -> int:
        """Bytes held by the stored signatures (the band tables come on top; see the module doc)."""
        return int(self._signatures.nbytes)
