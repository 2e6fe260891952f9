"""Train/valid/test assignment of documents by a hash of their path, with a floor for small corpora.

Why a hash: a document's split depends on ``seed`` and its relative path only, so adding or removing
other files never moves it between splits (no train/test leakage across corpus versions).

Why a floor: with ratios such as 3% / 5%, a 20-file repository usually draws nothing into valid or test,
and every later stage then fails on an empty split. :func:`assign_splits` therefore gives each split with
a non-zero ratio at least one document whenever there are enough documents for all of them (train always
needs one, so 3 with both ratios set), moving the document whose hash lies *nearest* the empty split's
hash interval, i.e. the one that would enter it first were its ratio raised. The fix-up only ever fires
for splits that came out empty, which with the default ratios means corpora of at most a few hundred
files; larger corpora are split by the hash alone, exactly as :func:`assign_split` says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gitnetic.common.errors import CorpusError

__all__ = ["SPLITS", "assign_split", "assign_splits", "hash_unit", "required_splits"]

SPLITS = ("train", "valid", "test")


def hash_unit(path: str, seed: int = 0) -> float:
    """A number in [0, 1) from ``seed`` and ``path`` only (blake2b, stable across runs and machines)."""
    digest = hashlib.blake2b(f"{seed}\0{path}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _intervals(valid_ratio: float, test_ratio: float) -> dict[str, tuple[float, float]]:
    return {
        "valid": (0.0, valid_ratio),
        "test": (valid_ratio, valid_ratio + test_ratio),
        "train": (valid_ratio + test_ratio, 1.0),
    }


def assign_split(path: str, valid_ratio: float, test_ratio: float, seed: int = 0) -> str:
    """The split of one file by its path hash alone (what :func:`assign_splits` starts from)."""
    u = hash_unit(path, seed)
    if u < valid_ratio:
        return "valid"
    if u < valid_ratio + test_ratio:
        return "test"
    return "train"


def required_splits(valid_ratio: float, test_ratio: float) -> tuple[str, ...]:
    """The splits that must not be empty: train, and valid/test when their ratio is non-zero."""
    return ("train",) + tuple(s for s, r in (("valid", valid_ratio), ("test", test_ratio)) if r > 0)


def assign_splits(paths: Sequence[str], valid_ratio: float, test_ratio: float, seed: int = 0) -> list[str]:
    """The split of every path: by hash, then each empty required split takes one document.

    Deterministic and order-independent (a function of the set of paths, the ratios and the seed).
    Raises :class:`CorpusError` naming the ratios and the count when there are fewer documents than
    required splits, since then some split with a non-zero ratio has to stay empty.
    """
    needed = required_splits(valid_ratio, test_ratio)
    if len(paths) < len(needed):
        raise CorpusError(_too_few_message(len(paths), valid_ratio, test_ratio, needed))
    units = [hash_unit(p, seed) for p in paths]
    splits = [assign_split(p, valid_ratio, test_ratio, seed) for p in paths]
    intervals = _intervals(valid_ratio, test_ratio)
    for target in ("valid", "test", "train"):
        if target not in needed or target in splits:
            continue
        counts = {s: splits.count(s) for s in SPLITS}
        # The donor: the largest split (ties: train, test, valid), which keeps at least one document.
        donor = max(("train", "test", "valid"), key=lambda s: counts[s])
        lo, hi = intervals[target]

        def distance(i: int, lo: float = lo, hi: float = hi) -> tuple[float, str]:
            u = units[i]
            return (lo - u if u < lo else u - hi, paths[i])

        chosen = min((i for i, s in enumerate(splits) if s == donor), key=distance)
        splits[chosen] = target
    return splits


def _too_few_message(count: int, valid_ratio: float, test_ratio: float, needed: Sequence[str]) -> str:
    ratios = ", ".join(f"{s}_ratio {r:g}" for s, r in (("valid", valid_ratio), ("test", test_ratio)) if r > 0)
    what = f"{count} document" + ("" if count == 1 else "s")
    return (
        f"only {what} collected, too few for the {len(needed)} splits {'/'.join(needed)} "
        f"({ratios or 'no valid/test'}) to get one each; add files (widen --include, narrow --exclude, "
        f"raise --max_files/--max_bytes) so there are at least {len(needed)}"
    )
