"""Stage 1: collect source files into ``{train,valid,test}.jsonl`` documents.

Design choices, and why:

* **Streaming.** Files are read one at a time and each record is written as soon as it is accepted;
  only 16-byte content digests (for de-duplication) and the list of candidate paths stay in memory, so
  peak RSS does not grow with the corpus.
* **Deterministic.** Candidates are processed in sorted path order, so "first seen wins" de-duplication
  and the ``max_files``/``max_bytes`` caps give the same result on every run. A file's split is a hash
  of ``seed`` and its relative path only, so adding or removing other files never moves it between
  splits (no train/test leakage across corpus versions). The one exception is the small-corpus floor
  of ``gitnetic.data.splits``: a split with a non-zero ratio that the hash left empty takes one file.
* **Lossless.** Text is decoded as strict UTF-8 and written unchanged (CRLF, tabs, BOM and all): the
  byte-level tokenizer reproduces it byte for byte, so normalising here would silently change the data.
* **Three sources.** ``stdlib`` (the running Python's standard library: always available, so the default
  pipeline needs no download), ``dir`` (a directory tree) and ``git`` (a repository at a revision, read
  with ``git ls-tree``/``git cat-file --batch`` without touching any work tree).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.common.io import atomic_open
from gitnetic.data.jsonl import iter_jsonl, iter_jsonl_texts
from gitnetic.data.splits import SPLITS, assign_split, assign_splits, required_splits

__all__ = [
    "SPLITS",
    "CorpusParams",
    "CorpusStats",
    "SourceScan",
    "assign_split",
    "collect_corpus",
    "compile_globs",
    "iter_jsonl",
    "iter_jsonl_texts",
    "scan_source",
]

log = logging.getLogger(__name__)

BINARY_SNIFF_BYTES = 8192
# Version-control internals are never source code, and walking them is slow on big repositories.
_ALWAYS_PRUNED_DIRS = frozenset({".git", ".hg", ".svn"})
# The stdlib folder may contain third-party packages; they are not the standard library. Its test suites,
# IDLE, turtle demos and the deprecated lib2to3 are left out too: they belong to the stdlib source only
# (a user's own repository keeps its tests/ unless --exclude says otherwise).
_STDLIB_EXCLUDES = (
    "site-packages/**",
    "dist-packages/**",
    "**/__pycache__/**",
    "test/**",
    "**/tests/**",
    "idlelib/**",
    "turtledemo/**",
    "lib2to3/**",
)


@dataclass
class CorpusParams(DataclassBase):
    """Where to read source files from, which ones to keep, and how to split them."""

    source: Literal["stdlib", "dir", "git"] = field(
        default="stdlib",
        metadata={
            "help": "Where documents come from: 'stdlib' (this Python's standard library, no download), "
            "'dir' (the directory --path) or 'git' (the repository --path at --rev, read without checkout)."
        },
    )
    path: str | None = field(
        default=None,
        metadata={
            "help": "Directory (source dir) or git repository (source git; a sub-folder of a work tree "
            "reads only that sub-tree). Ignored for source stdlib.",
            "aliases": ["--repo"],
        },
    )
    rev: str = field(
        default="HEAD", metadata={"help": "Git revision to read (branch, tag or commit); source git only."}
    )
    include: list[str] = field(
        default_factory=lambda: ["**/*.py"],
        metadata={
            "help": "Glob patterns (relative to the source root, '**' crosses folders; a pattern without "
            "'/' matches the file name at any depth) a file must match to be collected."
        },
    )
    exclude: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Glob patterns (same syntax as --include) of files to leave out, e.g. 'build/**'. "
            "Source stdlib always leaves out " + ", ".join(_STDLIB_EXCLUDES) + "."
        },
    )
    max_file_bytes: int = field(
        default=1_000_000,
        metadata={
            "help": "Skip files larger than this many bytes (generated code, data blobs); 0 = no limit."
        },
    )
    max_files: int = field(
        default=0,
        metadata={"help": "Stop after keeping this many documents (sorted path order); 0 = no limit."},
    )
    max_bytes: int = field(
        default=8_000_000,
        metadata={
            "help": "Stop before the kept documents exceed this many bytes in total (sorted path order), so "
            "the default stdlib pipeline runs in minutes; 0 = no limit."
        },
    )
    valid_ratio: float = field(
        default=0.05,
        metadata={
            "help": "Fraction of files (by path hash) in valid; when non-zero, valid gets at least one file "
            "whenever the corpus has enough for every split (3 with both ratios set)."
        },
    )
    test_ratio: float = field(
        default=0.05, metadata={"help": "Fraction of files (by path hash) in test; same floor as valid."}
    )
    seed: int = field(
        default=0, metadata={"help": "Salt of the path hash that assigns splits; change it to re-draw them."}
    )
    out_dir: str = field(
        default="data/corpus",
        metadata={"help": "Output folder for train.jsonl, valid.jsonl, test.jsonl and stats.json."},
    )

    def __post_init__(self) -> None:
        if self.source not in ("stdlib", "dir", "git"):
            raise ConfigError(f"unknown corpus source {self.source!r}; use stdlib, dir or git")
        if self.source in ("dir", "git") and not self.path:
            raise ConfigError(f"corpus source {self.source} needs a path; pass --path FOLDER")
        for name in ("valid_ratio", "test_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.valid_ratio + self.test_ratio >= 1.0:
            raise ConfigError(
                f"valid_ratio + test_ratio must be below 1 to leave files for train, got "
                f"{self.valid_ratio} + {self.test_ratio}"
            )
        for name in ("max_file_bytes", "max_files", "max_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 = no limit), got {getattr(self, name)}")
        if not self.include:
            raise ConfigError("include needs at least one glob pattern, e.g. --include '**/*.py'")
        # a YAML scalar ("include: '**/*.py'") means one pattern, not a list of characters
        self.include = [self.include] if isinstance(self.include, str) else list(self.include)
        self.exclude = [self.exclude] if isinstance(self.exclude, str) else list(self.exclude)


@dataclass
class CorpusStats:
    """What :func:`collect_corpus` kept and skipped; also written to ``stats.json``."""

    source: str
    out_dir: str
    documents: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    skipped: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("binary", "non_utf8", "too_large", "duplicate", "empty", "unreadable"), 0
        )
    )
    files_matched: int = 0
    files_not_collected: int = 0
    stopped_by: str | None = None

    @property
    def total_documents(self) -> int:
        return sum(self.documents.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def to_dict(self) -> dict:
        out = asdict(self)
        out["documents"] = {**self.documents, "total": self.total_documents}
        out["bytes"] = {**self.bytes, "total": self.total_bytes}
        return out


class _Candidate(NamedTuple):
    path: str  # relative, '/'-separated: what the split hash and the record's "path" use
    size: int
    read: Callable[[], bytes]


# ---------------------------------------------------------------------------------------------- globs
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


def _dir_pruner(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Folders that an ``X/**`` exclude removes entirely need not be walked at all."""
    prefixes = [p.strip().lstrip("/")[:-3] for p in patterns if p.strip().endswith("/**")]
    return compile_globs([p for p in prefixes if p])


