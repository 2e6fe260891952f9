"""``git`` source: a repository at one revision, read with ``git ls-tree``/``git cat-file --batch``.

No work tree is touched or needed (bare repositories work), and the revision is resolved to a commit id
once, so every file comes from the same commit and ``stats.json`` records which one it was.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.sources.base import Candidate, OpenedSource
from gitnetic.data.corpus.sources.dir import display_path
from gitnetic.data.corpus.sources.globs import compile_globs
from gitnetic.data.corpus.sources.lang import lang_of
from gitnetic.data.corpus.sources.params import SourceParams

__all__ = [
    "GIT_ENV",
    "check_repo",
    "git_candidates",
    "git_error_line",
    "open_git",
    "read_blob",
    "resolve_commit",
    "run_git",
    "tree_entries",
]

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, env={**os.environ, **GIT_ENV}
        )
    except FileNotFoundError:
        raise CorpusError("git is not installed or not on PATH; install git to read git sources") from None


def git_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[0] if lines else f"exit status {proc.returncode}"


def check_repo(repo: Path) -> None:
    if not repo.is_dir():
        raise CorpusError(
            f"git repository {repo} does not exist; pass --path to a git work tree or bare repo"
        )
    proc = run_git(repo, "rev-parse", "--git-dir")
    if proc.returncode != 0:
        raise CorpusError(f"{repo} is not a git repository ({git_error_line(proc)}); pass --path to one")


def resolve_commit(repo: Path, rev: str) -> str:
    proc = run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if proc.returncode != 0:
        raise CorpusError(
            f"revision {rev!r} not found in git repository {repo}; pass --rev as an existing branch, tag or commit"
        )
    return proc.stdout.decode().strip()


def tree_entries(
    repo: Path, commit: str, include: Sequence[str], exclude: Sequence[str], rev: str | None = None
) -> list[tuple[str, int, str]]:
    """``(path, size, blob id)`` of the files of ``commit`` that the globs select, sorted by path."""
    proc = run_git(repo, "ls-tree", "-r", "-l", "-z", commit)
    if proc.returncode != 0:
        raise CorpusError(f"cannot list {rev or commit!r} in git repository {repo} ({git_error_line(proc)})")
    included, excluded = compile_globs(include), compile_globs(exclude)
    entries: list[tuple[str, int, str]] = []
    for raw in proc.stdout.split(b"\0"):
        if not raw:
            continue
        meta, _, raw_path = raw.partition(b"\t")
        mode, kind, sha, size = meta.split()
        if kind != b"blob" or mode == b"120000":
            continue  # submodules ("commit") and symlinks carry no source text
        rel = display_path(os.fsdecode(raw_path))
        if included(rel) and not excluded(rel):
            entries.append((rel, int(size), sha.decode()))
    entries.sort()
    return entries


def read_blob(stdin: IO[bytes], stdout: IO[bytes], sha: str, where: str) -> bytes:
    """One blob through a running ``git cat-file --batch`` (its header line, the bytes, a newline)."""
    stdin.write(sha.encode() + b"\n")
    stdin.flush()
    header = stdout.readline().split()
    if len(header) != 3:
        raise CorpusError(f"git cat-file could not read blob {sha} of {where}")
    data = stdout.read(int(header[2]))
    stdout.read(1)  # the newline after each object
    return data


@contextlib.contextmanager
def git_candidates(
    repo: Path, rev: str, include: Sequence[str], exclude: Sequence[str]
) -> Iterator[tuple[str, list[Candidate]]]:
    """Yield ``(commit, candidates)``; blobs are read through one long-lived ``git cat-file --batch``."""
    check_repo(repo)
    commit = resolve_commit(repo, rev)
    entries = tree_entries(repo, commit, include, exclude, rev)
    with subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, **GIT_ENV},
    ) as cat:
        assert cat.stdin is not None and cat.stdout is not None
        stdin, stdout = cat.stdin, cat.stdout

        def reader(sha: str) -> Callable[[], bytes]:
            def read() -> bytes:
                return read_blob(stdin, stdout, sha, f"{repo}@{rev}")

            return read

        try:
            yield (
                commit,
                [
                    Candidate(rel, size, reader(sha), {"path": rel}, lang_of(rel))
                    for rel, size, sha in entries
                ],
            )
        finally:
            stdin.close()


@contextlib.contextmanager
def open_git(params: SourceParams) -> Iterator[OpenedSource]:
    repo = params.root()
    with git_candidates(repo, params.rev, params.include, params.exclude) as (commit, cands):
        yield OpenedSource(
            f"git:{params.path}@{commit}",
            f"git repository {repo} at {params.rev} ({commit[:12]})",
            cands,
            len(cands),
            commit=commit,
        )
