"""``repos`` source: the repositories a manifest file lists, each fetched into a cache and read at its
commit exactly as a ``git`` source reads one.

The manifest (``manifest:``) is a text file, one repository per line::

    # LOCATION                              [REVISION [NAME]]
    https://github.com/org/service           v1.2
    git@github.com:org/tools.git             main       tools
    file:///srv/git/legacy.git               0123456789abcdef0123456789abcdef01234567
    ../mirrors/lib.git                       -          lib-mirror

* LOCATION: an ``https://``, ``http://``, ``ssh://``, ``git://`` or ``file://`` URL, an scp-style
  ``user@host:path``, or a local path (a work tree or a bare repository; relative paths are relative to
  the manifest's folder, ``~`` is expanded).
* REVISION: a branch, tag, commit id or any revision git resolves; ``-`` or none is ``HEAD``.
* NAME: the repository's name in the corpus (each document's ``repository`` field, its split key
  ``NAME/PATH``, its ``stats.json`` entry and its ``licenses`` key ``SOURCE/NAME``); by default the
  last part of LOCATION without ``.git``. Letters, digits, ``_``, ``.``, ``-``; unique in the manifest.
* ``#`` starts a comment (at the start of a line or after a space); blank lines are ignored.

A line that is not one of these is an error naming the manifest and the line number, before anything
is fetched; so is a local path or ``file://`` URL that does not exist (unless ``skip_unavailable`` is
set or the repository is already in the cache). Repositories are fetched by :mod:`.fetch`
(``fetch_workers`` at once, cached in ``cache_dir``); one that cannot be fetched stops the stage with a
line naming it and its manifest line, or with ``skip_unavailable: true`` is left out, named in a warning
and counted (``stats.json`` -> ``sources.<name>.skipped.unavailable_repository`` and its
``repositories`` entry, whose ``commit`` is null).

Documents come in manifest order, each repository's files in path order, so the corpus and the
fan-out's parts (which cut this list by bytes, as for a ``git`` source) are the same on every run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.data.corpus.sources.base import Candidate, OpenedSource
from gitnetic.data.corpus.sources.fetch import FetchFailed, cache_entry, cached_commit, fetch_repository
from gitnetic.data.corpus.sources.git import GIT_ENV, read_blob, tree_entries
from gitnetic.data.corpus.sources.lang import lang_of
from gitnetic.data.corpus.sources.params import SourceParams

__all__ = [
    "LINE_SYNTAX",
    "UNAVAILABLE",
    "ManifestLine",
    "Repository",
    "manifest_repositories",
    "open_repos",
    "read_manifest",
]

log = logging.getLogger(__name__)

LINE_SYNTAX = "LOCATION [REVISION [NAME]] (a URL or a path, then optionally a branch/tag/commit and a name)"
UNAVAILABLE = "unavailable_repository"  # the skip count of a repository skip_unavailable left out
_SCHEMES = ("https", "http", "ssh", "git", "file")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")  # git@host:org/repo.git
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_COMMENT = re.compile(r"(?:^|\s)#.*")


@dataclass(frozen=True)
class ManifestLine:
    """One repository of a manifest, as written there."""

    number: int  # 1-based line number
    text: str  # the line (for messages)
    location: str  # what git fetches: a URL, or a local path made absolute
    rev: str
    name: str
    local: Path | None  # the folder a local path or file:// URL names (checked before fetching)

    def where(self, manifest: Path) -> str:
        return f"{manifest} line {self.number}: {self.text!r}"


@dataclass(frozen=True)
class Repository:
    """A manifest line, fetched (``path``/``commit``) or not (``error``)."""

    line: ManifestLine
    path: Path | None
    commit: str | None
    error: str | None

    @property
    def name(self) -> str:
        return self.line.name

    def record(self) -> dict[str, Any]:
        """Its ``stats.json`` entry."""
        out: dict[str, Any] = {"location": self.line.location, "rev": self.line.rev, "commit": self.commit}
        if self.error is not None:
            out["error"] = self.error
        return out


def _bad(manifest: Path, number: int, text: str, problem: str) -> ConfigError:
    return ConfigError(f"manifest {manifest} line {number}: {problem} in {text!r}; write {LINE_SYNTAX}")


def _location(manifest: Path, number: int, text: str, raw: str) -> tuple[str, Path | None]:
    scheme = _URL.match(raw)
    if scheme:
        if scheme.group(1).lower() not in _SCHEMES:
            raise _bad(
                manifest,
                number,
                text,
                f"{scheme.group(1)}:// is not a git URL scheme ({', '.join(_SCHEMES)})",
            )
        if scheme.group(1).lower() == "file":
            return raw, Path(raw[len("file://") :])
        if len(raw) == len(scheme.group(0)):
            raise _bad(manifest, number, text, "the URL has no host or path")
        return raw, None
    if _SCP.match(raw):
        return raw, None
    path = Path(raw).expanduser()
    path = (path if path.is_absolute() else manifest.parent / path).resolve()
    return str(path), path


def _default_name(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")


def read_manifest(manifest: Path) -> list[ManifestLine]:
    """The repositories ``manifest`` lists, in order (see the module doc for the syntax)."""
    if not manifest.is_file():
        what = "is not a file" if manifest.exists() else "does not exist"
        raise ConfigError(
            f"manifest {manifest} {what}; point 'manifest' at a text file with one repository per line: "
            f"{LINE_SYNTAX}"
        )
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"manifest {manifest} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    out: list[ManifestLine] = []
    names: dict[str, int] = {}
    for number, raw_line in enumerate(lines, 1):
        text = raw_line.strip()
        words = _COMMENT.sub("", text).split()
        if not words:
            continue
        if len(words) > 3:
            raise _bad(manifest, number, text, f"{len(words)} fields (at most 3)")
        location, local = _location(manifest, number, text, words[0])
        rev = words[1] if len(words) > 1 and words[1] != "-" else "HEAD"
        if rev.startswith("-"):
            raise _bad(manifest, number, text, f"revision {rev!r} starts with '-'")
        name = words[2] if len(words) > 2 else _default_name(location)
        if not _NAME.match(name):
            hint = "" if len(words) > 2 else " (taken from the location; give a name as the third field)"
            raise _bad(manifest, number, text, f"name {name!r} is not letters, digits, '_', '.', '-'{hint}")
        if name in names:
            raise _bad(
                manifest,
                number,
                text,
                f"name {name!r} is already used on line {names[name]} (give each repository its own name "
                "as the third field)",
            )
        names[name] = number
        out.append(ManifestLine(number, text, location, rev, name, local))
    if not out:
        raise ConfigError(
            f"manifest {manifest} lists no repositories ({len(lines)} line(s), all blank or comments); "
            f"add one line per repository: {LINE_SYNTAX}"
        )
    return out


def cache_dir(params: SourceParams) -> Path:
    return Path(params.cache_dir or "data/cache/repos").expanduser()


def manifest_path(params: SourceParams) -> Path:
    if not params.manifest:
        raise ConfigError(f"corpus source {params.name!r}: type repos needs 'manifest: FILE'")
    return Path(params.manifest).expanduser()


_warned: set[tuple[str, str, str]] = set()


def manifest_repositories(params: SourceParams) -> list[Repository]:
    """Every repository of ``params``' manifest, fetched (``fetch_workers`` at once) or found in the
    cache; raises on the first (in manifest order) that cannot be, unless ``skip_unavailable``."""
    manifest = manifest_path(params)
    lines = read_manifest(manifest)
    cache = cache_dir(params)
    for line in lines:  # a path that is not there: a mistake in the manifest, said before fetching
        if (
            line.local is not None
            and not line.local.exists()
            and not params.skip_unavailable
            and cached_commit(cache_entry(cache, line.location, line.rev)) is None
        ):
            raise CorpusError(
                f"corpus source {params.name!r}: repository {line.name} ({line.where(manifest)}) does not "
                f"exist; fix the path, remove the line, or set skip_unavailable: true"
            )

    def fetch(line: ManifestLine) -> Repository:
        try:
            got = fetch_repository(cache, line.location, line.rev)
        except FetchFailed as exc:
            return Repository(line, None, None, str(exc))
        return Repository(line, got.path, got.commit, None)

    with ThreadPoolExecutor(max_workers=max(1, min(params.fetch_workers, len(lines)))) as pool:
        repos = list(pool.map(fetch, lines))
    for repo in repos:
        if repo.error is None:
            continue
        where = f"repository {repo.name} ({repo.line.where(manifest)})"
        if not params.skip_unavailable:
            raise CorpusError(
                f"corpus source {params.name!r}: cannot fetch {where}: {repo.error}; fix or remove the line, "
                f"or set skip_unavailable: true to leave unavailable repositories out"
            )
        key = (params.name, str(manifest), repo.name)
        if key not in _warned:  # once per run, not once per opening
            _warned.add(key)
            log.warning("corpus: [%s] left out %s: %s (skip_unavailable)", params.name, where, repo.error)
    return repos


class _Blobs:
    """Blob reads through one ``git cat-file --batch`` at a time: the repository of the last read. The
    stage reads candidates in order, so each repository's process is started once, and a manifest of
    thousands of repositories never holds more than one open."""

    def __init__(self) -> None:
        self.repo: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def reader(self, repo: Path, sha: str) -> Callable[[], bytes]:
        def read() -> bytes:
            return read_blob(*self._streams(repo), sha, str(repo))

        return read

    def _streams(self, repo: Path) -> tuple[IO[bytes], IO[bytes]]:
        if self.repo != repo or self.proc is None:
            self.close()
            self.proc = subprocess.Popen(
                ["git", "-C", str(repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **GIT_ENV},
            )
            self.repo = repo
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc, self.repo = None, None


@contextlib.contextmanager
def open_repos(params: SourceParams) -> Iterator[OpenedSource]:
    manifest = manifest_path(params)
    repos = manifest_repositories(params)
    blobs = _Blobs()
    candidates: list[Candidate] = []
    for repo in repos:
        if repo.path is None or repo.commit is None:
            continue
        for rel, size, sha in tree_entries(repo.path, repo.commit, params.include, params.exclude):
            candidates.append(
                Candidate(
                    f"{repo.name}/{rel}",
                    size,
                    blobs.reader(repo.path, sha),
                    {"repository": repo.name, "path": rel},
                    lang_of(rel),
                )
            )
    fetched = sum(r.commit is not None for r in repos)
    try:
        yield OpenedSource(
            f"repos:{params.manifest}",
            f"{fetched} of {len(repos)} repositories of manifest {manifest}",
            candidates,
            len(candidates),
            skipped={UNAVAILABLE: len(repos) - fetched},
            repositories={r.name: r.record() for r in repos},
        )
    finally:
        blobs.close()
