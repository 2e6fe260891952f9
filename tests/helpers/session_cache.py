"""Build something once per test session, shared by every pytest-xdist worker (read-only: copy it).

Why: several e2e modules need the same costly state (a repository after a full pipeline run: minutes of
subprocesses importing torch and Lightning); ``--dist loadscope`` puts those modules on different
workers, and a session-scoped fixture would still build it once per worker. This is the pattern the
pytest-xdist documentation gives: a folder next to the workers' base temp folders, and a file lock so
that the first worker builds it and the others wait, then reuse it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

_DONE = ".built"


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` that ``build(folder)`` filled, built by the first worker to ask (per session).

    Without xdist the folder lives in this session's own base temp folder; a build that failed is
    removed and tried again by the next caller, so one failure does not pass half a folder on."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by this session's workers (each has its own basetemp under it)
    folder = base / f"shared-{name}"
    with FileLock(str(base / f"shared-{name}.lock")):
        if not (folder / _DONE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / _DONE).touch()
    return folder
