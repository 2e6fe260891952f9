"""MMIDIDX shards: hand-made documents, encoded files, or the real preprocess stage's output."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gitnetic.cli.preprocess import main as preprocess_main
from gitnetic.data.shards.indexed import IndexedDatasetBuilder


def write_shard(prefix: Path | str, docs: Iterable[Sequence[int]], dtype: Any = np.uint16) -> str:
    """One MMIDIDX shard ``PREFIX.{bin,idx}`` holding ``docs`` (token id sequences), in order."""
    with IndexedDatasetBuilder(str(prefix), dtype) as builder:
        for doc in docs:
            builder.add_document(doc)
    return str(prefix)


def marked_docs(sizes: Sequence[int], seed: int = 0, mark: int = 10) -> list[np.ndarray]:
    """Random documents of ``sizes`` tokens whose first token is ``mark + i``: a batch row names its
    document. Ids are in [5, 500), clear of the special tokens."""
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([[mark + i], rng.integers(5, 500, size=n - 1)]).astype(np.uint16)
        for i, n in enumerate(sizes)
    ]


def encode_files(tokenizer: Any, paths: Iterable[Path]) -> list[list[int]]:
    """Each file, one document, encoded by ``tokenizer`` (a transformers tokenizer)."""
    return [tokenizer(p.read_text(encoding="utf-8"))["input_ids"] for p in paths]


def preprocess_shards(tokenizer_dir: Path, corpus_dir: Path, out: Path, *flags: str) -> Path:
    """Shards of ``corpus_dir/{split}.jsonl`` written to ``out`` by the real preprocess stage."""
    argv = ["--tokenizer_path", str(tokenizer_dir), "--input_dir", str(corpus_dir), "--output_dir", str(out)]
    assert preprocess_main([*argv, *flags]) == 0
    return out
