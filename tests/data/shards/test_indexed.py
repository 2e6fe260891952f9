"""MMIDIDX shards: round trips, shard sets, Megatron-core interop both ways, corruption, atomic writes."""

from __future__ import annotations

import glob
import os
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from gitnetic.common.errors import ShardError
from gitnetic.data.shards import indexed
from gitnetic.data.shards.indexed import (
    HEADER_SIZE,
    IndexedDataset,
    IndexedDatasetBuilder,
    best_dtype,
    shard_prefix,
)
from tests.helpers import write_shard


def _docs(seed: int = 0, n: int = 40, high: int = 60_000) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # include an empty document: it is a legal zero-length sequence
    return [rng.integers(0, high, size=int(rng.integers(0, 50))) for _ in range(n - 1)] + [np.zeros(0, int)]


def _megatron():
    """megatron-core's own indexed_dataset module (a dev dependency: the interop oracle)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("megatron.core.datasets.indexed_dataset")


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_round_trip(tmp_path: Path, dtype) -> None:
    high = 60_000 if dtype == np.uint16 else 2_000_000
    docs = _docs(high=high)
    prefix = write_shard(tmp_path / "train", docs, dtype)
    ds = IndexedDataset(prefix)
    assert len(ds) == len(docs) and ds.num_documents == len(docs)
    assert ds.dtype == np.dtype(dtype)
    assert ds.sizes.dtype == np.int32 and ds.sizes.tolist() == [len(d) for d in docs]
    assert ds.num_tokens == sum(len(d) for d in docs)
    assert ds.document_indices.tolist() == list(range(len(docs) + 1))
    for i, d in enumerate(docs):
        assert np.array_equal(ds[i], d)
    assert np.array_equal(ds[-2], docs[-2])
    view = ds[3]
    assert (
        isinstance(view, np.ndarray) and not view.flags.owndata and not view.flags.writeable
    )  # zero-copy map
    assert os.path.getsize(prefix + ".bin") == ds.num_tokens * np.dtype(dtype).itemsize
    with pytest.raises(IndexError):
        ds[len(docs)]
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers: re-opened by prefix, not copied
    assert len(pickle.dumps(ds)) < 500 and np.array_equal(clone[5], docs[5])


def test_add_documents_batch_and_range_check(tmp_path: Path) -> None:
    with IndexedDatasetBuilder(tmp_path / "b", np.uint16) as builder:
        builder.add_documents(np.array([1, 2, 3, 4, 5], dtype=np.uint32), [2, 0, 3])
        builder.add_document([7])
        with pytest.raises(ValueError, match="do not fit uint16"):
            builder.add_document([70_000])
    ds = IndexedDataset(tmp_path / "b")
    assert [x.tolist() for x in ds] == [[1, 2], [], [3, 4, 5], [7]]


def test_best_dtype() -> None:
    assert best_dtype(512) == np.uint16 and best_dtype(65_535) == np.uint16
    assert best_dtype(65_536) == np.int32 and best_dtype(250_000) == np.int32


def test_shard_set_is_one_concatenated_dataset(tmp_path: Path) -> None:
    docs = _docs(n=30)
    parts = [docs[:10], docs[10:11], docs[11:]]
    for i, part in enumerate(parts):
        write_shard(shard_prefix(tmp_path / "train", i, 3), part)
    ds = IndexedDataset(tmp_path / "train")
    assert len(ds) == 30 and ds.sizes.tolist() == [len(d) for d in docs]
    assert ds.document_indices.tolist() == list(range(31))
    assert all(np.array_equal(ds[i], d) for i, d in enumerate(docs))
    assert ds.num_tokens == sum(map(len, docs))
    assert ds.shard_prefixes[1].endswith("train-00001-of-00003")


def test_incomplete_or_ambiguous_shard_sets(tmp_path: Path) -> None:
    write_shard(shard_prefix(tmp_path / "a", 0, 3), _docs(n=3))
    write_shard(shard_prefix(tmp_path / "a", 2, 3), _docs(n=3))
    with pytest.raises(ShardError, match=r"incomplete.*a-00001-of-00003\.idx"):
        IndexedDataset(tmp_path / "a")
    write_shard(tmp_path / "b", _docs(n=3))
    write_shard(shard_prefix(tmp_path / "b", 0, 1), _docs(n=3))
    with pytest.raises(ShardError, match="both"):
        IndexedDataset(tmp_path / "b")
    write_shard(shard_prefix(tmp_path / "c", 0, 2), _docs(n=2), np.uint16)
    write_shard(shard_prefix(tmp_path / "c", 1, 2), _docs(n=2), np.int32)
    with pytest.raises(ShardError, match="mix dtypes"):
        IndexedDataset(tmp_path / "c")


def test_megatron_reads_gitnetic_shards(tmp_path: Path) -> None:
    mc = _megatron()
    for dtype in (np.uint16, np.int32):
        docs = _docs(seed=3, high=60_000)
        prefix = write_shard(tmp_path / f"g{np.dtype(dtype).name}", docs, dtype)
        theirs = mc.IndexedDataset(prefix, multimodal=False, mmap=True)
        assert len(theirs) == len(docs)
        assert theirs.sequence_lengths.tolist() == [len(d) for d in docs]
        assert theirs.document_indices.tolist() == list(range(len(docs) + 1))
        assert theirs.index.dtype == dtype
        for i, d in enumerate(docs):
            assert np.array_equal(theirs[i], d)
        assert np.array_equal(theirs.get(4, offset=1, length=2), docs[4][1:3])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # megatron-core's own numpy-2 warning
def test_gitnetic_reads_megatron_shards(tmp_path: Path) -> None:
    import torch

    mc = _megatron()
    docs = _docs(seed=5, high=30_000)
    prefix = str(tmp_path / "m")
    builder = mc.IndexedDatasetBuilder(mc.get_bin_path(prefix), dtype=np.uint16)
    for d in docs[:-3]:
        builder.add_item(torch.from_numpy(d.astype(np.int64)))
        builder.end_document()
    # Megatron also allows documents of several sequences: the document index says which
    builder.add_document(
        torch.from_numpy(np.concatenate(docs[-3:]).astype(np.int64)), [len(d) for d in docs[-3:]]
    )
    builder.finalize(mc.get_idx_path(prefix))
    ds = IndexedDataset(prefix)
    assert ds.dtype == np.uint16 and len(ds) == len(docs)
    assert all(np.array_equal(ds[i], d) for i, d in enumerate(docs))
    assert ds.document_indices.tolist() == [*range(len(docs) - 2), len(docs)]
    assert ds.num_documents == len(docs) - 2


def _corrupt(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: _corrupt(p + ".idx", 0, b"NOTMMIDX"), r"bad magic"),
        (lambda p: _corrupt(p + ".idx", 9, struct.pack("<Q", 2)), r"version 2"),
        (lambda p: _corrupt(p + ".idx", 17, bytes([9])), r"unknown dtype code 9"),
        (lambda p: os.truncate(p + ".idx", 20), r"truncated"),
        (lambda p: os.truncate(p + ".idx", os.path.getsize(p + ".idx") - 8), r"truncated"),
        (lambda p: os.truncate(p + ".bin", os.path.getsize(p + ".bin") - 2), r"\.bin is \d+ bytes but"),
        (lambda p: _corrupt(p + ".idx", HEADER_SIZE + 4 * 10 + 8 * 3, struct.pack("<q", 12345)), r"pointers"),
        (lambda p: os.unlink(p + ".bin"), r"data file .*\.bin is missing"),
        (lambda p: os.unlink(p + ".idx"), r"index file .*\.idx is missing"),
    ],
    ids=["magic", "version", "dtype", "header", "index", "bin-size", "pointer", "no-bin", "no-idx"],
)
def test_corrupt_pairs_raise_one_line_shard_error(tmp_path: Path, damage, message) -> None:
    prefix = write_shard(tmp_path / "train", _docs(n=10))
    damage(prefix)
    with pytest.raises(ShardError, match=message) as info:
        IndexedDataset(prefix)
    text = str(info.value)
    assert "\n" not in text and "preprocess" in text and "train." in text


def test_missing_prefix(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match=r"no shards at prefix .*nothing.*preprocess"):
        IndexedDataset(tmp_path / "nothing")


def test_failed_write_leaves_no_files(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with IndexedDatasetBuilder(tmp_path / "train", np.uint16) as builder:
            builder.add_document([1, 2, 3])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_killed_rewrite_never_pairs_old_index_with_new_data(tmp_path: Path, monkeypatch) -> None:
    """A crash between renaming .bin and .idx must not leave the old .idx describing the new .bin."""
    prefix = write_shard(tmp_path / "train", [np.array([1, 2]), np.array([3, 4])])
    real_replace = os.replace
    calls = []

    def crash_on_index(src, dst):
        calls.append(dst)
        if str(dst).endswith(".idx"):
            raise KeyboardInterrupt  # the process dies right here
        return real_replace(src, dst)

    monkeypatch.setattr(indexed.os, "replace", crash_on_index)
    builder = IndexedDatasetBuilder(prefix, np.uint16)
    builder.add_document([5, 6])  # same byte size as before: a size check alone would not notice
    builder.add_document([7, 8])
    with pytest.raises(KeyboardInterrupt):
        builder.finalize()
    monkeypatch.setattr(indexed.os, "replace", real_replace)
    assert any(str(c).endswith(".bin") for c in calls)
    with pytest.raises(ShardError, match="index file .* is missing"):
        IndexedDataset(prefix)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_one_shard_name_for_writer_reader_and_snakemake(tmp_path) -> None:
    """The Snakefile's wildcard pattern and the glob come from the same helper as the real names."""
    import re

    from gitnetic.data.shards.indexed import shard_glob

    assert shard_prefix("d/train", 1, 3) == "d/train-00001-of-00003"
    pattern = shard_prefix("d/train", "{shard}", 3)
    assert pattern == "d/train-{shard}-of-00003"
    assert re.fullmatch(pattern.replace("{shard}", r"\d+"), shard_prefix("d/train", 2, 3))
    write_shard(shard_prefix(tmp_path / "s", 0, 1), _docs(n=2))
    found = sorted(Path(p).name for p in glob.glob(shard_glob(tmp_path / "s") + ".*"))
    assert found == ["s-00000-of-00001.bin", "s-00000-of-00001.idx"]


