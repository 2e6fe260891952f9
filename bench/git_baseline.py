"""A file's text at a git revision of this repository: the baseline the benchmarks load side by side."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git_show(rev: str, path: str) -> str:
    """The text of ``path`` (relative to the repository root) at ``rev``."""
    return subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def git_exists(rev: str, path: str) -> bool:
    """Whether ``path`` exists at ``rev`` (a baseline may predate a module or a move)."""
    return (
        subprocess.run(
            ["git", "-C", str(REPO), "cat-file", "-e", f"{rev}:{path}"], capture_output=True
        ).returncode
        == 0
    )
