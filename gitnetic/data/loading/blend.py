"""Weighted blends of several token datasets at train time (Megatron's ``0.7 prefixA 0.3 prefixB``).

A blend is planned at index level like everything in :mod:`gitnetic.data.loading.batching`: one epoch draws
as many samples as the blended datasets hold together, source ``k`` contributing
``round(weight_k * total)`` of them (a smaller source is repeated, a larger one subsampled). Source
``k``'s ``j``-th sample is placed at "time" ``(j + 0.5) / n_k`` and all sources are merged by that
time, so every prefix of the epoch follows the weights to within one sample per source (the same
guarantee as Megatron's error-minimising ``BlendedDataset`` index, computed with one sort). Which of a
source's samples come is a seeded permutation per ``(seed, epoch, source, pass)``. The result is a
list of global indices into :class:`ConcatTokens`; packing and ``max_tokens`` batching then cut it
into batches and :class:`~gitnetic.data.loading.batching.DistributedBatchSampler` hands rank ``r`` every
``w``-th batch, so ranks are disjoint and resume is exact, as without a blend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gitnetic.common.errors import ConfigError

__all__ = ["ConcatTokens", "blend_samples", "parse_blend"]


def parse_blend(spec: str | Sequence[str]) -> list[tuple[float, str]]:
    """``"PREFIX"`` -> ``[(1.0, PREFIX)]``; ``"0.7 A 0.3 B"`` -> ``[(0.7, A), (0.3, B)]`` (normalised)."""
    parts = spec.split() if isinstance(spec, str) else [str(p) for p in spec]
    if not parts:
        raise ConfigError(
            "empty data prefix; give a prefix such as data/bin/train or '0.7 data/bin/a 0.3 data/bin/b'"
        )
    if len(parts) == 1:
        return [(1.0, parts[0])]
    if len(parts) % 2:
        raise ConfigError(
            f"weighted data prefix {' '.join(parts)!r} must be pairs 'WEIGHT PREFIX ...' "
            "(e.g. '0.7 data/bin/code 0.3 data/bin/commits'); a weight or a prefix is missing"
        )
    pairs: list[tuple[float, str]] = []
    for weight_text, prefix in zip(parts[::2], parts[1::2], strict=True):
        try:
            weight = float(weight_text)
        except ValueError:
            raise ConfigError(
                f"in weighted data prefix {' '.join(parts)!r}, {weight_text!r} is not a weight; "
                "write 'WEIGHT PREFIX' pairs such as '0.7 data/bin/code 0.3 data/bin/commits'"
            ) from None
        if not weight > 0 or weight != weight or weight == float("inf"):
            raise ConfigError(f"weight {weight_text} of {prefix} must be a positive number")
        pairs.append((weight, prefix))
    total = sum(w for w, _ in pairs)
    return [(w / total, p) for w, p in pairs]


def blend_samples(
    counts: Sequence[int],
    weights: Sequence[float],
    seed: int = 17,
    epoch: int = 0,
    shuffle: bool = True,
    total: int | None = None,
) -> np.ndarray:
    """One epoch's global sample indices (into the concatenation of sources of ``counts`` samples)."""
    counts = [int(c) for c in counts]
    if len(counts) != len(weights) or not counts:
        raise ValueError("counts and weights must be non-empty and of equal length")
    total = sum(counts) if total is None else int(total)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    wanted = np.floor(w * total).astype(np.int64)
    for k in np.argsort(-(w * total - wanted), kind="stable")[: total - int(wanted.sum())]:
        wanted[k] += 1  # largest remainders: the counts add up to total exactly
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    times, picks = [], []
    for k, (n, count) in enumerate(zip(wanted.tolist(), counts, strict=True)):
        if n == 0:
            continue
        if count == 0:
            raise ConfigError(
                f"blend source {k} holds no samples but has weight {w[k]:.3g}; drop it or re-run preprocess"
            )
        passes = -(-n // count)
        if shuffle:
            local = np.concatenate(
                [np.random.default_rng([seed, epoch, k, p]).permutation(count) for p in range(passes)]
            )[:n]
        else:
            local = np.resize(np.arange(count), n)
        times.append((np.arange(n) + 0.5) / n)
        picks.append(local + offsets[k])
    order = np.argsort(np.concatenate(times), kind="stable")
    return np.concatenate(picks)[order]


class ConcatTokens:
    """Several token datasets as one index space (``sizes``, ``len``, ``[i]``), in blend order."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        self.counts = [len(d) for d in self.datasets]
        self.offsets = np.cumsum([0, *self.counts])

    @property
    def sizes(self) -> np.ndarray:
        return np.concatenate([np.asarray(d.sizes) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> Any:
        k = int(np.searchsorted(self.offsets, index, side="right")) - 1
        if not 0 <= k < len(self.datasets):
            raise IndexError(index)
        return self.datasets[k][int(index - self.offsets[k])]
