"""Shared, session-scoped fixtures: a tiny real source tree, its corpus splits, and a tiny real tokenizer.

They are built once per pytest(-xdist) worker and must be treated as read-only (copy before modifying).

* ``tiny_corpus_dir`` -> ``Path``: a folder with the files in :data:`TINY_CORPUS_FILES` (8 small Python
  modules, incl. tab indentation, CRLF line endings and non-ASCII text, plus one ``README.md``).
* ``tiny_corpus_files`` -> ``dict[str, bytes]``: those files' relative paths and exact bytes.
* ``tiny_corpus_jsonl`` -> ``Path``: ``train.jsonl``/``valid.jsonl``/``test.jsonl``/``stats.json`` written by
  the real corpus stage from ``tiny_corpus_dir`` + the stdlib ``json`` package; every split is non-empty.
* ``tiny_tokenizer`` -> ``Path``: a folder saved by the real tokenizer stage (byte-level BPE, vocab 512,
  ``<s>``=0 ``<pad>``=1 ``</s>``=2 ``<unk>``=3 ``<mask>``=4) trained on the stdlib ``json`` package and
  ``tiny_corpus_dir``; load it with ``gitnetic.data.tokenizer.load_tokenizer(path)`` or
  ``AutoTokenizer.from_pretrained(path, local_files_only=True)``.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per torch process (set before torch is first imported, inherited by the CLI
# subprocesses): pytest -n 2 already uses both cores, and tiny models spin-wait with more threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import shutil  # noqa: E402
import sysconfig
from pathlib import Path

import pytest

TINY_VOCAB_SIZE = 512

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


def stdlib_json_dir() -> Path:
    """The running Python's ``json`` package: real, small (~50 KB) and always present."""
    return Path(sysconfig.get_paths()["stdlib"]) / "json"


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding :data:`TINY_CORPUS_FILES` (read-only for tests)."""
    return write_tree(tmp_path_factory.mktemp("tiny_corpus"), TINY_CORPUS_FILES)


@pytest.fixture(scope="session")
def tiny_corpus_files() -> dict[str, bytes]:
    """A copy of :data:`TINY_CORPUS_FILES` (relative path -> exact bytes), to compare outputs against."""
    return dict(TINY_CORPUS_FILES)


@pytest.fixture(scope="session")
def tiny_corpus_jsonl(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_dir: Path) -> Path:
    """Real corpus-stage output (train/valid/test.jsonl, stats.json) with every split non-empty."""
    from gitnetic.data.corpus import CorpusParams, collect_corpus

    src = tmp_path_factory.mktemp("tiny_corpus_src")
    shutil.copytree(tiny_corpus_dir, src, dirs_exist_ok=True)
    shutil.copytree(stdlib_json_dir(), src / "json", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("tiny_corpus_jsonl")
    stats = collect_corpus(
        CorpusParams(source="dir", path=str(src), valid_ratio=0.2, test_ratio=0.2, seed=1, out_dir=str(out))
    )
    assert all(stats.documents.values()), f"a tiny corpus split is empty: {stats.documents}; change the seed"
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_dir: Path) -> Path:
    """Folder of a real vocab-512 byte-level BPE tokenizer (see module docstring)."""
    from gitnetic.data.tokenizer import TokenizerParams, train_tokenizer

    sources = sorted(stdlib_json_dir().glob("*.py")) + sorted(tiny_corpus_dir.rglob("*.py"))
    texts = (p.read_bytes().decode("utf-8") for p in sources)  # keep CRLF as is
    out = tmp_path_factory.mktemp("tiny_tokenizer") / "tokenizer"
    train_tokenizer(texts, out, TokenizerParams(vocab_size=TINY_VOCAB_SIZE))
    return out


@pytest.fixture(scope="session")
def fim_tokenizer(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_dir: Path) -> Path:
    """Like ``tiny_tokenizer`` but made with ``fim_tokens``: also ``<fim_prefix>``=5 ``<fim_middle>``=6
    ``<fim_suffix>``=7 ``<fim_pad>``=8."""
    from gitnetic.data.tokenizer import TokenizerParams, train_tokenizer

    sources = sorted(stdlib_json_dir().glob("*.py")) + sorted(tiny_corpus_dir.rglob("*.py"))
    texts = (p.read_bytes().decode("utf-8") for p in sources)
    out = tmp_path_factory.mktemp("fim_tokenizer") / "tokenizer"
    train_tokenizer(texts, out, TokenizerParams(vocab_size=TINY_VOCAB_SIZE, fim_tokens=True))
    return out
