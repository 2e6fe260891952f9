"""The NumPy shingle hashes equal a plain-Python reference of the same formula, shingle for shingle, and
different shingles of real code do not collide (so Jaccard on the hashes is Jaccard on the shingles)."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from gitnetic.data.corpus.neardup import shingle_hash
from gitnetic.data.corpus.neardup.index import iter_shingles, shingles
from gitnetic.data.corpus.neardup.shingle_hash import ShingleHasher

M64 = (1 << 64) - 1


def reference(hasher: ShingleHasher, shingle: str) -> int:
    """One shingle string's hash, the slow obvious way (module docstring of shingle_hash)."""
    words = [
        sum(b * pow(shingle_hash._P, i, 1 << 64) for i, b in enumerate(w.encode("utf-8"))) & M64
        for w in shingle.split()
    ]
    weights = [int(w) for w in hasher._weights]
    total = sum(w * c for w, c in zip(words, weights, strict=False))
    if len(words) < hasher.ngram:
        total += len(words) * weights[hasher.ngram]
    x = total & M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


TEXTS = [
    "",
    "   \n\t ",
    "x",
    "a b c d",
    "a b c d e",
    "a b c d e f",
    "def f(x):\n    return x**2  # squared\n",
    "naïve café — «quotes» 日本語、テスト。 x_1 = ü·v ⁊ end",  # non-ASCII word and non-word characters
    "İstanbul K\u212a ß ﬁ \u200b zero\u00a0width",
]


@pytest.mark.parametrize("ngram", [1, 3, 5])
def test_hashes_equal_the_reference_shingle_for_shingle(ngram: int) -> None:
    hasher = ShingleHasher(ngram)
    rng = random.Random(ngram)
    vocab = ["w", "alpha", "é", "x_y", "1234", "Δx", "__init__", "a" * 300]
    docs = [*TEXTS, " ".join(rng.choice(vocab) + rng.choice(" .,(—\n") for _ in range(3000))]
    flat, offsets = hasher.hashes([d.encode("utf-8") for d in docs])
    assert offsets[0] == 0 and offsets[-1] == flat.size and len(offsets) == len(docs) + 1
    for i, doc in enumerate(docs):
        got = flat[offsets[i] : offsets[i + 1]].tolist()
        assert got == [reference(hasher, s) for s in iter_shingles(doc, ngram)], doc[:40]


def test_passes_split_at_blanks_and_long_words_give_the_same_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch cut into many NumPy passes (a 64-byte pass, a word longer than a pass) hashes as one."""
    hasher = ShingleHasher()
    docs = [b"lorem ipsum dolor " * 40 + b"z" * 200 + b" tail end here now", b"short one", b"x" * 150]
    whole = hasher.hashes(docs)
    monkeypatch.setattr(shingle_hash, "_CHUNK", 64)
    cut = ShingleHasher().hashes(docs)
    assert np.array_equal(whole[0], cut[0]) and np.array_equal(whole[1], cut[1])


def test_no_two_different_shingles_of_real_code_collide() -> None:
    """~300k distinct shingles of the standard library: as many distinct hashes (a collision would make
    exact verification inexact)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[:120]
    texts = [p.read_text("utf-8", errors="replace") for p in files]
    hasher = ShingleHasher()
    flat, _ = hasher.hashes([t.encode("utf-8") for t in texts])
    distinct = set().union(*(shingles(t, 5) for t in texts))
    assert len(distinct) > 100_000
    assert np.unique(flat).size == len(distinct)
