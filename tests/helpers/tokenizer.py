"""Tiny real tokenizers, trained by the tokenizer stage's own code."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitnetic.data.tokenizer.params import TokenizerParams
from gitnetic.data.tokenizer.train import train_tokenizer

TINY_VOCAB_SIZE = 512


def train_tiny_tokenizer(out: Path, texts: Iterable[str], **params: Any) -> Path:
    """A real byte-level BPE (``TINY_VOCAB_SIZE`` unless ``vocab_size`` is given) saved to ``out`` by the
    tokenizer stage's own training code."""
    params.setdefault("vocab_size", TINY_VOCAB_SIZE)
    train_tokenizer(texts, out, TokenizerParams(**params))
    return out