# ------------------------------------------------------------------------------------------- sources
def _display(path: str) -> str:
    # os.walk/git may hand back non-UTF-8 names (surrogate-escaped); JSON output must stay valid UTF-8.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_file(path: str) -> Callable[[], bytes]:
    return lambda: Path(path).read_bytes()


def _dir_candidates(root: Path, include: Sequence[str], exclude: Sequence[str]) -> list[_Candidate]:
    if not root.exists():
        raise CorpusError(f"source folder {root} does not exist; pass --path to an existing folder")
    if not root.is_dir():
        raise CorpusError(f"source {root} is not a folder; pass --path to a folder (or --source git)")
    included, excluded, pruned = compile_globs(include), compile_globs(exclude), _dir_pruner(exclude)
    found: list[_Candidate] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if d not in _ALWAYS_PRUNED_DIRS and not pruned(rel_dir + d)]
        for name in filenames:
            rel = rel_dir + name
            if not included(rel) or excluded(rel):
                continue
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue  # vanished while walking
            if not os.path.isfile(full) or os.path.islink(full):
                continue  # symlinks could point outside the tree or duplicate files
            found.append(_Candidate(_display(rel), st.st_size, _read_file(full)))
    found.sort(key=lambda c: c.path)
    return found


def _run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise CorpusError("git is not installed or not on PATH; install git to use --source git") from None


