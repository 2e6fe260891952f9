"""The corpus interchange format: one JSON object per line, ``{"text", "path", "source"}``.

Later stages stream it line by line, so memory stays flat however large a split grows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gitnetic.common.errors import DataError


def json_lines(
    lines: Iterable[str | bytes], where: object, hint: str, keep: Callable[[int], bool] | None = None
) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of each non-blank line; a bad one is a one-line ``DataError``
    naming ``where:line`` and ending with ``hint`` (how to fix it). With ``keep``, only the lines whose
    (1-based) number it accepts are parsed: a sample of a big file skips the JSON work of the rest.
    Lines may be bytes (a file opened ``"rb"``): each is decoded as UTF-8 here, so a wrong encoding is
    reported with its line instead of as a ``UnicodeDecodeError`` from deep inside a text-mode read."""
    for lineno, line in enumerate(lines, 1):
        if (keep is not None and not keep(lineno)) or not line.strip():
            continue
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{where}:{lineno} is not UTF-8 text (byte {line[exc.start]:#04x} at column "
                    f"{exc.start + 1}); convert it to UTF-8 (e.g. iconv -t utf-8) or {hint}"
                ) from None
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}:{lineno} is not valid JSON ({exc.msg}); {hint}") from None


def iter_jsonl(path: str | Path, keep: Callable[[int], bool] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSONL split (only the lines ``keep`` accepts, when given; see
    :func:`json_lines`); a missing file or a bad line is a one-line ``DataError``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"corpus split {p} does not exist; run 'python -m gitnetic corpus' first")
    with p.open("rb") as fh:
        for lineno, record in json_lines(fh, p, "re-run the corpus stage", keep):
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(
                    f"{p}:{lineno} has no string 'text' field; each line must be {{\"text\": ...}}"
                )
            yield record


def iter_jsonl_texts(path: str | Path, keep: Callable[[int], bool] | None = None) -> Iterator[str]:
    """Yield only the ``text`` of each record (of the lines ``keep`` accepts, when given)."""
    for record in iter_jsonl(path, keep):
        yield record["text"]
