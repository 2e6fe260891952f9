"""Fixtures for task tests: a clean task registry."""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_registry():
    """Restore the global task registry after a test that registers throwaway tasks."""
    from gitnetic.tasks.task_module import TaskModule

    saved = dict(TaskModule.registry)
    yield TaskModule.registry
    TaskModule.registry.clear()
    TaskModule.registry.update(saved)