def _git_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[0] if lines else f"exit status {proc.returncode}"


@contextlib.contextmanager
def _git_candidates(
    repo: Path, rev: str, include: Sequence[str], exclude: Sequence[str]
) -> Iterator[tuple[str, list[_Candidate]]]:
    """Yield ``(commit, candidates)``; blobs are read through one long-lived ``git cat-file --batch``."""
    if not repo.is_dir():
        raise CorpusError(
            f"git repository {repo} does not exist; pass --path to a git work tree or bare repo"
        )
    proc = _run_git(repo, "rev-parse", "--git-dir")
    if proc.returncode != 0:
        raise CorpusError(f"{repo} is not a git repository ({_git_error_line(proc)}); pass --path to one")
    proc = _run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if proc.returncode != 0:
        raise CorpusError(
            f"revision {rev!r} not found in git repository {repo}; pass --rev as an existing branch, tag or commit"
        )
    commit = proc.stdout.decode().strip()
    proc = _run_git(repo, "ls-tree", "-r", "-l", "-z", commit)
    if proc.returncode != 0:
        raise CorpusError(f"cannot list {rev!r} in git repository {repo} ({_git_error_line(proc)})")
    included, excluded = compile_globs(include), compile_globs(exclude)
    entries: list[tuple[str, int, str]] = []
    for raw in proc.stdout.split(b"\0"):
        if not raw:
            continue
        meta, _, raw_path = raw.partition(b"\t")
        mode, kind, sha, size = meta.split()
        if kind != b"blob" or mode == b"120000":
            continue  # submodules ("commit") and symlinks carry no source text
        rel = _display(os.fsdecode(raw_path))
        if included(rel) and not excluded(rel):
            entries.append((rel, int(size), sha.decode()))
    entries.sort()
    with subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as cat:
        assert cat.stdin is not None and cat.stdout is not None
        stdin, stdout = cat.stdin, cat.stdout

        def reader(sha: str) -> Callable[[], bytes]:
            def read() -> bytes:
                stdin.write(sha.encode() + b"\n")
                stdin.flush()
                header = stdout.readline().split()
                if len(header) != 3:
                    raise CorpusError(f"git cat-file could not read blob {sha} of {repo}@{rev}")
                data = stdout.read(int(header[2]))
                stdout.read(1)  # the newline after each object
                return data

            return read

        try:
            yield commit, [_Candidate(rel, size, reader(sha)) for rel, size, sha in entries]
        finally:
            stdin.close()


@contextlib.contextmanager
def _open_source(params: CorpusParams) -> Iterator[tuple[str, str, list[_Candidate]]]:
    """Yield ``(label, description, candidates)`` for the configured source."""
    if params.source == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        version = ".".join(map(str, sys.version_info[:3]))
        cands = _dir_candidates(root, params.include, [*_STDLIB_EXCLUDES, *params.exclude])
        yield f"stdlib:python{version}", f"the Python {version} standard library ({root})", cands
    elif params.source == "dir":
        assert params.path is not None
        root = Path(params.path).expanduser()
        yield f"dir:{params.path}", f"folder {root}", _dir_candidates(root, params.include, params.exclude)
    else:
        assert params.path is not None
        repo = Path(params.path).expanduser()
        with _git_candidates(repo, params.rev, params.include, params.exclude) as (commit, cands):
            yield (
                f"git:{params.path}@{commit}",
                f"git repository {repo} at {params.rev} ({commit[:12]})",
                cands,
            )


