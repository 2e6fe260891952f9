"""The corpus interchange format: one JSON object per line, ``{"text", "path", "source"}``.

Later stages stream it line by line, so memory stays flat however large a split grows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gitnetic.common.errors import DataError


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSONL split; a missing file or a bad line is a one-line ``DataError``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"corpus split {p} does not exist; run 'python -m gitnetic corpus' first")
    with p.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{p}:{lineno} is not valid JSON ({exc.msg}); re-run the corpus stage"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(
                    f"{p}:{lineno} has no string 'text' field; each line must be {{\"text\": ...}}"
                )
            yield record


def iter_jsonl_texts(path: str | Path) -> Iterator[str]:
    """Yield only the ``text`` of each record."""
    for record in iter_jsonl(path):
        yield record["text"]
