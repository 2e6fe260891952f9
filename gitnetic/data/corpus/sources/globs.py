"""Include/exclude glob patterns over '/'-separated relative paths (shared by every corpus source).

One syntax for folders, git trees and diffs: ``**`` crosses folders, ``*``/``?`` stay within one, and a
pattern without ``/`` matches the file name at any depth (like ``.gitignore``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from gitnetic.common.errors import ConfigError

__all__ = ["compile_globs", "dir_pruner"]


def _glob_regex(pattern: str) -> str:
    """Translate one glob to a regex over '/'-separated relative paths ('*' stays within a folder)."""
    pattern = pattern.strip().lstrip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    if "/" not in pattern:
        pattern = "**/" + pattern  # like .gitignore: a bare name matches at any depth
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def compile_globs(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Return ``match(relpath)``: True when any of ``patterns`` matches the whole relative path."""
    if not patterns:
        return lambda _path: False
    try:
        regex = re.compile("|".join(f"(?:{_glob_regex(p)})" for p in patterns) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ConfigError(f"bad glob pattern in {list(patterns)} ({exc}); fix --include/--exclude") from None
    return lambda path: regex.match(path) is not None


def dir_pruner(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Folders that an ``X/**`` exclude removes entirely need not be walked at all."""
    prefixes = [p.strip().lstrip("/")[:-3] for p in patterns if p.strip().endswith("/**")]
    return compile_globs([p for p in prefixes if p])