# ---------------------------------------------------------------------------------------------- scan
@dataclass
class SourceScan:
    """What :func:`scan_source` found: a fast upper bound of what ``collect_corpus`` would keep."""

    description: str
    files: int
    bytes: int


def scan_source(params: CorpusParams) -> SourceScan:
    """Count the files and bytes the corpus stage would consider, from sizes only (nothing is read).

    Applies ``include``/``exclude``, ``max_file_bytes``, ``max_files`` and ``max_bytes`` in the same
    sorted order as :func:`collect_corpus`; binary, non-UTF-8, empty and duplicate files are not detected
    (that needs reading them), so the counts are an upper bound used for sizing a run (``init``).
    """
    with _open_source(params) as (_label, description, candidates):
        files = total = 0
        for cand in candidates:
            if params.max_files and files >= params.max_files:
                break
            if params.max_file_bytes and cand.size > params.max_file_bytes:
                continue
            if cand.size == 0:
                continue
            if params.max_bytes and total + cand.size > params.max_bytes:
                break
            files += 1
            total += cand.size
    return SourceScan(description=description, files=files, bytes=total)


# ------------------------------------------------------------------------------------------- collect
def collect_corpus(params: CorpusParams) -> CorpusStats:
    """Collect, filter, de-duplicate and split source files into ``params.out_dir`` (see module doc)."""
    from tqdm.auto import tqdm

    out_dir = Path(params.out_dir)
    with _open_source(params) as (label, description, candidates), contextlib.ExitStack() as stack:
        stats = CorpusStats(source=label, out_dir=str(out_dir), files_matched=len(candidates))
        writers = {
            split: stack.enter_context(
                atomic_open(out_dir / f"{split}.jsonl", "w", encoding="utf-8", newline="\n")
            )
            for split in SPLITS
        }
        seen: set[bytes] = set()
        kept: list[_Kept] = []  # small per-document facts for the small-corpus split floor
        bar = stack.enter_context(tqdm(candidates, desc="corpus", unit="file", disable=None, file=sys.stderr))
        for index, cand in enumerate(bar):
            if params.max_files and stats.total_documents >= params.max_files:
                stats.stopped_by, stats.files_not_collected = "max_files", len(candidates) - index
                break
            if params.max_file_bytes and cand.size > params.max_file_bytes:
                stats.skipped["too_large"] += 1
                continue
            try:
                data = cand.read()
            except OSError:  # permissions, or the file vanished since the walk
                stats.skipped["unreadable"] += 1
                continue
            if b"\0" in data[:BINARY_SNIFF_BYTES]:
                stats.skipped["binary"] += 1
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                stats.skipped["non_utf8"] += 1
                continue
            if not text.strip():
                stats.skipped["empty"] += 1
                continue
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in seen:
                stats.skipped["duplicate"] += 1
                continue
            if params.max_bytes and stats.total_bytes + len(data) > params.max_bytes:
                stats.stopped_by, stats.files_not_collected = "max_bytes", len(candidates) - index
                break
            seen.add(digest)
            split = assign_split(cand.path, params.valid_ratio, params.test_ratio, params.seed)
            record = {"text": text, "path": cand.path, "source": label}
            writers[split].write(json.dumps(record, ensure_ascii=False) + "\n")
            kept.append(_Kept(cand.path, split, stats.documents[split], len(data)))
            stats.documents[split] += 1
            stats.bytes[split] += len(data)
        _check_not_empty(stats, params, description)
        _fill_empty_splits(kept, writers, stats, params)
    with atomic_open(out_dir / "stats.json", "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh, indent=2)
        fh.write("\n")
    _log_summary(stats, params, description)
    return stats


class _Kept(NamedTuple):
    path: str
    split: str
    line: int  # index of its record in that split's file
    size: int


def _check_not_empty(stats: CorpusStats, params: CorpusParams, description: str) -> None:
    """Raise before the outputs are committed, so a bad run never leaves empty splits behind."""
    if stats.total_documents == 0:
        why = _skipped_line(stats) or f"{stats.files_matched} files matched"
        raise CorpusError(
            f"no documents collected from {description} with include {params.include} and exclude "
            f"{params.exclude} ({why}); check --path/--include/--exclude"
        )


def _fill_empty_splits(
    kept: list[_Kept], writers: dict[str, IO[str]], stats: CorpusStats, params: CorpusParams
) -> None:
    """Move documents so that no split with a non-zero ratio is empty (see ``gitnetic.data.splits``).

    Runs only when the path hash left a required split empty, i.e. on small corpora: the donor split's
    (still uncommitted) file is rewritten without the moved records, keeping everything else in order.
    """
    needed = required_splits(params.valid_ratio, params.test_ratio)
    if all(stats.documents[s] for s in needed):
        return
    try:
        final = assign_splits([k.path for k in kept], params.valid_ratio, params.test_ratio, params.seed)
    except CorpusError as exc:
        raise CorpusError(f"{exc}, or set the ratio of a split you do not need to 0") from None
    moves = {(k.split, k.line): (k, new) for k, new in zip(kept, final, strict=True) if new != k.split}
    moved_lines: list[tuple[str, str, str, _Kept]] = []  # (path, target split, JSON line, document)
    for donor in sorted({split for split, _ in moves}):
        fh = writers[donor]
        fh.flush()
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n") as copy:
            with open(fh.name, encoding="utf-8", newline="\n") as src:
                shutil.copyfileobj(src, copy)
            copy.seek(0)
            fh.seek(0)
            fh.truncate()
            for index, line in enumerate(copy):
                if (donor, index) in moves:
                    item, target = moves[donor, index]
                    moved_lines.append((item.path, target, line, item))
                else:
                    fh.write(line)
    for path, target, line, item in sorted(moved_lines):
        writers[target].write(line)
        stats.documents[item.split] -= 1
        stats.bytes[item.split] -= item.size
        stats.documents[target] += 1
        stats.bytes[target] += item.size
        ratio = getattr(params, f"{target}_ratio", None)
        log.info(
            "corpus: the path hash put no file into %s (%s of %d files); moved %s from %s so it has one",
            target,
            f"{target}_ratio {ratio:g}" if ratio is not None else "train",
            len(kept),
            path,
            item.split,
        )


def _skipped_line(stats: CorpusStats) -> str:
    labels = {
        "binary": "binary",
        "non_utf8": "not UTF-8",
        "too_large": "larger than max_file_bytes",
        "duplicate": "duplicates",
        "empty": "empty",
        "unreadable": "unreadable",
    }
    parts = [f"{n} {labels[k]}" for k, n in stats.skipped.items() if n]
    return ("skipped " + ", ".join(parts)) if parts else ""


def _log_summary(stats: CorpusStats, params: CorpusParams, description: str) -> None:
    docs = stats.documents
    log.info(
        "corpus: %d documents, %s from %s -> %s (train %d / valid %d / test %d)",
        stats.total_documents,
        _human_bytes(stats.total_bytes),
        description,
        stats.out_dir,
        docs["train"],
        docs["valid"],
        docs["test"],
    )
    for key, n in stats.skipped.items():
        if n:
            log.info("corpus: skipped %d %s file(s)", n, key.replace("_", "-"))
    if stats.stopped_by:
        log.info(
            "corpus: stopped at %s=%d; %d matching file(s) not collected (raise --%s, 0 = no limit)",
            stats.stopped_by,
            getattr(params, stats.stopped_by),
            stats.files_not_collected,
            stats.stopped_by,
        )


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
