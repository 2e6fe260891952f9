"""Weighted blends of shard prefixes at train time: proportions, determinism, DDP, resume, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.loading.batching import DistributedBatchSampler
from gitnetic.data.loading.blend import blend_samples, parse_blend
from gitnetic.modules.transformer_datamodule import TransformerDataModule
from tests.helpers import write_shard

Params = TransformerDataModule.Params


def write_source(prefix: Path, n_docs: int, marker: int, length: int = 24) -> None:
    """Every token of source ``marker``'s documents is ``marker``: a batch row tells its source."""
    rng = np.random.default_rng(marker)
    write_shard(
        prefix, (np.full(int(rng.integers(4, length)), marker, dtype=np.uint16) for _ in range(n_docs))
    )


@pytest.fixture
def two_sources(tmp_path: Path) -> tuple[str, str]:
    write_source(tmp_path / "big", 400, marker=100)
    write_source(tmp_path / "small", 40, marker=200)
    return str(tmp_path / "big"), str(tmp_path / "small")


def test_parse_blend_forms_and_errors() -> None:
    assert parse_blend("data/bin/train") == [(1.0, "data/bin/train")]
    assert parse_blend("0.7 a 0.3 b") == [(0.7, "a"), (0.3, "b")]
    assert parse_blend("3 a 1 b") == [(0.75, "a"), (0.25, "b")]
    for bad, message in [
        ("0.7 a 0.3", "pairs"),
        ("a 0.3 b 0.7", "not a weight"),
        ("0 a 1 b", "positive"),
        ("", "empty"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_blend(bad)


def test_blend_samples_follow_the_weights_and_are_deterministic() -> None:
    counts = [1000, 50, 300]
    samples = blend_samples(counts, [0.5, 0.3, 0.2], seed=4, epoch=0)
    assert len(samples) == sum(counts)
    source = np.searchsorted(np.cumsum(counts), samples, side="right")
    # every prefix of the epoch (so any number of steps) is within one sample per source of the weights
    for n in (10, 100, 777, len(samples)):
        got = np.bincount(source[:n], minlength=3)
        assert np.all(np.abs(got - n * np.array([0.5, 0.3, 0.2])) <= 1.5), (n, got)
    assert np.array_equal(samples, blend_samples(counts, [0.5, 0.3, 0.2], seed=4, epoch=0))
    assert not np.array_equal(samples, blend_samples(counts, [0.5, 0.3, 0.2], seed=4, epoch=1))
    # the small source is repeated: 0.3 * 1350 = 405 draws of 50 samples, each 8 or 9 times
    small = np.bincount(samples[source == 1] - 1000, minlength=50)
    assert small.min() == 8 and small.max() == 9


@pytest.mark.parametrize("packing", [True, False])
def test_datamodule_blend_proportions_packing_and_max_tokens(tokenizer, two_sources, packing: bool) -> None:
    big, small = two_sources
    params = Params(
        train_data_prefix=f"0.5 {big} 0.5 {small}", max_length=16, batch_size=8, packing=packing, seed=3,
        max_tokens=None if packing else 128,
    )  # fmt: skip
    dm = TransformerDataModule(tokenizer=tokenizer, params=params)
    dm.setup("fit")
    counts = {100: 0, 200: 0}
    for batch in dm.train_dataloader():
        ids, mask = batch["input_ids"], batch["attention_mask"]
        assert ids.numel() <= 128 or packing
        for row, m in zip(ids, mask, strict=True):
            values = set(row[m.bool()].tolist())
            if not packing:
                assert len(values) == 1  # a whole document of one source
            for v in values:
                counts[v] += 1
    share = counts[200] / (counts[100] + counts[200])
    assert abs(share - 0.5) < 0.05, counts  # rows (or packed blocks, which may straddle documents) by weight


def test_blend_ranks_are_disjoint_and_resume_is_exact(tokenizer, two_sources) -> None:
    big, small = two_sources
    params = Params(train_data_prefix=f"0.7 {big} 0.3 {small}", max_length=16, max_tokens=96, seed=5)
    dm = TransformerDataModule(tokenizer=tokenizer, params=params)
    dm.setup("fit")
    _, batches_fn = dm._plan(dm.train_dataset, shuffle=True)
    world = 2
    samplers = [DistributedBatchSampler(batches_fn, num_replicas=world, rank=r, seed=5) for r in range(world)]
    per_rank = [list(s) for s in samplers]
    assert len(per_rank[0]) == len(per_rank[1]) > 4
    global_batches = [b.tolist() for b in samplers[0].global_batches(0)]
    # each global batch position goes to exactly one rank
    assert [b for pair in zip(*per_rank, strict=True) for b in pair] == global_batches[: 2 * len(per_rank[0])]
    # resume mid-epoch with the blend: the rest of the epoch, exactly
    first = DistributedBatchSampler(batches_fn, num_replicas=world, rank=1, seed=5)
    it = iter(first)
    head = [next(it) for _ in range(3)]
    state = first.state_dict()
    resumed = DistributedBatchSampler(batches_fn, num_replicas=world, rank=1, seed=5)
    resumed.load_state_dict(state)
    assert head + list(resumed) == per_rank[1]


def test_blend_with_a_missing_prefix_says_which(tokenizer, two_sources, tmp_path: Path) -> None:
    big, _ = two_sources
    dm = TransformerDataModule(
        tokenizer=tokenizer,
        params=Params(train_data_prefix=f"0.5 {big} 0.5 {tmp_path}/nope", max_length=16, max_tokens=64),
    )
    with pytest.raises(DataError, match="nope"):
        dm.setup("fit")