def test_max_token_id_reads_a_small_set_whole_and_a_large_one_in_a_bounded_sample(tmp_path: Path) -> None:
    """What ``train`` checks the model's vocabulary against (issue 29 item 3): exact when the set is within
    the budget; beyond it, evenly spread chunks of at most ``budget`` tokens in all, each shard's first
    and last among them."""
    docs = [np.full(100, 7, dtype=np.uint16) for _ in range(50)]
    docs[0][3], docs[-1][-1] = 900, 901
    write_shard(tmp_path / "a", docs)
    ds = IndexedDataset(tmp_path / "a")
    assert ds.max_token_id() == (901, True)
    peak, whole = ds.max_token_id(budget=1000, chunk=100)
    assert (peak, whole) == (901, False)  # the first and the last chunk are always read
    docs[25][50] = 950  # in the middle: a 10-chunk sample of 50 chunks reads chunks 0, 5, ..., 45, 49
    write_shard(tmp_path / "b", docs)
    assert IndexedDataset(tmp_path / "b").max_token_id(budget=1000, chunk=100) == (950, False)
    assert IndexedDataset(tmp_path / "b").max_token_id(budget=300, chunk=100) == (901, False)


def test_max_token_id_of_a_set_whose_dtype_cannot_exceed_the_bound_reads_nothing(tmp_path: Path) -> None:
    write_shard(tmp_path / "u8", [[1, 2, 250]], dtype=np.uint8)
    ds = IndexedDataset(tmp_path / "u8")
    assert ds.max_token_id(below=256) == (255, True)  # the dtype's own limit, nothing read
    assert ds.max_token_id(below=1000) == (255, True)
    assert ds.max_token_id() == (250, True)


def test_check_token_ids_is_one_line_naming_prefix_id_vocabulary_and_fix() -> None:
    indexed.check_token_ids("data/bin/train", 999, 1000, "fix it")
    with pytest.raises(ShardError) as info:
        indexed.check_token_ids("data/bin/train", 7354, 1000, "fix it")
    assert str(info.value) == "data/bin/train holds token id 7354 but the model has 1000 tokens; fix it"
