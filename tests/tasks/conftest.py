"""Fixtures for task/model-config tests: one small real tokenizer per session, a clean task registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def task_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE (vocab 320) trained on a few stdlib files, saved like the tokenizer stage does."""
    from gitnetic.data.tokenizer import TokenizerParams, train_tokenizer

    src = Path(os.__file__).parent / "json"
    texts = [p.read_text(encoding="utf-8") for p in sorted(src.glob("*.py"))]
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(texts, out, TokenizerParams(vocab_size=320, model_max_length=256))
    return out


@pytest.fixture
def clean_registry():
    """Restore the global task registry after a test that registers throwaway tasks."""
    from gitnetic.tasks.task_module import TaskModule

    saved = dict(TaskModule.registry)
    yield TaskModule.registry
    TaskModule.registry.clear()
    TaskModule.registry.update(saved)
