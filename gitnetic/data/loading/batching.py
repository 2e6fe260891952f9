"""Index-level batching for training: packed blocks, fairseq-style ``max_tokens`` batches, and a
distributed, exactly resumable batch sampler.

Batches are lists of dataset indices decided up front for a whole epoch from the sequence lengths
alone (``IndexedDataset.sizes``), never by reading tokens. That keeps an epoch's plan cheap
(numpy over millions of lengths), identical on every DDP rank (same seed + epoch → same list, each
rank takes its slice), and replayable, which is what makes exact mid-epoch resume possible: the
position in an epoch is just "how many batches of this epoch's list were consumed".

Resume design (why it looks like this)
--------------------------------------
:class:`DistributedBatchSampler` keeps ``(epoch, batches consumed in the epoch)``. It cannot count
consumption itself: with ``num_workers > 0`` a DataLoader draws indices from the batch sampler
ahead of the training loop (prefetch), so "batches yielded" overstates "batches trained on". The
count therefore comes from the training side: ``state_dict(consumed=...)`` takes the trainer's
count, and ``TransformerDataModule`` passes Lightning's
``trainer.fit_loop.epoch_loop.batch_progress.current.processed`` (batches whose training step
finished in the current epoch; correct both for checkpoints written in ``on_train_batch_end`` and
after validation). Lightning ≥ 2.3 saves ``state_dict()`` of every *stateful* train DataLoader in
the checkpoint (``loops.fit_loop.state_dict.combined_loader``) and calls ``load_state_dict()`` on
the freshly built DataLoader before creating its iterator when resuming; the datamodule's train
DataLoader implements that interface and forwards to this sampler. Without a trainer (plain
iteration, ``num_workers=0``) the yielded count is exact and is used by default.

``load_state_dict`` arms a one-shot skip for the saved epoch; a later ``set_epoch`` to another epoch
cancels it. A state saved at the very end of an epoch resumes at the start of the next one. If the
number of processes changed between save and resume, the skip is converted through the global
position (at most ``num_replicas - 1`` batches are then seen twice), and a warning says so.

Lightning calls ``set_epoch`` on ``dataloader.batch_sampler.sampler``; the sampler exposes itself
there (``sampler`` property) so no ``reload_dataloaders_every_n_epochs`` is needed. The trainer must
use ``use_distributed_sampler=False`` so Lightning does not replace it with a ``DistributedSampler``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from gitnetic.common.errors import ConfigError

__all__ = [
    "PackedBlocks",
    "max_tokens_batches",
    "packed_batches",
    "DistributedBatchSampler",
]

log = logging.getLogger(__name__)

Batches = list[np.ndarray]


def _sizes_of(dataset: Any) -> np.ndarray:
    """Sequence lengths of an ``IndexedDataset`` (``.sizes``) or of a plain list of arrays."""
    sizes = getattr(dataset, "sizes", None)
    if sizes is None:
        sizes = [len(x) for x in dataset]
    return np.asarray(sizes, dtype=np.int64)


def _rng(seed: int, epoch: int) -> np.random.Generator:
    # one independent, reproducible stream per (seed, epoch); identical on every rank
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF])


class PackedBlocks(Dataset):
    """Contiguous ``block_size``-token blocks over the concatenated token stream (nanoGPT-style).

    Memory is O(#sequences) for the cumulative offsets; a block is located with ``searchsorted``
    and assembled from the (memory-mapped) sequences it spans, so tokens are never materialised up
    front. Every token belongs to exactly one block; only the last block may be shorter.
    """

    def __init__(self, dataset: Any, block_size: int) -> None:
        if block_size < 1:
            raise ConfigError(f"block size must be at least 1, got {block_size}; raise max_length")
        self.dataset = dataset
        self.block_size = int(block_size)
        sizes = _sizes_of(dataset)
        # offsets[i] = first stream position of sequence i; offsets[-1] = total tokens
        self._offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self._offsets[1:])
        self.num_tokens = int(self._offsets[-1])

    def __len__(self) -> int:
        return -(-self.num_tokens // self.block_size)

    def __getitem__(self, index: int) -> np.ndarray:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"block {index} out of range for {n} blocks")
        start = index * self.block_size
        end = min(start + self.block_size, self.num_tokens)
        # side="right" skips empty sequences sharing the same offset
        seq = int(np.searchsorted(self._offsets, start, side="right")) - 1
        pieces = []
        pos = start
        while pos < end:
            seq_start, seq_end = self._offsets[seq], self._offsets[seq + 1]
            if seq_end > pos:
                lo = pos - seq_start
                hi = min(end, seq_end) - seq_start
                pieces.append(np.asarray(self.dataset[seq][lo:hi]))
                pos = seq_start + hi
            seq += 1
        return np.concatenate(pieces).astype(np.int64, copy=False)


def packed_batches(
    num_blocks: int, batch_size: int, seed: int = 17, epoch: int = 0, shuffle: bool = True
) -> Batches:
    """Batches of ``batch_size`` block indices (the last one may be smaller), shuffled per epoch."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    order = _rng(seed, epoch).permutation(num_blocks) if shuffle else np.arange(num_blocks)
    return np.array_split(order, np.arange(batch_size, num_blocks, batch_size))


def max_tokens_batches(
    sizes: Sequence[int] | np.ndarray,
    max_tokens: int,
    max_length: int,
    batch_size: int | None = None,
    seed: int = 17,
    epoch: int = 0,
    shuffle: bool = True,
) -> Batches:
    """Fairseq-style batches: ``len(batch) * longest_in_batch <= max_tokens`` after truncation.

    Sequences are sorted by (truncated) length, ties broken by a seeded shuffle, then cut greedily
    into batches so padding stays small; the batch order is shuffled per ``(seed, epoch)``. The
    greedy cut iterates over distinct lengths (≤ ``max_length`` of them), not over sequences, so
    it stays fast for millions of sequences. Empty sequences are skipped. Without ``shuffle`` the
    result is length-sorted and identical every epoch (what validation wants).
    """
    if max_tokens < 1 or max_length < 1:
        raise ConfigError(f"max_tokens and max_length must be positive, got {max_tokens} and {max_length}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    lengths = np.minimum(np.asarray(sizes, dtype=np.int64), max_length)
    if len(lengths) and lengths.max() > max_tokens:
        raise ConfigError(
            f"a sequence of {int(lengths.max())} tokens (after truncation to max_length={max_length}) does not fit "
            f"in max_tokens={max_tokens}; raise --max_tokens or lower --max_length"
        )
    nonempty = np.flatnonzero(lengths > 0)
    if shuffle:
        tie = _rng(seed, epoch).permutation(len(nonempty))
        order = nonempty[np.lexsort((tie, lengths[nonempty]))]
    else:
        order = nonempty[np.argsort(lengths[nonempty], kind="stable")]
    cap = batch_size if batch_size is not None else max_tokens
    cuts = _greedy_cuts(lengths[order], cap, max_tokens)
    batches = np.split(order, cuts) if len(order) else []
    if shuffle:
        perm = _rng(seed + 1, epoch).permutation(len(batches))
        batches = [batches[i] for i in perm]
    return batches


def _greedy_cuts(sorted_lengths: np.ndarray, cap: int, max_tokens: int) -> np.ndarray:
    """Positions at which to cut length-sorted sequences into batches of at most ``cap`` members and
    ``members * longest <= max_tokens``, filling each batch before the next (one step per distinct length)."""
    bounds: list[np.ndarray] = []
    open_count = 0  # members of the batch still being filled
    pos = 0  # sorted position where the current length group starts
    values, counts = np.unique(sorted_lengths, return_counts=True)
    for length, count in zip(values.tolist(), counts.tolist(), strict=True):
        fits = min(cap, max_tokens // length)  # batch size limit when `length` is the longest
        take = 0
        if open_count:
            if open_count >= fits:
                bounds.append(np.array([pos]))
                open_count = 0
            else:
                take = min(count, fits - open_count)
                open_count += take
                if open_count == fits:
                    bounds.append(np.array([pos + take]))
                    open_count = 0
        rest = count - take
        start = pos + take
        full, open_count_new = divmod(rest, fits)
        if full:
            bounds.append(start + fits * np.arange(1, full + 1))
        if open_count_new:
            open_count = open_count_new
        pos += count
    cuts = np.concatenate(bounds) if bounds else np.empty(0, dtype=np.int64)
    return cuts[(cuts > 0) & (cuts < len(sorted_lengths))]


class DistributedBatchSampler(Sampler[list[int]]):
    """Yields this rank's batches of an epoch plan, resumable mid-epoch (see module docstring).

    ``batches_fn(epoch)`` returns the epoch's global batch list, identical on every rank. Rank ``r``
    of ``num_replicas`` takes batches ``r, r + w, ...``. With ``drop_last`` (training) the uneven
    tail is dropped so every rank runs the same number of steps (DDP needs that); without it
    (validation) ranks may differ by one batch, and if there are fewer batches than ranks, the
    spare ranks repeat the first batches so no rank is empty. ``shuffle``/``seed`` additionally
    permute the batch order per epoch (``batches_fn`` usually shuffles already).
    """

    def __init__(
        self,
        batches_fn: Callable[[int], Sequence[np.ndarray | Sequence[int]]],
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 17,
        shuffle: bool = False,
        drop_last: bool = True,
        epoch: int = 0,
    ) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"invalid rank {rank} for num_replicas={num_replicas}")
        self.batches_fn = batches_fn
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.epoch = epoch
        self._resume: tuple[int, int] | None = None  # (epoch, batches to skip)
        self._yielded = 0  # batches of self.epoch handed out (skipped ones included)
        self._cache: tuple[int, list[np.ndarray]] | None = None

    @property
    def sampler(self) -> DistributedBatchSampler:
        # Lightning calls set_epoch on ``dataloader.batch_sampler.sampler``: point it at us.
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._yielded = 0
        self.epoch = int(epoch)

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        batches = list(self.batches_fn(epoch))
        if self.shuffle:
            perm = _rng(self.seed + 2, epoch).permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def rank_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's full batch list for ``epoch`` (cached: the plan may cost a second on big data)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        batches = self.global_batches(epoch)
        n, w = len(batches), self.num_replicas
        if self.drop_last:
            per_rank = n // w
            dropped = n - per_rank * w
            if dropped and self.rank == 0:
                log.info(
                    "epoch %d: dropping the last %d of %d batches so %d ranks get %d each",
                    epoch,
                    dropped,
                    n,
                    w,
                    per_rank,
                )
            mine = batches[self.rank : per_rank * w : w]
        elif 0 < n < w:
            mine = [batches[self.rank % n]]
        else:
            mine = batches[self.rank :: w]
        self._cache = (epoch, mine)
        return mine

    def __len__(self) -> int:
        # the full epoch even when resuming: Lightning counts resumed batches against this length
        return len(self.rank_batches(self.epoch))

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch
        batches = self.rank_batches(epoch)
        skip = 0
        if self._resume is not None and self._resume[0] == epoch:
            skip = self._resume[1]
        self._resume = None
        self._yielded = skip
        for batch in batches[skip:]:
            self._yielded += 1
            yield np.asarray(batch).tolist()

    def state_dict(self, consumed: int | None = None) -> dict[str, int]:
        """Resume position; pass ``consumed`` (trained batches this epoch) when iteration runs ahead."""
        return {
            "epoch": self.epoch,
            "consumed": self._yielded if consumed is None else int(consumed),
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        epoch, consumed = int(state["epoch"]), int(state["consumed"])
        saved_replicas = int(state.get("num_replicas", self.num_replicas))
        if saved_replicas != self.num_replicas:
            converted = consumed * saved_replicas // self.num_replicas
            log.warning(
                "resuming with %d processes from a state saved with %d: continuing at global batch %d of epoch %d "
                "(up to %d batches may be seen twice)",
                self.num_replicas,
                saved_replicas,
                converted * self.num_replicas,
                epoch,
                self.num_replicas - 1,
            )
            consumed = converted
        self.epoch = epoch
        if consumed >= len(self.rank_batches(epoch)):
            self.epoch, consumed = epoch + 1, 0  # saved at the end of an epoch: start the next one
        self._resume = (self.epoch, consumed) if consumed else None
        self._yielded = consumed


def collate_padded(batch: Sequence[np.ndarray | torch.Tensor], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad sequences to the longest in the batch → ``input_ids``/``attention_mask`` LongTensors."""
    lengths = [len(x) for x in batch]
    longest = max(lengths) if lengths else 0
    input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, (seq, n) in enumerate(zip(batch, lengths, strict=True)):
        input_ids[row, :n] = torch.as_tensor(np.asarray(seq, dtype=np.int64))
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
