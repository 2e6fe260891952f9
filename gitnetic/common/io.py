"""Atomic file output: every file a stage writes appears whole or not at all.

A killed run must never leave a half-written shard or checkpoint that a later run mistakes for a good
one, so writers go to a temporary sibling (``.NAME.XXXX.tmp``) and ``os.replace`` it into place only once
complete. Files that only make sense together (a corpus' splits) are committed as a group
(:func:`atomic_open_group`), so a kill never pairs a new split with an old one. A kill leaves at most the
temporaries, which the next write of the same output removes (:func:`remove_stale_temporaries`).

A full disk inside any of these writers is a :class:`~gitnetic.common.errors.DiskFullError` naming the
output (:func:`raise_if_disk_full`): the write that failed is a temporary's, whose name says nothing to
the user, and the CLI prints the error in one line.

The writers create the folders an output needs; a write that fails removes those it created, if still
empty (:func:`_new_folders`): a failed start (a bad source, an empty corpus, Ctrl-C) must not leave an empty
output folder that looks like a run happened there.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from gitnetic.common.errors import DiskFullError

# errno -> how the error message says it; both are fixed by freeing space
_DISK_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_file_mode() -> int:
    """Mode for a finished output file: mkstemp makes 0600 files, outputs should follow the umask."""
    return 0o666 & ~_umask()


def disk_full_reason(exc: BaseException) -> str | None:
    """The words for a full disk ("no space left on device", or the quota's) when ``exc`` or an exception
    it was raised from is an ``OSError`` of one, or a library's own error that quotes the OS's words for one
    (safetensors raises ``SafetensorError: ... No space left on device (os error 28)``); else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _DISK_FULL:
            return _DISK_FULL[cause.errno]
        text = str(cause)
        for code, reason in _DISK_FULL.items():
            if os.strerror(code) in text:
                return reason
        cause = cause.__cause__ or cause.__context__
    return None


def raise_if_disk_full(exc: BaseException, path: str | os.PathLike[str]) -> None:
    """Raise a :class:`DiskFullError` naming ``path`` (the output being written) if ``exc`` is a full disk."""
    if isinstance(exc, DiskFullError):
        return
    reason = disk_full_reason(exc)
    if reason is not None:
        raise DiskFullError(os.fspath(path), reason) from exc


def remove_stale_temporaries(path: str | os.PathLike[str]) -> None:
    """Remove the temporaries (files or folders) that writes of ``path`` cut short by a kill left behind.

    Called when a stage starts writing ``path`` again, so a killed run's leftovers never accumulate or
    end up inside a tracked output folder (DVC hashes every file in ``data/bin``)."""
    target = Path(path)
    if not target.parent.is_dir():
        return
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _temp_sibling(target: Path) -> Path:
    for _ in range(2):  # a failing writer beside this one may remove the new folder it had created
        with contextlib.suppress(FileNotFoundError):
            return _make_temp(target)
    return _make_temp(target)


def _make_temp(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp_name, output_file_mode())
    return Path(tmp_name)


@contextlib.contextmanager
def _new_folders(*folders: Path) -> Iterator[None]:
    """Remove the folders among ``folders`` and those above them that did not exist before the block, if
    the block fails and they are empty (deepest first; one holding anything, e.g. another writer's file,
    stays, and so do those above it)."""
    missing: set[Path] = set()
    for folder in folders:
        for path in (folder, *folder.parents):
            if path.exists() or path.is_symlink():
                break
            missing.add(path)
    try:
        yield
    except BaseException:
        for path in sorted(missing, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty, or gone already
                path.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    target = Path(path)
    with _new_folders(target.parent):
        tmp = _temp_sibling(target)
        try:
            yield tmp
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise_if_disk_full(exc, target)
            raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open()`` that only makes the file visible at ``path`` once it has been fully written."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_open_group(
    paths: Sequence[str | os.PathLike[str]],
    mode: str = "w",
    *,
    invalidate: Sequence[str | os.PathLike[str]] = (),
    **kwargs: Any,
) -> Iterator[list[IO[Any]]]:
    """``open()`` several files that only make sense together; they replace the old ones as a group.

    All are written to temporaries; when the block succeeds every temporary is flushed and fsynced
    first, then the files in ``invalidate`` (a marker of the complete old set, e.g. ``stats.json``) are
    removed, then all are renamed into place, a few system calls without I/O in between. A kill before
    that leaves the old set as it was; one in the middle of the renames leaves the marker missing. If
    the block fails, the temporaries are removed and the old files are untouched.
    """
    targets = [Path(p) for p in paths]
    with _new_folders(*{target.parent for target in targets}):
        for target in targets:
            remove_stale_temporaries(target)
        tmps: list[Path] = []
        handles: list[IO[Any]] = []
        try:
            for target in targets:
                tmps.append(_temp_sibling(target))
                handles.append(open(tmps[-1], mode, **kwargs))  # noqa: SIM115 - closed below
            yield handles
            for fh in handles:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
            for marker in invalidate:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(marker)
            for tmp, target in zip(tmps, targets, strict=True):
                os.replace(tmp, target)
        except BaseException as exc:
            for fh in handles:
                with contextlib.suppress(OSError):
                    fh.close()
            for tmp in tmps:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise_if_disk_full(exc, targets[0].parent if len(targets) > 1 else targets[0])
            raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` (a directory) once the block succeeds."""
    target = Path(path)
    with _new_folders(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # likewise for mkdtemp's 0700
        try:
            yield tmp
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise_if_disk_full(exc, target)
            raise
