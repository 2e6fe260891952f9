"""Source trees and texts: the tiny corpus, the stdlib ``json`` package, git repositories, generated code."""

from __future__ import annotations

import random
import subprocess
import sysconfig
from collections.abc import Iterable
from pathlib import Path

# relative path -> exact bytes (CRLF and tabs are deliberate: the pipeline must keep them).
TINY_CORPUS_FILES: dict[str, bytes] = {
    "geometry/__init__.py": b'"""Small 2-D geometry helpers."""\n\nfrom .point import Point\n\n__all__ = ["Point"]\n',
    "geometry/point.py": '''"""Points in the plane; the angle is measured in radians (\u03c0 = half a turn)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float

    def __add__(self, other: Point) -> Point:
        return Point(self.x + other.x, self.y + other.y)

    def norm(self) -> float:
        return math.hypot(self.x, self.y)

    def angle(self) -> float:
        """Angle to the x axis, in (-\u03c0, \u03c0]."""
        return math.atan2(self.y, self.x)


def centroid(points: list[Point]) -> Point:
    if not points:
        raise ValueError("centroid of no points")
    n = len(points)
    return Point(sum(p.x for p in points) / n, sum(p.y for p in points) / n)
'''.encode(),
    "geometry/shapes.py": b"""# Tab-indented on purpose: the tokenizer must keep tabs.
import math

from .point import Point


class Circle:
\tdef __init__(self, center: Point, radius: float) -> None:
\t\tif radius < 0:
\t\t\traise ValueError(f"negative radius {radius}")
\t\tself.center = center
\t\tself.radius = radius

\tdef area(self) -> float:
\t\treturn math.pi * self.radius ** 2

\tdef contains(self, p: Point) -> bool:
\t\treturn (p.x - self.center.x) ** 2 + (p.y - self.center.y) ** 2 <= self.radius ** 2
""",
    "textutil/windows_lines.py": (
        b'"""Written on Windows: CRLF line endings."""\r\n\r\n'
        b"def normalize_newlines(text: str) -> str:\r\n"
        b'    return text.replace("\\r\\n", "\\n").replace("\\r", "\\n")\r\n\r\n\r\n'
        b"def count_lines(text: str) -> int:\r\n"
        b"    return len(normalize_newlines(text).splitlines())\r\n"
    ),
    "textutil/greetings.py": '''"""Greetings in several scripts: keep non-ASCII text byte for byte."""

GREETINGS = {
    "de": "Gr\u00fc\u00df Gott",
    "fr": "Bonjour, \u00e7a va\u00a0?",
    "ja": "\u3053\u3093\u306b\u3061\u306f",
    "ru": "\u041f\u0440\u0438\u0432\u0435\u0442",
    "emoji": "\U0001f44b\U0001f30d",
}


def greet(name: str, lang: str = "de") -> str:
    """Return a greeting such as 'Gr\u00fc\u00df Gott, Ada!'."""
    return f"{GREETINGS.get(lang, 'Hello')}, {name}!"
'''.encode(),
    "scripts/wordcount.py": b'''#!/usr/bin/env python3
"""Count words in files given on the command line."""

import argparse
import collections
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    counts = collections.Counter()
    for name in args.files:
        with open(name, encoding="utf-8") as fh:
            for line in fh:
                counts.update(line.split())
    for word, n in counts.most_common(args.top):
        print(f"{n:6d} {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
''',
    "scripts/fib.py": b'''from functools import lru_cache


@lru_cache(maxsize=None)
def fib(n: int) -> int:
    """The n-th Fibonacci number (fib(0) == 0)."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_iter(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
''',
    "tests/test_point.py": b"""import pytest

from geometry.point import Point, centroid


def test_add():
    assert Point(1, 2) + Point(3, 4) == Point(4, 6)


def test_centroid_of_nothing():
    with pytest.raises(ValueError):
        centroid([])
""",
    "README.md": b"# tiny corpus\n\nNot Python: the default include `**/*.py` leaves it out.\n",
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (relative path -> bytes, or text saved as UTF-8) below ``root``; returns ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def stdlib_json_dir() -> Path:
    """The running Python's ``json`` package: real, small (~50 KB) and always present."""
    return Path(sysconfig.get_paths()["stdlib"]) / "json"


def stdlib_json_files() -> list[Path]:
    """The ``*.py`` files of :func:`stdlib_json_dir`, in name order."""
    return sorted(stdlib_json_dir().glob("*.py"))


def read_texts(paths: Iterable[Path]) -> list[str]:
    """Each file's text exactly (CRLF kept: no newline translation)."""
    return [p.read_bytes().decode("utf-8") for p in paths]


def git(
    repo: Path,
    *args: str,
    name: str = "Test",
    email: str = "test@example.com",
    date: str = "2020-01-01T00:00:00",
) -> str:
    """``git ARGS`` in ``repo`` as ``name <email>`` at ``date``, without the user's git config; stdout."""
    config = ["-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "init.defaultBranch=main"]
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    return subprocess.run(
        ["git", *config, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


_NAMES = ["count", "total", "value", "items", "result", "index", "name", "path", "size", "data"]
_OPS = ["+", "-", "*", "//", "%"]


def _function(rng: random.Random) -> str:
    a, b = rng.sample(_NAMES, 2)
    lines = [
        f"def {rng.choice(['get', 'make', 'load', 'scale', 'merge'])}_{a}({a}, {b}={rng.randint(2, 99)}):",
        f'    """Return {a} {rng.choice(_OPS)} {b}."""',
    ]
    for _ in range(rng.randint(1, 4)):
        c = rng.choice(_NAMES)
        lines += [
            f"    {c} = {a} {rng.choice(_OPS)} {b}",
            f"    if {c} > {rng.randint(0, 9)}:",
            f"        {a} = {c}",
        ]
    return "\n".join([*lines, f"    return {a}"]) + "\n"


def generated_modules(seed: int, count: int) -> list[str]:
    """Small Python modules from a few templates with random names and numbers.

    Why generated code: 50 steps of a tiny model on a few real files only reach unigram quality, so a
    held-out "the model learned something" check needs data with structure it can pick up that fast.
    Held-out splits use other seeds, so no document is shared between train and valid/test.
    """
    rng = random.Random(seed)
    return ["\n\n".join(_function(rng) for _ in range(rng.randint(2, 4))) for _ in range(count)]
