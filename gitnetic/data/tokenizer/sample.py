"""A reproducible sample of a JSONL split, spread over the whole file, to bound work on big corpora.

Reading the first N bytes of a split would be a biased sample: the corpus lists files by path, so a
prefix holds the first packages alphabetically. Instead each line is kept when a hash of the seed and
its line number falls below the sampling rate ``max_bytes / file size``: the sample comes from the
whole file, in file order, and the same file, cap and seed always give the same documents (so a
byte-identical tokenizer). Hashing line numbers, not texts, lets the reader skip the JSON parsing of
every line it does not keep.

The file's size bounds the text it holds (JSON quoting and escapes only add bytes), so a split whose
file is no bigger than the cap is read whole, exactly as without a cap, with no extra pass to measure
it; a bigger one gives a sample of about ``max_bytes`` of text (a little less: JSON's share of the file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gitnetic.data.jsonl import iter_jsonl_texts

_HASH_BYTES = 8
_HASH_RANGE = 1 << (8 * _HASH_BYTES)


def sampling_rate(split_bytes: int, max_bytes: int) -> float:
    """The share of lines to keep: 1.0 when there is no cap (``max_bytes`` <= 0) or the file fits in it."""
    if max_bytes <= 0 or split_bytes <= max_bytes:
        return 1.0
    return max_bytes / split_bytes


def line_keeper(rate: float, seed: int) -> Callable[[int], bool] | None:
    """Whether to keep line ``lineno``: a BLAKE2b hash of ``seed`` and ``lineno`` below ``rate`` of its
    range (independent of Python's per-process hash seed); ``None`` (keep all) when ``rate`` >= 1."""
    if rate >= 1.0:
        return None
    threshold = int(rate * _HASH_RANGE)
    prefix = f"{seed}:".encode()

    def keep(lineno: int) -> bool:
        digest = hashlib.blake2b(prefix + str(lineno).encode(), digest_size=_HASH_BYTES).digest()
        return int.from_bytes(digest, "big") < threshold

    return keep


@dataclass(frozen=True)
class SplitSample:
    """The documents of a JSONL split to train on: all of them, or a seeded sample when it is large."""

    path: Path
    split_bytes: int  # size of the JSONL file, an upper bound of its text bytes
    rate: float  # share of lines kept, 1.0 = all
    seed: int

    @classmethod
    def of(cls, path: str | Path, max_bytes: int, seed: int) -> SplitSample:
        """The sample of ``path`` for a cap of ``max_bytes`` (0 = all) drawn with ``seed``."""
        p = Path(path)
        size = p.stat().st_size
        return cls(p, size, sampling_rate(size, max_bytes), seed)

    @property
    def sampled(self) -> bool:
        """Whether only part of the split is read."""
        return self.rate < 1.0

    def texts(self) -> Iterator[str]:
        """The kept documents' texts, in file order (the caller stops at the byte cap)."""
        return iter_jsonl_texts(self.path, line_keeper(self.rate, self.seed))
