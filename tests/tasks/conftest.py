"""Fixtures for task/model-config tests: one small real tokenizer per session, a clean task registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_texts, stdlib_json_files, train_tiny_tokenizer


@pytest.fixture(scope="session")
def task_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE (vocab 320) trained on a few stdlib files, saved like the tokenizer stage does."""
    texts = read_texts(stdlib_json_files())
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    return train_tiny_tokenizer(out, texts, vocab_size=320, model_max_length=256)


@pytest.fixture
def clean_registry():
    """Restore the global task registry after a test that registers throwaway tasks."""
    from gitnetic.tasks.task_module import TaskModule

    saved = dict(TaskModule.registry)
    yield TaskModule.registry
    TaskModule.registry.clear()
    TaskModule.registry.update(saved)
