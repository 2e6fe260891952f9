"""DVC experiments: which are committed, which queue workers run (what the tests and bench wait on)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def exp_names(root: Path) -> set[str]:
    """Names of the DVC experiments committed in the repository ``root`` (all baselines)."""
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {ref.rsplit("/", 1)[-1] for ref in refs}


def queue_workers(root: Path) -> list[Any]:
    """The running ``dvc exp queue-worker`` processes of the repository ``root`` (psutil processes).

    With :func:`exp_names`, what waiting for queued experiments watches instead of `dvc queue status`:
    that command sends control messages through the queue's file broker, and a worker that reads one
    half written crashes."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if "queue-worker" in (proc.info["cmdline"] or []) and proc.info["cwd"] == str(root):
                found.append(proc)
        except psutil.Error:
            continue
    return found
