"""Repositories fetched into a cache folder, once, for the ``repos`` source (:mod:`.manifest`).

Why the cache looks the way it does:

* **One bare repository per (location, revision)**: ``CACHE_DIR/<name>-<hash>.git``, holding the fetched
  commit under the ref :data:`PINNED`. The stage reads it exactly as a ``git`` source reads a bare
  repository, and a rerun, a killed run resumed or another job of the fan-out finds it there and fetches
  nothing (a branch or tag is therefore resolved once, when first fetched; delete the entry, or pin a
  commit in the manifest, to read a newer one).
* **Shallow** from a URL (``file://`` included): a branch, a tag or ``HEAD`` is cloned with ``--depth 1``
  (one commit's tree and blobs), a full commit id fetched alone (git's protocol v2 serves any commit
  id). Any other revision (an abbreviated id, ``main~3``) needs history, so that repository is cloned
  whole and the revision resolved in it. Not ``--filter=blob:none``: the stage reads every selected
  blob, and a partial clone fetches each missing blob with its own request (``ls-tree -l`` alone would
  fetch them all, one by one, for their sizes). A local path gets git's local clone instead: hard links
  to its objects, nothing transferred or packed (git ignores ``--depth`` there; about 3x faster than a
  shallow ``file://`` fetch of a small repository), and any revision resolves in it.
* **Never half there**: a fetch goes into a temporary folder beside the entry, renamed to the entry's
  name only once the pinned ref is written, under an exclusive lock file (``<entry>.lock``, ``flock``), so
  concurrent jobs or threads wanting one repository fetch it once and the others wait for it; a killed
  fetch leaves only a temporary folder, removed by the next fetch of that entry.
* **No prompts**: ``GIT_TERMINAL_PROMPT=0`` and ssh in batch mode, so a repository that needs
  credentials fails at once with git's own message instead of waiting for a password.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from gitnetic.data.corpus.sources.git import GIT_ENV, git_error_line, run_git

__all__ = ["PINNED", "FetchFailed", "Fetched", "cache_entry", "cached_commit", "fetch_repository"]

PINNED = "refs/gitnetic/pinned"  # the commit a cache entry holds
_FULL_ID = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")  # else a local path
_PLAIN_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\Z")  # a branch or tag name (fetchable as is)


class FetchFailed(Exception):
    """A repository could not be fetched; the message is git's (or ours) in one line."""


class Fetched(NamedTuple):
    path: Path  # the bare repository in the cache
    commit: str  # the resolved commit id


def cache_entry(cache_dir: Path, location: str, rev: str) -> Path:
    """Where ``location`` at ``rev`` is cached: a readable name plus a hash of both."""
    digest = hashlib.sha256(f"{location}\0{rev}".encode()).hexdigest()[:16]
    base = location.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:48].lstrip(".") or "repo"
    return cache_dir / f"{base}-{digest}.git"


def cached_commit(entry: Path) -> str | None:
    """The commit a complete cache entry holds, None when there is none."""
    if not (entry / "HEAD").is_file():
        return None
    proc = run_git(entry, "rev-parse", "--verify", "--quiet", f"{PINNED}^{{commit}}")
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:  # noqa: SIM117 - the lock is held while the file is open
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_repository(cache_dir: Path, location: str, rev: str) -> Fetched:
    """``location`` at ``rev``, from the cache or fetched into it (see the module doc)."""
    entry = cache_entry(cache_dir, location, rev)
    commit = cached_commit(entry)
    if commit is not None:
        return Fetched(entry, commit)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(entry.with_name(entry.name + ".lock")):
        commit = cached_commit(entry)  # fetched by another job or thread while this one waited
        if commit is not None:
            return Fetched(entry, commit)
        for stale in cache_dir.glob(f".{entry.name}.tmp-*"):  # left by a killed fetch
            shutil.rmtree(stale, ignore_errors=True)
        if entry.exists():  # not complete (no pinned ref): not ours to trust
            shutil.rmtree(entry)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-", dir=cache_dir))
        try:
            commit = _fetch_into(tmp, location, rev)
            os.rename(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Fetched(entry, commit)


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **GIT_ENV}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return subprocess.run(["git", *args], capture_output=True, env=env)


def _fetch_into(tmp: Path, location: str, rev: str) -> str:
    """Fetch ``location`` at ``rev`` into the empty folder ``tmp``; pin and return the commit."""
    commit = None
    local = not _URL_LIKE.match(location)
    if local:  # git's local clone: hard links, no transfer (it ignores --depth); any revision resolves
        proc = _git("clone", "-q", "--bare", "--local", "--", location, str(tmp))
        if proc.returncode != 0:
            raise FetchFailed(git_error_line(proc))
        commit = _resolve(tmp, rev)
        if commit is None:
            raise FetchFailed(f"revision {rev!r} not found (not a branch, tag or commit of it)")
    elif _FULL_ID.match(rev):  # a pinned commit: that commit alone (protocol v2 serves any commit id)
        shutil.rmtree(tmp, ignore_errors=True)
        proc = _git("init", "--bare", "-q", str(tmp))
        if proc.returncode == 0:
            proc = _git("-C", str(tmp), "fetch", "-q", "--depth", "1", "--no-tags", "--", location, rev)
        if proc.returncode != 0:
            raise FetchFailed(git_error_line(proc))
        commit = _resolve(tmp, "FETCH_HEAD")
    elif _PLAIN_REF.match(rev):  # HEAD, a branch or a tag: one commit's tree and blobs
        branch = () if rev == "HEAD" else ("--branch", rev)
        shutil.rmtree(tmp, ignore_errors=True)
        proc = _git("clone", "-q", "--bare", "--depth", "1", *branch, "--", location, str(tmp))
        if proc.returncode == 0:
            commit = _resolve(tmp, "HEAD")
        elif rev == "HEAD":
            raise FetchFailed(git_error_line(proc))
    if commit is None:  # any other revision (an abbreviated id, main~3) needs history: all of it
        shutil.rmtree(tmp, ignore_errors=True)
        proc = _git("clone", "-q", "--bare", "--", location, str(tmp))
        if proc.returncode != 0:
            raise FetchFailed(git_error_line(proc))
        commit = _resolve(tmp, rev)
        if commit is None:
            raise FetchFailed(f"revision {rev!r} not found (not a branch, tag or commit of it)")
    proc = run_git(tmp, "update-ref", PINNED, commit)
    if proc.returncode != 0:
        raise FetchFailed(f"cannot record the fetched commit ({git_error_line(proc)})")
    return commit


def _resolve(repo: Path, rev: str) -> str | None:
    proc = run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    return proc.stdout.decode().strip() if proc.returncode == 0 else None
