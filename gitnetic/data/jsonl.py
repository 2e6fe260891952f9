"""The corpus interchange format: one JSON object per line, ``{"text", "path", "source"}``.

Later stages stream it line by line, so memory stays flat however large a split grows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gitnetic.common.errors import DataError


def json_lines(lines: Iterable[str], where: object, hint: str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of each non-blank line; a bad one is a one-line ``DataError``
    naming ``where:line`` and ending with ``hint`` (how to fix it)."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}:{lineno} is not valid JSON ({exc.msg}); {hint}") from None


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSONL split; a missing file or a bad line is a one-line ``DataError``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"corpus split {p} does not exist; run 'python -m gitnetic corpus' first")
    with p.open("r", encoding="utf-8") as fh:
        for lineno, record in json_lines(fh, p, "re-run the corpus stage"):
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(
                    f"{p}:{lineno} has no string 'text' field; each line must be {{\"text\": ...}}"
                )
            yield record


def iter_jsonl_texts(path: str | Path) -> Iterator[str]:
    """Yield only the ``text`` of each record."""
    for record in iter_jsonl(path):
        yield record["text"]
