"""Invariants of index-level batching: coverage, budgets, determinism, DDP split and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gitnetic.common.errors import ConfigError
from gitnetic.data.loading.batching import (
    DistributedBatchSampler,
    PackedBlocks,
    collate_padded,
    max_tokens_batches,
    packed_batches,
)


def _docs(n: int = 300, seed: int = 0, max_len: int = 90) -> list[np.ndarray]:
    """Documents whose tokens are globally unique (token = stream position), some of them empty."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, max_len, size=n)
    sizes[[3, 4, 10]] = 0  # empty documents must not break block lookup
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return [np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i in range(n)]


class _SizedDocs(list):
    """A list of arrays exposing ``sizes`` like IndexedDataset (int32)."""

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(x) for x in self], dtype=np.int32)


@pytest.mark.parametrize("block_size", [1, 7, 64, 1000])
def test_packed_blocks_cover_every_token_exactly_once(block_size: int) -> None:
    docs = _SizedDocs(_docs())
    total = int(docs.sizes.sum())
    blocks = PackedBlocks(docs, block_size)
    assert len(blocks) == -(-total // block_size)
    stream = np.concatenate([blocks[i] for i in range(len(blocks))])
    # tokens are their stream positions, so the concatenated blocks must be exactly 0..total-1
    np.testing.assert_array_equal(stream, np.arange(total))
    assert all(len(blocks[i]) == block_size for i in range(len(blocks) - 1))
    assert blocks[-1].dtype == np.int64
    with pytest.raises(IndexError):
        blocks[len(blocks)]


def test_packed_batches_cover_blocks_once_and_reshuffle_per_epoch() -> None:
    e0 = packed_batches(103, 8, seed=5, epoch=0)
    e1 = packed_batches(103, 8, seed=5, epoch=1)
    for plan in (e0, e1):
        np.testing.assert_array_equal(np.sort(np.concatenate(plan)), np.arange(103))
        assert [len(b) for b in plan[:-1]] == [8] * 12 and len(plan[-1]) == 7
    assert [b.tolist() for b in e0] == [b.tolist() for b in packed_batches(103, 8, seed=5, epoch=0)]
    assert [b.tolist() for b in e0] != [b.tolist() for b in e1]


def _sizes(n: int = 5000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 700, size=n).astype(np.int32)


@pytest.mark.parametrize("batch_size", [None, 5])
def test_max_tokens_batches_respect_budget_and_cover_each_sequence_once(batch_size: int | None) -> None:
    sizes = _sizes()
    max_tokens, max_length = 2048, 512
    plan = max_tokens_batches(sizes, max_tokens, max_length, batch_size=batch_size, seed=3, epoch=0)
    truncated = np.minimum(sizes, max_length)
    for batch in plan:
        assert len(batch) * truncated[batch].max() <= max_tokens
        if batch_size is not None:
            assert len(batch) <= batch_size
    np.testing.assert_array_equal(np.sort(np.concatenate(plan)), np.arange(len(sizes)))
    # length bucketing keeps padding small: under 10% of the padded tokens on this uniform mix
    padded = sum(len(b) * truncated[b].max() for b in plan)
    assert truncated.sum() / padded > 0.9


def test_max_tokens_batches_match_sequential_greedy_reference() -> None:
    sizes = _sizes(3000, seed=7)
    max_tokens, max_length, cap = 3000, 400, 9
    plan = max_tokens_batches(sizes, max_tokens, max_length, batch_size=cap, shuffle=False)
    # reference: walk the length-sorted order, close a batch when the next sequence would not fit
    lengths = np.minimum(sizes, max_length)
    expected: list[list[int]] = [[]]
    for i in np.argsort(lengths, kind="stable").tolist():
        cur = expected[-1]
        if cur and (len(cur) + 1 > cap or (len(cur) + 1) * lengths[i] > max_tokens):
            expected.append([])
        expected[-1].append(i)
    assert [b.tolist() for b in plan] == expected


def test_max_tokens_batches_are_deterministic_and_reshuffled_per_epoch() -> None:
    sizes = _sizes()
    a = max_tokens_batches(sizes, 4096, 512, seed=11, epoch=2)
    b = max_tokens_batches(sizes, 4096, 512, seed=11, epoch=2)
    c = max_tokens_batches(sizes, 4096, 512, seed=11, epoch=3)
    d = max_tokens_batches(sizes, 4096, 512, seed=12, epoch=2)
    as_lists = [x.tolist() for x in a]
    assert as_lists == [x.tolist() for x in b]
    assert as_lists != [x.tolist() for x in c]
    assert as_lists != [x.tolist() for x in d]
    # epochs differ in order and in how equal-length sequences are grouped, not in coverage
    assert sorted(map(tuple, as_lists)) != sorted(tuple(x.tolist()) for x in c)
    np.testing.assert_array_equal(np.sort(np.concatenate(c)), np.arange(len(sizes)))


def test_max_tokens_skips_empty_sequences_and_rejects_budget_below_one_sequence() -> None:
    plan = max_tokens_batches(np.array([0, 3, 0, 5]), 10, 8, shuffle=False)
    assert sorted(np.concatenate(plan).tolist()) == [1, 3]
    with pytest.raises(ConfigError, match="raise --max_tokens or lower --max_length"):
        max_tokens_batches(np.array([5, 300, 7]), 256, 512)
    # truncation to max_length decides: the same data fits once max_length is lowered
    assert max_tokens_batches(np.array([5, 300, 7]), 256, 128)


def _plan_fn(n: int = 2000, max_tokens: int = 1024):
    sizes = _sizes(n, seed=4)
    return lambda epoch: max_tokens_batches(sizes, max_tokens, 256, seed=9, epoch=epoch)


def _as_tuples(batches) -> list[tuple[int, ...]]:
    return [tuple(b) for b in batches]


def test_ddp_ranks_partition_the_single_process_epoch() -> None:
    fn = _plan_fn()
    single = DistributedBatchSampler(fn)
    single.set_epoch(1)
    everything = _as_tuples(single)
    assert len(everything) == len(single)
    world = 2 if len(everything) % 2 == 0 else 3
    assert len(everything) % world == 0, "pick a plan size divisible by the world size"
    per_rank = []
    for rank in range(world):
        sampler = DistributedBatchSampler(fn, num_replicas=world, rank=rank)
        sampler.set_epoch(1)
        per_rank.append(_as_tuples(sampler))
        assert len(per_rank[-1]) == len(sampler) == len(everything) // world
    union = [b for batches in per_rank for b in batches]
    assert sorted(union) == sorted(everything)
    seqs = [i for b in union for i in b]
    assert len(seqs) == len(set(seqs))


def test_ddp_drops_uneven_tail_for_training_keeps_it_for_validation() -> None:
    plan = [np.array([i]) for i in range(7)]
    train = [list(DistributedBatchSampler(lambda e: plan, 3, r)) for r in range(3)]
    assert [len(t) for t in train] == [2, 2, 2]
    assert sorted(b[0] for t in train for b in t) == list(range(6))
    val = [list(DistributedBatchSampler(lambda e: plan, 3, r, drop_last=False)) for r in range(3)]
    assert sorted(b[0] for t in val for b in t) == list(range(7))
    tiny = [list(DistributedBatchSampler(lambda e: plan[:1], 2, r, drop_last=False)) for r in range(2)]
    assert tiny == [[[0]], [[0]]]  # no rank is left without a validation batch


def test_sampler_shuffle_and_set_epoch_change_order() -> None:
    plan = [np.array([i]) for i in range(50)]
    s = DistributedBatchSampler(lambda e: plan, shuffle=True, seed=1)
    first = list(s)
    assert sorted(first) == [[i] for i in range(50)] and first != [[i] for i in range(50)]
    s.set_epoch(1)
    assert list(s) != first
    s.set_epoch(0)
    assert list(s) == first


@pytest.mark.parametrize("k", [0, 1, 17])
def test_resume_continues_with_the_next_batch_exactly(k: int) -> None:
    fn = _plan_fn()
    full = DistributedBatchSampler(fn, num_replicas=2, rank=1)
    full.set_epoch(3)
    expected = _as_tuples(full)

    first = DistributedBatchSampler(fn, num_replicas=2, rank=1)
    first.set_epoch(3)
    it = iter(first)
    seen = [tuple(next(it)) for _ in range(k)]
    state = first.state_dict()
    assert state == {"epoch": 3, "consumed": k, "num_replicas": 2}

    resumed = DistributedBatchSampler(fn, num_replicas=2, rank=1)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # what Lightning does at epoch start; must not cancel the skip
    rest = _as_tuples(resumed)
    assert seen + rest == expected
    assert len(resumed) == len(expected)  # Lightning counts resumed batches against the full length
    # the skip is one-shot: the next pass over the same epoch is complete again
    assert _as_tuples(resumed) == expected
    resumed.set_epoch(4)
    assert len(_as_tuples(resumed)) == len(expected)


def test_resume_uses_the_count_given_by_the_training_side() -> None:
    # iteration ran ahead (DataLoader prefetch) but training consumed only 2 batches
    fn = _plan_fn()
    sampler = DistributedBatchSampler(fn)
    it = iter(sampler)
    got = [next(it) for _ in range(6)]
    resumed = DistributedBatchSampler(fn)
    resumed.load_state_dict(sampler.state_dict(consumed=2))
    assert next(iter(resumed)) == got[2]


def test_resume_from_end_of_epoch_starts_next_epoch() -> None:
    fn = _plan_fn()
    sampler = DistributedBatchSampler(fn)
    sampler.set_epoch(5)
    n = len(list(sampler))
    resumed = DistributedBatchSampler(fn)
    resumed.load_state_dict(sampler.state_dict())
    assert resumed.epoch == 6
    nxt = DistributedBatchSampler(fn, epoch=6)
    assert list(resumed) == list(nxt) and len(list(nxt)) == n


def test_resume_with_different_world_size_continues_near_global_position() -> None:
    fn = _plan_fn()
    global_plan = _as_tuples(DistributedBatchSampler(fn))
    resumed = DistributedBatchSampler(fn, num_replicas=2, rank=0)
    resumed.load_state_dict({"epoch": 0, "consumed": 10, "num_replicas": 1})
    assert tuple(next(iter(resumed))) == global_plan[10]


def test_collate_pads_with_pad_id_and_masks_padding() -> None:
    out = collate_padded([np.array([5, 6, 7]), np.array([8])], pad_id=1)
    assert out["input_ids"].dtype == torch.long and out["attention_mask"].dtype == torch.long
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
